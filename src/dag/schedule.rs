//! When a DAG runs: the `schedule:` field parsed, and Airflow's data intervals computed from it.
//!
//! This file owns the timetable maths (Airflow's `CronDataIntervalTimetable` and
//! `OnceTimetable`). It must not read the clock: `now` is always an argument, so the scheduler
//! can drive it with a test clock. All times are UTC.
//!
//! A run for the interval [start, end) is created once `end` has passed; its logical date is
//! `start`. That is why a daily DAG's run for 2026-01-01 starts on 2026-01-02 at 00:00.

mod cron_expr;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Timelike, Utc};

/// The parsed `schedule:` field.
// One per DAG, never in a hot collection: boxing the cron variant would only cost an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `null` or absent: runs are only created by a trigger.
    None,
    /// `@once`: one run, for `start_date`.
    Once,
    /// A cron expression or a preset standing for one.
    Cron {
        /// What the user wrote (`@daily`, `*/5 * * * *`), shown back to them.
        expr: String,
        /// The same schedule for the `cron` crate (seconds first, day names).
        cron: cron::Schedule,
    },
}

/// Presets and the classic cron expression each stands for (Airflow's list).
const PRESETS: [(&str, &str); 7] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
];

/// The span of data one scheduled run covers: from `start` (its logical date) to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataInterval {
    /// Start of the interval, included; the run's logical date.
    pub start: DateTime<Utc>,
    /// End of the interval, excluded; the run may start once this has passed.
    pub end: DateTime<Utc>,
}

impl Schedule {
    /// Parses the text of `schedule:`; the error is a sentence naming what is wrong.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower == "@once" {
            return Ok(Schedule::Once);
        }
        if lower == "none" || lower == "null" || lower.is_empty() {
            return Ok(Schedule::None);
        }
        let classic = if trimmed.starts_with('@') {
            match PRESETS.iter().find(|(name, _)| *name == lower) {
                Some((_, cron)) => *cron,
                None => return Err(unknown_preset(trimmed)),
            }
        } else {
            trimmed
        };
        let invalid = |why: String| format!("invalid schedule `{trimmed}`: {why}");
        let rewritten = cron_expr::to_cron_crate(classic).map_err(invalid)?;
        let cron = cron::Schedule::from_str(&rewritten).map_err(|e| invalid(e.to_string()))?;
        // Valid fields can still describe no date at all (`0 0 30 2 *`): refuse it now rather
        // than have the DAG silently never run.
        if cron.after(&DateTime::<Utc>::UNIX_EPOCH).next().is_none() {
            return Err(invalid("it never fires".to_string()));
        }
        Ok(Schedule::Cron { expr: trimmed.to_string(), cron })
    }

    /// True unless runs are only created by triggers.
    pub fn is_scheduled(&self) -> bool {
        !matches!(self, Schedule::None)
    }

    /// The first time the schedule fires strictly after `t`; `None` for manual and `@once`.
    pub fn next_fire_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { cron, .. } => cron.after(&t).next(),
            Schedule::None | Schedule::Once => None,
        }
    }

    /// The next interval to create a run for, or `None` when no more runs are due to be
    /// created. The run is due once `end <= now`; the caller checks that.
    ///
    /// - After `last`, the next interval starts where `last` ended (aligned to the schedule,
    ///   in case the schedule changed).
    /// - Without a last run, it is the first interval starting at or after `start_date`.
    /// - Without `catchup` (or without `start_date`, which leaves nothing to catch up from), it
    ///   skips forward to the latest interval that has ended by `now`, never going back past
    ///   what the rules above give; when none has ended yet, it is the first upcoming one.
    /// - Nothing starts after `end_date`.
    pub fn next_interval(
        &self,
        last: Option<DataInterval>,
        start_date: Option<DateTime<Utc>>,
        end_date: Option<DateTime<Utc>>,
        catchup: bool,
        now: DateTime<Utc>,
    ) -> Option<DataInterval> {
        let past_end = |t: DateTime<Utc>| end_date.is_some_and(|end| t > end);
        let cron = match self {
            Schedule::None => return None,
            Schedule::Once => {
                // Airflow's OnceTimetable: one run at start_date, an empty interval.
                let start = start_date.filter(|_| last.is_none())?;
                return (!past_end(start)).then_some(DataInterval { start, end: start });
            }
            Schedule::Cron { cron, .. } => cron,
        };
        let aligned_start = start_date.and_then(|s| align_next(cron, s));
        let earliest = match aligned_start {
            Some(s) if catchup => Some(s),
            _ => skip_to_latest(cron, aligned_start, now),
        };
        let start = match (last, earliest) {
            (None, earliest) => earliest?,
            (Some(last), Some(earliest)) => align_prev(cron, last.end)?.max(earliest),
            (Some(last), None) => align_prev(cron, last.end)?,
        };
        if past_end(start) {
            return None;
        }
        let end = cron.after(&start).next()?;
        Some(DataInterval { start, end })
    }

    /// Every interval whose start is in `[from, to]`, oldest first: what a backfill creates.
    /// Empty for manual and `@once` DAGs. The caller bounds the range: a minutely schedule over
    /// a year is half a million intervals.
    pub fn intervals_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DataInterval> {
        let Schedule::Cron { cron, .. } = self else { return Vec::new() };
        let mut out = Vec::new();
        let mut start = align_next(cron, from);
        while let Some(s) = start.filter(|s| *s <= to) {
            let Some(end) = cron.after(&s).next() else { break };
            out.push(DataInterval { start: s, end });
            start = Some(end);
        }
        out
    }
}

/// `t` itself when the schedule fires at `t`, else the next fire time.
fn align_next(cron: &cron::Schedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if t.nanosecond() == 0 && cron.includes(t) { Some(t) } else { cron.after(&t).next() }
}

/// `t` itself when the schedule fires at `t`, else the previous fire time.
fn align_prev(cron: &cron::Schedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if t.nanosecond() == 0 && cron.includes(t) { Some(t) } else { cron.after(&t).next_back() }
}

/// Start of the latest interval that has ended by `now`, or `aligned_start` if that is later.
fn skip_to_latest(
    cron: &cron::Schedule,
    aligned_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let latest_end = align_prev(cron, now);
    let latest_start = latest_end.and_then(|end| cron.after(&end).next_back());
    match (latest_start, aligned_start) {
        (Some(latest), Some(aligned)) => Some(latest.max(aligned)),
        (Some(latest), None) => Some(latest),
        // No interval has ended yet (the schedule never fired before now): the first one.
        (None, aligned) => aligned.or_else(|| cron.after(&now).next()),
    }
}

fn unknown_preset(text: &str) -> String {
    let names: Vec<&str> =
        std::iter::once("@once").chain(PRESETS.iter().map(|(n, _)| *n)).collect();
    let lower = text.to_ascii_lowercase();
    let near = names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(n, &lower), *n))
        .min()
        .filter(|(d, _)| *d <= 2)
        .map(|(_, n)| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    format!("unknown schedule preset `{text}`{near} (presets: {})", names.join(", "))
}

impl fmt::Display for Schedule {
    /// What the user wrote; `None` for a manual-only DAG, as Airflow shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::None => f.write_str("None"),
            Schedule::Once => f.write_str("@once"),
            Schedule::Cron { expr, .. } => f.write_str(expr),
        }
    }
}

impl PartialEq for Schedule {
    /// Two schedules are equal when written the same way.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::None, Schedule::None) | (Schedule::Once, Schedule::Once) => true,
            (Schedule::Cron { expr: a, .. }, Schedule::Cron { expr: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for Schedule {}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}
