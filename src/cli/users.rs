//! `updraft users ...`: create, list, set a password, issue an API token.
//!
//! Invariants: every change goes through `actions::users` and `actions::tokens` (the admin
//! pages' functions), so a user made here is one the web would accept, and the audit log
//! names `cli:<os user>`. A password or token printed here is printed once and never stored in
//! clear.

use std::io::Read;

use clap::Subcommand;
use serde_json::json;

use super::{CmdResult, Failure, engine};
use crate::actions::{tokens, users};
use crate::config::Settings;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Creates a user; without a password, generates one and prints it once.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// A role (viewer, operator, author, admin); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The password (visible in the process list: prefer --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Reads the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
        /// Email address (optional).
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Lists users with their roles.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sets a user's password (ending their sessions); without one, generates and prints it.
    Password {
        /// The user.
        username: String,
        /// The new password (visible in the process list: prefer --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Reads the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Creates an API token for a user and prints it (once) on standard output.
    Token {
        /// The user.
        username: String,
        /// A label for the token (`ci`, `grafana`).
        #[arg(long)]
        name: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_days: Option<i64>,
    },
}

/// The password from the flag or standard input, or a generated one (then `true`).
fn password_from(flag: Option<String>, stdin: bool) -> Result<(String, bool), Failure> {
    if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("cannot read the password from stdin: {e}")))?;
        let line = text.lines().next().unwrap_or("").to_string();
        return Ok((line, false));
    }
    match flag {
        Some(p) => Ok((p, false)),
        None => Ok((crate::secrets::random_token()[..20].to_string(), true)),
    }
}

async fn find(store: &Store, username: &str) -> Result<crate::store::UserRow, Failure> {
    users::find_user(store, username)
        .await
        .map_err(|e| Failure::problem(format!("{e}: see `updraft users list`")))
}

pub async fn run(cmd: UsersCommand, settings: Settings) -> CmdResult {
    let store = engine::open_store(&settings).await?;
    let result = run_on(&store, cmd).await;
    store.close().await;
    result
}

async fn run_on(store: &Store, cmd: UsersCommand) -> CmdResult {
    match cmd {
        UsersCommand::Create { username, roles, password, password_stdin, email } => {
            let roles = users::parse_roles(roles.iter().map(String::as_str))?;
            let (password, generated) = password_from(password, password_stdin)?;
            users::create_user(store, &super::actor(), &username, &email, &password, &roles)
                .await?;
            println!("Created user {username} with role(s) {}", roles.join(", "));
            if generated {
                println!("Password: {password}\nThis password is shown once: note it.");
            }
            Ok(())
        }
        UsersCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| {
                        json!({
                            "username": u.username,
                            "email": u.email,
                            "roles": u.roles,
                            "active": u.active,
                            "created_at": u.created_at.to_rfc3339(),
                            "last_login": u.last_login.map(|t| t.to_rfc3339()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
                return Ok(());
            }
            println!("{:<24} {:<30} {:<8} LAST LOGIN", "USER", "ROLES", "ACTIVE");
            for u in &users {
                let last = u
                    .last_login
                    .map_or("never".to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string());
                let active = if u.active { "yes" } else { "no" };
                println!("{:<24} {:<30} {active:<8} {last}", u.username, u.roles.join(","));
            }
            Ok(())
        }
        UsersCommand::Password { username, password, password_stdin } => {
            let user = find(store, &username).await?;
            let (password, generated) = password_from(password, password_stdin)?;
            users::reset_password(store, &super::actor(), &user, &password).await?;
            println!("New password set for {username}; their sessions were ended.");
            if generated {
                println!("Password: {password}\nThis password is shown once: note it.");
            }
            Ok(())
        }
        UsersCommand::Token { username, name, expires_days } => {
            let user = find(store, &username).await?;
            let token =
                tokens::issue_token(store, &super::actor(), &user, &name, expires_days).await?;
            // The token alone on stdout, so `TOKEN=$(updraft users token ...)` works.
            println!("{token}");
            eprintln!("API token `{}` for {username}: shown once, keep it safe.", name.trim());
            Ok(())
        }
    }
}
