//! The controller: watches Kubernetes (Ingress, IngressClass, Service, EndpointSlice,
//! Secret, ConfigMap) or a directory of manifests, translates the objects into an
//! ingress-nginx-compatible [`Configuration`], and pushes it to the proxy through the
//! admin API client.
//!
//! Status: the translation, watches and sync loop are the controller issue's work and
//! are not written yet. What exists is the boundary this crate must keep:
//!
//! Architecture invariant: this crate depends on `gangplank-model` and on the admin
//! API *client* only, never on the store or the proxy, so the two processes can be
//! deployed and upgraded as separate containers.

pub use gangplank_admin_server::AdminClient;
pub use gangplank_model::Configuration;
