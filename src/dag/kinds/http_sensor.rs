//! `type: http_sensor`: one request per poke, done on an expected answer.
//!
//! Schema only. The request fields are those of `http` except `timeout`, which here is the
//! sensor's (one poke is one request; the poke interval bounds it). The poke settings are the
//! shared [`SensorSettings`], filled by the parser.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::SensorSettings;
use super::http::{HttpTask, get};

/// `type: http_sensor`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "HttpSensorRaw")]
pub struct HttpSensorTask {
    /// The request to make on each poke.
    pub request: HttpTask,
    /// Template rendered with `response` (status, text, json); truthy means done. When absent,
    /// an expected status means done.
    pub response_check: Option<String>,
    /// Poke settings (their keys sit beside the request's).
    pub sensor: SensorSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSensorRaw {
    #[serde(default = "get")]
    method: String,
    connection: Option<String>,
    endpoint: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    body: Option<serde_json::Value>,
    #[serde(default)]
    expected_status: Vec<u16>,
    response_check: Option<String>,
}

impl From<HttpSensorRaw> for HttpSensorTask {
    fn from(r: HttpSensorRaw) -> Self {
        HttpSensorTask {
            request: HttpTask {
                method: r.method,
                connection: r.connection,
                endpoint: r.endpoint,
                url: r.url,
                headers: r.headers,
                query: r.query,
                body: r.body,
                expected_status: r.expected_status,
                // One poke is one request; the poke interval bounds it.
                timeout: None,
            },
            response_check: r.response_check,
            sensor: SensorSettings::default(),
        }
    }
}
