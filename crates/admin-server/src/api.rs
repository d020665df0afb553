//! Wire types shared by the server and the client.

use gangplank_model::Problem;
use serde::{Deserialize, Serialize};

/// API paths.
pub mod paths {
    /// Liveness/readiness.
    pub const HEALTHZ: &str = "/healthz";
    /// 200 once backends are known.
    pub const IS_DYNAMIC_LB_INITIALIZED: &str = "/is-dynamic-lb-initialized";
    /// stub_status text.
    pub const NGINX_STATUS: &str = "/nginx_status";
    /// The whole snapshot.
    pub const CONFIGURATION: &str = "/configuration";
    /// The backends array.
    pub const BACKENDS: &str = "/configuration/backends";
    /// General settings.
    pub const GENERAL: &str = "/configuration/general";
    /// Certificates and host mapping.
    pub const SERVERS: &str = "/configuration/servers";
    /// PEM lookup by host (`?hostname=`).
    pub const CERTS: &str = "/configuration/certs";
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// JSON path of the offending field (`$` for the whole body, empty when the error
    /// is not about the body).
    #[serde(default)]
    pub path: String,
    /// Every problem found, when validation found more than one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// Formats a snapshot version as an `ETag` value (`"42"`).
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Parses an `ETag`/`If-Match` value: `"42"`, `W/"42"` or `42`. `*` gives `None`
/// (matches any version); anything else is an error.
pub fn parse_version_tag(value: &str) -> Result<Option<u64>, String> {
    let v = value.trim();
    if v == "*" {
        return Ok(None);
    }
    let v = v.strip_prefix("W/").unwrap_or(v);
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v);
    v.parse::<u64>().map(Some).map_err(|_| {
        format!("{value:?} is not a configuration version (expected an ETag such as \"42\")")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags() {
        assert_eq!(parse_version_tag("\"42\""), Ok(Some(42)));
        assert_eq!(parse_version_tag("W/\"7\""), Ok(Some(7)));
        assert_eq!(parse_version_tag("3"), Ok(Some(3)));
        assert_eq!(parse_version_tag("*"), Ok(None));
        assert!(parse_version_tag("\"abc\"").is_err());
        assert_eq!(etag(5), "\"5\"");
    }
}
