//! Values interpolated into `bash` commands are data, never code: hostile `conf` values run
//! through the real engine (scheduler, executor, worker, bash) and must neither run a command
//! nor change what the command prints.

use crate::support::common;

use std::path::Path;
use std::time::Duration;

use common::{Db, Env, assert_success};
use serde_json::json;
use updraft::model::TaskState;

const LIMIT: Duration = Duration::from_secs(60);

/// Values an operator might put in `conf` to break out of a command. `MARKER` is replaced by a
/// path; the test fails if any of them creates it.
const HOSTILE: &[&str] = &[
    "\"; touch MARKER; \"",
    "'; touch MARKER; '",
    "$(touch MARKER)",
    "`touch MARKER`",
    "a\ntouch MARKER\n",
    "\\\"; touch MARKER; #",
    "${IFS}x$((1+1))",
    "",
    "it's \"quoted\" \\ and $HOME",
    "ünïcødé ✓ 名前",
    "1 1 /dev/null; touch MARKER; awk -v n=1",
];

async fn loaded(env: &Env, dag_id: &str) {
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag(dag_id).await.is_ok() }).await;
}

fn assert_absent(marker: &Path, value: &str) {
    assert!(!marker.exists(), "the value {value:?} ran a command (it created {marker:?})");
}

/// The exploit as reported, on a DAG shaped like the `csv_etl` example: a string where the DAG
/// expects a number, pasted into `awk -v n=...`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conf_value_cannot_run_a_command_in_an_unquoted_spot() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    env.write_dag(
        "etl.yaml",
        r#"
dag_id: etl
params: { rows: 3 }
tasks:
  extract:
    type: bash
    command: |
      awk -v n={{ params.rows }} 'BEGIN { for (i = 1; i <= n; i++) c++; print c + 0 }'
"#,
    );
    let running = env.start().await;
    loaded(&env, "etl").await;

    let marker = env.path("pwned");
    let rows = format!("1 1 /dev/null; id > {}; awk -v n=1", marker.display());
    let run = env.trigger("etl", json!({ "rows": rows })).await;
    let done = env.wait_run(run.id, LIMIT).await;
    assert_absent(&marker, &rows);
    // awk got the whole value as `n` (numerically 1), so the task still did its job.
    assert_success(&done);
    let xcoms = env.store.run_xcoms(run.id).await.unwrap();
    assert_eq!(xcoms[0].value, json!("1"));

    // The DAG's own numbers still work.
    let run = env.trigger("etl", json!({})).await;
    assert_success(&env.wait_run(run.id, LIMIT).await);
    let xcoms = env.store.run_xcoms(run.id).await.unwrap();
    assert_eq!(xcoms[0].value, json!("3"));
    running.stop().await;
}

/// Each hostile value, in each quoting state of a command, is written out byte for byte and
/// runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_printed_literally_in_every_quoting_state() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let out = env.path("out");
    std::fs::create_dir_all(&out).unwrap();
    env.write_dag(
        "echo.yaml",
        r#"
dag_id: echo
params: { who: world, dir: /nonexistent }
tasks:
  say:
    type: bash
    command: |
      cd {{ params.dir }}
      printf '%s' {{ params.who }} > unquoted
      printf '%s' '{{ params.who }}' > single
      printf '%s' "{{ params.who }}" > double
      printf '%s' $(printf '%s' {{ params.who }}) > subst_words
      printf '%s' "$(printf '%s' "{{ params.who }}")" > subst
      printf '%s' `printf '%s' {{ params.who }}` > backticks
      cat > heredoc <<EOF
      {{ params.who }}
      EOF
      # a comment with {{ params.who }} in it
      echo "hello {{ params.who }}"
"#,
    );
    let running = env.start().await;
    loaded(&env, "echo").await;
    for value in HOSTILE {
        let marker = env.path("pwned");
        let value = value.replace("MARKER", &marker.display().to_string());
        let run =
            env.trigger("echo", json!({ "who": value, "dir": out.display().to_string() })).await;
        let done = env.wait_run(run.id, LIMIT).await;
        assert_absent(&marker, &value);
        let tis = env.tis(run.id).await;
        assert_eq!(tis[0].state, TaskState::Success, "{value:?}: {}", env.log(&tis[0], 1));
        assert_success(&done);
        let file = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
        for name in ["unquoted", "single", "double"] {
            assert_eq!(file(name), value, "{name} of {value:?}");
        }
        // A command substitution drops trailing newlines, as bash does.
        assert_eq!(file("subst"), value.trim_end_matches('\n'), "subst of {value:?}");
        // Unquoted command substitutions split their output into words, as bash does.
        let words: String = value.split_whitespace().collect();
        assert_eq!(file("subst_words"), words, "subst_words of {value:?}");
        assert_eq!(file("backticks"), words, "backticks of {value:?}");
        assert_eq!(file("heredoc"), format!("{value}\n"), "heredoc of {value:?}");
        if !value.contains('\n') {
            let xcoms = env.store.run_xcoms(run.id).await.unwrap();
            assert_eq!(xcoms[0].value, json!(format!("hello {value}")), "echo of {value:?}");
        }
    }
    running.stop().await;
}

/// The shipped example itself, with the reported `conf`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_etl_example_is_not_injectable() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags/csv_etl.yaml");
    env.write_dag("csv_etl.yaml", &std::fs::read_to_string(example).unwrap());
    let running = env.start().await;
    loaded(&env, "csv_etl").await;
    let marker = env.path("pwned");
    let rows = format!("1 1 /dev/null; id > {}; awk -v n=1", marker.display());
    let run = env.trigger("csv_etl", json!({ "rows": rows, "big_day_threshold": 0 })).await;
    env.wait_run(run.id, LIMIT).await;
    assert_absent(&marker, &rows);
    running.stop().await;
}

/// `dags validate` lists each `| raw` with its position, and still succeeds.
#[test]
fn dags_validate_warns_about_each_raw() {
    let home = tempfile::tempdir().unwrap();
    let dags = tempfile::tempdir().unwrap();
    std::fs::write(
        dags.path().join("opt_out.yaml"),
        "dag_id: opt_out\ntasks:\n  a:\n    type: bash\n    command: |\n      {{ params.cmd | raw }} && echo {{ params.cmd }}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args(args)
            .env("UPDRAFT_HOME", home.path())
            .env("UPDRAFT_DAGS_FOLDER", dags.path())
            .env("UPDRAFT_LOG", "warn")
            .env_remove("UPDRAFT_DATABASE_URL")
            .output()
            .expect("run updraft")
    };
    let out = run(&["dags", "validate"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("opt_out.yaml:6:23: warning: task `a`: `raw`"), "{text}");
    assert!(text.contains("1 DAG(s) valid, 0 file(s) with 0 error(s), 1 warning(s)"), "{text}");
    let out = run(&["dags", "validate", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["warnings"][0]["line"], json!(6));
    assert_eq!(v["warnings"][0]["column"], json!(23));
    // The shipped examples need no `raw`.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("dags");
    let out = run(&["dags", "validate", examples.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 error(s), 0 warning(s)"), "{text}");
}
