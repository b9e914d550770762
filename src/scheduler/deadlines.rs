//! The deadline check: sleeps until the next pending deadline falls (`Store::next_deadline_at`,
//! one indexed MIN over the pending rows), then decides each due one — met if its run had
//! finished by then, missed otherwise (`model::deadline::outcome`) — and a missed one's
//! notifications are written with the decision (`Store::decide_deadline`), for the
//! notification sender to deliver. A task of its own: it never delays a scheduling pass.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::model::deadline::{Outcome, outcome};
use crate::store::{DeadlineRow, Store};

/// Deadlines decided per pass.
const BATCH: i64 = 100;
/// The longest sleep: deadlines another process wrote (a trigger from the webserver) are seen
/// at most this late.
const POLL: Duration = Duration::from_secs(5);

/// Runs until `stop` fires.
pub(super) async fn run(store: Store, stop: CancellationToken) {
    let announced = store.deadlines_announced();
    while !stop.is_cancelled() {
        let now = Utc::now();
        let due = match store.due_deadlines(now, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the deadlines; retrying");
                Vec::new()
            }
        };
        let full = due.len() as i64 == BATCH;
        for d in &due {
            if let Err(e) = decide(&store, d).await {
                tracing::warn!(error = %e, deadline = d.id, "cannot record a deadline's outcome");
            }
        }
        if full {
            continue;
        }
        if !super::nap(store.next_deadline_at().await, POLL, &announced, &stop).await {
            break;
        }
    }
}

async fn decide(store: &Store, d: &DeadlineRow) -> Result<(), crate::store::StoreError> {
    let Some(at) = d.deadline_at else { return Ok(()) };
    let result = outcome(at, d.run_end);
    let detail = format!("{} ({})", d.deadline, at.format("%Y-%m-%d %H:%M:%S UTC"));
    if store.decide_deadline(d, result, &detail, Utc::now()).await? && result == Outcome::Missed {
        tracing::warn!(dag_id = %d.dag_id, run_id = %d.run_id, deadline = %detail, state = %d.run_state, "run missed its deadline");
    }
    Ok(())
}
