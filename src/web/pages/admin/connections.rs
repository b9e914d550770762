//! `/admin/connections`: list (URI with the password masked), add or replace, delete. The
//! CLI's `connections` commands share [`save_connection`] and [`masked_uri`].
//!
//! Invariants: a URI is stored only encrypted by the installation's [`SecretBox`]; the page
//! shows only [`masked_uri`] and never puts a stored URI back into a form — leaving the URI
//! empty when replacing keeps the stored one. Errors about a URI never repeat it.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{Fields, check_id, field, finish};
use crate::config::Settings;
use crate::operators::connection::Connection;
use crate::secrets::SecretBox;
use crate::store::{ConnectionRow, Store};
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, Form, fmt_time, render};
use crate::web::{AppState, WebError, actions};

const PATH: &str = "/admin/connections";

fn secret_box(settings: &Settings) -> Result<SecretBox, WebError> {
    SecretBox::for_settings(settings).map_err(|e| WebError::Internal(e.to_string()))
}

/// What a list shows of a stored connection's URI: the type, login, host, port and schema,
/// with `***` for the password; a note when it cannot be read.
pub fn masked_uri(secrets: &SecretBox, row: &ConnectionRow) -> String {
    match secrets.decrypt(&row.uri_encrypted) {
        Ok(uri) => match Connection::parse(&row.conn_id, &uri) {
            Ok(conn) => conn.masked(),
            Err(_) => "(invalid URI)".into(),
        },
        Err(_) => "(cannot decrypt: encrypted with another UPDRAFT_SECRET_KEY)".into(),
    }
}

/// Creates or replaces connection `conn_id`. An empty `uri` keeps the stored URI of an
/// existing connection (only the description changes). Returns the connection type.
pub async fn save_connection(
    store: &Store,
    settings: &Settings,
    conn_id: &str,
    uri: &str,
    description: &str,
) -> Result<String, WebError> {
    check_id("connection id", conn_id)?;
    let existing = store.list_connections().await?.into_iter().find(|c| c.conn_id == conn_id);
    let (conn_type, uri_encrypted) = if uri.trim().is_empty() {
        let Some(old) = existing else {
            return Err(WebError::BadRequest(format!(
                "connection `{conn_id}`: the URI is required for a new connection"
            )));
        };
        (old.conn_type, old.uri_encrypted)
    } else {
        let conn = Connection::parse(conn_id, uri.trim()).map_err(WebError::BadRequest)?;
        (conn.conn_type, secret_box(settings)?.encrypt(uri.trim()))
    };
    let row = ConnectionRow {
        conn_id: conn_id.to_string(),
        conn_type: conn_type.clone(),
        description: description.trim().to_string(),
        uri_encrypted,
        updated_at: Utc::now(),
    };
    store.set_connection(&row).await?;
    Ok(conn_type)
}

struct ConnView {
    conn_id: String,
    conn_type: String,
    description: String,
    masked: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "admin_connections.html")]
struct ConnectionsPage {
    chrome: Chrome,
    conns: Vec<ConnView>,
    /// Prefilled id and description when editing (never the URI).
    edit_id: String,
    edit_description: String,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    user: &Principal,
    flash: Option<String>,
    edit: Option<String>,
    error: Option<String>,
) -> Result<Html<String>, WebError> {
    let secrets = secret_box(&state.settings)?;
    let rows = state.store.list_connections().await?;
    let editing = edit.and_then(|id| rows.iter().find(|c| c.conn_id == id).cloned());
    let conns = rows
        .iter()
        .map(|c| ConnView {
            conn_id: c.conn_id.clone(),
            conn_type: c.conn_type.clone(),
            description: c.description.clone(),
            masked: masked_uri(&secrets, c),
            updated: fmt_time(Some(c.updated_at)),
        })
        .collect();
    render(&ConnectionsPage {
        chrome: Chrome::new(user, "connections", "Connections").flash(flash),
        conns,
        edit_id: editing.as_ref().map(|c| c.conn_id.clone()).unwrap_or_default(),
        edit_description: editing.map(|c| c.description).unwrap_or_default(),
        error,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    flash: Option<String>,
    #[serde(default)]
    edit: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    Ok(page(&state, &user, q.flash, q.edit, None).await?.into_response())
}

async fn save(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let f = &form.data;
    let conn_id = field(f, "conn_id").trim().to_string();
    let result = async {
        let kind = save_connection(
            &state.store,
            &state.settings,
            &conn_id,
            &field(f, "uri"),
            &field(f, "description"),
        )
        .await?;
        let extra = Some(conn_id.clone());
        actions::audit(&state, &form.user, "connection_saved", None, None, None, extra).await?;
        Ok(format!("Saved connection {conn_id} ({kind})"))
    }
    .await;
    finish(result, PATH, |e| page(&state, &form.user, None, None, Some(e))).await
}

async fn delete(State(state): State<AppState>, form: Form<Fields>) -> Result<Response, WebError> {
    form.user.require(Action::Admin)?;
    let conn_id = field(&form.data, "conn_id");
    let result = async {
        state.store.delete_connection(&conn_id).await?;
        let extra = Some(conn_id.clone());
        actions::audit(&state, &form.user, "connection_deleted", None, None, None, extra).await?;
        Ok(format!("Deleted connection {conn_id}"))
    }
    .await;
    finish(result, PATH, |e| page(&state, &form.user, None, None, Some(e))).await
}

/// Routes of this page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/connections", get(list).post(save))
        .route("/admin/connections/delete", post(delete))
}
