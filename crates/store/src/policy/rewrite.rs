//! `rewrite-target` and `x-forwarded-prefix`.
//!
//! ingress-nginx renders `rewrite "(?i)<path>" <target> break;` in the location, which
//! is in regex mode (any `rewrite-target` on a host makes all its paths
//! case-insensitive, start-anchored regexes: the route table already does that). So:
//! - `$1`..`$9` are the captures of the location's path regex matched against the
//!   normalised path (`$uri`); an unmatched group is empty;
//! - the whole URI is replaced by the expanded target; the request's query string is
//!   appended (after `&` when the target has a `?` of its own, as nginx does);
//! - a target starting with `http://`, `https://` or `$scheme` makes nginx answer a
//!   302 redirect instead;
//! - a target equal to the location's path does nothing (ingress-nginx skips the
//!   rewrite then);
//! - `X-Forwarded-Prefix: <x-forwarded-prefix>` is sent upstream only when a rewrite is
//!   active (Part B §11.10).

use gangplank_model::Location;
use http::HeaderValue;

use super::template::Template;

/// A location's rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteRule {
    /// The target, with captures and variables.
    pub target: Template,
    /// The target has a `?` of its own: the request's query string goes after `&`.
    pub target_has_query: bool,
    /// The target is an absolute URL: answer 302 instead of proxying.
    pub redirect: bool,
    /// `X-Forwarded-Prefix` to send upstream.
    pub x_forwarded_prefix: Option<HeaderValue>,
}

impl RewriteRule {
    /// The location's rewrite; `Ok(None)` without a target or when the target is the
    /// location's own path.
    pub fn compile(location: &Location) -> Result<Option<RewriteRule>, String> {
        let Some(target) = &location.rewrite.target else {
            return Ok(None);
        };
        if *target == location.path {
            return Ok(None);
        }
        let parsed = Template::parse(target).map_err(|e| format!("rewrite-target {e}"))?;
        let x_forwarded_prefix = if location.x_forwarded_prefix.is_empty() {
            None
        } else {
            Some(
                HeaderValue::from_str(&location.x_forwarded_prefix).map_err(|_| {
                    format!(
                        "x-forwarded-prefix {:?} is not a header value",
                        location.x_forwarded_prefix
                    )
                })?,
            )
        };
        Ok(Some(RewriteRule {
            target_has_query: parsed.literal_contains('?'),
            redirect: parsed.is_absolute_url(),
            target: parsed,
            x_forwarded_prefix,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::expr::Part;

    fn location(path: &str, target: Option<&str>, prefix: &str) -> Location {
        let mut l = Location {
            path: path.into(),
            backend: "b".into(),
            x_forwarded_prefix: prefix.into(),
            ..Location::default()
        };
        l.rewrite.target = target.map(str::to_owned);
        l
    }

    #[test]
    fn targets() {
        assert_eq!(
            RewriteRule::compile(&location("/a", None, "/x")).unwrap(),
            None
        );
        assert_eq!(
            RewriteRule::compile(&location("/a", Some("/a"), "/x")).unwrap(),
            None,
            "a target equal to the path is no rewrite"
        );
        let r = RewriteRule::compile(&location("/api(/|$)(.*)", Some("/$2"), "/api"))
            .unwrap()
            .unwrap();
        assert_eq!(
            r.target.parts,
            vec![Part::Literal("/".into()), Part::Capture(2)]
        );
        assert!(!r.target_has_query && !r.redirect);
        assert_eq!(r.x_forwarded_prefix.unwrap(), "/api");
        let r = RewriteRule::compile(&location("/q", Some("/search?q=$arg_x"), ""))
            .unwrap()
            .unwrap();
        assert!(r.target_has_query);
        assert!(r.x_forwarded_prefix.is_none());
        let r = RewriteRule::compile(&location(
            "/old/(.*)",
            Some("https://new.example.com/$1"),
            "",
        ))
        .unwrap()
        .unwrap();
        assert!(r.redirect);
        assert!(RewriteRule::compile(&location("/a", Some("/$unknown"), "")).is_err());
    }
}
