//! `e2e`: runs the end-to-end scenarios (`e2e/scenarios/*.yaml`, see
//! `gangplank_e2e::scenario`) one after the other and prints a line per scenario and a
//! summary; the exit status is non-zero when any scenario failed.
//!
//! ```text
//! e2e --driver local --gangplank target/debug/gangplank --echo target/debug/echo
//! e2e --driver kind [--filter canary] [e2e/scenarios/canary.yaml ...]
//! ```
//!
//! The local driver starts fresh processes for every scenario; the kind driver uses
//! the cluster of kubectl's current context (environment in
//! `gangplank_e2e::scenario::kind`). Without files, every scenario of
//! `--scenarios DIR` (default: this crate's `scenarios/`) runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gangplank_e2e::scenario::kind::KindCluster;
use gangplank_e2e::scenario::local::{Binaries, LocalCluster};
use gangplank_e2e::scenario::{Outcome, Report, Scenario, runner, schema};

const USAGE: &str = "usage: e2e [--driver local|kind] [--gangplank PATH] [--echo PATH] \
[--scenarios DIR] [--filter SUBSTRING] [--verbose] [SCENARIO.yaml ...]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    Local,
    Kind,
}

#[derive(Debug)]
struct Args {
    driver: Driver,
    gangplank: Option<PathBuf>,
    echo: Option<PathBuf>,
    scenarios: PathBuf,
    filter: Option<String>,
    verbose: bool,
    files: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        driver: Driver::Local,
        gangplank: None,
        echo: None,
        scenarios: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")),
        filter: None,
        verbose: false,
        files: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--driver" => {
                args.driver = match value()?.as_str() {
                    "local" => Driver::Local,
                    "kind" => Driver::Kind,
                    other => return Err(format!("unknown driver {other:?}\n{USAGE}")),
                }
            }
            "--gangplank" => args.gangplank = Some(PathBuf::from(value()?)),
            "--echo" => args.echo = Some(PathBuf::from(value()?)),
            "--scenarios" => args.scenarios = PathBuf::from(value()?),
            "--filter" => args.filter = Some(value()?),
            "--verbose" | "-v" => args.verbose = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if other.starts_with('-') => {
                return Err(format!("unknown flag {other}\n{USAGE}"));
            }
            _ => args.files.push(PathBuf::from(arg)),
        }
    }
    Ok(args)
}

fn load(args: &Args) -> Result<Vec<Scenario>, String> {
    let files = if args.files.is_empty() {
        schema::files_in(&args.scenarios).map_err(|e| e.to_string())?
    } else {
        args.files.clone()
    };
    let mut scenarios = Vec::new();
    for file in files {
        let scenario = schema::load(&file).map_err(|e| e.to_string())?;
        if args
            .filter
            .as_ref()
            .is_none_or(|f| scenario.name.contains(f.as_str()))
        {
            scenarios.push(scenario);
        }
    }
    Ok(scenarios)
}

async fn run_one(args: &Args, scenario: &Scenario) -> Report {
    let started = Instant::now();
    let failed = |why: String| Report {
        name: scenario.name.clone(),
        outcome: Outcome::Fail(why),
        elapsed: started.elapsed(),
        diagnostics: None,
    };
    match args.driver {
        Driver::Local => {
            let (Some(gangplank), Some(echo)) = (&args.gangplank, &args.echo) else {
                return failed("the local driver needs --gangplank and --echo".to_owned());
            };
            let bins = Binaries {
                gangplank: gangplank.clone(),
                echo: echo.clone(),
            };
            match LocalCluster::new(bins).await {
                Ok(mut cluster) => runner::run(&mut cluster, scenario).await,
                Err(e) => failed(e.to_string()),
            }
        }
        Driver::Kind => match KindCluster::new().await {
            Ok(mut cluster) => runner::run(&mut cluster, scenario).await,
            Err(e) => failed(e.to_string()),
        },
    }
}

/// Text on one line, spaces collapsed.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

async fn run_all(args: Args) -> Result<bool, String> {
    let scenarios = load(&args)?;
    if scenarios.is_empty() {
        return Err("no scenario matches".to_owned());
    }
    let started = Instant::now();
    let (mut passed, mut failed, mut known, mut skipped) = (0, 0, 0, 0);
    for scenario in &scenarios {
        if args.verbose {
            println!("RUN  {}: {}", scenario.name, scenario.description.trim());
        }
        let report = run_one(&args, scenario).await;
        let took = seconds(report.elapsed);
        match &report.outcome {
            Outcome::Pass => {
                passed += 1;
                println!("PASS {} ({took})", report.name);
            }
            Outcome::UnexpectedPass => {
                passed += 1;
                println!(
                    "XPASS {} ({took}): passed although marked known_failure ({})",
                    report.name,
                    one_line(scenario.known_failure.as_deref().unwrap_or_default())
                );
            }
            Outcome::Fail(why) => {
                failed += 1;
                println!("FAIL {}: {} ({took})", report.name, one_line(why));
            }
            Outcome::KnownFailure(why) => {
                known += 1;
                println!(
                    "XFAIL {}: {} ({took}); known: {}",
                    report.name,
                    one_line(why),
                    one_line(scenario.known_failure.as_deref().unwrap_or_default())
                );
            }
            Outcome::Skip(why) => {
                skipped += 1;
                println!("SKIP {}: {}", report.name, one_line(why));
            }
        }
        let show = matches!(report.outcome, Outcome::Fail(_))
            || (args.verbose && report.diagnostics.is_some());
        if show && let Some(diagnostics) = &report.diagnostics {
            println!("{}", indent(diagnostics));
        }
    }
    println!(
        "{passed} passed, {failed} failed ({known} known failures, {skipped} skipped) in {}",
        seconds(started.elapsed())
    );
    Ok(failed == 0)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("e2e: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        // Stopping on a signal drops the running cluster, which kills its processes.
        tokio::select! {
            result = run_all(args) => result,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
            _ = term.recv() => Err("terminated".to_owned()),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::FAILURE
        }
    }
}
