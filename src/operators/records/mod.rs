//! Record formats and transforms of the Kafka task types: what a message's bytes mean (JSON,
//! or Avro in the Confluent wire format with a schema registry) and the `transform:` steps
//! between a record and its message.
//!
//! How a Kafka task uses this layer (its settings are `task.record_settings`, a
//! [`RecordSettings`] parsed and checked at load time):
//!
//! - **A source** (records -> topic): `Encoder::new(ctx, settings, &topic).await?` registers
//!   the schemas (a registry's refusal fails the task with its message) — then
//!   `let program = transform::Program::for_task(ctx, settings); let pipeline =
//!   program.compile()?;` and [`to_messages`] turns records into `(key, payload)` pairs for
//!   `kafka_client::produce_all`, counting those a filter dropped. A record a step fails on
//!   fails the try (`OperatorError::Fatal`): a source's records are the task's own input.
//! - **A sink** (topic -> somewhere): `Decoder::new(ctx, settings).await?` and the same
//!   `Program`; per message, `decoder.record(payload, &pipeline).await` gives the record's JSON
//!   value, [`Read::Filtered`], or a [`DecodeError`]: `DeadLetter(reason)` sends the message
//!   to the dead-letter topic with that reason, `Failed(e)` fails the try (the registry is
//!   away). `decoder.key(key).await` decodes the key the same way (`$key`).
//!
//! Invariants: the JSON shape of an Avro value is the one `avro.rs` documents, on both ways;
//! a producer's schema ids and a consumer's writer schemas are fetched once per try, so the
//! per-message path touches the registry only for an id it has not seen.

pub mod avro;
pub mod registry;
pub mod transform;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use self::avro::Codec;
use self::registry::{Registry, RegistryError};
use self::transform::{Applied, Pipeline};
use super::json_path::{KeyTemplate, as_text};
use super::kafka_client::KeyedMessage;
use super::{OperatorError, TaskContext};
use crate::dag::kinds::{
    AvroSchema, Format, KeyFormat, RecordSettings, SchemaSource, SubjectStrategy,
};

/// The first byte of a Confluent-framed message.
pub const MAGIC: u8 = 0;

/// `0`, the schema id (4 bytes, big-endian), the datum.
pub fn frame(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// The schema id and datum of a Confluent-framed message.
pub fn unframe(payload: &[u8]) -> Result<(u32, &[u8]), String> {
    match payload {
        [MAGIC, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [] => Err("the message is empty, not an Avro message".into()),
        [first, ..] if *first != MAGIC => Err(format!(
            "the message does not start with the Confluent magic byte 0 (it starts with {first:#04x}): not an Avro message from a schema registry serializer"
        )),
        _ => Err("the message is shorter than the 5-byte Confluent header".into()),
    }
}

/// Value or key: which subject suffix a schema goes under.
#[derive(Debug, Clone, Copy)]
enum Part {
    Value,
    Key,
}

/// The registry subject of `schema` for `topic`.
fn subject(
    strategy: SubjectStrategy,
    topic: &str,
    part: Part,
    schema: &AvroSchema,
) -> Result<String, OperatorError> {
    let suffix = match part {
        Part::Value => "value",
        Part::Key => "key",
    };
    let record_name = || {
        schema.schema.name().map(|n| n.fullname(None)).ok_or_else(|| {
            OperatorError::Fatal(format!(
                "`subject_strategy: {strategy:?}` names subjects after the record, and the {suffix} schema is not a named type"
            ))
        })
    };
    Ok(match strategy {
        SubjectStrategy::Topic => format!("{topic}-{suffix}"),
        SubjectStrategy::Record => record_name()?,
        SubjectStrategy::TopicRecord => format!("{topic}-{}", record_name()?),
    })
}

/// The schema of `source`: parsed at load time, or a `{file: ...}` the DAG was parsed without
/// (a stored copy), read now from the DAGs folder beside the DAG file.
fn schema_of(
    ctx: &TaskContext,
    source: Option<&SchemaSource>,
    field: &str,
) -> Result<Option<AvroSchema>, OperatorError> {
    let name = match source {
        None => return Ok(None),
        Some(SchemaSource::Parsed(s)) => return Ok(Some(s.clone())),
        Some(SchemaSource::File(name)) => name,
    };
    if !SchemaSource::stays_inside(name) {
        return Err(OperatorError::Fatal(format!(
            "`{field}`: `{name}` is outside the DAG's folder"
        )));
    }
    let dir = ctx.dag.fileloc.parent().unwrap_or(std::path::Path::new(""));
    let path = ctx.settings.dags_folder.join(dir).join(name);
    let fatal = |why: String| OperatorError::Fatal(format!("`{field}`: {why}"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| fatal(format!("cannot read `{}`: {e}", path.display())))?;
    AvroSchema::parse(&text, Some(name.clone()))
        .map(Some)
        .map_err(|e| fatal(format!("`{}` is not a valid Avro schema: {e}", path.display())))
}

fn registry(
    ctx: &TaskContext,
    settings: &RecordSettings,
) -> Result<Option<Registry>, OperatorError> {
    if !settings.uses_registry() {
        return Ok(None);
    }
    let conn = ctx.connection(&settings.schema_registry)?;
    if let Some(p) = &conn.password {
        ctx.log.add_secret(p.clone());
    }
    Registry::new(&conn).map(Some)
}

/// A producer's encoding: one schema id per part, registered when the try starts.
pub struct Encoder {
    value: Option<(Codec, u32)>,
    key_format: KeyFormat,
    key: Option<(Codec, u32)>,
}

impl Encoder {
    /// Registers (or looks up) the schemas of `settings` for `topic`.
    pub async fn new(
        ctx: &TaskContext,
        settings: &RecordSettings,
        topic: &str,
    ) -> Result<Encoder, OperatorError> {
        let registry = registry(ctx, settings)?;
        let mut enc = Encoder { value: None, key_format: settings.key_format, key: None };
        let Some(registry) = registry else { return Ok(enc) };
        let strategy = settings.subject_strategy;
        let need = |s: Option<&SchemaSource>, field: &str| {
            schema_of(ctx, s, field)?
                .ok_or_else(|| OperatorError::Fatal(format!("`{field}` is needed to write Avro")))
        };
        if settings.format == Format::Avro {
            let schema = need(settings.schema.as_ref(), "schema")?;
            let subject = subject(strategy, topic, Part::Value, &schema)?;
            let id = registry.register(&subject, &schema.json).await?;
            ctx.log.line(format!("values: Avro, schema id {id} (subject `{subject}`)"));
            enc.value = Some((Codec::new(&schema.schema), id));
        }
        if settings.key_format == KeyFormat::Avro {
            let schema = need(settings.key_schema.as_ref(), "key_schema")?;
            let subject = subject(strategy, topic, Part::Key, &schema)?;
            let id = registry.register(&subject, &schema.json).await?;
            ctx.log.line(format!("keys: Avro, schema id {id} (subject `{subject}`)"));
            enc.key = Some((Codec::new(&schema.schema), id));
        }
        Ok(enc)
    }

    /// The payload of a record: Avro framed with its id, or JSON text (a string record as it
    /// is).
    pub fn value(&self, record: &Value) -> Result<Vec<u8>, String> {
        match (&self.value, record) {
            (Some((codec, id)), _) => Ok(frame(*id, &codec.encode(record)?)),
            (None, Value::String(s)) => Ok(s.clone().into_bytes()),
            (None, other) => Ok(other.to_string().into_bytes()),
        }
    }

    /// The bytes of a key: its text, JSON text, or Avro framed with its id.
    pub fn key(&self, key: &Value) -> Result<Vec<u8>, String> {
        match (&self.key, self.key_format) {
            (Some((codec, id)), _) => {
                codec.encode(key).map(|d| frame(*id, &d)).map_err(|e| format!("key: {e}"))
            }
            (None, KeyFormat::Json) => Ok(key.to_string().into_bytes()),
            (None, _) => Ok(as_text(key).unwrap_or_default().into_bytes()),
        }
    }

    /// Whether keys are structured (JSON or Avro): a rendered key template is then read as
    /// JSON when it is JSON text.
    fn structured_keys(&self) -> bool {
        self.key_format != KeyFormat::String
    }
}

/// Records -> messages: each record through the pipeline, then keyed (the key template sees
/// the record as transformed) and encoded. Returns the messages and how many a filter
/// dropped; a record a step or the encoder fails on fails the try, naming its position.
pub fn to_messages(
    ctx: &TaskContext,
    key: Option<&str>,
    records: Vec<Value>,
    pipeline: &Pipeline<'_>,
    encoder: &Encoder,
) -> Result<(Vec<KeyedMessage>, u64), OperatorError> {
    let key = KeyTemplate::compile(key);
    let mut renderer = ctx.renderer();
    let mut out = Vec::with_capacity(records.len());
    let mut filtered = 0;
    for (i, record) in records.into_iter().enumerate() {
        let bad = |why: String| OperatorError::Fatal(format!("record {}: {why}", i + 1));
        let record = if pipeline.is_empty() {
            record
        } else {
            match pipeline.apply(record).map_err(bad)? {
                Applied::Keep(r) => r,
                Applied::Filtered => {
                    filtered += 1;
                    continue;
                }
            }
        };
        let k = match key.value(&mut renderer, &record, encoder.structured_keys())? {
            Some(k) => Some(encoder.key(&k).map_err(bad)?),
            None => None,
        };
        out.push((k, encoder.value(&record).map_err(bad)?));
    }
    Ok((out, filtered))
}

/// Why a message was not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// This message is bad (not JSON, not Avro of its schema, an unknown schema id, a step
    /// that failed on it): it goes to the dead-letter topic with this reason.
    #[error("{0}")]
    DeadLetter(String),
    /// Reading cannot go on (the registry is away): the try fails.
    #[error(transparent)]
    Failed(#[from] OperatorError),
}

/// What a sink got from a message.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// The record's JSON value, transformed.
    Record(Value),
    /// A `filter` dropped it.
    Filtered,
}

/// A writer schema by id, and whether it must be resolved to the reader's.
type Writer = (Arc<Codec>, bool);

/// A consumer's decoding.
pub struct Decoder {
    format: Format,
    key_format: KeyFormat,
    registry: Option<Registry>,
    reader: Option<Codec>,
    key_reader: Option<Codec>,
    writers: Mutex<HashMap<u32, Writer>>,
}

impl Decoder {
    pub async fn new(
        ctx: &TaskContext,
        settings: &RecordSettings,
    ) -> Result<Decoder, OperatorError> {
        let registry = registry(ctx, settings)?;
        let codec = |s: Option<&SchemaSource>, field: &str| {
            schema_of(ctx, s, field).map(|s| s.map(|s| Codec::new(&s.schema)))
        };
        Ok(Decoder {
            format: settings.format,
            key_format: settings.key_format,
            registry,
            reader: codec(settings.schema.as_ref(), "schema")?,
            key_reader: codec(settings.key_schema.as_ref(), "key_schema")?,
            writers: Mutex::default(),
        })
    }

    /// The writer codec of `id`, from the cache or the registry.
    async fn writer(&self, id: u32, reader: Option<&Codec>) -> Result<Writer, DecodeError> {
        if let Some(w) = self.writers.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(w);
        }
        let Some(registry) = &self.registry else {
            return Err(DecodeError::Failed(OperatorError::Fatal(
                "Avro needs a schema registry".into(),
            )));
        };
        let schema = registry.schema(id).await.map_err(|e| match e {
            RegistryError::UnknownId(_) => DecodeError::DeadLetter(e.to_string()),
            other => DecodeError::Failed(other.into()),
        })?;
        // Same schema: no resolution step on every message.
        let resolve = reader.is_some_and(|r| r.schema() != schema.as_ref());
        let w = (Arc::new(Codec::new(&schema)), resolve);
        if let Ok(mut m) = self.writers.lock() {
            m.insert(id, w.clone());
        }
        Ok(w)
    }

    async fn avro(&self, bytes: &[u8], reader: Option<&Codec>) -> Result<Value, DecodeError> {
        let (id, datum) = unframe(bytes).map_err(DecodeError::DeadLetter)?;
        let (writer, resolve) = self.writer(id, reader).await?;
        let reader = if resolve { reader } else { None };
        Codec::decode(&writer, reader, datum)
            .map_err(|e| DecodeError::DeadLetter(format!("schema id {id}: {e}")))
    }

    /// A message value's JSON; `None` for a tombstone (no value).
    pub async fn value(&self, payload: Option<&[u8]>) -> Result<Option<Value>, DecodeError> {
        let Some(bytes) = payload else { return Ok(None) };
        match self.format {
            Format::Avro => self.avro(bytes, self.reader.as_ref()).await.map(Some),
            Format::Json => serde_json::from_slice(bytes)
                .map(Some)
                .map_err(|e| DecodeError::DeadLetter(format!("the message is not JSON: {e}"))),
        }
    }

    /// The record of a message: decoded, then through the pipeline. A tombstone is a dead
    /// letter here (sinks that delete on tombstones check [`value`](Self::value) first).
    pub async fn record(
        &self,
        payload: Option<&[u8]>,
        pipeline: &Pipeline<'_>,
    ) -> Result<Read, DecodeError> {
        let Some(value) = self.value(payload).await? else {
            return Err(DecodeError::DeadLetter("the message has no value (a tombstone)".into()));
        };
        if pipeline.is_empty() {
            return Ok(Read::Record(value));
        }
        match pipeline.apply(value).map_err(DecodeError::DeadLetter)? {
            Applied::Keep(v) => Ok(Read::Record(v)),
            Applied::Filtered => Ok(Read::Filtered),
        }
    }

    /// A message key's value: text (`key_format: string`), JSON, or Avro.
    pub async fn key(&self, key: Option<&[u8]>) -> Result<Option<Value>, DecodeError> {
        let Some(bytes) = key else { return Ok(None) };
        match self.key_format {
            KeyFormat::String => {
                Ok(Some(Value::String(String::from_utf8_lossy(bytes).into_owned())))
            }
            KeyFormat::Json => serde_json::from_slice(bytes)
                .map(Some)
                .map_err(|e| DecodeError::DeadLetter(format!("the key is not JSON: {e}"))),
            KeyFormat::Avro => {
                self.avro(bytes, self.key_reader.as_ref()).await.map(Some).map_err(|e| match e {
                    DecodeError::DeadLetter(why) => DecodeError::DeadLetter(format!("key: {why}")),
                    other => other,
                })
            }
        }
    }

    /// Whether values are JSON and need no decoding step besides parsing.
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }
}

#[cfg(test)]
mod tests;
