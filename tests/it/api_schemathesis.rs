//! The REST API against its own OpenAPI document, by schemathesis: generated requests (valid
//! ones, and invalid ones that must be refused) to a served app on 127.0.0.1, every answer
//! checked against the document (status codes, headers, content types, schemas).
//!
//! The tool is installed by `scripts/schemathesis.sh install` (the test command does it);
//! this test finds it through `UPDRAFT_TEST_SCHEMATHESIS` or the script's default place. When
//! it is missing the test skips with a note, except in CI, where it fails. The run is bounded:
//! a fixed number of examples per operation, a fixed seed, and a wall-clock limit after which
//! the tool is killed and the test fails.

use crate::support::api as api_support;
use crate::support::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use api_support::ApiEnv;
use common::{Db, Env};
use serde_json::json;

/// Longest the tool may run.
const WALL: Duration = Duration::from_secs(240);

/// The DAG the generated requests find: two tasks with logs, no params — the document cannot
/// know one DAG's param types, so a conf it calls valid must be valid for the DAG.
const DAG: &str = r#"
dag_id: fuzzed
tasks:
  first:
    type: bash
    command: echo "first says hi"
  second:
    type: bash
    depends_on: [first]
    command: echo "second says hi"
"#;

/// The `st` executable, or None when it is not installed (outside CI).
fn schemathesis() -> Option<PathBuf> {
    let given = std::env::var_os("UPDRAFT_TEST_SCHEMATHESIS").map(PathBuf::from);
    let cache = std::env::var_os("UPDRAFT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/updraft")));
    let default = cache.map(|c| c.join("schemathesis/bin/st"));
    let found = given.or(default).filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis is missing in CI: scripts/schemathesis.sh install must run first"
        );
        eprintln!(
            "schemathesis not installed: SKIPPED (run scripts/schemathesis.sh install, or set \
             UPDRAFT_TEST_SCHEMATHESIS)"
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_every_promise_of_its_document() {
    let Some(st) = schemathesis() else { return };
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let api = ApiEnv::start(env, &[("fuzzed.yaml", DAG.to_string())], &["fuzzed"]).await;
    // A finished run, so that reads of runs, task instances and logs have something to find;
    // then paused, so the runs the tool triggers wait in the queue.
    let run = api.post("/dags/fuzzed/dagRuns", &api.operator, r#"{"dag_run_id": "known"}"#).await;
    assert_eq!(run.status, reqwest::StatusCode::OK, "{}", run.body);
    api.env.store.set_paused("fuzzed", false).await.expect("unpause");
    api.wait_run("fuzzed", "known", Duration::from_secs(60)).await;
    api.env.store.set_paused("fuzzed", true).await.expect("pause");
    let report = tempfile::tempdir().expect("report dir");
    let mut cmd = tokio::process::Command::new(&st);
    cmd.arg("run")
        .arg(format!("{}/api/v1/openapi.json", api.base))
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {}", api.operator)])
        // One worker: with two, hypothesis's description cache (not thread-safe) can raise a
        // KeyError inside the tool, a crash reported as an error of the operation under test.
        .args(["--max-examples", "40", "--seed", "7", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "10", "--no-color"])
        .arg("--report-dir")
        .arg(report.path())
        .current_dir(report.path())
        // Its caches stay in the temporary folder; it sends requests only to the app.
        .env("HOME", report.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(WALL, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran longer than {WALL:?}"))
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schemathesis found problems:\n{text}\n{err}");
    assert!(text.contains("passed"), "no test ran:\n{text}");
    eprintln!("{text}");
    // The app is still fine after it: the DAG answers as before.
    let dag = api.get_ok("/dags/fuzzed", &api.viewer).await;
    assert_eq!(dag["dag_id"], json!("fuzzed"));
    api.stop().await;
}
