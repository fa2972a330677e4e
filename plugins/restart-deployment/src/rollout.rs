//! Whether a Deployment has rolled out, read from the object the Kubernetes
//! API returns, the way `kubectl rollout status` judges it.

use serde_json::Value;

/// The counts that tell how far a rollout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// `metadata.generation`: bumped by every change of the spec.
    pub generation: u64,
    /// `status.observedGeneration`: the generation the controller acted on.
    pub observed: u64,
    /// `spec.replicas` (Kubernetes' default is 1).
    pub replicas: u64,
    /// `status.updatedReplicas`: pods of the new template.
    pub updated: u64,
    /// `status.availableReplicas`.
    pub available: u64,
    /// `status.replicas`: all pods, old ones still terminating included.
    pub total: u64,
}

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Every replica runs the new template and is available.
    Done,
    /// Still going.
    Waiting,
    /// The controller gave up (`ProgressDeadlineExceeded`); the text is the
    /// condition's message.
    Stuck(String),
}

impl Progress {
    /// Reads a Deployment object; absent counts are 0.
    pub fn from_json(deployment: &Value) -> Progress {
        let count = |pointer: &str| deployment.pointer(pointer).and_then(Value::as_u64);
        let updated = count("/status/updatedReplicas").unwrap_or(0);
        Progress {
            generation: count("/metadata/generation").unwrap_or(0),
            observed: count("/status/observedGeneration").unwrap_or(0),
            replicas: count("/spec/replicas").unwrap_or(1),
            updated,
            available: count("/status/availableReplicas").unwrap_or(0),
            total: count("/status/replicas").unwrap_or(updated),
        }
    }

    /// Done once the controller has seen the latest spec and every replica
    /// is updated and available with no old pod left.
    pub fn state(&self, deployment: &Value) -> State {
        if self.observed >= self.generation {
            if let Some(message) = deadline_exceeded(deployment) {
                return State::Stuck(message);
            }
            if self.updated == self.replicas
                && self.available == self.replicas
                && self.total <= self.updated
            {
                return State::Done;
            }
        }
        State::Waiting
    }

    /// For the log: `2/3 replicas updated, 1 available`.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{}/{} replicas updated, {} available",
            self.updated, self.replicas, self.available
        );
        if self.total > self.updated {
            let old = self.total - self.updated;
            text.push_str(&format!(", {old} old pending termination"));
        }
        if self.observed < self.generation {
            text.push_str(" (the controller has not seen the change yet)");
        }
        text
    }
}

/// The message of a `Progressing` condition whose reason is
/// `ProgressDeadlineExceeded`, if there is one.
fn deadline_exceeded(deployment: &Value) -> Option<String> {
    let conditions = deployment.pointer("/status/conditions")?.as_array()?;
    conditions
        .iter()
        .find(|c| {
            c.get("type").and_then(Value::as_str) == Some("Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        })
        .map(|c| {
            c.get("message")
                .and_then(Value::as_str)
                .unwrap_or("progress deadline exceeded")
                .to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: u64, status: Value) -> Value {
        json!({
            "metadata": {"name": "payments", "generation": generation},
            "spec": {"replicas": 3},
            "status": status
        })
    }

    #[test]
    fn a_rollout_is_done_when_every_replica_is_new_and_available() {
        let cases = [
            // The controller has not seen the restart yet.
            (
                json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                State::Waiting,
                "3/3 replicas updated, 3 available (the controller has not seen the change yet)",
            ),
            (
                json!({"observedGeneration": 5, "replicas": 4, "updatedReplicas": 2, "availableReplicas": 3}),
                State::Waiting,
                "2/3 replicas updated, 3 available, 2 old pending termination",
            ),
            (
                json!({"observedGeneration": 5, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
                State::Waiting,
                "3/3 replicas updated, 3 available, 1 old pending termination",
            ),
            (
                json!({"observedGeneration": 5, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
                State::Waiting,
                "3/3 replicas updated, 2 available",
            ),
            (
                json!({"observedGeneration": 5, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                State::Done,
                "3/3 replicas updated, 3 available",
            ),
        ];
        for (status, state, summary) in cases {
            let d = deployment(5, status);
            let progress = Progress::from_json(&d);
            assert_eq!(
                (progress.state(&d), progress.summary().as_str()),
                (state, summary)
            );
        }
    }

    #[test]
    fn absent_counts_read_as_zero_and_replicas_as_one() {
        let d = json!({"metadata": {"generation": 1}, "spec": {}, "status": {}});
        let p = Progress::from_json(&d);
        assert_eq!((p.replicas, p.updated, p.observed), (1, 0, 0));
        assert_eq!(p.state(&d), State::Waiting);
        let scaled_to_zero = json!({"metadata": {"generation": 2}, "spec": {"replicas": 0}, "status": {"observedGeneration": 2}});
        assert_eq!(
            Progress::from_json(&scaled_to_zero).state(&scaled_to_zero),
            State::Done
        );
    }

    #[test]
    fn an_exceeded_progress_deadline_is_stuck() {
        let d = deployment(
            5,
            json!({
                "observedGeneration": 5, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                     "message": "ReplicaSet \"payments-7d9\" has timed out progressing."}
                ]
            }),
        );
        assert_eq!(
            Progress::from_json(&d).state(&d),
            State::Stuck("ReplicaSet \"payments-7d9\" has timed out progressing.".into())
        );
    }
}
