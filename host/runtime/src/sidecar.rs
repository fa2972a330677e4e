//! The operator's grants for one plugin: the optional `NAME.toml` beside
//! `NAME.wasm`.
//!
//! A plugin gets nothing that is not written here. Parsing is strict (unknown
//! keys are errors, so a typo cannot silently drop a limit) and validation
//! reports every problem at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::ActionRole;
use crate::outbound::{AllowRule, Allowlist};
use crate::schedule::{Schedule, ScheduleFile};

/// The sidecar file as written by the operator.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// Names of secrets the plugin may read with `host.secret`.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub http: HttpFile,
    /// Directories preopened in the sandbox.
    #[serde(default)]
    pub dirs: Vec<DirFile>,
    /// Free-form settings handed to the plugin as JSON.
    #[serde(default)]
    pub settings: toml::Table,
    /// When a catalog source syncs by itself (see [`crate::schedule`]).
    pub schedule: Option<ScheduleFile>,
    /// `[action]`: the operator's policy for an action plugin.
    pub action: Option<ActionPolicy>,
    /// `[scaffold]`: where a scaffold generator's projects are published.
    pub scaffold: Option<ScaffoldFile>,
}

/// `[scaffold]` as written: where a template's new projects go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaffoldFile {
    /// `directory` (a new folder under `root`) or `git` (a new repository
    /// pushed to `remote`).
    pub target: String,
    /// The workspace root new project folders are created in (directory
    /// target); relative paths resolve against the sidecar's folder.
    pub root: Option<PathBuf>,
    /// Where to push (git target); `{name}` is replaced by the project's
    /// name, e.g. `ssh://git.example.com/new/{name}.git`, and `${{ ... }}`
    /// placeholders are filled like a step's input (e.g. from a step that
    /// created the repository before publishing).
    pub remote: Option<String>,
    /// The branch to commit to and push (default `main`).
    pub branch: Option<String>,
    /// The commit's author (default `Portolan`).
    pub author_name: Option<String>,
    /// The commit's author e-mail (default `portolan@localhost`).
    pub author_email: Option<String>,
    /// Actions to run after the project is published, in order.
    #[serde(default)]
    pub steps: Vec<StepFile>,
}

/// `[[scaffold.steps]]`: one action a template run calls after publishing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// Names the step in the log and in the run's output.
    pub id: String,
    /// The action plugin's id.
    pub action: String,
    /// The action's input; strings may hold `${{ parameters.name }}`,
    /// `${{ output.target.path }}`, `${{ steps.ID.output.field }}`, ...
    #[serde(default)]
    pub input: toml::Table,
    /// Whether the action is started on the new project's entity.
    #[serde(default)]
    pub on_entity: bool,
    /// Run before the project is published (e.g. create the repository it
    /// is pushed to) instead of after.
    #[serde(default)]
    pub before_publish: bool,
}

/// One validated step of a template run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaffoldStep {
    pub id: String,
    pub action: String,
    pub input: serde_json::Value,
    pub on_entity: bool,
    pub before_publish: bool,
}

/// Where a template's new projects go, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ScaffoldTarget {
    /// A new folder `root/<name>`.
    Directory {
        root: PathBuf,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        steps: Vec<ScaffoldStep>,
    },
    /// A new repository committed by `author` and pushed to `remote`
    /// (`{name}` replaced) on `branch`.
    #[serde(rename_all = "camelCase")]
    Git {
        remote: String,
        branch: String,
        author_name: String,
        author_email: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        steps: Vec<ScaffoldStep>,
    },
}

impl ScaffoldTarget {
    /// The actions to run after publishing.
    pub fn steps(&self) -> &[ScaffoldStep] {
        match self {
            ScaffoldTarget::Directory { steps, .. } | ScaffoldTarget::Git { steps, .. } => steps,
        }
    }
}

/// `[action]`: what the operator adds to an action's own rules. Either
/// value may only raise what the plugin asks for, never lower it; a lower
/// one fails the load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActionPolicy {
    /// The lowest role allowed to start a run.
    #[serde(alias = "required_role")]
    pub required_role: Option<ActionRole>,
    /// Every run waits for the approval of someone with at least this role.
    pub approval: Option<ActionRole>,
}

/// `[limits]`: per-call limits; unset fields take the host's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Wall-clock deadline of one call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Cap on the linear memory of one call, in MiB.
    pub memory_mb: Option<u64>,
    /// Instruction budget of one call (only where the host enables fuel).
    pub fuel: Option<u64>,
}

/// `[http]`: outbound HTTP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// Hosts the plugin may call: `host`, `host:port` or `*.domain`.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `[[dirs]]`: one preopened directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirFile {
    /// Host path; relative paths resolve against the sidecar's folder.
    pub host: PathBuf,
    /// Absolute path under which the plugin sees it, e.g. `/catalog`.
    pub guest: String,
    #[serde(default)]
    pub writable: bool,
}

/// Limits of one call, resolved against the host's defaults and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub timeout_ms: u64,
    pub memory_bytes: u64,
    pub fuel: Option<u64>,
}

/// A granted directory, resolved to an absolute host path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// Everything one plugin is granted, validated and ready to build a sandbox
/// from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grants {
    pub limits: Limits,
    pub http_allow: Allowlist,
    pub dirs: Vec<DirGrant>,
    pub secrets: Vec<String>,
    pub settings: serde_json::Value,
    /// When the plugin runs by itself; only catalog sources use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// The operator's `[action]` policy; only actions use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionPolicy>,
    /// Where a scaffold generator publishes; only generators use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaffold: Option<ScaffoldTarget>,
}

/// The host's defaults and upper bounds for per-call limits.
#[derive(Debug, Clone, Copy)]
pub struct LimitPolicy {
    pub default: Limits,
    /// No sidecar may raise a call's timeout above this, in milliseconds.
    pub max_timeout_ms: u64,
    /// No sidecar may raise a call's memory above this, in bytes; it is also
    /// the pooling allocator's per-memory reservation.
    pub max_memory_bytes: u64,
    /// Whether the engine meters fuel; a `fuel` limit needs it.
    pub fuel_enabled: bool,
}

const MIB: u64 = 1024 * 1024;

impl Sidecar {
    /// Reads `path`; a missing file means no grants.
    pub fn read(path: &Path) -> Result<Option<Sidecar>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Validates the sidecar and resolves it into grants; `base` is the
    /// sidecar's folder. Every problem is reported, one per line.
    pub fn resolve(&self, base: &Path, policy: &LimitPolicy) -> Result<Grants, String> {
        let mut problems = Vec::new();

        let timeout_ms = self.limits.timeout_ms.unwrap_or(policy.default.timeout_ms);
        if timeout_ms == 0 || timeout_ms > policy.max_timeout_ms {
            problems.push(format!(
                "limits.timeout_ms = {timeout_ms}: must be between 1 and {}",
                policy.max_timeout_ms
            ));
        }
        let memory_bytes = match self.limits.memory_mb {
            Some(mb) => mb.saturating_mul(MIB),
            None => policy.default.memory_bytes,
        };
        if memory_bytes < MIB || memory_bytes > policy.max_memory_bytes {
            problems.push(format!(
                "limits.memory_mb = {}: must be between 1 and {}",
                memory_bytes / MIB,
                policy.max_memory_bytes / MIB
            ));
        }
        let fuel = self.limits.fuel.or(policy.default.fuel);
        if self.limits.fuel.is_some() && !policy.fuel_enabled {
            problems.push(
                "limits.fuel is set but the host does not meter fuel (set runtime.fuel = true in portolan.toml)"
                    .to_owned(),
            );
        }

        let mut rules = Vec::new();
        for (i, raw) in self.http.allow.iter().enumerate() {
            match AllowRule::parse(raw) {
                Ok(rule) => rules.push(rule),
                Err(e) => problems.push(format!("http.allow[{i}] = {raw:?}: {e}")),
            }
        }

        let mut dirs = Vec::new();
        for (i, d) in self.dirs.iter().enumerate() {
            let host = if d.host.is_absolute() {
                d.host.clone()
            } else {
                base.join(&d.host)
            };
            match host.canonicalize() {
                Ok(p) if p.is_dir() => {
                    if !d.guest.starts_with('/') || d.guest.split('/').any(|c| c == "..") {
                        problems.push(format!(
                            "dirs[{i}].guest = {:?}: must be an absolute path without `..`",
                            d.guest
                        ));
                    } else {
                        dirs.push(DirGrant {
                            host: p,
                            guest: d.guest.clone(),
                            writable: d.writable,
                        });
                    }
                }
                Ok(p) => {
                    problems.push(format!("dirs[{i}].host = {}: not a directory", p.display()))
                }
                Err(e) => problems.push(format!("dirs[{i}].host = {}: {e}", host.display())),
            }
        }

        for (i, name) in self.secrets.iter().enumerate() {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            if !ok {
                problems.push(format!(
                    "secrets[{i}] = {name:?}: use letters, digits, `_`, `-` and `.`"
                ));
            }
        }

        let settings = match serde_json::to_value(&self.settings) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("settings: {e}"));
                serde_json::Value::Null
            }
        };

        let schedule = match &self.schedule {
            None => None,
            Some(file) => match file.resolve() {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };

        let scaffold = match &self.scaffold {
            None => None,
            Some(file) => file.resolve(base, &mut problems),
        };

        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Grants {
            limits: Limits {
                timeout_ms,
                memory_bytes,
                fuel,
            },
            http_allow: Allowlist::new(rules),
            dirs,
            secrets: self.secrets.clone(),
            settings,
            schedule,
            action: self.action,
            scaffold,
        })
    }
}

impl ScaffoldFile {
    fn resolve(&self, base: &Path, problems: &mut Vec<String>) -> Option<ScaffoldTarget> {
        let mut steps = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let id_ok = !step.id.is_empty()
                && step
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                problems.push(format!(
                    "scaffold.steps[{i}].id = {:?}: use lower-case letters, digits and `-`",
                    step.id
                ));
            } else if steps.iter().any(|s: &ScaffoldStep| s.id == step.id) {
                problems.push(format!(
                    "scaffold.steps[{i}].id = {:?}: used twice",
                    step.id
                ));
            }
            if step.action.trim().is_empty() {
                problems.push(format!("scaffold.steps[{i}].action: name an action plugin"));
            }
            if step.on_entity && step.before_publish {
                problems.push(format!(
                    "scaffold.steps[{i}]: a step before publishing cannot run on the entity, \
                     which is registered after publishing"
                ));
            }
            steps.push(ScaffoldStep {
                id: step.id.clone(),
                action: step.action.clone(),
                input: serde_json::to_value(&step.input).unwrap_or_default(),
                on_entity: step.on_entity,
                before_publish: step.before_publish,
            });
        }
        match self.target.as_str() {
            "directory" => {
                let Some(root) = &self.root else {
                    problems.push("scaffold.root: a directory target needs a root folder".into());
                    return None;
                };
                let root = if root.is_absolute() {
                    root.clone()
                } else {
                    base.join(root)
                };
                match root.canonicalize() {
                    Ok(p) if p.is_dir() => Some(ScaffoldTarget::Directory { root: p, steps }),
                    Ok(p) => {
                        problems.push(format!("scaffold.root = {}: not a directory", p.display()));
                        None
                    }
                    Err(e) => {
                        problems.push(format!("scaffold.root = {}: {e}", root.display()));
                        None
                    }
                }
            }
            "git" => {
                let Some(remote) = self.remote.as_deref().filter(|r| !r.trim().is_empty()) else {
                    problems.push("scaffold.remote: a git target needs a remote to push to".into());
                    return None;
                };
                let branch = self.branch.clone().unwrap_or_else(|| "main".into());
                let branch_ok = !branch.is_empty()
                    && !branch.starts_with('-')
                    && branch
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
                if !branch_ok {
                    problems.push(format!("scaffold.branch = {branch:?}: not a branch name"));
                    return None;
                }
                if remote.starts_with('-') {
                    problems.push(format!("scaffold.remote = {remote:?}: not a remote"));
                    return None;
                }
                Some(ScaffoldTarget::Git {
                    remote: remote.to_owned(),
                    branch,
                    author_name: self
                        .author_name
                        .clone()
                        .unwrap_or_else(|| "Portolan".into()),
                    author_email: self
                        .author_email
                        .clone()
                        .unwrap_or_else(|| "portolan@localhost".into()),
                    steps,
                })
            }
            other => {
                problems.push(format!(
                    "scaffold.target = {other:?}: one of \"directory\", \"git\""
                ));
                None
            }
        }
    }
}

impl Grants {
    /// What a plugin without a sidecar gets: nothing but the default limits.
    pub fn none(policy: &LimitPolicy) -> Grants {
        Grants {
            limits: policy.default,
            http_allow: Allowlist::default(),
            dirs: Vec::new(),
            secrets: Vec::new(),
            settings: serde_json::Value::Object(Default::default()),
            schedule: None,
            action: None,
            scaffold: None,
        }
    }

    /// Settings as a map, for `host.setting`.
    pub fn settings_map(&self) -> BTreeMap<String, serde_json::Value> {
        match &self.settings {
            serde_json::Value::Object(m) => m.clone().into_iter().collect(),
            _ => BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LimitPolicy {
        LimitPolicy {
            default: Limits {
                timeout_ms: 10_000,
                memory_bytes: 128 * MIB,
                fuel: None,
            },
            max_timeout_ms: 600_000,
            max_memory_bytes: 1024 * MIB,
            fuel_enabled: false,
        }
    }

    #[test]
    fn no_sidecar_grants_nothing() {
        let g = Grants::none(&policy());
        assert!(g.dirs.is_empty() && g.secrets.is_empty());
        assert!(!g.http_allow.allows("example.com", 443));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Sidecar>("[limits]\ntimeout = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let s: Sidecar = toml::from_str(
            r#"
            secrets = ["ok_name", "bad name"]
            [limits]
            timeout_ms = 0
            memory_mb = 99999
            fuel = 10
            [http]
            allow = ["https://x.com/path"]
            [[dirs]]
            host = "/definitely/not/here"
            guest = "/data"
            "#,
        )
        .unwrap();
        let err = s.resolve(Path::new("/"), &policy()).unwrap_err();
        for needle in [
            "limits.timeout_ms",
            "limits.memory_mb",
            "limits.fuel",
            "http.allow[0]",
            "dirs[0].host",
            "secrets[1]",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
    }

    #[test]
    fn relative_dirs_resolve_against_the_sidecar_folder() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("data")).unwrap();
        let s: Sidecar = toml::from_str("[[dirs]]\nhost = \"data\"\nguest = \"/data\"\n").unwrap();
        let g = s.resolve(tmp.path(), &policy()).unwrap();
        assert_eq!(
            g.dirs[0].host,
            tmp.path().join("data").canonicalize().unwrap()
        );
        assert!(!g.dirs[0].writable);
    }
}
