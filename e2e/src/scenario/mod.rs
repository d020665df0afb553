//! The end-to-end scenario suite: scenarios written once as data (`e2e/scenarios/*.yaml`)
//! and run through a [`Cluster`] driver: [`local`] (the API-server stand-in,
//! `gangplank proxy` and `gangplank controller` as processes, echo processes on
//! loopback addresses) or [`kind`] (a real cluster with the Helm chart installed).
//! The `e2e` binary runs them; `cargo xtask e2e` builds and runs it.
//!
//! # A scenario
//!
//! ```yaml
//! name: canary-by-header              # a DNS label, unique in the suite
//! description: X-Canary routes to the canary, everything else to the primary.
//! # namespace: e2e-canary-by-header   # the default: e2e-<name>
//! # known_failure: "proxy: ..."       # a known bug: reported XFAIL, not a failure
//! # timeout: 60s                      # the whole scenario (default 60 s)
//! services:                           # echo-backed Services (port `http`, 80)
//!   - {name: web, replicas: 2}
//!   - {name: web-canary}              # replicas: 1
//! # - {name: vault, tls: vault-tls}   # replicas speak TLS with a `tls_secrets` cert
//! #                                   # (local driver only; the kind driver skips)
//! tls_secrets:                        # self-signed kubernetes.io/tls Secrets
//!   - {name: web-tls, hosts: [canary.example]}
//! manifests: |                        # applied at the start; namespace defaults to the scenario's
//!   apiVersion: networking.k8s.io/v1
//!   kind: Ingress
//!   metadata: {name: web}
//!   spec:
//!     ingressClassName: gangplank
//!     rules:
//!     - host: canary.example
//!       http:
//!         paths:
//!         - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
//!   ---
//!   apiVersion: networking.k8s.io/v1
//!   kind: Ingress
//!   metadata:
//!     name: web-canary
//!     annotations:
//!       nginx.ingress.kubernetes.io/canary: "true"
//!       nginx.ingress.kubernetes.io/canary-by-header: X-Canary
//!   spec:
//!     ingressClassName: gangplank
//!     rules:
//!     - host: canary.example
//!       http:
//!         paths:
//!         - {path: /, pathType: Prefix, backend: {service: {name: web-canary, port: {name: http}}}}
//! steps:
//!   - request: {host: canary.example, count: 10}
//!     expect: {status: 200, service: web, instances: 2}
//!     eventually: 10s                 # the controller applies changes asynchronously
//!   - request: {host: canary.example, headers: {X-Canary: always}, count: 10}
//!     expect: {service: web-canary}   # status defaults to 200
//!   - request: {host: canary.example, tls: true}
//!     expect: {cert: web-tls}
//! ```
//!
//! # Steps
//!
//! Each step is a mapping with exactly one action key, an optional `note` (shown when
//! it fails) and the keys that action takes; any other key is an error. `eventually:
//! <duration>` (on `request`, `get` and `conf`) retries the whole step until it passes
//! or the duration is over. Durations are `250ms`, `10s`, `2m` or a number of seconds.
//!
//! | action | value | extra keys |
//! |---|---|---|
//! | `apply` | multi-document YAML text, an object, or a list of objects: created, or updated to exactly what they say (as `kubectl apply` of the whole object) | |
//! | `delete` | `Kind/name`, `Kind/namespace/name`, or a list of them | |
//! | `scale` | `{service, replicas}` | |
//! | `rollout` | a Service name: every replica replaced, a new one before each old one goes | |
//! | `crash` | `{service, replicas}`: replicas killed without leaving the endpoints first | |
//! | `request` | [`RequestSpec`](schema::RequestSpec): `host`, `path` or `paths`, `method`, `headers`, `cookies`, `tls`, `sni`, `count`, `jar`, `remember` | `expect`, `eventually` |
//! | `start_load` | [`LoadSpec`](schema::LoadSpec): `name`, `host`, `path`, `headers`, `tls`, `connections`, `interval`, `status` | |
//! | `stop_load` | the load's name | `expect: {max_failures, min_requests}` |
//! | `restart`, `stop`, `start` | `controller` or `proxy` | |
//! | `fault` | `drop_watches`, `expire_resource_versions`, `reset`, `{latency: 200ms}`, `{error_rate: 0.2}` | |
//! | `rotate_secret` | a `tls_secrets` name: a new certificate in the same Secret | |
//! | `configmap` | keys of the controller's ConfigMap to set (`null` removes) | |
//! | `get` | `Kind/name` | `expect: {exists, published, fields}`, `eventually` |
//! | `conf` | JSON pointer -> value in `gangplank ctl conf` (`null`: absent) | `eventually` |
//! | `sleep` | a duration | |
//!
//! A request's `expect` ([`ResponseExpect`](schema::ResponseExpect)) holds for every
//! answer: `status` (default 200), `service` (a name or list; `ns/name` for another
//! namespace), `headers` (name -> regex), `no_headers`, `cert` (a `tls_secrets` name,
//! or `default`), `same_as`/`not_same_as` (an instance remembered by an earlier
//! request's `remember`), `upstream` (what the echo received: `path`, `headers`,
//! `no_headers`); and over all answers: `instances` (exactly this many distinct echo
//! instances), `same_instance`, `fraction: {service, min, max}`. A `jar` name keeps
//! cookies set by answers for the following requests that name the same jar.
//!
//! What every driver provides before the first step: the IngressClass `gangplank`
//! (controller `gangplank.io/ingress-controller`), the controller's ConfigMap (changed
//! only through `configmap` steps) and Ingress status publication by the leader.
//! Driver-specific operations a driver cannot do (the kind driver has no API faults
//! and cannot keep a component stopped) skip the scenario with a reason.

pub mod client;
pub mod cluster;
pub mod kind;
pub mod local;
pub mod runner;
pub mod schema;
pub mod tls;

pub use cluster::{Cluster, ClusterError};
pub use runner::{Outcome, Report};
pub use schema::{ParseError, Scenario};

#[cfg(test)]
mod tests;
