//! `type: kafka_produce`: records given inline, from a file, or from a template (an upstream
//! XCom), produced to a topic with a key per record.
//!
//! This file owns where the records come from; how each becomes a message (transforms, JSON or
//! Avro, the key) is `records`'. It must not return before the broker acknowledged every
//! message: the XCom it reports (`messages`, `bytes`, `filtered`, `topic`) counts acknowledged
//! messages only.

use serde_json::{Value, json};

use super::kafka_client::{config_for, produce_all, producer};
use super::records::transform::Program;
use super::records::{Encoder, to_messages};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::KafkaProduceTask;

/// Produces the records and reports the counts.
pub async fn run(ctx: &TaskContext, task: &KafkaProduceTask) -> Result<Outcome, OperatorError> {
    let topic = ctx.render("topic", &task.topic)?;
    let records = records(ctx, task).await?;
    let cfg = config_for(ctx, &task.connection)?;
    let producer = producer(cfg, &task.producer_config)?;
    let settings = &task.record_settings;
    let encoder = Encoder::new(ctx, settings, &topic).await?;
    let program = Program::for_task(ctx, settings);
    let pipeline = program.compile()?;
    let (messages, filtered) = to_messages(ctx, task.key.as_deref(), records, &pipeline, &encoder)?;
    let n = messages.len();
    ctx.log.line(format!("producing {n} record(s) to `{topic}` ({filtered} filtered out)"));
    let done = produce_all(&producer, &topic, messages, &ctx.cancel).await?;
    ctx.log.line(format!(
        "{} message(s), {} bytes acknowledged by `{topic}`",
        done.messages, done.bytes
    ));
    Ok(Outcome::Done(Some(json!({
        "topic": topic,
        "messages": done.messages,
        "bytes": done.bytes,
        "filtered": filtered,
    }))))
}

async fn records(ctx: &TaskContext, task: &KafkaProduceTask) -> Result<Vec<Value>, OperatorError> {
    if let Some(inline) = &task.records {
        let rendered = ctx.renderer().render_json(&Value::Array(inline.clone()))?;
        return Ok(match rendered {
            Value::Array(items) => items,
            other => vec![other],
        });
    }
    if let Some(path) = &task.file {
        let path = ctx.render("file", path)?;
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| OperatorError::Fatal(format!("cannot read `{path}`: {e}")))?;
        return parse_records(&text).map_err(|e| OperatorError::Fatal(format!("`{path}`: {e}")));
    }
    if let Some(template) = &task.xcom {
        // A lone `{{ ti.xcom_pull('t') }}` keeps the XCom's list as a list (no printing and
        // re-parsing); a string XCom holding JSON is parsed.
        let items = ctx.renderer().render_list(template)?;
        ctx.record("xcom", Value::Array(items.clone()));
        return Ok(items);
    }
    Err(OperatorError::Fatal("kafka_produce needs `records`, `file` or `xcom`".into()))
}

/// A JSON array (its items), JSON lines (one value per non-empty line), or one JSON value.
pub fn parse_records(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(vec![]);
    }
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return Ok(match value {
            Value::Array(items) => items,
            other => vec![other],
        });
    }
    let mut out = Vec::new();
    for (i, line) in trimmed.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value =
            serde_json::from_str(line).map_err(|e| format!("line {} is not JSON ({e})", i + 1))?;
        out.push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_records;
    use serde_json::json;

    #[test]
    fn record_sources() {
        assert_eq!(parse_records("[1, {\"a\": 2}]").unwrap(), vec![json!(1), json!({"a": 2})]);
        assert_eq!(parse_records("{\"a\":1}\n\n{\"a\":2}\n").unwrap().len(), 2);
        assert_eq!(parse_records("{\"a\":1}").unwrap(), vec![json!({"a": 1})]);
        assert!(parse_records("{\"a\":1}\nnope").unwrap_err().contains("line 2"));
        assert!(parse_records("  ").unwrap().is_empty());
    }
}
