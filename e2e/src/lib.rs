//! Test support shared by Gangplank's integration tests and the end-to-end suite:
//! - [`echo`], an upstream that tells which instance answered and what it received;
//! - [`apiserver`], an in-memory Kubernetes API-server stand-in (plain http, JSON) that
//!   kube-rs and `kubectl` can talk to, with fault injection. The `fake-apiserver`
//!   binary runs one on its own;
//! - [`scenario`], the end-to-end scenario suite (the `e2e` binary runs it).

pub mod apiserver;
pub mod echo;
pub mod scenario;
