//! Connections: save (create or replace) and delete, and how a stored one is shown.
//!
//! Invariants: a URI reaches the store only encrypted by the installation's [`SecretBox`];
//! [`masked_uri`] is the only view of a stored URI this layer gives; errors and audit entries
//! about a URI never repeat it.

use chrono::Utc;

use super::{ActionError, Actor, Audit, Result, audit, check_name};
use crate::operators::connection::{Connection, Parts};
use crate::secrets::SecretBox;
use crate::store::{ConnectionRow, Store, StoreError};

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

/// `uri` with `password` put in (percent-encoded), so a password never has to be typed on a
/// command line, where `ps` shows it. Refused when the URI has a password already or cannot
/// hold one; the message never repeats the URI.
pub fn with_password(conn_id: &str, uri: &str, password: &str) -> Result<String> {
    let mut url = reqwest::Url::parse(uri.trim()).map_err(|e| {
        ActionError::Invalid(format!("connection `{conn_id}` has an invalid URI ({e})"))
    })?;
    if url.password().is_some() {
        return Err(ActionError::Invalid(format!(
            "connection `{conn_id}`: the URI already holds a password; leave it out of --uri"
        )));
    }
    url.set_password(Some(password)).map_err(|()| {
        ActionError::Invalid(format!("connection `{conn_id}`: this URI cannot hold a password"))
    })?;
    Ok(url.to_string())
}

/// What [`save_connection`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The connection type (the URI's scheme).
    pub conn_type: String,
    /// Whether it replaced an existing connection.
    pub replaced: bool,
}

/// Creates or replaces connection `conn_id`. An empty `uri` keeps the stored URI of an existing
/// connection (only the description changes).
pub async fn save_connection(
    store: &Store,
    secrets: &SecretBox,
    actor: &Actor,
    conn_id: &str,
    uri: &str,
    description: &str,
) -> Result<Saved> {
    check_name("connection id", conn_id)?;
    let existing = store.list_connections().await?.into_iter().find(|c| c.conn_id == conn_id);
    let replaced = existing.is_some();
    let (conn_type, uri_encrypted) = if uri.trim().is_empty() {
        let Some(old) = existing else {
            return Err(ActionError::Invalid(format!(
                "connection `{conn_id}`: the URI is required for a new connection"
            )));
        };
        (old.conn_type, old.uri_encrypted)
    } else {
        let conn = Connection::parse(conn_id, uri.trim()).map_err(ActionError::Invalid)?;
        (conn.conn_type, secrets.encrypt(uri.trim()))
    };
    let row = ConnectionRow {
        conn_id: conn_id.to_string(),
        conn_type: conn_type.clone(),
        description: description.trim().to_string(),
        uri_encrypted,
        updated_at: Utc::now(),
    };
    store.set_connection(&row).await?;
    audit(store, actor, Audit::new("connection_saved").extra(conn_id)).await?;
    Ok(Saved { conn_type, replaced })
}

/// Deletes connection `conn_id`.
pub async fn delete_connection(store: &Store, actor: &Actor, conn_id: &str) -> Result<()> {
    store.delete_connection(conn_id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ActionError::NotFound(format!("no connection `{conn_id}`")),
        other => other.into(),
    })?;
    audit(store, actor, Audit::new("connection_deleted").extra(conn_id)).await
}

/// The stored connection `conn_id`, decrypted and parsed.
async fn stored(store: &Store, secrets: &SecretBox, conn_id: &str) -> Result<Option<Connection>> {
    match store.list_connections().await?.into_iter().find(|c| c.conn_id == conn_id) {
        Some(row) => decrypted(secrets, &row).map(Some),
        None => Ok(None),
    }
}

/// A stored row, decrypted and parsed.
fn decrypted(secrets: &SecretBox, row: &ConnectionRow) -> Result<Connection> {
    let conn_id = &row.conn_id;
    let uri = secrets.decrypt(&row.uri_encrypted).map_err(|_| {
        ActionError::Invalid(format!(
            "connection `{conn_id}` cannot be decrypted: it was encrypted with another UPDRAFT_SECRET_KEY"
        ))
    })?;
    Connection::parse(conn_id, &uri).map_err(ActionError::Invalid)
}

/// The URI a form means: the URI when one is written; else the fields when a type is given
/// (an empty password keeps the stored one, which the form never shows); else empty, which
/// [`save_connection`] takes as "keep the stored URI".
pub async fn uri_of_form(
    store: &Store,
    secrets: &SecretBox,
    conn_id: &str,
    uri: &str,
    parts: &Parts,
) -> Result<String> {
    if !uri.trim().is_empty() || parts.conn_type.trim().is_empty() {
        return Ok(uri.trim().to_string());
    }
    let mut parts = parts.clone();
    if parts.password.is_empty()
        && let Some(old) = stored(store, secrets, conn_id).await?
    {
        parts.password = old.password.unwrap_or_default();
    }
    parts.to_uri(conn_id).map_err(ActionError::Invalid)
}

/// The fields of a stored connection for its edit form (never its password); empty fields
/// when it cannot be read (the list says why).
pub fn parts_of(secrets: &SecretBox, row: &ConnectionRow) -> Parts {
    decrypted(secrets, row).map(|c| c.parts()).unwrap_or_default()
}

/// Tests stored connection `conn_id` ([`probe`](crate::operators::connection_test::probe)):
/// what answered, or why not. Audited either way: a test reaches out from the server.
pub async fn test_connection(
    store: &Store,
    secrets: &SecretBox,
    actor: &Actor,
    conn_id: &str,
) -> Result<String> {
    let conn = stored(store, secrets, conn_id)
        .await?
        .ok_or_else(|| ActionError::NotFound(format!("no connection `{conn_id}`")))?;
    let outcome = crate::operators::connection_test::probe(&conn).await;
    let note = match &outcome {
        Ok(_) => format!("{conn_id}: ok"),
        Err(_) => format!("{conn_id}: failed"),
    };
    audit(store, actor, Audit::new("connection_tested").extra(&note)).await?;
    outcome
        .map(|what| format!("Connection {conn_id} works: {what}"))
        .map_err(|why| ActionError::Invalid(format!("Connection {conn_id} failed its test: {why}")))
}

/// Whether connection type `conn_type` (a URI scheme) can be a notifier: a webhook or Slack
/// (`http`, `https`) or email (`smtp`, `smtps`). The connections page offers a test send to
/// these.
pub fn is_notifier_type(conn_type: &str) -> bool {
    matches!(conn_type, "http" | "https" | "smtp" | "smtps")
}

/// Sends a test notification through notifier connection `conn_id`, as the scheduler's sender
/// would deliver one (the URI it uses: `UPDRAFT_CONN_<ID>` before the stored one): the
/// receiver's answer, or why it failed (an Invalid the page shows). Bounded by
/// [`crate::notify::TIMEOUT`]; audited either way (`notifier_tested`), never with the URI.
pub async fn test_notifier(
    store: &Store,
    secrets: &SecretBox,
    settings: &crate::config::Settings,
    actor: &Actor,
    conn_id: &str,
) -> Result<String> {
    let uri = match settings.connections.get(&conn_id.to_lowercase()) {
        Some(uri) => uri.clone(),
        None => {
            let row = store.list_connections().await?.into_iter().find(|c| c.conn_id == conn_id);
            let row =
                row.ok_or_else(|| ActionError::NotFound(format!("no connection `{conn_id}`")))?;
            secrets.decrypt(&row.uri_encrypted).map_err(|_| {
                ActionError::Invalid(format!(
                    "connection `{conn_id}` cannot be decrypted: it was encrypted with another UPDRAFT_SECRET_KEY"
                ))
            })?
        }
    };
    let n = crate::notify::test_notification(conn_id, actor.name(), Utc::now());
    let outcome = crate::notify::deliver(&uri, &n, &settings.base_url).await;
    let note = match &outcome {
        Ok(_) => format!("{conn_id}: sent"),
        Err(e) => format!("{conn_id}: failed: {}", e.error),
    };
    audit(store, actor, Audit::new("notifier_tested").extra(&note)).await?;
    match outcome {
        Ok(answer) => {
            let answer = answer.map(|a| format!(" (answer: {a})")).unwrap_or_default();
            Ok(format!("Test notification sent through {conn_id}{answer}"))
        }
        Err(e) => {
            let answer = e.answer.map(|a| format!(" (answer: {a})")).unwrap_or_default();
            Err(ActionError::Invalid(format!(
                "Test notification through {conn_id} failed: {}{answer}",
                e.error
            )))
        }
    }
}
