//! Fixtures of the SQL task-type tests: a fresh database on every server the test command
//! started (SQLite always, PostgreSQL, MariaDB), read back with sqlx's own client, and a run of
//! a DAG whose connection `db` points at it, through the scheduler.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use sqlx::{AnyConnection, Connection, Row};
use updraft::model::TaskState;
use updraft::store::RunRow;

use super::common::{Db, Env, fresh_postgres_url};

/// A database the SQL tasks run against, with its connection URI.
pub struct Target {
    pub kind: Kind,
    pub url: String,
    /// Keeps a SQLite file's folder alive.
    pub _dir: Option<tempfile::TempDir>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

/// A fresh database on every server the test command started (SQLite always).
pub async fn targets() -> Vec<Target> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/user.db", dir.path().display());
    let mut out = vec![Target { kind: Kind::Sqlite, url, _dir: Some(dir) }];
    if let Some(url) = fresh_postgres_url().await {
        out.push(Target { kind: Kind::Postgres, url, _dir: None });
    }
    match std::env::var("UPDRAFT_TEST_MYSQL_URL") {
        Ok(base) => {
            out.push(Target { kind: Kind::MySql, url: fresh_mysql(&base).await, _dir: None })
        }
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "UPDRAFT_TEST_MYSQL_URL must be set in CI");
            eprintln!(
                "UPDRAFT_TEST_MYSQL_URL is not set: MariaDB part SKIPPED (scripts/test.sh sets it)"
            );
        }
    }
    out
}

async fn fresh_mysql(base: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    let mut c = AnyConnection::connect(base).await.expect("connect to the test MariaDB");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut c).await.expect("create db");
    let _ = c.close().await;
    let cut = base.rfind('/').expect("URL has a path");
    format!("{}/{name}", &base[..cut])
}

impl Target {
    pub async fn client(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match self.kind {
            Kind::Sqlite => format!("{}?mode=rwc", self.url),
            _ => self.url.clone(),
        };
        AnyConnection::connect(&url).await.unwrap_or_else(|e| panic!("{:?}: {e}", self.kind))
    }

    /// The first column of every row of `sql`, as text.
    pub async fn column(&self, sql: &str) -> Vec<String> {
        let mut c = self.client().await;
        let rows =
            sqlx::query(sql).fetch_all(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.close().await;
        rows.iter()
            .map(|r| {
                let text = r.try_get::<String, _>(0);
                text.or_else(|e| {
                    r.try_get::<i64, _>(0)
                        .map(|i| i.to_string())
                        .or_else(|_| r.try_get::<i32, _>(0).map(|i| i.to_string()))
                        .map_err(|_| e)
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            })
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.column(sql).await[0].parse().expect("a count")
    }
}

/// A run of `yaml` (a DAG `d` whose connection `db` is `target`) to its end.
pub struct Ran {
    pub env: Env,
    pub run: RunRow,
}

pub async fn run_dag(target: &Target, yaml: &str, conf: Value) -> Ran {
    let mut env = Env::new(Db::Sqlite).await.expect("env");
    env.settings.connections.insert("db".into(), target.url.clone());
    env.write_dag("d.yaml", &format!("dag_id: d\n{yaml}"));
    let engine = env.start().await;
    env.wait_until("the DAG is loaded", Duration::from_secs(20), || async {
        env.store.get_dag("d").await.is_ok()
    })
    .await;
    let run = env.trigger("d", conf).await;
    let run = env.wait_run(run.id, Duration::from_secs(90)).await;
    engine.stop().await;
    Ran { env, run }
}

impl Ran {
    pub async fn state(&self, task: &str) -> TaskState {
        self.env.state(self.run.id, task).await
    }

    pub async fn xcom(&self, task: &str) -> Option<Value> {
        let xcoms = self.env.store.run_xcoms(self.run.id).await.expect("xcoms");
        xcoms.into_iter().find(|x| x.task_id == task && x.key == "return_value").map(|x| x.value)
    }

    pub async fn log(&self, task: &str) -> String {
        let tis = self.env.tis(self.run.id).await;
        let ti = tis.iter().find(|t| t.task_id == task).expect("task");
        self.env.log(ti, ti.try_number.max(1))
    }

    pub async fn assert_states(&self, want: &[(&str, TaskState)]) {
        for (task, state) in want {
            let got = self.state(task).await;
            assert_eq!(got, *state, "{task}: {}", self.log(task).await);
        }
    }
}
