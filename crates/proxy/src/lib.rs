//! The data plane: accepts client traffic and forwards it to upstream endpoints
//! according to the current [`Snapshot`] of the store.
//!
//! Status: the listeners, balancers and upstream pools are the data-plane issue's work
//! and are not written yet. The route table, backend table and certificate lookup the
//! proxy will use per request already exist, compiled at apply time, in
//! `gangplank-store`.
//!
//! Architecture invariant: the proxy never parses configuration on the request path;
//! it loads the current snapshot once per request (one atomic load) and uses only
//! what `gangplank_store::compile` prepared.

pub use gangplank_store::Snapshot;
