//! The run page's gantt and task list: one row per task, in the order the tasks started, on a
//! time axis with ticks. A mapped task is one row (its instances' envelope, counted by state)
//! that opens onto a row per instance, so a 200-wide run stays a short page.
//!
//! Invariant: pure — the rows are computed from the run and its instances as read; times
//! come from the instances' own start and end (a mark never moves them).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{is_live, relevance, ti_href};
use crate::dag::Dag;
use crate::model::TaskState;
use crate::store::{RunRow, TiRow};
use crate::web::pages::{fmt_duration, fmt_time};

/// At most this many ticks on the axis.
const MAX_TICKS: i64 = 8;

/// The gantt of one run.
pub(crate) struct Gantt {
    /// One per task, in start order (tasks not started yet last, in graph order).
    pub(crate) rows: Vec<GanttRow>,
    /// The run's span, as text.
    pub(crate) span: String,
    /// (left %, label) of each tick of the time axis.
    pub(crate) ticks: Vec<(String, String)>,
    /// The span in ms: `app.js` relabels the axis from it when the user zooms into a range.
    pub(crate) span_ms: i64,
}

/// One row: a task instance, or a mapped task with its instances.
pub(crate) struct GanttRow {
    pub(crate) label: String,
    pub(crate) href: String,
    pub(crate) state: String,
    pub(crate) title: String,
    /// Waiting in the queue (lighter), if known: (left %, width %).
    pub(crate) queued: Option<Bar>,
    /// Running: (left %, width %).
    pub(crate) bar: Option<Bar>,
    pub(crate) try_number: String,
    pub(crate) operator: String,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) duration: String,
    /// A mapped task's instances (empty otherwise), and its count per state.
    pub(crate) instances: Vec<GanttRow>,
    pub(crate) counts: String,
}

/// A bar as (left %, width %) of the run's span.
type Bar = (String, String);

/// Where a run's times fall on the axis.
struct Span {
    t0: DateTime<Utc>,
    total_ms: f64,
    now: DateTime<Utc>,
}

impl Span {
    /// `[from, to]` as (left %, width %).
    fn pct(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Bar {
        let left =
            ((from - self.t0).num_milliseconds() as f64 / self.total_ms * 100.0).clamp(0.0, 100.0);
        let width = ((to - from).num_milliseconds() as f64 / self.total_ms * 100.0)
            .clamp(0.0, 100.0 - left);
        (format!("{left:.3}"), format!("{width:.3}"))
    }

    fn bars(
        &self,
        queued: Option<DateTime<Utc>>,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> (Option<Bar>, Option<Bar>) {
        let end = end.or(start.map(|_| self.now));
        let bar = start.zip(end).map(|(s, e)| self.pct(s, e));
        let waited = queued.zip(start).filter(|(q, s)| q < s).map(|(q, s)| self.pct(q, s));
        (waited, bar)
    }

    /// Round steps (1, 2, 5 x 10^n ms) giving at most [`MAX_TICKS`] ticks.
    fn ticks(&self) -> Vec<(String, String)> {
        let total = self.total_ms.max(1.0) as i64;
        let mut step = 1i64;
        'find: for scale in (0..12).map(|p| 10i64.pow(p)) {
            for m in [1, 2, 5] {
                step = m * scale;
                if total / step < MAX_TICKS {
                    break 'find;
                }
            }
        }
        (0..=total / step)
            .map(|i| {
                let at = i * step;
                let label =
                    fmt_duration(Some(self.t0), Some(self.t0 + chrono::Duration::milliseconds(at)));
                (
                    format!("{:.3}", at as f64 / self.total_ms * 100.0),
                    if i == 0 { "0".into() } else { format!("+{label}") },
                )
            })
            .collect()
    }
}

impl Gantt {
    /// The gantt of `run` from its instances, at `now` (running bars end there).
    pub(crate) fn new(dag: &Dag, run: &RunRow, tis: &[TiRow], now: DateTime<Utc>) -> Gantt {
        let starts = tis.iter().filter_map(|t| t.queued_at.or(t.start_date));
        let t0 = run.start_date.into_iter().chain(starts).min();
        let ends = tis.iter().filter_map(|t| t.end_date.or(t.start_date.map(|_| now)));
        let open = is_live(run.state).then_some(now);
        let t1 = run.end_date.or(open).into_iter().chain(ends).max();
        let span = match (t0, t1) {
            (Some(a), Some(b)) => {
                Span { t0: a, total_ms: ((b - a).num_milliseconds() as f64).max(1.0), now }
            }
            _ => Span { t0: now, total_ms: 1.0, now },
        };
        let order: HashMap<&str, usize> =
            dag.graph.topo_order().iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        let mut by_task: BTreeMap<&str, Vec<&TiRow>> = BTreeMap::new();
        for t in tis {
            by_task.entry(t.task_id.as_str()).or_default().push(t);
        }
        let mut rows: Vec<(Option<DateTime<Utc>>, usize, GanttRow)> = by_task
            .into_values()
            .map(|mut group| {
                group.sort_by_key(|t| t.map_index);
                let first = group.iter().filter_map(|t| t.start_date).min();
                let rank = order.get(group[0].task_id.as_str()).copied().unwrap_or(usize::MAX);
                let row = if group.len() == 1 && group[0].map_index < 0 {
                    instance_row(run, group[0], &span)
                } else {
                    mapped_row(run, &group, &span)
                };
                (first, rank, row)
            })
            .collect();
        // Started tasks by start time, then the others in graph order.
        rows.sort_by_key(|(start, rank, _)| (start.is_none(), *start, *rank));
        let total = chrono::Duration::milliseconds(span.total_ms as i64);
        Gantt {
            rows: rows.into_iter().map(|(_, _, r)| r).collect(),
            span: fmt_duration(Some(span.t0), Some(span.t0 + total)),
            ticks: span.ticks(),
            span_ms: span.total_ms as i64,
        }
    }
}

fn instance_row(run: &RunRow, t: &TiRow, span: &Span) -> GanttRow {
    let (queued, bar) = span.bars(t.queued_at, t.start_date, t.end_date);
    let label = if t.map_index >= 0 {
        format!("{} [{}]", t.task_id, t.map_index)
    } else {
        t.task_id.clone()
    };
    GanttRow {
        title: format!(
            "{label} · {} · queued {} · started {} · ended {} · {}",
            t.state,
            fmt_time(t.queued_at),
            fmt_time(t.start_date),
            fmt_time(t.end_date),
            fmt_duration(t.start_date, t.end_date)
        ),
        href: ti_href(&run.dag_id, &run.run_id, &t.task_id, t.map_index),
        state: t.state.to_string(),
        queued,
        bar,
        try_number: format!("{} / {}", t.try_number, t.max_tries),
        operator: t.operator.clone(),
        start: fmt_time(t.start_date),
        end: fmt_time(t.end_date),
        duration: fmt_duration(t.start_date, t.end_date),
        instances: Vec::new(),
        counts: String::new(),
        label,
    }
}

/// A mapped task: the envelope of its instances, its most telling state, and its count per
/// state ("198 success, 2 failed").
fn mapped_row(run: &RunRow, group: &[&TiRow], span: &Span) -> GanttRow {
    let first = group[0];
    let start = group.iter().filter_map(|t| t.start_date).min();
    let queued = group.iter().filter_map(|t| t.queued_at).min();
    let unfinished = group.iter().any(|t| t.start_date.is_some() && t.end_date.is_none());
    let end = if unfinished { None } else { group.iter().filter_map(|t| t.end_date).max() };
    let (waited, bar) = span.bars(queued, start, end);
    let state =
        group.iter().map(|t| t.state).min_by_key(|s| relevance(*s)).unwrap_or(TaskState::None);
    let mut counts: BTreeMap<u8, (TaskState, usize)> = BTreeMap::new();
    for t in group {
        counts.entry(relevance(t.state)).or_insert((t.state, 0)).1 += 1;
    }
    let counts: Vec<String> = counts.values().map(|(s, n)| format!("{n} {s}")).collect();
    let counts = counts.join(", ");
    let label = format!("{} [{}]", first.task_id, group.len());
    GanttRow {
        title: format!("{label} · {counts} · {}", fmt_duration(start, end)),
        href: ti_href(&run.dag_id, &run.run_id, &first.task_id, first.map_index),
        state: state.to_string(),
        queued: waited,
        bar,
        try_number: String::new(),
        operator: first.operator.clone(),
        start: fmt_time(start),
        end: fmt_time(end),
        duration: fmt_duration(start, end),
        instances: group.iter().map(|t| instance_row(run, t, span)).collect(),
        counts,
        label,
    }
}
