//! `cargo xtask bench [proxy]`: Gangplank and nginx side by side, under the same load,
//! in front of the same upstream, with the same CPU budget.
//!
//! What it does, in order:
//! 1. installs `nginx` and `wrk` from Debian when they are missing (`apt-get`, as root);
//! 2. builds Gangplank in release mode (`cargo build --release -p gangplank`);
//! 3. starts the upstream: its own nginx (one worker) answering `200 ok` on
//!    127.0.0.1:19001-19003;
//! 4. for each scenario, starts both proxies under test with the same snapshot (100
//!    hosts, 3 locations each, round robin over the 3 upstream ports): Gangplank on
//!    127.0.0.1:18080 (`--workers 1`), nginx on 127.0.0.1:18081 (`worker_processes 1`);
//! 5. warms both up, then runs interleaved `wrk` rounds (G, N, G, N, ...) and measures
//!    throughput, latency, CPU seconds per 1000 requests and peak RSS;
//! 6. prints a markdown table and the Gangplank/nginx ratios, per scenario: the ratio of
//!    the two medians, and the median of the per-round ratios (each Gangplank round
//!    against the nginx round right after it, which saw about the same host).
//!
//! Scenarios:
//! - `http1-keepalive`: plain HTTP/1.1, client keep-alive;
//! - `http1-policies`: the same load on a location with a realistic mix of request
//!   policies (issue 5): `denylist-source-range`, `allowlist-source-range`, `limit-rps`
//!   (high enough never to refuse) and `enable-cors` with an origin list, `wrk` sending
//!   a matching `Origin`. nginx gets ingress-nginx's equivalent directives (`deny` /
//!   `allow`, `limit_req` with `burst` = rps x multiplier `nodelay`, the CORS headers
//!   with `add_header ... always` for a matching origin). Besides the Gangplank/nginx
//!   ratio, the report gives Gangplank's own policies/plain ratio;
//! - `tls-keepalive`: HTTP/1.1 over TLS, client keep-alive. One self-signed ECDSA P-256
//!   certificate for `*.example.com` is generated with the `openssl` CLI into the
//!   temporary directory; nginx gets it as `ssl_certificate` (listening with `ssl` on
//!   127.0.0.1:18443, ingress-nginx's TLS defaults), Gangplank in the snapshot's
//!   `sslConfiguration`, mapped to `*.example.com` (`--https-listen 127.0.0.1:18444`).
//!   `wrk` loads `https://app42.example.com:<port>/api/x`, so its SNI is the host name
//!   (wrk sends the URL's host as SNI); a wrk Lua script resolves that name to
//!   127.0.0.1 instead of asking DNS or `/etc/hosts`. Before measuring, `openssl
//!   s_client` checks each proxy serves the certificate, verified for the host name.
//!
//! CPU arrangement: the proxy under test runs on the first allowed CPU, the upstream
//! and `wrk` share the second, so each proxy gets exactly one core.
//!
//! Everything listens on 127.0.0.1 only. Every process started here is stopped, and
//! the temporary directory removed, when the benchmark ends or fails (see [`Lab`]).
//! An interrupt (Ctrl-C) reaches the whole process group, so the children stop too;
//! a temporary directory left behind that way is removed by the next run.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Ports of the shared upstream.
const UPSTREAM_PORTS: [u16; 3] = [19001, 19002, 19003];
/// The upstream's `stub_status` port: its accepted-connection counter shows whether a
/// proxy reuses upstream connections.
const UPSTREAM_STATUS_PORT: u16 = 19000;
/// Port of Gangplank under test.
const GANGPLANK_PORT: u16 = 18080;
/// Port of nginx under test.
const NGINX_PORT: u16 = 18081;
/// Port of Gangplank's metrics listener, when the binary has one.
const GANGPLANK_METRICS_PORT: u16 = 18082;
/// Port of Gangplank's TLS listener, when the binary has one.
const GANGPLANK_TLS_PORT: u16 = 18444;
/// Port of nginx's TLS listener (the `tls-keepalive` scenario).
const NGINX_TLS_PORT: u16 = 18443;
/// Hosts in the snapshot (`app0.example.com` .. `app99.example.com`).
const HOSTS: usize = 100;
/// Locations of each host (all `Prefix`).
const LOCATIONS: [&str; 3] = ["/", "/api", "/static"];
/// The host `wrk` asks for.
const LOAD_HOST: &str = "app42.example.com";
/// The path `wrk` asks for (matches the `/api` location).
const LOAD_PATH: &str = "/api/x";
/// The origin the policies scenario's CORS policy allows, and `wrk` sends.
const LOAD_ORIGIN: &str = "https://app.example.com";
/// That origin as a header line.
const LOAD_ORIGIN_HEADER: &str = "Origin: https://app.example.com";
/// Rate limit of the policies scenario (`limit-rps`; x5 burst): never reached by one
/// `wrk` client on one core, so the limiter runs on every request without refusing.
const POLICY_RPS: u32 = 100_000;
/// `wrk` connections (`-c`).
const CONNECTIONS: u32 = 64;
/// The name on the benchmark certificate (its CN and only SAN).
const CERT_NAME: &str = "*.example.com";
/// UID of the benchmark certificate in Gangplank's snapshot.
const CERT_UID: &str = "bench-wildcard-example-com";
/// ingress-nginx's default `ssl-ciphers` (TLS 1.2; TLS 1.3 suites are OpenSSL's).
const INGRESS_SSL_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
/// File name of the wrk script that resolves the URL's host name to 127.0.0.1.
const RESOLVE_SCRIPT: &str = "resolve-to-loopback.lua";
/// That script: wrk resolves the URL's host through `wrk.resolve` (its own Lua
/// function), after loading the script, and sends the URL's host as SNI. Without
/// `request` and `response` functions wrk keeps its static, pre-built request.
const RESOLVE_SCRIPT_TEXT: &str = "-- The URL's host name (the SNI) connects to 127.0.0.1.
function wrk.resolve(host, service)
   wrk.addrs = wrk.lookup(\"127.0.0.1\", service)
end
";
/// How long a started server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopped process may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Prefix of the temporary directory (`<tmp>/gangplank-bench.<pid>`).
const TEMP_PREFIX: &str = "gangplank-bench.";

/// Usage of `cargo xtask bench`.
const USAGE: &str = "usage: cargo xtask bench [proxy] [--rounds N] [--duration SECONDS] [--warmup SECONDS] [--no-build]
       cargo xtask bench criterion [criterion args]

  proxy (default)  Gangplank vs nginx, same upstream, same CPU budget, wrk load
  criterion        the criterion micro-benchmarks of benches/
  --rounds N       measured rounds per proxy, interleaved (default 5)
  --duration S     seconds per round (default 10)
  --warmup S       seconds of warm-up per proxy (default 2)
  --no-build       use the existing target/release/gangplank";

/// Command-line options of the proxy comparison.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    /// Measured rounds per proxy. Five by default: the shared host's speed moves by
    /// 10-20 % over tens of seconds, and a median of three rounds followed it.
    rounds: usize,
    /// Seconds per round.
    duration: u32,
    /// Seconds of warm-up per proxy.
    warmup: u32,
    /// Build Gangplank first (off with `--no-build`).
    build: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rounds: 5,
            duration: 10,
            warmup: 2,
            build: true,
        }
    }
}

/// Runs the proxy comparison; `args` follow `bench` or `bench proxy`.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some(options) = parse_options(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let cpus = pick_cpus()?;
    let tools = ensure_tools()?;
    let gangplank = build_gangplank(options.build)?;
    let features = GangplankFeatures::detect(&gangplank)?;
    check_ports_free()?;
    remove_stale_temp_dirs();

    let mut lab = Lab::new()?;
    println!(
        "xtask: CPU arrangement: proxy under test pinned to CPU {} (nginx worker_processes 1, \
         gangplank --workers 1); upstream nginx (1 worker) and wrk pinned to CPU {}",
        cpus.proxy, cpus.load
    );
    start_upstream(&mut lab, &tools, cpus.load)?;

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for scenario in Scenario::ALL {
        if let Some(reason) = scenario.skip_reason(features) {
            println!("xtask: scenario {}: skipped: {reason}", scenario.name());
            notes.push(format!("{}: skipped: {reason}", scenario.name()));
            continue;
        }
        let setup = Setup {
            tools: &tools,
            gangplank: &gangplank,
            features,
            cpus,
            options: &options,
        };
        let outcome = run_scenario(&mut lab, &setup, scenario)?;
        rows.extend(outcome.rows);
        notes.extend(outcome.notes);
    }
    lab.stop_all();
    print_report(&rows, &notes, &options, cpus);
    Ok(())
}

/// Parses the flags; `None` means help was asked for.
fn parse_options(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "proxy" => {}
            "--rounds" => options.rounds = parse_count(value("--rounds")?)?,
            "--duration" => options.duration = parse_seconds(value("--duration")?)?,
            "--warmup" => options.warmup = parse_seconds(value("--warmup")?)?,
            "--no-build" => options.build = false,
            "-h" | "--help" | "help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Some(options))
}

/// A positive count such as `3`.
fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

/// A positive number of seconds such as `10` or `10s`.
fn parse_seconds(text: &str) -> Result<u32, String> {
    match text.trim_end_matches('s').parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

// ---------------------------------------------------------------------------------
// Scenarios and proxies
// ---------------------------------------------------------------------------------

/// One load shape, run against both proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Plain HTTP/1.1 with client keep-alive.
    Http1Keepalive,
    /// HTTPS (HTTP/1.1 over TLS, SNI `app42.example.com`) with client keep-alive.
    Tls,
    /// Plain HTTP/1.1 with client keep-alive on a location with request policies.
    Policies,
}

impl Scenario {
    /// All scenarios, in report order.
    const ALL: [Scenario; 3] = [Scenario::Http1Keepalive, Scenario::Tls, Scenario::Policies];

    /// Name in the report.
    fn name(self) -> &'static str {
        match self {
            Scenario::Http1Keepalive => "http1-keepalive",
            Scenario::Tls => "tls-keepalive",
            Scenario::Policies => "http1-policies",
        }
    }

    /// Why the scenario cannot run with this Gangplank binary, if it cannot.
    fn skip_reason(self, features: GangplankFeatures) -> Option<&'static str> {
        match self {
            Scenario::Http1Keepalive | Scenario::Policies => None,
            Scenario::Tls if !features.https_listen => {
                Some("this Gangplank binary has no TLS listener (no --https-listen)")
            }
            Scenario::Tls => None,
        }
    }

    /// True when the scenario loads the proxies over TLS.
    fn is_tls(self) -> bool {
        self == Scenario::Tls
    }

    /// True when the load location carries the request policies.
    fn has_policies(self) -> bool {
        self == Scenario::Policies
    }

    /// What `wrk` loads on `target`. Over TLS the URL names [`LOAD_HOST`], so wrk
    /// sends it as SNI, and `resolve_script` (see [`RESOLVE_SCRIPT_TEXT`]) connects
    /// that name to 127.0.0.1.
    fn wrk_target(self, target: &Target, resolve_script: &Path) -> WrkTarget {
        match self {
            Scenario::Http1Keepalive => WrkTarget {
                url: format!("http://127.0.0.1:{}{LOAD_PATH}", target.port),
                script: None,
                origin: false,
            },
            Scenario::Tls => WrkTarget {
                url: format!("https://{LOAD_HOST}:{}{LOAD_PATH}", target.tls_port),
                script: Some(resolve_script.to_path_buf()),
                origin: false,
            },
            Scenario::Policies => WrkTarget {
                url: format!("http://127.0.0.1:{}{LOAD_PATH}", target.port),
                script: None,
                origin: true,
            },
        }
    }
}

/// What a Gangplank binary supports, from `gangplank proxy --help` (the benchmark
/// also runs older binaries, with `--no-build`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GangplankFeatures {
    /// `--access-log` (turned off: nginx logs nothing either).
    access_log: bool,
    /// `--metrics-listen` (moved to loopback from `0.0.0.0`).
    metrics_listen: bool,
    /// `--https-listen` (moved to loopback from `0.0.0.0:443`; the TLS scenario).
    https_listen: bool,
}

impl GangplankFeatures {
    /// Reads the flags of `binary proxy --help`.
    fn detect(binary: &Path) -> Result<GangplankFeatures, String> {
        let help = Command::new(binary)
            .args(["proxy", "--help"])
            .output()
            .map_err(|e| format!("running {} proxy --help: {e}", binary.display()))?;
        Ok(GangplankFeatures::from_help(&String::from_utf8_lossy(
            &help.stdout,
        )))
    }

    /// The features a `proxy --help` text shows.
    fn from_help(help: &str) -> GangplankFeatures {
        GangplankFeatures {
            access_log: help.contains("--access-log"),
            metrics_listen: help.contains("--metrics-listen"),
            https_listen: help.contains("--https-listen"),
        }
    }
}

/// A proxy under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyKind {
    /// Gangplank (`--workers 1`).
    Gangplank,
    /// nginx (`worker_processes 1`).
    Nginx,
}

impl ProxyKind {
    /// Name in the report.
    fn name(self) -> &'static str {
        match self {
            ProxyKind::Gangplank => "gangplank",
            ProxyKind::Nginx => "nginx",
        }
    }
}

/// A running proxy under test.
#[derive(Debug, Clone, Copy)]
struct Target {
    /// Which proxy.
    kind: ProxyKind,
    /// Its plain HTTP port on 127.0.0.1.
    port: u16,
    /// Its TLS port on 127.0.0.1 (listening in the TLS scenario; Gangplank's always,
    /// when the binary has a TLS listener).
    tls_port: u16,
    /// The process started (Gangplank, or the nginx master).
    pid: u32,
}

impl Target {
    /// Processes whose CPU time counts: Gangplank, or the nginx master and workers.
    fn cpu_pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        if self.kind == ProxyKind::Nginx {
            pids.extend(children_of(self.pid));
        }
        pids
    }

    /// Processes whose peak RSS counts: Gangplank, or the nginx workers.
    fn rss_pids(&self) -> Vec<u32> {
        match self.kind {
            ProxyKind::Gangplank => vec![self.pid],
            ProxyKind::Nginx => children_of(self.pid),
        }
    }
}

/// What every scenario needs.
struct Setup<'a> {
    /// External programs.
    tools: &'a Tools,
    /// The Gangplank binary.
    gangplank: &'a Path,
    /// What that binary supports.
    features: GangplankFeatures,
    /// CPU pinning.
    cpus: Cpus,
    /// Command-line options.
    options: &'a Options,
}

/// Results of one proxy in one scenario.
#[derive(Debug, Clone)]
struct Row {
    /// Scenario name.
    scenario: &'static str,
    /// Which proxy.
    proxy: ProxyKind,
    /// One sample per round.
    samples: Vec<Sample>,
}

/// Measurements of one round.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// `wrk` results.
    wrk: WrkResult,
    /// CPU seconds used by the proxy during the round.
    cpu_seconds: f64,
    /// Peak RSS of the proxy so far, in KiB.
    peak_rss_kib: u64,
    /// Connections the upstream accepted during the round.
    upstream_connections: u64,
}

impl Sample {
    /// CPU seconds per 1000 requests.
    fn cpu_per_1000(&self) -> f64 {
        if self.wrk.requests == 0 {
            return f64::NAN;
        }
        self.cpu_seconds * 1000.0 / self.wrk.requests as f64
    }

    /// New upstream connections per 1000 requests (about 0 with working keep-alive).
    fn upstream_connections_per_1000(&self) -> f64 {
        if self.wrk.requests == 0 {
            return f64::NAN;
        }
        self.upstream_connections as f64 * 1000.0 / self.wrk.requests as f64
    }
}

/// Rows of one scenario, and what to say about it under the table.
struct ScenarioOutcome {
    /// Gangplank's row, then nginx's.
    rows: Vec<Row>,
    /// Remarks for the report (the negotiated TLS parameters).
    notes: Vec<String>,
}

/// Starts both proxies, warms them up and runs the interleaved rounds.
fn run_scenario(
    lab: &mut Lab,
    setup: &Setup<'_>,
    scenario: Scenario,
) -> Result<ScenarioOutcome, String> {
    println!("xtask: scenario {}: starting the proxies", scenario.name());
    let tls = if scenario.is_tls() {
        Some(prepare_tls(lab, setup.tools)?)
    } else {
        None
    };
    let policies = scenario.has_policies();
    let gangplank = start_gangplank(lab, setup, tls.as_ref(), policies)?;
    let nginx = start_nginx_proxy(lab, setup.tools, setup.cpus.proxy, tls.as_ref(), policies)?;
    let targets = [gangplank, nginx];
    let mut notes = Vec::new();
    for target in &targets {
        let checked = match &tls {
            None if policies => probe_policies(target.port),
            None => probe(target.port, LOAD_HOST, LOAD_PATH),
            Some(tls) => probe_tls(setup.tools, tls, target.tls_port).map(|session| {
                let note = format!("{}: {} {session}", scenario.name(), target.kind.name());
                println!("xtask: {note}");
                notes.push(note);
            }),
        };
        checked.map_err(|e| format!("{} does not proxy correctly: {e}", target.kind.name()))?;
    }
    let resolve_script = lab.path(RESOLVE_SCRIPT);
    let options = setup.options;
    for target in &targets {
        println!(
            "xtask: warming up {} for {} s",
            target.kind.name(),
            options.warmup
        );
        run_wrk(
            lab,
            setup.tools,
            setup.cpus.load,
            &scenario.wrk_target(target, &resolve_script),
            options.warmup,
        )?;
    }
    let mut rows: Vec<Row> = targets
        .iter()
        .map(|t| Row {
            scenario: scenario.name(),
            proxy: t.kind,
            samples: Vec::new(),
        })
        .collect();
    for round in 1..=options.rounds {
        for (target, row) in targets.iter().zip(rows.iter_mut()) {
            let sample = measure_round(lab, setup, scenario, target)?;
            println!(
                "xtask: round {round}/{} {:<9} {}",
                options.rounds,
                target.kind.name(),
                describe(&sample, options.duration)
            );
            row.samples.push(sample);
        }
    }
    lab.stop(gangplank.pid);
    lab.stop(nginx.pid);
    Ok(ScenarioOutcome { rows, notes })
}

/// One `wrk` round against `target`, with the proxy's CPU time around it.
fn measure_round(
    lab: &mut Lab,
    setup: &Setup<'_>,
    scenario: Scenario,
    target: &Target,
) -> Result<Sample, String> {
    lab.check_running(target.pid)?;
    let pids = target.cpu_pids();
    let accepted_before = upstream_accepted()?;
    let before = cpu_ticks(&pids)?;
    let wrk = run_wrk(
        lab,
        setup.tools,
        setup.cpus.load,
        &scenario.wrk_target(target, &lab.path(RESOLVE_SCRIPT)),
        setup.options.duration,
    )?;
    // A proxy that died under load fails here, with its log, not on a missing /proc entry.
    lab.check_running(target.pid)?;
    let after = cpu_ticks(&pids)?;
    let accepted_after = upstream_accepted()?;
    let peak_rss_kib = target
        .rss_pids()
        .iter()
        .map(|&pid| peak_rss_kib(pid))
        .sum::<Result<u64, String>>()?;
    Ok(Sample {
        wrk,
        cpu_seconds: after.saturating_sub(before) as f64 / clock_ticks_per_second(),
        peak_rss_kib,
        // The second status request is itself one accepted connection.
        upstream_connections: accepted_after.saturating_sub(accepted_before + 1),
    })
}

/// One line about a round, for progress output.
fn describe(sample: &Sample, duration: u32) -> String {
    format!(
        "{:>9.0} req/s  p50 {}  p99 {}  CPU {:.4} s/1000 req ({:.0}% of a core)  \
         upstream conns {:.1}/1000 req  errors {}",
        sample.wrk.requests_per_second,
        format_latency(sample.wrk.p50_us),
        format_latency(sample.wrk.p99_us),
        sample.cpu_per_1000(),
        sample.cpu_seconds * 100.0 / f64::from(duration),
        sample.upstream_connections_per_1000(),
        sample.wrk.errors(),
    )
}

// ---------------------------------------------------------------------------------
// Tools: install, build
// ---------------------------------------------------------------------------------

/// External programs the benchmark runs.
#[derive(Debug, Clone)]
struct Tools {
    /// `nginx`.
    nginx: PathBuf,
    /// `wrk`.
    wrk: PathBuf,
    /// `taskset` (util-linux).
    taskset: PathBuf,
    /// `openssl` (the benchmark certificate, the TLS probe).
    openssl: PathBuf,
}

/// Finds nginx, wrk, taskset and openssl, installing the missing ones from Debian.
fn ensure_tools() -> Result<Tools, String> {
    let mut packages = Vec::new();
    if find_program("nginx").is_none() {
        // `nginx` first: on Debian 12 `nginx-light` is only a transitional package.
        packages.push(&["nginx", "nginx-light"][..]);
    }
    if find_program("wrk").is_none() {
        packages.push(&["wrk"][..]);
    }
    if find_program("taskset").is_none() {
        packages.push(&["util-linux"][..]);
    }
    if find_program("openssl").is_none() {
        packages.push(&["openssl"][..]);
    }
    if !packages.is_empty() {
        install_packages(&packages)?;
    }
    let require = |name: &str| {
        find_program(name).ok_or_else(|| format!("{name} is still missing after installation"))
    };
    let tools = Tools {
        nginx: require("nginx")?,
        wrk: require("wrk")?,
        taskset: require("taskset")?,
        openssl: require("openssl")?,
    };
    if let Ok(out) = Command::new(&tools.nginx).arg("-v").output() {
        let version = String::from_utf8_lossy(&out.stderr);
        println!("xtask: using {}", version.trim());
    }
    Ok(tools)
}

/// Finds `name` on `PATH` or in the sbin directories (nginx lives in /usr/sbin).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Installs one package of each group (the first with an install candidate) with apt.
fn install_packages(groups: &[&[&str]]) -> Result<(), String> {
    let wanted: Vec<&str> = groups.iter().filter_map(|g| g.first().copied()).collect();
    if !is_root() {
        return Err(format!(
            "missing programs; install them first: sudo apt-get install -y {}",
            wanted.join(" ")
        ));
    }
    if find_program("apt-get").is_none() {
        return Err(format!(
            "missing programs and no apt-get; install {} by hand",
            wanted.join(" ")
        ));
    }
    let mut chosen = choose_packages(groups);
    if chosen.is_err() {
        println!("xtask: refreshing the package lists (apt-get update)");
        let mut update = Command::new("apt-get");
        update.args(["update", "-q"]);
        super::run(update)?;
        chosen = choose_packages(groups);
    }
    let chosen = chosen?;
    println!("xtask: installing {}", chosen.join(" "));
    let mut install = Command::new("apt-get");
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&chosen);
    super::run(install)
}

/// The first package of each group that apt can install.
fn choose_packages<'a>(groups: &[&[&'a str]]) -> Result<Vec<&'a str>, String> {
    groups
        .iter()
        .map(|group| {
            group
                .iter()
                .copied()
                .find(|package| has_install_candidate(package))
                .ok_or_else(|| format!("apt has none of {group:?}"))
        })
        .collect()
}

/// True when `apt-cache policy` shows a candidate version for `package`.
fn has_install_candidate(package: &str) -> bool {
    let Ok(out) = Command::new("apt-cache").args(["policy", package]).output() else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout).lines().any(|line| {
        line.trim()
            .strip_prefix("Candidate:")
            .is_some_and(|v| v.trim() != "(none)")
    })
}

/// True when running as root (effective uid 0, from /proc/self/status).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Builds Gangplank in release mode and returns the binary's path.
fn build_gangplank(build: bool) -> Result<PathBuf, String> {
    let root = workspace_root()?;
    if build {
        println!(
            "xtask: building Gangplank in release mode (fat LTO: several minutes on a small machine)"
        );
        let started = Instant::now();
        let mut c = super::cargo();
        c.current_dir(&root)
            .args(["build", "--release", "-p", "gangplank"]);
        super::run(c)?;
        println!(
            "xtask: release build done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target_dir.join("release").join("gangplank");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} does not exist; build it first",
            binary.display()
        ))
    }
}

/// The workspace root (the parent of xtask/).
fn workspace_root() -> Result<PathBuf, String> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "xtask has no parent directory".to_owned())
}

// ---------------------------------------------------------------------------------
// CPUs and ports
// ---------------------------------------------------------------------------------

/// Which CPU runs what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cpus {
    /// The proxy under test.
    proxy: u32,
    /// The upstream and `wrk`.
    load: u32,
}

/// The first two CPUs this process may run on.
fn pick_cpus() -> Result<Cpus, String> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .ok_or("no Cpus_allowed_list in /proc/self/status")?;
    let cpus = parse_cpu_list(list)?;
    match cpus[..] {
        [proxy, load, ..] => Ok(Cpus { proxy, load }),
        _ => Err(format!(
            "the benchmark needs 2 CPUs (one for the proxy, one for upstream and wrk); \
             this process may only use {list:?}"
        )),
    }
}

/// Parses a kernel CPU list such as `0-3,6`.
fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("bad CPU list {text:?}");
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: u32 = first.parse().map_err(|_| bad())?;
        let last: u32 = last.parse().map_err(|_| bad())?;
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

/// Fails early, with a clear message, when a port the benchmark needs is taken.
fn check_ports_free() -> Result<(), String> {
    let ours = [
        UPSTREAM_STATUS_PORT,
        GANGPLANK_PORT,
        NGINX_PORT,
        GANGPLANK_METRICS_PORT,
        GANGPLANK_TLS_PORT,
        NGINX_TLS_PORT,
    ];
    for port in UPSTREAM_PORTS.into_iter().chain(ours) {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .map_err(|e| format!("127.0.0.1:{port} is not free: {e}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The lab: temporary directory and child processes
// ---------------------------------------------------------------------------------

/// The temporary directory and every process started in it; dropping it stops the
/// processes and removes the directory, also on error paths.
struct Lab {
    /// Temporary directory (configs, logs, sockets).
    dir: PathBuf,
    /// Running processes, in start order.
    processes: Vec<Process>,
}

/// A child process and where its output goes.
struct Process {
    /// Name for messages.
    name: String,
    /// The child.
    child: Child,
    /// Its stdout and stderr.
    log: PathBuf,
}

impl Lab {
    /// Creates a fresh temporary directory.
    fn new() -> Result<Lab, String> {
        let dir = std::env::temp_dir().join(format!("{TEMP_PREFIX}{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
        }
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(Lab {
            dir,
            processes: Vec::new(),
        })
    }

    /// A path inside the temporary directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts `command` with its output in `<name>.log`; returns the pid.
    fn spawn(&mut self, name: &str, mut command: Command) -> Result<u32, String> {
        let log = self.path(&format!("{name}.log"));
        let out = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command
            .spawn()
            .map_err(|e| format!("starting {command:?}: {e}"))?;
        let pid = child.id();
        self.processes.push(Process {
            name: name.to_owned(),
            child,
            log,
        });
        Ok(pid)
    }

    /// Waits until `port` accepts connections, failing if process `pid` exits first.
    fn wait_for_port(&mut self, pid: u32, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            self.check_running(pid)?;
            if Instant::now() > deadline {
                return Err(format!("nothing listens on {addr} after {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails, with the end of its log, if process `pid` has exited.
    fn check_running(&mut self, pid: u32) -> Result<(), String> {
        let Some(process) = self.processes.iter_mut().find(|p| p.child.id() == pid) else {
            return Err(format!("process {pid} is not one of ours"));
        };
        match process.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited with {status}:\n{}",
                process.name,
                log_tail(&process.log)
            )),
            Err(e) => Err(format!("{}: {e}", process.name)),
        }
    }

    /// Stops process `pid` (and its children) and forgets it.
    fn stop(&mut self, pid: u32) {
        if let Some(index) = self.processes.iter().position(|p| p.child.id() == pid) {
            let process = self.processes.remove(index);
            stop_process(process);
        }
    }

    /// Stops every process, the last started first.
    fn stop_all(&mut self) {
        while let Some(process) = self.processes.pop() {
            stop_process(process);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_all();
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("xtask: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; children (nginx workers) included.
fn stop_process(mut process: Process) {
    let pid = process.child.id();
    let children = children_of(pid);
    signal(pid, "TERM");
    let deadline = Instant::now() + STOP_TIMEOUT;
    let exited = loop {
        match process.child.try_wait() {
            Ok(Some(_)) | Err(_) => break true,
            Ok(None) if Instant::now() > deadline => break false,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if !exited {
        eprintln!("xtask: {} did not stop in time; killing it", process.name);
        let _ = process.child.kill();
        let _ = process.child.wait();
    }
    // Workers normally exit with their master; make sure of it.
    for child in children {
        if Path::new(&format!("/proc/{child}")).exists() {
            signal(child, "KILL");
        }
    }
}

/// Sends a signal with kill(1) (std can only send SIGKILL to its own children).
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The last lines of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Removes temporary directories of earlier runs whose process is gone (interrupted).
fn remove_stale_temp_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

// ---------------------------------------------------------------------------------
// Starting the servers
// ---------------------------------------------------------------------------------

/// Starts the upstream nginx on [`UPSTREAM_PORTS`], pinned to `cpu`.
fn start_upstream(lab: &mut Lab, tools: &Tools, cpu: u32) -> Result<(), String> {
    let prefix = lab.path("upstream");
    let conf = upstream_nginx_conf(&prefix);
    let pid = start_nginx(lab, tools, cpu, "upstream", &conf)?;
    for port in UPSTREAM_PORTS {
        lab.wait_for_port(pid, port)?;
        probe(port, "upstream", "/").map_err(|e| format!("the upstream does not answer: {e}"))?;
    }
    println!(
        "xtask: upstream nginx (1 worker) on 127.0.0.1:{}-{}",
        UPSTREAM_PORTS[0],
        UPSTREAM_PORTS[UPSTREAM_PORTS.len() - 1]
    );
    Ok(())
}

/// Starts nginx under test on [`NGINX_PORT`] (and, with `tls`, on [`NGINX_TLS_PORT`]),
/// pinned to `cpu`.
fn start_nginx_proxy(
    lab: &mut Lab,
    tools: &Tools,
    cpu: u32,
    tls: Option<&TlsFiles>,
    policies: bool,
) -> Result<Target, String> {
    let prefix = lab.path("nginx");
    let conf = proxy_nginx_conf(&prefix, tls, policies);
    let pid = start_nginx(lab, tools, cpu, "nginx", &conf)?;
    lab.wait_for_port(pid, NGINX_PORT)?;
    if tls.is_some() {
        lab.wait_for_port(pid, NGINX_TLS_PORT)?;
    }
    Ok(Target {
        kind: ProxyKind::Nginx,
        port: NGINX_PORT,
        tls_port: NGINX_TLS_PORT,
        pid,
    })
}

/// Writes `conf` under `<lab>/<name>/`, checks it with `nginx -t`, starts nginx in the
/// foreground pinned to `cpu`; returns the master's pid.
fn start_nginx(
    lab: &mut Lab,
    tools: &Tools,
    cpu: u32,
    name: &str,
    conf: &str,
) -> Result<u32, String> {
    let prefix = lab.path(name);
    fs::create_dir_all(&prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    let conf_path = prefix.join("nginx.conf");
    fs::write(&conf_path, conf).map_err(|e| format!("writing {}: {e}", conf_path.display()))?;
    let nginx_args = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "-p".into(),
            format!("{}/", prefix.display()),
            "-c".into(),
            conf_path.display().to_string(),
            "-e".into(),
            prefix.join("error.log").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let test = Command::new(&tools.nginx)
        .args(nginx_args(&["-t", "-q"]))
        .output()
        .map_err(|e| format!("running {}: {e}", tools.nginx.display()))?;
    if !test.status.success() {
        return Err(format!(
            "nginx rejects {}:\n{}",
            conf_path.display(),
            String::from_utf8_lossy(&test.stderr)
        ));
    }
    let mut command = Command::new(&tools.taskset);
    command
        .args(["-c", &cpu.to_string()])
        .arg(&tools.nginx)
        .args(nginx_args(&[]));
    lab.spawn(name, command)
}

/// Starts Gangplank on [`GANGPLANK_PORT`] (and [`GANGPLANK_TLS_PORT`], when the binary
/// has a TLS listener) and posts the snapshot to it, with `tls`'s certificate if any.
fn start_gangplank(
    lab: &mut Lab,
    setup: &Setup<'_>,
    tls: Option<&TlsFiles>,
    policies: bool,
) -> Result<Target, String> {
    let socket = lab.path("gangplank-admin.sock");
    let mut command = Command::new(&setup.tools.taskset);
    command
        .args(["-c", &setup.cpus.proxy.to_string()])
        .arg(setup.gangplank)
        .args(["proxy", "--http-listen"])
        .arg(format!("127.0.0.1:{GANGPLANK_PORT}"))
        .arg("--admin-socket")
        .arg(&socket)
        .args(["--workers", "1", "--shutdown-grace", "1"])
        .args(optional_gangplank_flags(setup.features));
    let pid = lab.spawn("gangplank", command)?;
    lab.wait_for_port(pid, GANGPLANK_PORT)?;
    if setup.features.https_listen {
        lab.wait_for_port(pid, GANGPLANK_TLS_PORT)?;
    }
    let deadline = Instant::now() + START_TIMEOUT;
    while !socket.exists() {
        lab.check_running(pid)?;
        if Instant::now() > deadline {
            return Err(format!("no admin socket at {}", socket.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    post_configuration(&socket, &gangplank_configuration(tls, policies))?;
    Ok(Target {
        kind: ProxyKind::Gangplank,
        port: GANGPLANK_PORT,
        tls_port: GANGPLANK_TLS_PORT,
        pid,
    })
}

/// Flags for features newer binaries have: access log off (nginx logs nothing
/// either), the metrics listener on loopback instead of `0.0.0.0`, and the TLS
/// listener on loopback instead of `0.0.0.0:443` (in every scenario: an idle TLS
/// listener costs nothing, and a binary always has one).
fn optional_gangplank_flags(features: GangplankFeatures) -> Vec<String> {
    let mut flags = Vec::new();
    if features.access_log {
        flags.extend(["--access-log".to_owned(), "false".to_owned()]);
    }
    if features.metrics_listen {
        flags.extend([
            "--metrics-listen".to_owned(),
            format!("127.0.0.1:{GANGPLANK_METRICS_PORT}"),
        ]);
    }
    if features.https_listen {
        flags.extend([
            "--https-listen".to_owned(),
            format!("127.0.0.1:{GANGPLANK_TLS_PORT}"),
        ]);
    }
    flags
}

/// `POST /configuration` on the admin socket; expects 201.
fn post_configuration(socket: &Path, body: &str) -> Result<(), String> {
    let context = |e: std::io::Error| format!("admin socket {}: {e}", socket.display());
    let mut stream = UnixStream::connect(socket).map_err(context)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(context)?;
    let request = format!(
        "POST /configuration HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(context)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(context)?;
    if status_code(&response) == Some(201) {
        Ok(())
    } else {
        Err(format!(
            "POST /configuration was refused:\n{}",
            response.chars().take(2000).collect::<String>()
        ))
    }
}

/// One `GET` with `Host: host`; expects `200` and the upstream's `ok` body.
fn probe(port: u16, host: &str, path: &str) -> Result<(), String> {
    let response = http_get(port, host, path)?;
    if status_code(&response) == Some(200) && response.ends_with("ok\n") {
        Ok(())
    } else {
        Err(format!(
            "GET http://{host}{path} on port {port} answered:\n{}",
            response.chars().take(1000).collect::<String>()
        ))
    }
}

/// Checks the policies scenario's load location proxies, answers with the CORS
/// headers for the allowed origin (so the policies really run), and refuses a
/// denylisted client address... which cannot be faked from loopback, so the check is
/// the CORS answer plus a plain 200.
fn probe_policies(port: u16) -> Result<(), String> {
    probe(port, LOAD_HOST, LOAD_PATH)?;
    let response = http_get_with(port, LOAD_HOST, LOAD_PATH, &[LOAD_ORIGIN_HEADER])?;
    let allowed = format!("access-control-allow-origin: {LOAD_ORIGIN}");
    if status_code(&response) == Some(200) && response.to_ascii_lowercase().contains(&allowed) {
        Ok(())
    } else {
        Err(format!(
            "GET http://{LOAD_HOST}{LOAD_PATH} with {LOAD_ORIGIN_HEADER} on port {port} did              not answer 200 with the CORS headers:\n{}",
            response.chars().take(1000).collect::<String>()
        ))
    }
}

/// One `GET` on 127.0.0.1:`port` with `Connection: close`; returns the raw response.
fn http_get(port: u16, host: &str, path: &str) -> Result<String, String> {
    http_get_with(port, host, path, &[])
}

/// [`http_get`] with extra header lines (`Name: value`).
fn http_get_with(port: u16, host: &str, path: &str, headers: &[&str]) -> Result<String, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let context = |e: std::io::Error| format!("GET {path} on {addr}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(context)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(context)?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for line in headers {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(context)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(context)?;
    Ok(response)
}

// ---------------------------------------------------------------------------------
// TLS: the certificate and the probe
// ---------------------------------------------------------------------------------

/// The benchmark certificate, in the temporary directory.
#[derive(Debug, Clone)]
struct TlsFiles {
    /// The certificate (PEM), for nginx's `ssl_certificate` and the probe's trust.
    cert: PathBuf,
    /// Its private key (PEM, PKCS #8), for nginx's `ssl_certificate_key`.
    key: PathBuf,
    /// Certificate then key, as Gangplank's `sslConfiguration` carries them.
    bundle: String,
}

/// Generates a self-signed ECDSA P-256 server certificate for [`CERT_NAME`] with the
/// `openssl` CLI, and writes the wrk script of [`RESOLVE_SCRIPT`].
fn prepare_tls(lab: &Lab, tools: &Tools) -> Result<TlsFiles, String> {
    let dir = lab.path("tls");
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new(&tools.openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "7"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={CERT_NAME}")])
        .args(["-addext", &format!("subjectAltName=DNS:{CERT_NAME}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "keyUsage=critical,digitalSignature"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", tools.openssl.display()))?;
    if !out.status.success() {
        return Err(format!(
            "openssl could not generate the certificate:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let bundle = format!("{}{}", read(&cert)?, read(&key)?);
    let script = lab.path(RESOLVE_SCRIPT);
    fs::write(&script, RESOLVE_SCRIPT_TEXT)
        .map_err(|e| format!("writing {}: {e}", script.display()))?;
    println!("xtask: generated a self-signed ECDSA P-256 certificate for {CERT_NAME}");
    Ok(TlsFiles { cert, key, bundle })
}

/// One HTTPS `GET` on 127.0.0.1:`port` with `openssl s_client`, SNI [`LOAD_HOST`]: the
/// certificate must verify against the benchmark certificate for [`LOAD_HOST`], and
/// the answer be the upstream's `200 ok`. Returns the negotiated parameters.
fn probe_tls(tools: &Tools, tls: &TlsFiles, port: u16) -> Result<TlsSession, String> {
    let mut child = Command::new(&tools.openssl)
        .arg("s_client")
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", LOAD_HOST, "-verify_hostname", LOAD_HOST])
        .arg("-CAfile")
        .arg(&tls.cert)
        .args(["-verify_return_error", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting openssl s_client: {e}"))?;
    let request =
        format!("GET {LOAD_PATH} HTTP/1.1\r\nHost: {LOAD_HOST}\r\nConnection: close\r\n\r\n");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(request.as_bytes())
            .map_err(|e| format!("writing to openssl s_client: {e}"))?;
    }
    // Both pipes are read on threads, so a chatty s_client cannot block on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_with_timeout(&mut child, Duration::from_secs(10))
        .map_err(|e| format!("openssl s_client on port {port}: {e}"))?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let output = || format!("{stderr}{}", stdout.chars().take(4000).collect::<String>());
    if !status.success() {
        return Err(format!(
            "openssl s_client on port {port} failed with {status}:\n{}",
            output()
        ));
    }
    parse_s_client(&stdout).map_err(|e| format!("{e}; openssl s_client printed:\n{}", output()))
}

/// What a TLS probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsSession {
    /// `TLSv1.3`, `TLSv1.2`.
    protocol: String,
    /// The cipher suite (OpenSSL's name).
    cipher: String,
    /// The certificate's subject (`CN = *.example.com`).
    subject: String,
}

impl std::fmt::Display for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "negotiated {} {}; certificate {} verified for {LOAD_HOST} (SNI)",
            self.protocol, self.cipher, self.subject
        )
    }
}

/// Reads the output of `openssl s_client -verify_return_error -ign_eof` after one
/// `GET`: verification OK, the session's protocol and cipher, and the upstream's
/// `200` with body `ok`.
fn parse_s_client(text: &str) -> Result<TlsSession, String> {
    let lines = || text.lines().map(str::trim_end);
    if !lines().any(|l| l == "Verification: OK") {
        return Err("the certificate did not verify".to_owned());
    }
    let subject = lines()
        .find_map(|l| l.strip_prefix("subject="))
        .ok_or("no certificate subject")?
        .trim()
        .to_owned();
    // `New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384`
    let (protocol, cipher) = lines()
        .find_map(|l| l.strip_prefix("New, ")?.split_once(", Cipher is "))
        .ok_or("no negotiated protocol and cipher")?;
    let response = text
        .find("HTTP/1.")
        .map(|at| &text[at..])
        .ok_or("no HTTP response")?;
    if status_code(response) != Some(200) || !response.contains("\r\n\r\nok\n") {
        return Err(format!(
            "unexpected answer:\n{}",
            response.chars().take(1000).collect::<String>()
        ));
    }
    Ok(TlsSession {
        protocol: protocol.trim().to_owned(),
        cipher: cipher.trim().to_owned(),
        subject,
    })
}

/// Reads `pipe` to its end on a thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Waits for `child` up to `timeout`, killing it when it takes longer.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().map_err(|e| format!("waiting: {e}"))? {
            Some(status) => return Ok(status),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not finish within {timeout:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Connections the upstream has accepted so far (its `stub_status`).
fn upstream_accepted() -> Result<u64, String> {
    let response = http_get(UPSTREAM_STATUS_PORT, "status", "/")?;
    parse_stub_status_accepts(&response)
        .ok_or_else(|| format!("unexpected upstream stub_status:\n{response}"))
}

/// The `accepts` counter of an nginx `stub_status` page:
/// `server accepts handled requests` then ` 16 16 31`.
fn parse_stub_status_accepts(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    lines.find(|line| line.trim_start().starts_with("server accepts"))?;
    lines.next()?.split_whitespace().next()?.parse().ok()
}

/// The status code of an HTTP/1.x response.
fn status_code(response: &str) -> Option<u16> {
    let line = response.lines().next()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

// ---------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------

/// Appends `lines` to `conf`, each indented by `indent` spaces.
fn push_lines(conf: &mut String, indent: usize, lines: &[&str]) {
    for line in lines {
        let _ = writeln!(conf, "{:indent$}{line}", "");
    }
}

/// The top of both nginx configurations: foreground, one worker, files in `prefix`,
/// then `http {` with nothing logged and temporary files in `prefix`.
fn nginx_conf_head(prefix: &Path) -> String {
    let p = prefix.display();
    let mut conf = String::new();
    push_lines(
        &mut conf,
        0,
        &[
            "daemon off;",
            "master_process on;",
            "worker_processes 1;",
            &format!("pid {p}/nginx.pid;"),
            &format!("error_log {p}/error.log warn;"),
            "worker_rlimit_nofile 65536;",
            "events { worker_connections 16384; multi_accept on; }",
            "http {",
        ],
    );
    push_lines(&mut conf, 2, &["access_log off;"]);
    for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        push_lines(
            &mut conf,
            2,
            &[&format!("{kind}_temp_path {p}/{kind}_temp;")],
        );
    }
    conf
}

/// The upstream: one worker answering `ok` on every port, keep-alive without limits,
/// and `stub_status` on [`UPSTREAM_STATUS_PORT`].
fn upstream_nginx_conf(prefix: &Path) -> String {
    let mut conf = nginx_conf_head(prefix);
    push_lines(
        &mut conf,
        2,
        &[
            "keepalive_requests 1000000;",
            "keepalive_timeout 300s;",
            "server {",
        ],
    );
    for port in UPSTREAM_PORTS {
        push_lines(&mut conf, 4, &[&format!("listen 127.0.0.1:{port};")]);
    }
    push_lines(
        &mut conf,
        4,
        &["location / { default_type text/plain; return 200 \"ok\\n\"; }"],
    );
    push_lines(
        &mut conf,
        2,
        &[
            "}",
            "server {",
            &format!("  listen 127.0.0.1:{UPSTREAM_STATUS_PORT};"),
            "  location / { stub_status; }",
            "}",
        ],
    );
    conf.push_str("}\n");
    conf
}

/// nginx under test, shaped like ingress-nginx's output: one keep-alive upstream,
/// the forwarded headers Gangplank also sets, ingress-nginx's keep-alive defaults.
/// With `tls`, every server also listens with `ssl` on [`NGINX_TLS_PORT`], with the
/// benchmark certificate and ingress-nginx's TLS defaults.
fn proxy_nginx_conf(prefix: &Path, tls: Option<&TlsFiles>, policies: bool) -> String {
    let mut conf = nginx_conf_head(prefix);
    if policies {
        // ingress-nginx: one `limit_req_zone` per Ingress keyed by `$binary_remote_addr`
        // (its `limit-allowlist` geo/map is left out: no allowlist here), 503 on refusal;
        // the CORS origin check as a map instead of its `if` blocks.
        push_lines(
            &mut conf,
            2,
            &[
                &format!(
                    "limit_req_zone $binary_remote_addr zone=bench_rps:5m rate={POLICY_RPS}r/s;"
                ),
                "limit_req_status 503;",
                "map $http_origin $cors_origin {",
                "  default \"\";",
                &format!("  \"{LOAD_ORIGIN}\" $http_origin;"),
                "}",
                "map $cors_origin $cors_credentials {",
                "  default \"true\";",
                "  \"\" \"\";",
                "}",
            ],
        );
    }
    if let Some(tls) = tls {
        push_lines(
            &mut conf,
            2,
            &[
                &format!("ssl_certificate {};", tls.cert.display()),
                &format!("ssl_certificate_key {};", tls.key.display()),
                "ssl_protocols TLSv1.2 TLSv1.3;",
                &format!("ssl_ciphers '{INGRESS_SSL_CIPHERS}';"),
                "ssl_prefer_server_ciphers on;",
                "ssl_ecdh_curve auto;",
                "ssl_session_cache shared:SSL:10m;",
                "ssl_session_timeout 10m;",
                "ssl_session_tickets off;",
                "ssl_buffer_size 4k;",
            ],
        );
    }
    push_lines(
        &mut conf,
        2,
        &[
            "server_tokens off;",
            "tcp_nodelay on;",
            "keepalive_timeout 75s;",
            "keepalive_requests 1000;",
            "proxy_http_version 1.1;",
            "proxy_buffering off;",
            "proxy_set_header Connection \"\";",
            "proxy_set_header Host $host;",
            "proxy_set_header X-Request-ID $request_id;",
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_set_header X-Forwarded-For $remote_addr;",
            "proxy_set_header X-Forwarded-Host $host;",
            "proxy_set_header X-Forwarded-Port $server_port;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_set_header X-Forwarded-Scheme $scheme;",
            "proxy_set_header X-Scheme $scheme;",
            "proxy_set_header Proxy \"\";",
            "upstream upstream_balancer {",
        ],
    );
    for port in UPSTREAM_PORTS {
        push_lines(&mut conf, 4, &[&format!("server 127.0.0.1:{port};")]);
    }
    push_lines(
        &mut conf,
        4,
        &[
            "keepalive 320;",
            "keepalive_time 1h;",
            "keepalive_timeout 60s;",
            "keepalive_requests 10000;",
        ],
    );
    push_lines(&mut conf, 2, &["}"]);
    for host in 0..HOSTS {
        conf.push_str(&nginx_server_block(host, tls.is_some(), policies));
    }
    conf.push_str("}\n");
    conf
}

/// One `server` block: `app<host>.example.com` with the [`LOCATIONS`]; with `tls`,
/// also on [`NGINX_TLS_PORT`] with `ssl` (HTTP/1.1 only: no `http2`).
fn nginx_server_block(host: usize, tls: bool, policies: bool) -> String {
    let listen = if host == 0 {
        " default_server reuseport"
    } else {
        ""
    };
    let mut block = String::new();
    push_lines(
        &mut block,
        2,
        &[
            "server {",
            &format!("  listen 127.0.0.1:{NGINX_PORT}{listen};"),
        ],
    );
    if tls {
        push_lines(
            &mut block,
            2,
            &[&format!("  listen 127.0.0.1:{NGINX_TLS_PORT} ssl{listen};")],
        );
    }
    push_lines(
        &mut block,
        2,
        &[&format!("  server_name app{host}.example.com;")],
    );
    for path in LOCATIONS {
        // ingress-nginx writes a Prefix path as `location /p/` plus `location = /p`.
        let matches = if path == "/" {
            vec!["/".to_owned()]
        } else {
            vec![format!("{path}/"), format!("= {path}")]
        };
        let rules = if policies && path == "/api" {
            NGINX_POLICY_RULES
        } else {
            ""
        };
        for m in matches {
            let location =
                format!("location {m} {{ {rules}proxy_pass http://upstream_balancer; }}");
            push_lines(&mut block, 4, &[&location]);
        }
    }
    push_lines(&mut block, 2, &["}"]);
    block
}

/// The policies scenario's directives on nginx's `/api` locations, as ingress-nginx
/// writes them: the address lists, `limit_req` (burst = rps x 5, `nodelay`), and the
/// CORS headers of a matching origin (ingress-nginx's `more_set_headers`; `add_header
/// ... always` here, headers-more not being in Debian's `nginx`).
const NGINX_POLICY_RULES: &str = "deny 192.0.2.0/24; allow 127.0.0.0/8; allow 10.0.0.0/8; \
deny all; limit_req zone=bench_rps burst=500000 nodelay; \
add_header Access-Control-Allow-Origin $cors_origin always; \
add_header Access-Control-Allow-Credentials $cors_credentials always; ";

/// The policies scenario's fields on Gangplank's `/api` locations (see
/// [`NGINX_POLICY_RULES`]).
const GANGPLANK_POLICY_FIELDS: &str = ",\"denylist\":{\"cidrs\":[\"192.0.2.0/24\"]},\
\"allowlist\":{\"cidrs\":[\"127.0.0.0/8\",\"10.0.0.0/8\"]},\
\"rateLimit\":{\"rps\":100000,\"burstMultiplier\":5},\
\"corsConfig\":{\"enabled\":true,\"allowOrigin\":[\"https://app.example.com\"],\"allowCredentials\":true}";

/// Gangplank's snapshot: one backend per host over the 3 upstream ports (round robin,
/// the default), [`LOCATIONS`] on every host; with `tls`, the benchmark certificate
/// mapped to [`CERT_NAME`]; with `policies`, the request policies of the policies
/// scenario on every `/api` location.
fn gangplank_configuration(tls: Option<&TlsFiles>, policies: bool) -> String {
    let endpoints = UPSTREAM_PORTS
        .iter()
        .map(|port| format!("{{\"address\":\"127.0.0.1\",\"port\":\"{port}\"}}"))
        .collect::<Vec<_>>()
        .join(",");
    let backends = (0..HOSTS)
        .map(|host| {
            format!(
                "{{\"name\":\"default-app{host}-80\",\"load-balance\":\"round_robin\",\"endpoints\":[{endpoints}]}}"
            )
        })
        .collect::<Vec<_>>()
        .join(",\n");
    let servers = (0..HOSTS)
        .map(|host| {
            let locations = LOCATIONS
                .iter()
                .map(|path| {
                    let fields = if policies && *path == "/api" {
                        GANGPLANK_POLICY_FIELDS
                    } else {
                        ""
                    };
                    format!(
                        "{{\"path\":\"{path}\",\"pathType\":\"Prefix\",\"backend\":\"default-app{host}-80\"{fields}}}"
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            format!("{{\"hostname\":\"app{host}.example.com\",\"locations\":[{locations}]}}")
        })
        .collect::<Vec<_>>()
        .join(",\n");
    let ssl = match tls {
        None => String::new(),
        Some(tls) => format!(
            ",\n\"sslConfiguration\":{{\"certificates\":{{\"{CERT_UID}\":{}}},\
             \"servers\":{{\"{CERT_NAME}\":\"{CERT_UID}\"}}}}",
            json_string(&tls.bundle)
        ),
    };
    format!("{{\"backends\":[\n{backends}\n],\n\"servers\":[\n{servers}\n]{ssl}}}\n")
}

/// `text` as a JSON string literal, quotes included.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------
// wrk
// ---------------------------------------------------------------------------------

/// What `wrk --latency` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WrkResult {
    /// `Requests/sec`.
    requests_per_second: f64,
    /// Completed requests.
    requests: u64,
    /// Median latency, microseconds.
    p50_us: f64,
    /// 99th percentile latency, microseconds.
    p99_us: f64,
    /// `Non-2xx or 3xx responses`.
    non_2xx: u64,
    /// `Socket errors` (connect + read + write + timeout).
    socket_errors: u64,
}

impl WrkResult {
    /// Failed requests of any kind.
    fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// What `wrk` loads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WrkTarget {
    /// The URL (its host is also the SNI over TLS).
    url: String,
    /// A Lua script for `-s`, if any.
    script: Option<PathBuf>,
    /// Send [`LOAD_ORIGIN_HEADER`] (the CORS policy applies).
    origin: bool,
}

/// Runs `wrk` pinned to `cpu` against `target` for `seconds`.
fn run_wrk(
    lab: &Lab,
    tools: &Tools,
    cpu: u32,
    target: &WrkTarget,
    seconds: u32,
) -> Result<WrkResult, String> {
    let out_path = lab.path("wrk.out");
    let out =
        File::create(&out_path).map_err(|e| format!("creating {}: {e}", out_path.display()))?;
    let mut command = Command::new(&tools.taskset);
    command
        .args(["-c", &cpu.to_string()])
        .arg(&tools.wrk)
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s")])
        .args(["--latency", "-H", &format!("Host: {LOAD_HOST}")]);
    if let Some(script) = &target.script {
        command.arg("-s").arg(script);
    }
    if target.origin {
        command.args(["-H", LOAD_ORIGIN_HEADER]);
    }
    let mut child = command
        .arg(&target.url)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting wrk: {e}"))?;
    // wrk writes little to stderr, but read it on a thread all the same.
    let stderr = drain(child.stderr.take());
    let status = wait_with_timeout(&mut child, Duration::from_secs(u64::from(seconds) + 30))
        .map_err(|e| format!("wrk on {}: {e}", target.url))?;
    let stderr = stderr.join().unwrap_or_default();
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        return Err(format!("wrk failed with {status}:\n{stdout}{stderr}"));
    }
    parse_wrk(&stdout).map_err(|e| format!("{e} in wrk's output:\n{stdout}{stderr}"))
}

/// Parses the text output of `wrk --latency`.
fn parse_wrk(text: &str) -> Result<WrkResult, String> {
    let mut rps = None;
    let mut requests = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = parse_latency(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = parse_latency(v.trim());
        } else if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().map_err(|_| "bad Non-2xx line")?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            socket_errors = parse_socket_errors(v)?;
        }
    }
    Ok(WrkResult {
        requests_per_second: rps.ok_or("no Requests/sec")?,
        requests: requests.ok_or("no request count")?,
        p50_us: p50.ok_or("no 50% latency")?,
        p99_us: p99.ok_or("no 99% latency")?,
        non_2xx,
        socket_errors,
    })
}

/// Sums `connect 0, read 0, write 0, timeout 0`.
fn parse_socket_errors(text: &str) -> Result<u64, String> {
    text.split(',')
        .map(|part| {
            part.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("bad socket error count {part:?}"))
        })
        .sum()
}

/// Parses a wrk duration such as `812.00us`, `1.23ms`, `2.00s` or `1.50m` into
/// microseconds.
fn parse_latency(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(number * scale)
}

// ---------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------

/// The fields of `/proc/<pid>/stat` after the command name (field 3 onwards).
fn stat_fields(pid: u32) -> Result<Vec<String>, String> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    parse_stat_fields(&text).ok_or_else(|| format!("unexpected contents of {path}"))
}

/// Splits a `stat` line after the command name, which may contain spaces and `)`.
fn parse_stat_fields(text: &str) -> Option<Vec<String>> {
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime of the processes, in clock ticks (all threads included).
fn cpu_ticks(pids: &[u32]) -> Result<u64, String> {
    let mut total = 0;
    for &pid in pids {
        let fields = stat_fields(pid)?;
        // Fields 14 and 15 (utime, stime) are at 11 and 12 after the name.
        let tick = |i: usize| -> Result<u64, String> {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("no CPU time in /proc/{pid}/stat"))
        };
        total += tick(11)? + tick(12)?;
    }
    Ok(total)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|&ticks| ticks > 0.0)
        .unwrap_or(100.0)
}

/// Processes whose parent is `pid` (the nginx workers of a master).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&candidate| {
            stat_fields(candidate)
                .ok()
                .and_then(|fields| fields.get(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

/// `VmHWM` (peak resident set size) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no VmHWM in {path}"))
}

// ---------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------

/// Medians (peak RSS: maximum) over the rounds of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    /// Median requests per second.
    rps: f64,
    /// Median p50, microseconds.
    p50_us: f64,
    /// Median p99, microseconds.
    p99_us: f64,
    /// Median CPU seconds per 1000 requests.
    cpu_per_1000: f64,
    /// Largest peak RSS, MiB.
    peak_rss_mib: f64,
    /// Median new upstream connections per 1000 requests.
    upstream_connections_per_1000: f64,
    /// Failed requests over all rounds.
    errors: u64,
}

impl Row {
    /// Summarises the rounds.
    fn summary(&self) -> Summary {
        let median_of = |f: fn(&Sample) -> f64| median(self.samples.iter().map(f).collect());
        Summary {
            rps: median_of(|s| s.wrk.requests_per_second),
            p50_us: median_of(|s| s.wrk.p50_us),
            p99_us: median_of(|s| s.wrk.p99_us),
            cpu_per_1000: median_of(Sample::cpu_per_1000),
            peak_rss_mib: self
                .samples
                .iter()
                .map(|s| s.peak_rss_kib)
                .max()
                .unwrap_or(0) as f64
                / 1024.0,
            upstream_connections_per_1000: median_of(Sample::upstream_connections_per_1000),
            errors: self.samples.iter().map(|s| s.wrk.errors()).sum(),
        }
    }
}

/// The median (NaN for no values).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Latency for humans, in milliseconds.
fn format_latency(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

/// Prints the setup, the table, the ratios and the notes.
fn print_report(rows: &[Row], notes: &[String], options: &Options, cpus: Cpus) {
    println!();
    println!(
        "wrk -t1 -c{CONNECTIONS} -d{}s --latency -H 'Host: {LOAD_HOST}' {LOAD_PATH}; \
         {} interleaved rounds per proxy after {} s warm-up; medians over rounds",
        options.duration, options.rounds, options.warmup
    );
    println!(
        "snapshot: {HOSTS} hosts x {} locations, round robin over upstream 127.0.0.1:{}-{} \
         (nginx, 1 worker)",
        LOCATIONS.len(),
        UPSTREAM_PORTS[0],
        UPSTREAM_PORTS[UPSTREAM_PORTS.len() - 1]
    );
    println!(
        "CPUs: proxy under test on CPU {} (1 worker each); upstream + wrk on CPU {}",
        cpus.proxy, cpus.load
    );
    let tls = Scenario::Tls.name();
    if rows.iter().any(|r| r.scenario == tls) {
        println!(
            "{tls}: wrk ... -s {RESOLVE_SCRIPT} https://{LOAD_HOST}:<port>{LOAD_PATH} (SNI \
             {LOAD_HOST}; the script connects the name to 127.0.0.1); one self-signed ECDSA \
             P-256 certificate for {CERT_NAME}; TLS 1.2 + 1.3, session cache, no tickets; \
             both close a client connection after 1000 requests (ingress-nginx's \
             keep-alive-requests), so wrk makes a full handshake per 1000 requests"
        );
    }
    println!();
    print!("{}", format_table(rows));
    for line in ratio_lines(rows) {
        println!("{line}");
    }
    for note in notes {
        println!("{note}");
    }
}

/// The markdown table.
fn format_table(rows: &[Row]) -> String {
    let mut table = String::from(
        "| scenario | proxy | req/s | p50 | p99 | CPU s/1000 req | peak RSS MiB \
         | upstream conns/1000 req | errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let s = row.summary();
        let _ = writeln!(
            table,
            "| {} | {} | {:.0} | {} | {} | {:.4} | {:.1} | {:.1} | {} |",
            row.scenario,
            row.proxy.name(),
            s.rps,
            format_latency(s.p50_us),
            format_latency(s.p99_us),
            s.cpu_per_1000,
            s.peak_rss_mib,
            s.upstream_connections_per_1000,
            s.errors
        );
    }
    table
}

/// The ratios of each round's Gangplank sample to the nginx sample measured right
/// after it, medians over the rounds: the host's speed drifts over tens of seconds, and
/// adjacent rounds see about the same host. `None` with one round or unpaired rounds.
fn paired_ratios(rows: &[Row], scenario: &str) -> Option<String> {
    let samples = |proxy: ProxyKind| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.proxy == proxy)
            .map(|r| &r.samples)
    };
    let (g, n) = (samples(ProxyKind::Gangplank)?, samples(ProxyKind::Nginx)?);
    if g.len() != n.len() || g.len() < 2 {
        return None;
    }
    let ratio = |f: fn(&Sample) -> f64| median(g.iter().zip(n).map(|(a, b)| f(a) / f(b)).collect());
    Some(format!(
        "paired rounds (median of per-round ratios): req/s {:.2}, p99 {:.2}, CPU/req {:.2}",
        ratio(|s| s.wrk.requests_per_second),
        ratio(|s| s.wrk.p99_us),
        ratio(Sample::cpu_per_1000)
    ))
}

/// `ratio gangplank/nginx: ...` (ratio of the medians, and of paired rounds), per
/// scenario.
fn ratio_lines(rows: &[Row]) -> Vec<String> {
    let find = |scenario: &str, proxy: ProxyKind| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.proxy == proxy)
            .map(Row::summary)
    };
    let mut lines = Vec::new();
    for scenario in Scenario::ALL.map(Scenario::name) {
        if let (Some(g), Some(n)) = (
            find(scenario, ProxyKind::Gangplank),
            find(scenario, ProxyKind::Nginx),
        ) {
            let prefix = if rows.iter().any(|r| r.scenario != scenario) {
                format!("{scenario}: ")
            } else {
                String::new()
            };
            lines.push(format!(
                "{prefix}ratio gangplank/nginx: req/s {:.2}, p99 {:.2}, CPU/req {:.2}",
                g.rps / n.rps,
                g.p99_us / n.p99_us,
                g.cpu_per_1000 / n.cpu_per_1000
            ));
            if let Some(paired) = paired_ratios(rows, scenario) {
                lines.push(format!("{prefix}{paired}"));
            }
        }
    }
    // Issue 5's target: policies cost Gangplank at most 10 % of its plain throughput.
    let (plain, policies) = (Scenario::Http1Keepalive.name(), Scenario::Policies.name());
    if let (Some(p), Some(q)) = (
        find(plain, ProxyKind::Gangplank),
        find(policies, ProxyKind::Gangplank),
    ) {
        lines.push(format!(
            "gangplank {policies}/{plain}: req/s {:.2}, p99 {:.2}, CPU/req {:.2}",
            q.rps / p.rps,
            q.p99_us / p.p99_us,
            q.cpu_per_1000 / p.cpu_per_1000
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 10s test @ http://127.0.0.1:18080/api/x
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  302.11us   9.87ms   90.12%
    Req/Sec    58.21k     2.01k   61.30k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    1.50ms
     99%    2.34ms
  579321 requests in 10.00s, 80.12MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  57932.10
Transfer/sec:      8.01MB
";

    #[test]
    fn parses_wrk_output() {
        let r = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(r.requests, 579_321);
        assert!((r.requests_per_second - 57_932.10).abs() < 1e-6);
        assert!((r.p50_us - 812.0).abs() < 1e-6);
        assert!((r.p99_us - 2340.0).abs() < 1e-6);
        assert_eq!((r.non_2xx, r.socket_errors, r.errors()), (7, 5, 12));
    }

    #[test]
    fn wrk_output_without_distribution_is_an_error() {
        let text = WRK_OUTPUT.replace("99%", "98%");
        assert_eq!(parse_wrk(&text), Err("no 99% latency".to_owned()));
    }

    #[test]
    fn parses_latencies() {
        assert_eq!(parse_latency("812.00us"), Some(812.0));
        assert_eq!(parse_latency("1.50ms"), Some(1500.0));
        assert_eq!(parse_latency("2.00s"), Some(2e6));
        assert_eq!(parse_latency("1.00m"), Some(60e6));
        assert_eq!(parse_latency("3.0x"), None);
        assert_eq!(parse_latency("ms"), None);
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Ok(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-3,6"), Ok(vec![0, 2, 3, 6]));
        assert!(parse_cpu_list("a-b").is_err());
    }

    #[test]
    fn splits_stat_after_the_name() {
        let fields =
            parse_stat_fields("42 (nginx: a) b) S 1 42 42 0 -1 4194560 7 0 0 0 15 3").unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[1], "1");
        assert_eq!(fields[11], "15");
        assert_eq!(fields[12], "3");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn options() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(parse_options(&args(&[])), Ok(Some(Options::default())));
        let parsed = parse_options(&args(&["proxy", "--rounds", "5", "--duration", "7s"]))
            .unwrap()
            .unwrap();
        assert_eq!((parsed.rounds, parsed.duration, parsed.build), (5, 7, true));
        assert_eq!(parse_options(&args(&["--help"])), Ok(None));
        assert!(parse_options(&args(&["--rounds", "0"])).is_err());
        assert!(parse_options(&args(&["--rounds"])).is_err());
        assert!(parse_options(&args(&["nonsense"])).is_err());
    }

    #[test]
    fn parses_stub_status() {
        let page = "HTTP/1.1 200 OK\r\n\r\nActive connections: 1 \n\
                    server accepts handled requests\n 16 16 31 \nReading: 0 Writing: 1 Waiting: 0 \n";
        assert_eq!(parse_stub_status_accepts(page), Some(16));
        assert_eq!(parse_stub_status_accepts("Active connections: 1"), None);
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code("HTTP/1.1 201 Created\r\n\r\n"), Some(201));
        assert_eq!(status_code("garbage"), None);
    }

    #[test]
    fn gangplank_configuration_has_every_host() {
        let config = gangplank_configuration(None, false);
        assert_eq!(config.matches("\"hostname\"").count(), HOSTS);
        assert_eq!(
            config.matches("\"pathType\"").count(),
            HOSTS * LOCATIONS.len()
        );
        assert!(config.contains("\"hostname\":\"app42.example.com\""));
        assert!(!config.contains("sslConfiguration"));
    }

    fn tls_files() -> TlsFiles {
        TlsFiles {
            cert: PathBuf::from("/tmp/x/tls/cert.pem"),
            key: PathBuf::from("/tmp/x/tls/key.pem"),
            bundle: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_owned(),
        }
    }

    #[test]
    fn gangplank_tls_configuration_maps_the_wildcard() {
        let config = gangplank_configuration(Some(&tls_files()), false);
        assert!(config.contains(
            "\"sslConfiguration\":{\"certificates\":{\"bench-wildcard-example-com\":\
             \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"},\
             \"servers\":{\"*.example.com\":\"bench-wildcard-example-com\"}}}"
        ));
        assert_eq!(config.matches("\"hostname\"").count(), HOSTS);
    }

    #[test]
    fn json_strings() {
        assert_eq!(
            json_string("a\"b\\c\nd\te\r\u{1}"),
            r#""a\"b\\c\nd\te\r\u0001""#
        );
    }

    #[test]
    fn wrk_targets() {
        let target = Target {
            kind: ProxyKind::Gangplank,
            port: 18080,
            tls_port: 18444,
            pid: 1,
        };
        let script = Path::new("/tmp/x/resolve-to-loopback.lua");
        assert_eq!(
            Scenario::Http1Keepalive.wrk_target(&target, script),
            WrkTarget {
                url: "http://127.0.0.1:18080/api/x".to_owned(),
                script: None,
                origin: false,
            }
        );
        assert_eq!(
            Scenario::Policies.wrk_target(&target, script),
            WrkTarget {
                url: "http://127.0.0.1:18080/api/x".to_owned(),
                script: None,
                origin: true,
            }
        );
        assert_eq!(
            Scenario::Tls.wrk_target(&target, script),
            WrkTarget {
                url: "https://app42.example.com:18444/api/x".to_owned(),
                script: Some(script.to_path_buf()),
                origin: false,
            }
        );
    }

    #[test]
    fn tls_needs_a_tls_listener() {
        let old = GangplankFeatures::from_help("--http-listen <A>\n--access-log <B>");
        assert!(old.access_log && !old.https_listen && !old.metrics_listen);
        assert!(Scenario::Tls.skip_reason(old).is_some());
        assert_eq!(Scenario::Http1Keepalive.skip_reason(old), None);
        let new = GangplankFeatures::from_help("--https-listen <A>");
        assert_eq!(Scenario::Tls.skip_reason(new), None);
        assert!(
            optional_gangplank_flags(new).contains(&"127.0.0.1:18444".to_owned()),
            "the TLS listener stays on loopback"
        );
    }

    const S_CLIENT_OUTPUT: &str = "CONNECTED(00000003)
---
Certificate chain
 0 s:CN = *.example.com
   i:CN = *.example.com
---
subject=CN = *.example.com
issuer=CN = *.example.com
---
Verification: OK
Verified peername: *.example.com
---
New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384
SSL-Session:
    Protocol  : TLSv1.3
---
HTTP/1.1 200 OK\r
Content-Length: 3\r
Connection: close\r
\r
ok
closed
";

    #[test]
    fn parses_s_client_output() {
        let session = parse_s_client(S_CLIENT_OUTPUT).unwrap();
        assert_eq!(
            session,
            TlsSession {
                protocol: "TLSv1.3".to_owned(),
                cipher: "TLS_AES_256_GCM_SHA384".to_owned(),
                subject: "CN = *.example.com".to_owned(),
            }
        );
        let unverified = S_CLIENT_OUTPUT.replace("Verification: OK", "Verification error");
        assert!(parse_s_client(&unverified).is_err());
        let refused = S_CLIENT_OUTPUT.replace("200 OK", "404 Not Found");
        assert!(parse_s_client(&refused).is_err());
    }

    #[test]
    fn nginx_configuration_has_every_host() {
        let conf = proxy_nginx_conf(Path::new("/tmp/x"), None, false);
        assert_eq!(conf.matches("server_name ").count(), HOSTS);
        assert_eq!(conf.matches("reuseport").count(), 1);
        assert!(conf.contains("keepalive 320;"));
        assert!(!conf.contains("ssl"));
    }

    #[test]
    fn nginx_tls_configuration_listens_with_ssl_everywhere() {
        let conf = proxy_nginx_conf(Path::new("/tmp/x"), Some(&tls_files()), false);
        assert_eq!(conf.matches("server_name ").count(), HOSTS);
        assert_eq!(conf.matches("listen 127.0.0.1:18081").count(), HOSTS);
        assert_eq!(conf.matches("listen 127.0.0.1:18443 ssl").count(), HOSTS);
        assert!(conf.contains("listen 127.0.0.1:18443 ssl default_server reuseport;"));
        assert_eq!(conf.matches("reuseport").count(), 2);
        assert!(conf.contains("ssl_certificate /tmp/x/tls/cert.pem;"));
        assert!(conf.contains("ssl_certificate_key /tmp/x/tls/key.pem;"));
        assert!(conf.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(conf.contains("ssl_session_tickets off;"));
        assert!(!conf.contains("http2"));
    }

    #[test]
    fn policies_apply_to_every_api_location_of_both_proxies() {
        let config = gangplank_configuration(None, true);
        assert_eq!(config.matches("\"corsConfig\"").count(), HOSTS);
        assert_eq!(config.matches("\"allowlist\"").count(), HOSTS);
        assert!(GANGPLANK_POLICY_FIELDS.contains(&format!("\"rps\":{POLICY_RPS},")));
        assert!(GANGPLANK_POLICY_FIELDS.contains(LOAD_ORIGIN));
        assert!(!gangplank_configuration(None, false).contains("corsConfig"));

        let conf = proxy_nginx_conf(Path::new("/tmp/x"), None, true);
        // `location /api/` and `location = /api` on every host.
        assert_eq!(conf.matches("limit_req zone=bench_rps").count(), 2 * HOSTS);
        assert_eq!(conf.matches("deny all;").count(), 2 * HOSTS);
        assert!(conf.contains(&format!("rate={POLICY_RPS}r/s;")));
        assert!(conf.contains(&format!("\"{LOAD_ORIGIN}\" $http_origin;")));
        assert!(!proxy_nginx_conf(Path::new("/tmp/x"), None, false).contains("limit_req"));
    }

    fn row(proxy: ProxyKind, rps: f64, p99_us: f64) -> Row {
        let wrk = WrkResult {
            requests_per_second: rps,
            requests: 1000,
            p50_us: 500.0,
            p99_us,
            non_2xx: 0,
            socket_errors: 0,
        };
        Row {
            scenario: "http1-keepalive",
            proxy,
            samples: vec![Sample {
                wrk,
                cpu_seconds: 1.0,
                peak_rss_kib: 2048,
                upstream_connections: 5,
            }],
        }
    }

    #[test]
    fn paired_ratios_follow_the_host_round_by_round() {
        // The host halves its speed for round 2: each proxy's median hides it, the
        // per-round ratios do not.
        let with_rounds = |proxy, rates: &[f64]| {
            let mut r = row(proxy, 0.0, 1000.0);
            let template = r.samples[0];
            r.samples = rates
                .iter()
                .map(|&rps| {
                    let mut sample = template;
                    sample.wrk.requests_per_second = rps;
                    sample
                })
                .collect();
            r
        };
        let rows = [
            with_rounds(ProxyKind::Gangplank, &[105.0, 52.5, 103.0]),
            with_rounds(ProxyKind::Nginx, &[100.0, 100.0, 50.0]),
        ];
        assert_eq!(
            ratio_lines(&rows),
            [
                "ratio gangplank/nginx: req/s 1.03, p99 1.00, CPU/req 1.00",
                "paired rounds (median of per-round ratios): req/s 1.05, p99 1.00, CPU/req 1.00"
            ]
        );
        // One round: nothing to pair.
        let rows = [
            with_rounds(ProxyKind::Gangplank, &[105.0]),
            with_rounds(ProxyKind::Nginx, &[100.0]),
        ];
        assert_eq!(ratio_lines(&rows).len(), 1);
    }

    #[test]
    fn report() {
        let rows = [
            row(ProxyKind::Gangplank, 110.0, 900.0),
            row(ProxyKind::Nginx, 100.0, 1000.0),
        ];
        let table = format_table(&rows);
        assert!(table.contains(
            "| http1-keepalive | gangplank | 110 | 0.50 ms | 0.90 ms | 1.0000 | 2.0 | 5.0 | 0 |"
        ));
        assert_eq!(
            ratio_lines(&rows),
            ["ratio gangplank/nginx: req/s 1.10, p99 0.90, CPU/req 1.00"]
        );
        let mut policies = row(ProxyKind::Gangplank, 99.0, 990.0);
        policies.scenario = "http1-policies";
        let rows = [rows[0].clone(), rows[1].clone(), policies];
        assert_eq!(
            ratio_lines(&rows),
            [
                "http1-keepalive: ratio gangplank/nginx: req/s 1.10, p99 0.90, CPU/req 1.00",
                "gangplank http1-policies/http1-keepalive: req/s 0.90, p99 1.10, CPU/req 1.00"
            ]
        );
    }
}
