//! The `updraft` command line: argument parsing and dispatch.
//!
//! Output is for a person by default and JSON with `--json` where a script would want it.
//! Exit codes: 0 success, 1 the command ran and found a problem (invalid DAG, failed run, a
//! conf that does not fit the params, no such DAG / user / connection), 2 bad usage or
//! configuration (an invalid value, a name already taken, no database).
//!
//! Changes go through `crate::actions`, like the web's, with the actor `cli:<os user>`. The
//! CLI checks no role: it is an admin tool, and whoever can run it against the metadata
//! database already holds its credentials.

mod bag;
mod connections;
mod dags;
mod db;
pub mod engine;
mod tasks;
mod users;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::actions::{ActionError, Actor};
use crate::config::Settings;

/// Updraft: YAML DAGs, a fast scheduler, Kafka-first task types.
#[derive(Debug, Parser)]
#[command(name = "updraft", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scheduler and executor in one process on SQLite, with the example DAGs: start here.
    Standalone,
    /// The scheduler (with the configured executor), for a PostgreSQL deployment.
    Scheduler,
    /// The web UI and API alone, for a PostgreSQL deployment.
    Webserver,
    /// Claims and runs queued tasks from PostgreSQL (UPDRAFT_EXECUTOR=distributed).
    Worker(worker::WorkerArgs),
    /// DAG commands.
    #[command(subcommand)]
    Dags(dags::DagsCommand),
    /// Task commands.
    #[command(subcommand)]
    Tasks(tasks::TasksCommand),
    /// Metadata database commands.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// User commands: create, list, password, API tokens.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Connection commands: add, list, delete.
    #[command(subcommand)]
    Connections(connections::ConnectionsCommand),
}

/// A command's failure: the message for the user and the exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The command ran and the answer is "no" (exit 1).
    pub fn problem(message: impl Into<String>) -> Failure {
        Failure { code: 1, message: message.into() }
    }

    /// Bad usage, configuration or environment (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { code: 2, message: message.into() }
    }
}

/// What an action's refusal means for the exit code: something looked up and not there, or a
/// conf that does not fit the DAG's params, is the command's answer (exit 1); a value that is
/// not acceptable as given (a bad name, a short password, a taken id) is bad usage (exit 2), as
/// is a failure of the environment (database, hashing).
impl From<ActionError> for Failure {
    fn from(e: ActionError) -> Failure {
        match e {
            ActionError::NotFound(m) => Failure::problem(m),
            e @ ActionError::Conf(_) => Failure::problem(e.to_string()),
            ActionError::Invalid(m) | ActionError::Conflict(m) | ActionError::Internal(m) => {
                Failure::usage(m)
            }
        }
    }
}

/// Errors of the environment: exit 2.
macro_rules! environment_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                Failure::usage(e.to_string())
            }
        }
    )*};
}
environment_errors!(crate::store::StoreError, crate::secrets::SecretError, std::io::Error);

/// Who the audit log names for a command: `cli:<operating-system user>`.
pub fn actor() -> Actor {
    Actor::cli(&os_user())
}

/// The name of the user running this process, from `/etc/passwd` (without reading the
/// environment, which `config` alone does); `uid<N>` when it has no entry.
fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut f = line.split(':');
            let (name, _, id) = (f.next()?, f.next()?, f.next()?);
            (id == uid.to_string()).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("uid{uid}"))
}

/// Result of a command.
pub type CmdResult = Result<(), Failure>;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Standalone => engine::serve(settings, engine::Role::Standalone).await,
            Command::Scheduler => engine::serve(settings, engine::Role::Scheduler).await,
            Command::Webserver => engine::serve(settings, engine::Role::Webserver).await,
            Command::Worker(args) => worker::run(args, settings).await,
            Command::Dags(cmd) => dags::run(cmd, settings).await,
            Command::Tasks(cmd) => tasks::run(cmd, settings).await,
            Command::Db(cmd) => db::run(cmd, settings).await,
            Command::Users(cmd) => users::run(cmd, settings).await,
            Command::Connections(cmd) => connections::run(cmd, settings).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Logs go to stderr, read before `Settings` exist (their own errors are logged). `UPDRAFT_LOG`
/// filters them; `NO_COLOR` is read here too, for the same reason.
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPDRAFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Colour codes only for a person at a terminal: a log file or a pipe gets plain text. A
/// `NO_COLOR` that is set and not empty turns colour off everywhere (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Parses `--conf` JSON into a params object.
pub fn parse_conf(
    conf: Option<&str>,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    match conf {
        None => Ok(serde_json::Map::new()),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => {
                Err(Failure::usage("--conf must be a JSON object, e.g. '{\"batch_size\": 10}'"))
            }
            Err(e) => Err(Failure::usage(format!("--conf is not valid JSON: {e}"))),
        },
    }
}

/// Parses a date (`2026-01-01`) or a date-time (RFC 3339) given on the command line.
pub fn parse_when(text: &str) -> Result<chrono::DateTime<chrono::Utc>, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Failure::usage(format!("`{text}` is not a date (2026-01-01) or RFC 3339 time"))
        })
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (terminal, no_color, want) in cases {
            let got = use_colour(terminal, no_color.map(Into::into));
            assert_eq!(got, want, "terminal {terminal}, NO_COLOR {no_color:?}");
        }
    }
}
