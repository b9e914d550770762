//! `type: http`: one HTTP request; its response body becomes the task's XCom.
//!
//! This file owns building the request (URL from `url` or connection + `endpoint`, headers,
//! query, body, credentials), reading the response with a bounded memory, and mapping statuses
//! to retryable or fatal errors. [`request`] is shared with `http_sensor`. It must not log a
//! credential: URLs are logged without their password and connection secrets are registered
//! with the log before the request is made.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode, Url};
use serde_json::{Value, json};

use super::connection::join_url;
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::HttpTask;

/// Request timeout when the task sets none (Airflow's HttpOperator has none; a minute keeps a
/// hung server from holding a slot until the execution timeout).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Bodies up to this size are kept whole and may become XCom. A larger body is counted but
/// not kept: XCom lives in the metadata database and is loaded by every downstream template.
pub const MAX_BODY: usize = 1024 * 1024;

/// Characters of the body quoted in an error message.
const BODY_IN_ERROR: usize = 500;

/// One shared client: it pools connections and TLS sessions across tasks, and building one
/// loads the root certificates, which is too slow to do per request.
static CLIENT: OnceLock<Client> = OnceLock::new();

/// What came back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy UTF-8); only the first [`MAX_BODY`] bytes when `truncated`.
    pub text: String,
    /// The body parsed as JSON, when it is JSON and complete.
    pub json: Option<Value>,
    /// Size of the whole body in bytes.
    pub bytes: u64,
    /// The body was larger than [`MAX_BODY`] and `text` holds only its start.
    pub truncated: bool,
}

impl HttpResponse {
    /// The value stored as XCom: the JSON body, or the text as a JSON string.
    ///
    /// A body over [`MAX_BODY`] is replaced by `{"status", "bytes", "truncated": true}` rather
    /// than failing the task: the request did succeed, and failing it would make the user
    /// retry something that will never change. The log says so.
    pub fn xcom(&self) -> Value {
        if self.truncated {
            return json!({"status": self.status, "bytes": self.bytes, "truncated": true});
        }
        self.json.clone().unwrap_or_else(|| Value::String(self.text.clone()))
    }

    /// The `response` variable of an http sensor's `response_check`.
    pub fn template_value(&self) -> Value {
        json!({
            "status": self.status,
            "status_code": self.status,
            "text": self.text,
            "json": self.json,
            "headers": self.headers,
        })
    }
}

/// Runs the request, checks the status, returns the body as XCom.
pub async fn run(ctx: &TaskContext, task: &HttpTask) -> Result<Outcome, OperatorError> {
    let resp = request(ctx, task).await?;
    check_status(task, &resp)?;
    if resp.truncated {
        ctx.log.line(format!(
            "the body ({} bytes) is over {MAX_BODY} bytes: XCom holds its size, not the body",
            resp.bytes
        ));
    }
    Ok(Outcome::Done(Some(resp.xcom())))
}

/// Makes the request and reads the response. The status is not checked here (see
/// [`check_status`]): a sensor treats some failures as "not yet".
pub async fn request(ctx: &TaskContext, task: &HttpTask) -> Result<HttpResponse, OperatorError> {
    request_limited(ctx, task, MAX_BODY).await
}

/// [`request`] keeping up to `max_body` bytes of the body (ingestion reads whole pages).
pub async fn request_limited(
    ctx: &TaskContext,
    task: &HttpTask,
    max_body: usize,
) -> Result<HttpResponse, OperatorError> {
    let renderer = ctx.renderer();
    let conn = task.connection.as_deref().map(|id| ctx.connection(id)).transpose()?;
    let url_text = match (&task.url, &conn) {
        (Some(url), _) => renderer.render(url)?,
        (None, Some(conn)) => {
            let endpoint = renderer.render(task.endpoint.as_deref().unwrap_or(""))?;
            let base = conn.base_url().map_err(OperatorError::Fatal)?;
            join_url(&base, &endpoint)
        }
        (None, None) => {
            return Err(OperatorError::Fatal(
                "an http task needs `url`, or `connection` (with `endpoint`)".into(),
            ));
        }
    };
    let mut url = Url::parse(&url_text)
        .map_err(|e| OperatorError::Fatal(format!("invalid URL `{url_text}`: {e}")))?;
    if let Some(pw) = url.password() {
        ctx.log.add_secret(pw.to_string());
    }
    let mut query = BTreeMap::new();
    for (k, v) in &task.query {
        query.insert(k.clone(), renderer.render(v)?);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(&query);
    }
    let method = Method::from_bytes(task.method.trim().to_uppercase().as_bytes())
        .map_err(|_| OperatorError::Fatal(format!("`{}` is not an HTTP method", task.method)))?;
    ctx.record("url", Value::String(url.to_string()));

    let mut req = client()?
        .request(method.clone(), url.clone())
        .timeout(task.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0));
    if let Some(conn) = &conn {
        for (key, value) in &conn.extra {
            if let Some(name) = key.strip_prefix("headers.") {
                if is_credential_header(name) {
                    ctx.log.add_secret(value.clone());
                }
                req = req.header(name, value);
            }
        }
        if let Some(login) = &conn.login {
            req = req.basic_auth(login, conn.password.as_deref());
        }
    }
    let mut headers = BTreeMap::new();
    for (name, value) in &task.headers {
        headers.insert(name.clone(), renderer.render(value)?);
    }
    if !headers.is_empty() {
        ctx.record("headers", serde_json::to_value(&headers).unwrap_or_default());
    }
    for (name, value) in &headers {
        req = req.header(name, value);
    }
    match &task.body {
        None => {}
        Some(Value::String(text)) => {
            let body = renderer.render(text)?;
            ctx.record("body", Value::String(body.clone()));
            req = req.body(body);
        }
        Some(other) => {
            let body = renderer.render_json(other)?;
            ctx.record("body", body.clone());
            req = req.json(&body);
        }
    }

    let shown = loggable(&url);
    let started = Instant::now();
    let send = async {
        let mut resp = req.send().await?;
        let status = resp.status();
        let headers = header_map(resp.headers());
        let mut body = Vec::new();
        let mut bytes: u64 = 0;
        while let Some(chunk) = resp.chunk().await? {
            bytes += chunk.len() as u64;
            let room = max_body.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok::<_, reqwest::Error>((status, headers, body, bytes))
    };
    let (status, headers, body, bytes) = tokio::select! {
        r = send => r.map_err(|e| {
            ctx.log.line(format!("{method} {shown} failed after {} ms", started.elapsed().as_millis()));
            transport_error(e)
        })?,
        () = ctx.cancel.cancelled() => {
            return Err(OperatorError::Retryable(format!("killed: {method} {shown} was cancelled")));
        }
    };
    ctx.log.line(format!(
        "{method} {shown} -> {} in {} ms ({bytes} bytes)",
        status.as_u16(),
        started.elapsed().as_millis()
    ));
    let truncated = bytes > max_body as u64;
    let json = if truncated { None } else { serde_json::from_slice(&body).ok() };
    Ok(HttpResponse {
        status: status.as_u16(),
        headers,
        text: String::from_utf8_lossy(&body).into_owned(),
        json,
        bytes,
        truncated,
    })
}

/// Fails unless the status is expected (any 2xx when the task lists none). 5xx, 408 and 429
/// are retryable (the server may recover); any other status is fatal (the request is wrong).
pub fn check_status(task: &HttpTask, resp: &HttpResponse) -> Result<(), OperatorError> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ok = if task.expected_status.is_empty() {
        status.is_success()
    } else {
        task.expected_status.contains(&resp.status)
    };
    if ok {
        return Ok(());
    }
    let body: String = resp.text.chars().take(BODY_IN_ERROR).collect();
    let msg = format!("HTTP status {status}: {body}");
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Err(OperatorError::Retryable(msg))
    } else {
        Err(OperatorError::Fatal(msg))
    }
}

fn client() -> Result<&'static Client, OperatorError> {
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = crate::tls::http_client()
        .build()
        .map_err(|e| OperatorError::Fatal(format!("cannot build the HTTP client: {e}")))?;
    // Two tasks may race here; both clients work and the loser's is dropped.
    Ok(CLIENT.get_or_init(|| c))
}

/// Connect errors and timeouts may pass; a malformed request will not.
fn transport_error(e: reqwest::Error) -> OperatorError {
    // reqwest's message includes the URL, which may carry a password: drop it.
    let e = e.without_url();
    let mut msg = format!("HTTP request failed: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        msg.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if e.is_builder() { OperatorError::Fatal(msg) } else { OperatorError::Retryable(msg) }
}

/// The URL without user info, for the log.
fn loggable(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Header names whose values are credentials, masked in the log.
fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["auth", "token", "key", "secret", "cookie"].iter().any(|w| n.contains(w))
}

fn header_map(headers: &reqwest::header::HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}
