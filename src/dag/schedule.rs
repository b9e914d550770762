//! When a DAG runs: the `schedule:` field parsed, and Airflow's data intervals computed from it.
//!
//! This file owns the timetable maths (Airflow's `CronDataIntervalTimetable` and
//! `OnceTimetable`). It must not read the clock: `now` is always an argument, so the scheduler
//! can drive it with a test clock. Times in and out are UTC instants; a cron expression is read
//! on the wall clock of the DAG's `timezone` (UTC unless set), as Airflow does.
//!
//! Daylight-saving changes follow cron(8) (Vixie cron): an expression with a fixed minute and
//! hour (`0 2 * * *`) whose wall time does not exist that day (skipped forwards) fires once,
//! at the first instant after the jump; when its wall time exists twice (clocks set back) it
//! fires once, the first time. An expression with `*` in its minute or hour (`30 * * * *`,
//! `@hourly`) follows the clock as it is: a wall time that does not exist does not fire, one
//! that exists twice fires twice, an hour apart. Either way no run is skipped or doubled on a
//! day whose wall time exists once.
//!
//! A run for the interval [start, end) is created once `end` has passed; its logical date is
//! `start`. That is why a daily DAG's run for 2026-01-01 starts on 2026-01-02 at 00:00.

mod cron_expr;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

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
        /// When it fires: the expression, its zone and its daylight-saving rule.
        fires: Fires,
    },
}

/// The fire times of a cron expression on the wall clock of a zone.
#[derive(Debug, Clone)]
pub struct Fires {
    /// The expression for the `cron` crate (seconds first, day names), read as wall time.
    cron: cron::Schedule,
    zone: Tz,
    /// Whether both the minute and the hour are fixed (no `*`): cron(8)'s rule for a wall time
    /// skipped or repeated by a daylight-saving change (see the module's documentation).
    fixed: bool,
}

/// The largest change of a zone's UTC offset the search allows for (daylight saving moves
/// clocks by 30 minutes to 2 hours).
const MAX_SHIFT: Duration = Duration::hours(3);

/// Wall-clock candidates one search looks at, at most: a minutely expression has 360 in the
/// six hours around an instant.
const MAX_CANDIDATES: usize = 2_000;

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
        let mut fields = classic.split_whitespace();
        let fixed = fields.by_ref().take(2).all(|f| !f.starts_with('*'));
        let fires = Fires { cron, zone: Tz::UTC, fixed };
        Ok(Schedule::Cron { expr: trimmed.to_string(), fires })
    }

    /// The same schedule read on the wall clock of `zone`.
    pub fn in_zone(self, zone: Tz) -> Schedule {
        match self {
            Schedule::Cron { expr, fires } => {
                Schedule::Cron { expr, fires: Fires { zone, ..fires } }
            }
            other => other,
        }
    }

    /// True unless runs are only created by triggers.
    pub fn is_scheduled(&self) -> bool {
        !matches!(self, Schedule::None)
    }

    /// The first time the schedule fires strictly after `t`; `None` for manual and `@once`.
    pub fn next_fire_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { fires, .. } => fires.next_after(t),
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
            Schedule::Cron { fires, .. } => fires,
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
        let end = cron.next_after(start)?;
        Some(DataInterval { start, end })
    }

    /// Every interval whose start is in `[from, to]`, oldest first: what a backfill creates.
    /// Empty for manual and `@once` DAGs. The caller bounds the range: a minutely schedule over
    /// a year is half a million intervals.
    pub fn intervals_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DataInterval> {
        let Schedule::Cron { fires: cron, .. } = self else { return Vec::new() };
        let mut out = Vec::new();
        let mut start = align_next(cron, from);
        while let Some(s) = start.filter(|s| *s <= to) {
            let Some(end) = cron.next_after(s) else { break };
            out.push(DataInterval { start: s, end });
            start = Some(end);
        }
        out
    }
}

impl Fires {
    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.zone == Tz::UTC {
            return self.cron.after(&t).next();
        }
        // Wall times from a little before `t`'s: a later wall time can be an earlier instant
        // across a change, never by more than MAX_SHIFT.
        let from = self.wall(t) - MAX_SHIFT;
        let mut best: Option<DateTime<Utc>> = None;
        for w in self.cron.after(&from.and_utc()).take(MAX_CANDIDATES) {
            let w = w.naive_utc();
            if best.is_some_and(|b| w > self.wall(b) + MAX_SHIFT) {
                break;
            }
            for at in self.instants(w).into_iter().flatten() {
                if at > t && best.is_none_or(|b| at < b) {
                    best = Some(at);
                }
            }
        }
        best
    }

    /// The last fire time strictly before `t`.
    pub fn prev_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.zone == Tz::UTC {
            return self.cron.after(&t).next_back();
        }
        let from = self.wall(t) + MAX_SHIFT;
        let mut best: Option<DateTime<Utc>> = None;
        let mut back = self.cron.after(&from.and_utc());
        for _ in 0..MAX_CANDIDATES {
            let Some(w) = back.next_back() else { break };
            let w = w.naive_utc();
            if best.is_some_and(|b| w < self.wall(b) - MAX_SHIFT) {
                break;
            }
            for at in self.instants(w).into_iter().flatten() {
                if at < t && best.is_none_or(|b| at > b) {
                    best = Some(at);
                }
            }
        }
        best
    }

    /// Whether the schedule fires at `t` (a whole second).
    fn includes(&self, t: DateTime<Utc>) -> bool {
        if self.zone == Tz::UTC {
            return t.nanosecond() == 0 && self.cron.includes(t);
        }
        t.nanosecond() == 0 && self.next_after(t - Duration::seconds(1)) == Some(t)
    }

    /// The zone whose wall clock the expression is read on.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The wall time of `t` in the zone.
    fn wall(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.zone).naive_local()
    }

    /// The instants a wall-clock fire time stands for (at most two), by the module's rule.
    fn instants(&self, w: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
        match self.zone.from_local_datetime(&w) {
            LocalResult::Single(at) => [Some(at.to_utc()), None],
            LocalResult::Ambiguous(first, _) if self.fixed => [Some(first.to_utc()), None],
            LocalResult::Ambiguous(first, second) => [Some(first.to_utc()), Some(second.to_utc())],
            LocalResult::None if self.fixed => [first_instant_from(self.zone, w), None],
            LocalResult::None => [None, None],
        }
    }
}

/// The instant of the wall time `w` in `zone`: the earlier one when it exists twice, the first
/// instant after the gap when a daylight-saving change skipped it.
pub(crate) fn first_instant_from(zone: Tz, w: NaiveDateTime) -> Option<DateTime<Utc>> {
    (0..=MAX_SHIFT.num_minutes()).find_map(|m| {
        zone.from_local_datetime(&(w + Duration::minutes(m))).earliest().map(|at| at.to_utc())
    })
}

/// `t` itself when the schedule fires at `t`, else the next fire time.
fn align_next(cron: &Fires, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if cron.includes(t) { Some(t) } else { cron.next_after(t) }
}

/// `t` itself when the schedule fires at `t`, else the previous fire time.
fn align_prev(cron: &Fires, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if cron.includes(t) { Some(t) } else { cron.prev_before(t) }
}

/// Start of the latest interval that has ended by `now`, or `aligned_start` if that is later.
fn skip_to_latest(
    cron: &Fires,
    aligned_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let latest_end = align_prev(cron, now);
    let latest_start = latest_end.and_then(|end| cron.prev_before(end));
    match (latest_start, aligned_start) {
        (Some(latest), Some(aligned)) => Some(latest.max(aligned)),
        (Some(latest), None) => Some(latest),
        // No interval has ended yet (the schedule never fired before now): the first one.
        (None, aligned) => aligned.or_else(|| cron.next_after(now)),
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
    /// Two schedules are equal when written the same way, in the same zone.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::None, Schedule::None) | (Schedule::Once, Schedule::Once) => true,
            (Schedule::Cron { expr: a, fires: x }, Schedule::Cron { expr: b, fires: y }) => {
                a == b && x.zone == y.zone
            }
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
