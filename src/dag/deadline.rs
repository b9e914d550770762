//! Deadline alerts (`deadline:` in a DAG file; Airflow 3's replacement for SLAs): a run that has
//! not finished `interval` after its reference time notifies the listed connections, once.
//!
//! Invariant: declarations only; when a deadline falls and whether a run met it is
//! `model::deadline`'s, the check is the scheduler's (`scheduler/deadlines.rs`).

use std::fmt;
use std::time::Duration;

/// One deadline of a DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// The time the interval counts from.
    pub reference: DeadlineRef,
    /// How long after the reference the run must have finished.
    pub interval: Duration,
    /// The notifier connections told when a run misses it.
    pub notify: Vec<String>,
}

/// What a deadline counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineRef {
    /// The run's logical date (for a scheduled run, the start of its data interval).
    LogicalDate,
    /// When the run started running.
    RunStart,
    /// When the run was created (queued).
    Queued,
}

impl DeadlineRef {
    /// Every reference with its spelling in DAG files and in the store.
    pub const ALL: [(&'static str, DeadlineRef); 3] = [
        ("logical_date", DeadlineRef::LogicalDate),
        ("run_start", DeadlineRef::RunStart),
        ("queued", DeadlineRef::Queued),
    ];

    /// The spelling in DAG files and in the store.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, r)| *r == self).map_or("logical_date", |(s, _)| s)
    }

    /// The reference a spelling names.
    pub fn parse(text: &str) -> Option<DeadlineRef> {
        Self::ALL.iter().find(|(s, _)| *s == text).map(|(_, r)| *r)
    }

    /// As a sentence ends: "after the logical date".
    pub fn phrase(self) -> &'static str {
        match self {
            DeadlineRef::LogicalDate => "after the logical date",
            DeadlineRef::RunStart => "after the run started",
            DeadlineRef::Queued => "after the run was queued",
        }
    }
}

impl fmt::Display for Deadline {
    /// "2h after the logical date".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interval = humantime::format_duration(self.interval);
        write!(f, "{interval} {}", self.reference.phrase())
    }
}
