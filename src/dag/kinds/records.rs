//! [`RecordSettings`]: how every Kafka task reads or writes its records — `format` (JSON or
//! Avro), the Avro `schema`, the key's format, the schema registry, and the `transform` steps —
//! written once and shared by every Kafka task type.
//!
//! Like [`SensorSettings`](super::SensorSettings), these keys sit beside the type's own ones in
//! YAML: a type declared with the `records` flag holds this struct as a `#[serde(skip)]
//! record_settings` field, and the parser (`parse/kind.rs`) fills it from its own keys of the
//! same mapping.
//!
//! Invariant: schema only, and checked at load time. An inline Avro schema is parsed here, a
//! `{file: x.avsc}` one when the DAG file is loaded from its folder (`parse/kind_records.rs`),
//! a transform expression is compiled there too: a task whose schema or expression is broken
//! never loads.
//! Nothing here talks to a registry or a broker.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

/// How a message's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JSON text (a string record is sent as it is).
    #[default]
    Json,
    /// Avro in the Confluent wire format: byte 0, the 4-byte big-endian schema id from the
    /// registry, then the datum.
    Avro,
}

/// How a message's key is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFormat {
    /// UTF-8 text, as rendered (the default, and what Kafka tools show).
    #[default]
    String,
    /// JSON text of the key value.
    Json,
    /// Avro with `key_schema`, in the Confluent wire format (subject `<topic>-key`).
    Avro,
}

/// How the registry subject of a schema is named (Confluent's `subject.name.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-value` / `<topic>-key`.
    #[default]
    Topic,
    /// The record's full name (`com.acme.Flight`): one schema shared by many topics.
    Record,
    /// `<topic>-<record full name>`: several record types in one topic.
    TopicRecord,
}

/// An Avro schema, parsed.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    /// The schema as JSON text (what is registered).
    pub json: String,
    /// The parsed schema.
    pub schema: apache_avro::Schema,
    /// The `.avsc` file it was read from, relative to the DAG file's folder.
    pub file: Option<String>,
}

impl PartialEq for AvroSchema {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

/// A schema as written: inline (a YAML mapping or list, or JSON text), or a file next to the
/// DAG, which the parser reads and parses when it loads the DAG file.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaSource {
    Parsed(AvroSchema),
    /// `{file: x.avsc}` (relative to the DAG file's folder) not read yet: in a DAG parsed
    /// from its stored copy, without the folder. The folder's parse has read and checked it;
    /// a run reads it from the DAGs folder.
    File(String),
}

impl SchemaSource {
    /// Whether a schema file's path stays inside the DAG file's folder: relative, no `..`
    /// (a DAG names its own files, not the machine's).
    pub fn stays_inside(name: &str) -> bool {
        use std::path::Component;
        let mut parts = std::path::Path::new(name).components();
        parts.all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    }

    /// The parsed schema (always, in a DAG loaded from its folder).
    pub fn parsed(&self) -> Option<&AvroSchema> {
        match self {
            SchemaSource::Parsed(s) => Some(s),
            SchemaSource::File(_) => None,
        }
    }
}

impl AvroSchema {
    /// Parses JSON schema text; the error is apache-avro's, for the message.
    pub fn parse(json: &str, file: Option<String>) -> Result<AvroSchema, String> {
        let schema = apache_avro::Schema::parse_str(json).map_err(|e| e.to_string())?;
        Ok(AvroSchema { json: json.to_string(), schema, file })
    }
}

impl<'de> Deserialize<'de> for SchemaSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if let Some(map) = value.as_object()
            && map.len() == 1
            && let Some(file) = map.get("file")
        {
            return match file.as_str() {
                Some(f) if !f.trim().is_empty() => Ok(SchemaSource::File(f.to_string())),
                _ => Err(serde::de::Error::custom("`file` must be the path of an .avsc file")),
            };
        }
        // JSON text of a schema, or a bare primitive name (`string`, `long`...).
        let text = match &value {
            serde_json::Value::String(s) if s.trim_start().starts_with(['{', '[', '"']) => {
                s.clone()
            }
            other => other.to_string(),
        };
        AvroSchema::parse(&text, None)
            .map(SchemaSource::Parsed)
            .map_err(|e| serde::de::Error::custom(format!("not a valid Avro schema: {e}")))
    }
}

/// One step of a `transform:` list, applied to each record's JSON value in order. Written as
/// a one-key mapping, `- select: [a, b]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "StepFields")]
pub enum Transform {
    /// Keep only these fields (dotted paths keep the nesting: `airline.name`).
    Select(Vec<String>),
    /// Move fields: `{old.path: new_path}`.
    Rename(IndexMap<String, String>),
    /// Remove these fields (dotted paths allowed).
    Drop(Vec<String>),
    /// Keep the record only when this minijinja expression is true (fields are names).
    Filter(String),
    /// Set fields to the value of minijinja expressions, in order (a later one sees the
    /// earlier ones): `{delay_min: "(actual - scheduled) / 60"}`.
    Compute(IndexMap<String, String>),
    /// Nested objects become top-level keys joined by `separator` (lists stay as they are).
    Flatten(Flatten),
}

/// A step as written: exactly one of these keys. (serde_yaml reads an enum from a YAML tag,
/// `!select`, not from a one-key mapping, so the mapping is read as a struct.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFields {
    select: Option<Vec<String>>,
    rename: Option<IndexMap<String, String>>,
    drop: Option<Vec<String>>,
    filter: Option<String>,
    compute: Option<IndexMap<String, String>>,
    flatten: Option<Flatten>,
}

impl TryFrom<StepFields> for Transform {
    type Error = String;

    fn try_from(f: StepFields) -> Result<Transform, String> {
        let mut steps = Vec::new();
        steps.extend(f.select.map(Transform::Select));
        steps.extend(f.rename.map(Transform::Rename));
        steps.extend(f.drop.map(Transform::Drop));
        steps.extend(f.filter.map(Transform::Filter));
        steps.extend(f.compute.map(Transform::Compute));
        steps.extend(f.flatten.map(Transform::Flatten));
        match steps.len() {
            1 => Ok(steps.remove(0)),
            n => Err(format!(
                "a transform step is one of select, rename, drop, filter, compute or flatten \
                 (one per list item), not {n} of them"
            )),
        }
    }
}

/// Settings of a `flatten` step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flatten {
    /// What joins the names of a nested key: `{a: {b: 1}}` -> `a_b`.
    #[serde(default = "underscore")]
    pub separator: String,
}

fn underscore() -> String {
    "_".into()
}

fn registry_default() -> String {
    "schema_registry_default".into()
}

/// How a Kafka task's records are encoded and transformed; the keys sit beside the task's own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSettings {
    /// Value encoding: `json` (the default) or `avro`.
    #[serde(default)]
    pub format: Format,
    /// The value's Avro schema. A producer writes with it (and registers it); a consumer
    /// reads every message with the writer schema its id names and, when this is given,
    /// resolves it to this one (Avro schema resolution: defaults fill new fields).
    pub schema: Option<SchemaSource>,
    /// Key encoding: `string` (the default), `json` or `avro`.
    #[serde(default)]
    pub key_format: KeyFormat,
    /// The key's Avro schema, for `key_format: avro`.
    pub key_schema: Option<SchemaSource>,
    /// The schema registry connection (`http://[user:password@]host:port[/path]`).
    #[serde(default = "registry_default")]
    pub schema_registry: String,
    /// How subjects are named.
    #[serde(default)]
    pub subject_strategy: SubjectStrategy,
    /// Steps applied to each record, in order.
    #[serde(default)]
    pub transform: Vec<Transform>,
}

impl Default for RecordSettings {
    fn default() -> Self {
        RecordSettings {
            format: Format::Json,
            schema: None,
            key_format: KeyFormat::String,
            key_schema: None,
            schema_registry: registry_default(),
            subject_strategy: SubjectStrategy::Topic,
            transform: Vec::new(),
        }
    }
}

impl RecordSettings {
    /// Whether records pass as they are: JSON values, text keys, no transform. A task may then
    /// skip decoding and encoding its messages.
    pub fn is_plain(&self) -> bool {
        self.format == Format::Json
            && self.key_format == KeyFormat::String
            && self.transform.is_empty()
    }

    /// Whether anything uses the registry.
    pub fn uses_registry(&self) -> bool {
        self.format == Format::Avro || self.key_format == KeyFormat::Avro
    }

    /// The value schema, when given (parsed in a loaded DAG).
    pub fn value_schema(&self) -> Option<&AvroSchema> {
        self.schema.as_ref().and_then(SchemaSource::parsed)
    }

    /// The key schema, when given.
    pub fn key_avro_schema(&self) -> Option<&AvroSchema> {
        self.key_schema.as_ref().and_then(SchemaSource::parsed)
    }
}
