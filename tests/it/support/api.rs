//! Fixtures of the REST API tests: a store with DAG files loaded by a running engine, users
//! with API tokens for each role and the web server on 127.0.0.1 (both from `web`), and a
//! client that checks every answer is JSON.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::common::{Env, Running};
use crate::support::web::{self, WebApp};

/// The main DAG: params, two chained tasks writing several log lines, a third downstream.
pub const HELLO: &str = r#"
dag_id: hello
description: says hello
owner: alice
tags: [demo, api]
params: { greeting: hi }
tasks:
  first:
    type: bash
    command: |
      echo "line one {{ params.greeting }}"
      echo "line two"
      echo "line three"
  second:
    type: bash
    depends_on: [first]
    retries: 1
    command: echo "second saw {{ params.greeting }}"
  third:
    type: bash
    depends_on: [second]
    command: echo third
"#;

/// A small manual DAG for the list filters; `paused` sets `is_paused_upon_creation`.
pub fn small_dag(dag_id: &str, owner: &str, tag: &str, paused: bool) -> String {
    format!(
        "dag_id: {dag_id}\nowner: {owner}\ntags: [{tag}]\nis_paused_upon_creation: {paused}\n\
         tasks:\n  only:\n    type: empty\n"
    )
}

/// An environment with the engine and the web server running, and a token per role.
pub struct ApiEnv {
    pub env: Env,
    engine: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
    pub viewer: String,
    pub operator: String,
    pub admin: String,
    /// A user with no role at all (may authenticate, may do nothing).
    pub nobody: String,
    /// The server, stopped when this is dropped.
    _app: WebApp,
}

/// What the server answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiEnv {
    /// Stops the engine (waiting for it) and the server.
    pub async fn stop(mut self) {
        if let Some(engine) = self.engine.take() {
            engine.stop().await;
        }
    }

    /// Writes `dags` (file name, YAML), starts the engine, waits until `wait_for` are loaded,
    /// creates the users and starts the server.
    pub async fn start(env: Env, dags: &[(&str, String)], wait_for: &[&str]) -> ApiEnv {
        for (name, yaml) in dags {
            env.write_dag(name, yaml);
        }
        let engine = env.start().await;
        for id in wait_for {
            env.wait_until(&format!("DAG {id} loaded"), Duration::from_secs(30), || async {
                env.store.get_dag(id).await.is_ok()
            })
            .await;
        }
        let token = async |name, roles| web::logged_in(&env.store, name, roles).await.token;
        let viewer = token("viewer", &["viewer"]).await;
        let operator = token("operator", &["operator"]).await;
        let admin = token("admin", &["admin"]).await;
        let nobody = token("nobody", &[]).await;
        let app = WebApp::serve(&env).await;
        ApiEnv {
            env,
            engine: Some(engine),
            base: app.base.clone(),
            client: updraft::tls::http_client().build().expect("client"),
            viewer,
            operator,
            admin,
            nobody,
            _app: app,
        }
    }

    /// Sends a request to `/api/v1{path}`; `body` is sent as JSON text when given. Asserts the
    /// answer is declared and parses as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self.client.request(method.clone(), &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.expect("body");
        if status == reqwest::StatusCode::NO_CONTENT {
            assert!(text.is_empty(), "{method} {path} -> 204 with a body: {text}");
            return Answer { status, body: Value::Null };
        }
        assert!(
            kind.starts_with("application/json"),
            "{method} {path} -> {status} with content type `{kind}`: {text}"
        );
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path} -> {status}: not JSON ({e}): {text}"));
        Answer { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// GET that must answer 200.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let a = self.get(path, token).await;
        assert_eq!(a.status, StatusCode::OK, "GET {path}: {}", a.body);
        a.body
    }

    pub async fn post(&self, path: &str, token: &str, body: &str) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &str) -> Answer {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    /// Polls the run through the API until it is finished (bounded); returns it.
    pub async fn wait_run(&self, dag_id: &str, run_id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        let path = format!("/dags/{dag_id}/dagRuns/{}", enc(run_id));
        loop {
            let run = self.get_ok(&path, &self.viewer).await;
            if matches!(run["state"].as_str(), Some("success" | "failed")) {
                return run;
            }
            assert!(start.elapsed() < limit, "run {run_id} not finished after {limit:?}: {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Percent-encodes a path segment (run ids hold `:` and `+`).
pub fn enc(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
