//! Trigger rules: given the states of a task's upstream instances, may it run?
//!
//! The answer carries a reason so the UI can say why a task waits. Semantics follow Airflow's
//! `TriggerRuleDep`, including its choice between `skipped` and `upstream_failed`.
//! Invariant: a waiting reason names upstream tasks and states, never progress counts, so it
//! stays the same while nothing it names changes (the scheduler stores it only when it changes).

use std::fmt;

use crate::dag::TriggerRule;

use super::TaskState;

/// How many upstream task instances are in each outcome. Mapped upstream tasks count once per
/// mapped instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// The first upstream task (in `depends_on` order) with an unfinished instance, and the
    /// least advanced state among its unfinished instances. Filled by [`Self::add_task`] only.
    pub first_unfinished: Option<(String, TaskState)>,
    /// Upstream tasks with at least one unfinished instance (counted by [`Self::add_task`]).
    pub unfinished_tasks: usize,
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

    /// Adds the instances of one upstream task, as `(state, how many)` pairs. Call it once per
    /// upstream task in `depends_on` order, so the waiting reason names the first one.
    pub fn add_task(
        &mut self,
        task_id: &str,
        states: impl IntoIterator<Item = (TaskState, usize)>,
    ) {
        let mut least: Option<TaskState> = None;
        for (state, n) in states {
            if n == 0 {
                continue;
            }
            self.add_n(state, n);
            if !state.is_finished() && least.is_none_or(|l| progress(state) < progress(l)) {
                least = Some(state);
            }
        }
        if let Some(state) = least {
            self.unfinished_tasks += 1;
            if self.first_unfinished.is_none() {
                self.first_unfinished = Some((task_id.to_string(), state));
            }
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

/// How far an unfinished instance has come, to name the least advanced one of a mapped
/// upstream task. Distinct ranks, so the choice never depends on iteration order.
fn progress(state: TaskState) -> u8 {
    match state {
        TaskState::None => 0,
        TaskState::Scheduled => 1,
        TaskState::UpForRetry => 2,
        TaskState::UpForReschedule => 3,
        TaskState::Queued => 4,
        _ => 5,
    }
}

/// Why a trigger rule cannot be decided yet: which upstream task it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamWait {
    /// The rule that waits.
    pub rule: TriggerRule,
    /// The first unfinished upstream task and the least advanced state among its instances;
    /// None when the counts were added without task ids.
    pub task: Option<(String, TaskState)>,
    /// Other upstream tasks that are unfinished too.
    pub more: usize,
}

impl fmt::Display for UpstreamWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lead = match self.rule {
            TriggerRule::OneSuccess => "waiting for one upstream task to succeed",
            TriggerRule::OneFailed => "waiting for one upstream task to fail",
            _ => "waiting for upstream",
        };
        let sep = if lead.ends_with("upstream") { " " } else { ": " };
        match &self.task {
            Some((task_id, state)) => write!(f, "{lead}{sep}{task_id} ({state})")?,
            None if sep == " " => write!(f, "{lead} tasks")?,
            None => f.write_str(lead)?,
        }
        if self.more > 0 {
            write!(f, " and {} more", self.more)?;
        }
        Ok(())
    }
}

/// What the trigger rule says about a task whose upstream states are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// May be scheduled now.
    Ready,
    /// Not yet: says what it waits for.
    Wait(UpstreamWait),
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
    let waiting = || {
        Wait(UpstreamWait {
            rule,
            task: c.first_unfinished.clone(),
            more: c.unfinished_tasks.saturating_sub(1),
        })
    };
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
                waiting()
            }
        }
        TriggerRule::OneFailed => {
            if c.failures() > 0 {
                Ready
            } else if c.all_done() {
                Skip("no upstream task failed".into())
            } else {
                waiting()
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
            // Removed upstream instances count as done, and as success for all_success.
            (R::AllSuccess, &[Success, Removed], "ready"),
            (R::AllDone, &[Removed, Skipped], "ready"),
            (R::AllFailed, &[Failed, Removed], "ready"),
            (R::AllFailed, &[Running, Skipped], "skip"),
            (R::OneSuccess, &[Removed, Skipped], "upstream_failed"),
            (R::OneSuccess, &[None, None], "wait"),
            (R::OneFailed, &[UpstreamFailed, Running], "ready"),
            (R::OneFailed, &[Removed], "skip"),
            (R::NoneFailed, &[Running, UpstreamFailed], "upstream_failed"),
            (R::NoneFailed, &[Skipped, Skipped], "ready"),
            (R::NoneFailedMinOneSuccess, &[Success, Running], "wait"),
            (R::NoneFailedMinOneSuccess, &[Removed], "skip"),
            (R::NoneSkipped, &[Running, Skipped], "skip"),
            (R::NoneSkipped, &[Removed, UpstreamFailed], "ready"),
            (R::Always, &[], "ready"),
            (R::Always, &[None, Skipped], "ready"),
        ];
        for (rule, states, want) in cases {
            let got = readiness(*rule, &counts(states));
            assert_eq!(kind(&got), *want, "{rule:?} with {states:?} gave {got:?}");
        }
    }

    /// Counts of upstream tasks given as `(task_id, states of its instances)`, in order.
    fn by_task(tasks: &[(&str, &[TaskState])]) -> UpstreamCounts {
        let mut c = UpstreamCounts::default();
        for (task_id, states) in tasks {
            let mut per_state = std::collections::BTreeMap::new();
            for s in *states {
                *per_state.entry(*s).or_insert(0usize) += 1;
            }
            c.add_task(task_id, per_state);
        }
        c
    }

    fn wait_note(rule: TriggerRule, tasks: &[(&str, &[TaskState])]) -> String {
        match readiness(rule, &by_task(tasks)) {
            Readiness::Wait(w) => w.to_string(),
            other => panic!("{rule:?} with {tasks:?} should wait, gave {other:?}"),
        }
    }

    #[test]
    fn waiting_reason_names_the_first_unfinished_upstream_task_and_its_state() {
        use TriggerRule as R;
        type Case<'a> = (R, &'a [(&'a str, &'a [TaskState])], &'a str);
        let cases: &[Case] = &[
            (R::AllSuccess, &[("t3", &[Running])], "waiting for upstream t3 (running)"),
            (
                R::AllSuccess,
                &[("t1", &[Success]), ("t2", &[Queued]), ("t3", &[None])],
                "waiting for upstream t2 (queued) and 1 more",
            ),
            // A mapped upstream task is named by its least advanced unfinished instance.
            (
                R::AllDone,
                &[("fan", &[Success, Running, Scheduled, Failed])],
                "waiting for upstream fan (scheduled)",
            ),
            (
                R::NoneFailed,
                &[("a", &[UpForRetry, Running])],
                "waiting for upstream a (up_for_retry)",
            ),
            (
                R::OneSuccess,
                &[("a", &[Failed]), ("b", &[UpForReschedule])],
                "waiting for one upstream task to succeed: b (up_for_reschedule)",
            ),
            (
                R::OneFailed,
                &[("a", &[Queued]), ("b", &[Running])],
                "waiting for one upstream task to fail: a (queued) and 1 more",
            ),
        ];
        for (rule, tasks, want) in cases {
            assert_eq!(wait_note(*rule, tasks), *want, "{rule:?} with {tasks:?}");
        }
    }

    #[test]
    fn waiting_reason_ignores_progress_so_it_changes_only_when_what_it_names_changes() {
        // 3 of 1000 mapped instances done, then 900: the reason a user reads is the same.
        let mut early = UpstreamCounts::default();
        early.add_task("fan", [(Success, 3), (Running, 8), (Scheduled, 989)]);
        let mut late = UpstreamCounts::default();
        late.add_task("fan", [(Success, 900), (Running, 8), (Scheduled, 92), (None, 0)]);
        assert_eq!(
            readiness(TriggerRule::AllSuccess, &early),
            readiness(TriggerRule::AllSuccess, &late)
        );
        // Zero counts (left by the scheduler's bookkeeping) are not unfinished instances.
        let mut done = UpstreamCounts::default();
        done.add_task("a", [(Success, 1), (Running, 0)]);
        assert_eq!(readiness(TriggerRule::AllSuccess, &done), Readiness::Ready);
        assert_eq!(done.unfinished_tasks, 0);
    }

    #[test]
    fn counts_added_without_task_ids_still_wait_with_a_sentence() {
        let r = readiness(TriggerRule::AllSuccess, &counts(&[Success, Running, Queued]));
        let Readiness::Wait(w) = r else { panic!("should wait: {r:?}") };
        assert_eq!(w.to_string(), "waiting for upstream tasks");
    }
}
