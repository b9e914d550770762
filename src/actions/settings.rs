//! Variables and pools: set and delete.
//!
//! Invariants: the audit log names the variable or pool changed, never a variable's value
//! (variables often hold tokens). `default_pool` cannot be deleted.

use chrono::Utc;

use super::{ActionError, Actor, Audit, Result, audit, check_name};
use crate::store::Store;

/// Most slots a pool may have.
pub const MAX_POOL_SLOTS: i64 = 1_000_000;

/// A variable key: 1 to 250 characters, no control characters.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > 250 || key.chars().any(char::is_control) {
        return Err(ActionError::Invalid(format!(
            "variable key `{}`: use 1 to 250 characters without control characters",
            key.escape_default()
        )));
    }
    Ok(())
}

/// Creates or replaces a variable.
pub async fn set_variable(store: &Store, actor: &Actor, key: &str, value: &str) -> Result<()> {
    check_key(key)?;
    store.set_variable(key, value, Utc::now()).await?;
    audit(store, actor, Audit::new("variable_set").extra(key)).await
}

/// Deletes a variable.
pub async fn delete_variable(store: &Store, actor: &Actor, key: &str) -> Result<()> {
    store.delete_variable(key).await?;
    audit(store, actor, Audit::new("variable_deleted").extra(key)).await
}

/// Creates or resizes a pool.
pub async fn set_pool(
    store: &Store,
    actor: &Actor,
    name: &str,
    slots: i64,
    description: &str,
) -> Result<()> {
    check_name("pool name", name)?;
    if !(0..=MAX_POOL_SLOTS).contains(&slots) {
        return Err(ActionError::Invalid(format!(
            "slots `{slots}`: a whole number from 0 to {MAX_POOL_SLOTS}"
        )));
    }
    store.set_pool(name, slots, description.trim()).await?;
    audit(store, actor, Audit::new("pool_set").extra(format!("{name}: {slots} slot(s)"))).await
}

/// Deletes a pool; `default_pool` is refused.
pub async fn delete_pool(store: &Store, actor: &Actor, name: &str) -> Result<()> {
    if name == "default_pool" {
        return Err(ActionError::Conflict("default_pool cannot be deleted: resize it".into()));
    }
    store.delete_pool(name).await?;
    audit(store, actor, Audit::new("pool_deleted").extra(name)).await
}
