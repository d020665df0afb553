//! The controller: Kubernetes objects (Ingress, IngressClass, Service, EndpointSlice,
//! Secret, ConfigMap), from the API or a directory of manifests, translated into an
//! ingress-nginx-compatible [`Configuration`] and pushed to the proxy through the
//! admin API client.
//!
//! What exists today is the translation, a pure function:
//!
//! ```
//! use gangplank_controller::{ClusterState, TranslateOptions, translate};
//!
//! let state = ClusterState::default(); // normally: the watches' stores
//! let translation = translate(&state, &TranslateOptions::default());
//! // Always a valid snapshot: here the `_` server and `upstream-default-backend`.
//! assert!(gangplank_model::Validate::validate(&translation.configuration).is_ok());
//! assert_eq!(translation.configuration.servers[0].hostname, "_");
//! assert!(translation.events.is_empty());
//! ```
//!
//! It covers IngressClass selection, servers per host with ingress-nginx's default
//! locations and catch-all, Exact/Prefix/ImplementationSpecific paths, backends named
//! `<namespace>-<service>-<port>` with endpoints from EndpointSlices (named and
//! numbered ports, ExternalName, `service-upstream`), TLS certificates from Secrets
//! (and `--default-ssl-certificate`), canary merging, the global ConfigMap (into
//! `general`), and the location and host annotations of Part B §5.2 that the model
//! carries (balancing, affinity, canary, rewrites and redirects, `proxy-*`, upstream
//! TLS, source ranges, rate limits, basic/digest/external/client-certificate auth,
//! CORS, custom headers, `server-alias`, `default-backend`, custom errors, mirroring,
//! logs). Invalid annotations deny the Ingress's locations, snippets are ignored; both
//! are reported as [`Event`]s, and so are unusable ConfigMap keys.
//!
//! Not yet: the annotations the model has no field for (listed in
//! `annotations/mod.rs`), the watches, the manifest-directory source, the sync loop,
//! status updates and leader election.
//!
//! Architecture invariant: this crate depends on `gangplank-model` and on the admin
//! API *client* only, never on the store or the proxy, so the two processes can be
//! deployed and upgraded as separate containers.

mod annotations;
mod canary;
mod class;
#[cfg(feature = "cluster")]
pub mod cluster;
mod configmap;
mod endpoints;
mod events;
pub mod lint;
pub mod manifests;
pub mod metrics;
mod paths;
pub mod serve;
mod state;
pub mod sync;
mod tls;
mod translate;

pub use annotations::{DEFAULT_COOKIE_NAME, PREFIX as ANNOTATION_PREFIX};
pub use class::{CLASS_ANNOTATION, DEFAULT_CLASS_ANNOTATION};
pub use events::{Event, EventKind, MAX_MESSAGE_LEN, ObjectKind, reason};
pub use gangplank_admin_server::AdminClient;
pub use gangplank_model::Configuration;
/// The Kubernetes API types [`ClusterState`] holds, at the version this crate uses.
pub use k8s_openapi;
pub use state::{ClusterState, SERVICE_NAME_LABEL};
pub use translate::{DEFAULT_SERVER, DEFAULT_UPSTREAM, TranslateOptions, Translation, translate};
