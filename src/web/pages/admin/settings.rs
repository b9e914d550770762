//! `/admin/variables` and `/admin/pools`: list, set and delete (through `actions::settings`).
//!
//! Invariants: values of variables whose key looks secret are masked in the list, like Airflow
//! does; the audit log never holds a value (the actions' rule).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::{Fields, field, finish};
use crate::actions::settings;
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, Form, render};
use crate::web::{AppState, WebError};

/// Parts of a variable key that mark its value as a secret (Airflow's list).
const SECRET_WORDS: [&str; 7] =
    ["password", "secret", "passwd", "api_key", "apikey", "access_token", "private_key"];

/// Whether a variable's value is masked in the list.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_lowercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}

#[derive(Template)]
#[template(path = "admin_variables.html")]
struct VariablesPage {
    chrome: Chrome,
    /// (key, shown value, whether the value is masked)
    vars: Vec<(String, String, bool)>,
    error: Option<String>,
}

async fn variables_page(
    state: &AppState,
    user: &Principal,
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    let vars = state
        .store
        .list_variables()
        .await?
        .into_iter()
        .map(|(k, v)| {
            let secret = is_secret_key(&k);
            let shown = if secret { "***".to_string() } else { v };
            (k, shown, secret)
        })
        .collect();
    render(&VariablesPage { chrome: Chrome::new(user, "variables", "Variables"), vars, error })
}

async fn variables(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(variables_page(&state, &user, None).await?.into_response())
}

async fn set_variable(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let key = field(&form.data, "key").trim().to_string();
    let result = async {
        // Browsers post textarea text with CRLF line ends.
        let value = field(&form.data, "value").replace("\r\n", "\n");
        settings::set_variable(&state.store, &form.user.actor(), &key, &value).await?;
        Ok(format!("Set variable {key}"))
    }
    .await;
    finish(&state, &form.user, result, "/admin/variables", |e| {
        variables_page(&state, &form.user, Some(e))
    })
    .await
}

async fn delete_variable(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let key = field(&form.data, "key");
    let result = async {
        settings::delete_variable(&state.store, &form.user.actor(), &key).await?;
        Ok(format!("Deleted variable {key}"))
    }
    .await;
    finish(&state, &form.user, result, "/admin/variables", |e| {
        variables_page(&state, &form.user, Some(e))
    })
    .await
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
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    render(&PoolsPage {
        chrome: Chrome::new(user, "pools", "Pools"),
        pools: state.store.list_pools().await?,
        error,
    })
}

async fn pools(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(pools_page(&state, &user, None).await?.into_response())
}

async fn set_pool(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let name = field(&form.data, "name").trim().to_string();
    let result = async {
        let raw = field(&form.data, "slots");
        let slots: i64 = raw.trim().parse().map_err(|_| {
            WebError::BadRequest(format!(
                "slots `{raw}`: a whole number from 0 to {}",
                settings::MAX_POOL_SLOTS
            ))
        })?;
        let description = field(&form.data, "description");
        settings::set_pool(&state.store, &form.user.actor(), &name, slots, &description).await?;
        Ok(format!("Pool {name}: {slots} slot(s)"))
    }
    .await;
    finish(&state, &form.user, result, "/admin/pools", |e| pools_page(&state, &form.user, Some(e)))
        .await
}

async fn delete_pool(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let name = field(&form.data, "name");
    let result = async {
        settings::delete_pool(&state.store, &form.user.actor(), &name).await?;
        Ok(format!("Deleted pool {name}"))
    }
    .await;
    finish(&state, &form.user, result, "/admin/pools", |e| pools_page(&state, &form.user, Some(e)))
        .await
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
