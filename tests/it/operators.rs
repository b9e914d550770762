//! Operators against real processes, a real SQLite store and a local HTTP server (127.0.0.1
//! only): bash (XCom, env, cwd, exit codes, cancellation of the whole process group), http,
//! file and http sensors, external task sensor and trigger_dag.

use crate::support::operators as operators_support;

use std::time::{Duration, Instant};

use serde_json::json;
use updraft::model::{DagRunState, TaskState};
use updraft::operators::{OperatorError, Outcome, execute};

use operators_support::{Fixture, process_alive, serve};

#[tokio::test]
async fn bash_last_stdout_line_is_the_xcom_and_the_pid_is_recorded() {
    let f =
        Fixture::new(&[("t", "type: bash\ncommand: 'echo first; echo; echo last; echo oops >&2'")])
            .await;
    let ctx = f.ctx("t").await;
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(Some(json!("last")))));
    let log = std::fs::read_to_string(ctx.log.path().unwrap()).unwrap();
    assert!(
        log.contains("first\n") && log.contains("oops\n") && log.contains("exited with code 0")
    );
    let ti = f.store.get_ti(ctx.ti.id).await.unwrap().unwrap();
    assert_ne!(ti.pid, Some(1), "the command's pid replaces the worker's");
    let p = f.store.try_process(ti.id).await.unwrap().expect("the try's processes recorded");
    assert_eq!((p.pgid, p.sid), (ti.pid, ti.pid), "its own group and session");
    assert_eq!(
        ctx.rendered.lock().unwrap()["command"],
        json!("echo first; echo; echo last; echo oops >&2")
    );

    let f = Fixture::new(&[("t", "type: bash\ncommand: 'true'")]).await;
    assert_eq!(execute(&f.ctx("t").await).await, Ok(Outcome::Done(None)));
}

#[tokio::test]
async fn bash_env_cwd_and_context_variables() {
    let f = Fixture::new(&[(
        "t",
        "type: bash\ncommand: 'echo \"$GREETING|$UPDRAFT_CTX_TASK_ID|$UPDRAFT_CTX_TRY_NUMBER|$(pwd)\"'\n\
         env: { GREETING: 'hi {{ ds }}' }\ncwd: '{{ params.dir }}'",
    )])
    .await;
    let dir = f.dir.path().canonicalize().unwrap();
    let mut ctx = f.ctx("t").await;
    ctx.run.conf.insert("dir".into(), json!(dir.display().to_string()));
    let want = format!("hi 2026-01-02|t|1|{}", dir.display());
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(Some(json!(want)))));

    // Without a cwd the command runs in a fresh folder that is removed afterwards; without
    // append_env only PATH (and the given env) reach it.
    let f = Fixture::new(&[(
        "t",
        "type: bash\nappend_env: false\ncommand: 'ls / >/dev/null && echo \"${HOME:-nohome} $(pwd)\"'",
    )])
    .await;
    let Ok(Outcome::Done(Some(out))) = execute(&f.ctx("t").await).await else { panic!() };
    let (home, cwd) = out.as_str().unwrap().split_once(' ').unwrap();
    assert_eq!(home, "nohome");
    assert!(cwd.contains("updraft-") && !std::path::Path::new(cwd).exists(), "{cwd}");
}

#[tokio::test]
async fn bash_exit_codes() {
    let f = Fixture::new(&[
        ("skip", "type: bash\ncommand: 'exit 99'"),
        ("fail", "type: bash\ncommand: 'echo why >&2; exit 3'"),
        ("custom", "type: bash\ncommand: 'exit 7'\nskip_on_exit_code: [7]"),
        ("bad", "type: bash\ncommand: 'echo {{ nope }}'"),
    ])
    .await;
    assert!(matches!(execute(&f.ctx("skip").await).await, Err(OperatorError::Skip(_))));
    assert!(matches!(execute(&f.ctx("custom").await).await, Err(OperatorError::Skip(_))));
    match execute(&f.ctx("fail").await).await {
        Err(OperatorError::Retryable(m)) => {
            assert!(m.contains("code 3") && m.contains("why"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(execute(&f.ctx("bad").await).await, Err(OperatorError::Fatal(_))));
}

/// Runs `command`, cancels it once it wrote three pids, and checks every process is gone.
async fn cancel_kills_the_group(command: &str) -> Duration {
    let f = Fixture::new(&[("t", &format!("type: bash\ncommand: '{command}'"))]).await;
    let mut ctx = f.ctx("t").await;
    ctx.run.conf.insert("dir".into(), json!(f.dir.path().display().to_string()));
    let pids_file = f.dir.path().join("pids");
    let cancel = ctx.cancel.clone();
    let run = execute(&ctx);
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&pids_file).unwrap_or_default();
            if text.lines().count() >= 3 || Instant::now() > deadline {
                let started = Instant::now();
                cancel.cancel();
                return (text, started);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (result, (pids, cancelled_at)) = tokio::join!(run, watch);
    let took = cancelled_at.elapsed();
    match result {
        Err(OperatorError::Retryable(m)) => assert!(m.starts_with("killed"), "{m}"),
        other => panic!("{other:?}"),
    }
    let pids: Vec<i32> = pids.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    for pid in pids {
        assert!(!process_alive(pid), "process {pid} survived the cancellation");
    }
    took
}

#[tokio::test]
async fn cancel_terminates_the_whole_process_group() {
    let took = cancel_kills_the_group(&cancel_command("")).await;
    assert!(took < Duration::from_secs(3), "SIGTERM should be enough: {took:?}");
}

#[tokio::test]
async fn cancel_escalates_to_sigkill() {
    // Ignored signals are inherited: neither bash nor the sleeps die on SIGTERM.
    let took = cancel_kills_the_group(&cancel_command("trap \"\" TERM; ")).await;
    assert!(took >= Duration::from_secs(4), "SIGKILL comes after the grace period: {took:?}");
}

#[tokio::test]
async fn dropping_a_running_try_kills_the_group() {
    let f = Fixture::new(&[("t", &format!("type: bash\ncommand: '{}'", cancel_command("")))]).await;
    let mut ctx = f.ctx("t").await;
    ctx.run.conf.insert("dir".into(), json!(f.dir.path().display().to_string()));
    let pids_file = f.dir.path().join("pids");
    let run = tokio::time::timeout(Duration::from_secs(2), execute(&ctx));
    assert!(run.await.is_err(), "the command sleeps for 30 s");
    let pids = std::fs::read_to_string(&pids_file).unwrap();
    let pids: Vec<i32> = pids.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    // SIGKILL is immediate, but the kernel may take a moment to tear the processes down.
    let start = Instant::now();
    while let Some(pid) = pids.iter().copied().find(|&p| process_alive(p)) {
        assert!(start.elapsed() < Duration::from_secs(5), "process {pid} survived the drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn cancel_command(prefix: &str) -> String {
    format!(
        "{prefix}cd {{{{ params.dir }}}}; sleep 30 & echo $! >> pids; sleep 30 & echo $! >> pids; \
         echo $$ >> pids; wait"
    )
}

#[tokio::test]
async fn a_background_child_holding_stdout_does_not_hang_the_try_and_ends_with_it() {
    let f = Fixture::new(&[(
        "t",
        "type: bash\ncommand: 'cd {{ params.dir }}; sleep 30 & echo $! > pids; echo started'",
    )])
    .await;
    let mut ctx = f.ctx("t").await;
    ctx.run.conf.insert("dir".into(), json!(f.dir.path().display().to_string()));
    let started = Instant::now();
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(Some(json!("started")))));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // The try is over, so is everything it started.
    let pid: i32 =
        std::fs::read_to_string(f.dir.path().join("pids")).unwrap().trim().parse().unwrap();
    assert!(!process_alive(pid), "the background sleep outlived its try");
    let log = std::fs::read_to_string(ctx.log.path().unwrap()).unwrap();
    assert!(log.contains("stopped 1 process(es) the command left running"), "{log}");
}

/// A command that leaves its session (`setsid`) and double-forks is still stopped with the try
/// (by its cgroup where the machine has one, else by its environment key), both when it is
/// cancelled and when its leader exits.
#[tokio::test]
async fn processes_that_left_the_session_end_with_the_try() {
    let command = "cd {{ params.dir }}; setsid sleep 30 & echo $! >> pids; \
                   (setsid sleep 30 & echo $! >> pids); echo $$ >> pids";
    for wait in [" wait", " true"] {
        let f = Fixture::new(&[("t", &format!("type: bash\ncommand: '{command};{wait}'"))]).await;
        let mut ctx = f.ctx("t").await;
        ctx.run.conf.insert("dir".into(), json!(f.dir.path().display().to_string()));
        let pids_file = f.dir.path().join("pids");
        let cancel = ctx.cancel.clone();
        let watch = async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&pids_file).unwrap_or_default().lines().count() < 3
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if wait == " wait" {
                cancel.cancel();
            }
        };
        let (result, ()) = tokio::join!(execute(&ctx), watch);
        assert_eq!(result.is_ok(), wait == " true", "{result:?}");
        let pids = std::fs::read_to_string(&pids_file).unwrap();
        for pid in pids.lines().map(|l| l.trim().parse::<i32>().unwrap()) {
            assert!(!process_alive(pid), "process {pid} outlived its try ({wait})");
        }
    }
}

#[tokio::test]
async fn http_requests() {
    let base = serve().await;
    let f = Fixture::with_conns(
        &[
            ("get", &format!("type: http\nurl: '{base}/json'")),
            ("text", &format!("type: http\nurl: '{base}/text'\nquery: {{ d: '{{{{ ds }}}}' }}")),
            ("post", "type: http\nconnection: api\nmethod: post\nendpoint: /echo\nbody: { day: '{{ ds }}', n: 2 }"),
            ("fail", &format!("type: http\nurl: '{base}/fail'")),
            ("missing", &format!("type: http\nurl: '{base}/missing'")),
            ("auth", "type: http\nconnection: api\nendpoint: auth"),
            ("noauth", &format!("type: http\nurl: '{base}/auth'")),
            ("accept", &format!("type: http\nurl: '{base}/missing'\nexpected_status: [404]")),
            ("big", &format!("type: http\nurl: '{base}/big'")),
        ],
        &[("UPDRAFT_CONN_API", &base.replace("http://", "http://user:s3cretpw@"))],
    )
    .await;
    let run = |t: &'static str| {
        let f = &f;
        async move { execute(&f.ctx(t).await).await }
    };
    assert_eq!(run("get").await, Ok(Outcome::Done(Some(json!({"users": [1, 2]})))));
    assert_eq!(run("text").await, Ok(Outcome::Done(Some(json!("hello d=2026-01-02")))));
    assert_eq!(run("post").await, Ok(Outcome::Done(Some(json!({"day": "2026-01-02", "n": 2})))));
    match run("fail").await {
        Err(OperatorError::Retryable(m)) => assert!(m.contains("500") && m.contains("boom"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(run("missing").await, Err(OperatorError::Fatal(m)) if m.contains("404")));
    let ctx = f.ctx("auth").await;
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(Some(json!("welcome user")))));
    let log = std::fs::read_to_string(ctx.log.path().unwrap()).unwrap();
    assert!(log.contains("GET http://127.0.0.1") && !log.contains("s3cretpw"), "{log}");
    assert!(matches!(run("noauth").await, Err(OperatorError::Fatal(m)) if m.contains("401")));
    assert_eq!(run("accept").await, Ok(Outcome::Done(Some(json!("nothing here")))));
    let Ok(Outcome::Done(Some(big))) = run("big").await else { panic!() };
    assert_eq!(big, json!({"status": 200, "bytes": 2 * 1024 * 1024, "truncated": true}));
}

#[tokio::test]
async fn http_connection_refused_is_retryable() {
    let f = Fixture::new(&[("t", "type: http\nurl: 'http://127.0.0.1:9/'\ntimeout: 5s")]).await;
    assert!(matches!(execute(&f.ctx("t").await).await, Err(OperatorError::Retryable(_))));
}

#[tokio::test]
async fn file_sensor_pokes_until_a_file_matches() {
    let f = Fixture::new(&[("s", "type: file_sensor\npath: '{{ params.dir }}/in/*.csv'")]).await;
    let mut ctx = f.ctx("s").await;
    ctx.run.conf.insert("dir".into(), json!(f.dir.path().display().to_string()));
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(_))));
    std::fs::create_dir_all(f.dir.path().join("in")).unwrap();
    std::fs::write(f.dir.path().join("in/a.csv"), "x").unwrap();
    let want = format!("{}/in/a.csv", f.dir.path().display());
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(Some(json!([want])))));
}

#[tokio::test]
async fn http_sensor_with_and_without_response_check() {
    let base = serve().await;
    let f = Fixture::new(&[
        ("check", &format!("type: http_sensor\nurl: '{base}/ready'\nresponse_check: '{{{{ response.json.ready }}}}'")),
        ("missing", &format!("type: http_sensor\nurl: '{base}/missing'")),
        ("plain", &format!("type: http_sensor\nurl: '{base}/json'")),
        ("fail", &format!("type: http_sensor\nurl: '{base}/fail'")),
    ])
    .await;
    let ctx = f.ctx("check").await;
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(m)) if m.contains("False")));
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(Some(json!({"ready": true})))));
    assert!(matches!(execute(&f.ctx("missing").await).await, Ok(Outcome::NotYet(_))));
    assert!(matches!(execute(&f.ctx("plain").await).await, Ok(Outcome::Done(Some(_)))));
    assert!(matches!(execute(&f.ctx("fail").await).await, Err(OperatorError::Retryable(_))));
}

#[tokio::test]
async fn trigger_dag_is_idempotent_and_waits() {
    let f = Fixture::new(&[
        ("fire", "type: trigger_dag\ntrigger_dag_id: other\nconf: { day: '{{ ds }}' }"),
        ("wait", "type: trigger_dag\ntrigger_dag_id: other\ntrigger_run_id: 'w_{{ ds }}'\nwait_for_completion: true"),
        ("ghost", "type: trigger_dag\ntrigger_dag_id: ghost"),
    ])
    .await;
    let ctx = f.ctx("fire").await;
    let id = "triggered__d__manual__x__fire";
    let done = Outcome::Done(Some(json!({"dag_id": "other", "run_id": id})));
    assert_eq!(execute(&ctx).await, Ok(done.clone()));
    assert_eq!(execute(&ctx).await, Ok(done), "a second try finds the same run");
    let run = f.store.find_run("other", id).await.unwrap().unwrap();
    assert_eq!(run.conf["day"], json!("2026-01-02"));
    assert_eq!(run.triggered_by.as_deref(), Some("dag:d"));

    let ctx = f.ctx("wait").await;
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(_))));
    let run = f.store.find_run("other", "w_2026-01-02").await.unwrap().unwrap();
    let now = chrono::Utc::now();
    assert!(
        f.store.set_run_state(run.id, DagRunState::Queued, DagRunState::Failed, now).await.unwrap()
    );
    assert!(matches!(execute(&ctx).await, Err(OperatorError::Fatal(m)) if m.contains("failed")));
    assert!(
        matches!(execute(&f.ctx("ghost").await).await, Err(OperatorError::Fatal(m)) if m.contains("ghost"))
    );
}

#[tokio::test]
async fn trigger_dag_refuses_a_run_id_that_could_leave_its_folder() {
    let f = Fixture::new(&[
        ("dots", "type: trigger_dag\ntrigger_dag_id: other\ntrigger_run_id: '..'"),
        ("slash", "type: trigger_dag\ntrigger_dag_id: other\ntrigger_run_id: 'a/{{ ds }}'"),
    ])
    .await;
    for task in ["dots", "slash"] {
        let got = execute(&f.ctx(task).await).await;
        assert!(
            matches!(&got, Err(OperatorError::Fatal(m)) if m.contains("run id has")),
            "{got:?}"
        );
    }
    assert_eq!(f.store.count_runs(&updraft::store::RunFilter::dag("other")).await.unwrap(), 0);
}

#[tokio::test]
async fn external_task_sensor_follows_the_other_dag() {
    let f = Fixture::new(&[
        ("s", "type: external_task_sensor\nexternal_dag_id: other\nexternal_task_id: work"),
        ("whole", "type: external_task_sensor\nexternal_dag_id: other\nlogical_date: '{{ ds }}T03:04:05Z'"),
    ])
    .await;
    let ctx = f.ctx("s").await;
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(m)) if m.contains("no run")));
    let other = f.start_other_run().await;
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(m)) if m.contains("none")));
    let ti = &f.store.run_tis(other.id).await.unwrap()[0];
    f.set_ti_state(ti.id, TaskState::None, TaskState::Success).await;
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(None)));
    f.set_ti_state(ti.id, TaskState::Success, TaskState::Failed).await;
    assert!(matches!(execute(&ctx).await, Err(OperatorError::Fatal(m)) if m.contains("`work`")));

    let ctx = f.ctx("whole").await;
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(m)) if m.contains("running")));
    let now = chrono::Utc::now();
    f.store.set_run_state(other.id, DagRunState::Running, DagRunState::Success, now).await.unwrap();
    assert_eq!(execute(&ctx).await, Ok(Outcome::Done(None)));
}
