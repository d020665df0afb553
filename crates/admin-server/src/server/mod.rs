//! The admin API server: the router ([`router`]), its listeners ([`listen`]) and the
//! connection loop that feeds `/nginx_status` ([`serve`]).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use gangplank_admin_server::server::{AdminState, listen, router, serve};
//! use gangplank_store::{Status, Store};
//!
//! let state = AdminState::new(Arc::new(Store::in_memory()), Status::new());
//! let listener = listen::bind_unix(std::path::Path::new("/tmp/gp.sock"))?;
//! serve::serve(listener.into(), router(state.clone()), state.status.clone(), std::future::pending()).await;
//! # Ok(()) }
//! ```

pub mod handlers;
pub mod listen;
pub mod serve;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use gangplank_store::{Status, Store};

use crate::api::paths;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The configuration store.
    pub store: Arc<Store>,
    /// Counters and the draining flag.
    pub status: Arc<Status>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
}

impl AdminState {
    /// State with the default body limit (21 MiB).
    pub fn new(store: Arc<Store>, status: Arc<Status>) -> AdminState {
        AdminState {
            store,
            status,
            body_limit: crate::DEFAULT_BODY_LIMIT,
        }
    }
}

/// The admin API routes. Paths are matched without the query string; unknown paths
/// get 404 and known paths with other methods 405 with `Allow`.
pub fn router(state: AdminState) -> Router {
    use handlers::*;
    Router::new()
        .route(paths::HEALTHZ, get(healthz))
        .route(
            paths::IS_DYNAMIC_LB_INITIALIZED,
            get(is_dynamic_lb_initialized),
        )
        .route(paths::NGINX_STATUS, get(nginx_status))
        .route(
            paths::CONFIGURATION,
            get(get_configuration).post(post_configuration),
        )
        .route(paths::BACKENDS, get(get_backends).post(post_backends))
        .route(paths::GENERAL, get(get_general).post(post_general))
        .route(paths::SERVERS, post(post_servers))
        .route(paths::CERTS, get(get_certs))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}
