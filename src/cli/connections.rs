//! `updraft connections ...`: add (or replace), list with passwords masked, delete.
//!
//! Invariants: URIs are encrypted with the installation's key before they reach the store
//! (shared `save_connection` of the admin page); nothing printed here contains a password.

use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use super::{CmdResult, Failure, engine};
use crate::config::Settings;
use crate::secrets::SecretBox;
use crate::store::{AuditEntry, Store, StoreError};
use crate::web::pages::admin::connections::{masked_uri, save_connection};

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Adds a connection, or replaces the one with the same id.
    Add {
        /// Id tasks refer to with `connection:`.
        conn_id: String,
        /// scheme://user:password@host:port/schema?key=value
        #[arg(long)]
        uri: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Lists connections (passwords masked).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deletes a connection.
    Delete {
        /// The connection.
        conn_id: String,
    },
}

async fn audit(store: &Store, event: &str, conn_id: &str) -> CmdResult {
    let entry = AuditEntry {
        username: "cli",
        event,
        extra: Some(conn_id.to_string()),
        ..Default::default()
    };
    store.record_audit(&entry, Utc::now()).await?;
    Ok(())
}

pub async fn run(cmd: ConnectionsCommand, settings: Settings) -> CmdResult {
    let store = engine::open_store(&settings).await?;
    let result = run_on(&store, &settings, cmd).await;
    store.close().await;
    result
}

async fn run_on(store: &Store, settings: &Settings, cmd: ConnectionsCommand) -> CmdResult {
    match cmd {
        ConnectionsCommand::Add { conn_id, uri, description } => {
            if uri.trim().is_empty() {
                return Err(Failure::usage("--uri is empty"));
            }
            let existed = store.list_connections().await?.iter().any(|c| c.conn_id == conn_id);
            let kind = save_connection(store, settings, &conn_id, &uri, &description).await?;
            audit(store, "connection_saved", &conn_id).await?;
            let verb = if existed { "Replaced" } else { "Added" };
            println!("{verb} connection {conn_id} ({kind}), stored encrypted");
            Ok(())
        }
        ConnectionsCommand::List { json } => {
            let secrets = SecretBox::for_settings(settings)?;
            let rows = store.list_connections().await?;
            if json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|c| {
                        json!({
                            "conn_id": c.conn_id,
                            "conn_type": c.conn_type,
                            "description": c.description,
                            "uri": masked_uri(&secrets, c),
                            "updated_at": c.updated_at.to_rfc3339(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                return Ok(());
            }
            println!("{:<24} {:<12} {:<48} DESCRIPTION", "ID", "TYPE", "URI");
            for c in &rows {
                let uri = masked_uri(&secrets, c);
                println!("{:<24} {:<12} {uri:<48} {}", c.conn_id, c.conn_type, c.description);
            }
            Ok(())
        }
        ConnectionsCommand::Delete { conn_id } => match store.delete_connection(&conn_id).await {
            Ok(()) => {
                audit(store, "connection_deleted", &conn_id).await?;
                println!("Deleted connection {conn_id}");
                Ok(())
            }
            Err(StoreError::NotFound(_)) => {
                Err(Failure::problem(format!("no connection `{conn_id}`")))
            }
            Err(e) => Err(e.into()),
        },
    }
}
