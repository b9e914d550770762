//! `updraft connections ...`: add (or replace), list with passwords masked, delete.
//!
//! Invariants: changes go through `actions::connections` (the admin page's functions), so URIs
//! are encrypted before they reach the store and audited as `cli:<os user>`; nothing printed
//! here contains a password. A password can come from a prompt or standard input instead of
//! the command line, where any user of the machine sees it in `ps` while the command runs.

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;
use serde_json::json;

use super::{CmdResult, Failure, engine};
use crate::actions::connections::{self, masked_uri};
use crate::config::Settings;
use crate::secrets::SecretBox;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// Adds a connection, or replaces the one with the same id.
    Add {
        /// Id tasks refer to with `connection:`.
        conn_id: String,
        /// scheme://user:password@host:port/schema?key=value. The process list (`ps`) shows it
        /// while the command runs: leave the password out and add --password-stdin.
        #[arg(long)]
        uri: String,
        /// Puts a password into the URI, read from standard input: prompted for without echo
        /// when it is a terminal, else its first line (`... --password-stdin < file`).
        #[arg(long)]
        password_stdin: bool,
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

/// The password of `--password-stdin`: prompted for without echo on a terminal, else the first
/// line of standard input.
fn read_password(conn_id: &str) -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for connection {conn_id}: "))
            .map_err(|e| Failure::usage(format!("cannot read the password: {e}")));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::usage(format!("cannot read the password from stdin: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(cmd: ConnectionsCommand, settings: Settings) -> CmdResult {
    let store = engine::open_store(&settings).await?;
    let result = run_on(&store, &settings, cmd).await;
    store.close().await;
    result
}

async fn run_on(store: &Store, settings: &Settings, cmd: ConnectionsCommand) -> CmdResult {
    match cmd {
        ConnectionsCommand::Add { conn_id, uri, password_stdin, description } => {
            if uri.trim().is_empty() {
                return Err(Failure::usage("--uri is empty"));
            }
            let uri = if password_stdin {
                let password = read_password(&conn_id)?;
                if password.is_empty() {
                    return Err(Failure::usage("the password read is empty"));
                }
                connections::with_password(&conn_id, &uri, &password)?
            } else {
                uri
            };
            let secrets = SecretBox::for_settings(settings)?;
            let saved = connections::save_connection(
                store,
                &secrets,
                &super::actor(),
                &conn_id,
                &uri,
                &description,
            )
            .await?;
            let verb = if saved.replaced { "Replaced" } else { "Added" };
            println!("{verb} connection {conn_id} ({}), stored encrypted", saved.conn_type);
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
        ConnectionsCommand::Delete { conn_id } => {
            connections::delete_connection(store, &super::actor(), &conn_id).await?;
            println!("Deleted connection {conn_id}");
            Ok(())
        }
    }
}
