//! A client of a Confluent-compatible schema registry (Confluent's own, Apicurio's
//! `/apis/ccompat/v7`, Karapace): register-or-look-up a subject's schema, fetch a schema by id.
//!
//! A small reqwest client rather than `schema_registry_converter`: Updraft needs two calls,
//! and that crate brings its own Avro and HTTP stacks (other versions of both) and its own
//! JSON mapping of values, where Updraft's is documented in `avro.rs`.
//!
//! Invariants: ids are cached per (subject, schema text) and schemas per id, for the life of
//! one try, so the per-message path never waits on the registry once a schema was seen. The
//! registry's refusal of a schema (HTTP 409, incompatible) keeps the registry's own message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::Schema;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::operators::{Connection, OperatorError};

/// Bound on one registry request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a registry call failed; callers branch on it (a refused schema fails the task for good,
/// an unknown id is a dead letter, an unreachable registry a retry).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// HTTP 409: the schema is not compatible with the subject's earlier versions.
    #[error(
        "the schema registry refused the schema for subject `{subject}` as incompatible: {message}"
    )]
    Incompatible { subject: String, message: String },
    /// No schema has this id.
    #[error("schema id {0} is not in the registry")]
    UnknownId(u32),
    /// Any other answer the registry gave (4xx: fatal; 5xx: may pass).
    #[error("the schema registry answered {status} to {what}: {message}")]
    Refused { status: u16, what: String, message: String },
    /// Not reached, or an answer that is not the protocol's.
    #[error("the schema registry at {url} cannot be reached: {why}")]
    Unreachable { url: String, why: String },
}

impl From<RegistryError> for OperatorError {
    fn from(e: RegistryError) -> OperatorError {
        match &e {
            RegistryError::Unreachable { .. } => OperatorError::Retryable(e.to_string()),
            RegistryError::Refused { status, .. } if *status >= 500 => {
                OperatorError::Retryable(e.to_string())
            }
            _ => OperatorError::Fatal(e.to_string()),
        }
    }
}

/// A registry and what this try learned from it.
pub struct Registry {
    http: reqwest::Client,
    /// The base URL, ending in `/`.
    base: Url,
    auth: Option<(String, Option<String>)>,
    ids: Mutex<HashMap<(String, String), u32>>,
    schemas: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl Registry {
    /// From an `http(s)://[user:password@]host:port[/path]` connection; the login and password
    /// are sent as basic auth.
    pub fn new(conn: &Connection) -> Result<Registry, OperatorError> {
        let scheme = match conn.conn_type.as_str() {
            "http" | "schema_registry" => "http",
            "https" => "https",
            other => {
                return Err(OperatorError::Fatal(format!(
                    "connection `{}` is `{other}://`; a schema registry is http://host:port[/path]",
                    conn.conn_id
                )));
            }
        };
        let host = conn.host.as_deref().ok_or_else(|| {
            OperatorError::Fatal(format!("connection `{}` names no registry host", conn.conn_id))
        })?;
        let port = conn.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = conn.schema.as_deref().unwrap_or("").trim_matches('/');
        let slash = if path.is_empty() { "" } else { "/" };
        let text = format!("{scheme}://{host}{port}/{path}{slash}");
        let base = Url::parse(&text).map_err(|e| {
            OperatorError::Fatal(format!(
                "connection `{}`: `{text}` is not a URL: {e}",
                conn.conn_id
            ))
        })?;
        let http = crate::tls::http_client()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| OperatorError::Fatal(format!("cannot build an HTTP client: {e}")))?;
        let auth = conn.login.clone().map(|user| (user, conn.password.clone()));
        Ok(Registry { http, base, auth, ids: Mutex::default(), schemas: Mutex::default() })
    }

    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Unreachable {
            url: self.base.to_string(),
            why: format!("bad path `{path}`: {e}"),
        })
    }

    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(StatusCode, Value), RegistryError> {
        let req = match &self.auth {
            Some((user, password)) => req.basic_auth(user, password.as_ref()),
            None => req,
        };
        let unreachable =
            |why: String| RegistryError::Unreachable { url: self.base.to_string(), why };
        let resp = req
            .header("Accept", "application/vnd.schemaregistry.v1+json, application/json")
            .send()
            .await
            .map_err(|e| unreachable(format!("{what}: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| unreachable(format!("{what}: {e}")))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    /// The id of `schema` under `subject`, registering it when the subject does not have it
    /// (the registry answers with the existing id when it does).
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.lock().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(id);
        }
        let url = self.url(&format!("subjects/{}/versions", encode(subject)))?;
        let what = format!("registering subject `{subject}`");
        let body = json!({"schema": schema, "schemaType": "AVRO"});
        let (status, answer) = self
            .call(
                self.http
                    .post(url)
                    .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                    .json(&body),
                &what,
            )
            .await?;
        let message = || message(&answer);
        match status {
            s if s.is_success() => {
                let id =
                    answer.get("id").and_then(Value::as_u64).and_then(|id| u32::try_from(id).ok());
                let id = id.ok_or_else(|| RegistryError::Unreachable {
                    url: self.base.to_string(),
                    why: format!("{what}: no id in the answer {answer}"),
                })?;
                if let Ok(mut m) = self.ids.lock() {
                    m.insert(key, id);
                }
                Ok(id)
            }
            StatusCode::CONFLICT => Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                message: message(),
            }),
            s => Err(RegistryError::Refused { status: s.as_u16(), what, message: message() }),
        }
    }

    /// The schema with this id, fetched once per try.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(s) = self.schemas.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(s);
        }
        let what = format!("fetching schema id {id}");
        let (status, answer) =
            self.call(self.http.get(self.url(&format!("schemas/ids/{id}"))?), &what).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(RegistryError::UnknownId(id));
        }
        if !status.is_success() {
            return Err(RegistryError::Refused {
                status: status.as_u16(),
                what,
                message: message(&answer),
            });
        }
        let kind = answer.get("schemaType").and_then(Value::as_str).unwrap_or("AVRO");
        let text = answer.get("schema").and_then(Value::as_str);
        let schema = match (kind, text) {
            ("AVRO", Some(text)) => {
                Schema::parse_str(text).map_err(|e| RegistryError::Refused {
                    status: status.as_u16(),
                    what: what.clone(),
                    message: format!("schema id {id} does not parse: {e}"),
                })?
            }
            _ => {
                return Err(RegistryError::Refused {
                    status: status.as_u16(),
                    what,
                    message: format!("schema id {id} is a {kind} schema, not Avro"),
                });
            }
        };
        let schema = Arc::new(schema);
        if let Ok(mut m) = self.schemas.lock() {
            m.insert(id, schema.clone());
        }
        Ok(schema)
    }
}

/// The registry's `message` (Confluent's error body), or the whole answer.
fn message(answer: &Value) -> String {
    match answer.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => answer.to_string().chars().take(500).collect(),
    }
}

/// A subject as one URL path segment.
fn encode(subject: &str) -> String {
    form_urlencoded::byte_serialize(subject.as_bytes()).collect::<String>().replace('+', "%20")
}
