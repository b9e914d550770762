//! End-to-end browser test: starts `updraft standalone` on a free loopback port and drives it
//! with headless Chromium through playwright-core (`tests/browser/e2e.cjs`): admin creates an
//! operator, an author and a viewer; the author writes a DAG in the editor (a bad edit is
//! refused with its line), the operator triggers it with a param, watches the grid turn green
//! and reads the log; each role is refused what it may not do, in the browser and by direct
//! posts. Screenshots of the main pages are kept in `$UPDRAFT_CACHE/screenshots` (or
//! `target/screenshots`).
//!
//! Needs node, /usr/bin/chromium and playwright-core (`scripts/browser.sh install`, which the
//! test command runs; it exports `UPDRAFT_TEST_NODE_PATH`). Without them the test says so and
//! passes, except under CI, where their absence is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn screenshot_dir() -> PathBuf {
    let base = std::env::var("UPDRAFT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    base.join("screenshots")
}

/// Starts standalone and returns it with the admin password it printed.
fn start(home: &Path, dags: &Path, port: u16) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .arg("standalone")
        .env("UPDRAFT_HOME", home)
        .env("UPDRAFT_DAGS_FOLDER", dags)
        .env("UPDRAFT_WEB_PORT", port.to_string())
        .env("UPDRAFT_WEB_HOST", "127.0.0.1")
        .env("UPDRAFT_LOG", "warn")
        .env_remove("UPDRAFT_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start updraft standalone");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Created the first user: admin / ") {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    let password =
        rx.recv_timeout(Duration::from_secs(60)).expect("standalone printed the admin password");
    // The web server is up once it answers /health.
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "web server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, password)
}

/// A 32-task branching DAG, ten columns wide: four chains of seven between a start and a
/// join (`all_done`), then an end. Drawn at full size it is twice the width of the panel.
fn branchy() -> String {
    let mut yaml = String::from("dag_id: branchy\ntasks:\n  start: { type: empty }\n");
    let mut last = Vec::new();
    for b in 0..4 {
        let mut up = "start".to_string();
        for i in 0..7 {
            let id = format!("branch_{b}_step_{i}");
            yaml.push_str(&format!("  {id}: {{ type: empty, depends_on: [{up}] }}\n"));
            up = id;
        }
        last.push(up);
    }
    yaml.push_str(&format!(
        "  join: {{ type: empty, trigger_rule: all_done, depends_on: [{}] }}\n",
        last.join(", ")
    ));
    yaml.push_str("  end: { type: empty, depends_on: [join] }\n");
    yaml
}

#[test]
fn roles_editor_trigger_grid_and_logs_in_a_real_browser() {
    let node_path = match std::env::var("UPDRAFT_TEST_NODE_PATH") {
        Ok(p) if Path::new(&p).join("playwright-core").is_dir() => p,
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run the browser test: scripts/test.sh installs its tools (scripts/browser.sh)"
            );
            eprintln!(
                "browser test skipped: run scripts/browser.sh install and set UPDRAFT_TEST_NODE_PATH"
            );
            return;
        }
    };
    let home = tempfile::tempdir().expect("home");
    let dags = tempfile::tempdir().expect("dags");
    std::fs::write(dags.path().join("branchy.yaml"), branchy()).expect("write branchy.yaml");
    let items: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    let wide = format!(
        "dag_id: wide\ntasks:\n  start: {{ type: empty }}\n  \
         fan: {{ type: empty, depends_on: [start], foreach: [{}] }}\n  \
         end: {{ type: empty, depends_on: [fan] }}\n",
        items.join(", ")
    );
    std::fs::write(dags.path().join("wide.yaml"), wide).expect("write wide.yaml");
    // A log with colours, a folded group, stderr, an error line and 60,000 more lines.
    let noisy = r#"dag_id: noisy
tasks:
  noisy:
    type: bash
    command: |
      printf '\033[31mred alert\033[0m and \033[1;32mbold green\033[0m\n'
      echo "::group::Setup steps"
      echo "inside the group"
      echo "::endgroup::"
      echo "to stderr" >&2
      echo "ERROR: something went wrong"
      echo '<img src=x onerror="document.title=1">not markup</img>'
      seq -f "line %g" 1 60000
"#;
    std::fs::write(dags.path().join("noisy.yaml"), noisy).expect("write noisy.yaml");
    let grouped = "dag_id: grouped
groups:
  extract:
    doc: Pull the sources
    groups:
      raw: {}
  load: {depends_on: [extract]}
tasks:
  start: {type: empty}
  fetch: {type: empty, group: extract, depends_on: [start]}
  parse: {type: empty, group: extract, depends_on: [fetch]}
  dump: {type: empty, group: extract.raw, depends_on: [start]}
  mart: {type: empty, group: load}
  report: {type: empty, group: load, depends_on: [mart]}
  end: {type: empty, depends_on: [load]}
";
    std::fs::write(dags.path().join("grouped.yaml"), grouped).expect("write grouped.yaml");
    let producer = "dag_id: lake_in\ntasks:\n  land: {type: empty, outlets: [s3://lake/in/]}\n";
    std::fs::write(dags.path().join("lake_in.yaml"), producer).expect("write lake_in.yaml");
    let consumer = "dag_id: mart_out\nschedule: {assets: [s3://lake/in/]}\n\
                    tasks:\n  build: {type: empty, inlets: [s3://lake/in/]}\n";
    std::fs::write(dags.path().join("mart_out.yaml"), consumer).expect("write mart_out.yaml");
    let port = free_port();
    let (_server, password) = start(home.path(), dags.path(), port);
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/e2e.cjs");
    let mut node = Command::new("node")
        .arg(&script)
        .env("NODE_PATH", &node_path)
        .env("BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("ADMIN_PASSWORD", &password)
        .env("SCREENSHOT_DIR", &shots)
        .env("DAGS_FOLDER", dags.path())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node");
    // Bounded: the scenario takes well under a minute; give it four.
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = node.try_wait().expect("wait node") {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(240) {
            let _ = node.kill();
            panic!("the browser scenario did not finish in 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "browser scenario failed (screenshots in {})", shots.display());
    for name in [
        "dags",
        "editor",
        "grid",
        "graph",
        "task_instance",
        "users",
        "grid_groups",
        "graph_groups",
        "assets",
        "asset",
        "dag_assets",
    ] {
        let file = shots.join(format!("{name}.png"));
        assert!(file.is_file(), "screenshot {} was not taken", file.display());
    }
}
