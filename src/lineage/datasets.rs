//! Datasets: what a try reads and writes, named per the OpenLineage naming spec
//! (<https://openlineage.io/docs/spec/naming>), and the one dispatch over the task types.
//!
//! Each task type says what it reads and writes once, as its impl of [`KnowsDatasets`] in
//! `kinds.rs`; [`of`] is generated from the task-type list (`for_each_task_type!`), so a type
//! declared without an impl does not compile. The naming rules are the functions here, pure
//! over a parsed connection:
//! - Kafka: namespace `kafka://{host}:{port}` of the first bootstrap broker, name the topic;
//! - Cassandra: `cassandra://{host}:{port}` of the connection's node, name `keyspace.table`;
//! - S3: `s3://{bucket}`, name the key or prefix; a `file://` URL or a local path: namespace
//!   `file`, name the absolute path;
//! - PostgreSQL: `postgres://{host}:{port}`, name `database.schema.table` (schema `public`
//!   when the table names none); MySQL/MariaDB: `mysql://{host}:{port}`, name
//!   `database.table`; SQLite (not in the spec): namespace `file`, name `{database file}.{table}`.
//!
//! Invariant: a dataset whose namespace or name cannot be known — a connection that is not
//! defined or names no host, a template that does not render, a relative path, a glob, a table
//! without a database — is left out, never guessed. No I/O: the connection URIs are the ones
//! the try already holds.

use serde_json::{Value, json};

use super::event::{Ids, SCHEMA};
use crate::dag::TaskKind;
use crate::dag::kinds::{Format, RecordSettings, for_each_task_type};
use crate::dag::sql_text::Dialect;
use crate::operators::{Connection, TaskContext, find_connection, template};

/// One dataset, with the columns the task knows (the `schema` facet) when it knows any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// The data source (`kafka://127.0.0.1:19092`).
    pub namespace: String,
    /// The dataset in it (a topic, `keyspace.table`, an object key).
    pub name: String,
    /// Column names, and their types where known.
    pub fields: Vec<(String, Option<String>)>,
}

/// What a try reads and writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Datasets {
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<Dataset>,
}

impl Datasets {
    /// Adds `more`'s datasets that are not here yet.
    pub fn merge(&mut self, more: Datasets) {
        for (have, new) in [(&mut self.inputs, more.inputs), (&mut self.outputs, more.outputs)] {
            for d in new {
                if !have.iter().any(|h| h.namespace == d.namespace && h.name == d.name) {
                    have.push(d);
                }
            }
        }
    }

    /// Datasets from the ones that could be named.
    pub fn new(
        inputs: impl IntoIterator<Item = Option<Dataset>>,
        outputs: impl IntoIterator<Item = Option<Dataset>>,
    ) -> Datasets {
        Datasets {
            inputs: inputs.into_iter().flatten().collect(),
            outputs: outputs.into_iter().flatten().collect(),
        }
    }
}

impl Dataset {
    fn new(namespace: String, name: String) -> Dataset {
        Dataset { namespace, name, fields: Vec::new() }
    }

    /// With the columns `fields` (none: no schema facet).
    pub fn with_fields(mut self, fields: Vec<(String, Option<String>)>) -> Dataset {
        self.fields = fields;
        self
    }

    pub(super) fn to_json(&self, ids: &Ids) -> Value {
        let mut d = json!({ "namespace": self.namespace, "name": self.name, "facets": {} });
        if !self.fields.is_empty() {
            let fields: Vec<Value> = self
                .fields
                .iter()
                .map(|(name, typ)| match typ {
                    Some(t) => json!({ "name": name, "type": t }),
                    None => json!({ "name": name }),
                })
                .collect();
            d["facets"]["schema"] = ids.schema_facet(fields);
        }
        d
    }
}

impl Ids {
    fn schema_facet(&self, fields: Vec<Value>) -> Value {
        let mut f = json!({ "fields": fields });
        f["_producer"] = json!(self.producer());
        f["_schemaURL"] = json!(SCHEMA);
        f
    }
}

/// What each task type reads and writes; the default is nothing known.
pub(super) trait KnowsDatasets {
    /// What its settings name, known before the try runs (its START names them).
    fn datasets(&self, _cx: &Cx<'_>) -> Datasets {
        Datasets::default()
    }

    /// What the try found out while it ran (its end adds them).
    fn reported(&self, _cx: &Cx<'_>) -> Datasets {
        Datasets::default()
    }
}

/// What a task type's impl may use: the try's templates and connections.
pub(super) struct Cx<'a> {
    ctx: &'a TaskContext,
}

impl Cx<'_> {
    /// `text` rendered as the operator renders it; None when it does not render.
    pub(super) fn text(&self, text: &str) -> Option<String> {
        if !template::is_template(text) {
            return Some(text.to_string());
        }
        self.ctx.renderer().render(text).ok()
    }

    /// The named connection, as the operator finds it; None when it is not defined.
    pub(super) fn connection(&self, conn_id: &str) -> Option<Connection> {
        let ctx = self.ctx;
        find_connection(&ctx.settings, &ctx.db_connections, conn_id).ok()
    }

    /// Topic `topic` (templated) of Kafka connection `conn_id`, with the fields of its Avro
    /// schema when `records` has one.
    pub(super) fn topic(
        &self,
        conn_id: &str,
        topic: &str,
        records: &RecordSettings,
    ) -> Option<Dataset> {
        let conn = self.connection(conn_id)?;
        Some(kafka(&conn, &self.text(topic)?)?.with_fields(avro_fields(records)))
    }

    /// Table `table` (templated) of Cassandra connection `conn_id`.
    pub(super) fn cassandra(&self, conn_id: &str, table: &str) -> Option<Dataset> {
        cassandra(&self.connection(conn_id)?, &self.text(table)?)
    }

    /// Table `table` (templated) of SQL connection `conn_id`.
    pub(super) fn sql(&self, conn_id: &str, table: &str) -> Option<Dataset> {
        sql(&self.connection(conn_id)?, &self.text(table)?)
    }

    /// The object or prefix at URL `url` (templated).
    pub(super) fn object(&self, url: &str) -> Option<Dataset> {
        object(&self.text(url)?)
    }

    /// The tables the try's statements read and wrote, as its operator noted them.
    pub(super) fn tables(&self) -> crate::operators::Tables {
        self.ctx.tables.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The local file at `path` (templated): absolute and not a glob only.
    pub(super) fn file(&self, path: &str) -> Option<Dataset> {
        let path = self.text(path)?;
        let plain = path.starts_with('/') && !path.contains(['*', '?', '[']);
        plain.then(|| Dataset::new("file".into(), path))
    }
}

/// The fields of an Avro record schema (name and Avro type), when `records` writes or reads
/// Avro with a schema the task names.
fn avro_fields(records: &RecordSettings) -> Vec<(String, Option<String>)> {
    if records.format != Format::Avro {
        return Vec::new();
    }
    let Some(schema) = records.schema.as_ref().and_then(|s| s.parsed()) else {
        return Vec::new();
    };
    let Ok(Value::Object(record)) = serde_json::to_value(&schema.schema) else {
        return Vec::new();
    };
    let fields = record.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
    fields
        .iter()
        .filter_map(|f| {
            let name = f.get("name")?.as_str()?.to_string();
            let typ = match f.get("type") {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Array(_)) => "union".into(),
                Some(Value::Object(t)) => {
                    let logical = t.get("logicalType").and_then(Value::as_str);
                    logical.or(t.get("type").and_then(Value::as_str)).unwrap_or("record").into()
                }
                _ => return Some((name, None)),
            };
            Some((name, Some(typ)))
        })
        .collect()
}

/// `host:port` of a connection, with the scheme's default port.
fn authority(conn: &Connection, default_port: u16) -> Option<String> {
    let host = conn.host.as_deref().filter(|h| !h.is_empty())?;
    Some(format!("{host}:{}", conn.port.unwrap_or(default_port)))
}

/// A topic of a `kafka://` connection: the first bootstrap broker names the cluster.
pub fn kafka(conn: &Connection, topic: &str) -> Option<Dataset> {
    let broker = match conn.extra.get("bootstrap.servers") {
        Some(list) => {
            let first = list.split(',').map(str::trim).find(|b| !b.is_empty())?;
            let first = first.rsplit("://").next().unwrap_or(first);
            if first.contains(':') { first.to_string() } else { format!("{first}:9092") }
        }
        None => authority(conn, 9092)?,
    };
    (!topic.is_empty()).then(|| Dataset::new(format!("kafka://{broker}"), topic.to_string()))
}

/// `keyspace.table` (or `table` in the connection's keyspace) of a `cassandra://` connection.
pub fn cassandra(conn: &Connection, table: &str) -> Option<Dataset> {
    let name = match table.split_once('.') {
        Some(_) => table.to_string(),
        None => format!("{}.{table}", conn.schema.as_deref().filter(|k| !k.is_empty())?),
    };
    Some(Dataset::new(format!("cassandra://{}", authority(conn, 9042)?), name))
}

/// `table` or `schema.table` of a PostgreSQL, MySQL/MariaDB or SQLite connection.
pub fn sql(conn: &Connection, table: &str) -> Option<Dataset> {
    if table.is_empty() {
        return None;
    }
    let database = conn.schema.as_deref().filter(|d| !d.is_empty());
    let (namespace, name) = match Dialect::from_scheme(&conn.conn_type)? {
        Dialect::Postgres => {
            let name = match table.matches('.').count() {
                0 => format!("{}.public.{table}", database?),
                1 => format!("{}.{table}", database?),
                _ => table.to_string(),
            };
            (format!("postgres://{}", authority(conn, 5432)?), name)
        }
        Dialect::MySql => {
            let name = match table.split_once('.') {
                Some(_) => table.to_string(),
                None => format!("{}.{table}", database?),
            };
            (format!("mysql://{}", authority(conn, 3306)?), name)
        }
        // The path only when it is absolute (`sqlite:///data/x.db`): a relative one depends
        // on the process's folder.
        Dialect::Sqlite => match (&conn.host, database) {
            (None, Some(path)) if path != ":memory:" => ("file".into(), format!("/{path}.{table}")),
            _ => return None,
        },
    };
    Some(Dataset::new(namespace, name))
}

/// An object or prefix URL: `s3://bucket/key` (namespace `s3://bucket`, name the key) or
/// `file:///path` (namespace `file`, name the path).
pub fn object(url: &str) -> Option<Dataset> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return None;
        }
        let key = if key.is_empty() { "/" } else { key };
        return Some(Dataset::new(format!("s3://{bucket}"), key.to_string()));
    }
    let path = url.strip_prefix("file://")?;
    path.starts_with('/').then(|| Dataset::new("file".into(), path.to_string()))
}

/// Writes [`of`] from the rows of `kinds::for_each_task_type!`: each type's impl of
/// [`KnowsDatasets`] answers for its tasks.
macro_rules! datasets_of {
    ($(
        $(#[$doc:meta])*
        $name:ident => $variant:ident($config:ident) { $($flag:tt)* }
    ),* $(,)?) => {
        /// What the context's try reads and writes, as far as its task type knows.
        pub(super) fn of(ctx: &TaskContext) -> Datasets {
            let cx = Cx { ctx };
            match &ctx.task.kind {
                $( TaskKind::$variant(t) => t.datasets(&cx), )*
            }
        }

        /// What the context's try found out it read and wrote while it ran.
        pub(super) fn reported(ctx: &TaskContext) -> Datasets {
            let cx = Cx { ctx };
            match &ctx.task.kind {
                $( TaskKind::$variant(t) => t.reported(&cx), )*
            }
        }
    };
}

for_each_task_type!(datasets_of);

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(uri: &str) -> Connection {
        Connection::parse("c", uri).unwrap()
    }

    fn named(d: Option<Dataset>) -> Option<(String, String)> {
        d.map(|d| (d.namespace, d.name))
    }

    fn pair(ns: &str, name: &str) -> Option<(String, String)> {
        Some((ns.to_string(), name.to_string()))
    }

    #[test]
    fn kafka_topics_are_named_by_their_first_broker() {
        let d = kafka(&conn("kafka://127.0.0.1:19092"), "users");
        assert_eq!(named(d), pair("kafka://127.0.0.1:19092", "users"));
        let d = kafka(&conn("kafka://h"), "t");
        assert_eq!(named(d), pair("kafka://h:9092", "t"));
        let d = kafka(&conn("kafka://u:p@x?bootstrap.servers=b1:1,b2:2"), "t");
        assert_eq!(named(d), pair("kafka://b1:1", "t"));
        assert_eq!(kafka(&conn("kafka:///"), "t"), None, "no broker, no dataset");
    }

    #[test]
    fn cassandra_tables_need_a_keyspace() {
        let c = conn("cassandra://127.0.0.1:19042/ks");
        assert_eq!(named(cassandra(&c, "t")), pair("cassandra://127.0.0.1:19042", "ks.t"));
        assert_eq!(named(cassandra(&c, "o.t")), pair("cassandra://127.0.0.1:19042", "o.t"));
        let c = conn("cassandra://db");
        assert_eq!(named(cassandra(&c, "a.b")), pair("cassandra://db:9042", "a.b"));
        assert_eq!(cassandra(&c, "b"), None);
    }

    #[test]
    fn sql_tables_per_dialect() {
        let pg = conn("postgres://u:p@127.0.0.1:54329/shop");
        assert_eq!(
            named(sql(&pg, "orders")),
            pair("postgres://127.0.0.1:54329", "shop.public.orders")
        );
        assert_eq!(named(sql(&pg, "mart.o")), pair("postgres://127.0.0.1:54329", "shop.mart.o"));
        assert_eq!(named(sql(&pg, "db2.mart.o")), pair("postgres://127.0.0.1:54329", "db2.mart.o"));
        assert_eq!(sql(&conn("postgres://u@h"), "t"), None, "no database named");
        let my = conn("mysql://u:p@127.0.0.1/shop");
        assert_eq!(named(sql(&my, "orders")), pair("mysql://127.0.0.1:3306", "shop.orders"));
        assert_eq!(named(sql(&conn("mariadb://h:1"), "d.t")), pair("mysql://h:1", "d.t"));
        let lite = conn("sqlite:///data/x.db");
        assert_eq!(named(sql(&lite, "t")), pair("file", "/data/x.db.t"));
        assert_eq!(sql(&conn("sqlite://rel.db"), "t"), None);
        assert_eq!(sql(&conn("oracle://h/d"), "t"), None);
    }

    #[test]
    fn objects_and_files() {
        assert_eq!(named(object("s3://b/p/k.json")), pair("s3://b", "p/k.json"));
        assert_eq!(named(object("s3://b")), pair("s3://b", "/"));
        assert_eq!(named(object("file:///tmp/x")), pair("file", "/tmp/x"));
        assert_eq!(object("s3:///k"), None);
        assert_eq!(object("gs://b/k"), None);
    }
}
