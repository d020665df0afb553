//! Leader election on a `coordination.k8s.io/v1` Lease, client-go style: the holder
//! renews `renewTime` every retry period; another replica takes the Lease over once
//! `renewTime + leaseDurationSeconds` has passed. Every write carries the Lease's
//! `resourceVersion`, so two replicas racing for it cannot both win (the loser gets
//! 409 Conflict). Only the leader writes Ingress status; every replica serves.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;

use crate::metrics::ControllerMetrics;

/// The Lease timings (client-go's defaults).
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps leading when renewals fail.
    pub renew_deadline: Duration,
    /// How often every replica tries to acquire or renew.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One replica's side of the election.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
    metrics: Arc<ControllerMetrics>,
}

/// What one attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Leading,
    Following,
    Failed,
}

impl LeaderElection {
    /// The election for Lease `name` in `namespace`, as `identity` (the pod name).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: LeaseTiming,
        metrics: Arc<ControllerMetrics>,
    ) -> LeaderElection {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            metrics,
        }
    }

    /// Runs forever, publishing leadership on `leading`.
    pub async fn run(self, leading: watch::Sender<bool>) {
        let mut last_renewal = tokio::time::Instant::now();
        self.metrics.set_leader(&self.name, false);
        loop {
            let attempt = self.attempt().await;
            let was_leading = *leading.borrow();
            let now_leading = match attempt {
                Attempt::Leading => {
                    last_renewal = tokio::time::Instant::now();
                    true
                }
                Attempt::Following => false,
                // Keep leading through short API trouble, up to the renew deadline.
                Attempt::Failed => {
                    was_leading && last_renewal.elapsed() < self.timing.renew_deadline
                }
            };
            if now_leading != was_leading {
                tracing::info!(lease = %self.name, identity = %self.identity, leading = now_leading, "leadership changed");
                self.metrics.set_leader(&self.name, now_leading);
                let _ = leading.send(now_leading);
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    async fn attempt(&self) -> Attempt {
        let now = Timestamp::now();
        let current = match self.api.get_opt(&self.name).await {
            Ok(current) => current,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the lease");
                return Attempt::Failed;
            }
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Attempt::Leading,
                Err(kube::Error::Api(status)) if status.code == 409 => Attempt::Following,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot create the lease");
                    Attempt::Failed
                }
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let next = if holder == self.identity {
            let acquired = spec.acquire_time.map_or(now, |t| t.0);
            self.spec(acquired, now, transitions)
        } else if holder.is_empty() || expired(&spec, now) {
            self.spec(now, now, transitions + 1)
        } else {
            return Attempt::Following;
        };
        lease.spec = Some(next);
        // `lease.metadata.resource_version` is the precondition of the replace.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Attempt::Leading,
            Err(kube::Error::Api(status)) if status.code == 409 => Attempt::Following,
            Err(e) => {
                tracing::debug!(error = %e, "cannot update the lease");
                Attempt::Failed
            }
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.lease_duration.as_secs() as i32),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

/// Whether the holder let the Lease lapse.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else {
        return true;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    match renewed.checked_add(duration) {
        Ok(until) => until < now,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_duration() {
        let now = Timestamp::now();
        let spec = |ago: i64| LeaseSpec {
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(ago))),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        assert!(!expired(&spec(5), now));
        assert!(expired(&spec(20), now));
        assert!(expired(&LeaseSpec::default(), now));
    }
}
