//! The scorecard definition: what a scorecard covers, its levels and its
//! rules, and the checks that turn an untrusted document into one.
//!
//! [`ScorecardDefinition::from_value`] reports every problem at once, each
//! at a JSON pointer into the document (`/rules/2/level`), as the catalog
//! does for entities, so that whoever writes a scorecard learns about all
//! its mistakes in one round trip.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use portolan_catalog::validate::escape_pointer;
use portolan_catalog::{rules, EntityRef, Problem, RefDefaults, DEFAULT_NAMESPACE};
use portolan_store::FieldPath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The levels of a definition that names none: the first is the floor.
pub const DEFAULT_LEVELS: [&str; 4] = ["Basic", "Bronze", "Silver", "Gold"];

/// Longest level name, in bytes: levels are shown in tables and badges.
pub const MAX_LEVEL_LEN: usize = 63;

/// Longest title of a scorecard or rule, in bytes.
pub const MAX_TITLE_LEN: usize = 200;

/// Longest description of a scorecard or rule, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 4_000;

/// Most levels in one scorecard.
pub const MAX_LEVELS: usize = 20;

/// Most rules in one scorecard: each is a plugin call per batch of
/// entities, so this bounds the work of one evaluation.
pub const MAX_RULES: usize = 200;

/// A scorecard: the entities it covers, its ordered levels and the rules
/// an entity must pass to reach each of them.
///
/// Build one from untrusted input with [`ScorecardDefinition::from_value`];
/// the fields are public so that trusted code can rebuild one from the
/// store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScorecardDefinition {
    /// Lowercase letters, digits and single `-` (a DNS label, like a
    /// catalog namespace); names the scorecard in URLs.
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which entities the scorecard applies to; empty covers every entity.
    #[serde(default)]
    pub filter: EntityFilter,
    /// Lowest first. The first is the floor, which every covered entity
    /// reaches whatever its results; rules belong to the others.
    #[serde(default = "default_levels")]
    pub levels: Vec<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn default_levels() -> Vec<String> {
    DEFAULT_LEVELS.iter().map(|l| (*l).to_owned()).collect()
}

/// Which entities a scorecard covers (see [`crate::covers`]).
///
/// Every non-empty field must match (AND); within one field any value may
/// (OR). Values compare case-insensitively, as the catalog's filters do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// `spec.type`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// `metadata.tags`: the entity has at least one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `spec.lifecycle`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Owners as entity references with Backstage's shorthand: `team-a`
    /// is `group:default/team-a`, `user:jdoe` is `user:default/jdoe`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// Field path (as the catalog's query names them: `spec.system`,
    /// `metadata.annotations.backstage.io/techdocs-ref`) to the value it
    /// must have. An array field matches if any element does.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// One rule: a check an entity must pass to reach `level`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Unique within the scorecard; same form as the scorecard's id.
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One of the scorecard's levels other than the floor.
    pub level: String,
    /// `plugin-id/check-id` (see [`CheckRef`]).
    pub check: String,
    /// Given to the check as they are; a JSON object (`{}` when left out).
    #[serde(default = "empty_object")]
    pub parameters: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Which check of which plugin a rule calls: `plugin-id/check-id`, since
/// one scorecard-check plugin may offer several checks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckRef {
    pub plugin: String,
    pub check: String,
}

impl CheckRef {
    /// Parses `plugin-id/check-id`; both parts are ids (lowercase letters,
    /// digits and single `-`).
    pub fn parse(text: &str) -> Result<CheckRef, String> {
        let Some((plugin, check)) = text.split_once('/') else {
            return Err(format!(
                "check reference {text:?} is not of the form <plugin-id>/<check-id>"
            ));
        };
        check_id(plugin).map_err(|p| format!("plugin id {p}"))?;
        check_id(check).map_err(|p| format!("check id {p}"))?;
        Ok(CheckRef {
            plugin: plugin.to_owned(),
            check: check.to_owned(),
        })
    }
}

impl fmt::Display for CheckRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.plugin, self.check)
    }
}

/// Everything wrong with a scorecard definition, in document order. Never
/// empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidDefinition {
    pub problems: Vec<Problem>,
}

/// The id rule for scorecards, rules, plugins and checks: the catalog's
/// namespace rule (a DNS label).
pub fn check_id(value: &str) -> Result<(), String> {
    rules::check_namespace(value)
}

/// The owner filter's reading of a reference: Backstage's shorthand for
/// `spec.owner`, a Group unless a kind is written.
pub(crate) fn owner_defaults(namespace: &str) -> RefDefaults<'_> {
    RefDefaults {
        kind: Some("Group"),
        namespace,
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn report(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    fn text(&mut self, pointer: String, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.report(pointer, "must not be empty");
        } else if value.len() > max {
            self.report(
                pointer,
                format!("is {} bytes long; at most {max} are allowed", value.len()),
            );
        }
    }

    fn description(&mut self, pointer: String, value: Option<&str>) {
        if let Some(value) = value.filter(|v| v.len() > MAX_DESCRIPTION_LEN) {
            self.report(
                pointer,
                format!(
                    "is {} bytes long; at most {MAX_DESCRIPTION_LEN} are allowed",
                    value.len()
                ),
            );
        }
    }

    fn finish(self) -> Result<(), InvalidDefinition> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(InvalidDefinition { problems: self.0 })
        }
    }
}

/// The JSON pointer of the place serde stopped at.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", escape_pointer(key))),
            Segment::Enum { variant } => out.push_str(&format!("/{}", escape_pointer(variant))),
            Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        "/".into()
    } else {
        out
    }
}

impl ScorecardDefinition {
    /// Turns an untrusted document into a definition, or reports what is
    /// wrong with it: a document of the wrong shape (a missing field, a
    /// number where a list belongs, an unknown field) is reported at the
    /// first place it goes wrong; a well-shaped one with every problem
    /// [`validate`](Self::validate) finds.
    pub fn from_value(value: Value) -> Result<ScorecardDefinition, InvalidDefinition> {
        let definition: ScorecardDefinition =
            serde_path_to_error::deserialize(value).map_err(|e| InvalidDefinition {
                problems: vec![Problem {
                    pointer: pointer_of(e.path()),
                    message: e.inner().to_string(),
                }],
            })?;
        definition.validate()?;
        Ok(definition)
    }

    /// Checks everything that does not need the plugins: ids, levels,
    /// rules' levels, check references' form, the filter. Reports every
    /// problem.
    pub fn validate(&self) -> Result<(), InvalidDefinition> {
        let mut problems = Problems::default();
        if let Err(p) = check_id(&self.id) {
            problems.report("/id", p);
        }
        problems.text("/title".into(), &self.title, MAX_TITLE_LEN);
        problems.description("/description".into(), self.description.as_deref());
        self.validate_filter(&mut problems);

        if self.levels.is_empty() {
            problems.report(
                "/levels",
                "must name at least one level; the first is the floor every entity reaches",
            );
        } else if self.levels.len() > MAX_LEVELS {
            problems.report(
                "/levels",
                format!(
                    "names {} levels; at most {MAX_LEVELS} are allowed",
                    self.levels.len()
                ),
            );
        }
        let mut seen_levels = HashSet::new();
        for (i, level) in self.levels.iter().enumerate() {
            let pointer = format!("/levels/{i}");
            if level.trim().is_empty() || level.len() > MAX_LEVEL_LEN {
                problems.text(pointer, level, MAX_LEVEL_LEN);
            } else if level.trim() != level {
                problems.report(pointer, format!("level {level:?} has surrounding spaces"));
            } else if !seen_levels.insert(level.to_lowercase()) {
                problems.report(pointer, format!("level {level:?} is named twice"));
            }
        }

        if self.rules.len() > MAX_RULES {
            problems.report(
                "/rules",
                format!(
                    "has {} rules; at most {MAX_RULES} are allowed",
                    self.rules.len()
                ),
            );
        }
        let mut seen_rules = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("/rules/{i}/{field}");
            match check_id(&rule.id) {
                Err(p) => problems.report(at("id"), p),
                Ok(()) if !seen_rules.insert(rule.id.as_str()) => {
                    problems.report(at("id"), format!("rule id {:?} is used twice", rule.id));
                }
                Ok(()) => {}
            }
            problems.text(at("title"), &rule.title, MAX_TITLE_LEN);
            problems.description(at("description"), rule.description.as_deref());
            match self.levels.iter().position(|l| *l == rule.level) {
                Some(0) => problems.report(
                    at("level"),
                    format!(
                        "{:?} is the floor level, which every entity reaches; \
                         a rule belongs to a level above it",
                        rule.level
                    ),
                ),
                Some(_) => {}
                None => problems.report(
                    at("level"),
                    format!(
                        "unknown level {:?}; the levels are {}",
                        rule.level,
                        self.levels
                            .iter()
                            .map(|l| format!("{l:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
            if let Err(p) = CheckRef::parse(&rule.check) {
                problems.report(at("check"), p);
            }
            if !rule.parameters.is_object() {
                problems.report(at("parameters"), "must be a JSON object");
            }
        }
        problems.finish()
    }

    fn validate_filter(&self, problems: &mut Problems) {
        let f = &self.filter;
        let lists: [(&str, &Vec<String>); 5] = [
            ("kinds", &f.kinds),
            ("types", &f.types),
            ("tags", &f.tags),
            ("lifecycles", &f.lifecycles),
            ("namespaces", &f.namespaces),
        ];
        for (name, values) in lists {
            for (i, value) in values.iter().enumerate() {
                if value.trim().is_empty() {
                    problems.report(format!("/filter/{name}/{i}"), "must not be empty");
                }
            }
        }
        for (i, owner) in f.owners.iter().enumerate() {
            if let Err(e) = EntityRef::parse(owner, owner_defaults(DEFAULT_NAMESPACE)) {
                problems.report(format!("/filter/owners/{i}"), e.to_string());
            }
        }
        for path in f.fields.keys() {
            let pointer = format!("/filter/fields/{}", escape_pointer(path));
            match FieldPath::parse(path) {
                Err(p) => problems.report(pointer, p),
                Ok(p) if p.segments()[0] == "relations" => problems.report(
                    pointer,
                    "relations are not part of a scorecard filter; use owners for ownedBy",
                ),
                Ok(_) => {}
            }
        }
    }

    /// The rules of each level, by the level's index; the floor's list is
    /// always empty in a valid definition. Rules naming an unknown level
    /// are left out (a validated definition has none).
    pub fn rules_by_level(&self) -> Vec<Vec<&Rule>> {
        let index: HashMap<&str, usize> = self
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let mut out = vec![Vec::new(); self.levels.len()];
        for rule in &self.rules {
            if let Some(&i) = index.get(rule.level.as_str()) {
                out[i].push(rule);
            }
        }
        out
    }

    /// The hook for the checks the plugins offer: reports each rule whose
    /// check `resolve` does not know (`resolve` returns the check's
    /// parameters JSON Schema, or `None` for an unknown check). Rules whose
    /// check reference does not parse are left to
    /// [`validate`](Self::validate).
    ///
    /// TODO: validate each rule's `parameters` against the schema
    /// `resolve` returns. No JSON Schema crate is in the workspace yet; until
    /// the server adds one, parameters a check cannot use are only caught
    /// when the check refuses them at evaluation time, as an error result
    /// on every entity.
    pub fn check_references<'s>(
        &self,
        resolve: impl Fn(&CheckRef) -> Option<&'s Value>,
    ) -> Result<(), InvalidDefinition> {
        let mut problems = Problems::default();
        for (i, rule) in self.rules.iter().enumerate() {
            let Ok(check) = CheckRef::parse(&rule.check) else {
                continue;
            };
            if resolve(&check).is_none() {
                problems.report(
                    format!("/rules/{i}/check"),
                    format!("unknown check {check}: no loaded plugin offers it"),
                );
            }
        }
        problems.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "id": "production-readiness",
            "title": "Production readiness",
            "filter": {"kinds": ["Component"], "fields": {"spec.system": "shop"}},
            "rules": [
                {"id": "has-owner", "title": "Has an owner", "level": "Bronze",
                 "check": "catalog-hygiene/has-owner"},
                {"id": "has-docs", "title": "Has docs", "level": "Silver",
                 "check": "catalog-hygiene/has-annotation",
                 "parameters": {"annotation": "backstage.io/techdocs-ref"}}
            ]
        })
    }

    fn pointers(err: InvalidDefinition) -> Vec<(String, String)> {
        err.problems
            .into_iter()
            .map(|p| (p.pointer, p.message))
            .collect()
    }

    #[test]
    fn a_valid_definition_gets_the_default_levels_and_empty_parameters() {
        let def = ScorecardDefinition::from_value(valid()).unwrap();
        assert_eq!(def.levels, ["Basic", "Bronze", "Silver", "Gold"]);
        assert_eq!(def.rules[0].parameters, json!({}));
        assert_eq!(def.filter.fields["spec.system"], "shop");
        // camelCase out, and what goes out comes back in.
        let out = serde_json::to_value(&def).unwrap();
        assert_eq!(ScorecardDefinition::from_value(out).unwrap(), def);
    }

    #[test]
    fn every_problem_is_reported_at_its_pointer() {
        let mut doc = valid();
        doc["id"] = json!("Production Readiness");
        doc["title"] = json!(" ");
        doc["levels"] = json!(["Basic", "Bronze", "bronze", ""]);
        doc["filter"]["owners"] = json!(["team a"]);
        doc["filter"]["fields"] = json!({"spec..system": "x", "relations.ownedBy": "y"});
        doc["rules"] = json!([
            {"id": "ok", "title": "t", "level": "Bronze", "check": "p/c"},
            {"id": "ok", "title": "t", "level": "Basic", "check": "p"},
            {"id": "Bad_Id", "title": "", "description": "x".repeat(MAX_DESCRIPTION_LEN + 1),
             "level": "Platinum", "check": "P/c", "parameters": [1]}
        ]);
        let problems = pointers(ScorecardDefinition::from_value(doc).unwrap_err());
        let at: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            at,
            [
                "/id",
                "/title",
                "/filter/owners/0",
                "/filter/fields/relations.ownedBy",
                "/filter/fields/spec..system",
                "/levels/2",
                "/levels/3",
                "/rules/1/id",
                "/rules/1/level",
                "/rules/1/check",
                "/rules/2/id",
                "/rules/2/title",
                "/rules/2/description",
                "/rules/2/level",
                "/rules/2/check",
                "/rules/2/parameters",
            ],
            "{problems:#?}"
        );
        let message = |pointer: &str| {
            problems
                .iter()
                .find(|(p, _)| p == pointer)
                .map(|(_, m)| m.as_str())
                .unwrap()
        };
        assert!(message("/rules/2/level").contains("unknown level \"Platinum\""));
        assert!(message("/rules/1/id").contains("used twice"));
        assert!(message("/rules/1/level").contains("floor"));
        assert!(message("/levels/2").contains("named twice"));
    }

    #[test]
    fn empty_levels_are_refused() {
        let mut doc = valid();
        doc["levels"] = json!([]);
        doc["rules"] = json!([]);
        let problems = pointers(ScorecardDefinition::from_value(doc).unwrap_err());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "/levels");
    }

    #[test]
    fn shape_errors_name_the_place() {
        let mut doc = valid();
        doc["rules"][1]["level"] = json!(3);
        let problems = pointers(ScorecardDefinition::from_value(doc).unwrap_err());
        assert_eq!(problems[0].0, "/rules/1/level");

        let mut doc = valid();
        doc["filter"]["colour"] = json!("red");
        let problems = pointers(ScorecardDefinition::from_value(doc).unwrap_err());
        assert_eq!(problems[0].0, "/filter/colour");
        assert!(problems[0].1.contains("colour"), "{problems:?}");

        let problems = pointers(ScorecardDefinition::from_value(json!({"id": "x"})).unwrap_err());
        assert_eq!(problems[0].0, "/");
        assert!(problems[0].1.contains("title"), "{problems:?}");
    }

    #[test]
    fn check_references_parse_and_print() {
        let r = CheckRef::parse("catalog-hygiene/has-owner").unwrap();
        assert_eq!(r.plugin, "catalog-hygiene");
        assert_eq!(r.check, "has-owner");
        assert_eq!(r.to_string(), "catalog-hygiene/has-owner");
        for bad in ["has-owner", "a/b/c", "/x", "x/", "Cat/x"] {
            assert!(CheckRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_checks_are_reported_by_the_hook() {
        let def = ScorecardDefinition::from_value(valid()).unwrap();
        let schema = json!({"type": "object"});
        let known = |c: &CheckRef| (c.check == "has-owner").then_some(&schema);
        let problems = pointers(def.check_references(known).unwrap_err());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "/rules/1/check");
        assert!(problems[0].1.contains("catalog-hygiene/has-annotation"));
        assert!(def.check_references(|_| Some(&schema)).is_ok());
    }

    #[test]
    fn rules_are_grouped_by_level() {
        let def = ScorecardDefinition::from_value(valid()).unwrap();
        let by_level = def.rules_by_level();
        let ids: Vec<Vec<&str>> = by_level
            .iter()
            .map(|rules| rules.iter().map(|r| r.id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec![], vec!["has-owner"], vec!["has-docs"], vec![]]);
    }
}
