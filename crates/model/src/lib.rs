//! The ingress-nginx-compatible configuration model of Gangplank.
//!
//! This crate is the contract layer: the JSON shapes the admin API accepts and returns
//! (`Backend`, `Endpoint`, `TrafficShapingPolicy`, the certificate mapping, the general
//! settings and the whole `Configuration`), with ingress-nginx's field names, plus an
//! explicit validation step that reports every problem with its JSON path.
//!
//! It is pure data: no I/O, no clocks, no global state. The store compiles these
//! types into what the proxy uses per request; the controller produces them from
//! Kubernetes objects.
//!
//! ```
//! use gangplank_model::{Backend, json, validate::{Path, Report}};
//!
//! let body = br#"[{"name":"default-echo-80","endpoints":[{"address":"10.0.0.5","port":"8080"}]}]"#;
//! let backends: Vec<Backend> = json::decode(body)?;
//! let mut report = Report::new();
//! gangplank_model::validate_backends(&backends, &Path::Root, &mut report);
//! report.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decoding never validates and validation never decodes: callers do both, in that
//! order, and apply nothing unless both succeed.

pub mod backend;
pub mod certificate;
pub mod configuration;
pub mod expr;
pub mod general;
pub mod int_or_string;
pub mod json;
pub mod policy;
pub mod server;
pub mod service;
pub mod stub_status;
pub mod tls;
pub mod validate;

pub use backend::{
    Backend, CookieSessionAffinity, Endpoint, LoadBalance, SecureCaCert, SessionAffinityConfig,
    TrafficShapingPolicy, UpstreamHashByConfig, validate_backends,
};
pub use certificate::{EMPTY_UID, SslConfiguration};
pub use configuration::{Configuration, validate_servers};
pub use general::GeneralConfig;
pub use int_or_string::IntOrString;
pub use server::{IngressRef, Location, PathType, Server};
pub use service::{Service, ServicePort, ServiceSpec};
pub use stub_status::StubStatus;
pub use validate::{Problem, Problems, Validate};
