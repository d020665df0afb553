use super::*;
use gangplank_model::Backend;
use proptest::prelude::*;

fn loc(path: &str, path_type: PathType, backend: &str) -> Location {
    Location {
        path: path.into(),
        path_type,
        backend: backend.into(),
        ..Default::default()
    }
}

fn server(host: &str, locations: Vec<Location>) -> Server {
    Server {
        hostname: host.into(),
        locations,
        ..Default::default()
    }
}

fn table(servers: Vec<Server>) -> RouteTable {
    let backends: Vec<Backend> = servers
        .iter()
        .flat_map(|s| s.locations.iter().map(|l| l.backend.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|name| Backend {
            name,
            ..Default::default()
        })
        .collect();
    RouteTable::compile(&servers, &BackendTable::compile(&backends, None))
}

fn backend_for<'a>(t: &'a RouteTable, host: &str, path: &str) -> Option<&'a str> {
    t.route(host, path)?
        .location
        .map(|l| l.source.backend.as_str())
}

#[test]
fn host_lookup_exact_wildcard_default() {
    let t = table(vec![
        server("app.example.com", vec![loc("/", PathType::Prefix, "exact")]),
        server("*.example.com", vec![loc("/", PathType::Prefix, "wild")]),
        server("_", vec![loc("/", PathType::Prefix, "default")]),
    ]);
    assert_eq!(backend_for(&t, "app.example.com", "/"), Some("exact"));
    assert_eq!(backend_for(&t, "APP.Example.com:8080", "/"), Some("exact"));
    assert_eq!(backend_for(&t, "app.example.com.", "/"), Some("exact"));
    assert_eq!(backend_for(&t, "x.example.com", "/"), Some("wild"));
    // One label only.
    assert_eq!(backend_for(&t, "a.b.example.com", "/"), Some("default"));
    assert_eq!(backend_for(&t, "example.com", "/"), Some("default"));
    assert_eq!(backend_for(&t, "[::1]:80", "/"), Some("default"));
}

#[test]
fn no_default_server_means_no_route() {
    let t = table(vec![server("a.com", vec![loc("/", PathType::Prefix, "a")])]);
    assert!(t.route("b.com", "/").is_none());
}

/// Part B §6.1 vectors.
#[test]
fn prefix_matches_whole_elements() {
    let t = table(vec![server(
        "h",
        vec![loc("/aaa", PathType::Prefix, "aaa")],
    )]);
    assert_eq!(backend_for(&t, "h", "/aaa"), Some("aaa"));
    assert_eq!(backend_for(&t, "h", "/aaa/"), Some("aaa"));
    assert_eq!(backend_for(&t, "h", "/aaa/cccc"), Some("aaa"));
    assert_eq!(backend_for(&t, "h", "/aaacccc"), None);
    // Trailing slash in the configured path is ignored (Ingress v1 spec).
    let t = table(vec![server(
        "h",
        vec![loc("/foo/", PathType::Prefix, "foo")],
    )]);
    assert_eq!(backend_for(&t, "h", "/foo"), Some("foo"));
    assert_eq!(backend_for(&t, "h", "/foo/x"), Some("foo"));
}

#[test]
fn implementation_specific_is_a_string_prefix() {
    let t = table(vec![server(
        "h",
        vec![loc("/foo", PathType::ImplementationSpecific, "foo")],
    )]);
    assert_eq!(backend_for(&t, "h", "/foobar"), Some("foo"));
    assert_eq!(backend_for(&t, "h", "/fo"), None);
}

#[test]
fn mixed_exact_and_prefix_vectors() {
    let t = table(vec![server(
        "h",
        vec![
            loc("/", PathType::Exact, "exact-root"),
            loc("/", PathType::Prefix, "prefix-root"),
        ],
    )]);
    assert_eq!(backend_for(&t, "h", "/"), Some("exact-root"));
    assert_eq!(backend_for(&t, "h", "/bar"), Some("prefix-root"));

    let t = table(vec![server(
        "h",
        vec![
            loc("/foo", PathType::Exact, "exact"),
            loc("/foo", PathType::Prefix, "prefix"),
            loc("/", PathType::Prefix, "root"),
        ],
    )]);
    assert_eq!(backend_for(&t, "h", "/foo"), Some("exact"));
    assert_eq!(backend_for(&t, "h", "/foo/bar"), Some("prefix"));
    assert_eq!(backend_for(&t, "h", "/foobar"), Some("root"));
}

#[test]
fn longest_prefix_wins() {
    let t = table(vec![server(
        "h",
        vec![
            loc("/", PathType::Prefix, "root"),
            loc("/api", PathType::Prefix, "api"),
            loc("/api/v2", PathType::Prefix, "v2"),
            loc("/api/v2/x", PathType::ImplementationSpecific, "is"),
        ],
    )]);
    assert_eq!(backend_for(&t, "h", "/api/v1"), Some("api"));
    assert_eq!(backend_for(&t, "h", "/api/v2/y"), Some("v2"));
    assert_eq!(backend_for(&t, "h", "/api/v2/xyz"), Some("is"));
    assert_eq!(backend_for(&t, "h", "/other"), Some("root"));
}

fn regex_server(paths: &[&str]) -> RouteTable {
    let mut locations: Vec<Location> = paths.iter().map(|p| loc(p, PathType::Prefix, p)).collect();
    locations[0].rewrite.use_regex = true;
    table(vec![server("h", locations)])
}

/// Part B §6.1 regex vectors.
#[test]
fn regex_mode_vectors() {
    let t = regex_server(&["/id/[0-9]+"]);
    for (path, ok) in [
        ("/id/1", true),
        ("/id/12", true),
        ("/id/123", true),
        ("/id/aaa", false),
        ("/id/123a", true),
    ] {
        assert_eq!(backend_for(&t, "h", path).is_some(), ok, "{path}");
    }
    let t = regex_server(&["/id/[0-9]+$"]);
    assert_eq!(backend_for(&t, "h", "/id/123a"), None);
    let t = regex_server(&["/id/[0-9]{3}$"]);
    assert_eq!(backend_for(&t, "h", "/id/99"), None);
    assert!(backend_for(&t, "h", "/id/123").is_some());
    assert_eq!(backend_for(&t, "h", "/id/9999"), None);
    // Case-insensitive, anchored at the start only; Exact paths become regexes too.
    let t = regex_server(&["/Foo"]);
    assert!(backend_for(&t, "h", "/foo/bar").is_some());
    assert_eq!(backend_for(&t, "h", "/x/foo"), None);
}

#[test]
fn regex_mode_tries_longer_paths_first() {
    let t = regex_server(&["/", "/api", "/api/v2"]);
    assert_eq!(backend_for(&t, "h", "/api/v2/x"), Some("/api/v2"));
    assert_eq!(backend_for(&t, "h", "/api/v1"), Some("/api"));
    assert_eq!(backend_for(&t, "h", "/zzz"), Some("/"));
}

#[test]
fn missing_backend_is_a_match_without_backend() {
    let servers = vec![server("h", vec![loc("/", PathType::Prefix, "gone")])];
    let t = RouteTable::compile(&servers, &BackendTable::default());
    let m = t.route("h", "/x").unwrap();
    assert!(m.location.unwrap().backend.is_none());
}

/// The obviously-correct reference: try every location, keep the best by the rules.
fn reference<'a>(locations: &'a [Location], path: &str) -> Option<&'a str> {
    if let Some(l) = locations
        .iter()
        .find(|l| l.path_type == PathType::Exact && l.path == path)
    {
        return Some(&l.backend);
    }
    let mut best: Option<(usize, usize, &str)> = None; // (match length, -index, backend)
    for (i, l) in locations.iter().enumerate() {
        let len = match l.path_type {
            PathType::Exact => continue,
            PathType::Prefix => {
                let p = l.path.trim_end_matches('/');
                if p.is_empty() {
                    Some(1)
                } else if path == p {
                    // Exact twin: beats every prefix.
                    Some(usize::MAX - i)
                } else if path.starts_with(p) && path.as_bytes()[p.len()] == b'/' {
                    Some(p.len() + 1)
                } else {
                    None
                }
            }
            PathType::ImplementationSpecific => {
                path.starts_with(l.path.as_str()).then_some(l.path.len())
            }
        };
        if let Some(len) = len
            && best.is_none_or(|(b, _, _)| len > b)
        {
            best = Some((len, i, &l.backend));
        }
    }
    best.map(|(_, _, b)| b)
}

fn arb_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["a", "b", "ab", ""], 0..4)
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

proptest! {
    #[test]
    fn plain_matcher_agrees_with_reference(
        specs in proptest::collection::vec((arb_path(), 0u8..3), 1..8),
        requests in proptest::collection::vec(arb_path(), 1..20),
    ) {
        let mut seen = std::collections::HashSet::new();
        let locations: Vec<Location> = specs
            .iter()
            .enumerate()
            .filter(|(_, (p, t))| seen.insert((p.clone(), *t)))
            .map(|(i, (p, t))| {
                let pt = [PathType::Exact, PathType::Prefix, PathType::ImplementationSpecific][*t as usize];
                loc(p, pt, &format!("b{i}"))
            })
            .collect();
        let t = table(vec![server("h", locations.clone())]);
        for r in &requests {
            prop_assert_eq!(backend_for(&t, "h", r), reference(&locations, r), "path {}", r);
        }
    }
}

#[test]
fn passthrough_hosts_name_the_backend_of_their_root_location() {
    let passthrough = |mut s: Server| {
        s.ssl_passthrough = true;
        s
    };
    let t = table(vec![
        passthrough(server(
            "tls.example.com",
            vec![
                loc("/api", PathType::Prefix, "api"),
                loc("/", PathType::Prefix, "root"),
            ],
        )),
        passthrough(server(
            "*.wild.example.com",
            vec![loc("/", PathType::Prefix, "wild")],
        )),
        // No `/` location: nothing to pass through to, TLS is terminated.
        passthrough(server(
            "noroot.example.com",
            vec![loc("/api", PathType::Prefix, "api")],
        )),
        server(
            "plain.example.com",
            vec![loc("/", PathType::Prefix, "plain")],
        ),
        passthrough(server("_", vec![loc("/", PathType::Prefix, "default")])),
    ]);
    let name = |sni: &str| t.passthrough(sni).map(|b| b.name().to_owned());
    assert_eq!(name("tls.example.com").as_deref(), Some("root"));
    assert_eq!(name("TLS.Example.com.").as_deref(), Some("root"));
    assert_eq!(name("a.wild.example.com").as_deref(), Some("wild"));
    assert_eq!(name("noroot.example.com"), None);
    assert_eq!(name("plain.example.com"), None);
    // Unknown names never reach the default server's backend.
    assert_eq!(name("other.example.com"), None);
    assert_eq!(name(""), None);
}
