//! `/admin/users`: list users with roles, create them, change roles, reset passwords,
//! activate / deactivate and delete. The CLI's `users` commands share [`create_user`].
//!
//! Invariants: there is always at least one active admin — the last one can be neither
//! demoted, deactivated nor deleted — and an admin cannot delete or deactivate themselves.
//! Passwords reach the store only as argon2 hashes and never appear in the audit log.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{Fields, field, finish};
use crate::store::{Store, UserRow};
use crate::web::auth::{Action, Principal, Role, check_password, hash_password};
use crate::web::pages::{Chrome, Form, fmt_time, render};
use crate::web::{AppState, WebError, actions};

const PATH: &str = "/admin/users";

/// Checks a user name: 1 to 64 letters, digits, `_`, `.`, `@` or `-`.
pub fn check_username(name: &str) -> Result<(), WebError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(WebError::BadRequest(format!(
            "user name `{name}`: use 1 to 64 letters, digits, `_`, `.`, `@` or `-`"
        )))
    }
}

/// Parses role names (at least one, each known), sorted and without repeats.
pub fn parse_roles<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, WebError> {
    let mut roles = Vec::new();
    for name in names {
        let role: Role = name.trim().parse().map_err(WebError::BadRequest)?;
        roles.push(role);
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(WebError::BadRequest(
            "choose at least one role: viewer, operator, author or admin".into(),
        ));
    }
    Ok(roles.into_iter().map(|r| r.as_str().to_string()).collect())
}

/// Creates a user after checking the name, the password and the roles; `Conflict` if the
/// name is taken. Returns the new user's id.
pub async fn create_user(
    store: &Store,
    username: &str,
    email: &str,
    password: &str,
    roles: &[String],
) -> Result<i64, WebError> {
    check_username(username)?;
    check_password(password).map_err(WebError::BadRequest)?;
    if store.find_user(username).await?.is_some() {
        return Err(WebError::Conflict(format!("the user name `{username}` is taken")));
    }
    let hash = hash_password(password.to_string()).await?;
    Ok(store.create_user(username, email.trim(), &hash, roles, Utc::now()).await?)
}

struct UserView {
    id: i64,
    username: String,
    email: String,
    roles: Vec<String>,
    active: bool,
    last_login: String,
    is_me: bool,
}

impl UserView {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserView>,
    all_roles: Vec<&'static str>,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    user: &Principal,
    flash: Option<String>,
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    let users = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| UserView {
            is_me: u.id == user.user_id,
            id: u.id,
            username: u.username,
            email: u.email,
            roles: u.roles,
            active: u.active,
            last_login: fmt_time(u.last_login),
        })
        .collect();
    render(&UsersPage {
        chrome: Chrome::new(user, "users", "Users").flash(flash),
        users,
        all_roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        error,
    })
}

#[derive(Deserialize)]
struct FlashQuery {
    #[serde(default)]
    flash: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<FlashQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(page(&state, &user, q.flash, None).await?.into_response())
}

/// Runs `change` and answers like every form of this page.
async fn respond(
    state: &AppState,
    user: &Principal,
    result: Result<String, WebError>,
) -> Result<Response, WebError> {
    finish(result, PATH, |e| page(state, user, None, Some(e))).await
}

async fn create(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let f = &form.data;
    let result = async {
        let username = field(f, "username").trim().to_string();
        let roles = parse_roles(f.iter().filter(|(k, _)| k == "role").map(|(_, v)| v.as_str()))?;
        create_user(&state.store, &username, &field(f, "email"), &field(f, "password"), &roles)
            .await?;
        let extra = Some(format!("{username} ({})", roles.join(", ")));
        actions::audit(&state, &form.user, "user_created", None, None, None, extra).await?;
        Ok(format!("Created user {username}"))
    }
    .await;
    respond(&state, &form.user, result).await
}

async fn target(state: &AppState, id: i64) -> Result<UserRow, WebError> {
    state.store.get_user(id).await?.ok_or_else(|| WebError::NotFound(format!("no user {id}")))
}

/// Refuses a change that would leave no active admin.
async fn keep_an_admin(state: &AppState, target: &UserRow, what: &str) -> Result<(), WebError> {
    if !(target.active && target.roles.iter().any(|r| r == "admin")) {
        return Ok(());
    }
    let admins = state
        .store
        .list_users()
        .await?
        .iter()
        .filter(|u| u.active && u.roles.iter().any(|r| r == "admin"))
        .count();
    if admins <= 1 {
        return Err(WebError::Conflict(format!(
            "cannot {what} `{}`: it is the last active admin; make another user admin first",
            target.username
        )));
    }
    Ok(())
}

async fn set_roles(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let result = async {
        let user = target(&state, id).await?;
        let roles =
            parse_roles(form.data.iter().filter(|(k, _)| k == "role").map(|(_, v)| v.as_str()))?;
        if !roles.iter().any(|r| r == "admin") {
            keep_an_admin(&state, &user, "remove the admin role from").await?;
        }
        state.store.set_user_roles(id, &roles).await?;
        let extra = Some(format!("{}: {}", user.username, roles.join(", ")));
        actions::audit(&state, &form.user, "roles_changed", None, None, None, extra).await?;
        Ok(format!("Roles of {}: {}", user.username, roles.join(", ")))
    }
    .await;
    respond(&state, &form.user, result).await
}

async fn set_password(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let result = async {
        let user = target(&state, id).await?;
        let password = field(&form.data, "password");
        check_password(&password).map_err(WebError::BadRequest)?;
        state.store.set_user_password(id, &hash_password(password).await?).await?;
        let extra = Some(user.username.clone());
        actions::audit(&state, &form.user, "password_reset", None, None, None, extra).await?;
        Ok(format!("New password set for {}; their sessions were ended", user.username))
    }
    .await;
    respond(&state, &form.user, result).await
}

async fn set_active(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let result = async {
        let user = target(&state, id).await?;
        let active = crate::web::pages::bool_field("active", &field(&form.data, "active"))?;
        if !active {
            if id == form.user.user_id {
                return Err(WebError::Conflict("you cannot deactivate yourself".into()));
            }
            keep_an_admin(&state, &user, "deactivate").await?;
        }
        state.store.set_user_active(id, active).await?;
        let event = if active { "user_activated" } else { "user_deactivated" };
        actions::audit(&state, &form.user, event, None, None, None, Some(user.username.clone()))
            .await?;
        let done = if active { "Activated" } else { "Deactivated" };
        Ok(format!("{done} {}", user.username))
    }
    .await;
    respond(&state, &form.user, result).await
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let result = async {
        let user = target(&state, id).await?;
        if id == form.user.user_id {
            return Err(WebError::Conflict("you cannot delete yourself".into()));
        }
        keep_an_admin(&state, &user, "delete").await?;
        state.store.delete_user(id).await?;
        actions::audit(
            &state,
            &form.user,
            "user_deleted",
            None,
            None,
            None,
            Some(user.username.clone()),
        )
        .await?;
        Ok(format!("Deleted user {}", user.username))
    }
    .await;
    respond(&state, &form.user, result).await
}

/// Routes of this page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/{id}/roles", post(set_roles))
        .route("/admin/users/{id}/password", post(set_password))
        .route("/admin/users/{id}/active", post(set_active))
        .route("/admin/users/{id}/delete", post(delete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_names_are_checked() {
        assert_eq!(
            parse_roles(["viewer", "admin", "viewer"]).expect("valid"),
            vec!["viewer".to_string(), "admin".to_string()]
        );
        assert!(parse_roles(["root"]).expect_err("unknown").to_string().contains("unknown role"));
        assert!(parse_roles([]).is_err());
        assert!(check_username("ann.b-1@x").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
    }
}
