//! Validation: an explicit step, separate from decoding, that reports every problem
//! with the JSON path of the offending field.
//!
//! Decoding (see [`crate::json`]) only checks shapes and types. Validation checks
//! values: port ranges, addresses, names, regexes, header tokens, references. It never
//! stops at the first problem, so a user fixing a payload sees everything at once.
//!
//! Paths are built without allocating on the success path: a [`Path`] is a chain of
//! borrowed segments, rendered only when a problem is recorded.

use std::fmt;

/// One invalid value, with the JSON path where it was found (`$[0].endpoints[1].port`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// JSON path of the offending field, `$` for the document root.
    pub path: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one document. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// The first problem: what a one-line error message shows.
    pub fn first(&self) -> Option<&Problem> {
        self.0.first()
    }

    /// Every problem, in document order.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no problems"),
            [one] => one.fmt(f),
            [first, rest @ ..] => write!(f, "{first} (and {} more)", rest.len()),
        }
    }
}

/// A JSON path under construction: borrowed segments, rendered only on error.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// `$`
    Root,
    /// `<parent>.name` (struct field or identifier-like map key).
    Field(&'a Path<'a>, &'a str),
    /// `<parent>[i]`
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of field or map key `name` below this one.
    pub fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The path of array element `i` below this one.
    pub fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Field(parent, name) => {
                parent.fmt(f)?;
                write_key(f, name)
            }
            Path::Index(parent, i) => {
                parent.fmt(f)?;
                write!(f, "[{i}]")
            }
        }
    }
}

/// Writes `.key` for identifier-like keys and `["key"]` (JSON-escaped) otherwise, the
/// same rule for validation paths and decoding paths.
pub(crate) fn write_key(f: &mut impl fmt::Write, key: &str) -> fmt::Result {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        write!(f, ".{key}")
    } else {
        let quoted = serde_json::to_string(key).map_err(|_| fmt::Error)?;
        write!(f, "[{quoted}]")
    }
}

/// Collects problems while a document is walked.
#[derive(Debug, Default)]
pub struct Report {
    problems: Vec<Problem>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem at `path`.
    pub fn add(&mut self, path: &Path<'_>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Records `result`'s error, if any, at `path`.
    pub fn check(&mut self, path: &Path<'_>, result: Result<(), String>) {
        if let Err(message) = result {
            self.add(path, message);
        }
    }

    /// True when nothing was recorded.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok` when nothing was recorded, else every problem.
    pub fn finish(self) -> Result<(), Problems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(self.problems))
        }
    }
}

/// Types that can check their own values.
pub trait Validate {
    /// Records every problem of `self` (found at `path`) into `report`.
    fn validate_at(&self, path: &Path<'_>, report: &mut Report);

    /// Validates `self` as a whole document.
    fn validate(&self) -> Result<(), Problems> {
        let mut report = Report::new();
        self.validate_at(&Path::Root, &mut report);
        report.finish()
    }
}

impl<T: Validate> Validate for [T] {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        for (i, item) in self.iter().enumerate() {
            item.validate_at(&path.index(i), report);
        }
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        self.as_slice().validate_at(path, report);
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate_at(&self, path: &Path<'_>, report: &mut Report) {
        if let Some(value) = self {
            value.validate_at(path, report);
        }
    }
}

// ---------------------------------------------------------------------------------
// Shared value checks. Each returns a message suitable for a `Problem`.
// ---------------------------------------------------------------------------------

/// Longest string accepted in any free-text field (names, values, patterns).
pub const MAX_STRING_LEN: usize = 4096;

/// Size limit for compiled regexes (paths, canary header patterns): a pattern that would
/// compile to more than this is rejected instead of slowing every request.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Rejects CR, LF, NUL and other control characters, and over-long strings: the rule
/// of Part A.3 for every user string.
pub fn check_text(value: &str) -> Result<(), String> {
    if value.len() > MAX_STRING_LEN {
        return Err(format!("longer than {MAX_STRING_LEN} bytes"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character U+{:04X}; CR, LF, NUL and other control characters are not allowed",
            c as u32
        ));
    }
    Ok(())
}

/// An HTTP header field name: an RFC 9110 token.
pub fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name is empty".into());
    }
    if name.len() > 256 {
        return Err("header name is longer than 256 bytes".into());
    }
    match name.bytes().find(|b| !is_tchar(*b)) {
        None => Ok(()),
        Some(b) => Err(format!(
            "header name {name:?} contains {:?}, which is not allowed in an HTTP token",
            b as char
        )),
    }
}

/// An HTTP header field value: visible ASCII, space, tab and obs-text; no CR, LF, NUL.
pub fn check_header_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_STRING_LEN {
        return Err(format!(
            "header value is longer than {MAX_STRING_LEN} bytes"
        ));
    }
    match value
        .bytes()
        .find(|b| !(*b == b'\t' || (0x20..0x7f).contains(b) || *b >= 0x80))
    {
        None => Ok(()),
        Some(b) => Err(format!(
            "header value contains the byte 0x{b:02x}; control characters (CR, LF, NUL...) are not allowed"
        )),
    }
}

/// RFC 9110 `tchar`.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A cookie name: an RFC 6265 token.
pub fn check_cookie_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("cookie name is empty".into());
    }
    if name.len() > 256 {
        return Err("cookie name is longer than 256 bytes".into());
    }
    match name.bytes().find(|b| !is_tchar(*b)) {
        None => Ok(()),
        Some(b) => Err(format!(
            "cookie name {name:?} contains {:?}, which is not allowed in a cookie name",
            b as char
        )),
    }
}

/// A DNS host name as used in `server_name` and SNI: lowercase or not, optionally a
/// one-label wildcard (`*.example.com`), or `_` for the default server.
pub fn check_hostname(host: &str) -> Result<(), String> {
    if host == "_" {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() {
        return Err("host name is empty".into());
    }
    if name.len() > 253 {
        return Err("host name is longer than 253 bytes".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("host name {host:?} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "host name {host:?} has a label longer than 63 bytes"
            ));
        }
        if let Some(b) = label
            .bytes()
            .find(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'))
        {
            return Err(format!(
                "host name {host:?} contains {:?}; only letters, digits, '-', '_' and '.' are allowed (and a leading '*.')",
                b as char
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host name {host:?} has a label that starts or ends with '-'"
            ));
        }
    }
    Ok(())
}

/// A regex the data plane will compile: size-limited, and only what the `regex` crate
/// can express (no look-around, no back-references).
pub fn check_regex(pattern: &str) -> Result<(), String> {
    check_text(pattern)?;
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| format!("invalid regex {pattern:?}: {}", one_line(&e.to_string())))
}

/// Error texts from some libraries span several lines; problems are one line each.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A TCP/UDP port number in 1..=65535, given as text (`Endpoint.port`).
pub fn check_port_text(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {port:?} is not a number in 1..65535")),
        Ok(p) => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_json_paths() {
        let root = Path::Root;
        let backends = root.index(3);
        let eps = backends.field("endpoints");
        let ep = eps.index(1);
        assert_eq!(ep.field("port").to_string(), "$[3].endpoints[1].port");
        let lb = backends.field("load-balance");
        assert_eq!(lb.to_string(), "$[3].load-balance");
        let certs = root.field("certificates");
        assert_eq!(
            certs.field("a b\"c").to_string(),
            r#"$.certificates["a b\"c"]"#
        );
    }

    #[test]
    fn text_rejects_control_characters() {
        assert!(check_text("plain value").is_ok());
        for bad in ["a\r", "a\nb", "\0", "x\u{7f}"] {
            assert!(check_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_tokens() {
        assert!(check_header_name("X-Canary").is_ok());
        for bad in ["", "X Canary", "X:a", "a\r\nb", "é"] {
            assert!(check_header_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_header_value("v1; q=0.5").is_ok());
        assert!(check_header_value("a\r\nSet-Cookie: x").is_err());
    }

    #[test]
    fn hostnames() {
        for good in [
            "example.com",
            "*.example.com",
            "_",
            "a-b.c_d.io",
            "localhost",
        ] {
            assert!(check_hostname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "*.",
            "a..b",
            "exa mple.com",
            "a.com;",
            "*.*.a.com",
            "-a.com",
            "a/b",
            "ｅxample.com",
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn regexes_are_checked() {
        assert!(check_regex("^/id/[0-9]+$").is_ok());
        assert!(check_regex("(?=look)").is_err());
        assert!(check_regex(r"(a)\1").is_err());
        assert!(check_regex("[").is_err());
        // A pattern that compiles to far more than the size limit.
        assert!(check_regex(r"\w{1000}\w{1000}\w{1000}").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(check_port_text("8080"), Ok(8080));
        for bad in ["0", "65536", "-1", "http", ""] {
            assert!(check_port_text(bad).is_err(), "{bad:?}");
        }
    }
}
