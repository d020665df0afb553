//! `cargo xtask <task>`: project automation in plain Rust, so it runs wherever cargo
//! does (no shell scripts, no Makefiles).
//!
//! Tasks:
//! - `test`: the whole test suite (`cargo nextest run --workspace`, or `cargo test`
//!   when nextest is not installed), then the doc tests.
//! - `ci`: what CI runs: `cargo fmt --check`, `cargo clippy --workspace
//!   --all-targets -- -D warnings`, then `test`, the local `e2e` suite and `demo --check`.
//! - `bench [proxy] [--rounds N] [--duration S]`: Gangplank vs nginx side by side
//!   (installs nginx and wrk when missing, builds the release binary); see [`bench`].
//! - `bench criterion [criterion args]`: the criterion benchmarks of `benches/`.
//! - `demo [--release] [--check]`: Gangplank on its embedded default (manifest
//!   directory `examples/quickstart`, local echo upstreams); see [`demo`].
//! - `e2e [--driver local|kind] [--filter X]`: the end-to-end scenario suite; see [`e2e`].
//!   The kind cluster it runs on is set up and torn down by [`kind`].
//! - `manifests [--check]`: `deploy/gangplank.yaml` rendered from the Helm chart
//!   `charts/gangplank` with `helm template`; see [`manifests`].
//! - `dist [--target T] [--tag T] [--no-image]`: release binary with its checksum in
//!   `target/dist/`, and the container image when Docker is available; see [`dist`].

mod bench;
mod demo;
mod dist;
mod e2e;
mod kind;
mod manifests;
mod tools;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "test" => test(),
        "ci" => ci(),
        "bench" => bench_task(rest),
        "demo" => demo::run(rest),
        "e2e" => e2e::run(rest),
        "manifests" => manifests::run(rest),
        "dist" => dist::run(rest),
        "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <test|ci|bench|demo|e2e|manifests|dist> [args]; \
                 cargo xtask bench --help"
            );
            Ok(())
        }
        other => Err(format!("unknown task {other:?}; try `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(mut command: Command) -> Result<(), String> {
    eprintln!("xtask: running {command:?}");
    let status = command.status().map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn test() -> Result<(), String> {
    if has_nextest() {
        let mut c = cargo();
        c.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        run(c)?;
        // nextest does not run doc tests.
        let mut c = cargo();
        c.args(["test", "--workspace", "--doc"]);
        run(c)
    } else {
        let mut c = cargo();
        c.args(["test", "--workspace", "--no-fail-fast"]);
        run(c)
    }
}

fn ci() -> Result<(), String> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--", "--check"]);
    run(c)?;
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    test()?;
    e2e::run(&[])?;
    // The README's first command keeps working.
    demo::run(&["--check".to_owned()])
}

/// `bench criterion [args]` runs the criterion benchmarks; anything else (`bench`,
/// `bench proxy`, flags) runs the proxy comparison.
fn bench_task(rest: &[String]) -> Result<(), String> {
    match rest.split_first() {
        Some((first, criterion_args)) if first == "criterion" => criterion(criterion_args),
        _ => bench::run(rest),
    }
}

fn criterion(rest: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args(["bench", "-p", "gangplank-benches", "--"]);
    c.args(rest);
    run(c)
}
