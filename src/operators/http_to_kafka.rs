//! `type: http_to_kafka`: REST ingestion. GETs a JSON API page by page (next link or page
//! number), splits each page into records by a path, and produces each record to a topic with a
//! templated key.
//!
//! This file owns pagination, per-request retries (5xx, 408, 429, timeouts, refused
//! connections; exponential back-off from 1 s) and the per-page produce. Invariant: a page's
//! records (transformed and encoded by `records`) are acknowledged by Kafka (idempotent
//! producer) before the next page is requested, so a failed try has produced whole pages only,
//! and its XCom counts acknowledged records. A retry of the task re-reads from the first page:
//! at-least-once, made exactly-once downstream by keyed upserts.

use std::time::Duration;

use reqwest::Url;
use serde_json::{Value, json};

use super::http::{HttpResponse, check_status, request_limited};
use super::json_path::lookup;
use super::kafka_client::{config_for, produce_all, producer};
use super::records::transform::Program;
use super::records::{Encoder, to_messages};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::{HttpTask, HttpToKafkaTask};

/// A page may be this big: ingestion pages are larger than what `http` keeps for XCom.
const MAX_PAGE: usize = 64 * 1024 * 1024;

/// Pages the ingestion, producing as it goes; XCom: `{topic, pages, records, bytes}`.
pub async fn run(ctx: &TaskContext, task: &HttpToKafkaTask) -> Result<Outcome, OperatorError> {
    let topic = ctx.render("topic", &task.topic)?;
    let producer = producer(config_for(ctx, &task.kafka_connection)?, &task.producer_config)?;
    let settings = &task.record_settings;
    let encoder = Encoder::new(ctx, settings, &topic).await?;
    let program = Program::for_task(ctx, settings);
    let pipeline = program.compile()?;
    let mut filtered = 0u64;
    let mut req = task.request();
    let mut page_no = task.pagination.as_ref().map_or(1, |p| p.start_page);
    let max_pages = task.pagination.as_ref().map_or(1, |p| p.max_pages);
    let (mut pages, mut records, mut bytes) = (0u64, 0u64, 0u64);
    loop {
        let page_param = task.pagination.as_ref().and_then(|p| p.page_param.as_ref());
        if let Some(param) = page_param {
            req.query.insert(param.clone(), page_no.to_string());
        }
        let resp = fetch(ctx, &req, task.request_retries).await?;
        let current_url = ctx.rendered.lock().ok().and_then(|r| r.get("url").cloned());
        let body = resp.json.ok_or_else(|| {
            OperatorError::Fatal(format!("page {} is not JSON: {}", pages + 1, snippet(&resp.text)))
        })?;
        let items = split(&body, task.records.as_deref())?;
        let n = items.len();
        let (messages, dropped) =
            to_messages(ctx, task.key.as_deref(), items, &pipeline, &encoder)?;
        let done = produce_all(&producer, &topic, messages, &ctx.cancel).await?;
        pages += 1;
        records += done.messages;
        bytes += done.bytes;
        filtered += dropped;
        ctx.log.line(format!("page {pages}: {n} record(s) -> `{topic}` ({dropped} filtered out)"));

        let Some(p) = &task.pagination else { break };
        if pages >= max_pages {
            ctx.log.line(format!("stopping at max_pages ({max_pages})"));
            break;
        }
        if let Some(path) = &p.next_link {
            let next = lookup(&body, path).and_then(Value::as_str).filter(|s| !s.is_empty());
            let Some(next) = next else { break };
            let base = current_url.as_ref().and_then(Value::as_str).unwrap_or("");
            req = next_request(&req, base, next)?;
        } else {
            if n == 0 {
                break;
            }
            let last = p.last_page.as_deref().and_then(|path| lookup(&body, path));
            if last.and_then(as_u64).is_some_and(|last| page_no >= last) {
                break;
            }
            page_no += 1;
        }
    }
    Ok(Outcome::Done(Some(json!({
        "topic": topic,
        "pages": pages,
        "records": records,
        "bytes": bytes,
        "filtered": filtered,
    }))))
}

/// One GET with retries on what may pass, back-off 1 s, 2 s, 4 s..., cancellable.
async fn fetch(
    ctx: &TaskContext,
    req: &HttpTask,
    retries: u32,
) -> Result<HttpResponse, OperatorError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match request_limited(ctx, req, MAX_PAGE).await {
            Ok(resp) => check_status(req, &resp).map(|()| resp),
            Err(e) => Err(e),
        };
        match result {
            Ok(resp) if resp.truncated => {
                return Err(OperatorError::Fatal(format!(
                    "a page of {} bytes is over {MAX_PAGE}: ask the API for smaller pages",
                    resp.bytes
                )));
            }
            Ok(resp) => return Ok(resp),
            Err(OperatorError::Retryable(msg))
                if attempt <= retries && !msg.starts_with("killed") =>
            {
                let wait = Duration::from_secs(1 << (attempt - 1).min(6));
                ctx.log.line(format!("attempt {attempt} failed ({msg}); again in {wait:?}"));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = ctx.cancel.cancelled() => {
                        return Err(OperatorError::Retryable("killed while waiting to retry".into()));
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The records of a page: the array at `path` (the whole body when absent); an object counts
/// as one record, null or a missing path as none.
fn split(body: &Value, path: Option<&str>) -> Result<Vec<Value>, OperatorError> {
    match lookup(body, path.unwrap_or("")) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(obj @ Value::Object(_)) => Ok(vec![obj.clone()]),
        Some(other) => Err(OperatorError::Fatal(format!(
            "`records: {}` points at {other}, not a list of records",
            path.unwrap_or("")
        ))),
    }
}

/// The request of a next link: absolute, or relative to the page that gave it. It carries
/// its own query; headers and the connection (credentials) stay.
fn next_request(req: &HttpTask, base: &str, next: &str) -> Result<HttpTask, OperatorError> {
    let url = match Url::parse(next) {
        Ok(u) => u,
        Err(_) => Url::parse(base)
            .and_then(|b| b.join(next))
            .map_err(|e| OperatorError::Fatal(format!("next link `{next}` is not a URL: {e}")))?,
    };
    Ok(HttpTask {
        url: Some(url.to_string()),
        endpoint: None,
        query: Default::default(),
        ..req.clone()
    })
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_pages() {
        let body = json!({"results": [{"a": 1}, {"a": 2}], "one": {"a": 3}, "n": 5});
        assert_eq!(split(&body, Some("results")).unwrap().len(), 2);
        assert_eq!(split(&body, Some("one")).unwrap(), vec![json!({"a": 3})]);
        assert!(split(&body, Some("missing")).unwrap().is_empty());
        assert!(split(&body, Some("n")).is_err());
        assert_eq!(split(&json!([1, 2, 3]), None).unwrap().len(), 3);
    }

    #[test]
    fn next_links() {
        let req = HttpTask {
            method: "GET".into(),
            connection: Some("api".into()),
            endpoint: Some("/users".into()),
            url: None,
            headers: Default::default(),
            query: [("page".to_string(), "1".to_string())].into(),
            body: None,
            expected_status: vec![],
            timeout: None,
        };
        let n = next_request(&req, "http://h/api/users?page=1", "/api/users?cursor=x").unwrap();
        assert_eq!(n.url.as_deref(), Some("http://h/api/users?cursor=x"));
        assert!(n.endpoint.is_none() && n.query.is_empty());
        let n = next_request(&req, "http://h/a", "https://other/b?c=1").unwrap();
        assert_eq!(n.url.as_deref(), Some("https://other/b?c=1"));
    }
}
