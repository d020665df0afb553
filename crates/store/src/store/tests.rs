use super::*;
use gangplank_model::{Endpoint, Location, PathType, Server};

fn backend(name: &str, ip: &str) -> Backend {
    Backend {
        name: name.into(),
        endpoints: vec![Endpoint {
            address: ip.into(),
            port: "80".into(),
        }],
        ..Default::default()
    }
}

fn config(n: usize) -> Configuration {
    let name = format!("b{n}");
    Configuration {
        backends: vec![backend(&name, "10.0.0.1")],
        servers: vec![Server {
            hostname: "example.com".into(),
            locations: vec![Location {
                path: "/".into(),
                path_type: PathType::Prefix,
                backend: name,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn versions_increase_and_lb_becomes_initialized() {
    let store = Store::in_memory();
    assert_eq!(store.load().version, 0);
    assert!(!store.load().dynamic_lb_initialized);
    store
        .apply(Update::General(GeneralConfig::default()))
        .unwrap();
    assert_eq!(store.load().version, 1);
    assert!(
        !store.load().dynamic_lb_initialized,
        "general does not initialise the balancer"
    );
    store
        .apply(Update::Backends(vec![backend("a", "10.0.0.1")]))
        .unwrap();
    let s = store.load();
    assert_eq!(s.version, 2);
    assert!(s.dynamic_lb_initialized);
    assert_eq!(s.backends.get("a").unwrap().upstreams.len(), 1);
}

#[test]
fn invalid_updates_change_nothing() {
    let store = Store::in_memory();
    store
        .apply(Update::Backends(vec![backend("a", "10.0.0.1")]))
        .unwrap();
    let before = store.snapshot();
    let err = store
        .apply(Update::Backends(vec![backend("a", "not-an-ip")]))
        .unwrap_err();
    let ApplyError::Invalid(problems) = err else {
        panic!("expected Invalid")
    };
    assert_eq!(problems.first().unwrap().path, "$[0].endpoints[0].address");
    let after = store.snapshot();
    assert!(Arc::ptr_eq(&before, &after));
}

#[test]
fn partial_updates_share_unchanged_parts() {
    let store = Store::in_memory();
    store
        .apply(Update::Configuration {
            config: config(1),
            if_match: None,
        })
        .unwrap();
    let s1 = store.snapshot();
    store
        .apply(Update::General(GeneralConfig::default()))
        .unwrap();
    let s2 = store.snapshot();
    assert!(Arc::ptr_eq(&s1.source.backends, &s2.source.backends));
    assert!(Arc::ptr_eq(&s1.routes, &s2.routes));
    assert!(Arc::ptr_eq(&s1.backends, &s2.backends));
    // Backends changed: routes are recompiled against the new table.
    store
        .apply(Update::Backends(vec![backend("b1", "10.0.0.9")]))
        .unwrap();
    let s3 = store.snapshot();
    assert!(Arc::ptr_eq(&s2.source.servers, &s3.source.servers));
    let m = s3.routes.route("example.com", "/").unwrap();
    let b = m.location.unwrap().backend.as_ref().unwrap();
    assert_eq!(b.upstreams[0].to_string(), "10.0.0.9:80");
}

#[test]
fn if_match_guards_whole_replacement() {
    let store = Store::in_memory();
    store
        .apply(Update::Configuration {
            config: config(1),
            if_match: Some(0),
        })
        .unwrap();
    let err = store
        .apply(Update::Configuration {
            config: config(2),
            if_match: Some(0),
        })
        .unwrap_err();
    assert!(matches!(
        err,
        ApplyError::VersionMismatch {
            expected: 0,
            current: 1
        }
    ));
    store
        .apply(Update::Configuration {
            config: config(2),
            if_match: Some(1),
        })
        .unwrap();
    assert_eq!(store.load().version, 2);
}

#[test]
fn state_dir_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, outcome) = Store::open(dir.path()).unwrap();
    assert_eq!(outcome, RestoreOutcome::Empty);
    store
        .apply(Update::Configuration {
            config: config(7),
            if_match: None,
        })
        .unwrap();
    store
        .apply(Update::Backends(vec![
            backend("b7", "10.0.0.2"),
            backend("x", "10.0.0.3"),
        ]))
        .unwrap();
    drop(store);

    let (store, outcome) = Store::open(dir.path()).unwrap();
    assert_eq!(outcome, RestoreOutcome::Restored { version: 2 });
    let s = store.load();
    assert!(s.dynamic_lb_initialized);
    assert_eq!(s.source.backends.len(), 2);
    assert!(
        s.routes
            .route("example.com", "/")
            .unwrap()
            .location
            .unwrap()
            .backend
            .is_some()
    );
    drop(s);
    // The next change continues the version sequence.
    store
        .apply(Update::General(GeneralConfig::default()))
        .unwrap();
    assert_eq!(store.load().version, 3);
}

#[test]
fn corrupt_state_is_reported_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    for garbage in [
        &b"{not json"[..],
        br#"{"version":1,"dynamicLbInitialized":true,"configuration":{"backends":[{"name":""}]}}"#,
    ] {
        std::fs::write(dir.path().join(persist::STATE_FILE), garbage).unwrap();
        let (store, outcome) = Store::open(dir.path()).unwrap();
        let RestoreOutcome::Corrupt { moved_to, reason } = outcome else {
            panic!("expected Corrupt")
        };
        assert!(moved_to.exists(), "{reason}");
        assert_eq!(store.load().version, 0);
        assert!(!dir.path().join(persist::STATE_FILE).exists());
    }
}

/// Readers racing a writer only ever see whole snapshots: every location's backend is
/// present in the same snapshot, and versions never go backwards.
#[test]
fn readers_never_see_a_half_applied_change() {
    let store = Arc::new(Store::in_memory());
    store
        .apply(Update::Configuration {
            config: config(0),
            if_match: None,
        })
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The writer starts once both readers run (on a loaded machine a reader thread
    // could otherwise first run after the last write, and see nothing race).
    let started = Arc::new(std::sync::Barrier::new(3));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            let stop = stop.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                let mut reads = 0u64;
                started.wait();
                loop {
                    let done = stop.load(std::sync::atomic::Ordering::Relaxed);
                    let s = store.load();
                    assert!(s.version >= last);
                    last = s.version;
                    let m = s.routes.route("example.com", "/x").unwrap();
                    let b = m
                        .location
                        .unwrap()
                        .backend
                        .as_ref()
                        .expect("backend of the same snapshot");
                    assert_eq!(s.backends.get(b.name()).map(|x| x.name()), Some(b.name()));
                    reads += 1;
                    if done {
                        break;
                    }
                }
                reads
            })
        })
        .collect();
    started.wait();
    for n in 1..=300 {
        store
            .apply(Update::Configuration {
                config: config(n),
                if_match: None,
            })
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(store.load().version, 301);
}
