//! Exemptions: one entity need not pass one rule of one scorecard, for a
//! stated reason, until a stated time. An exempted rule that does not pass
//! counts as passed ([`crate::Outcome::Exempt`]) and is shown as exempt.
//!
//! Both the reason and the expiry are required: an exemption is a debt
//! with a due date, not a way to switch a rule off. Once expired it no
//! longer applies, and the rule counts as it comes out again; the stored
//! row stays until someone deletes it, so the history of who excused what
//! is not lost.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use portolan_catalog::{EntityRef, Problem, RefDefaults, DEFAULT_NAMESPACE};
use portolan_store::{NewScorecardExemption, ScorecardExemption};
use serde::{Deserialize, Serialize};

use crate::definition::ScorecardDefinition;

/// Longest reason, in bytes.
pub const MAX_REASON_LEN: usize = 2_000;

/// What a person asks for when adding an exemption (the API's request
/// body); who asks comes from their token, not from the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExemptionRequest {
    /// `kind:namespace/name`; the namespace may be left out (`default`),
    /// the kind may not.
    pub entity_ref: String,
    pub rule_id: String,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
}

/// An exemption in force until [`expires_at`](Self::expires_at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exemption {
    /// The entity's key (lower-cased reference).
    pub entity_ref: String,
    pub rule_id: String,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    /// The person or token that granted it.
    pub created_by: String,
}

/// Everything wrong with an exemption request, each problem at a JSON
/// pointer into the request. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidExemption {
    pub problems: Vec<Problem>,
}

impl ExemptionRequest {
    /// Checks the request against the scorecard it is for, at `now`: the
    /// entity reference parses and names a kind, the rule exists, a reason
    /// is given and the expiry lies in the future. Reports every problem.
    pub fn validate(
        &self,
        definition: &ScorecardDefinition,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Exemption, InvalidExemption> {
        let mut problems = Vec::new();
        let mut report = |pointer: &str, message: String| {
            problems.push(Problem {
                pointer: pointer.into(),
                message,
            })
        };
        let defaults = RefDefaults {
            kind: None,
            namespace: DEFAULT_NAMESPACE,
        };
        let entity = match EntityRef::parse(&self.entity_ref, defaults) {
            Ok(r) => r.key(),
            Err(e) => {
                report("/entityRef", e.to_string());
                String::new()
            }
        };
        if !definition.rules.iter().any(|r| r.id == self.rule_id) {
            report(
                "/ruleId",
                format!("scorecard {} has no rule {:?}", definition.id, self.rule_id),
            );
        }
        if self.reason.trim().is_empty() {
            report("/reason", "an exemption needs a reason".into());
        } else if self.reason.len() > MAX_REASON_LEN {
            report(
                "/reason",
                format!(
                    "is {} bytes long; at most {MAX_REASON_LEN} are allowed",
                    self.reason.len()
                ),
            );
        }
        if self.expires_at <= now {
            report(
                "/expiresAt",
                format!(
                    "{} is not in the future; an exemption must expire later than now ({})",
                    self.expires_at.to_rfc3339(),
                    now.to_rfc3339()
                ),
            );
        }
        if !problems.is_empty() {
            return Err(InvalidExemption { problems });
        }
        Ok(Exemption {
            entity_ref: entity,
            rule_id: self.rule_id.clone(),
            reason: self.reason.trim().to_owned(),
            expires_at: self.expires_at,
            created_by: created_by.to_owned(),
        })
    }
}

impl Exemption {
    /// Whether the exemption is in force at `now`: until, not including,
    /// its expiry.
    pub fn applies_at(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }

    /// The row to store for scorecard `scorecard_id`.
    pub fn to_store(&self, scorecard_id: &str) -> NewScorecardExemption {
        NewScorecardExemption {
            scorecard_id: scorecard_id.to_owned(),
            entity_ref: self.entity_ref.clone(),
            rule_id: self.rule_id.clone(),
            reason: self.reason.clone(),
            expires_at: self.expires_at,
            created_by: self.created_by.clone(),
        }
    }
}

impl From<ScorecardExemption> for Exemption {
    fn from(stored: ScorecardExemption) -> Exemption {
        Exemption {
            entity_ref: stored.entity_ref,
            rule_id: stored.rule_id,
            reason: stored.reason,
            expires_at: stored.expires_at,
            created_by: stored.created_by,
        }
    }
}

/// The exemptions in force at one moment, for looking up during an
/// evaluation.
#[derive(Debug, Clone, Default)]
pub struct ActiveExemptions {
    /// (entity key, rule id).
    active: HashSet<(String, String)>,
}

impl ActiveExemptions {
    /// Those of `exemptions` that apply at `now`.
    pub fn at<'e>(exemptions: impl IntoIterator<Item = &'e Exemption>, now: DateTime<Utc>) -> Self {
        ActiveExemptions {
            active: exemptions
                .into_iter()
                .filter(|e| e.applies_at(now))
                .map(|e| (e.entity_ref.to_lowercase(), e.rule_id.clone()))
                .collect(),
        }
    }

    /// Whether an exemption in force covers this entity (by key or
    /// reference, compared case-insensitively) and rule.
    pub fn covers(&self, entity_ref: &str, rule_id: &str) -> bool {
        self.active
            .contains(&(entity_ref.to_lowercase(), rule_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn definition() -> ScorecardDefinition {
        ScorecardDefinition::from_value(json!({
            "id": "readiness", "title": "Readiness",
            "rules": [{"id": "has-owner", "title": "Owner", "level": "Bronze", "check": "p/c"}]
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
    }

    fn request(entity: &str, rule: &str, reason: &str, expires: DateTime<Utc>) -> ExemptionRequest {
        ExemptionRequest {
            entity_ref: entity.into(),
            rule_id: rule.into(),
            reason: reason.into(),
            expires_at: expires,
        }
    }

    #[test]
    fn a_valid_request_becomes_an_exemption_with_its_key_and_author() {
        let r = request(
            "Component:Web",
            "has-owner",
            " new team ",
            now() + Duration::days(30),
        );
        let e = r.validate(&definition(), "alice", now()).unwrap();
        assert_eq!(e.entity_ref, "component:default/web");
        assert_eq!(e.reason, "new team");
        assert_eq!(e.created_by, "alice");
        let stored = e.to_store("readiness");
        assert_eq!(stored.scorecard_id, "readiness");
        assert_eq!(stored.entity_ref, "component:default/web");
    }

    #[test]
    fn every_problem_is_reported() {
        let r = request("web", "has-docs", "  ", now());
        let err = r.validate(&definition(), "alice", now()).unwrap_err();
        let at: Vec<&str> = err.problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(at, ["/entityRef", "/ruleId", "/reason", "/expiresAt"]);
        assert!(
            err.to_string().contains("has no rule \"has-docs\""),
            "{err}"
        );
        assert!(err.to_string().contains("not in the future"), "{err}");
    }

    #[test]
    fn the_request_body_is_camel_case_and_strict() {
        let r: ExemptionRequest = serde_json::from_value(json!({
            "entityRef": "component:default/web", "ruleId": "has-owner",
            "reason": "r", "expiresAt": "2026-07-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            r.expires_at,
            Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap()
        );
        assert!(
            serde_json::from_value::<ExemptionRequest>(json!({
                "entityRef": "component:default/web", "ruleId": "has-owner", "reason": "r"
            }))
            .is_err(),
            "the expiry is required"
        );
    }

    #[test]
    fn an_exemption_applies_until_it_expires() {
        let e = request(
            "component:web",
            "has-owner",
            "r",
            now() + Duration::hours(1),
        )
        .validate(&definition(), "alice", now())
        .unwrap();
        assert!(e.applies_at(now()));
        assert!(e.applies_at(now() + Duration::minutes(59)));
        assert!(!e.applies_at(now() + Duration::hours(1)));
        assert!(!e.applies_at(now() + Duration::days(1)));

        let list = [e];
        let active = ActiveExemptions::at(&list, now());
        assert!(active.covers("Component:Default/Web", "has-owner"));
        assert!(!active.covers("component:default/web", "has-docs"));
        assert!(!active.covers("component:default/api", "has-owner"));
        let later = ActiveExemptions::at(&list, now() + Duration::hours(2));
        assert!(!later.covers("component:default/web", "has-owner"));
    }
}
