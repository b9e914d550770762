//! States and the rules that move them: the only code that decides a state change.
//!
//! Pure: no database, no clock, no I/O. Callers pass `now` in and persist what these functions
//! return. Values of [`TaskState`] and [`DagRunState`] are Airflow's snake_case names; they are
//! stored in the metadata database and must never be renamed.

pub mod assets;
pub mod backfill;
pub mod dag_run;
pub mod deadline;
pub mod ids;
pub mod notify;
pub mod run_id;
pub mod schedule_ti;
pub mod state;
pub mod stop;
pub mod transition;
pub mod trigger;
pub mod try_end;
pub mod try_start;
pub mod user_change;

pub use backfill::{BackfillStep, Reprocess};
pub use dag_run::{DueRuns, due_runs, may_start_run};
pub use ids::{RunPk, TiId};
pub use schedule_ti::{
    Decision, Expansion, Next, TiFacts, WaitReason, Why, expansion, schedule_ti,
};
pub use state::{DagRunState, RunType, TaskState};
pub use stop::{AfterStop, StopRequest, after_stop, needs_stop};
pub use transition::{
    FailureOutcome, can_clear, can_mark, cleared_max_tries, on_failure, retry_delay, run_state,
    try_is_over,
};
pub use trigger::{Readiness, UpstreamCounts, UpstreamWait, readiness};
pub use try_end::{TryEnd, TryFacts, TryResult, try_end};
pub use try_start::{TryStart, start_try};
pub use user_change::{ClearScope, UserWrite};
