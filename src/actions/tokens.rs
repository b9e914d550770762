//! API tokens: issue (shown once) and revoke.
//!
//! Invariant: a token's secret exists outside the caller only in the return value of
//! [`issue_token`]; the store keeps its SHA-256 hash, and the audit log names the token, never
//! its secret.

use chrono::{Duration, Utc};

use super::{ActionError, Actor, Audit, Result, audit};
use crate::secrets::{random_token, token_hash};
use crate::store::{Store, UserRow};

/// What every API token starts with, so a leaked one is recognizable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "updraft_";

/// Longest token lifetime offered, in days.
pub const MAX_DAYS: i64 = 3650;

/// Creates an API token named `name` for `user`, valid `days` days (or forever), and returns
/// its secret — the only time it exists outside the caller.
pub async fn issue_token(
    store: &Store,
    actor: &Actor,
    user: &UserRow,
    name: &str,
    days: Option<i64>,
) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ActionError::Invalid(
            "token name: 1 to 100 characters, e.g. `ci` or `grafana`".into(),
        ));
    }
    if let Some(d) = days
        && !(1..=MAX_DAYS).contains(&d)
    {
        return Err(ActionError::Invalid(format!(
            "expiry `{d}`: a number of days from 1 to {MAX_DAYS}, or empty for no expiry"
        )));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_token());
    let now = Utc::now();
    let expires = days.map(|d| now + Duration::days(d));
    store.create_token(user.id, name, &token_hash(&token), now, expires).await?;
    let extra = format!("{}: {name}", user.username);
    audit(store, actor, Audit::new("token_created").extra(extra)).await?;
    Ok(token)
}

/// Revokes token `token_id` of `user`. Returns its name.
pub async fn revoke_token(
    store: &Store,
    actor: &Actor,
    user: &UserRow,
    token_id: i64,
) -> Result<String> {
    let name = store
        .list_tokens(user.id)
        .await?
        .into_iter()
        .find(|t| t.id == token_id)
        .map(|t| t.name)
        .ok_or_else(|| {
            ActionError::NotFound(format!("{} has no token {token_id}", user.username))
        })?;
    store.delete_token(user.id, token_id).await?;
    let extra = format!("{}: {name}", user.username);
    audit(store, actor, Audit::new("token_revoked").extra(extra)).await?;
    Ok(name)
}
