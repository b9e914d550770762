//! Web benchmarks: the DAG list (50 a page of 1,000 DAGs, 100,000 task instances in the
//! database), as a page and through the API, the grid of 100 runs x 50 tasks and the page of a
//! 1 -> 200 -> 1 run. The real server is started on 127.0.0.1 and driven over HTTP with a
//! logged-in session; each page's size is printed beside its times.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use updraft::config::Settings;
use updraft::dag::parse_dag_str;
use updraft::model::{DagRunState, RunType, TaskState};
use updraft::store::{NewRun, Store, TiUpdate};
use updraft::web::pages::url_encode;
use updraft::web::{AppState, Metrics};

use super::{Bench, percentile};

/// Requests timed one after another, for the median.
const SEQUENTIAL: usize = 400;
/// Length of the concurrent throughput phase.
const CONCURRENT_FOR: Duration = Duration::from_secs(5);
/// Connections of the throughput phase (the targets' four connections).
const CONNECTIONS: usize = 4;

fn dag_yaml(dag_id: &str, tasks: usize) -> String {
    let mut yaml = format!(
        "dag_id: {dag_id}\nowner: team_{}\ntags: [bench, t{}]\nschedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n",
        dag_id.len() % 7,
        dag_id.len() % 3
    );
    for t in 0..tasks {
        yaml.push_str(&format!("  t{t:02}:\n    type: bash\n    command: echo {t}\n"));
        if t > 0 {
            yaml.push_str(&format!("    depends_on: [t{:02}]\n", t - 1));
        }
    }
    yaml
}

/// Creates `runs` finished runs of `dag` a day apart, whose instances are all success.
async fn seed_runs(store: &Store, dag: &updraft::dag::Dag, runs: usize) {
    let base = Utc::now() - chrono::Duration::days(runs as i64 + 1);
    for i in 0..runs {
        let when = base + chrono::Duration::days(i as i64);
        let end = when + chrono::Duration::days(1);
        finished_run(store, dag, RunType::Scheduled, (when, end), None).await;
    }
}

/// A run of `start -> fan (200 mapped instances) -> end`, every instance success: the run page
/// of a wide fan-out. Returns the run's id.
async fn seed_wide_run(store: &Store, dag: &updraft::dag::Dag) -> String {
    let when = Utc::now() - chrono::Duration::hours(1);
    let items: Vec<serde_json::Value> = (0..200).map(serde_json::Value::from).collect();
    finished_run(store, dag, RunType::Manual, (when, when), Some(("fan", &items))).await
}

/// One run of `dag` for the interval `(start, end)`, its mapped task (if any) expanded over
/// its items, then finished: every instance success, the run success. Returns the run's id.
async fn finished_run(
    store: &Store,
    dag: &updraft::dag::Dag,
    run_type: RunType,
    (when, end): (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
    mapped: Option<(&str, &[serde_json::Value])>,
) -> String {
    let run = NewRun {
        dag_id: dag.dag_id.clone(),
        run_id: NewRun::default_run_id(run_type, when),
        run_type,
        logical_date: when,
        data_interval_start: when,
        data_interval_end: end,
        conf: Default::default(),
        triggered_by: "bench".into(),
        deadlines: Vec::new(),
    };
    let row = store.create_run(&run, when).await.expect("create run");
    let new_ti = |task: &str| updraft::store::NewTi::for_task(&dag.tasks[task]);
    let tis: Vec<_> = dag.graph.topo_order().iter().map(|t| new_ti(t)).collect();
    store.start_run(row.id, None, &tis, when).await.expect("start run");
    if let Some((task, items)) = mapped {
        for ti in store.run_tis(row.id).await.expect("tis") {
            if ti.task_id == task {
                store.expand_mapped(&ti, &new_ti(task), items, when).await.expect("expand");
            }
        }
    }
    let updates: Vec<TiUpdate> = store
        .run_tis(row.id)
        .await
        .expect("tis")
        .into_iter()
        .map(|t| TiUpdate { id: t.id, from: TaskState::None, to: TaskState::Success, note: None })
        .collect();
    store.apply_ti_updates(&updates, when).await.expect("finish tis");
    store
        .set_run_state(row.id, DagRunState::Running, DagRunState::Success, when)
        .await
        .expect("finish run");
    row.run_id
}

/// Times `url` sequentially (median, p95 in ms), then with 4 concurrent connections (req/s).
async fn measure(client: &reqwest::Client, url: &str, cookie: &str) -> (f64, f64, f64) {
    let get = |c: reqwest::Client, u: String, k: String| async move {
        let r = c.get(&u).header("Cookie", k).send().await.expect("request");
        assert!(r.status().is_success(), "{u}: {}", r.status());
        r.bytes().await.expect("body").len()
    };
    for _ in 0..20 {
        get(client.clone(), url.into(), cookie.into()).await;
    }
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t0 = Instant::now();
        get(client.clone(), url.into(), cookie.into()).await;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (c, u, k, done) =
                (client.clone(), url.to_string(), cookie.to_string(), done.clone());
            tokio::spawn(async move {
                while t0.elapsed() < CONCURRENT_FOR {
                    get(c.clone(), u.clone(), k.clone()).await;
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let rps = done.load(std::sync::atomic::Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    (percentile(&times, 0.5), percentile(&times, 0.95), rps)
}

impl Bench {
    pub(super) async fn web(&self) {
        let home = self.dir.join("web");
        let dags_dir = home.join("dags");
        std::fs::create_dir_all(&dags_dir).expect("dir");
        let mut settings = Settings::for_home(&home, &dags_dir);
        settings.database_url = self.database_url("web").await;
        let settings = Arc::new(settings);
        let store = Store::open(&settings.database_url).await.expect("open store");
        let t0 = Instant::now();
        let dags: Vec<_> = (0..1000)
            .map(|i| {
                let id = format!("dag_{i:04}");
                parse_dag_str(&dag_yaml(&id, 10), format!("{id}.yaml").as_ref()).expect("valid")
            })
            .collect();
        let grid =
            parse_dag_str(&dag_yaml("grid_dag", 50), "grid_dag.yaml".as_ref()).expect("valid");
        let wide_yaml = format!(
            "dag_id: wide\ntasks:\n  start: {{ type: empty }}\n  \
             fan: {{ type: empty, depends_on: [start], foreach: [{}] }}\n  \
             end: {{ type: empty, depends_on: [fan] }}\n",
            (0..200).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        );
        let wide = parse_dag_str(&wide_yaml, "wide.yaml".as_ref()).expect("valid");
        let mut all: Vec<&updraft::dag::Dag> = dags.iter().collect();
        all.push(&grid);
        all.push(&wide);
        store.sync_dags(all, std::iter::empty(), Utc::now()).await.expect("sync");
        for dag in &dags {
            seed_runs(&store, dag, 10).await;
        }
        seed_runs(&store, &grid, 100).await;
        let wide_run = seed_wide_run(&store, &wide).await;
        println!(
            "web: seeded 1,001 DAGs, 10,100 runs, 105,000 task instances in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let hash = updraft::web::auth::hash_password("bench-password".into()).await.expect("hash");
        store.create_user("bench", "", &hash, &["admin".into()], Utc::now()).await.expect("user");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let state = AppState::new(store.clone(), settings.clone(), Arc::new(Metrics::default()));
        let server = tokio::spawn(updraft::web::serve(listener, state, shutdown.clone()));
        let client = updraft::tls::http_client()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .expect("client");
        // The login form's token: its cookie and the same value in the form.
        let page = client.get(format!("http://{addr}/login")).send().await.expect("login page");
        let token_cookie = page
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("login token cookie")
            .to_string();
        let token = token_cookie.split_once('=').map(|(_, t)| t.to_string()).unwrap_or_default();
        let login = client
            .post(format!("http://{addr}/login"))
            .header("Cookie", &token_cookie)
            .form(&[("username", "bench"), ("password", "bench-password"), ("csrf", &token)])
            .send()
            .await
            .expect("login");
        let cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_string();
        let scenarios = [
            ("DAG list page (50 of 1,000)", format!("http://{addr}/dags")),
            ("DAG list API (50 of 1,000)", format!("http://{addr}/api/v1/dags?limit=50")),
            ("grid page (100 runs x 50 tasks)", format!("http://{addr}/dags/grid_dag?runs=100")),
            (
                "run page (1 -> 200 -> 1)",
                format!("http://{addr}/dags/wide/runs/{}", url_encode(&wide_run)),
            ),
        ];
        for (name, url) in scenarios {
            let probe = client.get(&url).header("Cookie", &cookie).send().await.expect("probe");
            if !probe.status().is_success() {
                println!("web: {name}: skipped ({} from {url})", probe.status());
                continue;
            }
            let size = probe.bytes().await.expect("body").len();
            let (median, p95, rps) = measure(&client, &url, &cookie).await;
            println!(
                "web: {name}: {:.0} KB; median {median:.2} ms, p95 {p95:.2} ms sequential; {rps:.0} req/s at {CONNECTIONS} connections",
                size as f64 / 1000.0
            );
        }
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    }
}
