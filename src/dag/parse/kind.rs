//! The table from `type:` to the typed settings struct of [`kinds`](crate::dag::kinds), and the
//! checks that span several fields of one type (an HTTP task needs `url` or a connection).
//!
//! This file owns the dispatch on task type. Its table ([`KINDS`]) is generated from the one
//! declaration of the task types, `kinds::for_each_task_type!`, so it cannot drift from
//! `TaskKind`. It must not hold settings itself: the structs in `kinds/` are the schema. Each
//! struct is deserialized from the task's own YAML mapping through `serde_path_to_error`, so an
//! error keeps the path of its field, hence its line and column.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_yaml::{Mapping, Value};

use super::ctx::{Ctx, child};
use crate::dag::TaskKind;
use crate::dag::kinds::{
    BashTask, CqlTask, EmptyTask, ExternalTaskSensorTask, FileSensorTask, HttpSensorTask, HttpTask,
    HttpToKafkaTask, KafkaProduceTask, KafkaSensorTask, KafkaToCassandraTask, KafkaToS3Task,
    KafkaToSqlTask, RecordSettings, S3KeySensorTask, S3Task, SensorSettings, SqlSensorTask,
    SqlTask, SqlToKafkaTask, TriggerDagTask, for_each_task_type,
};

/// An error from a typed struct, with the path inside the task's settings.
pub(super) type PathError = serde_path_to_error::Error<serde_yaml::Error>;

/// One task type: its `type:` name, its field names and how to build it.
pub(super) struct KindDef {
    pub(super) name: &'static str,
    /// Field names the type accepts, read from its struct's `Deserialize` impl (and, for a
    /// sensor, from [`SensorSettings`]'s, for a Kafka type from [`RecordSettings`]').
    pub(super) fields: fn() -> Vec<&'static str>,
    pub(super) build: fn(Value) -> Result<TaskKind, PathError>,
}

/// `true` when a row's flags make the type a sensor (`sensor` or `sensor if ...`).
macro_rules! is_sensor {
    () => { false };
    (sensor $($rest:tt)*) => { true };
    ($other:tt $($rest:tt)*) => { is_sensor!($($rest)*) };
}

/// `true` when a row's flags include `records`.
macro_rules! has_records {
    () => { false };
    (records $($rest:tt)*) => { true };
    ($other:tt $($rest:tt)*) => { has_records!($($rest)*) };
}

/// Builds a row's variant: a sensor's struct and its [`SensorSettings`] come from their own
/// keys of the same mapping, and the settings land in the struct's `sensor` field.
macro_rules! build_kind {
    ($v:ident, $variant:ident, $config:ident;) => { de::<$config>($v).map(TaskKind::$variant) };
    ($v:ident, $variant:ident, $config:ident; sensor $($rest:tt)*) => {
        de_split::<$config, SensorSettings>($v).map(|(mut config, sensor)| {
            config.sensor = sensor;
            TaskKind::$variant(config)
        })
    };
    ($v:ident, $variant:ident, $config:ident; records $($rest:tt)*) => {
        de_split::<$config, RecordSettings>($v).map(|(mut config, records)| {
            config.record_settings = records;
            TaskKind::$variant(config)
        })
    };
    ($v:ident, $variant:ident, $config:ident; $other:tt $($rest:tt)*) => {
        build_kind!($v, $variant, $config; $($rest)*)
    };
}

/// Writes [`KINDS`] from the rows of `for_each_task_type!`.
macro_rules! kind_table {
    ($(
        $(#[$doc:meta])*
        $name:ident => $variant:ident($config:ident) { $($flag:tt)* }
    ),* $(,)?) => {
        /// Every task type, in declaration order.
        pub(super) const KINDS: &[KindDef] = &[$(
            KindDef {
                name: stringify!($name),
                fields: || fields_with(
                    fields_of::<$config>(),
                    is_sensor!($($flag)*),
                    has_records!($($flag)*),
                ),
                build: |v| build_kind!(v, $variant, $config; $($flag)*),
            },
        )*];
    };
}

for_each_task_type!(kind_table);

/// The definition of a `type:` name.
pub(super) fn find(name: &str) -> Option<&'static KindDef> {
    KINDS.iter().find(|k| k.name == name)
}

/// One task's `type:` and settings (no common keys such as `retries`), through the same rows
/// as DAG files, for code that builds a single task (tests, tools). Errors carry no position
/// and the cross-field checks do not run: DAG files go through `parse_dag_str` for both.
impl<'de> serde::Deserialize<'de> for TaskKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Mapping(mut map) = Value::deserialize(d)? else {
            return Err(de::Error::custom("a task type is a mapping with a `type`"));
        };
        let name = match map.remove("type") {
            Some(Value::String(name)) => name,
            _ => return Err(de::Error::missing_field("type")),
        };
        let def =
            find(&name).ok_or_else(|| de::Error::unknown_variant(&name, &TaskKind::TYPE_NAMES))?;
        (def.build)(Value::Mapping(map)).map_err(de::Error::custom)
    }
}

fn de<T: DeserializeOwned>(v: Value) -> Result<T, PathError> {
    serde_path_to_error::deserialize(v)
}

/// A struct's fields, followed by the sensor settings' when the type is a sensor and the record
/// settings' when it has Kafka records.
fn fields_with(own: &'static [&'static str], sensor: bool, records: bool) -> Vec<&'static str> {
    let mut fields = own.to_vec();
    if sensor {
        fields.extend_from_slice(fields_of::<SensorSettings>());
    }
    if records {
        fields.extend_from_slice(fields_of::<RecordSettings>());
    }
    fields
}

/// A type's own struct from its own keys and a shared settings struct `S` (the poke or the
/// record settings) from `S`'s keys of the same mapping. When both have an error, the one
/// written first in the file is returned, as one struct would have done (a missing field
/// counts as written last).
fn de_split<T: DeserializeOwned, S: DeserializeOwned + Default>(
    v: Value,
) -> Result<(T, S), PathError> {
    let Value::Mapping(map) = v else { return de::<T>(v).map(|t| (t, S::default())) };
    let poke_keys = fields_of::<S>();
    let is_poke = |k: &Value| k.as_str().is_some_and(|k| poke_keys.contains(&k));
    let order: Vec<String> = map.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect();
    let (mut own, mut poke) = (Mapping::new(), Mapping::new());
    for (k, val) in map {
        let part = if is_poke(&k) { &mut poke } else { &mut own };
        part.insert(k, val);
    }
    match (de::<T>(Value::Mapping(own)), de::<S>(Value::Mapping(poke))) {
        (Ok(t), Ok(s)) => Ok((t, s)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(a), Err(b)) => {
            let written_at = |e: &PathError| {
                let key = e.path().iter().next().map(|seg| seg.to_string());
                key.and_then(|k| order.iter().position(|o| *o == k)).unwrap_or(usize::MAX)
            };
            Err(if written_at(&b) < written_at(&a) { b } else { a })
        }
    }
}

/// The field names a struct's derived `Deserialize` passes to `deserialize_struct`. Reading them
/// from the derive (also through `#[serde(from = ...)]`) keeps one list per type, in `kinds/`.
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
    if let Some(records) = kind.records_mut() {
        super::kind_records::check(cx, records, type_name, path);
    }
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
        TaskKind::Sql(t) => super::kind_sql::check_sql(cx, t, path),
        TaskKind::SqlSensor(t) => super::kind_sql::check_sensor(cx, t, path),
        TaskKind::SqlToKafka(t) => super::kind_sql_kafka::check_sql_to_kafka(cx, t, path),
        TaskKind::KafkaToSql(t) => super::kind_sql_kafka::check_kafka_to_sql(cx, t, path),
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
    fn fields_are_read_from_the_structs() {
        let bash = (find("bash").map(|k| k.fields)).map(|f| f()).unwrap_or_default();
        assert!(bash.contains(&"command") && bash.contains(&"env"), "{bash:?}");
        let sensor = (find("file_sensor").map(|k| k.fields)).map(|f| f()).unwrap_or_default();
        assert!(sensor.contains(&"path") && sensor.contains(&"poke_interval"), "{sensor:?}");
        assert_eq!(find("empty").map(|k| (k.fields)().len()), Some(0));
    }

    #[test]
    fn one_task_deserializes_through_the_same_rows() {
        let kind: TaskKind =
            serde_yaml::from_str("type: file_sensor\npath: /x\npoke_interval: 5").expect("valid");
        let sensor = kind.sensor().expect("a sensor");
        assert_eq!(sensor.poke_interval, std::time::Duration::from_secs(5));
        let typo = serde_yaml::from_str::<TaskKind>("type: file_sensor\npath: /x\npoke: 5");
        assert!(typo.is_err_and(|e| e.to_string().contains("unknown field `poke`")));
        let unknown = serde_yaml::from_str::<TaskKind>("type: bassh\ncommand: x");
        assert!(unknown.is_err_and(|e| e.to_string().contains("unknown variant `bassh`")));
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
