//! Values with nginx variables (`https://$host$request_uri`, `/api/$2`), parsed once at
//! apply time into literal text, request variables and regex captures.
//!
//! The proxy evaluates them per request (`gangplank_proxy::policy`); nothing here is
//! ever rendered into configuration text. Only variables the data plane can evaluate
//! are accepted ([`gangplank_model::expr`]).

use gangplank_model::expr::{ComplexValue, Part, Variable};

/// A parsed value: literal text, variables and `$1`..`$9` captures, concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The parts, in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Parses `text` (`\$` is a literal dollar).
    pub fn parse(text: &str) -> Result<Template, String> {
        ComplexValue::parse(text)
            .map(|value| Template { parts: value.parts })
            .map_err(|e| format!("{text:?}: {e}"))
    }

    /// The text when the template has no variables and no captures.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// True when a literal part contains `c` (the `?` that starts a query in a rewrite
    /// target, for instance).
    pub fn literal_contains(&self, c: char) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Literal(text) if text.contains(c)))
    }

    /// True when the value starts with `http://`, `https://` or `$scheme`: nginx's
    /// test for a rewrite that redirects instead of changing the URI.
    pub fn is_absolute_url(&self) -> bool {
        match self.parts.first() {
            Some(Part::Literal(text)) => {
                let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
                lower.starts_with("http://") || lower.starts_with("https://")
            }
            Some(Part::Var(Variable::Scheme)) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_variables_and_captures() {
        let t = Template::parse("/api/$2?x=$arg_x").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Literal("/api/".into()),
                Part::Capture(2),
                Part::Literal("?x=".into()),
                Part::Var(Variable::Arg("x".into())),
            ]
        );
        assert!(t.literal_contains('?'));
        assert!(!t.is_absolute_url());
        assert_eq!(t.as_literal(), None);
        assert_eq!(
            Template::parse("/plain").unwrap().as_literal(),
            Some("/plain")
        );
        assert!(
            Template::parse("HTTPS://a.example.com/$1")
                .unwrap()
                .is_absolute_url()
        );
        assert!(
            Template::parse("$scheme://$host/")
                .unwrap()
                .is_absolute_url()
        );
        assert!(Template::parse("/$nope").is_err());
    }
}
