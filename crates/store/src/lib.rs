//! The configuration store: the current [`Snapshot`] behind an atomic pointer.
//!
//! Writers (the admin API) send an [`Update`]; the store validates it, merges it with
//! the current configuration, compiles everything the proxy needs per request (host
//! table, location matchers, backend table, certificates) and swaps the new snapshot
//! in. Readers call [`Store::load`], one atomic load, and never block writers or see a
//! half-applied change. Every applied change gets a higher [`Snapshot::version`].
//!
//! ```
//! use gangplank_store::{Store, Update};
//! use gangplank_model::Backend;
//!
//! let store = Store::in_memory();
//! let backend = Backend { name: "default-echo-80".into(), ..Default::default() };
//! let snapshot = store.apply(Update::Backends(vec![backend]))?;
//! assert_eq!(snapshot.version, 1);
//! assert!(store.load().backends.get("default-echo-80").is_some());
//! # Ok::<(), gangplank_store::ApplyError>(())
//! ```
//!
//! What not to do: never compile or parse configuration on the request path; if the
//! proxy needs something derived from the configuration, derive it in [`compile`] and
//! keep it in the snapshot.
//!
//! With a state directory ([`Store::open`]), every applied snapshot is written
//! atomically to disk and restored at start; a corrupt file is reported and ignored.

pub mod backends;
pub mod certificates;
pub mod compile;
pub mod persist;
pub mod policy;
pub mod routes;
pub mod snapshot;
pub mod status;
mod store;

pub use backends::{BackendTable, CompiledBackend, Upstream};
pub use certificates::{CertificateTable, CompiledCertificate};
pub use persist::{PersistError, RestoreOutcome};
pub use policy::CompiledPolicies;
pub use routes::{CompiledLocation, CompiledServer, LocationLabels, RouteMatch, RouteTable};
pub use snapshot::Snapshot;
pub use status::{ConnectionGuard, RequestGuard, Status};
pub use store::{ApplyError, Store, Update};
