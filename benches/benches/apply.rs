#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches: a panic is a failed assertion.
#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Applying a `/configuration/backends` payload of 10,000 backends with 3 endpoints
//! each: decode + validate + compile + swap, as `POST /configuration/backends` does
//! (minus the socket). Target: under 100 ms on the 2-core CI machine.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gangplank_model::{Backend, json};
use gangplank_store::{Store, Update};

fn apply_backends(c: &mut Criterion) {
    let body = gangplank_benches::backends_json(10_000, 3);
    let mut group = c.benchmark_group("apply_backends");
    group.sample_size(20);

    group.bench_function("10k_backends_3_endpoints_fresh_store", |b| {
        b.iter_batched(
            Store::in_memory,
            |store| {
                let backends: Vec<Backend> = json::decode(&body).expect("fixture decodes");
                store
                    .apply(Update::Backends(backends))
                    .expect("fixture applies");
                store
            },
            BatchSize::PerIteration,
        )
    });

    // The steady state: the controller re-posts the same list with one endpoint
    // changed; unchanged backends keep their compiled instance.
    let store = Store::in_memory();
    let first: Vec<Backend> = json::decode(&body).expect("fixture decodes");
    store
        .apply(Update::Backends(first))
        .expect("fixture applies");
    let mut flip = false;
    group.bench_function("10k_backends_3_endpoints_one_changed", |b| {
        b.iter(|| {
            let mut backends: Vec<Backend> = json::decode(&body).expect("fixture decodes");
            flip = !flip;
            if flip {
                backends[0].endpoints[0].port = "9090".into();
            }
            store
                .apply(Update::Backends(backends))
                .expect("fixture applies");
        })
    });
    group.finish();
}

criterion_group!(benches, apply_backends);
criterion_main!(benches);
