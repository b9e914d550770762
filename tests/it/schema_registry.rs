//! The Confluent Schema Registry calls that Updraft's Avro support makes, against the real
//! registry `scripts/registry.sh` runs (Apicurio Registry's Confluent-compatible API on
//! 127.0.0.1, `UPDRAFT_TEST_SCHEMA_REGISTRY_URL`): register a subject's schema and get its id,
//! fetch a schema by the id a message carries, re-register (same id), look a schema up under a
//! subject, per-subject compatibility (an incompatible change is refused with the reason, a
//! compatible one gets a new id), and the error codes a client branches on.
//!
//! Invariant: each test uses subjects of its own (unique names), so the tests run in parallel
//! and against a registry that earlier runs have filled; nothing here assumes an id's value,
//! only equality and difference between ids.

use crate::support::streaming::{server_var, unique};

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The media type Confluent's clients send and accept.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A client of the registry under test: its Confluent-compatible base URL and an HTTP client
/// whose every request is bounded in time.
struct Registry {
    base: String,
    http: reqwest::Client,
}

impl Registry {
    fn from_env() -> Option<Registry> {
        let base = server_var("UPDRAFT_TEST_SCHEMA_REGISTRY_URL")?;
        let http = updraft::tls::http_client()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("an HTTP client");
        Some(Registry { base: base.trim_end_matches('/').to_string(), http })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.header("Accept", MEDIA_TYPE).send().await.expect("the registry answers");
        let status = resp.status();
        let text = resp.text().await.expect("a response body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a JSON body ({e}), got {status}: {text}"));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req = self.http.post(format!("{}{path}", self.base));
        self.send(req.header("Content-Type", MEDIA_TYPE).body(body.to_string())).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req = self.http.put(format!("{}{path}", self.base));
        self.send(req.header("Content-Type", MEDIA_TYPE).body(body.to_string())).await
    }

    /// `POST /subjects/{subject}/versions`: registers (or finds) a schema, returns the answer.
    async fn register(&self, subject: &str, schema: &Value) -> (StatusCode, Value) {
        let body = json!({"schema": schema.to_string()});
        self.post(&format!("/subjects/{subject}/versions"), body).await
    }

    /// Registers a schema that must be accepted, and returns its id.
    async fn register_ok(&self, subject: &str, schema: &Value) -> i64 {
        let (status, body) = self.register(subject, schema).await;
        assert_eq!(status, StatusCode::OK, "register under {subject}: {body}");
        body["id"].as_i64().unwrap_or_else(|| panic!("an integer id: {body}"))
    }
}

/// An Avro record schema named `Station` with these fields.
fn station(fields: Value) -> Value {
    json!({"type": "record", "name": "Station", "namespace": "transit", "fields": fields})
}

/// The schema text of a registry answer, parsed: the registry may re-format it.
fn schema_of(body: &Value) -> Value {
    let text = body["schema"].as_str().unwrap_or_else(|| panic!("a schema string: {body}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("the schema is JSON ({e}): {text}"))
}

#[tokio::test]
async fn register_fetch_by_id_and_register_again() {
    let Some(reg) = Registry::from_env() else { return };
    let subject = format!("{}-value", unique("stations"));
    let v1 = station(json!([{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]));

    let id = reg.register_ok(&subject, &v1).await;

    // A consumer decodes a message by the id in its header: the schema comes back as sent.
    let (status, body) = reg.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(schema_of(&body), v1);

    // A producer that restarts registers again and must get the id its messages already carry.
    assert_eq!(reg.register_ok(&subject, &v1).await, id);

    // Looking the schema up under the subject (without registering) finds version 1.
    let (status, body) =
        reg.post(&format!("/subjects/{subject}"), json!({"schema": v1.to_string()})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subject"], subject.as_str());
    assert_eq!(body["version"], 1);
    assert_eq!(body["id"], id);

    let (status, body) = reg.get(&format!("/subjects/{subject}/versions")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([1]));
}

#[tokio::test]
async fn backward_compatibility_refuses_an_incompatible_change_with_the_reason() {
    let Some(reg) = Registry::from_env() else { return };
    let subject = format!("{}-value", unique("turnstiles"));

    let (status, body) =
        reg.put(&format!("/config/{subject}"), json!({"compatibility": "BACKWARD"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = reg.get(&format!("/config/{subject}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["compatibilityLevel"], "BACKWARD");

    let v1 = station(json!([{"name": "id", "type": "long"}]));
    let id1 = reg.register_ok(&subject, &v1).await;

    // A new field without a default cannot read the data written with v1.
    let incompatible = station(json!([
        {"name": "id", "type": "long"},
        {"name": "city", "type": "string"}
    ]));
    let (status, body) = reg
        .post(
            &format!("/compatibility/subjects/{subject}/versions/latest"),
            json!({"schema": incompatible.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_compatible"], false, "{body}");

    let (status, body) = reg.register(&subject, &incompatible).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error_code"], 409, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("ncompatible") && message.contains("city"),
        "the reason names the change: {message}"
    );

    // With a default the same field is a compatible change: a new version with a new id.
    let v2 = station(json!([
        {"name": "id", "type": "long"},
        {"name": "city", "type": "string", "default": ""}
    ]));
    let id2 = reg.register_ok(&subject, &v2).await;
    assert_ne!(id2, id1);

    let (status, body) = reg.get(&format!("/subjects/{subject}/versions")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([1, 2]), "the refused schema left no version behind");
    for (version, id, schema) in [("1", id1, &v1), ("2", id2, &v2), ("latest", id2, &v2)] {
        let (status, body) = reg.get(&format!("/subjects/{subject}/versions/{version}")).await;
        assert_eq!(status, StatusCode::OK, "version {version}: {body}");
        assert_eq!(body["id"], id, "version {version}: {body}");
        assert_eq!(&schema_of(&body), schema, "version {version}");
    }
}

#[tokio::test]
async fn unknown_subjects_ids_and_bad_schemas_get_confluent_error_codes() {
    let Some(reg) = Registry::from_env() else { return };
    let subject = format!("{}-value", unique("missing"));

    let (status, body) = reg.get(&format!("/subjects/{subject}/versions")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error_code"], 40401, "subject not found: {body}");

    // An id no schema has (ids are positive 32-bit integers in the wire format).
    let (status, body) = reg.get(&format!("/schemas/ids/{}", i32::MAX)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error_code"], 40403, "schema not found: {body}");

    // A lookup of a schema never registered under an existing subject.
    let known = station(json!([{"name": "id", "type": "long"}]));
    reg.register_ok(&subject, &known).await;
    let other = station(json!([{"name": "code", "type": "string"}]));
    let (status, body) =
        reg.post(&format!("/subjects/{subject}"), json!({"schema": other.to_string()})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error_code"], 40403, "{body}");

    let (status, body) = reg.register(&subject, &json!({"type": "recrd"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error_code"], 42201, "invalid schema: {body}");
}
