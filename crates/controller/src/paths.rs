//! The last pass over each server: paths checked the way the proxy will match them,
//! and locations in ingress-nginx's order.
//!
//! Whether a path is valid depends on the whole host: one location with `use-regex`
//! or `rewrite-target` turns every path of the host into a case-insensitive,
//! start-anchored regex (Part B §6.1), so the check runs once all locations are
//! known. An invalid path is dropped with a Warning on its Ingress (ingress-nginx
//! drops the whole Ingress; dropping the path keeps the rest serving). Dropping a
//! regex location can take the host out of regex mode, so the check repeats until
//! nothing changes.

use gangplank_model::Server;
use gangplank_model::server::check_path;

use crate::events::{Events, reason};

/// Drops invalid paths and sorts the locations: by path, descending, then (stably) by
/// path length, descending, as ingress-nginx's `getBackendServers`.
pub(crate) fn finish(server: &mut Server, events: &mut Events) {
    loop {
        let regex_mode = server.regex_mode();
        let before = server.locations.len();
        server.locations.retain(|location| {
            let Err(why) = check_path(&location.path, location.path_type, regex_mode) else {
                return true;
            };
            if let Some(ingress) = &location.ingress {
                events.warn(
                    ingress,
                    reason::INVALID_PATH,
                    format!(
                        "path {:?} of host {:?} is ignored: {why}",
                        location.path, server.hostname
                    ),
                );
            }
            false
        });
        if !regex_mode || server.locations.len() == before {
            break;
        }
    }
    server.locations.sort_by(|a, b| b.path.cmp(&a.path));
    server
        .locations
        .sort_by_key(|l| std::cmp::Reverse(l.path.len()));
}
