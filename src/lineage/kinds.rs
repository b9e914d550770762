//! What each task type reads and writes: one impl of [`KnowsDatasets`] per type, in the order
//! of `for_each_task_type!` (a type without one does not compile, see `datasets::of`).
//!
//! Types that move data between named systems name both ends; the others know nothing an
//! OpenLineage consumer could place: a shell command, an HTTP call (a REST API is no dataset
//! of the naming spec), a sensor of files or HTTP, a trigger. An `sql` task's tables are those
//! its statements name, parsed as they run (its START names none, its end names them); `cql`
//! statements and `sql_sensor` queries are not parsed, so they name none (an honest empty
//! answer rather than a guess).
//!
//! Invariant: naming only, through `datasets.rs`'s rules; nothing here reads a system.

use super::datasets::{Cx, Datasets, KnowsDatasets};
use crate::dag::kinds::{
    BashTask, CqlTask, EmptyTask, ExternalTaskSensorTask, FileSensorTask, HttpSensorTask, HttpTask,
    HttpToKafkaTask, KafkaProduceTask, KafkaSensorTask, KafkaToCassandraTask, KafkaToS3Task,
    KafkaToSqlTask, S3KeySensorTask, S3Operation, S3Task, SqlSensorTask, SqlTask, SqlToKafkaTask,
    TriggerDagTask,
};

impl KnowsDatasets for BashTask {}
impl KnowsDatasets for EmptyTask {}
impl KnowsDatasets for HttpTask {}
impl KnowsDatasets for FileSensorTask {}
impl KnowsDatasets for HttpSensorTask {}
impl KnowsDatasets for ExternalTaskSensorTask {}
impl KnowsDatasets for TriggerDagTask {}

/// Writes its records to the topic.
impl KnowsDatasets for KafkaProduceTask {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let input = self.file.as_deref().and_then(|f| cx.file(f));
        let output = cx.topic(&self.connection, &self.topic, &self.record_settings);
        Datasets::new([input], [output])
    }
}

/// A REST API (no dataset in the naming spec) into the topic.
impl KnowsDatasets for HttpToKafkaTask {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let output = cx.topic(&self.kafka_connection, &self.topic, &self.record_settings);
        Datasets::new([], [output])
    }
}

/// The topic into the table, whose columns are the mapping's (with the types it names).
impl KnowsDatasets for KafkaToCassandraTask {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let input = cx.topic(&self.kafka_connection, &self.topic, &self.record_settings);
        let fields = self
            .columns
            .iter()
            .map(|(name, src)| {
                let typ = src.cql_type.map(|t| format!("{t:?}").to_lowercase());
                (name.clone(), typ)
            })
            .collect();
        let output = cx.cassandra(&self.cassandra_connection, &self.table);
        Datasets::new([input], [output.map(|d| d.with_fields(fields))])
    }
}

/// The topic into objects under the URL's prefix.
impl KnowsDatasets for KafkaToS3Task {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let input = cx.topic(&self.kafka_connection, &self.topic, &self.record_settings);
        Datasets::new([input], [cx.object(&self.url)])
    }
}

/// Per operation: put reads local files and writes the object, get the reverse, copy reads
/// one object and writes another, delete writes (removes) what it names, list reads a prefix.
impl KnowsDatasets for S3Task {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let (source, dest, url) =
            (self.source.as_deref(), self.dest.as_deref(), self.url.as_deref());
        match self.operation {
            S3Operation::Put => {
                Datasets::new([source.and_then(|s| cx.file(s))], [dest.and_then(|d| cx.object(d))])
            }
            S3Operation::Get => {
                Datasets::new([source.and_then(|s| cx.object(s))], [dest.and_then(|d| cx.file(d))])
            }
            S3Operation::Copy => Datasets::new(
                [source.and_then(|s| cx.object(s))],
                [dest.and_then(|d| cx.object(d))],
            ),
            S3Operation::Delete => Datasets::new([], [url.and_then(|u| cx.object(u))]),
            S3Operation::List => Datasets::new([url.and_then(|u| cx.object(u))], []),
        }
    }
}

/// Statements, not parsed for tables: nothing named.
impl KnowsDatasets for CqlTask {}

/// Watches the topic.
impl KnowsDatasets for KafkaSensorTask {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let input = cx.topic(&self.connection, &self.topic, &Default::default());
        Datasets::new([input], [])
    }
}

/// Watches the object or prefix.
impl KnowsDatasets for S3KeySensorTask {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        Datasets::new([cx.object(&self.key)], [])
    }
}

/// The tables its statements read and wrote, parsed from them as they ran
/// (`operators::sql::tables`), named on the task's connection.
impl KnowsDatasets for SqlTask {
    fn reported(&self, cx: &Cx<'_>) -> Datasets {
        let t = cx.tables();
        let on = |name: &String| cx.sql(&self.connection, name);
        Datasets::new(t.reads.iter().map(on), t.writes.iter().map(on))
    }
}
/// A query, not parsed for tables: nothing named.
impl KnowsDatasets for SqlSensorTask {}

/// The table (with the columns the task selects, when it names them) into the topic.
impl KnowsDatasets for SqlToKafkaTask {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let fields = self.columns.iter().flatten().map(|c| (c.clone(), None)).collect();
        let input = cx.sql(&self.sql_connection, &self.table).map(|d| d.with_fields(fields));
        let output = cx.topic(&self.kafka_connection, &self.topic, &self.record_settings);
        Datasets::new([input], [output])
    }
}

/// The topic into the table, whose columns are the mapping's.
impl KnowsDatasets for KafkaToSqlTask {
    fn datasets(&self, cx: &Cx<'_>) -> Datasets {
        let input = cx.topic(&self.kafka_connection, &self.topic, &self.record_settings);
        let fields = self.columns.keys().map(|c| (c.clone(), None)).collect();
        let output = cx.sql(&self.sql_connection, &self.table).map(|d| d.with_fields(fields));
        Datasets::new([input], [output])
    }
}
