//! The task types: one declaration each in `for_each_task_type!`, one typed settings struct
//! each (one file per type in `kinds/`, named after the type), and the closed [`TaskKind`] enum
//! the declaration generates.
//!
//! Adding a task type `foo`:
//! 1. its row in `for_each_task_type!` below: `foo => Foo(FooTask) { flags }` (the enum
//!    variant, `TaskKind::TYPE_NAMES`, the parser's row and the operators' dispatch all come
//!    from it);
//! 2. its settings struct `FooTask` in `kinds/foo.rs` (`deny_unknown_fields`; a sensor has a
//!    `#[serde(skip)] sensor: SensorSettings` field, a Kafka type a `#[serde(skip)]
//!    record_settings: RecordSettings` one), declared and re-exported below;
//! 3. its operator `src/operators/foo.rs` with `pub async fn run(ctx: &TaskContext, task:
//!    &FooTask) -> Result<Outcome, OperatorError>`, and its `pub mod foo;` in `operators/mod.rs`;
//! 4. its minimal YAML in the table of `kinds/tests.rs` (a test fails for a type without one);
//! 5. an example using it under `dags/` or in the README.
//!
//! Checks that span several fields of one type (an `http` task needs `url` or a connection)
//! are an arm of `parse::kind::check`, when the type has any.
//!
//! Invariant: schema only. No I/O, no clients, no knowledge of operators (they use the
//! declaration through the callback macro; `dag` never imports `operators`). Structs deny
//! unknown fields so a typo is a load error. Templated fields are plain `String`s: rendering
//! happens at run time, never here.

use serde::Deserialize;

mod bash;
mod cql;
mod dur;
mod external_task_sensor;
mod file_sensor;
mod http;
mod http_sensor;
mod http_to_kafka;
mod kafka_produce;
mod kafka_sensor;
mod kafka_to_cassandra;
mod kafka_to_s3;
mod kafka_to_sql;
mod records;
mod s3;
mod s3_key_sensor;
mod sensor;
mod sql;
mod sql_to_kafka;
mod stream;
mod trigger_dag;

#[cfg(test)]
mod tests;

pub use bash::BashTask;
pub use cql::CqlTask;
pub use dur::Dur;
pub use external_task_sensor::ExternalTaskSensorTask;
pub use file_sensor::FileSensorTask;
pub use http::HttpTask;
pub use http_sensor::HttpSensorTask;
pub use http_to_kafka::{HttpToKafkaTask, Pagination};
pub use kafka_produce::KafkaProduceTask;
pub use kafka_sensor::KafkaSensorTask;
pub use kafka_to_cassandra::{ColumnSource, CqlType, KafkaToCassandraTask};
pub use kafka_to_s3::{KafkaToS3Task, ObjectFormat};
pub use kafka_to_sql::{KafkaToSqlTask, SinkMode};
pub use records::{
    AvroSchema, Flatten, Format, KeyFormat, RecordSettings, SchemaSource, SubjectStrategy,
    Transform,
};
pub use s3::{S3Operation, S3Task};
pub use s3_key_sensor::S3KeySensorTask;
pub use sensor::SensorSettings;
pub use sql::{Fetch, Script, SqlSensorTask, SqlTask};
pub use sql_to_kafka::{SourceMode, SqlToKafkaTask};
pub use stream::{StartFrom, Until};
pub use trigger_dag::TriggerDagTask;

/// The one list of task types. Each row is `type_name => Variant(ConfigStruct) { flags }`,
/// with the variant's doc comment above it; the flags are:
/// - `connections`: the type may read named connections (a worker loads the stored ones only
///   for these: bash tries are the hand-off hot path);
/// - `sensor`: the type pokes; the shared [`SensorSettings`] keys sit beside its own in YAML
///   and land in its `sensor` field;
/// - `sensor if FIELD`: as `sensor`, but the task pokes only when its bool `FIELD` is true;
/// - `nothing_to_run`: the type runs nothing, so the scheduler marks a due instance success
///   itself: it takes no slot and has no try (Airflow's `EmptyOperator`);
/// - `records`: the type reads or writes Kafka records; the shared [`RecordSettings`] keys
///   (`format`, `schema`, `transform`...) sit beside its own and land in its `record_settings`
///   field (not combined with `sensor`).
///
/// `for_each_task_type!(callback)` expands to `callback! { rows }`. Three callbacks read it:
/// `declare_task_kinds` below (the enum, names and flags), `parse::kind` (the parser table)
/// and `operators` (the dispatch `match`, to `operators::<type_name>::run`). A callback rather
/// than one macro that writes everything keeps the layers: `dag` stays pure and never names
/// `operators`, which reads the list from below.
macro_rules! for_each_task_type {
    ($callback:ident) => {
        $callback! {
            /// Runs a shell command.
            bash => Bash(BashTask) {},
            /// Does nothing; joins and placeholders.
            empty => Empty(EmptyTask) { nothing_to_run },
            /// One HTTP request.
            http => Http(HttpTask) { connections },
            /// Waits for a file or glob to exist.
            file_sensor => FileSensor(FileSensorTask) { sensor },
            /// Waits for an HTTP endpoint to answer as expected.
            http_sensor => HttpSensor(HttpSensorTask) { connections, sensor },
            /// Waits for a task (or a whole run) of another DAG to reach a state.
            external_task_sensor => ExternalTaskSensor(ExternalTaskSensorTask) { sensor },
            /// Triggers a run of another DAG, optionally waiting for it.
            trigger_dag => TriggerDag(TriggerDagTask) { sensor if wait_for_completion },
            /// Produces records to a Kafka topic.
            kafka_produce => KafkaProduce(KafkaProduceTask) { connections, records },
            /// REST ingestion: pages of a JSON API, split into records, produced to Kafka.
            http_to_kafka => HttpToKafka(HttpToKafkaTask) { connections, records },
            /// Streaming sink: Kafka -> Cassandra rows.
            kafka_to_cassandra => KafkaToCassandra(KafkaToCassandraTask) { connections, records },
            /// Streaming sink: Kafka -> time-partitioned objects.
            kafka_to_s3 => KafkaToS3(KafkaToS3Task) { connections, records },
            /// Object operations: put, get, copy, delete, list.
            s3 => S3(S3Task) { connections },
            /// Statements on Cassandra.
            cql => Cql(CqlTask) { connections },
            /// Waits until a topic holds enough (new) messages.
            kafka_sensor => KafkaSensor(KafkaSensorTask) { connections, sensor },
            /// Waits for an object or prefix.
            s3_key_sensor => S3KeySensor(S3KeySensorTask) { connections, sensor },
            /// Statements on PostgreSQL, MySQL/MariaDB or SQLite.
            sql => Sql(SqlTask) { connections },
            /// Waits until a query's first cell is truthy.
            sql_sensor => SqlSensor(SqlSensorTask) { connections, sensor },
            /// Incremental table source: new rows of a SQL table -> Kafka.
            sql_to_kafka => SqlToKafka(SqlToKafkaTask) { connections, records },
            /// Streaming sink: Kafka -> SQL table rows (insert or upsert).
            kafka_to_sql => KafkaToSql(KafkaToSqlTask) { connections, records },
        }
    };
}
pub(crate) use for_each_task_type;

/// `true` when a row's flags include `connections`.
macro_rules! reads_connections {
    () => { false };
    (connections $($rest:tt)*) => { true };
    ($other:tt $($rest:tt)*) => { reads_connections!($($rest)*) };
}

/// `true` when a row's flags include `nothing_to_run`.
macro_rules! runs_nothing {
    () => { false };
    (nothing_to_run $($rest:tt)*) => { true };
    ($other:tt $($rest:tt)*) => { runs_nothing!($($rest)*) };
}

/// The poke settings of config `$t` per a row's flags: `None` for a type that never pokes.
macro_rules! poke_settings {
    ($t:ident;) => {{
        let _ = $t;
        None
    }};
    ($t:ident; sensor if $when:ident $($rest:tt)*) => { $t.$when.then_some($t.sensor) };
    ($t:ident; sensor $($rest:tt)*) => { Some($t.sensor) };
    ($t:ident; $other:tt $($rest:tt)*) => { poke_settings!($t; $($rest)*) };
}

/// The record settings of config `$t` per a row's flags: `None` for a type without Kafka
/// records.
macro_rules! records_of {
    ($t:ident;) => {{
        let _ = $t;
        None
    }};
    ($t:ident; records $($rest:tt)*) => { Some(&mut $t.record_settings) };
    ($t:ident; $other:tt $($rest:tt)*) => { records_of!($t; $($rest)*) };
}

/// Refuses a flag that is not one of those documented on [`for_each_task_type!`], so a typo
/// in a row is a compile error rather than a type silently declared without it.
macro_rules! check_flags {
    () => {};
    (connections $(, $($rest:tt)*)?) => { check_flags!($($($rest)*)?); };
    (sensor if $when:ident $(, $($rest:tt)*)?) => { check_flags!($($($rest)*)?); };
    (sensor $(, $($rest:tt)*)?) => { check_flags!($($($rest)*)?); };
    (records $(, $($rest:tt)*)?) => { check_flags!($($($rest)*)?); };
    (nothing_to_run $(, $($rest:tt)*)?) => { check_flags!($($($rest)*)?); };
    ($($other:tt)*) => {
        compile_error!(concat!(
            "unknown task-type flag `", stringify!($($other)*),
            "`; the flags are `connections`, `sensor`, `sensor if FIELD`, `records` and `nothing_to_run`"
        ));
    };
}

/// Writes [`TaskKind`] and its per-type answers from the rows of [`for_each_task_type!`].
macro_rules! declare_task_kinds {
    ($(
        $(#[$doc:meta])*
        $name:ident => $variant:ident($config:ident) { $($flag:tt)* }
    ),* $(,)?) => {
        $( check_flags!($($flag)*); )*

        /// The task types, closed: `type:` in YAML picks the variant. Generated from the one
        /// declaration of the task types (`for_each_task_type!` in this file); parsed by hand
        /// in `parse/kind.rs`, not by serde's tagged enum, which would lose the line and column
        /// of an error.
        #[derive(Debug, Clone, PartialEq)]
        pub enum TaskKind {
            $( $(#[$doc])* $variant($config), )*
        }

        impl TaskKind {
            /// The YAML `type:` value of every task type, in declaration order, for messages
            /// and docs.
            pub const TYPE_NAMES: [&'static str; [$(stringify!($name)),*].len()] =
                [$(stringify!($name)),*];

            /// The YAML `type:` value.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( TaskKind::$variant(_) => stringify!($name), )*
                }
            }

            /// Whether the task type can read a named connection. The others never do, so a
            /// worker skips loading the stored connections for them.
            pub fn uses_connections(&self) -> bool {
                match self {
                    $( TaskKind::$variant(_) => reads_connections!($($flag)*), )*
                }
            }

            /// Whether the type runs nothing: the scheduler then marks a due instance success
            /// itself, with no try, no slot and no log.
            pub fn runs_nothing(&self) -> bool {
                match self {
                    $( TaskKind::$variant(_) => runs_nothing!($($flag)*), )*
                }
            }

            /// Poke settings when the task is a sensor: the scheduler then releases the
            /// executor slot between pokes instead of holding it.
            pub fn sensor(&self) -> Option<SensorSettings> {
                match self {
                    $( TaskKind::$variant(t) => poke_settings!(t; $($flag)*), )*
                }
            }

            /// The record settings (format, schema, transforms) of a Kafka task type.
            pub fn records_mut(&mut self) -> Option<&mut RecordSettings> {
                match self {
                    $( TaskKind::$variant(t) => records_of!(t; $($flag)*), )*
                }
            }
        }
    };
}

for_each_task_type!(declare_task_kinds);

/// `type: empty`: no settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyTask {}

// Defaults shared by several settings structs (serde's `default = "..."` takes a function).

fn yes() -> bool {
    true
}

fn one() -> u64 {
    1
}

fn kafka_default() -> String {
    "kafka_default".into()
}

fn cassandra_default() -> String {
    "cassandra_default".into()
}

fn aws_default() -> String {
    "aws_default".into()
}
