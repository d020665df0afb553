//! `labelSelector` and `fieldSelector`, parsed once per request and matched against
//! JSON objects.
//!
//! Labels: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k>n`, `k<n`,
//! comma-separated (all must hold). Fields: `path=v`, `path==v`, `path!=v` where `path` is
//! any dotted path into the object (`metadata.name`, `metadata.namespace`, `type`,
//! `spec.nodeName`...); a missing field reads as `""`. The real server accepts only the
//! fields each kind indexes; this one is more lenient.

use serde_json::Value;

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Exists(String),
    NotExists(String),
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

#[derive(Debug, Clone, PartialEq)]
struct FieldReq {
    path: String,
    value: String,
    equal: bool,
}

/// A parsed label selector plus field selector; the empty one matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selectors {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

impl Selectors {
    /// Parses both selectors (either may be empty).
    pub fn parse(label_selector: &str, field_selector: &str) -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: parse_labels(label_selector)?,
            fields: parse_fields(field_selector)?,
        })
    }

    /// Whether `object` satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|req| match req {
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Gt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelReq::Lt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        });
        labels_ok
            && self.fields.iter().all(|req| {
                let actual = field(object, &req.path);
                (actual == req.value) == req.equal
            })
    }
}

/// The string form of the field at a dotted path (`""` when missing).
fn field(object: &Value, path: &str) -> String {
    let mut cur = object;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn bad_labels(s: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: invalid label selector {s:?}"
    ))
}

fn parse_set(s: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad_labels(whole))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn check_key(k: &str, whole: &str) -> Result<String, ApiError> {
    let ok = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(k.to_string())
    } else {
        Err(bad_labels(whole))
    }
}

fn parse_labels(s: &str) -> Result<Vec<LabelReq>, ApiError> {
    let mut reqs = Vec::new();
    if s.trim().is_empty() {
        return Ok(reqs);
    }
    for part in split_top_level(s) {
        let p = part.trim();
        if p.is_empty() {
            return Err(bad_labels(s));
        }
        let req = if let Some(k) = p.strip_prefix('!') {
            LabelReq::NotExists(check_key(k.trim(), s)?)
        } else if let Some((k, v)) = p.split_once("!=") {
            LabelReq::NotEq(check_key(k.trim(), s)?, v.trim().to_string())
        } else if let Some((k, v)) = p.split_once("==") {
            LabelReq::Eq(check_key(k.trim(), s)?, v.trim().to_string())
        } else if let Some((k, v)) = p.split_once('=') {
            LabelReq::Eq(check_key(k.trim(), s)?, v.trim().to_string())
        } else if let Some((k, v)) = p.split_once('>') {
            let n = v.trim().parse().map_err(|_| bad_labels(s))?;
            LabelReq::Gt(check_key(k.trim(), s)?, n)
        } else if let Some((k, v)) = p.split_once('<') {
            let n = v.trim().parse().map_err(|_| bad_labels(s))?;
            LabelReq::Lt(check_key(k.trim(), s)?, n)
        } else if let Some((k, rest)) = p.split_once(char::is_whitespace) {
            let rest = rest.trim_start();
            if let Some(set) = rest.strip_prefix("notin") {
                LabelReq::NotIn(check_key(k, s)?, parse_set(set, s)?)
            } else if let Some(set) = rest.strip_prefix("in") {
                LabelReq::In(check_key(k, s)?, parse_set(set, s)?)
            } else {
                return Err(bad_labels(s));
            }
        } else {
            LabelReq::Exists(check_key(p, s)?)
        };
        reqs.push(req);
    }
    Ok(reqs)
}

fn parse_fields(s: &str) -> Result<Vec<FieldReq>, ApiError> {
    let mut reqs = Vec::new();
    if s.trim().is_empty() {
        return Ok(reqs);
    }
    for part in s.split(',') {
        let p = part.trim();
        let (path, value, equal) = if let Some((k, v)) = p.split_once("!=") {
            (k, v, false)
        } else if let Some((k, v)) = p.split_once("==") {
            (k, v, true)
        } else if let Some((k, v)) = p.split_once('=') {
            (k, v, true)
        } else {
            return Err(ApiError::bad_request(format!(
                "invalid field selector {s:?}: {p:?} is not a requirement"
            )));
        };
        reqs.push(FieldReq {
            path: path.trim().to_string(),
            value: value.trim().to_string(),
            equal,
        });
    }
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}, "type": "Opaque"})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let m = |s: &str| Selectors::parse(s, "").unwrap().matches(&o);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, api)"));
        assert!(!m("app notin (web,api)"));
        assert!(m("tier notin (back)"));
        assert!(m("app,tier"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("app=web,tier in (front),!x"));
        assert!(m("n>4"));
        assert!(!m("n<5"));
        assert!(Selectors::parse("app in web", "").is_err());
        assert!(Selectors::parse("a b", "").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let m = |s: &str| Selectors::parse("", s).unwrap().matches(&o);
        assert!(m("metadata.name=a"));
        assert!(m("metadata.name==a,metadata.namespace=ns"));
        assert!(!m("metadata.name!=a"));
        assert!(m("type=Opaque"));
        assert!(m("spec.nothing="));
        assert!(Selectors::parse("", "metadata.name").is_err());
    }
}
