//! XCom: the small JSON values tasks return, read back per run for templates.

use sqlx::Row;

use super::{Result, Store};
use crate::model::RunPk;

/// One XCom value of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct XComRow {
    /// Task that pushed it.
    pub task_id: String,
    /// Its map index (-1 unless mapped).
    pub map_index: i64,
    /// Key (`return_value` for a task's result).
    pub key: String,
    /// The JSON value.
    pub value: serde_json::Value,
}

impl Store {
    /// Every XCom of a run.
    pub async fn run_xcoms(&self, run_pk: RunPk) -> Result<Vec<XComRow>> {
        let rows = sqlx::query(
            "SELECT task_id, map_index, key, value FROM xcom WHERE run_pk = $1 \
             ORDER BY task_id, map_index",
        )
        .bind(run_pk)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(XComRow {
                    task_id: r.try_get("task_id")?,
                    map_index: r.try_get("map_index")?,
                    key: r.try_get("key")?,
                    value: super::json_col(r, "value")?,
                })
            })
            .collect()
    }
}
