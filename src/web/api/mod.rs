//! The JSON REST API under `/api/v1` (Airflow's shape where sensible), authenticated by bearer
//! tokens (or the browser's session), and its OpenAPI document.
//!
//! [`ROUTES`] is the one list of the API's routes: [`router`] registers exactly these, and
//! `openapi::document` describes exactly these, so the document cannot drift from the server.
//!
//! Invariants: every handler but health and the document takes a [`Principal`] and calls
//! `require` before anything else; state changes go through `crate::actions` (shared with the
//! pages) and read their body through [`JsonBody::parse`], which also holds the CSRF check of
//! cookie-authenticated calls; every response, errors included, is JSON — request bodies,
//! query strings and path segments that do not parse give a 400 naming the field, never
//! axum's plain-text rejection.

mod assets;
mod backfills;
mod dags;
mod logs;
pub mod openapi;
mod runs;
mod tis;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::de::DeserializeOwned;

use super::{AppState, WebError};

pub use super::ApiError;
pub use super::auth::Principal;

/// Prefix of every API path; the OpenAPI document gives it as the server URL.
pub const PREFIX: &str = "/api/v1";

/// Default page size of list endpoints.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size; larger `limit`s are lowered to it (as Airflow does).
pub const MAX_LIMIT: i64 = 1000;
/// Largest request body: API bodies are small objects (a run's conf at most).
const MAX_BODY: usize = 1024 * 1024;

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Reads.
    Get,
    /// Creates or acts (trigger, clear).
    Post,
    /// Changes a field (pause, mark, note).
    Patch,
    /// Removes (a run).
    Delete,
}

impl Verb {
    /// The OpenAPI spelling (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// The body of a pause or unpause (a DAG's, a backfill's).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    /// Paused (true) or not.
    pub is_paused: bool,
}

/// What a route does; names the handler and its OpenAPI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A page of DAGs.
    ListDags,
    /// One DAG with its tasks and params.
    GetDag,
    /// Pause or unpause.
    PatchDag,
    /// Runs of a DAG, newest first.
    ListRuns,
    /// Trigger a manual run.
    TriggerRun,
    /// One run.
    GetRun,
    /// Mark a run success or failed.
    PatchRun,
    /// Delete a run.
    DeleteRun,
    /// Set the note on a run.
    SetRunNote,
    /// Set the note on a task instance.
    SetTiNote,
    /// Task instances of a run.
    ListTis,
    /// One task instance with its tries.
    GetTi,
    /// Mark a task instance success or failed.
    PatchTi,
    /// Clear (re-run) a task instance.
    ClearTi,
    /// Clear (re-run) a whole run, or its failed instances.
    ClearRun,
    /// The log of one try.
    GetLog,
    /// Import errors of the last DAG folder scan.
    ImportErrors,
    /// Database and process health.
    Health,
    /// The OpenAPI document.
    OpenApi,
    /// Backfills, newest first.
    ListBackfills,
    /// Create a backfill, or plan one (`dry_run`).
    CreateBackfill,
    /// One backfill.
    GetBackfill,
    /// Pause or unpause a backfill.
    PatchBackfill,
    /// Cancel a backfill.
    CancelBackfill,
    /// Assets with their producers, consumers and events.
    ListAssets,
    /// Asset events, newest first.
    ListAssetEvents,
    /// Record an asset event.
    PostAssetEvent,
}

/// One route: method, path under [`PREFIX`] (axum 0.8 and OpenAPI both write `{param}`),
/// operation.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Method.
    pub verb: Verb,
    /// Path under [`PREFIX`].
    pub path: &'static str,
    /// Handler and documentation.
    pub op: Op,
}

const fn route(verb: Verb, path: &'static str, op: Op) -> Route {
    Route { verb, path, op }
}

const RUN: &str = "/dags/{dag_id}/dagRuns/{dag_run_id}";
const TI: &str = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}";

/// Every route of the API, once.
pub const ROUTES: &[Route] = &[
    route(Verb::Get, "/dags", Op::ListDags),
    route(Verb::Get, "/dags/{dag_id}", Op::GetDag),
    route(Verb::Patch, "/dags/{dag_id}", Op::PatchDag),
    route(Verb::Get, "/dags/{dag_id}/dagRuns", Op::ListRuns),
    route(Verb::Post, "/dags/{dag_id}/dagRuns", Op::TriggerRun),
    route(Verb::Get, RUN, Op::GetRun),
    route(Verb::Patch, RUN, Op::PatchRun),
    route(Verb::Delete, RUN, Op::DeleteRun),
    route(Verb::Patch, "/dags/{dag_id}/dagRuns/{dag_run_id}/setNote", Op::SetRunNote),
    route(Verb::Post, "/dags/{dag_id}/dagRuns/{dag_run_id}/clear", Op::ClearRun),
    route(Verb::Get, "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", Op::ListTis),
    route(Verb::Get, TI, Op::GetTi),
    route(Verb::Patch, TI, Op::PatchTi),
    route(
        Verb::Patch,
        "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/setNote",
        Op::SetTiNote,
    ),
    route(
        Verb::Post,
        "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/clear",
        Op::ClearTi,
    ),
    route(
        Verb::Get,
        "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
        Op::GetLog,
    ),
    route(Verb::Get, "/backfills", Op::ListBackfills),
    route(Verb::Post, "/backfills", Op::CreateBackfill),
    route(Verb::Get, "/backfills/{backfill_id}", Op::GetBackfill),
    route(Verb::Patch, "/backfills/{backfill_id}", Op::PatchBackfill),
    route(Verb::Post, "/backfills/{backfill_id}/cancel", Op::CancelBackfill),
    route(Verb::Get, "/assets", Op::ListAssets),
    route(Verb::Get, "/assets/events", Op::ListAssetEvents),
    route(Verb::Post, "/assets/events", Op::PostAssetEvent),
    route(Verb::Get, "/importErrors", Op::ImportErrors),
    route(Verb::Get, "/health", Op::Health),
    route(Verb::Get, "/openapi.json", Op::OpenApi),
];

/// The handler of `op` for `verb`. The match is exhaustive: a new `Op` needs a handler here
/// and a description in `openapi`.
fn endpoint(verb: Verb, op: Op) -> MethodRouter<AppState> {
    let f = verb.filter();
    match op {
        Op::ListDags => on(f, dags::list),
        Op::GetDag => on(f, dags::get),
        Op::PatchDag => on(f, dags::patch),
        Op::ListRuns => on(f, runs::list),
        Op::TriggerRun => on(f, runs::trigger),
        Op::GetRun => on(f, runs::get),
        Op::PatchRun => on(f, runs::patch),
        Op::DeleteRun => on(f, runs::delete),
        Op::SetRunNote => on(f, runs::set_note),
        Op::SetTiNote => on(f, runs::set_ti_note),
        Op::ListTis => on(f, tis::list),
        Op::GetTi => on(f, tis::get),
        Op::PatchTi => on(f, tis::patch),
        Op::ClearTi => on(f, tis::clear),
        Op::ClearRun => on(f, runs::clear),
        Op::GetLog => on(f, logs::get),
        Op::ImportErrors => on(f, dags::import_errors),
        Op::Health => on(f, super::metrics::health),
        Op::OpenApi => on(f, openapi::serve),
        Op::ListBackfills => on(f, backfills::list),
        Op::CreateBackfill => on(f, backfills::create),
        Op::GetBackfill => on(f, backfills::get),
        Op::PatchBackfill => on(f, backfills::patch),
        Op::CancelBackfill => on(f, backfills::cancel),
        Op::ListAssets => on(f, assets::list),
        Op::ListAssetEvents => on(f, assets::events),
        Op::PostAssetEvent => on(f, assets::post_event),
    }
}

/// Routes of the API: exactly [`ROUTES`]. A known path with another method gets a JSON 405,
/// an unknown path under [`PREFIX`] a JSON 404.
pub fn router() -> Router<AppState> {
    let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
    paths.dedup();
    let mut app = Router::new();
    for path in paths {
        let here: Vec<&Route> = ROUTES.iter().filter(|r| r.path == path).collect();
        let allow: Vec<String> = here.iter().map(|r| r.verb.as_str().to_uppercase()).collect();
        let allow = allow.join(", ");
        let methods = here
            .iter()
            .fold(MethodRouter::new(), |m, r| m.merge(endpoint(r.verb, r.op)))
            .fallback(move || method_not_allowed(allow.clone()));
        app = app.route(&format!("{PREFIX}{path}"), methods);
    }
    // Unknown paths under the prefix answer JSON too (the routes above take precedence).
    app.route(&format!("{PREFIX}/{{*rest}}"), axum::routing::any(not_found))
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such API path: see /api/v1/openapi.json")
}

/// A JSON 405 with the `Allow` header HTTP requires (the methods this path has).
async fn method_not_allowed(allow: String) -> Response {
    let mut resp =
        json_error(StatusCode::METHOD_NOT_ALLOWED, "this method is not allowed on this path");
    if let Ok(v) = axum::http::HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

/// Header carrying the session's CSRF token when the API is called with a session cookie
/// rather than a bearer token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A request body, read but not yet interpreted: handlers call [`JsonBody::parse`] after
/// `require`, so a refused user learns nothing about the body's validity. Every state-changing
/// route takes one, which is where the CSRF check of cookie-authenticated calls lives.
pub struct JsonBody {
    bytes: Bytes,
    json_type: bool,
    csrf: Option<String>,
}

impl JsonBody {
    /// The body as `T`, for `user`. Refuses (each a 400 naming the problem): a body that is
    /// not declared `application/json`, syntax errors, unknown fields, wrong types. An empty
    /// body stands for `{}`, so bodies whose fields are all optional may be left out. A caller
    /// authenticated by session cookie (not a bearer token) must also send the session's CSRF
    /// token in `X-CSRF-Token` (403 otherwise): a cookie goes along with requests other sites
    /// make, a bearer token does not.
    pub fn parse<T: DeserializeOwned>(&self, user: &Principal) -> Result<T, ApiError> {
        if let Some(expected) = user.csrf.as_deref() {
            let given = self.csrf.as_deref().unwrap_or("");
            if expected.is_empty() || !super::auth::same_secret(expected, given) {
                return Err(ApiError(WebError::Csrf));
            }
        }
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(parse_json(b"{}")?);
        }
        if !self.json_type {
            return Err(ApiError(WebError::BadRequest(
                "send the body as JSON with `Content-Type: application/json`".into(),
            )));
        }
        // serde would also read a struct from an array (`[true]`): every body is an object.
        if self.bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError(WebError::BadRequest(
                "request body: must be a JSON object, like {\"field\": value}".into(),
            )));
        }
        Ok(parse_json(&self.bytes)?)
    }
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Self::Rejection> {
        let json_type = is_json(req.headers());
        let csrf = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| {
            json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body unreadable or over 1 MiB")
        })?;
        Ok(JsonBody { bytes, json_type, csrf })
    }
}

/// Parses `bytes` as one `T`, naming the field that failed (`conf.x`, `is_paused`). Anything
/// but whitespace after the value is refused: `{"a": 1} x` is not a JSON document, and a
/// body one reader takes differently from another is how request smuggling starts.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WebError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            WebError::BadRequest(format!("request body: {inner}"))
        } else {
            WebError::BadRequest(format!("request body, field `{path}`: {inner}"))
        }
    })?;
    de.end().map_err(|e| {
        WebError::BadRequest(format!("request body: text after the JSON object ({e})"))
    })?;
    Ok(value)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"))
}

/// Query parameters of type `T`; a value that does not parse is a JSON 400 naming it.
pub struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(QueryArgs).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = if path == "." {
                format!("query string: {inner}")
            } else {
                format!("query parameter `{path}`: {inner}")
            };
            ApiError(WebError::BadRequest(msg))
        })
    }
}

/// Path parameters of type `T`; a segment that does not parse is a JSON 400.
pub struct PathArgs<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathArgs(p.0))
            .map_err(|e| ApiError(WebError::BadRequest(format!("path: {}", e.body_text()))))
    }
}

/// `limit` as given, defaulted and capped; negative values are refused.
pub fn page_limit(limit: Option<i64>) -> Result<i64, WebError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if n < 1 => {
            Err(WebError::BadRequest(format!("query parameter `limit`: {n} is below 1")))
        }
        Some(n) => Ok(n.min(MAX_LIMIT)),
    }
}

/// Seconds between two times, for `duration` fields.
pub fn seconds(
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<f64> {
    let (s, e) = (start?, end?);
    Some((e - s).num_microseconds()? as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_one_route_and_paths_are_unique_per_method() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.verb, r.path)), "{:?} {} twice", r.verb, r.path);
            assert!(r.path.starts_with('/'), "{}", r.path);
        }
        // Routes of one path are adjacent, which `router` relies on to merge them.
        let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        paths.dedup();
        let distinct: std::collections::HashSet<_> = paths.iter().collect();
        assert_eq!(paths.len(), distinct.len());
    }

    #[test]
    fn body_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct B {
            is_paused: bool,
        }
        let e = parse_json::<B>(br#"{"is_paused": "yes"}"#).expect_err("wrong type");
        assert!(e.to_string().contains("`is_paused`"), "{e}");
        let e = parse_json::<B>(br#"{"is_paused": true, "x": 1}"#).expect_err("unknown");
        assert!(e.to_string().contains("unknown field `x`"), "{e}");
        let e = parse_json::<B>(br#"{"is_paused": tru"#).expect_err("syntax");
        assert!(e.to_string().starts_with("request body"), "{e}");
        let e =
            parse_json::<B>(br#"{"is_paused": true} {"is_paused": false}"#).expect_err("trailing");
        assert!(e.to_string().contains("text after the JSON object"), "{e}");
        assert!(parse_json::<B>(b"{\"is_paused\": true} \n\t").is_ok());
        assert_eq!(page_limit(Some(5000)).expect("capped"), MAX_LIMIT);
        assert!(page_limit(Some(0)).is_err());
    }
}
