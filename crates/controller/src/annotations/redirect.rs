//! Rewrites and redirects: `rewrite-target`, `use-regex`, `permanent-redirect[-code]`,
//! `temporal-redirect[-code]`, `app-root`, `ssl-redirect`, `force-ssl-redirect`,
//! `preserve-trailing-slash` (`from-to-www-redirect` is host-wide: [`super::server`]).

use gangplank_model::policy::{Redirect, Rewrite, check_rewrite_target, check_uri_path};

use super::{Reader, model_check};

/// `rewrite-target`, `use-regex`.
pub(super) fn rewrite(reader: &mut Reader<'_>) -> Rewrite {
    Rewrite {
        target: reader.text("rewrite-target", check_rewrite_target),
        use_regex: reader.boolean("use-regex").unwrap_or(false),
    }
}

/// A redirect URL, checked as the model checks it (absolute http(s), nginx variables
/// only where the data plane can evaluate them).
fn check_redirect_url(url: &str) -> Result<(), String> {
    model_check(&Redirect {
        permanent_url: Some(url.to_owned()),
        ..Redirect::default()
    })
}

/// A redirect code: a number, used when in `range`, else ingress-nginx's default for
/// the annotation (with a Warning).
fn code(
    reader: &mut Reader<'_>,
    name: &str,
    range: std::ops::RangeInclusive<u16>,
    default: u16,
) -> u16 {
    let Some(code) = reader.integer(name, i64::MIN, i64::MAX) else {
        return default;
    };
    match u16::try_from(code) {
        Ok(code) if range.contains(&code) => code,
        _ => {
            reader.ignore(
                name,
                format!(
                    "{code} is not in {}..={}; {default} is used, as ingress-nginx does",
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }
}

/// Every redirect of a location.
pub(super) fn redirect(reader: &mut Reader<'_>) -> Redirect {
    let defaults = Redirect::default();
    let app_root = if reader
        .get("app-root")
        .is_some_and(|root| root.contains("://"))
    {
        reader.ignore(
            "app-root",
            "it is an absolute URL; app-root must be a path on this host, as in ingress-nginx",
        );
        None
    } else {
        reader.text("app-root", check_uri_path)
    };
    Redirect {
        permanent_url: reader.text("permanent-redirect", check_redirect_url),
        permanent_code: code(
            reader,
            "permanent-redirect-code",
            300..=308,
            defaults.permanent_code,
        ),
        temporal_url: reader.text("temporal-redirect", check_redirect_url),
        temporal_code: code(
            reader,
            "temporal-redirect-code",
            300..=307,
            defaults.temporal_code,
        ),
        app_root,
        ssl_redirect: reader.boolean("ssl-redirect"),
        force_ssl_redirect: reader.boolean("force-ssl-redirect"),
        preserve_trailing_slash: reader.boolean("preserve-trailing-slash"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_map;
    use crate::events::reason;

    #[test]
    fn redirects() {
        let (a, events) = parse_map(&[
            ("permanent-redirect", "https://new.example.com$request_uri"),
            ("permanent-redirect-code", "308"),
            ("temporal-redirect", "https://maintenance.example.com/"),
            ("app-root", "/app"),
            ("ssl-redirect", "false"),
            ("force-ssl-redirect", "true"),
            ("preserve-trailing-slash", "true"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        let r = &a.location.redirect;
        assert_eq!(r.permanent_code, 308);
        assert_eq!(r.temporal_code, 302);
        assert_eq!(
            r.location_redirect(),
            Some((302, "https://maintenance.example.com/"))
        );
        assert_eq!(r.app_root.as_deref(), Some("/app"));
        assert_eq!(
            (
                r.ssl_redirect,
                r.force_ssl_redirect,
                r.preserve_trailing_slash
            ),
            (Some(false), Some(true), Some(true))
        );
    }

    #[test]
    fn out_of_range_codes_and_absolute_app_roots_fall_back() {
        let (a, events) = parse_map(&[
            ("permanent-redirect", "https://new.example.com/"),
            ("permanent-redirect-code", "309"),
            ("temporal-redirect-code", "200"),
            ("app-root", "https://elsewhere.example.com/"),
        ]);
        assert_eq!(a.location.denied, None);
        assert_eq!(a.location.redirect.permanent_code, 301);
        assert_eq!(a.location.redirect.temporal_code, 302);
        assert_eq!(a.location.redirect.app_root, None);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.reason == reason::ANNOTATION_IGNORED)
        );
    }

    #[test]
    fn hostile_redirects_deny() {
        for (name, value) in [
            ("permanent-redirect", "http://a/;}location /x{return 200;}#"),
            ("permanent-redirect", "/relative"),
            ("temporal-redirect", "javascript:alert(1)"),
            ("temporal-redirect", "http://$http_x_target/"),
            ("permanent-redirect-code", "30x"),
            ("app-root", "../../etc/passwd"),
            ("app-root", "//evil.example.com"),
            ("ssl-redirect", "yes"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
            assert_eq!(
                a.location.redirect,
                gangplank_model::policy::Redirect::default(),
                "{name}: {value:?}"
            );
        }
    }
}
