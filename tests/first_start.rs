//! What a newcomer meets on the first start: the example DAGs that need servers a fresh machine
//! lacks start paused, saying what they need, while the others run green; logs written to a
//! pipe or a file carry no colour codes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Db, Env, assert_success};
use updraft::model::DagRunState;

const LIMIT: Duration = Duration::from_secs(120);
const STREAMING: [&str; 2] = ["market_data_lake", "user_ingestion"];

/// An engine over a copy of the repository's `dags/` folder, as `standalone` reads it.
async fn env_with_example_dags() -> Env {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags");
    for entry in std::fs::read_dir(examples).expect("dags/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        env.write_dag(&name, &std::fs::read_to_string(&path).expect("read"));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_examples_start_paused_and_the_rest_runs_green() {
    let env = env_with_example_dags().await;
    let running = env.start().await;
    env.wait_until("every example DAG recorded", LIMIT, || async {
        env.store.list_dags().await.map(|d| d.len() == 4).unwrap_or(false)
    })
    .await;
    for dag in env.store.list_dags().await.expect("dags") {
        let streaming = STREAMING.contains(&dag.dag_id.as_str());
        assert_eq!(dag.is_paused, streaming, "{} paused on its first sync", dag.dag_id);
        if streaming {
            let says = dag.description.unwrap_or_default();
            assert!(says.contains("Needs Kafka"), "{}: {says}", dag.dag_id);
            assert!(says.contains("scripts/examples.sh start"), "{}: {says}", dag.dag_id);
        }
    }
    // csv_etl is hourly without catch-up: its latest interval runs at once, and succeeds.
    env.wait_until("csv_etl's first run", LIMIT, || async {
        env.store.list_runs("csv_etl", None, 10).await.map(|r| !r.is_empty()).unwrap_or(false)
    })
    .await;
    let first = env.store.list_runs("csv_etl", None, 10).await.expect("runs");
    assert_eq!(first.len(), 1, "one run, no catch-up");
    assert_success(&env.wait_run(first[0].id, LIMIT).await);
    for dag_id in STREAMING {
        let runs = env.store.list_runs(dag_id, None, 10).await.expect("runs");
        assert!(runs.is_empty(), "{dag_id} created a run while paused: {runs:?}");
    }
    for dag_id in ["csv_etl", "file_drop"] {
        let runs = env.store.list_runs(dag_id, None, 10).await.expect("runs");
        assert!(runs.iter().all(|r| r.state != DagRunState::Failed), "{dag_id}: {runs:?}");
    }

    // The field is read when the DAG row is created, never again: an unpaused example whose
    // file changes stays unpaused.
    env.store.set_paused("user_ingestion", false).await.expect("unpause");
    let before = env.store.get_dag("user_ingestion").await.expect("dag").source;
    env.write_dag("user_ingestion.yaml", &format!("{before}# edited\n"));
    env.wait_until("the edit synced", LIMIT, || async {
        env.store.get_dag("user_ingestion").await.map(|d| d.source != before).unwrap_or(false)
    })
    .await;
    assert!(!env.store.get_dag("user_ingestion").await.expect("dag").is_paused);
    running.stop().await;
}

/// Runs `updraft dags list` on an empty home with every log line enabled, through `shell`.
fn dags_list_logs(shell: &str, no_color: Option<&str>) -> Vec<u8> {
    let home = tempfile::tempdir().expect("home");
    let dags = tempfile::tempdir().expect("dags");
    std::fs::write(dags.path().join("a.yaml"), "tasks:\n  a: {type: empty}\n").expect("dag");
    let bin = env!("CARGO_BIN_EXE_updraft");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(shell.replace("BIN", bin))
        .current_dir(home.path())
        .env("UPDRAFT_HOME", home.path())
        .env("UPDRAFT_DAGS_FOLDER", dags.path())
        .env("UPDRAFT_LOG", "debug")
        .env_remove("UPDRAFT_DATABASE_URL")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = cmd.output().expect("run the shell");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    [out.stdout, out.stderr].concat()
}

const ESC: u8 = 0x1b;

#[test]
fn logs_to_a_pipe_or_a_file_carry_no_colour_codes() {
    let piped = dags_list_logs("BIN dags list 2>&1 | cat", None);
    let text = String::from_utf8_lossy(&piped);
    assert!(text.contains("DEBUG") || text.contains("INFO"), "no log lines: {text}");
    assert!(!piped.contains(&ESC), "ESC in piped logs: {text:?}");
    let to_file = dags_list_logs("BIN dags list 2> log.txt; cat log.txt", None);
    assert!(!to_file.is_empty() && !to_file.contains(&ESC), "{to_file:?}");
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    // util-linux's `script` gives the command a pseudo-terminal and copies what it writes.
    let on_terminal = "script -qec 'BIN dags list' /dev/null";
    assert!(dags_list_logs(on_terminal, None).contains(&ESC), "a terminal gets colour");
    let plain = dags_list_logs(on_terminal, Some("1"));
    assert!(!plain.is_empty() && !plain.contains(&ESC), "NO_COLOR=1 turns colour off");
}
