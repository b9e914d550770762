//! What a backfill does with each logical date of its range, and when its runs may start.
//!
//! A backfill (Airflow 3's) creates a run for each schedule interval of a date range that has
//! none, and by its `reprocess` policy runs again the ones that exist: `none` leaves every
//! existing run alone, `failed` re-runs the failed instances of failed runs, `all` re-runs
//! every finished run whole. A run still queued or running is never touched.

use std::fmt;
use std::str::FromStr;

use super::DagRunState;

/// Which existing runs a backfill runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reprocess {
    /// None: only dates without a run get one.
    #[default]
    None,
    /// Failed runs (their failed and upstream-failed instances).
    Failed,
    /// Every finished run, whole.
    All,
}

impl Reprocess {
    /// Every policy, with its name.
    pub const ALL: [(&'static str, Reprocess); 3] =
        [("none", Reprocess::None), ("failed", Reprocess::Failed), ("all", Reprocess::All)];

    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reprocess::None => "none",
            Reprocess::Failed => "failed",
            Reprocess::All => "all",
        }
    }
}

impl FromStr for Reprocess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reprocess::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, r)| *r)
            .ok_or_else(|| format!("unknown reprocess policy `{s}`: use none, failed or all"))
    }
}

impl fmt::Display for Reprocess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a backfill does with one logical date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillStep {
    /// No run has that date: create one.
    Create,
    /// Run the existing run again (only its failed instances when `only_failed`).
    Reprocess {
        /// Only the failed and upstream-failed instances.
        only_failed: bool,
    },
    /// Leave the existing run alone, for this reason.
    Skip(&'static str),
}

/// The step for a date whose existing run (if any) is in `existing`.
pub fn step(existing: Option<DagRunState>, reprocess: Reprocess) -> BackfillStep {
    use DagRunState::{Failed, Queued, Running, Success};
    match (existing, reprocess) {
        (None, _) => BackfillStep::Create,
        (Some(Queued | Running), _) => BackfillStep::Skip("the run is still going"),
        (Some(Failed), Reprocess::Failed) => BackfillStep::Reprocess { only_failed: true },
        (Some(Failed | Success), Reprocess::All) => BackfillStep::Reprocess { only_failed: false },
        (Some(_), _) => BackfillStep::Skip("a run exists (reprocess: none or failed)"),
    }
}

/// Whether one more run of a backfill may start: not paused or cancelled, and fewer than
/// `max_active_runs` of its runs running.
pub fn may_start(paused: bool, cancelled: bool, running: i64, max_active_runs: i64) -> bool {
    !paused && !cancelled && running < max_active_runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_decides_each_existing_run() {
        use BackfillStep::{Create, Skip};
        use DagRunState::*;
        let again = |only_failed| BackfillStep::Reprocess { only_failed };
        let cases = [
            (None, Reprocess::None, Create),
            (None, Reprocess::All, Create),
            (Some(Success), Reprocess::None, Skip("a run exists (reprocess: none or failed)")),
            (Some(Failed), Reprocess::None, Skip("a run exists (reprocess: none or failed)")),
            (Some(Success), Reprocess::Failed, Skip("a run exists (reprocess: none or failed)")),
            (Some(Failed), Reprocess::Failed, again(true)),
            (Some(Failed), Reprocess::All, again(false)),
            (Some(Success), Reprocess::All, again(false)),
            (Some(Running), Reprocess::All, Skip("the run is still going")),
            (Some(Queued), Reprocess::Failed, Skip("the run is still going")),
        ];
        for (existing, policy, want) in cases {
            assert_eq!(step(existing, policy), want, "{existing:?} with {policy}");
        }
        assert!(may_start(false, false, 1, 2));
        assert!(!may_start(false, false, 2, 2), "at its limit");
        assert!(!may_start(true, false, 0, 2), "paused");
        assert!(!may_start(false, true, 0, 2), "cancelled");
        assert_eq!("failed".parse::<Reprocess>(), Ok(Reprocess::Failed));
        assert!("some".parse::<Reprocess>().unwrap_err().contains("none, failed or all"));
    }
}
