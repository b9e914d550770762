//! The `sql` and `sql_sensor` task types through the scheduler, on SQLite (always), PostgreSQL
//! (`UPDRAFT_TEST_DATABASE_URL`) and MariaDB (`UPDRAFT_TEST_MYSQL_URL`, scripts/mariadb.sh):
//! bound values and quoted identifiers, scripts split per dialect, transactions, fetch modes
//! and the XCom bound, output files, cancellation on the server, and the sensor. Each test
//! reads the results back with its own client (sqlx), not through Updraft.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use updraft::model::{DagRunState, TaskState};

use updraft::operators::{OperatorError, execute};

use crate::support::common::{Db, Env};
use crate::support::operators::Fixture;
use crate::support::sql::{Kind, Target, run_dag, targets};

const HOSTILE: &str = r#"it's "quoted"; DROP TABLE notes; --"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_bound_and_identifiers_quoted_or_refused() {
    for t in targets().await {
        let yaml = r#"
params: {evil: "", table: notes}
tasks:
  create:
    type: sql
    connection: db
    sql: CREATE TABLE notes (id INT, body VARCHAR(200))
  insert:
    type: sql
    connection: db
    depends_on: [create]
    sql: "INSERT INTO :!tbl (id, body) VALUES (:id, :body)"
    parameters: {id: 1, body: "{{ params.evil }}"}
    identifiers: {tbl: "{{ params.table }}"}
  inline_value:
    type: sql
    connection: db
    depends_on: [insert]
    sql: "SELECT {{ params.evil }} AS v, '{{ params.evil }}' AS w"
    fetch: one
"#;
        let ran = run_dag(&t, yaml, json!({"evil": HOSTILE, "table": "notes"})).await;
        ran.assert_states(&[("insert", TaskState::Success), ("inline_value", TaskState::Success)])
            .await;
        assert_eq!(t.column("SELECT body FROM notes").await, [HOSTILE], "{:?}", t.kind);
        assert_eq!(ran.xcom("inline_value").await, Some(json!({"v": HOSTILE, "w": HOSTILE})));

        // A name with a space is refused before anything reaches the database.
        let ran = run_dag(
            &t,
            &yaml.replace("sql: CREATE TABLE notes (id INT, body VARCHAR(200))", "sql: SELECT 1"),
            json!({"evil": "x", "table": "my table"}),
        )
        .await;
        assert_eq!(ran.state("insert").await, TaskState::Failed);
        let log = ran.log("insert").await;
        assert!(
            log.contains("task `insert`, `identifiers.tbl`: `my table` is not a plain identifier"),
            "{log}"
        );
        assert_eq!(t.count("SELECT COUNT(*) FROM notes").await, 1, "{:?}", t.kind);
    }
}

/// A script whose bodies hold `;`: a PostgreSQL function in dollar quotes, a trigger in
/// BEGIN ... END for MariaDB and SQLite.
fn body_script(kind: Kind) -> (&'static str, usize) {
    match kind {
        Kind::Postgres => (
            "CREATE TABLE items (n INT);\nCREATE TABLE audit (n INT);\n\
             CREATE FUNCTION log_item() RETURNS trigger AS $fn$\nBEGIN\n  \
             INSERT INTO audit VALUES (NEW.n); -- one; two\n  RETURN NEW;\nEND;\n$fn$ LANGUAGE plpgsql;\n\
             CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION log_item();\n\
             INSERT INTO items VALUES (1), (2);",
            5,
        ),
        Kind::MySql => (
            "CREATE TABLE items (n INT);\nCREATE TABLE audit (n INT);\n\
             CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW\nBEGIN\n  \
             IF NEW.n > 0 THEN\n    INSERT INTO audit VALUES (NEW.n);\n  END IF;\nEND;\n\
             INSERT INTO items VALUES (1), (2);",
            4,
        ),
        Kind::Sqlite => (
            "CREATE TABLE items (n INT);\nCREATE TABLE audit (n INT);\n\
             CREATE TRIGGER items_audit AFTER INSERT ON items\nBEGIN\n  \
             INSERT INTO audit VALUES (CASE WHEN NEW.n > 0 THEN NEW.n ELSE 0 END);\nEND;\n\
             INSERT INTO items VALUES (1), (2);",
            4,
        ),
    }
}

fn block(text: &str) -> String {
    text.lines().map(|l| format!("      {l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_split_per_dialect_and_transactions_roll_back() {
    for t in targets().await {
        let (script, n) = body_script(t.kind);
        let yaml = format!(
            "tasks:\n  setup:\n    type: sql\n    connection: db\n    script: |\n{}\
             \n  in_txn:\n    type: sql\n    connection: db\n    depends_on: [setup]\n    script: |\n\
             {}\
             \n  autocommit:\n    type: sql\n    connection: db\n    depends_on: [setup]\n    autocommit: true\n    script: |\n{}",
            block(script),
            block("INSERT INTO items VALUES (10);\nINSERT INTO no_such_table VALUES (1);"),
            block("INSERT INTO items VALUES (20);\nINSERT INTO no_such_table VALUES (1);"),
        );
        let ran = run_dag(&t, &yaml, json!({})).await;
        ran.assert_states(&[
            ("setup", TaskState::Success),
            ("in_txn", TaskState::Failed),
            ("autocommit", TaskState::Failed),
        ])
        .await;
        let log = ran.log("setup").await;
        assert!(
            log.contains(&format!("{n} statement(s) in one transaction")),
            "{:?}: {log}",
            t.kind
        );
        assert!(log.contains(&format!("statement {n}/{n} (line")), "{log}");
        // The trigger fired per row (its body ran as part of one statement), and its row for
        // the rolled-back insert is gone with it: 1 and 2 from setup, 20 from autocommit.
        assert_eq!(t.count("SELECT COUNT(*) FROM audit").await, 3, "{:?}", t.kind);
        // The failed transaction left nothing; autocommit kept the statement before the failure.
        let items = t.column("SELECT n FROM items ORDER BY n").await;
        assert_eq!(items, ["1", "2", "20"], "{:?}", t.kind);
        let log = ran.log("in_txn").await;
        assert!(
            log.contains("statement 2/2 (line 2) failed") && log.contains("rolled back"),
            "{log}"
        );
        let log = ran.log("autocommit").await;
        assert!(log.contains("the 1 statement(s) before it stay committed"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_modes_the_xcom_bound_and_output_files() {
    for t in targets().await {
        // 40 x 40 from a short recursion: MariaDB stops recursions at 1,000 steps by default.
        let fill = "CREATE TABLE nums (n INT);\nINSERT INTO nums (n) WITH RECURSIVE c(n) AS \
                    (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 40) SELECT (a.n - 1) * 40 + \
                    b.n FROM c a, c b WHERE (a.n - 1) * 40 + b.n <= 1500;";
        let typed = match t.kind {
            Kind::Postgres => {
                "SELECT CAST(12.5 AS NUMERIC(10,2)) AS d, TIMESTAMPTZ '2026-01-02 03:04:05+01' AS ts, \
                 DATE '2026-01-02' AS day, CAST(NULL AS TEXT) AS z, true AS b, 7 AS i, \
                 CAST(:day AS DATE) + 1 AS next_day, decode('0102', 'hex') AS raw"
            }
            Kind::MySql => {
                "SELECT CAST(12.5 AS DECIMAL(10,2)) AS d, TIMESTAMP('2026-01-02 02:04:05') AS ts, \
                 DATE('2026-01-02') AS day, NULL AS z, TRUE AS b, 7 AS i, \
                 DATE_ADD(:day, INTERVAL 1 DAY) AS next_day, x'0102' AS raw"
            }
            Kind::Sqlite => {
                "SELECT '12.50' AS d, '2026-01-02T02:04:05Z' AS ts, '2026-01-02' AS day, NULL AS z, \
                 1 AS b, 7 AS i, date(:day, '+1 day') AS next_day, x'0102' AS raw"
            }
        };
        let yaml = format!(
            "tasks:\n  fill:\n    type: sql\n    connection: db\n    script: |\n{}\
             \n  all:\n    type: sql\n    connection: db\n    depends_on: [fill]\n    sql: SELECT n FROM nums ORDER BY n\
             \n  one:\n    type: sql\n    connection: db\n    depends_on: [fill]\n    fetch: one\n    sql: SELECT n FROM nums ORDER BY n\
             \n  none:\n    type: sql\n    connection: db\n    depends_on: [fill]\n    fetch: none\n    sql: SELECT n FROM nums\
             \n  out:\n    type: sql\n    connection: db\n    depends_on: [fill]\n    output: \"nums_{{{{ ds_nodash }}}}.jsonl\"\n    sql: SELECT n FROM nums ORDER BY n\
             \n  typed:\n    type: sql\n    connection: db\n    fetch: one\n    parameters: {{day: \"2026-01-02\"}}\n    sql: \"{typed}\"\n",
            block(fill)
        );
        let ran = run_dag(&t, &yaml, json!({})).await;
        for task in ["fill", "all", "one", "none", "out", "typed"] {
            assert_eq!(
                ran.state(task).await,
                TaskState::Success,
                "{:?} {task}: {}",
                t.kind,
                ran.log(task).await
            );
        }
        let all = ran.xcom("all").await.expect("all");
        let all = all.as_array().expect("a list");
        assert_eq!(all.len(), 1000);
        assert_eq!((all[0].clone(), all[999].clone()), (json!({"n": 1}), json!({"n": 1000})));
        let log = ran.log("all").await;
        assert!(log.contains("XCom cut: it holds the first 1000 of 1500 rows"), "{log}");
        assert_eq!(ran.xcom("one").await, Some(json!({"n": 1})));
        assert_eq!(ran.xcom("none").await, None);
        let out = ran.xcom("out").await.expect("out");
        assert_eq!(out["rows"], json!(1500));
        let path = std::path::PathBuf::from(out["output"].as_str().expect("path"));
        let run_dir = updraft::operators::log_path::run_dir(
            &ran.env.settings.log_dir(),
            "d",
            &ran.run.run_id,
        );
        assert_eq!(
            path,
            run_dir.join(format!("nums_{}.jsonl", ran.run.logical_date.format("%Y%m%d")))
        );
        let lines: Vec<Value> = std::fs::read_to_string(&path)
            .expect("output file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 1500);
        assert_eq!(lines[1499], json!({"n": 1500}));
        let typed = ran.xcom("typed").await.expect("typed");
        let b = if t.kind == Kind::Sqlite { json!(1) } else { json!(true) };
        let want = json!({"d": "12.50", "ts": "2026-01-02T02:04:05Z", "day": "2026-01-02", "z": null,
                          "b": b, "i": 7, "next_day": "2026-01-03", "raw": "AQI="});
        if t.kind == Kind::MySql {
            // MariaDB reports TRUE as an integer and DATE_ADD on a string as text.
            assert_eq!(typed["d"], want["d"]);
            assert_eq!(typed["ts"], want["ts"]);
            assert_eq!(typed["raw"], want["raw"]);
            assert_eq!(typed["next_day"], json!("2026-01-03"));
        } else {
            assert_eq!(typed, want, "{:?}", t.kind);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_stops_the_statement_on_the_server() {
    for t in targets().await {
        let sleep = match t.kind {
            Kind::Postgres => "SELECT pg_sleep(60)",
            Kind::MySql => "SELECT SLEEP(60)",
            // Endless: only the interrupt ends it.
            Kind::Sqlite => {
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
            }
        };
        let yaml = format!(
            "tasks:\n  slow:\n    type: sql\n    connection: db\n    execution_timeout: 2s\n    sql: \"{sleep}\"\n"
        );
        let started = Instant::now();
        let ran = run_dag(&t, &yaml, json!({})).await;
        assert_eq!(ran.run.state, DagRunState::Failed);
        assert_eq!(ran.state("slow").await, TaskState::Failed);
        assert!(started.elapsed() < Duration::from_secs(40), "{:?}", started.elapsed());
        let log = ran.log("slow").await;
        assert!(log.contains("stopped on the server"), "{log}");
        let running = match t.kind {
            Kind::Postgres => Some(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' \
                 AND state = 'active' AND pid <> pg_backend_pid()",
            ),
            Kind::MySql => Some(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(60)'",
            ),
            Kind::Sqlite => None,
        };
        if let Some(sql) = running {
            assert_eq!(
                t.count(sql).await,
                0,
                "{:?}: the statement still runs on the server",
                t.kind
            );
        }
    }
}

/// The first cell is the first column of the query, whatever its name (`a_note`, which sorts
/// first, is not it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_sensor_pokes_until_true_and_times_out() {
    for t in targets().await {
        let mut c = t.client().await;
        sqlx::raw_sql("CREATE TABLE flags (name VARCHAR(20), ready INT)")
            .execute(&mut c)
            .await
            .expect("create");
        let yaml = "tasks:\n  wait:\n    type: sql_sensor\n    connection: db\n    poke_interval: 1s\n    \
                    timeout: 60s\n    sql: \"SELECT COUNT(*) AS z_count, 'not the first cell' AS a_note FROM flags WHERE name = :name AND ready = 1\"\n    \
                    parameters: {name: \"{{ params.flag }}\"}\n  \
                    never:\n    type: sql_sensor\n    connection: db\n    poke_interval: 1s\n    timeout: 2s\n    \
                    sql: SELECT ready FROM flags WHERE name = 'nothing'\n";
        let mut env = Env::new(Db::Sqlite).await.expect("env");
        env.settings.connections.insert("db".into(), t.url.clone());
        env.write_dag("d.yaml", &format!("dag_id: d\nparams: {{flag: go}}\n{yaml}"));
        let engine = env.start().await;
        env.wait_until("the DAG is loaded", Duration::from_secs(20), || async {
            env.store.get_dag("d").await.is_ok()
        })
        .await;
        let run = env.trigger("d", json!({})).await;
        env.wait_until("the sensor waits", Duration::from_secs(30), || async {
            let tis = env.tis(run.id).await;
            tis.iter().any(|t| t.task_id == "wait" && t.state == TaskState::UpForReschedule)
        })
        .await;
        sqlx::raw_sql("INSERT INTO flags VALUES ('go', 1)").execute(&mut c).await.expect("insert");
        let _ = c.close().await;
        let run = env.wait_run(run.id, Duration::from_secs(60)).await;
        engine.stop().await;
        assert_eq!(env.state(run.id, "wait").await, TaskState::Success, "{:?}", t.kind);
        assert_eq!(env.state(run.id, "never").await, TaskState::Failed, "{:?}", t.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_is_no_sql_database_fails_naming_task_field_and_connection() {
    let t = Target { kind: Kind::Sqlite, url: "redis://127.0.0.1:1/0".into(), _dir: None };
    let ran = run_dag(
        &t,
        "tasks:\n  q:\n    type: sql\n    connection: db\n    sql: SELECT 1\n",
        json!({}),
    )
    .await;
    assert_eq!(ran.state("q").await, TaskState::Failed);
    let log = ran.log("q").await;
    assert!(
        log.contains("task `q`, `connection`: connection `db` has scheme `redis`, which is not a SQL database"),
        "{log}"
    );
}

/// A kill (the try's cancellation token, as marking the instance failed fires it) while the
/// statement is seen running on the server: it is gone from the server when the try returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_stops_a_running_statement_on_the_server() {
    for t in targets().await {
        let (sleep, running) = match t.kind {
            Kind::Postgres => (
                "SELECT pg_sleep(61)",
                "SELECT COUNT(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(61)' \
                 AND state = 'active'",
            ),
            Kind::MySql => (
                "SELECT SLEEP(61)",
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(61)'",
            ),
            Kind::Sqlite => continue,
        };
        let task = format!("type: sql\nconnection: db\nsql: \"{sleep}\"");
        let f = Fixture::with_conns(&[("slow", &task)], &[("UPDRAFT_CONN_DB", &t.url)]).await;
        let ctx = f.ctx("slow").await;
        let cancel = ctx.cancel.clone();
        let try_ = tokio::spawn(async move { execute(&ctx).await });
        let start = Instant::now();
        while t.count(running).await == 0 {
            assert!(start.elapsed() < Duration::from_secs(20), "{:?}: never seen running", t.kind);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(15), try_)
            .await
            .expect("the try returns soon after the kill")
            .expect("join");
        match result {
            Err(OperatorError::Retryable(m)) => assert!(m.contains("stopped on the server"), "{m}"),
            other => panic!("{:?}: {other:?}", t.kind),
        }
        assert_eq!(t.count(running).await, 0, "{:?}: still running on the server", t.kind);
        assert!(start.elapsed() < Duration::from_secs(30));
    }
}
