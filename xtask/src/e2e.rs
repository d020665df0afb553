//! `cargo xtask e2e [--driver local|kind] [--kind] [--filter SUBSTRING] [--verbose]
//! [SCENARIO.yaml ...]`: the end-to-end scenario suite (`e2e/scenarios`).
//!
//! Builds `gangplank` and the `echo` and `e2e` binaries (dev profile), then runs
//! `e2e`, which prints a line per scenario and `N passed, N failed`, and fails when a
//! scenario failed.
//!
//! - `--driver local` (the default): fresh local processes per scenario (the API-server
//!   stand-in, `gangplank proxy`, `gangplank controller`, echo upstreams on loopback
//!   addresses); needs nothing but this machine. `cargo xtask ci` runs it.
//! - `--driver kind`: the cluster of kubectl's current context, with the Gangplank
//!   chart already installed and the echo image loaded, as
//!   `.github/workflows/e2e-kind.yml` prepares it (environment variables in
//!   `gangplank_e2e::scenario::kind`).
//! - `--kind`: the same driver on a kind cluster this task prepares and removes
//!   around the suite ([`crate::kind::up`], [`crate::kind::down`]: docker, kind,
//!   kubectl and helm needed; `GANGPLANK_E2E_KEEP=1` keeps the cluster).

use std::path::PathBuf;
use std::process::Command;

/// Runs the suite.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut driver = "local".to_owned();
    let mut lifecycle = false;
    let mut passthrough: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--driver" => {
                driver = it.next().ok_or("--driver needs local or kind")?.clone();
            }
            "--kind" => {
                driver = "kind".to_owned();
                lifecycle = true;
            }
            "--filter" => {
                passthrough.push(arg.clone());
                passthrough.push(it.next().ok_or("--filter needs a value")?.clone());
            }
            "--verbose" | "-v" => passthrough.push(arg.clone()),
            other if other.starts_with("--driver=") => {
                driver = other.trim_start_matches("--driver=").to_owned();
            }
            other if other.starts_with("--filter=") => passthrough.push(other.to_owned()),
            other if other.starts_with('-') => {
                return Err(format!(
                    "unknown e2e flag {other:?} (use --driver local|kind, --kind, --filter X, --verbose)"
                ));
            }
            file => passthrough.push(file.to_owned()),
        }
    }
    if driver != "local" && driver != "kind" {
        return Err(format!("unknown driver {driver:?} (local or kind)"));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or("cannot find the workspace root")?;
    let mut build = crate::cargo();
    build.current_dir(&root).arg("build");
    if driver == "local" {
        build.args(["-p", "gangplank", "--bin", "gangplank", "--bin", "echo"]);
    }
    build.args(["-p", "gangplank-e2e", "--bin", "e2e"]);
    crate::run(build)?;

    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"))
        .join("debug");
    let mut e2e = Command::new(target.join("e2e"));
    e2e.current_dir(&root).args(["--driver", &driver]);
    if driver == "local" {
        e2e.arg("--gangplank")
            .arg(target.join("gangplank"))
            .arg("--echo")
            .arg(target.join("echo"));
    }
    e2e.args(&passthrough);
    if !lifecycle {
        return crate::run(e2e);
    }
    let env = crate::kind::up()?;
    e2e.envs(env.vars());
    let result = crate::run(e2e);
    let down = crate::kind::down(env);
    result.and(down)
}
