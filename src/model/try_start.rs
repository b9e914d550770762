//! How a queued task instance starts its next try: which try number it runs as.
//!
//! Pure: the store reads the instance inside its write transaction, asks [`start_try`], and
//! writes the answer by a compare-and-set on what it read.

use super::TaskState;

/// What the start of a try writes on its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryStart {
    /// The instance's new state.
    pub state: TaskState,
    /// The try it runs as.
    pub try_number: i64,
}

/// The try a worker starts for an instance in `state` after `try_number` tries, or None when
/// it is not queued (someone else took or changed it). `poking` says a sensor's current try
/// has begun poking (`first_poke_at` is set): its re-poke keeps the try number, as Airflow's
/// reschedule mode does, so that one try's timeout spans all of its pokes and a sensor does
/// not use up its retries by waiting.
pub fn start_try(state: TaskState, try_number: i64, poking: bool) -> Option<TryStart> {
    if state != TaskState::Queued {
        return None;
    }
    let try_number = if poking { try_number } else { try_number + 1 };
    Some(TryStart { state: TaskState::Running, try_number })
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    #[test]
    fn a_queued_instance_runs_its_next_try_unless_a_sensor_pokes_again() {
        // (state, try number, poking, the try it starts as)
        let cases = [
            (Queued, 0, false, Some(1)),
            (Queued, 1, false, Some(2)),
            (Queued, 1, true, Some(1)),
            (Queued, 3, true, Some(3)),
            (Scheduled, 0, false, Option::None),
            (Running, 1, false, Option::None),
            (UpForReschedule, 1, true, Option::None),
            (Success, 1, false, Option::None),
        ];
        for (state, try_number, poking, want) in cases {
            let got = start_try(state, try_number, poking);
            assert_eq!(got.map(|s| s.try_number), want, "{state} try {try_number} poking {poking}");
            assert!(got.is_none_or(|s| s.state == Running));
        }
    }
}
