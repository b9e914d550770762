//! Task-instance, run and run-type states, with their stored spellings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored (and displayed) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!("unknown {} `{}`", stringify!($name), other)),
                }
            }
        }
    };
}

string_enum! {
    /// The state of one task instance (Airflow's values).
    TaskState {
        /// Created with its run; not yet examined by the scheduler.
        None = "none",
        /// Dependencies met; waiting for a slot.
        Scheduled = "scheduled",
        /// Handed to an executor; waiting for a worker to start it.
        Queued = "queued",
        /// A worker runs it now.
        Running = "running",
        /// Finished without error.
        Success = "success",
        /// Finished with an error and no tries left.
        Failed = "failed",
        /// Failed; will be scheduled again after its retry delay.
        UpForRetry = "up_for_retry",
        /// A sensor that poked false; pokes again after its interval, holding no slot.
        UpForReschedule = "up_for_reschedule",
        /// An upstream failed, so the trigger rule can never be met.
        UpstreamFailed = "upstream_failed",
        /// Skipped by a branch, a trigger rule or the task itself.
        Skipped = "skipped",
        /// The task no longer exists in the DAG.
        Removed = "removed",
    }
}

impl TaskState {
    /// Nothing more will happen to the task instance unless a user clears it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Success
                | TaskState::Failed
                | TaskState::UpstreamFailed
                | TaskState::Skipped
                | TaskState::Removed
        )
    }

    /// Holds an executor slot (and pool slots): handed over or running.
    pub fn holds_slot(self) -> bool {
        matches!(self, TaskState::Queued | TaskState::Running)
    }
}

string_enum! {
    /// The state of one DAG run (Airflow's values).
    DagRunState {
        /// Created, waiting for max_active_runs to allow it.
        Queued = "queued",
        /// Its tasks are being scheduled.
        Running = "running",
        /// Every leaf task succeeded or was skipped.
        Success = "success",
        /// A leaf task failed or was upstream_failed.
        Failed = "failed",
    }
}

impl DagRunState {
    /// The run will not change any more unless cleared.
    pub fn is_finished(self) -> bool {
        matches!(self, DagRunState::Success | DagRunState::Failed)
    }
}

string_enum! {
    /// Why a run exists (Airflow's values; the run id starts with it).
    RunType {
        /// Created by the scheduler for a schedule interval.
        Scheduled = "scheduled",
        /// Triggered by a user, the API or a `trigger_dag` task.
        Manual = "manual",
        /// Created by `dags backfill` for a past interval.
        Backfill = "backfill",
        /// Created when the assets its DAG is scheduled on got new events.
        AssetTriggered = "asset_triggered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), *s);
        }
        for s in DagRunState::ALL {
            assert_eq!(s.as_str().parse::<DagRunState>().unwrap(), *s);
        }
        assert!("runing".parse::<TaskState>().is_err());
    }

    #[test]
    fn finished_and_slot_holding_states() {
        let finished: Vec<_> = TaskState::ALL.iter().filter(|s| s.is_finished()).collect();
        assert_eq!(finished.len(), 5);
        assert!(!TaskState::UpForRetry.is_finished());
        assert!(TaskState::Running.holds_slot() && !TaskState::UpForReschedule.holds_slot());
    }
}
