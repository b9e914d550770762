//! `/admin/connections`: list (URI with the password masked), add or replace, delete, test (reach
//! it; or, for a notifier, send a test notification), through
//! `actions::connections` (shared with the CLI's `connections` commands).
//!
//! Invariants: the page shows only [`masked_uri`] and never puts a stored URI back into a form
//! — leaving the URI empty when replacing keeps the stored one. Encryption at rest and the
//! checks are the actions'.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Fields, field, finish};
use crate::actions::connections::{self, masked_uri};
use crate::config::Settings;
use crate::operators::connection::Parts;
use crate::secrets::SecretBox;
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, Form, fmt_time, render};
use crate::web::{AppState, WebError};

const PATH: &str = "/admin/connections";

fn secret_box(settings: &Settings) -> Result<SecretBox, WebError> {
    SecretBox::for_settings(settings).map_err(|e| WebError::Internal(e.to_string()))
}

struct ConnView {
    conn_id: String,
    conn_type: String,
    /// Whether it can be a notifier (offered a test send).
    notifier: bool,
    description: String,
    masked: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "admin_connections.html")]
struct ConnectionsPage {
    chrome: Chrome,
    conns: Vec<ConnView>,
    /// Prefilled id, description and fields when editing (never the URI or the password).
    edit_id: String,
    edit_description: String,
    edit: Parts,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    user: &Principal,
    edit: Option<String>,
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    let secrets = secret_box(&state.settings)?;
    let rows = state.store.list_connections().await?;
    let editing = edit.and_then(|id| rows.iter().find(|c| c.conn_id == id).cloned());
    let parts = editing.as_ref().map(|c| connections::parts_of(&secrets, c)).unwrap_or_default();
    let conns = rows
        .iter()
        .map(|c| ConnView {
            conn_id: c.conn_id.clone(),
            conn_type: c.conn_type.clone(),
            notifier: connections::is_notifier_type(&c.conn_type),
            description: c.description.clone(),
            masked: masked_uri(&secrets, c),
            updated: fmt_time(Some(c.updated_at)),
        })
        .collect();
    render(&ConnectionsPage {
        chrome: Chrome::new(user, "connections", "Connections"),
        conns,
        edit_id: editing.as_ref().map(|c| c.conn_id.clone()).unwrap_or_default(),
        edit_description: editing.map(|c| c.description).unwrap_or_default(),
        edit: parts,
        error,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    edit: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(page(&state, &user, q.edit, None).await?.into_response())
}

async fn save(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let f = &form.data;
    let conn_id = field(f, "conn_id").trim().to_string();
    let result = async {
        let secrets = secret_box(&state.settings)?;
        let parts = Parts {
            conn_type: field(f, "conn_type"),
            host: field(f, "host"),
            port: field(f, "port"),
            login: field(f, "login"),
            password: field(f, "password"),
            schema: field(f, "schema"),
            extra: field(f, "extra"),
        };
        let uri =
            connections::uri_of_form(&state.store, &secrets, &conn_id, &field(f, "uri"), &parts)
                .await?;
        let description = field(f, "description");
        let actor = form.user.actor();
        let saved = connections::save_connection(
            &state.store,
            &secrets,
            &actor,
            &conn_id,
            &uri,
            &description,
        )
        .await?;
        Ok(format!("Saved connection {conn_id} ({})", saved.conn_type))
    }
    .await;
    finish(&state, &form.user, result, PATH, |e| page(&state, &form.user, None, Some(e))).await
}

async fn delete(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let conn_id = field(&form.data, "conn_id");
    let result = connections::delete_connection(&state.store, &form.user.actor(), &conn_id)
        .await
        .map(|()| format!("Deleted connection {conn_id}"))
        .map_err(WebError::from);
    finish(&state, &form.user, result, PATH, |e| page(&state, &form.user, None, Some(e))).await
}

/// Tests a stored connection and says what answered.
async fn test(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let conn_id = field(&form.data, "conn_id");
    let result = async {
        let secrets = secret_box(&state.settings)?;
        let actor = form.user.actor();
        Ok(connections::test_connection(&state.store, &secrets, &actor, &conn_id).await?)
    }
    .await;
    finish(&state, &form.user, result, PATH, |e| page(&state, &form.user, None, Some(e))).await
}

/// Sends a test notification through a notifier connection and says what the receiver
/// answered.
async fn test_send(
    State(state): State<AppState>,
    form: Form<Fields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let conn_id = field(&form.data, "conn_id");
    let result = async {
        let secrets = secret_box(&state.settings)?;
        let actor = form.user.actor();
        let s = &state.settings;
        Ok(connections::test_notifier(&state.store, &secrets, s, &actor, &conn_id).await?)
    }
    .await;
    finish(&state, &form.user, result, PATH, |e| page(&state, &form.user, None, Some(e))).await
}

/// Routes of this page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/connections", get(list).post(save))
        .route("/admin/connections/delete", post(delete))
        .route("/admin/connections/test", post(test))
        .route("/admin/connections/test-notification", post(test_send))
}
