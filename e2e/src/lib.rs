//! Test support shared by Gangplank's integration tests and (later) the end-to-end
//! suite. Today: [`echo`], an upstream that tells which instance answered and what it
//! received.

pub mod echo;
