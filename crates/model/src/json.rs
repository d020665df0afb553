//! Decoding JSON documents with the path of the first field that did not fit.
//!
//! Decoding checks shapes and types only; values are checked afterwards by
//! [`crate::validate`]. Both report paths in the same `$[0].endpoints[1].port` form.

use std::fmt::Write as _;

use serde::de::DeserializeOwned;

use crate::validate::{Problem, write_key};

/// A JSON document that could not be decoded into the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DecodeError {
    /// JSON path of the field where decoding failed (`$` for the document itself).
    pub path: String,
    /// What serde found wrong (syntax error, wrong type, unknown variant...).
    pub message: String,
}

impl From<DecodeError> for Problem {
    fn from(e: DecodeError) -> Self {
        Problem {
            path: e.path,
            message: e.message,
        }
    }
}

/// Decodes `bytes` as a `T`, reporting the JSON path of the first bad field.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError {
            path: "$".into(),
            message: "the request body is empty; a JSON document was expected".into(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = render_path(e.path());
        let inner = e.into_inner();
        DecodeError {
            path,
            message: inner.to_string(),
        }
    })?;
    de.end().map_err(|e| DecodeError {
        path: "$".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::from("$");
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Map { key } => {
                let _ = write_key(&mut out, key);
            }
            Segment::Enum { variant } => {
                let _ = write_key(&mut out, variant);
            }
            // A key serde had not read yet (syntax errors): the parent is the best
            // path there is.
            Segment::Unknown => {}
        }
    }
    out
}

/// Serde helper: `null` decodes as the type's default (Go encodes nil slices and maps
/// as `null` when a field is not `omitempty`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    use serde::Deserialize as _;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    #[test]
    fn reports_the_path_of_a_wrong_type() {
        let err = decode::<Vec<Backend>>(
            br#"[{"name":"a"},{"name":"b","endpoints":[{"address":"1.2.3.4","port":{}}]}]"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "$[1].endpoints[0].port");
    }

    #[test]
    fn reports_syntax_errors_at_the_root() {
        let err = decode::<Vec<Backend>>(b"[{").unwrap_err();
        assert_eq!(err.path, "$[0]");
        let err = decode::<Vec<Backend>>(b"").unwrap_err();
        assert_eq!(err.path, "$");
        assert!(err.message.contains("empty"));
        let err = decode::<Vec<Backend>>(b"[] trailing").unwrap_err();
        assert_eq!(err.path, "$");
    }
}
