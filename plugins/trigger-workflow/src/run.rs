//! Workflow runs as the GitHub Actions REST API describes them, and how to
//! tell the run a dispatch started among the runs of a repository.
//!
//! A dispatch (`POST .../dispatches`) answers `204 No Content` without the
//! run it starts, so the run is looked up afterwards among
//! `GET .../actions/runs?event=workflow_dispatch&branch=REF`: the newest one
//! of the same workflow created at or after the dispatch.

use serde_json::Value;

use timestamps::parse_rfc3339;

/// One workflow run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: u64,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested`, `pending`.
    pub status: String,
    /// Set once completed: `success`, `failure`, `cancelled`, `skipped`,
    /// `timed_out`, `action_required`, `neutral`, `stale`.
    pub conclusion: Option<String>,
    /// The run's page.
    pub html_url: String,
    /// The number shown in the UI (`#12`), if given.
    pub run_number: Option<u64>,
}

impl Run {
    /// Reads one run object; the error says which field is missing.
    pub fn from_json(run: &Value) -> Result<Run, String> {
        let id = run
            .get("id")
            .and_then(Value::as_u64)
            .ok_or("has no numeric `id`")?;
        let status = run
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{id} has no `status`"))?
            .to_owned();
        let html_url = run
            .get("html_url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Run {
            id,
            status,
            conclusion: run
                .get("conclusion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            html_url,
            run_number: run.get("run_number").and_then(Value::as_u64),
        })
    }

    pub fn is_completed(&self) -> bool {
        self.status == "completed"
    }
}

/// What identifies the run a dispatch started.
#[derive(Clone, Debug)]
pub struct Wanted<'a> {
    /// The workflow as dispatched: a file name (`deploy.yml`) or an id.
    pub workflow: &'a str,
    /// The branch or tag name (without `refs/heads/`).
    pub branch: &'a str,
    /// Unix seconds: runs created before this are older than the dispatch.
    pub since: i64,
}

/// Picks the run a dispatch started from a `GET .../actions/runs` answer:
/// the newest run (by `created_at`, then id) that was created at or after
/// `wanted.since` and, where the run says so, is a `workflow_dispatch` run of
/// the same workflow on the same branch. `Ok(None)` if there is none yet.
pub fn pick(list: &Value, wanted: &Wanted) -> Result<Option<Run>, String> {
    let runs = list
        .get("workflow_runs")
        .and_then(Value::as_array)
        .ok_or("the answer has no `workflow_runs` list")?;
    let mut best: Option<(i64, Run)> = None;
    for (i, run) in runs.iter().enumerate() {
        let Some(created) = run
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
        else {
            continue;
        };
        if created < wanted.since || !matches(run, wanted) {
            continue;
        }
        let run = Run::from_json(run).map_err(|e| format!("workflow_runs[{i}] {e}"))?;
        let newer = match &best {
            None => true,
            Some((at, chosen)) => (created, run.id) > (*at, chosen.id),
        };
        if newer {
            best = Some((created, run));
        }
    }
    Ok(best.map(|(_, run)| run))
}

/// Whether a run could be the dispatched one, judging by the fields it has.
fn matches(run: &Value, wanted: &Wanted) -> bool {
    let text = |key: &str| run.get(key).and_then(Value::as_str);
    if text("event").is_some_and(|event| event != "workflow_dispatch") {
        return false;
    }
    if text("head_branch").is_some_and(|branch| branch != wanted.branch) {
        return false;
    }
    if wanted.workflow.bytes().all(|b| b.is_ascii_digit()) {
        let id = run.get("workflow_id").and_then(Value::as_u64);
        return id.is_none_or(|id| id.to_string() == wanted.workflow);
    }
    // `path` is `.github/workflows/deploy.yml`, sometimes with `@ref` after.
    match text("path") {
        None => true,
        Some(path) => {
            let path = path.split('@').next().unwrap_or(path);
            path.rsplit('/').next() == Some(wanted.workflow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(id: u64, created_at: &str, path: &str, branch: &str) -> Value {
        json!({
            "id": id,
            "run_number": id - 100,
            "event": "workflow_dispatch",
            "status": "queued",
            "conclusion": null,
            "head_branch": branch,
            "path": path,
            "workflow_id": 7,
            "created_at": created_at,
            "html_url": format!("https://github.com/acme/payments/actions/runs/{id}")
        })
    }

    #[test]
    fn the_newest_matching_run_since_the_dispatch_is_picked() {
        let since = parse_rfc3339("2026-11-28T09:15:02Z").unwrap();
        let wanted = Wanted {
            workflow: "deploy.yml",
            branch: "main",
            since,
        };
        let list = json!({"total_count": 5, "workflow_runs": [
            run(105, "2026-11-28T09:15:04Z", ".github/workflows/lint.yml", "main"),
            run(104, "2026-11-28T09:15:03Z", ".github/workflows/deploy.yml", "release"),
            run(103, "2026-11-28T09:15:03Z", ".github/workflows/deploy.yml@refs/heads/main", "main"),
            run(102, "2026-11-28T09:15:02Z", ".github/workflows/deploy.yml", "main"),
            run(101, "2026-11-28T09:00:00Z", ".github/workflows/deploy.yml", "main"),
        ]});
        let picked = pick(&list, &wanted).unwrap().unwrap();
        assert_eq!(
            picked,
            Run {
                id: 103,
                status: "queued".into(),
                conclusion: None,
                html_url: "https://github.com/acme/payments/actions/runs/103".into(),
                run_number: Some(3),
            }
        );

        // Only older runs: not there yet.
        let list = json!({"workflow_runs": [run(101, "2026-11-28T09:00:00Z", ".github/workflows/deploy.yml", "main")]});
        assert_eq!(pick(&list, &wanted), Ok(None));
        assert_eq!(pick(&json!({"workflow_runs": []}), &wanted), Ok(None));
    }

    #[test]
    fn a_workflow_named_by_id_matches_workflow_id() {
        let list = json!({"workflow_runs": [run(101, "2026-11-28T09:15:02Z", ".github/workflows/x.yml", "main")]});
        let mut wanted = Wanted {
            workflow: "7",
            branch: "main",
            since: 0,
        };
        assert_eq!(pick(&list, &wanted).unwrap().unwrap().id, 101);
        wanted.workflow = "8";
        assert_eq!(pick(&list, &wanted), Ok(None));
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        let wanted = Wanted {
            workflow: "deploy.yml",
            branch: "main",
            since: 0,
        };
        assert!(pick(&json!([]), &wanted)
            .unwrap_err()
            .contains("workflow_runs"));
        let list = json!({"workflow_runs": [{"id": "x", "created_at": "2026-11-28T09:15:02Z"}]});
        assert_eq!(
            pick(&list, &wanted).unwrap_err(),
            "workflow_runs[0] has no numeric `id`"
        );
    }

    #[test]
    fn a_completed_run_has_its_conclusion() {
        let run = Run::from_json(&json!({
            "id": 9, "status": "completed", "conclusion": "failure", "html_url": "u"
        }))
        .unwrap();
        assert!(run.is_completed());
        assert_eq!(run.conclusion.as_deref(), Some("failure"));
        assert_eq!(
            Run::from_json(&json!({"id": 9})).unwrap_err(),
            "9 has no `status`"
        );
    }
}
