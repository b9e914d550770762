//! `/account`: who am I, my roles, changing my own password, and my API tokens (create with an
//! optional expiry, shown once; revoke), through `actions::users` and `actions::tokens` (shared
//! with the CLI's `users token`).
//!
//! Invariants: needs only a login (`Action::Read`) and acts on the caller's own account — the
//! user id always comes from the session, never from the form. A token's secret is shown once,
//! in the response to its creation; the store keeps only its SHA-256 hash.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;

use super::admin::{Fields, field, finish};
use super::{Chrome, Form, fmt_time, render};
use crate::actions::{tokens, users};
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

struct TokenView {
    id: i64,
    name: String,
    created: String,
    expires: String,
    last_used: String,
    expired: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    email: String,
    tokens: Vec<TokenView>,
    /// A token just created: shown this once.
    new_token: Option<(String, String)>,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    user: &Principal,
    new_token: Option<(String, String)>,
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    let me = state.store.get_user(user.user_id).await?.ok_or(WebError::Unauthenticated)?;
    let now = Utc::now();
    let tokens = state
        .store
        .list_tokens(user.user_id)
        .await?
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            created: fmt_time(Some(t.created_at)),
            expires: t.expires_at.map_or_else(|| "never".into(), |e| fmt_time(Some(e))),
            last_used: fmt_time(t.last_used_at),
            expired: t.expires_at.is_some_and(|e| e <= now),
        })
        .collect();
    render(&AccountPage {
        chrome: Chrome::new(user, "account", "Account"),
        email: me.email,
        tokens,
        new_token,
        error,
    })
}

async fn show(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    Ok(page(&state, &user, None, None).await?.into_response())
}

async fn change_password(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Read)?;
    let f = &form.data;
    let result = async {
        let new = field(f, "password");
        if new != field(f, "confirm") {
            return Err(WebError::BadRequest("the two new passwords differ".into()));
        }
        // Ends every session of the user, this one included.
        users::change_own_password(&state.store, &form.user.actor(), &field(f, "current"), &new)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(Redirect::to("/login?next=/account").into_response()),
        Err(e) => {
            finish(&state, &form.user, Err(e), "/account", |e| {
                page(&state, &form.user, None, Some(e))
            })
            .await
        }
    }
}

async fn create_token(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Read)?;
    let name = field(&form.data, "name").trim().to_string();
    let result = async {
        let raw = field(&form.data, "expires_days");
        let days = match raw.trim() {
            "" => None,
            d => Some(d.parse::<i64>().map_err(|_| {
                WebError::BadRequest(format!("expiry `{d}`: a whole number of days, or empty"))
            })?),
        };
        let me = users::get_user(&state.store, form.user.user_id).await?;
        Ok(tokens::issue_token(&state.store, &form.user.actor(), &me, &name, days).await?)
    }
    .await;
    match result {
        // Rendered, not redirected: the token must not travel in a URL or survive a reload.
        Ok(token) => {
            let page = page(&state, &form.user, Some((name, token)), None).await?;
            let mut resp = page.into_response();
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(resp)
        }
        Err(e) => {
            finish(&state, &form.user, Err(e), "/account", |e| {
                page(&state, &form.user, None, Some(e))
            })
            .await
        }
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Read)?;
    let result = async {
        let raw = field(&form.data, "token_id");
        let id: i64 = raw
            .parse()
            .map_err(|_| WebError::BadRequest(format!("token id `{raw}` is not a number")))?;
        let me = users::get_user(&state.store, form.user.user_id).await?;
        let name = tokens::revoke_token(&state.store, &form.user.actor(), &me, id).await?;
        Ok(format!("Revoked token {name}"))
    }
    .await;
    finish(&state, &form.user, result, "/account", |e| page(&state, &form.user, None, Some(e)))
        .await
}

/// Routes of this page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/revoke", post(revoke_token))
}
