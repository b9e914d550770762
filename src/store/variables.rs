//! Variables (`{{ var('name') }}`): read, set, list and delete.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, to_us};

impl Store {
    /// A variable's value.
    pub async fn get_variable(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM variable WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Creates or replaces a variable.
    pub async fn set_variable(&self, key: &str, value: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO variable (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(to_us(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every variable, by key (small: read once per try for templates).
    pub async fn list_variables(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM variable").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("key")?, r.try_get("value")?))).collect()
    }

    /// Deletes a variable; `NotFound` if there was none.
    pub async fn delete_variable(&self, key: &str) -> Result<()> {
        self.delete_one("DELETE FROM variable WHERE key = $1", key, "variable").await
    }
}
