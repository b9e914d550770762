//! `type: sql` and `type: sql_sensor`: statements on PostgreSQL, MySQL/MariaDB or SQLite.
//!
//! Schema only. Exactly one of `sql` and `script`, the one-statement rule of `sql`, and the
//! names of `parameters`/`identifiers` are checked in `parse/kind_sql.rs`; the text is
//! rendered, split for the connection's dialect and bound at run time (`operators::sql`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::SensorSettings;

/// `type: sql`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlTask {
    /// A SQL connection (`postgres://`, `postgresql://`, `mysql://`, `mariadb://`, `sqlite://`).
    pub connection: String,
    /// Exactly one statement (templated; values become bound parameters).
    pub sql: Option<String>,
    /// Several statements, inline or `{file: path}` next to the DAG file, split for the
    /// connection's dialect.
    pub script: Option<Script>,
    /// Values bound to `:name` in the statements; strings are templated.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Names (tables, columns, schemas) written as `:!name`: templated, checked to be plain
    /// identifiers (optionally `schema.name`) and quoted for the dialect.
    #[serde(default)]
    pub identifiers: BTreeMap<String, String>,
    /// Each statement commits on its own instead of one transaction for the task.
    #[serde(default)]
    pub autocommit: bool,
    /// What the last statement's rows become: default `all` for `sql`, `none` for `script`.
    pub fetch: Option<Fetch>,
    /// A file in the run's folder (templated, relative) that receives every row as JSON lines;
    /// the XCom then says where and how many.
    pub output: Option<String>,
}

/// `script:` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Script {
    /// The statements themselves (templated).
    Inline(String),
    /// A file of statements, relative to the DAG file's folder (read at run time, templated).
    File {
        /// Its path.
        file: String,
    },
}

/// `fetch:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fetch {
    /// No rows in the XCom.
    None,
    /// The first row (an object, or null).
    One,
    /// Every row, up to the XCom bound.
    All,
}

/// `type: sql_sensor`: pokes a query until its first cell is truthy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSensorTask {
    /// A SQL connection, as for `sql`.
    pub connection: String,
    /// One query (templated); done when the first column of its first row is truthy (not
    /// NULL, false, 0, an empty string or "0"/"false"); no row means not yet.
    pub sql: String,
    /// Values bound to `:name`, as for `sql`.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Names written as `:!name`, as for `sql`.
    #[serde(default)]
    pub identifiers: BTreeMap<String, String>,
    /// Poke settings (their keys sit beside the query's).
    #[serde(skip)]
    pub sensor: SensorSettings,
}
