//! `rewrite-target` per request (see [`gangplank_store::policy::RewriteRule`] for
//! ingress-nginx's semantics): the new URI sent upstream, or the URL of a 302 for an
//! absolute target.

use gangplank_model::expr::Part;
use gangplank_store::policy::RewriteRule;
use regex::Regex;

use super::template::{Escape, View, expand};

/// The rewritten request target (`/path?query`) or, for an absolute target, the
/// redirect URL.
pub fn rewrite(rule: &RewriteRule, regex: Option<&Regex>, view: &View<'_>) -> String {
    let captures = regex.and_then(|r| r.captures(view.path));
    let mut target = expand(&rule.target, view, captures.as_ref(), Escape::Uri);
    if !rule.redirect && !target.starts_with('/') {
        target.insert(0, '/');
    }
    // A target ending in `?` keeps the request's arguments out (nginx).
    let ends_with_question_mark =
        matches!(rule.target.parts.last(), Some(Part::Literal(text)) if text.ends_with('?'));
    if ends_with_question_mark {
        target.pop();
    } else if let Some(args) = view.uri.query().filter(|q| !q.is_empty()) {
        target.push(if rule.target_has_query { '&' } else { '?' });
        target.push_str(args);
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangplank_model::Location;
    use http::{HeaderMap, Method, Uri};

    fn rule(path: &str, target: &str) -> RewriteRule {
        let mut l = Location {
            path: path.into(),
            backend: "b".into(),
            ..Location::default()
        };
        l.rewrite.target = Some(target.into());
        RewriteRule::compile(&l).unwrap().unwrap()
    }

    fn run(path_regex: &str, target: &str, request: &str, normalised: &str) -> String {
        let rule = rule(path_regex, target);
        let regex = Regex::new(&format!("(?i)^{path_regex}")).unwrap();
        let uri: Uri = request.parse().unwrap();
        let headers = HeaderMap::new();
        let client = crate::headers::ClientInfo::new("192.0.2.1:1".parse().unwrap(), 80, false);
        let view = View {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
            client: &client,
            host: "h",
            path: normalised,
            server_name: "h",
        };
        rewrite(&rule, Some(&regex), &view)
    }

    #[test]
    fn captures_and_arguments() {
        // The classic ingress-nginx example: /something(/|$)(.*) -> /$2.
        assert_eq!(
            run("/something(/|$)(.*)", "/$2", "/something", "/something"),
            "/"
        );
        assert_eq!(
            run("/something(/|$)(.*)", "/$2", "/something/", "/something/"),
            "/"
        );
        assert_eq!(
            run(
                "/something(/|$)(.*)",
                "/$2",
                "/something/new",
                "/something/new"
            ),
            "/new"
        );
        assert_eq!(
            run(
                "/something(/|$)(.*)",
                "/$2",
                "/SOMETHING/a%20b?x=1",
                "/SOMETHING/a b"
            ),
            "/a%20b?x=1"
        );
        assert_eq!(
            run(
                "/api/(v[0-9])/(.*)",
                "/$2/$1",
                "/api/v2/users?q",
                "/api/v2/users"
            ),
            "/users/v2?q"
        );
        assert_eq!(run("/a(.*)", "$1", "/abc", "/abc"), "/bc");
        assert_eq!(run("/a(.*)", "/x?y=1", "/a?z=2", "/a"), "/x?y=1&z=2");
        assert_eq!(run("/a(.*)", "/x?", "/a?z=2", "/a"), "/x");
        assert_eq!(run("/a(.*)", "/x", "/a?", "/a"), "/x");
        assert_eq!(run("/p(.*)", "/q$1", "/p%3Fx", "/p?x"), "/q%3Fx");
        assert_eq!(run("/p(.*)", "/q$1", "/p%25", "/p%"), "/q%25");
    }

    #[test]
    fn absolute_targets_redirect() {
        let r = rule("/old/(.*)", "https://new.example.com/$1");
        assert!(r.redirect);
        assert_eq!(
            run(
                "/old/(.*)",
                "https://new.example.com/$1",
                "/old/page?a=1",
                "/old/page"
            ),
            "https://new.example.com/page?a=1"
        );
    }
}
