//! Access log and Prometheus metrics, both fed from one record per request and both
//! produced off the request path.
//!
//! Workers fill a [`RequestRecord`] (mostly `Arc` clones and numbers). Metrics are
//! counted in place, in the worker's own shard of the registry (an uncontended lock;
//! a scrape merges the shards). Access log records go to a bounded channel that one
//! telemetry thread drains every [`DRAIN_INTERVAL`], formatting the lines (ingress-
//! nginx's default `log-format-upstream`, or a JSON object with the same fields) and
//! writing them in one burst: a request never wakes another thread. When the channel
//! is full, records are dropped and counted, as ingress-nginx's Lua monitor drops
//! metrics when its batch is full: telemetry never slows traffic down.
//!
//! Metric names and labels are ingress-nginx's (Part B §8) so existing dashboards keep
//! working. The text exposition is written here rather than with a client library
//! because ingress-nginx's counters have no `_total` suffix
//! (`nginx_ingress_controller_requests`), which OpenMetrics libraries add.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gangplank_store::{LocationLabels, Status};
use http::{HeaderValue, Method, Version};

/// Where access log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// No access log.
    Off,
    /// ingress-nginx's text format on stdout.
    Text,
    /// One JSON object per line on stdout.
    Json,
}

/// Everything the access log and the metrics need about one request.
#[derive(Debug)]
pub struct RequestRecord {
    /// When the line is logged, i.e. the request ended (wall clock, for `$time_local`).
    pub time: SystemTime,
    /// `$request_time`.
    pub duration: Duration,
    /// The client address.
    pub remote_addr: IpAddr,
    /// Request method.
    pub method: Method,
    /// Request target as received (`Uri` clones share its bytes).
    pub target: http::Uri,
    /// HTTP version.
    pub version: Version,
    /// Status sent to the client.
    pub status: u16,
    /// Response body bytes sent (`$body_bytes_sent`).
    pub body_bytes_sent: u64,
    /// Request size estimate: request line, headers and body (`$request_length`).
    pub request_length: u64,
    /// `Referer` header.
    pub referer: Option<HeaderValue>,
    /// `User-Agent` header.
    pub user_agent: Option<HeaderValue>,
    /// `X-Request-ID` sent upstream (`$req_id`).
    pub request_id: Option<HeaderValue>,
    /// The matched location's labels; `None` for requests no Ingress defines.
    pub labels: Option<Arc<LocationLabels>>,
    /// The canary backend that served the request (`$proxy_alternative_upstream_name`).
    pub canary: Option<String>,
    /// The endpoint that answered (`$upstream_addr`).
    pub upstream_addr: Option<SocketAddr>,
    /// Upstream status (`$upstream_status`).
    pub upstream_status: Option<u16>,
    /// Time until the upstream response header (`$upstream_response_time`).
    pub upstream_response_time: Option<Duration>,
    /// Write an access log line (`enable-access-log`; metrics count the request
    /// either way).
    pub access_log: bool,
}

/// The telemetry pipeline: a bounded channel to the telemetry thread.
#[derive(Debug)]
pub struct Telemetry {
    /// Present when the access log is on.
    tx: Option<SyncSender<RequestRecord>>,
    dropped: AtomicU64,
    metrics: Arc<Metrics>,
}

/// Records waiting for the telemetry thread, at most.
const QUEUE: usize = 65_536;

/// How often the telemetry thread writes the access log.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(50);

std::thread_local! {
    /// The metrics shard of this thread (the worker index; 0 for other threads).
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Makes the current thread count its metrics in shard `index` (called once by each
/// worker thread).
pub fn set_worker_shard(index: usize) {
    SHARD.with(|s| s.set(index));
}

impl Telemetry {
    /// Starts the telemetry thread.
    pub fn start(
        access_log: AccessLog,
        status: Arc<Status>,
        const_labels: ConstLabels,
        workers: usize,
    ) -> std::io::Result<Arc<Telemetry>> {
        let metrics = Arc::new(Metrics::new(status, const_labels, workers));
        let tx = if access_log == AccessLog::Off {
            None
        } else {
            let (tx, rx) = sync_channel(QUEUE);
            std::thread::Builder::new()
                .name("gangplank-telemetry".into())
                .spawn(move || run(&rx, access_log))?;
            Some(tx)
        };
        Ok(Arc::new(Telemetry {
            tx,
            dropped: AtomicU64::new(0),
            metrics,
        }))
    }

    /// Counts the request in the metrics and queues its access log line; never blocks.
    pub fn record(&self, mut record: RequestRecord) {
        self.metrics.observe(&record);
        let Some(tx) = self.tx.as_ref().filter(|_| record.access_log) else {
            return;
        };
        // nginx's `$time_local` is the time the line is logged: the request's end. Read
        // the clock only when a line will be written.
        record.time = SystemTime::now();
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self
                    .dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(10_000)
                {
                    tracing::warn!("telemetry queue full; dropping access log records");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// The metrics, for the `/metrics` endpoint.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

fn run(rx: &Receiver<RequestRecord>, access_log: AccessLog) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut line = String::with_capacity(512);
    loop {
        // Sleep, then drain: senders never have to wake this thread.
        std::thread::sleep(DRAIN_INTERVAL);
        loop {
            let record = match rx.try_recv() {
                Ok(record) => record,
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            };
            line.clear();
            match access_log {
                AccessLog::Json => format_json(&record, &mut line),
                _ => format_text(&record, &mut line),
            }
            let _ = out.write_all(line.as_bytes());
        }
        let _ = out.flush();
    }
}

/// `path?query`, as nginx's `$request` shows it.
fn target(uri: &http::Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

fn dash(value: Option<&HeaderValue>) -> &str {
    value.and_then(|v| v.to_str().ok()).unwrap_or("-")
}

fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// nginx's `$time_local`: `26/Nov/2026:10:08:35 +0000` (UTC).
fn time_local(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::calendar::civil_from_days(days as i64);
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        crate::calendar::month_name(m),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// ingress-nginx's default `log-format-upstream`:
/// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
/// "$http_referer" "$http_user_agent" $request_length $request_time
/// [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr
/// $upstream_response_length $upstream_response_time $upstream_status $req_id`.
/// Quoted fields escape `"`, `\` and control bytes as nginx does (`\xHH`).
pub fn format_text(r: &RequestRecord, out: &mut String) {
    let _ = write!(out, "{} - - [{}] \"", r.remote_addr, time_local(r.time));
    escape_into(
        &format!("{} {} {}", r.method, target(&r.target), version(r.version)),
        out,
    );
    let _ = write!(out, "\" {} {} \"", r.status, r.body_bytes_sent);
    escape_into(dash(r.referer.as_ref()), out);
    out.push_str("\" \"");
    escape_into(dash(r.user_agent.as_ref()), out);
    let upstream = r.labels.as_ref().map_or("", |l| l.backend.as_str());
    let _ = writeln!(
        out,
        "\" {} {} [{}] [{}] {} {} {} {} {}",
        r.request_length,
        seconds(r.duration),
        upstream,
        r.canary.as_deref().unwrap_or(""),
        r.upstream_addr
            .map_or_else(|| "-".to_owned(), |a| a.to_string()),
        if r.upstream_addr.is_some() {
            r.body_bytes_sent.to_string()
        } else {
            "-".to_owned()
        },
        r.upstream_response_time
            .map_or_else(|| "-".to_owned(), seconds),
        r.upstream_status
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        dash(r.request_id.as_ref()),
    );
}

fn escape_into(text: &str, out: &mut String) {
    for b in text.bytes() {
        match b {
            b'"' | b'\\' => {
                let _ = write!(out, "\\x{b:02X}");
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
}

/// The same fields as one JSON object.
pub fn format_json(r: &RequestRecord, out: &mut String) {
    let labels = r.labels.as_deref();
    let value = serde_json_like(&[
        ("time", time_local(r.time)),
        ("remote_addr", r.remote_addr.to_string()),
        (
            "request",
            format!("{} {} {}", r.method, target(&r.target), version(r.version)),
        ),
        ("status", r.status.to_string()),
        ("body_bytes_sent", r.body_bytes_sent.to_string()),
        ("http_referer", dash(r.referer.as_ref()).to_owned()),
        ("http_user_agent", dash(r.user_agent.as_ref()).to_owned()),
        ("request_length", r.request_length.to_string()),
        ("request_time", seconds(r.duration)),
        (
            "proxy_upstream_name",
            labels.map_or_else(String::new, |l| l.backend.clone()),
        ),
        (
            "proxy_alternative_upstream_name",
            r.canary.clone().unwrap_or_default(),
        ),
        (
            "upstream_addr",
            r.upstream_addr
                .map_or_else(|| "-".to_owned(), |a| a.to_string()),
        ),
        (
            "upstream_response_time",
            r.upstream_response_time
                .map_or_else(|| "-".to_owned(), seconds),
        ),
        (
            "upstream_status",
            r.upstream_status
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        ),
        ("req_id", dash(r.request_id.as_ref()).to_owned()),
        (
            "namespace",
            labels.map_or_else(String::new, |l| l.namespace.clone()),
        ),
        (
            "ingress",
            labels.map_or_else(String::new, |l| l.ingress.clone()),
        ),
        (
            "service",
            labels.map_or_else(String::new, |l| l.service.clone()),
        ),
    ]);
    out.push_str(&value);
    out.push('\n');
}

fn serde_json_like(fields: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_string(k), json_string(v));
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------

/// Constant labels on every metric (`controller_namespace`, `controller_class`,
/// `controller_pod`).
#[derive(Debug, Clone, Default)]
pub struct ConstLabels {
    /// Namespace of the controller pod.
    pub namespace: String,
    /// The IngressClass controller value.
    pub class: String,
    /// The pod name.
    pub pod: String,
}

/// Prometheus default buckets (`--time-buckets`).
const TIME_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// ingress-nginx's `--length-buckets`: linear 10..100.
const LENGTH_BUCKETS: [f64; 10] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

/// One series: the location's labels (compared by content, cloned by `Arc`), status,
/// method and canary. Building a key allocates nothing except for canary requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    labels: Arc<LocationLabels>,
    status: u16,
    method: &'static str,
    canary: Option<String>,
}

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Series {
    fn add(&mut self, other: &Series) {
        self.requests += other.requests;
        for (mine, theirs) in [
            (&mut self.request_duration, &other.request_duration),
            (&mut self.response_duration, &other.response_duration),
            (&mut self.request_size, &other.request_size),
            (&mut self.response_size, &other.response_size),
        ] {
            if let Some(theirs) = theirs {
                match mine {
                    Some(m) => m.add(theirs),
                    None => *mine = Some(theirs.clone()),
                }
            }
        }
    }
}

impl Histogram {
    fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    fn new(buckets: usize) -> Histogram {
        Histogram {
            counts: vec![0; buckets],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, bounds: &[f64], value: f64) {
        if let Some(i) = bounds.iter().position(|b| value <= *b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Series {
    requests: u64,
    request_duration: Option<Histogram>,
    response_duration: Option<Histogram>,
    request_size: Option<Histogram>,
    response_size: Option<Histogram>,
}

/// Labels kept at most; beyond this new label sets are not recorded (bounded memory
/// whatever the traffic).
const MAX_SERIES: usize = 10_000;

/// Per-worker series; foldhash rather than SipHash: every request hashes its key,
/// and the keys' parts are bounded (labels from the configuration, status, method).
type Shard = Mutex<HashMap<SeriesKey, Series, foldhash::fast::RandomState>>;

/// The metrics registry: one shard per worker, merged at scrape time.
#[derive(Debug)]
pub struct Metrics {
    shards: Vec<Shard>,
    status: Arc<Status>,
    const_labels: ConstLabels,
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        // Extension methods are unbounded: one label for all of them.
        _ => "OTHER",
    }
}

impl Metrics {
    fn new(status: Arc<Status>, const_labels: ConstLabels, workers: usize) -> Metrics {
        let shards = (0..workers.max(1))
            .map(|_| Mutex::new(HashMap::default()))
            .collect();
        Metrics {
            shards,
            status,
            const_labels,
        }
    }

    /// Counts one request. Requests to hosts no Ingress defines are not counted
    /// (ingress-nginx's default without `--metrics-per-undefined-host`).
    pub fn observe(&self, r: &RequestRecord) {
        let Some(labels) = &r.labels else {
            return;
        };
        let key = SeriesKey {
            labels: labels.clone(),
            status: r.status,
            method: method_label(&r.method),
            canary: r.canary.clone(),
        };
        let shard = SHARD.with(std::cell::Cell::get) % self.shards.len();
        let mut map = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        // Hashing a key is cheap: the labels hash their precomputed fingerprint.
        if map.len() >= MAX_SERIES && !map.contains_key(&key) {
            return;
        }
        let s = map.entry(key).or_default();
        s.requests += 1;
        s.request_duration
            .get_or_insert_with(|| Histogram::new(TIME_BUCKETS.len()))
            .observe(&TIME_BUCKETS, r.duration.as_secs_f64());
        if let Some(t) = r.upstream_response_time {
            s.response_duration
                .get_or_insert_with(|| Histogram::new(TIME_BUCKETS.len()))
                .observe(&TIME_BUCKETS, t.as_secs_f64());
        }
        s.request_size
            .get_or_insert_with(|| Histogram::new(LENGTH_BUCKETS.len()))
            .observe(&LENGTH_BUCKETS, r.request_length as f64);
        s.response_size
            .get_or_insert_with(|| Histogram::new(LENGTH_BUCKETS.len()))
            .observe(&LENGTH_BUCKETS, r.body_bytes_sent as f64);
    }

    /// Every series, the shards merged.
    fn merged(&self) -> HashMap<SeriesKey, Series> {
        let mut all: HashMap<SeriesKey, Series> = HashMap::new();
        for shard in &self.shards {
            let map = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (key, series) in map.iter() {
                all.entry(key.clone()).or_default().add(series);
            }
        }
        all
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let c = &self.const_labels;
        let constant = format!(
            "controller_class=\"{}\",controller_namespace=\"{}\",controller_pod=\"{}\"",
            escape_label(&c.class),
            escape_label(&c.namespace),
            escape_label(&c.pod)
        );
        let stub = self.status.stub_status();
        let p = "nginx_ingress_controller_nginx_process";
        let _ = writeln!(
            out,
            "# HELP {p}_connections current number of client connections with state {{active, reading, writing, waiting}}"
        );
        let _ = writeln!(out, "# TYPE {p}_connections gauge");
        for (state, v) in [
            ("active", stub.active),
            ("reading", stub.reading),
            ("waiting", stub.waiting),
            ("writing", stub.writing),
        ] {
            let _ = writeln!(out, "{p}_connections{{{constant},state=\"{state}\"}} {v}");
        }
        let _ = writeln!(
            out,
            "# HELP {p}_connections_total total number of connections with state {{accepted, handled}}"
        );
        let _ = writeln!(out, "# TYPE {p}_connections_total counter");
        for (state, v) in [("accepted", stub.accepts), ("handled", stub.handled)] {
            let _ = writeln!(
                out,
                "{p}_connections_total{{{constant},state=\"{state}\"}} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP {p}_requests_total total number of client requests"
        );
        let _ = writeln!(out, "# TYPE {p}_requests_total counter");
        let _ = writeln!(out, "{p}_requests_total{{{constant}}} {}", stub.requests);

        let merged = self.merged();
        let mut rows: Vec<(&SeriesKey, &Series)> = merged.iter().collect();
        rows.sort_by(|a, b| {
            let key = |k: &SeriesKey| {
                (
                    k.labels.host.clone(),
                    k.labels.path.clone(),
                    k.status,
                    k.method,
                    k.canary.clone(),
                )
            };
            key(a.0).cmp(&key(b.0))
        });
        let label_text = |k: &SeriesKey| {
            let l = &k.labels;
            format!(
                "canary=\"{}\",{constant},host=\"{}\",ingress=\"{}\",method=\"{}\",namespace=\"{}\",path=\"{}\",service=\"{}\",status=\"{}\"",
                escape_label(k.canary.as_deref().unwrap_or("")),
                escape_label(&l.host),
                escape_label(&l.ingress),
                k.method,
                escape_label(&l.namespace),
                escape_label(&l.path),
                escape_label(&l.service),
                k.status
            )
        };
        let n = "nginx_ingress_controller";
        let _ = writeln!(
            out,
            "# HELP {n}_requests The total number of client requests"
        );
        let _ = writeln!(out, "# TYPE {n}_requests counter");
        for (l, s) in &rows {
            let _ = writeln!(out, "{n}_requests{{{}}} {}", label_text(l), s.requests);
        }
        type Pick = fn(&Series) -> Option<&Histogram>;
        let histograms: [(&str, &str, &[f64], Pick); 4] = [
            (
                "request_duration_seconds",
                "The request processing time in milliseconds",
                &TIME_BUCKETS,
                |s| s.request_duration.as_ref(),
            ),
            (
                "response_duration_seconds",
                "The time spent on receiving the response from the upstream server",
                &TIME_BUCKETS,
                |s| s.response_duration.as_ref(),
            ),
            (
                "request_size",
                "The request length (including request line, header, and request body)",
                &LENGTH_BUCKETS,
                |s| s.request_size.as_ref(),
            ),
            (
                "response_size",
                "The response length (including request line, header, and request body)",
                &LENGTH_BUCKETS,
                |s| s.response_size.as_ref(),
            ),
        ];
        for (name, help, bounds, pick) in histograms {
            let _ = writeln!(out, "# HELP {n}_{name} {help}");
            let _ = writeln!(out, "# TYPE {n}_{name} histogram");
            for (l, s) in &rows {
                let Some(h) = pick(s) else { continue };
                let labels = label_text(l);
                let mut cumulative = 0;
                for (bound, count) in bounds.iter().zip(&h.counts) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "{n}_{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(out, "{n}_{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{n}_{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{n}_{name}_count{{{labels}}} {}", h.count);
            }
        }
        out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RequestRecord {
        RequestRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_687_715), // 2026-11-26 10:08:35 UTC
            duration: Duration::from_millis(12),
            remote_addr: "192.0.2.1".parse().unwrap(),
            method: Method::GET,
            target: http::Uri::from_static("/api?q=%22x%22"),
            version: Version::HTTP_11,
            status: 200,
            body_bytes_sent: 42,
            request_length: 80,
            referer: None,
            user_agent: Some(HeaderValue::from_static("curl/8.0")),
            request_id: Some(HeaderValue::from_static("0123456789abcdef0123456789abcdef")),
            labels: Some(Arc::new(LocationLabels::new(
                "app.example.com".into(),
                "/api".into(),
                "default".into(),
                "web".into(),
                "echo".into(),
                "default-echo-80".into(),
            ))),
            canary: None,
            upstream_addr: Some("10.0.0.5:8080".parse().unwrap()),
            upstream_status: Some(200),
            upstream_response_time: Some(Duration::from_millis(10)),
            access_log: true,
        }
    }

    #[test]
    fn text_line_matches_the_ingress_nginx_layout() {
        let mut line = String::new();
        format_text(&record(), &mut line);
        assert_eq!(
            line,
            "192.0.2.1 - - [26/Nov/2026:10:08:35 +0000] \"GET /api?q=%22x%22 HTTP/1.1\" 200 42 \"-\" \"curl/8.0\" 80 0.012 [default-echo-80] [] 10.0.0.5:8080 42 0.010 200 0123456789abcdef0123456789abcdef\n"
        );
    }

    #[test]
    fn json_line_is_valid_json() {
        let mut line = String::new();
        format_json(&record(), &mut line);
        assert!(line.starts_with('{') && line.ends_with("}\n"));
        assert!(
            line.contains("\"request\":\"GET /api?q=%22x%22 HTTP/1.1\""),
            "{line}"
        );
    }

    #[test]
    fn metrics_use_ingress_nginx_names_and_labels() {
        let metrics = Metrics::new(
            Status::new(),
            ConstLabels {
                class: "k8s.io/ingress-nginx".into(),
                ..Default::default()
            },
            2,
        );
        metrics.observe(&record());
        metrics.observe(&record());
        let mut undefined = record();
        undefined.labels = None;
        metrics.observe(&undefined);
        let text = metrics.render();
        assert!(text.contains("nginx_ingress_controller_requests{canary=\"\",controller_class=\"k8s.io/ingress-nginx\",controller_namespace=\"\",controller_pod=\"\",host=\"app.example.com\",ingress=\"web\",method=\"GET\",namespace=\"default\",path=\"/api\",service=\"echo\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("nginx_ingress_controller_request_duration_seconds_bucket{"));
        assert!(text.contains("le=\"0.025\"} 2"), "{text}");
        assert!(text.contains("nginx_ingress_controller_response_duration_seconds_count{"));
        assert!(text.contains("nginx_ingress_controller_nginx_process_connections{"));
        assert!(text.contains("nginx_ingress_controller_nginx_process_requests_total{"));
        assert!(
            !text.contains("_requests_total{canary"),
            "no _total suffix on the request counter"
        );
    }
}
