//! The receivers of notifications, real ones on 127.0.0.1: a webhook receiver (an axum server
//! that records every request) and a reader of the test SMTP server's saved messages
//! (`scripts/smtp.sh`: every message as `NAME.eml`, the raw message, beside `NAME.json`, its
//! envelope).
//!
//! The SMTP server is shared by every test and keeps what it received: a test finds its mail by
//! a recipient of its own ([`unique_recipient`]), never by counting files.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request the receiver got: its path, headers and JSON body (a string when not JSON).
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    /// The body as sent, for signatures.
    pub raw: String,
}

impl Received {
    /// Whether `X-Updraft-Signature` is the HMAC-SHA256 of `<X-Updraft-Timestamp>.<body>`
    /// with `secret`, as the README tells a receiver to check it.
    pub fn signed_with(&self, secret: &str) -> bool {
        let ts = self.headers.get("x-updraft-timestamp").cloned().unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{ts}.{}", self.raw).as_bytes());
        let want: String = mac.finalize().into_bytes().iter().map(|x| format!("{x:02x}")).collect();
        !ts.is_empty() && self.headers.get("x-updraft-signature") == Some(&format!("sha256={want}"))
    }
}

/// A webhook receiver: `/ok/*` answers 200, `/fail/*` 500, `/html/*` 500 with markup (a
/// hostile answer the pages must print as text), `/hang/*` never in time.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(r): State<Receiver>,
    UrlPath((kind, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let body = serde_json::from_slice(&body).unwrap_or(Value::String(raw.clone()));
    if let Ok(mut got) = r.got.lock() {
        got.push(Received { path: format!("/{kind}/{name}"), headers, body, raw });
    }
    match kind.as_str() {
        "ok" => (StatusCode::OK, "thanks".into()),
        "html" => (StatusCode::INTERNAL_SERVER_ERROR, HOSTILE_ANSWER.into()),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (StatusCode::OK, "late".into())
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "receiver broke".into()),
    }
}

/// What `/html/*` answers.
pub const HOSTILE_ANSWER: &str = "<img src=x onerror=alert(1)>";

impl Receiver {
    /// The receiver's routes.
    pub fn app(&self) -> Router {
        Router::new().route("/{kind}/{name}", axum::routing::post(receive)).with_state(self.clone())
    }

    /// Serves on a free port of 127.0.0.1; its base URL.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = self.app();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// The requests to `path` so far, oldest first.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .map(|g| g.iter().filter(|r| r.path == path).cloned().collect())
            .unwrap_or_default()
    }
}

/// The test SMTP server (`host:port`) and the folder it saves messages in, or `None` (with a
/// note) when the test command did not start it; in CI a missing one fails the test.
pub fn smtp_server() -> Option<(String, String)> {
    let host = super::streaming::server_var("UPDRAFT_TEST_SMTP_HOST")?;
    let maildir = super::streaming::server_var("UPDRAFT_TEST_SMTP_MAILDIR")?;
    Some((host, maildir))
}

/// A recipient address no other test (nor an earlier run of this one) uses: `<tag>-<random>`
/// at `example.test`.
pub fn unique_recipient(tag: &str) -> String {
    let random = updraft::secrets::random_token().to_lowercase().replace(['-', '_'], "");
    format!("{tag}-{}@example.test", &random[..16])
}

/// One message the SMTP server saved.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope: `mail_from`, `rcpt_tos`, `auth_user`, `helo`, ...
    pub envelope: Value,
    /// The headers, unfolded, by lower-case name (the last one of a repeated name).
    pub headers: HashMap<String, String>,
    /// The body, its transfer encoding undone, line ends as `\n`.
    pub body: String,
    /// The raw message.
    pub raw: String,
}

/// Every saved message whose envelope names `rcpt`, oldest first.
pub fn mails_to(maildir: &str, rcpt: &str) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(maildir) else { return Vec::new() };
    let mut names: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    names.iter().filter_map(|eml| read_mail(eml)).filter(|m| names_rcpt(m, rcpt)).collect()
}

fn names_rcpt(m: &Mail, rcpt: &str) -> bool {
    m.envelope["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|a| a == rcpt))
}

fn read_mail(eml: &Path) -> Option<Mail> {
    let raw = std::fs::read_to_string(eml).ok()?;
    let envelope = std::fs::read_to_string(eml.with_extension("json")).ok()?;
    let envelope: Value = serde_json::from_str(&envelope).ok()?;
    let text = raw.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let mut headers = HashMap::new();
    let mut last: Option<(String, String)> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = last.as_mut() {
                v.push_str(line);
            }
            continue;
        }
        if let Some((k, v)) = last.take() {
            headers.insert(k, v);
        }
        if let Some((k, v)) = line.split_once(':') {
            last = Some((k.trim().to_lowercase(), v.trim().to_string()));
        }
    }
    if let Some((k, v)) = last {
        headers.insert(k, v);
    }
    let encoding = headers.get("content-transfer-encoding").map(|e| e.to_lowercase());
    let body = match encoding.as_deref() {
        Some("quoted-printable") => quoted_printable(body),
        Some("base64") => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
            String::from_utf8(bytes).ok()?
        }
        _ => body.to_string(),
    };
    Some(Mail { envelope, headers, body: body.replace("\r\n", "\n"), raw })
}

/// Undoes quoted-printable (RFC 2045): `=XX` escapes and `=` soft line breaks.
fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'=').then(|| s.get(i + 1..i + 3)).flatten();
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
