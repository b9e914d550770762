//! What the scheduler does with one task instance it may move, and why.
//!
//! The scheduler reads an instance (its state, map index and `next_try_at`), its task in the
//! current DAG (or nothing when the task is gone) and its upstream counts, asks
//! [`schedule_ti`], and applies the answer: a state change with its reason ([`Decision`]), a
//! hold with the reason it waits ([`WaitReason`]), or the expansion of a mapped task. After
//! rendering a `foreach`, [`expansion`] decides what the result means.
//! Invariant: pure, and the only place these scheduler-side transitions are decided; every
//! reason a user may read is produced here ([`Why::note`], [`WaitReason::note`]).

use std::fmt;

use chrono::{DateTime, Utc};

use super::{Readiness, TaskState, UpstreamCounts, UpstreamWait, readiness};
use crate::dag::Task;

/// What the scheduler knows of one task instance when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TiFacts {
    /// Its current state.
    pub state: TaskState,
    /// -1 unless mapped (a mapped task starts as one placeholder, -1).
    pub map_index: i64,
    /// Not eligible again before this (retry delay, sensor poke interval).
    pub next_try_at: Option<DateTime<Utc>>,
}

/// What to do with one task instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Move it to another state.
    Move(Decision),
    /// Leave it where it is, for this reason.
    Hold(WaitReason),
    /// A mapped task's placeholder whose trigger rule is met: render its `foreach` and ask
    /// [`expansion`].
    Expand,
    /// Not the scheduler's to move: scheduled (the queue takes it), queued or running (a worker
    /// has it), or finished.
    Untouched,
}

/// A state change and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The new state.
    pub to: TaskState,
    /// Why.
    pub why: Why,
}

impl Decision {
    fn moved(to: TaskState, why: Why) -> Next {
        Next::Move(Decision { to, why })
    }
}

/// Why the scheduler moved a task instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Its trigger rule is met.
    DependenciesMet,
    /// Its retry delay has passed.
    RetryDue,
    /// A sensor's poke interval has passed.
    PokeDue,
    /// Its task is no longer in the DAG.
    TaskRemoved,
    /// Its trigger rule can never be met because of skipped upstream tasks.
    UpstreamSkipped(String),
    /// Its trigger rule can never be met because upstream tasks failed.
    UpstreamFailed(String),
    /// Its trigger rule is met and its type runs nothing (`empty`): done without a try.
    NothingToRun,
    /// Its `foreach` gave an empty list.
    NoItems,
    /// Its `foreach` template failed to render, or did not give a list.
    ExpandFailed(String),
}

impl Why {
    /// The note stored with the new state, or None to clear it: a task that is on its way to
    /// run carries no stale reason (a retry's error stays on its try).
    pub fn note(&self) -> Option<String> {
        match self {
            Why::DependenciesMet | Why::RetryDue | Why::PokeDue => None,
            other => Some(other.to_string()),
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::DependenciesMet => f.write_str("its trigger rule is met"),
            Why::RetryDue => f.write_str("its retry delay has passed"),
            Why::PokeDue => f.write_str("its poke interval has passed"),
            Why::TaskRemoved => f.write_str("the task is no longer in the DAG"),
            Why::UpstreamSkipped(why) | Why::UpstreamFailed(why) => f.write_str(why),
            Why::NothingToRun => {
                f.write_str("marked success by the scheduler: an empty task runs nothing")
            }
            Why::NoItems => f.write_str("foreach gave no items"),
            Why::ExpandFailed(why) => write!(f, "foreach could not be expanded: {why}"),
        }
    }
}

/// Why a task instance stays where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// Its trigger rule waits for upstream tasks.
    Upstream(UpstreamWait),
    /// Up for retry; eligible again at this time.
    RetryAt(DateTime<Utc>),
    /// A sensor between pokes; pokes again at this time.
    PokeAt(DateTime<Utc>),
}

impl WaitReason {
    /// The note to store while it waits, or None to keep the stored one: a retry or a
    /// re-poke keeps the note its try ended with (the error), and its time is `next_try_at`.
    pub fn note(&self) -> Option<String> {
        match self {
            WaitReason::Upstream(w) => Some(w.to_string()),
            WaitReason::RetryAt(_) | WaitReason::PokeAt(_) => None,
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Upstream(w) => w.fmt(f),
            WaitReason::RetryAt(t) => write!(f, "up for retry at {}", t.to_rfc3339()),
            WaitReason::PokeAt(t) => write!(f, "pokes again at {}", t.to_rfc3339()),
        }
    }
}

/// Decides what happens to one task instance at `now`. `task` is its task in the current DAG
/// (None when the task was removed from the file); `upstream` counts its upstream instances
/// (used only for an instance in `none`).
pub fn schedule_ti(
    ti: &TiFacts,
    task: Option<&Task>,
    upstream: &UpstreamCounts,
    now: DateTime<Utc>,
) -> Next {
    let retry = match ti.state {
        TaskState::None => None,
        TaskState::UpForRetry => Some(true),
        TaskState::UpForReschedule => Some(false),
        _ => return Next::Untouched,
    };
    let Some(task) = task else { return Decision::moved(TaskState::Removed, Why::TaskRemoved) };
    if let Some(retry) = retry {
        // Without a time (an older row, a cleared delay) it is due at once.
        return match ti.next_try_at {
            Some(t) if t > now => {
                Next::Hold(if retry { WaitReason::RetryAt(t) } else { WaitReason::PokeAt(t) })
            }
            _ => Decision::moved(
                TaskState::Scheduled,
                if retry { Why::RetryDue } else { Why::PokeDue },
            ),
        };
    }
    match readiness(task.trigger_rule, upstream) {
        Readiness::Ready if task.foreach.is_some() && ti.map_index < 0 => Next::Expand,
        // An empty task with outlets runs a try: its success records the assets' events.
        Readiness::Ready if task.kind.runs_nothing() && task.outlets.is_empty() => {
            Decision::moved(TaskState::Success, Why::NothingToRun)
        }
        Readiness::Ready => Decision::moved(TaskState::Scheduled, Why::DependenciesMet),
        Readiness::Wait(w) => Next::Hold(WaitReason::Upstream(w)),
        Readiness::Skip(why) => Decision::moved(TaskState::Skipped, Why::UpstreamSkipped(why)),
        Readiness::UpstreamFailed(why) => {
            Decision::moved(TaskState::UpstreamFailed, Why::UpstreamFailed(why))
        }
    }
}

/// What a rendered `foreach` means for its placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expansion<T> {
    /// Replace the placeholder by one instance per item.
    Map(Vec<T>),
    /// Move the placeholder instead.
    Move(Decision),
}

/// Decides from a `foreach` result: its items, or why it could not be rendered as a list.
/// An empty list skips the task (downstream tasks follow their trigger rules, as after any
/// skip); a failure fails it, since retrying cannot change a template.
pub fn expansion<T>(items: Result<Vec<T>, String>) -> Expansion<T> {
    match items {
        Ok(items) if items.is_empty() => {
            Expansion::Move(Decision { to: TaskState::Skipped, why: Why::NoItems })
        }
        Ok(items) => Expansion::Map(items),
        Err(e) => Expansion::Move(Decision { to: TaskState::Failed, why: Why::ExpandFailed(e) }),
    }
}

#[cfg(test)]
#[path = "schedule_ti_tests.rs"]
mod tests;
