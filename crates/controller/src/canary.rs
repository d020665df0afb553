//! Canary Ingresses merged into their primaries (Part B §3.4, ingress-nginx's
//! `mergeAlternativeBackends`).
//!
//! A canary Ingress (`canary: "true"`) owns no location. Its backend (`noServer:
//! true`, with the canary policy) is attached as an alternative to the backend of
//! every primary location with the same host, the same path and the same pathType
//! (ImplementationSpecific counting as Prefix). A canary `spec.defaultBackend` is
//! attached to every location of the `_` server. The default backend never gets a
//! canary, and a canary backend that is also the location's own backend is left
//! alone.
//!
//! With `affinity-canary-behavior: sticky` (the default) the canary backend takes the
//! primary's session affinity, so a client pinned to the canary stays there.
//!
//! A canary path that matches nothing gets a Warning; a canary backend that was
//! attached nowhere is dropped. (ingress-nginx also drops a backend already attached
//! elsewhere when one of its paths matches nothing, leaving a dangling
//! `alternativeBackends` entry; Gangplank keeps it.)

use std::collections::{BTreeMap, HashSet};

use gangplank_model::{Backend, IngressRef, Location, PathType, Server};

use crate::events::{Events, reason};
use crate::translate::{DEFAULT_SERVER, DEFAULT_UPSTREAM, IngressInput, comparable};

/// A canary target that found no primary.
struct Unmatched {
    ingress: IngressRef,
    backend: String,
    what: String,
}

/// Which primary locations a canary target may attach to.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// A canary `spec.defaultBackend`: every location of `_`.
    Everything,
    /// A canary path: the same path and (comparable) pathType.
    Path(&'a str, PathType),
}

impl Target<'_> {
    fn matches(self, location: &Location) -> bool {
        match self {
            Target::Everything => true,
            Target::Path(path, path_type) => {
                location.path == path && comparable(location.path_type) == comparable(path_type)
            }
        }
    }
}

/// The state of one merge pass.
struct Merge<'u> {
    upstreams: &'u mut BTreeMap<String, Backend>,
    /// Canary backends attached at least once.
    attached: HashSet<String>,
    unmatched: Vec<Unmatched>,
}

impl Merge<'_> {
    fn attempt(
        &mut self,
        input: &IngressInput<'_>,
        backend: &str,
        locations: &[Location],
        target: Target<'_>,
        what: String,
    ) {
        let sticky = input.annotations.canary_sticky;
        match attach(self.upstreams, backend, locations, sticky, target) {
            Outcome::Attached => {
                self.attached.insert(backend.to_owned());
            }
            Outcome::IsPrimary => {}
            Outcome::NoMatch => self.unmatched.push(Unmatched {
                ingress: input.reference.clone(),
                backend: backend.to_owned(),
                what,
            }),
        }
    }
}

/// Attaches every canary backend to its primaries, and drops those attached nowhere.
pub(crate) fn merge(
    inputs: &[IngressInput<'_>],
    upstreams: &mut BTreeMap<String, Backend>,
    servers: &BTreeMap<String, Server>,
    events: &mut Events,
) {
    let locations_of = |host: &str| {
        servers
            .get(host)
            .map_or(&[][..], |s| s.locations.as_slice())
    };
    let mut merge = Merge {
        upstreams,
        attached: HashSet::new(),
        unmatched: Vec::new(),
    };
    for input in inputs.iter().filter(|i| i.is_canary()) {
        if let Some(backend) = &input.default_backend {
            merge.attempt(
                input,
                &backend.upstream,
                locations_of(DEFAULT_SERVER),
                Target::Everything,
                "spec.defaultBackend".to_owned(),
            );
        }
        for rule in &input.rules {
            for path in rule.paths.iter().flatten() {
                merge.attempt(
                    input,
                    &path.backend.upstream,
                    locations_of(&rule.host),
                    Target::Path(&path.path, path.path_type),
                    format!(
                        "host {:?} path {:?} ({:?})",
                        rule.host, path.path, path.path_type
                    ),
                );
            }
        }
    }

    let Merge {
        upstreams,
        attached,
        unmatched,
    } = merge;
    for miss in unmatched {
        let dropped = !attached.contains(&miss.backend)
            && upstreams.get(&miss.backend).is_some_and(|b| b.no_server);
        if dropped {
            upstreams.remove(&miss.backend);
        }
        let consequence = if dropped {
            format!("; canary backend {:?} is not used", miss.backend)
        } else {
            String::new()
        };
        events.warn(
            &miss.ingress,
            reason::CANARY_WITHOUT_PRIMARY,
            format!(
                "canary {} matches no primary Ingress with the same host, path and pathType{consequence}",
                miss.what
            ),
        );
    }
}

enum Outcome {
    Attached,
    /// The canary's backend is the primary backend of a location: nothing to do.
    IsPrimary,
    NoMatch,
}

/// Tries to attach canary backend `alternative` to the backends of the `locations`
/// that `target` accepts, in location order.
fn attach(
    upstreams: &mut BTreeMap<String, Backend>,
    alternative: &str,
    locations: &[Location],
    sticky: bool,
    target: Target<'_>,
) -> Outcome {
    if !upstreams.contains_key(alternative) {
        // Already dropped.
        return Outcome::NoMatch;
    }
    let mut attached = false;
    for location in locations {
        if location.backend == alternative {
            // ingress-nginx stops here; what was attached so far stays attached.
            return if attached {
                Outcome::Attached
            } else {
                Outcome::IsPrimary
            };
        }
        if !target.matches(location) || location.backend == DEFAULT_UPSTREAM {
            continue;
        }
        let Some(primary) = upstreams.get(&location.backend) else {
            continue;
        };
        if primary.no_server {
            continue;
        }
        if primary
            .alternative_backends
            .iter()
            .any(|a| a == alternative)
        {
            attached = true;
            continue;
        }
        let affinity = primary.session_affinity_config.clone();
        if sticky && let Some(canary) = upstreams.get_mut(alternative) {
            canary.session_affinity_config = affinity;
        }
        if let Some(primary) = upstreams.get_mut(&location.backend) {
            primary.alternative_backends.push(alternative.to_owned());
            attached = true;
        }
    }
    if attached {
        Outcome::Attached
    } else {
        Outcome::NoMatch
    }
}
