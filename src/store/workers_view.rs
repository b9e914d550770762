//! What the workers page reads besides the process rows: the tries each worker is running.
//!
//! Invariant: read only; a worker's tries are the running instances it owns, the same
//! `owner_process` every start, lease renewal and end is fenced on.

use super::tis::{TI_COLS, TiRow, ti_row};
use super::{Result, Store};

/// Worker ids bound by one statement at most (well inside every dialect's placeholder limit).
const BATCH: usize = 500;

impl Store {
    /// The running task instances owned by any of `workers`, by owner, then oldest start first.
    pub async fn running_tis_of(&self, workers: &[String]) -> Result<Vec<TiRow>> {
        let mut tis = Vec::new();
        for chunk in workers.chunks(BATCH) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {TI_COLS} FROM task_instance \
                 WHERE state = 'running' AND owner_process IN ({}) \
                 ORDER BY owner_process, start_date, id",
                marks.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for w in chunk {
                query = query.bind(w.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                tis.push(ti_row(&row)?);
            }
        }
        Ok(tis)
    }
}
