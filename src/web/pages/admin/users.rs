//! `/admin/users`: list users with roles, create them, change roles, reset passwords,
//! activate / deactivate and delete, each through `actions::users` (shared with the CLI).
//!
//! Invariants: needs `Action::Admin`, checked first; the rules (the last active admin stays,
//! no deleting yourself, passwords only hashed) are the actions'.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::{Fields, field, finish};
use crate::actions::users;
use crate::web::auth::{Action, Principal, Role};
use crate::web::pages::{Chrome, Form, fmt_time, render};
use crate::web::{AppState, WebError};

const PATH: &str = "/admin/users";

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
        chrome: Chrome::new(user, "users", "Users"),
        users,
        all_roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        error,
    })
}

async fn list(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(page(&state, &user, None).await?.into_response())
}

/// Runs `change` and answers like every form of this page.
async fn respond(
    state: &AppState,
    user: &Principal,
    result: Result<String, WebError>,
) -> Result<Response, WebError> {
    finish(state, user, result, PATH, |e| page(state, user, Some(e))).await
}

/// The role checkboxes of a form.
fn roles_of(f: &Fields) -> Vec<String> {
    f.iter().filter(|(k, _)| k == "role").map(|(_, v)| v.clone()).collect()
}

async fn create(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let f = &form.data;
    let result = async {
        let username = field(f, "username").trim().to_string();
        let (email, password) = (field(f, "email"), field(f, "password"));
        let actor = form.user.actor();
        users::create_user(&state.store, &actor, &username, &email, &password, &roles_of(f))
            .await?;
        Ok(format!("Created user {username}"))
    }
    .await;
    respond(&state, &form.user, result).await
}

async fn set_roles(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let result = users::set_roles(&state.store, &form.user.actor(), id, &roles_of(&form.data))
        .await
        .map(|(user, roles)| format!("Roles of {}: {}", user.username, roles.join(", ")))
        .map_err(WebError::from);
    respond(&state, &form.user, result).await
}

async fn set_password(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let result = async {
        let user = users::get_user(&state.store, id).await?;
        let password = field(&form.data, "password");
        users::reset_password(&state.store, &form.user.actor(), &user, &password).await?;
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
        let active = crate::web::pages::bool_field("active", &field(&form.data, "active"))?;
        let user = users::set_active(&state.store, &form.user.actor(), id, active).await?;
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
    let result = users::delete_user(&state.store, &form.user.actor(), id)
        .await
        .map(|user| format!("Deleted user {}", user.username))
        .map_err(WebError::from);
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
