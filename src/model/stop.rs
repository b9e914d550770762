//! Marking or clearing a task instance while a try of it runs: the change is recorded as a
//! request, the try is stopped, and only once its processes are gone is the outcome recorded,
//! as decided here.
//!
//! Pure: the worker (or crash recovery) passes in what was asked and how the try itself ended,
//! and persists what [`after_stop`] returns.

use super::TaskState;

/// Whether a user's mark or clear of an instance in `state` must stop a running try before it
/// applies: then the store records the request, not the new state.
pub fn needs_stop(state: TaskState) -> bool {
    state == TaskState::Running
}

/// What a user asked of a running try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopRequest {
    /// Mark it success or failed.
    Mark(TaskState),
    /// Clear it: run it again as a new try, allowed `max_tries` tries in all.
    Clear {
        /// From `cleared_max_tries`.
        max_tries: i64,
    },
}

impl StopRequest {
    /// The request as stored: the asked state (`none` for a clear) and a clear's max tries.
    pub fn from_parts(state: TaskState, max_tries: Option<i64>) -> StopRequest {
        match (state, max_tries) {
            (TaskState::None, Some(max_tries)) => StopRequest::Clear { max_tries },
            (TaskState::None, None) => StopRequest::Clear { max_tries: 0 },
            (state, _) => StopRequest::Mark(state),
        }
    }

    /// The stored parts, inverse of [`StopRequest::from_parts`].
    pub fn parts(&self) -> (TaskState, Option<i64>) {
        match self {
            StopRequest::Mark(state) => (*state, None),
            StopRequest::Clear { max_tries } => (TaskState::None, Some(*max_tries)),
        }
    }
}

/// How a stopped try is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterStop {
    /// The instance's new state: what the user asked for.
    pub state: TaskState,
    /// The state recorded for the try itself (its row in the try history).
    pub try_state: TaskState,
    /// A clear's new `max_tries`.
    pub max_tries: Option<i64>,
    /// Keep the try's return value as XCom: only a try that succeeded on its own and is
    /// marked success has one worth keeping.
    pub keep_xcom: bool,
}

/// The outcome of a try stopped on `request`. `own` is the state the try had reached by itself
/// (it ended before the stop took effect), or None when the stop killed it. The user's request
/// always decides the instance's state: a mark overrides how the try ended, and a clear runs it
/// again even if it had just succeeded.
pub fn after_stop(request: &StopRequest, own: Option<TaskState>) -> AfterStop {
    match request {
        StopRequest::Mark(state) => AfterStop {
            state: *state,
            try_state: *state,
            max_tries: None,
            keep_xcom: *state == TaskState::Success && own == Some(TaskState::Success),
        },
        StopRequest::Clear { max_tries } => AfterStop {
            state: TaskState::None,
            try_state: match own {
                Some(s @ (TaskState::Success | TaskState::Skipped)) => s,
                _ => TaskState::Failed,
            },
            max_tries: Some(*max_tries),
            keep_xcom: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    #[test]
    fn only_a_running_try_is_stopped_first() {
        assert!(needs_stop(Running));
        for s in [None, Scheduled, Queued, Success, Failed, UpForRetry, UpForReschedule, Skipped] {
            assert!(!needs_stop(s), "{s}");
        }
    }

    #[test]
    fn the_request_decides_the_state_whatever_the_try_did() {
        let clear = StopRequest::Clear { max_tries: 4 };
        // (request, how the try ended by itself, instance state, try state, max tries, xcom)
        let cases = [
            (StopRequest::Mark(Success), Option::None, Success, Success, Option::None, false),
            (StopRequest::Mark(Success), Some(Success), Success, Success, Option::None, true),
            (StopRequest::Mark(Success), Some(UpForRetry), Success, Success, Option::None, false),
            (StopRequest::Mark(Failed), Option::None, Failed, Failed, Option::None, false),
            (StopRequest::Mark(Failed), Some(Success), Failed, Failed, Option::None, false),
            (clear.clone(), Option::None, None, Failed, Some(4), false),
            (clear.clone(), Some(Success), None, Success, Some(4), false),
            (clear.clone(), Some(UpForRetry), None, Failed, Some(4), false),
            (clear, Some(Skipped), None, Skipped, Some(4), false),
        ];
        for (request, own, state, try_state, max_tries, keep_xcom) in cases {
            let want = AfterStop { state, try_state, max_tries, keep_xcom };
            assert_eq!(after_stop(&request, own), want, "{request:?} after {own:?}");
        }
    }

    #[test]
    fn requests_round_trip_through_their_stored_parts() {
        for r in [
            StopRequest::Mark(Success),
            StopRequest::Mark(Failed),
            StopRequest::Clear { max_tries: 3 },
        ] {
            let (state, max) = r.parts();
            assert_eq!(StopRequest::from_parts(state, max), r);
        }
    }
}
