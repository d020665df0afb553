//! The rest of the location settings: `enable-access-log`, `enable-rewrite-log`,
//! `satisfy`, and request mirroring (`mirror-target`, `mirror-host`,
//! `mirror-request-body`).

use gangplank_model::policy::{AccessLogs, Mirror, Satisfy};

use super::{Reader, model_check};

/// `enable-access-log`, `enable-rewrite-log`.
pub(super) fn logs(reader: &mut Reader<'_>) -> AccessLogs {
    let defaults = AccessLogs::default();
    AccessLogs {
        access: reader
            .boolean("enable-access-log")
            .unwrap_or(defaults.access),
        rewrite: reader
            .boolean("enable-rewrite-log")
            .unwrap_or(defaults.rewrite),
    }
}

/// `satisfy`: `all` (the default) or `any`.
pub(super) fn satisfy(reader: &mut Reader<'_>) -> Satisfy {
    reader
        .choice("satisfy", &[("all", Satisfy::All), ("any", Satisfy::Any)])
        .unwrap_or_default()
}

/// `mirror-target`, `mirror-host`, `mirror-request-body`.
pub(super) fn mirror(reader: &mut Reader<'_>) -> Mirror {
    let defaults = Mirror::default();
    Mirror {
        target: reader.text("mirror-target", |target| {
            model_check(&Mirror {
                target: Some(target.to_owned()),
                ..Mirror::default()
            })
        }),
        host: reader.text("mirror-host", |host| {
            model_check(&Mirror {
                host: Some(host.to_owned()),
                ..Mirror::default()
            })
        }),
        request_body: reader
            .on_off("mirror-request-body")
            .unwrap_or(defaults.request_body),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_map;
    use super::*;

    #[test]
    fn misc_settings() {
        let (a, events) = parse_map(&[
            ("enable-access-log", "false"),
            ("enable-rewrite-log", "true"),
            ("satisfy", "any"),
            ("mirror-target", "https://mirror.example.com$request_uri"),
            ("mirror-host", "mirror.example.com"),
            ("mirror-request-body", "off"),
            ("use-port-in-redirects", "true"),
        ]);
        assert!(events.is_empty(), "{events:?}");
        let l = &a.location;
        assert!(!l.logs.access && l.logs.rewrite);
        assert_eq!(l.satisfy, Satisfy::Any);
        assert_eq!(
            l.mirror.target.as_deref(),
            Some("https://mirror.example.com$request_uri")
        );
        assert!(!l.mirror.request_body);
        assert!(l.use_port_in_redirects);
        // The ConfigMap's use-port-in-redirects is the default; the annotation wins.
        let general = gangplank_model::GeneralConfig {
            use_port_in_redirects: Some(true),
            ..Default::default()
        };
        let state = crate::state::ClusterState::default();
        let with = |pairs: &[(&str, &str)]| {
            super::super::tests::parse_with(&state, &general, pairs)
                .0
                .location
                .use_port_in_redirects
        };
        assert!(with(&[]));
        assert!(!with(&[("use-port-in-redirects", "false")]));
        assert!(!parse_map(&[]).0.location.use_port_in_redirects);
        for (name, value) in [
            ("satisfy", "some"),
            ("mirror-target", "mirror.example.com"),
            ("mirror-target", "http://$http_x/"),
            ("mirror-host", "*.example.com"),
            ("enable-access-log", "no"),
        ] {
            let (a, _) = parse_map(&[(name, value)]);
            assert!(a.location.denied.is_some(), "{name}: {value:?}");
        }
    }
}
