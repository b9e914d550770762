//! Pools: named slot counts that cap concurrent task instances (`pool:`, `pool_slots:`).

use sqlx::Row;

use super::{Result, Store, StoreError};

/// One pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    /// Name tasks refer to with `pool:`.
    pub name: String,
    /// Slots in total.
    pub slots: i64,
    /// Free text.
    pub description: String,
}

impl Store {
    /// Every pool.
    pub async fn list_pools(&self) -> Result<Vec<PoolRow>> {
        let rows = sqlx::query("SELECT name, slots, description FROM pool ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PoolRow {
                    name: r.try_get("name")?,
                    slots: r.try_get("slots")?,
                    description: r.try_get("description")?,
                })
            })
            .collect()
    }

    /// Creates or resizes a pool.
    pub async fn set_pool(&self, name: &str, slots: i64, description: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO pool (name, slots, description) VALUES ($1, $2, $3) ON CONFLICT (name) \
             DO UPDATE SET slots = excluded.slots, description = excluded.description",
        )
        .bind(name)
        .bind(slots)
        .bind(description)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Deletes a pool; `NotFound` if there was none. The default pool cannot go.
    pub async fn delete_pool(&self, name: &str) -> Result<()> {
        if name == "default_pool" {
            return Err(StoreError::Conflict("default_pool is needed and".into()));
        }
        self.delete_one("DELETE FROM pool WHERE name = $1", name, "pool").await
    }
}
