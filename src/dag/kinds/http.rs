//! `type: http`: one HTTP request. [`HttpTask`] is also the request that `http_sensor` and
//! `http_to_kafka` make.
//!
//! Schema only; `parse/kind.rs` checks that a task names a `url` or a connection and endpoint,
//! and normalizes the method.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Dur;

/// `type: http`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTask {
    /// HTTP method, GET by default.
    #[serde(default = "get")]
    pub method: String,
    /// Connection whose URI gives the base URL, credentials and default headers.
    pub connection: Option<String>,
    /// Path appended to the connection's base URL (templated).
    pub endpoint: Option<String>,
    /// Full URL (templated), when there is no connection.
    pub url: Option<String>,
    /// Request headers (values templated).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters (values templated).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Request body: a string (templated) sent as is, or a mapping sent as JSON.
    pub body: Option<serde_json::Value>,
    /// Statuses counted as success; any 2xx when empty.
    #[serde(default)]
    pub expected_status: Vec<u16>,
    /// Request timeout; the task's execution_timeout still applies on top.
    pub timeout: Option<Dur>,
}

pub(super) fn get() -> String {
    "GET".to_string()
}
