#![allow(clippy::unwrap_used, clippy::expect_used)] // Benches: a panic is a failed assertion.
#![allow(missing_docs)] // criterion_group! generates undocumented public items.

//! Route matching at 10,000 hosts: host lookup plus location match, the per-request
//! work of the route table (nanoseconds per request).

use criterion::{Criterion, criterion_group, criterion_main};
use gangplank_model::{Backend, Location, PathType, Server};
use gangplank_store::{BackendTable, RouteTable};

fn table(hosts: usize) -> RouteTable {
    let backends: Vec<Backend> = (0..hosts)
        .map(|i| Backend {
            name: format!("ns-svc{i}-80"),
            ..Default::default()
        })
        .collect();
    let servers: Vec<Server> = (0..hosts)
        .map(|i| Server {
            hostname: format!("app{i}.example.com"),
            locations: ["/", "/api", "/api/v2", "/static"]
                .iter()
                .map(|p| Location {
                    path: (*p).into(),
                    path_type: PathType::Prefix,
                    backend: format!("ns-svc{i}-80"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    RouteTable::compile(&servers, &BackendTable::compile(&backends, None))
}

fn routing(c: &mut Criterion) {
    let t = table(10_000);
    let hosts: Vec<String> = (0..1024)
        .map(|i| format!("app{}.example.com", (i * 7919) % 10_000))
        .collect();
    let mut group = c.benchmark_group("route_10k_hosts");
    let mut i = 0;
    group.bench_function("prefix_hit", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            std::hint::black_box(t.route(&hosts[i], "/api/v2/users/42"))
        })
    });
    group.bench_function("unknown_host", |b| {
        b.iter(|| std::hint::black_box(t.route("nope.example.org", "/")))
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
