//! Trigger rules: given the states of a task's upstream instances, may it run?
//!
//! The answer carries a reason so the UI can say why a task waits. Semantics follow Airflow's
//! `TriggerRuleDep`, including its choice between `skipped` and `upstream_failed`.

use crate::dag::TriggerRule;

use super::TaskState;

/// How many upstream task instances are in each outcome. Mapped upstream tasks count once per
/// mapped instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamCounts {
    /// Upstream instances in total.
    pub total: usize,
    /// In `success`.
    pub success: usize,
    /// In `skipped`.
    pub skipped: usize,
    /// In `failed`.
    pub failed: usize,
    /// In `upstream_failed`.
    pub upstream_failed: usize,
    /// In `removed` (counted as done, like Airflow).
    pub removed: usize,
}

impl UpstreamCounts {
    /// Adds one upstream instance in `state`.
    pub fn add(&mut self, state: TaskState) {
        self.add_n(state, 1);
    }

    /// Adds `n` upstream instances in `state`.
    pub fn add_n(&mut self, state: TaskState, n: usize) {
        self.total += n;
        match state {
            TaskState::Success => self.success += n,
            TaskState::Skipped => self.skipped += n,
            TaskState::Failed => self.failed += n,
            TaskState::UpstreamFailed => self.upstream_failed += n,
            TaskState::Removed => self.removed += n,
            _ => {}
        }
    }

    /// Upstream instances that are finished.
    pub fn done(&self) -> usize {
        self.success + self.skipped + self.failed + self.upstream_failed + self.removed
    }

    fn all_done(&self) -> bool {
        self.done() == self.total
    }

    fn failures(&self) -> usize {
        self.failed + self.upstream_failed
    }
}

/// What the trigger rule says about a task whose upstream states are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// May be scheduled now.
    Ready,
    /// Not yet: the sentence says what it waits for.
    Wait(String),
    /// Can never run because of its upstream: mark `skipped`.
    Skip(String),
    /// Can never run because an upstream failed: mark `upstream_failed`.
    UpstreamFailed(String),
}

/// Applies `rule` to `c`. A task without upstream tasks is always ready.
pub fn readiness(rule: TriggerRule, c: &UpstreamCounts) -> Readiness {
    use Readiness::*;
    if c.total == 0 {
        return Ready;
    }
    let waiting = || Wait(format!("{} of {} upstream tasks finished", c.done(), c.total));
    match rule {
        TriggerRule::Always => Ready,
        TriggerRule::AllSuccess => {
            if c.failures() > 0 {
                UpstreamFailed(format!("{} upstream tasks failed", c.failures()))
            } else if c.skipped > 0 {
                Skip(format!("{} upstream tasks were skipped", c.skipped))
            } else if c.success + c.removed == c.total {
                Ready
            } else {
                waiting()
            }
        }
        TriggerRule::AllFailed => {
            if c.success > 0 || c.skipped > 0 {
                Skip("an upstream task did not fail".into())
            } else if c.all_done() {
                Ready
            } else {
                waiting()
            }
        }
        TriggerRule::AllDone => {
            if c.all_done() {
                Ready
            } else {
                waiting()
            }
        }
        TriggerRule::OneSuccess => {
            if c.success > 0 {
                Ready
            } else if c.all_done() {
                if c.skipped == c.total {
                    Skip("every upstream task was skipped".into())
                } else {
                    UpstreamFailed("no upstream task succeeded".into())
                }
            } else {
                Wait("waiting for one upstream task to succeed".into())
            }
        }
        TriggerRule::OneFailed => {
            if c.failures() > 0 {
                Ready
            } else if c.all_done() {
                Skip("no upstream task failed".into())
            } else {
                Wait("waiting for one upstream task to fail".into())
            }
        }
        TriggerRule::NoneFailed => {
            if c.failures() > 0 {
                UpstreamFailed(format!("{} upstream tasks failed", c.failures()))
            } else if c.all_done() {
                Ready
            } else {
                waiting()
            }
        }
        TriggerRule::NoneFailedMinOneSuccess => {
            if c.failures() > 0 {
                UpstreamFailed(format!("{} upstream tasks failed", c.failures()))
            } else if c.all_done() {
                if c.success > 0 { Ready } else { Skip("every upstream task was skipped".into()) }
            } else {
                waiting()
            }
        }
        TriggerRule::NoneSkipped => {
            if c.skipped > 0 {
                Skip(format!("{} upstream tasks were skipped", c.skipped))
            } else if c.all_done() {
                Ready
            } else {
                waiting()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    fn counts(states: &[TaskState]) -> UpstreamCounts {
        let mut c = UpstreamCounts::default();
        for s in states {
            c.add(*s);
        }
        c
    }

    fn kind(r: &Readiness) -> &'static str {
        match r {
            Readiness::Ready => "ready",
            Readiness::Wait(_) => "wait",
            Readiness::Skip(_) => "skip",
            Readiness::UpstreamFailed(_) => "upstream_failed",
        }
    }

    #[test]
    fn every_rule_against_every_upstream_mix() {
        use TriggerRule as R;
        let cases: &[(R, &[TaskState], &str)] = &[
            (R::AllSuccess, &[], "ready"),
            (R::AllSuccess, &[Success, Success], "ready"),
            (R::AllSuccess, &[Success, Running], "wait"),
            (R::AllSuccess, &[Success, Failed], "upstream_failed"),
            (R::AllSuccess, &[Running, UpstreamFailed], "upstream_failed"),
            (R::AllSuccess, &[Success, Skipped], "skip"),
            (R::AllFailed, &[Failed, UpstreamFailed], "ready"),
            (R::AllFailed, &[Failed, Running], "wait"),
            (R::AllFailed, &[Failed, Success], "skip"),
            (R::AllDone, &[Failed, Success, Skipped], "ready"),
            (R::AllDone, &[Failed, UpForRetry], "wait"),
            (R::OneSuccess, &[Success, Running], "ready"),
            (R::OneSuccess, &[Failed, Running], "wait"),
            (R::OneSuccess, &[Failed, Skipped], "upstream_failed"),
            (R::OneSuccess, &[Skipped, Skipped], "skip"),
            (R::OneFailed, &[Failed, Running], "ready"),
            (R::OneFailed, &[Success, Running], "wait"),
            (R::OneFailed, &[Success, Skipped], "skip"),
            (R::NoneFailed, &[Success, Skipped], "ready"),
            (R::NoneFailed, &[Success, Queued], "wait"),
            (R::NoneFailed, &[Success, Failed], "upstream_failed"),
            (R::NoneFailedMinOneSuccess, &[Success, Skipped], "ready"),
            (R::NoneFailedMinOneSuccess, &[Skipped, Skipped], "skip"),
            (R::NoneFailedMinOneSuccess, &[Skipped, Failed], "upstream_failed"),
            (R::NoneSkipped, &[Success, Failed], "ready"),
            (R::NoneSkipped, &[Success, Skipped], "skip"),
            (R::NoneSkipped, &[Success, None], "wait"),
            (R::Always, &[Running, Failed], "ready"),
        ];
        for (rule, states, want) in cases {
            let got = readiness(*rule, &counts(states));
            assert_eq!(kind(&got), *want, "{rule:?} with {states:?} gave {got:?}");
        }
    }

    #[test]
    fn waiting_reason_says_how_far_along() {
        let r = readiness(TriggerRule::AllSuccess, &counts(&[Success, Running, Queued]));
        assert_eq!(r, Readiness::Wait("1 of 3 upstream tasks finished".into()));
    }
}
