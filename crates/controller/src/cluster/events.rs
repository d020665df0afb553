//! Translation events published as Kubernetes Events (`events.k8s.io/v1`) on the
//! object they concern (an Ingress, the global ConfigMap, a flagged Secret), so
//! `kubectl describe` shows them.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};

use crate::sync::EventSink;
use crate::{Event, EventKind, ObjectKind};

/// An [`EventSink`] writing Kubernetes Events (and a log line each).
#[derive(Clone)]
pub struct KubeEvents {
    recorder: Recorder,
}

impl KubeEvents {
    /// Events reported as `controller` (the reporting controller name) from
    /// `instance` (the pod name).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> KubeEvents {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance,
        };
        KubeEvents {
            recorder: Recorder::new(client, reporter),
        }
    }
}

impl EventSink for KubeEvents {
    fn publish(&self, events: Vec<Event>) {
        crate::sync::LogEvents.publish(events.clone());
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            for event in events {
                let (api_version, kind) = match event.object_kind {
                    ObjectKind::Ingress => ("networking.k8s.io/v1", "Ingress"),
                    ObjectKind::ConfigMap => ("v1", "ConfigMap"),
                    ObjectKind::Secret => ("v1", "Secret"),
                };
                let reference = ObjectReference {
                    api_version: Some(api_version.to_owned()),
                    kind: Some(kind.to_owned()),
                    namespace: Some(event.namespace.clone()),
                    name: Some(event.name.clone()),
                    ..ObjectReference::default()
                };
                let kube_event = KubeEvent {
                    type_: match event.kind {
                        EventKind::Warning => EventType::Warning,
                        EventKind::Normal => EventType::Normal,
                    },
                    reason: event.reason.clone(),
                    note: Some(event.message.clone()),
                    action: "Sync".to_owned(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&kube_event, &reference).await {
                    tracing::warn!(error = %e, object = %format!("{kind} {}/{}", event.namespace, event.name), "cannot publish event");
                }
            }
        });
    }
}
