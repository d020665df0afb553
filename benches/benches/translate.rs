#![allow(clippy::unwrap_used, clippy::expect_used)] // Benches: a panic is a failed assertion.
#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! The controller's whole-state translation at scale: 10,000 Ingresses, 10,000
//! Services and 30,000 endpoints, read through the manifest loader (as
//! `--manifests` does) and translated into a `Configuration`, then serialised as the
//! sync loop does before pushing. Target: under 1 s per translation, and under
//! 300 MB peak RSS for the process holding the objects (printed at the end; read
//! from `/proc/self/status`).

use criterion::{Criterion, criterion_group, criterion_main};
use gangplank_controller::manifests::{ManifestOptions, load_str};
use gangplank_controller::{TranslateOptions, translate};

fn translate_10k(c: &mut Criterion) {
    let list = gangplank_benches::cluster_list_json(10_000, 3);
    let text = String::from_utf8(list).unwrap();
    let loaded = load_str(&text, "cluster.json", &ManifestOptions::default());
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems.first());
    drop(text);
    let state = loaded.state;
    assert_eq!(state.ingresses.len(), 10_000);
    let options = TranslateOptions::default();
    let translation = translate(&state, &options);
    // Each Ingress names its Service's port once by name and once by number: two
    // backends per Service (`<ns>-<svc>-http`, `<ns>-<svc>-80`), plus the default.
    assert_eq!(translation.configuration.backends.len(), 20_001);
    assert!(
        translation.events.is_empty(),
        "{:?}",
        translation.events.first()
    );

    let mut group = c.benchmark_group("translate");
    group.sample_size(10);
    group.bench_function("10k_ingresses_10k_services_30k_endpoints", |b| {
        b.iter(|| translate(&state, &options))
    });
    group.bench_function("10k_ingresses_translate_and_serialise", |b| {
        b.iter(|| {
            let translation = translate(&state, &options);
            serde_json::to_vec(&translation.configuration)
                .unwrap()
                .len()
        })
    });
    group.finish();

    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
    {
        println!("controller memory with 10k Ingresses held: {line}");
    }
}

criterion_group!(benches, translate_10k);
criterion_main!(benches);
