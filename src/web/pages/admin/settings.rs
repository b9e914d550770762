//! `/admin/variables` and `/admin/pools`: list, set and delete.
//!
//! Invariants: the audit log names the variable or pool changed, never a variable's value
//! (variables often hold tokens). Values of variables whose key looks secret are masked in the
//! list, like Airflow does. `default_pool` cannot be deleted (the store refuses too).

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{Fields, check_id, field, finish};
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, Form, render};
use crate::web::{AppState, WebError, actions};

/// Parts of a variable key that mark its value as a secret (Airflow's list).
const SECRET_WORDS: [&str; 7] =
    ["password", "secret", "passwd", "api_key", "apikey", "access_token", "private_key"];

/// Whether a variable's value is masked in the list.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_lowercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}

#[derive(Deserialize)]
struct FlashQuery {
    #[serde(default)]
    flash: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_variables.html")]
struct VariablesPage {
    chrome: Chrome,
    /// (key, shown value)
    vars: Vec<(String, String)>,
    error: Option<String>,
}

async fn variables_page(
    state: &AppState,
    user: &Principal,
    flash: Option<String>,
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    let vars = state
        .store
        .list_variables()
        .await?
        .into_iter()
        .map(|(k, v)| {
            let shown = if is_secret_key(&k) { "***".to_string() } else { v };
            (k, shown)
        })
        .collect();
    render(&VariablesPage {
        chrome: Chrome::new(user, "variables", "Variables").flash(flash),
        vars,
        error,
    })
}

async fn variables(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<FlashQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(variables_page(&state, &user, q.flash, None).await?.into_response())
}

/// A variable key: 1 to 250 characters, no control characters.
fn check_key(key: &str) -> Result<(), WebError> {
    if key.is_empty() || key.len() > 250 || key.chars().any(char::is_control) {
        return Err(WebError::BadRequest(format!(
            "variable key `{key}`: use 1 to 250 characters without control characters"
        )));
    }
    Ok(())
}

async fn set_variable(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let key = field(&form.data, "key").trim().to_string();
    let result = async {
        check_key(&key)?;
        // Browsers post textarea text with CRLF line ends.
        let value = field(&form.data, "value").replace("\r\n", "\n");
        state.store.set_variable(&key, &value, Utc::now()).await?;
        actions::audit(&state, &form.user, "variable_set", None, None, None, Some(key.clone()))
            .await?;
        Ok(format!("Set variable {key}"))
    }
    .await;
    finish(result, "/admin/variables", |e| variables_page(&state, &form.user, None, Some(e))).await
}

async fn delete_variable(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let key = field(&form.data, "key");
    let result = async {
        state.store.delete_variable(&key).await?;
        let extra = Some(key.clone());
        actions::audit(&state, &form.user, "variable_deleted", None, None, None, extra).await?;
        Ok(format!("Deleted variable {key}"))
    }
    .await;
    finish(result, "/admin/variables", |e| variables_page(&state, &form.user, None, Some(e))).await
}

#[derive(Template)]
#[template(path = "admin_pools.html")]
struct PoolsPage {
    chrome: Chrome,
    pools: Vec<crate::store::PoolRow>,
    error: Option<String>,
}

async fn pools_page(
    state: &AppState,
    user: &Principal,
    flash: Option<String>,
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    render(&PoolsPage {
        chrome: Chrome::new(user, "pools", "Pools").flash(flash),
        pools: state.store.list_pools().await?,
        error,
    })
}

async fn pools(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<FlashQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(pools_page(&state, &user, q.flash, None).await?.into_response())
}

async fn set_pool(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let name = field(&form.data, "name").trim().to_string();
    let result = async {
        check_id("pool name", &name)?;
        let raw = field(&form.data, "slots");
        let slots: i64 =
            raw.trim().parse().ok().filter(|n| (0..=1_000_000).contains(n)).ok_or_else(|| {
                WebError::BadRequest(format!("slots `{raw}`: a whole number from 0 to 1000000"))
            })?;
        state.store.set_pool(&name, slots, field(&form.data, "description").trim()).await?;
        let extra = Some(format!("{name}: {slots} slot(s)"));
        actions::audit(&state, &form.user, "pool_set", None, None, None, extra).await?;
        Ok(format!("Pool {name}: {slots} slot(s)"))
    }
    .await;
    finish(result, "/admin/pools", |e| pools_page(&state, &form.user, None, Some(e))).await
}

async fn delete_pool(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let name = field(&form.data, "name");
    let result = async {
        if name == "default_pool" {
            return Err(WebError::Conflict("default_pool cannot be deleted: resize it".into()));
        }
        state.store.delete_pool(&name).await?;
        actions::audit(&state, &form.user, "pool_deleted", None, None, None, Some(name.clone()))
            .await?;
        Ok(format!("Deleted pool {name}"))
    }
    .await;
    finish(result, "/admin/pools", |e| pools_page(&state, &form.user, None, Some(e))).await
}

/// Routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/variables", get(variables).post(set_variable))
        .route("/admin/variables/delete", post(delete_variable))
        .route("/admin/pools", get(pools).post(set_pool))
        .route("/admin/pools/delete", post(delete_pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_keys_are_masked() {
        assert!(is_secret_key("S3_SECRET"));
        assert!(is_secret_key("db_password"));
        assert!(!is_secret_key("batch_size"));
    }
}
