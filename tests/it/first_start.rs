//! What a newcomer meets on the first start: the example DAGs that need servers a fresh machine
//! lacks start paused, saying what they need, while the others run green; logs written to a
//! pipe or a file carry no colour codes.

use crate::support::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Db, Env, assert_success};
use updraft::model::DagRunState;

const LIMIT: Duration = Duration::from_secs(120);
const STREAMING: [&str; 4] =
    ["flight_board", "market_data_lake", "transit_status", "user_ingestion"];

/// An engine over a copy of the repository's `dags/` folder, as `standalone` reads it.
async fn env_with_example_dags() -> Env {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags");
    copy_tree(&examples, &env.dags_dir());
    env
}

/// Copies the folder `from` (DAG files and the SQL and schema files beside them) into `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_examples_start_paused_and_the_rest_runs_green() {
    let env = env_with_example_dags().await;
    let running = env.start().await;
    env.wait_until("every example DAG recorded", LIMIT, || async {
        env.store.list_dags().await.map(|d| d.len() == 7).unwrap_or(false)
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
    // sql_report runs on SQLite with no configuration (`sqlite_default` in the home).
    env.wait_until("sql_report's first run", LIMIT, || async {
        env.store.list_runs("sql_report", None, 10).await.map(|r| !r.is_empty()).unwrap_or(false)
    })
    .await;
    let sql_run = env.store.list_runs("sql_report", None, 10).await.expect("runs");
    assert_success(&env.wait_run(sql_run[0].id, LIMIT).await);
    for dag_id in STREAMING {
        let runs = env.store.list_runs(dag_id, None, 10).await.expect("runs");
        assert!(runs.is_empty(), "{dag_id} created a run while paused: {runs:?}");
    }
    for dag_id in ["csv_etl", "file_drop", "sql_report"] {
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

/// `scripts/postgres.sh` on a home folder of its own (mode 700) and a free port; destroys the
/// cluster when dropped.
struct PgScript {
    home: tempfile::TempDir,
    port: u16,
}

impl PgScript {
    fn new() -> PgScript {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().expect("home");
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 700");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        PgScript { home, port }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh"))
            .args(args)
            .env("HOME", self.home.path())
            .env("UPDRAFT_PG_PORT", self.port.to_string())
            .env_remove("UPDRAFT_CACHE")
            .env_remove("UPDRAFT_PG_DIR")
            .output()
            .expect("run scripts/postgres.sh")
    }

    /// The folder the script gives root's cluster: its documented default for this cache.
    fn cluster_dir(&self) -> std::path::PathBuf {
        let cache = self.home.path().join(".cache/updraft/pg");
        let out = Command::new("sh")
            .arg("-c")
            .arg("printf '%s' \"$1\" | cksum | cut -d' ' -f1")
            .arg("sh")
            .arg(&cache)
            .output()
            .expect("cksum");
        let sum = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Path::new("/var/tmp").join(format!("updraft-pg-{sum}"))
    }
}

impl Drop for PgScript {
    fn drop(&mut self) {
        let _ = self.run(&["destroy"]);
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0)
}

#[tokio::test]
async fn postgres_script_as_root_leaves_the_home_alone() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let have_server = glob::glob("/usr/lib/postgresql/*/bin/initdb")
        .map(|mut g| g.next().is_some())
        .unwrap_or(false);
    if !root || !have_server {
        eprintln!("SKIPPED: needs root and Debian's postgresql package (the case under test)");
        return;
    }
    let pg = PgScript::new();
    let planted = pg.cluster_dir();
    // A link planted under the folder's name is refused, not followed.
    let decoy = tempfile::tempdir().expect("decoy");
    std::os::unix::fs::symlink(decoy.path(), &planted).expect("plant a link");
    let refused = pg.run(&["start"]);
    let _ = std::fs::remove_file(&planted);
    assert!(!refused.status.success(), "started on a planted link");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a plain folder"));
    assert_eq!(std::fs::read_dir(decoy.path()).map(|d| d.count()).unwrap_or(9), 0);

    let started = pg.run(&["start"]);
    let log = String::from_utf8_lossy(&started.stderr).to_string();
    assert!(started.status.success(), "{log}");
    assert!(!log.contains("granted"), "{log}");
    assert_eq!(mode(pg.home.path()), 0o700, "the home folder's mode changed");
    assert_eq!(mode(&planted), 0o700, "the cluster's folder is private");
    assert!(planted.join("data/PG_VERSION").is_file(), "the cluster is in {}", planted.display());
    let url = String::from_utf8_lossy(&pg.run(&["url"]).stdout).trim().to_string();
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect(&url);
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.expect("select");
    assert_eq!(one, 1);
    drop(conn);
    assert!(pg.run(&["destroy"]).status.success());
    assert!(!planted.exists(), "destroy removes the cluster's folder");
}
