//! What a task can read: a bash task's environment holds none of the server's secrets
//! (connections, the secret key, database URLs, Updraft's own settings), and every known
//! connection password (from the environment or stored by an admin) is masked in every log
//! line, error and rendered field of every task, including tasks that never named the
//! connection.

use crate::support::common;

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use common::{Db, Env};
use serde_json::json;
use updraft::secrets::SecretBox;
use updraft::store::ConnectionRow;

const LIMIT: Duration = Duration::from_secs(60);

/// The environment of `updraft dags test` holds a connection, the secret key and database
/// URLs: `env` in a task lists none of them, and a password echoed by hand is masked.
#[test]
fn a_task_environment_holds_no_server_secrets() {
    let home = tempfile::tempdir().unwrap();
    let dags = tempfile::tempdir().unwrap();
    std::fs::write(
        dags.path().join("dump.yaml"),
        "dag_id: dump\ntasks:\n  env:\n    type: bash\n    command: 'env | sort; echo \"typed WarehousePw9 by hand\"'\n    env: { MINE: kept }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(["dags", "test", "dump"])
        .env("UPDRAFT_HOME", home.path())
        .env("UPDRAFT_DAGS_FOLDER", dags.path())
        .env("UPDRAFT_LOG", "warn")
        .env("UPDRAFT_CONN_WAREHOUSE", "postgres://etl:WarehousePw9@127.0.0.1:1/dw")
        .env("UPDRAFT_SECRET_KEY", "SecretKeyValue42")
        .env("UPDRAFT_DATABASE_URL", "postgres://u:DbUrlPw7@127.0.0.1:1/meta")
        .env("UPDRAFT_TEST_DATABASE_URL", "postgres://u:TestDbPw5@127.0.0.1:1/t")
        .env("UPDRAFT_VAR_REGION", "eu-west")
        .env("ORDINARY_SETTING", "inherited")
        .output()
        .expect("run updraft");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    for secret in ["WarehousePw9", "SecretKeyValue42", "DbUrlPw7", "TestDbPw5"] {
        assert!(!text.contains(secret), "`{secret}` reached the task log:\n{text}");
    }
    for name in [
        "UPDRAFT_CONN_",
        "UPDRAFT_SECRET_KEY",
        "UPDRAFT_DATABASE_URL",
        "UPDRAFT_TEST_",
        "UPDRAFT_VAR_",
        "UPDRAFT_HOME",
    ] {
        assert!(!text.contains(name), "`{name}` is in the task environment:\n{text}");
    }
    assert!(text.contains("typed *** by hand"), "the password is masked:\n{text}");
    assert!(text.contains("ORDINARY_SETTING=inherited"), "the rest is inherited:\n{text}");
    assert!(text.contains("MINE=kept") && text.contains("UPDRAFT_CTX_TASK_ID=env"), "{text}");
}

/// A stored connection and an environment one: a task that names neither still has both
/// passwords (and a stored token) masked in its log, its error and its rendered fields.
async fn every_known_password_is_masked_in_every_task(env: Env) {
    let mut env = env;
    env.settings
        .connections
        .insert("warehouse".into(), "postgres://etl:EnvPassw0rd@127.0.0.1:1/dw".into());
    let secrets = SecretBox::for_settings(&env.settings).expect("secret key");
    let uri = "http://svc:Stored%2FPass@127.0.0.1:1/?api_key=StoredToken123&region=eu";
    env.store
        .set_connection(&ConnectionRow {
            conn_id: "api".into(),
            conn_type: "http".into(),
            description: String::new(),
            uri_encrypted: secrets.encrypt(uri),
            updated_at: Utc::now(),
        })
        .await
        .expect("store connection");
    env.write_dag(
        "leaky.yaml",
        r#"
dag_id: leaky
tasks:
  talk:
    type: bash
    env: { COPY: "EnvPassw0rd" }
    command: echo "env EnvPassw0rd stored Stored/Pass raw Stored%2FPass token StoredToken123 region eu"
  fail:
    type: bash
    command: echo "dying with StoredToken123" >&2; exit 3
"#,
    );
    let running = env.start().await;
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("leaky").await.is_ok() })
        .await;
    let run = env.trigger("leaky", json!({})).await;
    let done = env.wait_run(run.id, LIMIT).await;
    running.stop().await;
    assert_eq!(done.state, updraft::model::DagRunState::Failed, "`fail` fails");
    let tis = env.tis(run.id).await;
    let talk = tis.iter().find(|t| t.task_id == "talk").expect("talk");
    let fail = tis.iter().find(|t| t.task_id == "fail").expect("fail");
    let log = env.log(talk, 1) + &env.log(fail, 1);
    for secret in ["EnvPassw0rd", "Stored/Pass", "Stored%2FPass", "StoredToken123"] {
        assert!(!log.contains(secret), "`{secret}` in a log:\n{log}");
    }
    assert!(log.contains("env *** stored *** raw *** token *** region eu"), "{log}");
    let note = fail.note.clone().unwrap_or_default();
    assert!(note.contains("dying with ***"), "the error is masked: {note}");
    let rendered = env.store.ti_rendered(talk.id).await.expect("rendered");
    let rendered = serde_json::Value::Object(rendered).to_string();
    assert!(!rendered.contains("EnvPassw0rd") && rendered.contains("***"), "{rendered}");
    let xcom = env.store.run_xcoms(run.id).await.expect("xcom");
    assert!(xcom.iter().all(|x| !x.value.to_string().contains("StoredToken123")), "{xcom:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_known_password_is_masked_sqlite() {
    every_known_password_is_masked_in_every_task(Env::new(Db::Sqlite).await.expect("env")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_known_password_is_masked_postgres() {
    if let Some(env) = Env::new(Db::Postgres).await {
        every_known_password_is_masked_in_every_task(env).await;
    }
}
