//! History clean-up (`updraft db clean`): finished runs older than a cutoff, deleted in small
//! batches so the scheduler's writes interleave, the asset events no DAG still waits for or
//! names, and the rows of processes (schedulers, workers) that stopped before it.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, to_us};
use crate::model::RunPk;

/// Rows deleted per statement by [`Store::clean_before`]: small enough that the scheduler's
/// writes interleave with the clean-up instead of waiting for one huge delete.
const CLEAN_BATCH: i64 = 500;

impl Store {
    /// Deletes finished runs that ended before `cutoff` (their task instances, tries and XCom
    /// go with them), in batches of [`CLEAN_BATCH`] runs, each its own short transaction, and
    /// the rows of processes that stopped (or were declared lost) before `cutoff`.
    /// Returns the (dag_id, run_id) of the deleted runs so their log folders can go too.
    pub async fn clean_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(String, String)>> {
        let mut deleted = Vec::new();
        // Bounded: each pass deletes up to a batch, and the number of passes is capped by the
        // row count seen at the start.
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM dag_run WHERE state IN ('success', 'failed') AND end_date < $1",
        )
        .bind(to_us(cutoff))
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        for _ in 0..=(total / CLEAN_BATCH) {
            let mut tx = self.write_tx().await?;
            let rows = sqlx::query(
                "SELECT id, dag_id, run_id FROM dag_run WHERE state IN ('success', 'failed') \
                 AND end_date < $1 ORDER BY id LIMIT $2",
            )
            .bind(to_us(cutoff))
            .bind(CLEAN_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                super::actions::delete_run_rows(&mut tx, RunPk(id)).await?;
                deleted.push((r.try_get("dag_id")?, r.try_get("run_id")?));
            }
            tx.commit().await?;
        }
        // Asset events older than the cutoff that every DAG scheduled on their asset has
        // consumed and no remaining run names. Watchers' events stay: their dedup keys are
        // what keeps a message or an object from being recorded again.
        sqlx::query(
            "DELETE FROM asset_event WHERE created_at < $1 AND dedup_key IS NULL \
             AND id <= COALESCE((SELECT MIN(c.consumed_id) FROM asset_cursor c \
                                 WHERE c.asset_uri = asset_event.asset_uri), id) \
             AND NOT EXISTS (SELECT 1 FROM dag_run_asset_event l WHERE l.event_id = asset_event.id)",
        )
        .bind(to_us(cutoff))
        .execute(&self.writer)
        .await?;
        // A stopped process owns nothing any more (recovery took its tries when it was
        // declared lost); a live one is never touched, however old its start.
        sqlx::query("DELETE FROM process WHERE stopped_at IS NOT NULL AND stopped_at < $1")
            .bind(to_us(cutoff))
            .execute(&self.writer)
            .await?;
        Ok(deleted)
    }
}
