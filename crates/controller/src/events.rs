//! Events: what the translation has to tell the owner of an Ingress (an annotation it
//! rejected, a Secret it could not use, a canary it could not attach), or the operator
//! (a global ConfigMap key it could not use, a `--default-ssl-certificate` Secret).
//!
//! The translation only collects them; recording them as Kubernetes Events (and
//! aggregating repeats across rebuilds) is the sync loop's job. Messages are plain
//! text, at most [`MAX_MESSAGE_LEN`] bytes, with user strings quoted (`{:?}`), so a
//! hostile value can neither forge lines nor overflow the API's limits.

use std::collections::HashSet;

use gangplank_model::IngressRef;
use serde::Serialize;

/// Longest event message, in bytes (the Kubernetes limit for an event note).
pub const MAX_MESSAGE_LEN: usize = 1024;

/// The Kubernetes event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    /// Informational.
    Normal,
    /// Something the user should fix: part of the Ingress is ignored or denied.
    Warning,
}

/// The kind of object an event is about (the Kubernetes `involvedObject.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ObjectKind {
    /// An Ingress: its annotations, rules, TLS or backends.
    Ingress,
    /// The global ConfigMap (`--configmap`).
    ConfigMap,
    /// A Secret named by a flag (`--default-ssl-certificate`).
    Secret,
}

/// One event about one object (an Ingress, unless `object_kind` says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Event {
    /// What kind of object the event is about.
    pub object_kind: ObjectKind,
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Normal or Warning.
    pub kind: EventKind,
    /// A CamelCase word, one of [`reason`].
    pub reason: String,
    /// What happened and what Gangplank did about it.
    pub message: String,
}

/// The reasons the translation uses, as Kubernetes event reasons.
pub mod reason {
    /// An annotation value was rejected; the Ingress's locations are denied (503).
    pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";
    /// An annotation was ignored without denying anything (canary settings on an
    /// Ingress that is not a canary).
    pub const ANNOTATION_IGNORED: &str = "AnnotationIgnored";
    /// A `*-snippet` annotation: raw nginx configuration is never supported.
    pub const SNIPPET_IGNORED: &str = "SnippetIgnored";
    /// A TLS Secret is missing or holds no usable certificate and key; its hosts are
    /// served with the default certificate.
    pub const INVALID_SECRET: &str = "InvalidSecret";
    /// A TLS certificate does not name the host it was assigned to; the host is
    /// served with the default certificate.
    pub const CERTIFICATE_MISMATCH: &str = "CertificateMismatch";
    /// A canary Ingress whose host, path and pathType match no primary Ingress.
    pub const CANARY_WITHOUT_PRIMARY: &str = "CanaryWithoutPrimary";
    /// A rule's host is not a valid host name; the rule is ignored.
    pub const INVALID_HOST: &str = "InvalidHost";
    /// A path is invalid for its pathType (or as a regex); the path is ignored.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// A path's backend names no usable Service and port; the path is ignored.
    pub const INVALID_BACKEND: &str = "InvalidBackend";
    /// A key of the global ConfigMap has an invalid value; its default is kept.
    pub const INVALID_CONFIGURATION: &str = "InvalidConfiguration";
}

/// `text` without control characters (escaped as `\n`, `\u{0}`...), cut to at most
/// `max` bytes on a character boundary with the cut marked: fit for an event message
/// or a location's `denied` reason whatever user strings went into it.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let text: String = if text.chars().any(char::is_control) {
        text.chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect()
    } else {
        text.to_owned()
    };
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Collects events in the order they happen, without duplicates.
#[derive(Debug, Default)]
pub(crate) struct Events {
    list: Vec<Event>,
    seen: HashSet<Event>,
}

impl Events {
    /// Records a Warning about `ingress`.
    pub(crate) fn warn(&mut self, ingress: &IngressRef, reason: &str, message: impl AsRef<str>) {
        self.warn_on(
            ObjectKind::Ingress,
            &ingress.namespace,
            &ingress.name,
            reason,
            message,
        );
    }

    /// Records a Warning about the object `kind` `namespace/name`.
    pub(crate) fn warn_on(
        &mut self,
        object_kind: ObjectKind,
        namespace: &str,
        name: &str,
        reason: &str,
        message: impl AsRef<str>,
    ) {
        let event = Event {
            object_kind,
            namespace: truncate(namespace, MAX_MESSAGE_LEN),
            name: truncate(name, MAX_MESSAGE_LEN),
            kind: EventKind::Warning,
            reason: reason.to_owned(),
            message: truncate(message.as_ref(), MAX_MESSAGE_LEN),
        };
        if self.seen.insert(event.clone()) {
            self.list.push(event);
        }
    }

    /// The events, in order.
    pub(crate) fn into_vec(self) -> Vec<Event> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(600);
        let cut = truncate(&long, MAX_MESSAGE_LEN);
        assert!(cut.len() <= MAX_MESSAGE_LEN);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("a\r\nb\0", 100), "a\\r\\nb\\u{0}");
    }

    #[test]
    fn duplicates_are_recorded_once() {
        let ingress = IngressRef {
            namespace: "ns".into(),
            name: "a".into(),
        };
        let mut events = Events::default();
        events.warn(&ingress, reason::INVALID_PATH, "same");
        events.warn(&ingress, reason::INVALID_PATH, "same");
        events.warn(&ingress, reason::INVALID_PATH, "other");
        assert_eq!(events.into_vec().len(), 2);
    }
}
