//! Cursors of the incremental table sources (`sql_to_kafka`): where the next poll of a table
//! starts, by cursor name.
//!
//! Invariant: the store keeps what it is given. The operator writes a cursor only after Kafka
//! acknowledged every message up to it, so the stored position never runs ahead of what was
//! delivered.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, StoreError, to_us};

impl Store {
    /// The stored position of cursor `name`, if it has one.
    pub async fn get_cursor(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT value FROM source_cursor WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("value")?;
        serde_json::from_str(&text).map(Some).map_err(|e| StoreError::Corrupt {
            column: "source_cursor.value",
            message: e.to_string(),
        })
    }

    /// Stores the position of cursor `name`, creating it or replacing the old one.
    pub async fn set_cursor(
        &self,
        name: &str,
        value: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO source_cursor (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value.to_string())
        .bind(to_us(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Forgets cursor `name` (the next run reads the table from its start); `NotFound` if
    /// there was none.
    pub async fn delete_cursor(&self, name: &str) -> Result<()> {
        self.delete_one("DELETE FROM source_cursor WHERE name = $1", name, "cursor").await
    }
}
