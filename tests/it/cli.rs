//! The `updraft` binary as a user runs it: validate, test, show, trigger, list; and the shipped
//! files (example DAGs, docker-compose.yaml).

use std::path::Path;
use std::process::{Command, Output};

fn updraft(args: &[&str], home: &Path, dags: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(args)
        .env("UPDRAFT_HOME", home)
        .env("UPDRAFT_DAGS_FOLDER", dags)
        .env("UPDRAFT_LOG", "warn")
        .env_remove("UPDRAFT_DATABASE_URL")
        .output()
        .expect("run updraft")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn every_example_dag_is_valid() {
    let home = tempfile::tempdir().unwrap();
    let out = updraft(&["dags", "validate"], home.path(), &repo("dags"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("0 file(s) with 0 error(s)"), "{}", text(&out));
}

#[test]
fn validate_reports_each_broken_file_with_its_position_and_fails() {
    let home = tempfile::tempdir().unwrap();
    let dags = tempfile::tempdir().unwrap();
    std::fs::write(dags.path().join("good.yaml"), "dag_id: good\ntasks:\n  a: { type: empty }\n")
        .unwrap();
    std::fs::write(
        dags.path().join("typo.yaml"),
        "dag_id: typo\ntasks:\n  a:\n    type: bash\n    comand: echo\n",
    )
    .unwrap();
    std::fs::write(
        dags.path().join("cycle.yaml"),
        "dag_id: cycle\ntasks:\n  a: { type: empty, depends_on: [b] }\n  b: { type: empty, depends_on: [a] }\n",
    )
    .unwrap();
    std::fs::write(
        dags.path().join("cron.yaml"),
        "dag_id: cron\nschedule: '61 * * * *'\ntasks:\n  a: { type: empty }\n",
    )
    .unwrap();
    let out = updraft(&["dags", "validate"], home.path(), dags.path());
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("typo.yaml:5:5:") && t.contains("comand") && t.contains("command"), "{t}");
    assert!(
        t.contains("cycle.yaml:") && t.contains("a -> b -> a") || t.contains("b -> a -> b"),
        "{t}"
    );
    assert!(t.contains("cron.yaml:2:"), "{t}");
    assert!(t.contains("1 DAG(s) valid, 3 file(s)"), "{t}");
}

#[test]
fn dags_test_runs_the_example_etl_and_prints_json_states() {
    let home = tempfile::tempdir().unwrap();
    let out = updraft(
        &["dags", "test", "csv_etl", "--conf", r#"{"rows": 40}"#, "--json"],
        home.path(),
        &repo("dags"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let rows = rows.as_array().expect("a list");
    let state = |task: &str| {
        rows.iter()
            .find(|r| r["task_id"] == task)
            .map(|r| r["state"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(state("extract").as_deref(), Some("success"));
    assert_eq!(rows.iter().filter(|r| r["task_id"] == "aggregate").count(), 4, "one per region");
    assert_eq!(state("big_day").as_deref(), Some("skipped"), "40 rows never reach the threshold");
    assert_eq!(state("celebrate").as_deref(), Some("skipped"));
    assert_eq!(state("alert").as_deref(), Some("skipped"));
    assert_eq!(state("cleanup").as_deref(), Some("success"));
    assert!(rows.iter().all(|r| r.get("map_index").is_some() && r.get("try_number").is_some()));
}

#[test]
fn dags_test_fails_with_the_failed_run() {
    let home = tempfile::tempdir().unwrap();
    let dags = tempfile::tempdir().unwrap();
    std::fs::write(
        dags.path().join("bad.yaml"),
        "dag_id: bad\ntasks:\n  boom: { type: bash, command: 'exit 4' }\n",
    )
    .unwrap();
    let out = updraft(&["dags", "test", "bad"], home.path(), dags.path());
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("boom: failed") && t.contains("code 4"), "{t}");
}

#[test]
fn show_trigger_list_and_unknown_dag() {
    let home = tempfile::tempdir().unwrap();
    let dags = repo("dags");
    let out = updraft(&["dags", "show", "csv_etl"], home.path(), &dags);
    assert!(out.status.success());
    assert!(text(&out).contains("aggregate [bash] (mapped) <- validate"), "{}", text(&out));
    let out =
        updraft(&["dags", "trigger", "csv_etl", "--conf", r#"{"rows": 5}"#], home.path(), &dags);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("queued"));
    let out = updraft(&["dags", "trigger", "csv_etl", "--conf", "[1]"], home.path(), &dags);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--conf must be a JSON object"));
    let out = updraft(&["dags", "test", "nope"], home.path(), &dags);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no DAG `nope`"));
    let out = updraft(&["dags", "list", "--json"], home.path(), &dags);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|d| d["dag_id"] == "csv_etl" && d["schedule"] == "@hourly")
    );
}

/// A DAG with typed params, written to a fresh DAGs folder.
const TYPED: &str = "dag_id: typed\nparams:\n  rows: 50\n  n: {type: integer, minimum: 1, \
    maximum: 1000, default: 10}\ntasks:\n  a:\n    type: bash\n    command: echo rows={{ params.rows }}\n";

#[test]
fn trigger_and_test_check_conf_and_run_ids_like_the_api() {
    let (home, dags) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(dags.path().join("typed.yaml"), TYPED).unwrap();
    let run = |args: &[&str]| updraft(args, home.path(), dags.path());
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["dags", "trigger", "typed", "--conf", r#"{"rows": "50"}"#],
            1,
            "param `rows`: expected an integer, got the text `50`",
        ),
        (
            &["dags", "trigger", "typed", "--conf", r#"{"n": 0}"#],
            1,
            "param `n`: expected an integer from 1 to 1000",
        ),
        (&["dags", "test", "typed", "--conf", r#"{"rows": "1; id"}"#], 1, "param `rows`"),
        (&["dags", "trigger", "typed", "--run-id", ".."], 2, "run id `..` cannot be `.` or `..`"),
        (&["dags", "trigger", "typed", "--run-id", "a\\b"], 2, "contains `/` or `\\`"),
    ];
    for (args, code, words) in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(words), "{args:?}: {}", text(&out));
    }
    // Nothing was created by the refused triggers; a good one is, and is audited as the OS user.
    let out = run(&["dags", "trigger", "typed", "--run-id", "cli-1", "--conf", r#"{"rows": 5}"#]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["dags", "test", "typed", "--conf", r#"{"rows": 6}"#, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", home.path().join("updraft.db").display());
        let store = updraft::store::Store::open(&url).await.expect("store");
        let runs = store.list_runs("typed", None, 10).await.expect("runs");
        let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["cli-1"]);
        assert_eq!(runs[0].conf["rows"], 5);
        let who = runs[0].triggered_by.clone().unwrap_or_default();
        assert!(who.starts_with("cli:") && who.len() > 4, "{who}");
        let audit = store.list_audit(None, None, 10).await.expect("audit");
        assert!(audit.iter().any(|a| a.event == "trigger" && a.username == who), "{audit:?}");
    });
}

#[test]
fn docker_compose_describes_the_whole_stack() {
    let text = std::fs::read_to_string(repo("docker-compose.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("docker-compose.yaml parses");
    let services = doc["services"].as_mapping().expect("services");
    for name in [
        "postgres",
        "updraft-scheduler",
        "updraft-webserver",
        "updraft-worker",
        "kafka",
        "cassandra",
        "minio",
        "mysql",
        "mariadb",
        "schema-registry",
    ] {
        assert!(services.contains_key(name), "service {name}");
    }
    assert_eq!(doc["services"]["updraft-worker"]["deploy"]["replicas"].as_i64(), Some(2));
    assert_eq!(doc["services"]["updraft-scheduler"]["deploy"]["replicas"].as_i64(), Some(2));
    let command = |service: &str| -> Vec<String> {
        let cmd = doc["services"][service]["command"].as_sequence().expect("command");
        cmd.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
    };
    assert_eq!(command("updraft-scheduler"), ["scheduler"]);
    assert_eq!(command("updraft-webserver"), ["webserver"]);
    assert_eq!(command("updraft-worker")[0], "worker");
    // Every Updraft process shares the settings the README's scale-out section names, and the
    // log folder the webserver reads what workers wrote from.
    let shared = &doc["x-updraft-env"];
    assert_eq!(shared["UPDRAFT_EXECUTOR"].as_str(), Some("distributed"));
    let url = shared["UPDRAFT_DATABASE_URL"].as_str().unwrap_or_default();
    assert!(url.starts_with("postgres://") && url.contains("@postgres:"), "{url}");
    for var in ["UPDRAFT_SECRET_KEY", "UPDRAFT_HEARTBEAT_TIMEOUT", "UPDRAFT_PARALLELISM"] {
        assert!(shared[var].as_str().is_some_and(|v| !v.is_empty()), "{var} in x-updraft-env");
    }
    let volumes = doc["x-updraft"]["volumes"].as_sequence().expect("volumes");
    assert!(volumes.iter().any(|v| v.as_str() == Some("updraft-home:/opt/updraft/home")));
    assert_eq!(shared["UPDRAFT_HOME"].as_str(), Some("/opt/updraft/home"));
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    for promise in ["UPDRAFT_EXECUTOR=distributed", "updraft worker", "--scale updraft-worker="] {
        assert!(readme.contains(promise), "README: {promise}");
    }

    // The connections the Avro tasks and the flight-board mart use point at those services, and
    // the workers wait for both.
    let env = &doc["x-updraft-env"];
    let conn = |id: &str| env[id].as_str().unwrap_or_else(|| panic!("{id} in x-updraft-env"));
    let registry = conn("UPDRAFT_CONN_SCHEMA_REGISTRY_DEFAULT");
    assert_eq!(registry, "http://schema-registry:8080/apis/ccompat/v7");
    let image = doc["services"]["schema-registry"]["image"].as_str().unwrap_or_default();
    assert!(image.starts_with("apicurio/apicurio-registry:3."), "{image}");
    let mart = conn("UPDRAFT_CONN_MART");
    assert_eq!(mart, "mysql://updraft:updraft@mariadb:3306/mart");
    let mariadb = &doc["services"]["mariadb"];
    assert!(mariadb["image"].as_str().unwrap_or_default().starts_with("mariadb:"));
    assert_eq!(mariadb["environment"]["MARIADB_DATABASE"].as_str(), Some("mart"));
    assert_eq!(mariadb["environment"]["MARIADB_USER"].as_str(), Some("updraft"));
    assert_eq!(mariadb["environment"]["MARIADB_PASSWORD"].as_str(), Some("updraft"));
    let waits = &doc["services"]["updraft-worker"]["depends_on"];
    for dep in ["mariadb", "schema-registry"] {
        assert_eq!(
            waits[dep]["condition"].as_str(),
            Some("service_healthy"),
            "worker waits for {dep}"
        );
    }
}
