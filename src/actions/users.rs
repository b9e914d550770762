//! Users: roles, names and passwords checked once, and the changes admins (web or CLI) and
//! users themselves make.
//!
//! Invariants: there is always at least one active admin — the last one can be neither
//! demoted, deactivated nor deleted — and a web user cannot delete or deactivate themselves.
//! Passwords reach the store only as argon2 hashes (computed on the blocking pool) and never
//! appear in the audit log.

use chrono::Utc;

use super::{ActionError, Actor, Audit, Result, audit};
use crate::store::{Store, UserRow};

/// A role; a user may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything except admin pages.
    Viewer,
    /// Triggers, pauses, clears and marks; cannot change DAG files.
    Operator,
    /// Creates, edits, validates and deletes DAG files; cannot trigger or clear.
    Author,
    /// Everything, including users and connections.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Author, Role::Admin];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Author => "author",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`: use viewer, operator, author or admin"))
    }
}

/// Checks a user name: 1 to 64 letters, digits, `_`, `.`, `@` or `-`.
pub fn check_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ActionError::Invalid(format!(
            "user name `{name}`: use 1 to 64 letters, digits, `_`, `.`, `@` or `-`"
        )))
    }
}

/// Parses role names (at least one, each known), sorted and without repeats.
pub fn parse_roles<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>> {
    let mut roles = Vec::new();
    for name in names {
        let role: Role = name.trim().parse().map_err(ActionError::Invalid)?;
        roles.push(role);
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(ActionError::Invalid(
            "choose at least one role: viewer, operator, author or admin".into(),
        ));
    }
    Ok(roles.into_iter().map(|r| r.as_str().to_string()).collect())
}

/// Checks a new password's strength; the message says what is missing.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(ActionError::Invalid("the password must have at least 8 characters".into()));
    }
    Ok(())
}

/// Hashes a password with argon2 on the blocking pool (it takes tens of milliseconds).
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || crate::secrets::hash_password(&password))
        .await
        .map_err(|e| ActionError::Internal(e.to_string()))?
        .map_err(|e| ActionError::Internal(e.to_string()))
}

/// Checks a password against an argon2 hash on the blocking pool.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || crate::secrets::verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

/// The user `id`, or NotFound.
pub async fn get_user(store: &Store, id: i64) -> Result<UserRow> {
    store.get_user(id).await?.ok_or_else(|| ActionError::NotFound(format!("no user {id}")))
}

/// The user named `username`, or NotFound.
pub async fn find_user(store: &Store, username: &str) -> Result<UserRow> {
    store
        .find_user(username)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no user `{username}`")))
}

/// Creates a user after checking the name, the password and the roles; Conflict if the name is
/// taken. Returns the new user's id.
pub async fn create_user(
    store: &Store,
    actor: &Actor,
    username: &str,
    email: &str,
    password: &str,
    roles: &[String],
) -> Result<i64> {
    check_username(username)?;
    check_password(password)?;
    let roles = parse_roles(roles.iter().map(String::as_str))?;
    if store.find_user(username).await?.is_some() {
        return Err(ActionError::Conflict(format!("the user name `{username}` is taken")));
    }
    let hash = hash_password(password.to_string()).await?;
    let id = store.create_user(username, email.trim(), &hash, &roles, Utc::now()).await?;
    let extra = format!("{username} ({})", roles.join(", "));
    audit(store, actor, Audit::new("user_created").extra(extra)).await?;
    Ok(id)
}

/// Refuses a change that would leave no active admin.
async fn keep_an_admin(store: &Store, target: &UserRow, what: &str) -> Result<()> {
    if !(target.active && target.roles.iter().any(|r| r == "admin")) {
        return Ok(());
    }
    let admins = store
        .list_users()
        .await?
        .iter()
        .filter(|u| u.active && u.roles.iter().any(|r| r == "admin"))
        .count();
    if admins <= 1 {
        return Err(ActionError::Conflict(format!(
            "cannot {what} `{}`: it is the last active admin; make another user admin first",
            target.username
        )));
    }
    Ok(())
}

/// Replaces a user's roles. Returns the user and the roles set.
pub async fn set_roles(
    store: &Store,
    actor: &Actor,
    id: i64,
    roles: &[String],
) -> Result<(UserRow, Vec<String>)> {
    let user = get_user(store, id).await?;
    let roles = parse_roles(roles.iter().map(String::as_str))?;
    if !roles.iter().any(|r| r == "admin") {
        keep_an_admin(store, &user, "remove the admin role from").await?;
    }
    store.set_user_roles(id, &roles).await?;
    let extra = format!("{}: {}", user.username, roles.join(", "));
    audit(store, actor, Audit::new("roles_changed").extra(extra)).await?;
    Ok((user, roles))
}

/// Sets another user's password (an admin's reset); their sessions end.
pub async fn reset_password(
    store: &Store,
    actor: &Actor,
    user: &UserRow,
    password: &str,
) -> Result<()> {
    check_password(password)?;
    store.set_user_password(user.id, &hash_password(password.to_string()).await?).await?;
    audit(store, actor, Audit::new("password_reset").extra(user.username.clone())).await
}

/// Changes the actor's own password after checking the current one; every session of the
/// user ends, so whoever else knew the old password is logged out.
pub async fn change_own_password(
    store: &Store,
    actor: &Actor,
    current: &str,
    new: &str,
) -> Result<()> {
    let id = actor
        .user_id()
        .ok_or_else(|| ActionError::Invalid("only a logged-in user has an own password".into()))?;
    let me = get_user(store, id).await?;
    if !verify_password(current.to_string(), me.password_hash.clone()).await {
        return Err(ActionError::Invalid("the current password is wrong".into()));
    }
    check_password(new)?;
    store.set_user_password(me.id, &hash_password(new.to_string()).await?).await?;
    audit(store, actor, Audit::new("password_changed")).await
}

/// Activates or deactivates a user. Returns the user.
pub async fn set_active(store: &Store, actor: &Actor, id: i64, active: bool) -> Result<UserRow> {
    let user = get_user(store, id).await?;
    if !active {
        if actor.user_id() == Some(id) {
            return Err(ActionError::Conflict("you cannot deactivate yourself".into()));
        }
        keep_an_admin(store, &user, "deactivate").await?;
    }
    store.set_user_active(id, active).await?;
    let event = if active { "user_activated" } else { "user_deactivated" };
    audit(store, actor, Audit::new(event).extra(user.username.clone())).await?;
    Ok(user)
}

/// Deletes a user (their sessions and tokens go with them). Returns the user deleted.
pub async fn delete_user(store: &Store, actor: &Actor, id: i64) -> Result<UserRow> {
    let user = get_user(store, id).await?;
    if actor.user_id() == Some(id) {
        return Err(ActionError::Conflict("you cannot delete yourself".into()));
    }
    keep_an_admin(store, &user, "delete").await?;
    store.delete_user(id).await?;
    audit(store, actor, Audit::new("user_deleted").extra(user.username.clone())).await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_names_and_passwords_are_checked() {
        assert_eq!(
            parse_roles(["viewer", "admin", "viewer"]).expect("valid"),
            vec!["viewer".to_string(), "admin".to_string()]
        );
        assert!(parse_roles(["root"]).expect_err("unknown").to_string().contains("unknown role"));
        assert!(parse_roles([]).is_err());
        assert!(check_username("ann.b-1@x").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
    }
}
