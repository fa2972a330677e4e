//! When a catalog source runs by itself: the sidecar's `[schedule]` table.
//!
//! ```toml
//! [schedule]
//! every = "15m"            # an interval: 30s, 10m, 1h30m, 1d
//! # or
//! cron = "*/10 * * * *"    # five fields (minute hour day month weekday), UTC
//! ```
//!
//! Exactly one of the two. An interval counts from the start of the
//! previous sync, whatever triggered it; a cron expression fires at its next
//! matching minute after the previous sync started. Both are parsed when the
//! plugin loads, so a typo is a load error, not a source that never runs.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// The shortest interval a schedule may ask for: a source syncing more
/// often than this would mostly measure its own overhead.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// `[schedule]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    pub every: Option<String>,
    pub cron: Option<String>,
}

/// A validated schedule.
#[derive(Clone)]
pub enum Schedule {
    /// Run again this long after the previous run started.
    Every(Duration),
    /// Run at the next time this cron expression matches (UTC).
    Cron {
        expression: String,
        cron: Box<croner::Cron>,
    },
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "Every({})", format_duration(*d)),
            Schedule::Cron { expression, .. } => write!(f, "Cron({expression:?})"),
        }
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        match (self, other) {
            (Schedule::Every(a), Schedule::Every(b)) => a == b,
            (Schedule::Cron { expression: a, .. }, Schedule::Cron { expression: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// Serialised for the API as `{"every": "15m"}` or `{"cron": "..."}`.
impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Schedule::Every(d) => map.serialize_entry("every", &format_duration(*d))?,
            Schedule::Cron { expression, .. } => map.serialize_entry("cron", expression)?,
        }
        map.end()
    }
}

impl ScheduleFile {
    /// Validates the table; the error names the key at fault.
    pub fn resolve(&self) -> Result<Schedule, String> {
        match (&self.every, &self.cron) {
            (Some(_), Some(_)) => {
                Err("schedule: set either `every` or `cron`, not both".to_owned())
            }
            (None, None) => Err(
                "schedule: set `every` (e.g. \"15m\") or `cron` (e.g. \"*/10 * * * *\")".to_owned(),
            ),
            (Some(every), None) => {
                let d = parse_duration(every)
                    .map_err(|e| format!("schedule.every = {every:?}: {e}"))?;
                if d < MIN_INTERVAL {
                    return Err(format!(
                        "schedule.every = {every:?}: must be at least {}",
                        format_duration(MIN_INTERVAL)
                    ));
                }
                Ok(Schedule::Every(d))
            }
            (None, Some(expr)) => {
                let fields = expr.split_whitespace().count();
                if fields != 5 && !expr.trim_start().starts_with('@') {
                    return Err(format!(
                        "schedule.cron = {expr:?}: expected five fields \
                         (minute hour day-of-month month day-of-week), found {fields}"
                    ));
                }
                let cron = croner::Cron::from_str(expr)
                    .map_err(|e| format!("schedule.cron = {expr:?}: {e}"))?;
                Ok(Schedule::Cron {
                    expression: expr.trim().to_owned(),
                    cron: Box::new(cron),
                })
            }
        }
    }
}

impl Schedule {
    /// When the next run is due, given when the previous one started.
    /// `None` if a cron expression never matches again.
    pub fn next_after(&self, previous: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => Some(previous + chrono::Duration::from_std(*d).ok()?),
            Schedule::Cron { cron, .. } => cron.find_next_occurrence(&previous, false).ok(),
        }
    }
}

/// Parses `90s`, `15m`, `1h30m`, `2d`: one or more number-unit pairs, units
/// `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "unexpected {c:?}; write a number and a unit (s, m, h, d), e.g. \"15m\""
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!("unit {c:?} without a number before it"));
        }
        let n: u64 = digits.parse().map_err(|_| "number too large".to_owned())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or("duration too large")?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "{digits} has no unit; write e.g. \"{digits}s\" or \"{digits}m\""
        ));
    }
    Ok(Duration::from_secs(total))
}

/// The shortest spelling `parse_duration` reads back: `1h30m`, `45s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn file(every: Option<&str>, cron: Option<&str>) -> ScheduleFile {
        ScheduleFile {
            every: every.map(str::to_owned),
            cron: cron.map(str::to_owned),
        }
    }

    #[test]
    fn durations_parse_and_print() {
        for (text, secs) in [("30s", 30), ("15m", 900), ("1h30m", 5_400), ("2d", 172_800)] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
        for bad in [
            "",
            "15",
            "m",
            "15x",
            "1h 30m",
            "-5m",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_counts_from_the_previous_start() {
        let s = file(Some("10m"), None).resolve().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 12, 10, 0).unwrap())
        );
        assert_eq!(serde_json::to_value(&s).unwrap()["every"], "10m");
    }

    #[test]
    fn cron_fires_at_its_next_matching_minute() {
        let s = file(None, Some("*/15 * * * *")).resolve().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 12, 7, 30).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 12, 15, 0).unwrap())
        );
        assert_eq!(serde_json::to_value(&s).unwrap()["cron"], "*/15 * * * *");
    }

    #[test]
    fn bad_schedules_name_the_key() {
        let cases = [
            (file(None, None), "schedule:"),
            (file(Some("5m"), Some("* * * * *")), "not both"),
            (file(Some("1s"), None), "schedule.every"),
            (file(Some("soon"), None), "schedule.every"),
            (file(None, Some("* * *")), "schedule.cron"),
            (file(None, Some("61 * * * *")), "schedule.cron"),
            (file(None, Some("* * * * * *")), "schedule.cron"),
        ];
        for (f, needle) in cases {
            let err = f.resolve().unwrap_err();
            assert!(err.contains(needle), "{f:?}: {err}");
        }
    }
}
