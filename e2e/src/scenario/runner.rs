//! Runs one scenario against a [`Cluster`]: set-up, the steps in order, expectations,
//! background loads, and the outcome with diagnostics on failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value;

use super::client::{Answer, Connection, Jar, Target};
use super::cluster::{Cluster, ClusterError, with_namespace};
use super::schema::{
    Action, LoadExpect, LoadSpec, ObjectExpect, ObjectRef, RequestSpec, ResponseExpect, Scenario,
    Step, parse_duration,
};
use super::tls::{self, GeneratedCert};

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step passed.
    Pass,
    /// A step failed (the reason names it).
    Fail(String),
    /// A step failed, and the scenario is marked `known_failure`.
    KnownFailure(String),
    /// Every step passed although the scenario is marked `known_failure`.
    UnexpectedPass,
    /// The driver cannot run it.
    Skip(String),
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct Report {
    /// The scenario's name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, set-up and teardown included.
    pub elapsed: Duration,
    /// Logs and the proxy snapshot, after a failure.
    pub diagnostics: Option<String>,
}

/// Why a step stopped the scenario.
enum StepError {
    Failed(String),
    Unsupported(String),
}

impl From<ClusterError> for StepError {
    fn from(e: ClusterError) -> StepError {
        match e {
            ClusterError::Unsupported { .. } => StepError::Unsupported(e.to_string()),
            ClusterError::Failed(m) => StepError::Failed(m),
        }
    }
}

impl From<String> for StepError {
    fn from(e: String) -> StepError {
        StepError::Failed(e)
    }
}

impl From<&str> for StepError {
    fn from(e: &str) -> StepError {
        StepError::Failed(e.to_owned())
    }
}

/// Counts of one load connection.
#[derive(Debug, Default)]
struct LoadStats {
    ok: u64,
    failed: u64,
    failures: Vec<String>,
}

/// A running background load.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<LoadStats>>,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the steps of one scenario share.
struct State {
    namespace: String,
    /// The driver's [`Cluster::slowness`].
    slowness: u32,
    target: Target,
    jars: HashMap<String, Jar>,
    remembered: HashMap<String, String>,
    loads: HashMap<String, Load>,
    /// The current certificate of each `tls_secrets` entry.
    certs: HashMap<String, GeneratedCert>,
    /// Every certificate generated, for `cert: default`.
    all_certs: Vec<Vec<u8>>,
    secret_hosts: HashMap<String, Vec<String>>,
}

/// Runs `scenario` on `cluster` (fresh, or a shared cluster the scenario cleans up).
pub async fn run<C: Cluster>(cluster: &mut C, scenario: &Scenario) -> Report {
    let started = Instant::now();
    let (http, https) = cluster.proxy_addrs();
    let target = match tls::client_config() {
        Ok(tls) => Target { http, https, tls },
        Err(e) => {
            return Report {
                name: scenario.name.clone(),
                outcome: Outcome::Fail(e),
                elapsed: started.elapsed(),
                diagnostics: None,
            };
        }
    };
    let slowness = cluster.slowness().max(1);
    let mut state = State {
        namespace: scenario.namespace.clone(),
        slowness,
        target,
        jars: HashMap::new(),
        remembered: HashMap::new(),
        loads: HashMap::new(),
        certs: HashMap::new(),
        all_certs: Vec::new(),
        secret_hosts: scenario
            .tls_secrets
            .iter()
            .map(|s| (s.name.clone(), s.hosts.clone()))
            .collect(),
    };
    let body = run_steps(cluster, scenario, &mut state);
    let limit = scenario.timeout * slowness;
    let result = match tokio::time::timeout(limit, body).await {
        Ok(result) => result,
        Err(_) => Err(StepError::Failed(format!(
            "the scenario did not finish within its timeout of {limit:?}"
        ))),
    };
    // Loads end before the teardown, which would fail them.
    state.loads.clear();
    let (outcome, failed) = match (result, &scenario.known_failure) {
        (Ok(()), None) => (Outcome::Pass, false),
        (Ok(()), Some(_)) => (Outcome::UnexpectedPass, false),
        (Err(StepError::Unsupported(why)), _) => (Outcome::Skip(why), false),
        (Err(StepError::Failed(why)), None) => (Outcome::Fail(why), true),
        (Err(StepError::Failed(why)), Some(_)) => (Outcome::KnownFailure(why), true),
    };
    let diagnostics = if failed {
        Some(cluster.diagnostics().await)
    } else {
        None
    };
    cluster.teardown().await;
    Report {
        name: scenario.name.clone(),
        outcome,
        elapsed: started.elapsed(),
        diagnostics,
    }
}

fn describe(i: usize, step: &Step) -> String {
    let detail = match &step.action {
        Action::Request { request, .. } => format!(
            " {}{}{}",
            if request.tls { "https://" } else { "http://" },
            request.host.as_deref().unwrap_or("<proxy>"),
            request.paths().join(",")
        ),
        Action::Scale { service, replicas } => format!(" {service} to {replicas}"),
        Action::Rollout { service } => format!(" {service}"),
        Action::Crash { service, replicas } => format!(" {replicas} of {service}"),
        Action::Get { object, .. } => format!(" {object}"),
        Action::Restart(c) | Action::Stop(c) | Action::Start(c) => format!(" {c}"),
        Action::StopLoad { name, .. } => format!(" {name}"),
        Action::RotateSecret(name) => format!(" {name}"),
        _ => String::new(),
    };
    let note = step
        .note
        .as_ref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!("steps[{i}] {}{detail}{note}", step.action.key())
}

async fn run_steps<C: Cluster>(
    cluster: &mut C,
    scenario: &Scenario,
    state: &mut State,
) -> Result<(), StepError> {
    let mut objects = Vec::new();
    for spec in &scenario.tls_secrets {
        let cert = tls::generate(&spec.hosts)?;
        objects.push(tls::secret(&state.namespace, &spec.name, &cert));
        state.all_certs.push(cert.der.clone());
        state.certs.insert(spec.name.clone(), cert);
    }
    objects.extend(with_namespace(
        scenario.manifests.clone(),
        &scenario.namespace,
    ));
    // TLS echo replicas serve their `tls_secrets` certificate.
    let services: Vec<_> = scenario
        .services
        .iter()
        .map(|spec| {
            let mut spec = spec.clone();
            spec.tls_cert = spec
                .tls
                .as_ref()
                .and_then(|name| state.certs.get(name).cloned());
            spec
        })
        .collect();
    cluster
        .setup(&scenario.namespace, &services, objects)
        .await
        .map_err(|e| match StepError::from(e) {
            StepError::Failed(m) => StepError::Failed(format!("set-up: {m}")),
            other => other,
        })?;
    for (i, step) in scenario.steps.iter().enumerate() {
        run_step(cluster, state, step).await.map_err(|e| match e {
            StepError::Failed(m) => StepError::Failed(format!("{}: {m}", describe(i, step))),
            StepError::Unsupported(m) => {
                StepError::Unsupported(format!("{}: {m}", describe(i, step)))
            }
        })?;
    }
    Ok(())
}

/// `eventually`: whether a failed attempt is tried again.
struct Retry {
    limit: Option<Duration>,
    started: Instant,
    tries: u32,
}

impl Retry {
    fn new(eventually: Option<Duration>, slowness: u32) -> Retry {
        Retry {
            limit: eventually.map(|d| d * slowness),
            started: Instant::now(),
            tries: 0,
        }
    }

    /// After a failed attempt: `Ok` (having waited a little) to try again, or the
    /// final error.
    async fn again(&mut self, error: StepError) -> Result<(), StepError> {
        self.tries += 1;
        match (error, self.limit) {
            (StepError::Failed(m), Some(limit)) if self.started.elapsed() >= limit => {
                Err(StepError::Failed(format!(
                    "{m} (still failing after {limit:?}, {} tries)",
                    self.tries
                )))
            }
            (StepError::Failed(_), Some(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(())
            }
            (error, _) => Err(error),
        }
    }
}

async fn request_once(
    state: &mut State,
    request: &RequestSpec,
    expect: &ResponseExpect,
) -> Result<(), StepError> {
    let answers = send_requests(state, request).await?;
    check_answers(state, expect, &answers)?;
    if let Some(name) = &request.remember {
        let instance = answers
            .last()
            .and_then(Answer::instance)
            .ok_or("no echo answer to remember")?;
        state.remembered.insert(name.clone(), instance.to_owned());
    }
    Ok(())
}

async fn run_step<C: Cluster>(
    cluster: &mut C,
    state: &mut State,
    step: &Step,
) -> Result<(), StepError> {
    match &step.action {
        Action::Apply(objects) => {
            cluster
                .apply(with_namespace(objects.clone(), &state.namespace))
                .await?;
        }
        Action::Delete(refs) => {
            for r in refs {
                cluster.delete(&resolve(r, &state.namespace)).await?;
            }
        }
        Action::Scale { service, replicas } => cluster.scale(service, *replicas).await?,
        Action::Rollout { service } => cluster.rollout(service).await?,
        Action::Crash { service, replicas } => cluster.crash(service, *replicas).await?,
        Action::Request {
            request,
            expect,
            eventually,
        } => {
            let mut retry = Retry::new(*eventually, state.slowness);
            while let Err(e) = request_once(state, request, expect).await {
                retry.again(e).await?;
            }
        }
        Action::StartLoad(spec) => {
            let load = start_load(state, spec)?;
            state.loads.insert(spec.name().to_owned(), load);
        }
        Action::StopLoad { name, expect } => {
            let load = state
                .loads
                .remove(name)
                .ok_or_else(|| format!("no load {name:?} is running"))?;
            stop_load(load, expect).await?;
        }
        Action::Restart(c) => cluster.restart(*c).await?,
        Action::Stop(c) => cluster.stop(*c).await?,
        Action::Start(c) => cluster.start(*c).await?,
        Action::Fault(f) => cluster.fault(f).await?,
        Action::RotateSecret(name) => {
            let hosts = state
                .secret_hosts
                .get(name)
                .cloned()
                .ok_or_else(|| format!("{name} is not a tls secret"))?;
            let cert = tls::generate(&hosts)?;
            cluster
                .apply(vec![tls::secret(&state.namespace, name, &cert)])
                .await?;
            state.all_certs.push(cert.der.clone());
            state.certs.insert(name.clone(), cert);
        }
        Action::ConfigMap(data) => cluster.patch_config_map(data).await?,
        Action::Get {
            object,
            expect,
            eventually,
        } => {
            let object = resolve(object, &state.namespace);
            let published = cluster.published_addresses();
            let mut retry = Retry::new(*eventually, state.slowness);
            loop {
                let result = match cluster.get(&object).await {
                    Ok(found) => {
                        check_object(&object, found.as_ref(), expect, published.as_deref())
                            .map_err(StepError::Failed)
                    }
                    Err(e) => Err(e.into()),
                };
                match result {
                    Ok(()) => break,
                    Err(e) => retry.again(e).await?,
                }
            }
        }
        Action::Conf { expect, eventually } => {
            let mut retry = Retry::new(*eventually, state.slowness);
            loop {
                let result = match cluster.conf().await {
                    Ok(text) => serde_json::from_str::<Value>(&text)
                        .map_err(|e| format!("gangplank ctl conf printed no JSON: {e}"))
                        .and_then(|conf| check_fields("the snapshot", &conf, expect))
                        .map_err(StepError::Failed),
                    Err(e) => Err(e.into()),
                };
                match result {
                    Ok(()) => break,
                    Err(e) => retry.again(e).await?,
                }
            }
        }
        Action::Sleep(d) => tokio::time::sleep(*d).await,
    }
    Ok(())
}

fn resolve(r: &ObjectRef, namespace: &str) -> ObjectRef {
    ObjectRef {
        namespace: Some(r.namespace.clone().unwrap_or_else(|| namespace.to_owned())),
        ..r.clone()
    }
}

/// The headers of a request: its own, then one `Cookie` header with its cookies and
/// the jar's.
fn headers_of(request: &RequestSpec, jar: Option<&Jar>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut cookies: BTreeMap<&String, &String> = BTreeMap::new();
    if let Some(jar) = jar {
        cookies.extend(jar.cookies());
    }
    cookies.extend(request.cookies.iter());
    if !cookies.is_empty() {
        let value: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        headers.push(("cookie".to_owned(), value.join("; ")));
    }
    headers
}

fn host_of(host: Option<&str>, target: &Target, tls: bool) -> String {
    host.map(str::to_owned).unwrap_or_else(|| {
        if tls {
            target.https.to_string()
        } else {
            target.http.to_string()
        }
    })
}

async fn send_requests(state: &mut State, request: &RequestSpec) -> Result<Vec<Answer>, StepError> {
    let host = host_of(request.host.as_deref(), &state.target, request.tls);
    let sni = request.sni.clone().or_else(|| request.host.clone());
    let method = request.method.clone().unwrap_or_else(|| "GET".to_owned());
    let mut answers = Vec::new();
    let mut conn: Option<Connection> = None;
    for path in request.paths() {
        for _ in 0..request.count() {
            let mut open = match conn.take() {
                Some(c) if c.is_open() => c,
                _ => Connection::open(&state.target, request.tls, sni.as_deref()).await?,
            };
            let jar = request.jar.as_ref().and_then(|j| state.jars.get(j));
            let headers = headers_of(request, jar);
            let answer = open
                .send(&method, &host, &path, &headers)
                .await
                .map_err(|e| format!("{method} {host}{path}: {e}"))?;
            if let Some(name) = &request.jar {
                state
                    .jars
                    .entry(name.clone())
                    .or_default()
                    .update(&answer.headers);
            }
            let closes = answer
                .headers
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            if !closes {
                conn = Some(open);
            }
            answers.push(answer);
        }
    }
    Ok(answers)
}

/// The Service an expectation names: `name` (in the scenario's namespace) or
/// `namespace/name`.
fn service_matches(expected: &str, namespace: &str, got: &(String, String)) -> bool {
    match expected.split_once('/') {
        Some((ns, name)) => got.0 == ns && got.1 == name,
        None => (got.0.is_empty() || got.0 == namespace) && got.1 == expected,
    }
}

fn header_matches(headers: &http::HeaderMap, name: &str, pattern: &Regex) -> Result<(), String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Err(format!("no {name} header"));
    }
    if values.iter().any(|v| pattern.is_match(v)) {
        Ok(())
    } else {
        Err(format!("{name}: {values:?} does not match /{pattern}/"))
    }
}

fn check_answers(
    state: &State,
    expect: &ResponseExpect,
    answers: &[Answer],
) -> Result<(), StepError> {
    let status = expect.status.unwrap_or(200);
    let services = expect.service.as_ref().map(|s| s.names());
    let headers: Vec<(String, Regex)> = expect
        .headers
        .iter()
        .map(|(k, v)| Regex::new(v).map(|r| (k.clone(), r)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for answer in answers {
        if answer.status != status {
            return Err(format!("expected status {status}, got {}", answer.describe()).into());
        }
        if let Some(names) = &services {
            let got = answer.service();
            let ok = got.as_ref().is_some_and(|g| {
                names
                    .iter()
                    .any(|n| service_matches(n, &state.namespace, g))
            });
            if !ok {
                return Err(format!(
                    "expected an answer from {}, got {}",
                    names.join(" or "),
                    match (&got, answer.instance()) {
                        (Some((ns, svc)), Some(i)) =>
                            format!("{ns}/{svc} ({i}) on {}", answer.path),
                        _ => format!("no echo answer: {}", answer.describe()),
                    }
                )
                .into());
            }
        }
        for (name, pattern) in &headers {
            header_matches(&answer.headers, name, pattern)
                .map_err(|e| format!("{}: {e}", answer.path))?;
        }
        for name in &expect.no_headers {
            if let Some(v) = answer.headers.get(name.as_str()) {
                return Err(format!("{}: unexpected {name}: {v:?}", answer.path).into());
            }
        }
        if let Some(cert) = &expect.cert {
            let served = answer.cert.as_ref().ok_or("no certificate was served")?;
            if cert == "default" {
                if state.all_certs.iter().any(|c| c == served) {
                    return Err(format!(
                        "{}: a scenario certificate was served, expected the default one",
                        answer.path
                    )
                    .into());
                }
            } else {
                let wanted = state
                    .certs
                    .get(cert)
                    .ok_or_else(|| format!("no certificate {cert}"))?;
                if &wanted.der != served {
                    let which = if state.all_certs.iter().any(|c| c == served) {
                        "another (or an older) scenario certificate"
                    } else {
                        "a certificate the scenario did not make (the default?)"
                    };
                    return Err(format!(
                        "{}: expected the certificate of {cert}, got {which}",
                        answer.path
                    )
                    .into());
                }
            }
        }
        if let Some(name) = &expect.same_as {
            let wanted = state.remembered.get(name).ok_or("nothing remembered")?;
            if answer.instance() != Some(wanted.as_str()) {
                return Err(format!(
                    "expected {wanted} (remembered as {name}), got {:?}",
                    answer.instance()
                )
                .into());
            }
        }
        if let Some(name) = &expect.not_same_as {
            let avoided = state.remembered.get(name).ok_or("nothing remembered")?;
            if answer.instance() == Some(avoided.as_str()) {
                return Err(format!("expected another instance than {avoided} ({name})").into());
            }
        }
        if let Some(upstream) = &expect.upstream {
            let echo = answer
                .echo
                .as_ref()
                .ok_or_else(|| format!("no echo answer: {}", answer.describe()))?;
            if let Some(path) = &upstream.path
                && &echo.path != path
            {
                return Err(
                    format!("the upstream saw path {:?}, expected {path:?}", echo.path).into(),
                );
            }
            for (name, pattern) in &upstream.headers {
                let re = Regex::new(pattern).map_err(|e| e.to_string())?;
                match echo.headers.get(&name.to_ascii_lowercase()) {
                    Some(v) if re.is_match(v) => {}
                    Some(v) => {
                        return Err(format!(
                            "the upstream saw {name}: {v:?}, which does not match /{pattern}/"
                        )
                        .into());
                    }
                    None => return Err(format!("the upstream saw no {name} header").into()),
                }
            }
            for name in &upstream.no_headers {
                if let Some(v) = echo.headers.get(&name.to_ascii_lowercase()) {
                    return Err(format!("the upstream saw {name}: {v:?}").into());
                }
            }
        }
    }
    let instances: BTreeSet<&str> = answers.iter().filter_map(Answer::instance).collect();
    if let Some(n) = expect.instances
        && instances.len() != n
    {
        return Err(format!(
            "expected {n} distinct instances over {} answers, got {}: {instances:?}",
            answers.len(),
            instances.len()
        )
        .into());
    }
    if expect.same_instance && instances.len() != 1 {
        return Err(
            format!("expected one instance to answer everything, got {instances:?}").into(),
        );
    }
    if let Some(f) = &expect.fraction {
        let hits = answers
            .iter()
            .filter(|a| {
                a.service()
                    .is_some_and(|g| service_matches(&f.service, &state.namespace, &g))
            })
            .count();
        let share = hits as f64 / answers.len().max(1) as f64;
        if share < f.min || share > f.max {
            return Err(format!(
                "{} of {} answers ({:.1}%) came from {}, expected {:.0}%..{:.0}%",
                hits,
                answers.len(),
                share * 100.0,
                f.service,
                f.min * 100.0,
                f.max * 100.0
            )
            .into());
        }
    }
    Ok(())
}

/// Checks JSON pointers of `value` (`null` expected: absent or null).
fn check_fields(what: &str, value: &Value, fields: &BTreeMap<String, Value>) -> Result<(), String> {
    for (pointer, wanted) in fields {
        let got = value.pointer(pointer).unwrap_or(&Value::Null);
        if got != wanted {
            return Err(format!("{what}: {pointer} is {got}, expected {wanted}"));
        }
    }
    Ok(())
}

fn check_object(
    object: &ObjectRef,
    found: Option<&Value>,
    expect: &ObjectExpect,
    published: Option<&[String]>,
) -> Result<(), String> {
    let Some(found) = found else {
        return if expect.exists {
            Err(format!("{object} does not exist"))
        } else {
            Ok(())
        };
    };
    if !expect.exists {
        return Err(format!("{object} still exists"));
    }
    if let Some(want) = expect.published {
        let entries: Vec<String> = found
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.get("ip")
                    .or_else(|| e.get("hostname"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        match (want, published) {
            (false, _) if !entries.is_empty() => {
                return Err(format!(
                    "{object} has status addresses {entries:?}, expected none"
                ));
            }
            (true, _) if entries.is_empty() => {
                return Err(format!("{object} has no status.loadBalancer address yet"));
            }
            (true, Some(addresses)) => {
                let got: BTreeSet<&String> = entries.iter().collect();
                let wanted: BTreeSet<&String> = addresses.iter().collect();
                if got != wanted {
                    return Err(format!(
                        "{object} publishes {entries:?}, expected {addresses:?}"
                    ));
                }
            }
            _ => {}
        }
    }
    check_fields(&object.to_string(), found, &expect.fields)
}

fn start_load(state: &State, spec: &LoadSpec) -> Result<Load, String> {
    let interval = match &spec.interval {
        Some(text) => parse_duration(&Value::String(text.clone()))?,
        None => Duration::from_millis(5),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let host = host_of(spec.host.as_deref(), &state.target, spec.tls);
    let request = RequestSpec {
        host: spec.host.clone(),
        path: spec.path.clone(),
        headers: spec.headers.clone(),
        tls: spec.tls,
        ..RequestSpec::default()
    };
    let status = spec.status.unwrap_or(200);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..spec.connections.unwrap_or(2) {
        let stop = stop.clone();
        let target = state.target.clone();
        let host = host.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            load_loop(target, host, request, status, interval, stop, started).await
        }));
    }
    Ok(Load { stop, tasks })
}

async fn load_loop(
    target: Target,
    host: String,
    request: RequestSpec,
    status: u16,
    interval: Duration,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> LoadStats {
    let mut stats = LoadStats::default();
    let mut conn: Option<Connection> = None;
    let path = request
        .paths()
        .into_iter()
        .next()
        .unwrap_or_else(|| "/".to_owned());
    let headers = headers_of(&request, None);
    let sni = request.host.clone();
    let fail = |stats: &mut LoadStats, why: String| {
        stats.failed += 1;
        if stats.failures.len() < 5 {
            stats
                .failures
                .push(format!("at {:.2}s: {why}", started.elapsed().as_secs_f64()));
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let open = match conn.take() {
            Some(c) if c.is_open() => Ok(c),
            _ => Connection::open(&target, request.tls, sni.as_deref()).await,
        };
        match open {
            Err(e) => fail(&mut stats, e),
            Ok(mut c) => match c.send("GET", &host, &path, &headers).await {
                Ok(answer) if answer.status == status => {
                    stats.ok += 1;
                    conn = Some(c);
                }
                Ok(answer) => {
                    fail(&mut stats, format!("status {}", answer.describe()));
                    conn = Some(c);
                }
                Err(e) => fail(&mut stats, e),
            },
        }
        tokio::time::sleep(interval).await;
    }
    stats
}

async fn stop_load(mut load: Load, expect: &LoadExpect) -> Result<(), String> {
    load.stop.store(true, Ordering::Relaxed);
    let mut total = LoadStats::default();
    for task in std::mem::take(&mut load.tasks) {
        match tokio::time::timeout(Duration::from_secs(15), task).await {
            Ok(Ok(stats)) => {
                total.ok += stats.ok;
                total.failed += stats.failed;
                total.failures.extend(stats.failures);
            }
            Ok(Err(e)) => return Err(format!("a load task failed: {e}")),
            Err(_) => return Err("a load task did not stop within 15s".to_owned()),
        }
    }
    let sent = total.ok + total.failed;
    if total.failed > expect.max_failures {
        return Err(format!(
            "{} of {sent} requests failed (at most {} allowed); first: {}",
            total.failed,
            expect.max_failures,
            total.failures.join("; ")
        ));
    }
    let min = expect.min_requests.unwrap_or(1);
    if sent < min {
        return Err(format!(
            "only {sent} requests were sent, expected at least {min}"
        ));
    }
    Ok(())
}
