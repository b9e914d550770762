//! `type: http_to_kafka`: REST ingestion — pages of a JSON API, split into records, produced
//! to a topic — and its [`Pagination`].
//!
//! Schema only; one pagination style per task is checked in `parse/kind_streaming.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Dur, HttpTask, RecordSettings, kafka_default, one};

/// How `http_to_kafka` walks through pages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// Dotted path, in each response, to the URL of the next page (absolute, or relative to
    /// the request's); stops when it is missing, null or empty.
    pub next_link: Option<String>,
    /// Query parameter carrying the page number; stops on a page without records.
    pub page_param: Option<String>,
    /// First page number.
    #[serde(default = "one")]
    pub start_page: u64,
    /// Dotted path to the number of the last page (e.g. `info.pages`): stop after it.
    pub last_page: Option<String>,
    /// Upper bound on pages per try, whatever the API says (an API that never stops).
    #[serde(default = "max_pages")]
    pub max_pages: u64,
}

fn max_pages() -> u64 {
    1000
}

fn three() -> u32 {
    3
}

/// `type: http_to_kafka`: REST ingestion.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToKafkaTask {
    /// HTTP connection: base URL, credentials, default headers.
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
    /// Dotted path to the array of records in each response; the whole body when absent (an
    /// array, or one object as one record).
    pub records: Option<String>,
    /// Pagination; one request when absent.
    pub pagination: Option<Pagination>,
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub kafka_connection: String,
    /// Topic (templated).
    pub topic: String,
    /// Message key, templated per record with `record` (e.g. `"{{ record.login.uuid }}"`).
    pub key: Option<String>,
    /// Attempts per request on 5xx, 408, 429, timeouts and refused connections, with
    /// exponential back-off (1 s, 2 s, 4 s...), before the try fails.
    #[serde(default = "three")]
    pub request_retries: u32,
    /// Request timeout.
    pub timeout: Option<Dur>,
    /// Extra producer settings (librdkafka names).
    #[serde(default)]
    pub producer_config: BTreeMap<String, String>,
    /// Record format, schema and transforms (their keys sit beside the ones above).
    #[serde(skip)]
    pub record_settings: RecordSettings,
}

impl HttpToKafkaTask {
    /// The GET request of the first page, as the `http` operator understands it.
    pub fn request(&self) -> HttpTask {
        HttpTask {
            method: "GET".into(),
            connection: self.connection.clone(),
            endpoint: self.endpoint.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            query: self.query.clone(),
            body: None,
            expected_status: vec![],
            timeout: self.timeout,
        }
    }
}
