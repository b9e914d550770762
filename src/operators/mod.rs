//! Operators: the code of each task type, and the only code that talks to user systems.
//!
//! One module per task type, named after the type (`file_sensor.rs` is `type: file_sensor`),
//! with a `run` function; the Kafka, Cassandra and S3 ones share `kafka_client`,
//! `cassandra_client`, `cassandra_rows`, `objects`, `stream`, `json_path` and `records` (record
//! formats, Avro and the schema registry, transforms). [`execute`] is
//! the one `match` over the closed [`TaskKind`] enum, generated from the
//! declaration of the task types (`dag::kinds::for_each_task_type!`), so a type without its
//! operator module does not compile. An operator gets a [`TaskContext`] (the run, its
//! upstream XCom, connections, a log, a cancellation token) and returns an [`Outcome`] or an
//! [`OperatorError`] that says whether a retry can help.
//!
//! Invariants: operators never write task states (the worker does, through `model`); they
//! stop promptly when `cancel` fires (every process of a bash try is stopped, see
//! `containment`); secrets from connections never reach the log.

pub mod bash;
pub mod cassandra_client;
pub mod cassandra_rows;
pub mod connection;
pub mod connection_test;
pub mod containment;
pub mod cql;
pub mod external_task_sensor;
pub mod file_sensor;
pub mod http;
pub mod http_sensor;
pub mod http_to_kafka;
pub mod json_path;
pub mod kafka_client;
pub mod kafka_produce;
pub mod kafka_sensor;
pub mod kafka_to_cassandra;
pub mod kafka_to_s3;
pub mod kafka_to_sql;
pub mod log;
pub mod log_path;
pub mod objects;
pub mod records;
pub mod s3;
pub mod s3_key_sensor;
pub mod sql;
pub mod sql_link;
pub mod sql_rows;
pub mod sql_sensor;
pub mod sql_to_kafka;
pub mod stream;
pub mod table_cursor;
pub mod template;
pub mod trigger_dag;

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::dag::kinds::for_each_task_type;
use crate::dag::{Dag, Task, TaskKind};
use crate::store::{RunRow, Store, TiRow, XComRow};

pub use connection::Connection;
pub use log::{Stream, TaskLog};
pub use template::Renderer;

/// Connections stored in the metadata database: the decrypted URI, or why it could not be
/// decrypted, by lower-case id.
pub type DbConnections = std::collections::BTreeMap<String, Result<String, String>>;

/// Everything an operator may use while running one try.
pub struct TaskContext {
    /// The DAG (validated).
    pub dag: Arc<Dag>,
    /// The task being run.
    pub task: Task,
    /// Its run.
    pub run: RunRow,
    /// The task instance, with the current try number, map index and item.
    pub ti: TiRow,
    /// XCom pushed so far in this run (upstream results).
    pub xcoms: Vec<XComRow>,
    /// Variables from the metadata database, by key (environment ones are in `settings`).
    pub db_variables: std::collections::BTreeMap<String, String>,
    /// Connections from the metadata database (decrypted URIs), by lower-case id. Environment
    /// ones (`settings.connections`) take precedence, as in Airflow.
    pub db_connections: DbConnections,
    /// The metadata database, for task types that look at other runs (sensors, trigger_dag).
    pub store: Store,
    /// Process settings (connections and variables from the environment).
    pub settings: Arc<Settings>,
    /// The try's log file.
    pub log: TaskLog,
    /// Fires on timeout, kill or shutdown: stop now.
    pub cancel: CancellationToken,
    /// Rendered template fields of this try, by field name, shown in the UI.
    pub rendered: Mutex<serde_json::Map<String, serde_json::Value>>,
    /// For an asset-triggered run: the events it was created for, by asset URI
    /// (`{{ triggering_asset_events }}`); an empty object otherwise.
    pub triggering_asset_events: serde_json::Value,
    /// The tables the try's statements read and wrote, as its task type found them (`sql`):
    /// its OpenLineage datasets beyond what its settings name.
    pub tables: Mutex<Tables>,
}

/// Tables by name as statements write them (`schema.table` or `table`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    /// Read.
    pub reads: Vec<String>,
    /// Written (inserted, updated, deleted, created, truncated).
    pub writes: Vec<String>,
}

/// How a try ended, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the value (if any) becomes the task's XCom `return_value`.
    Done(Option<serde_json::Value>),
    /// A sensor's condition is not met yet: poke again later, holding no slot meanwhile.
    NotYet(String),
}

/// Why a try did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OperatorError {
    /// Failed in a way a retry may fix (non-zero exit, 5xx, timeout, refused connection).
    #[error("{0}")]
    Retryable(String),
    /// Failed in a way no retry fixes (bad template, unknown connection): fail at once.
    #[error("{0}")]
    Fatal(String),
    /// The task asked to be skipped (bash exit code 99, a soft-failing sensor).
    #[error("skipped: {0}")]
    Skip(String),
}

impl OperatorError {
    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, OperatorError::Retryable(_))
    }
}

impl TaskContext {
    /// A renderer over this try's template context.
    pub fn renderer(&self) -> Renderer {
        Renderer::for_task(self)
    }

    /// Renders `text` and records it under `field` for the UI.
    pub fn render(&self, field: &str, text: &str) -> Result<String, OperatorError> {
        // Plain text needs no context: skip building one (most fields are plain).
        let out = if template::is_template(text) {
            self.renderer().render(text)?
        } else {
            text.to_string()
        };
        self.record(field, serde_json::Value::String(out.clone()));
        Ok(out)
    }

    /// Keeps the tables the try's statements read and wrote (for its OpenLineage datasets).
    pub fn note_tables(&self, tables: Tables) {
        if let Ok(mut t) = self.tables.lock() {
            *t = tables;
        }
    }

    /// Records a rendered field (any JSON value) for the UI.
    pub fn record(&self, field: &str, value: serde_json::Value) {
        if let Ok(mut r) = self.rendered.lock() {
            r.insert(field.to_string(), value);
        }
    }

    /// The named connection: `UPDRAFT_CONN_<ID>` from the environment, else one an admin
    /// stored in the metadata database.
    pub fn connection(&self, conn_id: &str) -> Result<Connection, OperatorError> {
        let conn = find_connection(&self.settings, &self.db_connections, conn_id)?;
        // From here on the password cannot reach the log, whatever prints it.
        if let Some(pw) = &conn.password {
            self.log.add_secret(pw.clone());
        }
        Ok(conn)
    }
}

/// The named connection among the environment's (`settings`, first, as in Airflow) and the
/// stored ones (`stored`, decrypted), for a try or for the scheduler's asset watchers.
pub fn find_connection(
    settings: &Settings,
    stored: &DbConnections,
    conn_id: &str,
) -> Result<Connection, OperatorError> {
    let uri = find_connection_uri(settings, stored, conn_id)?;
    Connection::parse(conn_id, uri).map_err(OperatorError::Fatal)
}

/// The URI of the named connection, looked up as [`find_connection`] does (notifiers take it
/// whole: a webhook's URI is the URL called).
pub fn find_connection_uri<'a>(
    settings: &'a Settings,
    stored: &'a DbConnections,
    conn_id: &str,
) -> Result<&'a str, OperatorError> {
    let key = conn_id.to_lowercase();
    match (settings.connections.get(&key), stored.get(&key)) {
        (Some(uri), _) | (None, Some(Ok(uri))) => Ok(uri),
        (None, Some(Err(e))) => Err(OperatorError::Fatal(format!("connection `{conn_id}`: {e}"))),
        (None, None) => Err(OperatorError::Fatal(format!(
            "connection `{conn_id}` is not defined: set UPDRAFT_CONN_{} to its URI or add it under Admin > Connections",
            conn_id.to_uppercase()
        ))),
    }
}

/// The stored connections, decrypted, by lower-case id (a URI that does not decrypt is its
/// error, reported only if a task names it).
pub fn decrypt_connections(
    settings: &Settings,
    rows: Vec<crate::store::ConnectionRow>,
) -> Result<DbConnections, crate::secrets::SecretError> {
    if rows.is_empty() {
        return Ok(Default::default());
    }
    let secrets = crate::secrets::SecretBox::for_settings(settings)?;
    Ok(rows
        .into_iter()
        .map(|c| {
            let uri = secrets.decrypt(&c.uri_encrypted).map_err(|e| e.to_string());
            (c.conn_id.to_lowercase(), uri)
        })
        .collect())
}

/// `type: empty`: nothing to do, so no file of its own.
pub mod empty {
    use super::{OperatorError, Outcome, TaskContext};
    use crate::dag::kinds::EmptyTask;

    /// Succeeds at once, without XCom.
    pub async fn run(_ctx: &TaskContext, _task: &EmptyTask) -> Result<Outcome, OperatorError> {
        Ok(Outcome::Done(None))
    }
}

/// Writes [`execute`] from the rows of `kinds::for_each_task_type!`: each type's operator is
/// the module named after the type, and its `run` function.
macro_rules! dispatch {
    ($(
        $(#[$doc:meta])*
        $name:ident => $variant:ident($config:ident) { $($flag:tt)* }
    ),* $(,)?) => {
        /// Runs one try of the context's task. Sensors poke once and say [`Outcome::NotYet`]
        /// when their condition is not met.
        pub async fn execute(ctx: &TaskContext) -> Result<Outcome, OperatorError> {
            match &ctx.task.kind {
                $( TaskKind::$variant(t) => $name::run(ctx, t).await, )*
            }
        }
    };
}

for_each_task_type!(dispatch);
