//! The table from `type:` to the typed settings struct of [`kinds`](crate::dag::kinds), and the
//! checks that span several fields of one type (an HTTP task needs `url` or a connection).
//!
//! This file owns the dispatch on task type. It must not hold settings itself: the structs in
//! `kinds.rs` are the schema. Adding a task type = one [`KindDef`] row here (a test checks the
//! table matches [`TaskKind::TYPE_NAMES`]).

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_yaml::Value;

use super::ctx::{Ctx, child};
use crate::dag::TaskKind;
use crate::dag::kinds::{
    BashTask, CqlTask, EmptyTask, ExternalTaskSensorTask, FileSensorTask, HttpSensorTask, HttpTask,
    HttpToKafkaTask, KafkaProduceTask, KafkaSensorTask, KafkaToCassandraTask, KafkaToS3Task,
    S3KeySensorTask, S3Task, TriggerDagTask,
};

/// An error from a typed struct, with the path inside the task's settings.
pub(super) type PathError = serde_path_to_error::Error<serde_yaml::Error>;

/// One task type: its `type:` name, its field names and how to build it.
pub(super) struct KindDef {
    pub(super) name: &'static str,
    /// Field names the type's struct accepts, read from its `Deserialize` impl.
    pub(super) fields: fn() -> &'static [&'static str],
    pub(super) build: fn(Value) -> Result<TaskKind, PathError>,
}

pub(super) const KINDS: &[KindDef] = &[
    KindDef { name: "bash", fields: fields_of::<BashTask>, build: |v| de(v).map(TaskKind::Bash) },
    KindDef {
        name: "empty",
        fields: fields_of::<EmptyTask>,
        build: |v| de(v).map(TaskKind::Empty),
    },
    KindDef { name: "http", fields: fields_of::<HttpTask>, build: |v| de(v).map(TaskKind::Http) },
    KindDef {
        name: "file_sensor",
        fields: fields_of::<FileSensorTask>,
        build: |v| de(v).map(TaskKind::FileSensor),
    },
    KindDef {
        name: "http_sensor",
        fields: fields_of::<HttpSensorTask>,
        build: |v| de(v).map(TaskKind::HttpSensor),
    },
    KindDef {
        name: "external_task_sensor",
        fields: fields_of::<ExternalTaskSensorTask>,
        build: |v| de(v).map(TaskKind::ExternalTaskSensor),
    },
    KindDef {
        name: "trigger_dag",
        fields: fields_of::<TriggerDagTask>,
        build: |v| de(v).map(TaskKind::TriggerDag),
    },
    KindDef {
        name: "kafka_produce",
        fields: fields_of::<KafkaProduceTask>,
        build: |v| de(v).map(TaskKind::KafkaProduce),
    },
    KindDef {
        name: "http_to_kafka",
        fields: fields_of::<HttpToKafkaTask>,
        build: |v| de(v).map(TaskKind::HttpToKafka),
    },
    KindDef {
        name: "kafka_to_cassandra",
        fields: fields_of::<KafkaToCassandraTask>,
        build: |v| de(v).map(TaskKind::KafkaToCassandra),
    },
    KindDef {
        name: "kafka_to_s3",
        fields: fields_of::<KafkaToS3Task>,
        build: |v| de(v).map(TaskKind::KafkaToS3),
    },
    KindDef { name: "s3", fields: fields_of::<S3Task>, build: |v| de(v).map(TaskKind::S3) },
    KindDef { name: "cql", fields: fields_of::<CqlTask>, build: |v| de(v).map(TaskKind::Cql) },
    KindDef {
        name: "kafka_sensor",
        fields: fields_of::<KafkaSensorTask>,
        build: |v| de(v).map(TaskKind::KafkaSensor),
    },
    KindDef {
        name: "s3_key_sensor",
        fields: fields_of::<S3KeySensorTask>,
        build: |v| de(v).map(TaskKind::S3KeySensor),
    },
];

/// The definition of a `type:` name.
pub(super) fn find(name: &str) -> Option<&'static KindDef> {
    KINDS.iter().find(|k| k.name == name)
}

fn de<T: DeserializeOwned>(v: Value) -> Result<T, PathError> {
    serde_path_to_error::deserialize(v)
}

/// The field names a struct's derived `Deserialize` passes to `deserialize_struct`. Reading them
/// from the derive (also through `#[serde(from = ...)]`) keeps one list per type, in `kinds.rs`.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

/// A deserializer that only records the field list it is asked for, then gives up.
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Rewords serde's message for users, as the end of a sentence starting with the field's name:
/// "invalid type: integer `5`, expected a string" -> " must be a string, not the number `5`".
pub(super) fn serde_message(msg: &str) -> String {
    let parsed = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "));
    let Some((found, expected)) = parsed else { return format!(": {msg}") };
    let found = match found {
        "sequence" => "a list".to_string(),
        "map" => "a mapping".to_string(),
        "unit value" => "empty (null)".to_string(),
        f => match f.split_once(' ') {
            Some(("integer" | "floating", rest)) => {
                format!("the number {}", rest.trim_start_matches("point "))
            }
            Some(("string", rest)) => format!("the text {rest}"),
            Some(("boolean", rest)) => rest.to_string(),
            _ => f.to_string(),
        },
    };
    let expected = match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        "a map" => "a mapping",
        e if e.starts_with("struct ") => "a mapping",
        e => e,
    };
    let quote = if expected == "a string" && !found.starts_with('a') && !found.starts_with("empty")
    {
        "; quote it to make it one"
    } else {
        ""
    };
    format!(" must be {expected}, not {found}{quote}")
}

/// Checks across fields of one type, and normalizes what has one spelling (HTTP methods).
pub(super) fn check(cx: &mut Ctx, mut kind: TaskKind, path: &[String]) -> Option<TaskKind> {
    let before = cx.errors.len();
    let type_name = kind.type_name();
    match &mut kind {
        TaskKind::Http(h) => check_http(cx, h, type_name, path),
        TaskKind::HttpSensor(s) => check_http(cx, &mut s.request, type_name, path),
        TaskKind::HttpToKafka(t) => {
            let mut req = t.request();
            check_http(cx, &mut req, type_name, path);
            super::kind_streaming::check_http_to_kafka(cx, t, path);
        }
        TaskKind::KafkaProduce(t) => super::kind_streaming::check_produce(cx, t, path),
        TaskKind::KafkaToCassandra(t) => super::kind_streaming::check_to_cassandra(cx, t, path),
        TaskKind::KafkaToS3(t) => super::kind_streaming::check_to_s3(cx, t, path),
        TaskKind::S3(t) => super::kind_streaming::check_s3(cx, t, path),
        TaskKind::Cql(t) if t.statements.is_empty() => {
            let msg = format!("task `{}` (cql) has no `statements`", path[1]);
            cx.at_key(&child(path, "statements"), msg);
        }
        _ => {}
    }
    (cx.errors.len() == before).then_some(kind)
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn check_http(cx: &mut Ctx, h: &mut HttpTask, type_name: &str, path: &[String]) {
    let id = &path[1];
    match (&h.url, &h.connection, &h.endpoint) {
        (Some(_), Some(_), _) => {
            let msg = format!(
                "task `{id}` ({type_name}) sets both `url` and `connection`; use `url` alone, or \
                 `connection` with `endpoint`"
            );
            cx.at_key(&child(path, "url"), msg);
        }
        (Some(_), None, Some(_)) => {
            let msg = format!(
                "`endpoint` of task `{id}` needs a `connection`; with `url`, put the whole \
                 address in `url`"
            );
            cx.at_key(&child(path, "endpoint"), msg);
        }
        (None, None, _) | (None, Some(_), None) => {
            let msg = format!(
                "task `{id}` ({type_name}) needs either `url`, or `connection` and `endpoint`"
            );
            cx.at_key(path, msg);
        }
        _ => {}
    }
    let method = h.method.to_ascii_uppercase();
    if METHODS.contains(&method.as_str()) {
        h.method = method;
    } else {
        let msg =
            format!("`method` of task `{id}` is `{}`; use one of {}", h.method, METHODS.join(", "));
        cx.at_value(&child(path, "method"), msg);
    }
    for code in &h.expected_status {
        if !(100..=599).contains(code) {
            let msg = format!("`expected_status` of task `{id}` has {code}, not an HTTP status");
            cx.at_value(&child(path, "expected_status"), msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_type_names() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        assert_eq!(names, TaskKind::TYPE_NAMES);
    }

    #[test]
    fn fields_are_read_from_the_structs() {
        let bash = (find("bash").map(|k| k.fields)).map(|f| f()).unwrap_or_default();
        assert!(bash.contains(&"command") && bash.contains(&"env"), "{bash:?}");
        let sensor = (find("file_sensor").map(|k| k.fields)).map(|f| f()).unwrap_or_default();
        assert!(sensor.contains(&"path") && sensor.contains(&"poke_interval"), "{sensor:?}");
        assert_eq!(find("empty").map(|k| (k.fields)().len()), Some(0));
    }

    #[test]
    fn serde_messages_are_reworded() {
        let cases = [
            (
                "invalid type: integer `5`, expected a string",
                " must be a string, not the number `5`; quote it to make it one",
            ),
            ("invalid type: sequence, expected a string", " must be a string, not a list"),
            (
                "invalid type: string \"x\", expected u16",
                " must be a whole number (0 or more), not the text \"x\"",
            ),
            ("invalid type: map, expected a boolean", " must be true or false, not a mapping"),
            ("`5 mins` is not a duration", ": `5 mins` is not a duration"),
        ];
        for (input, want) in cases {
            assert_eq!(serde_message(input), want, "{input}");
        }
    }
}
