//! Settings: read from the environment once, checked, and passed down.
//!
//! Invariant: no other module reads environment variables. Connections (`UPDRAFT_CONN_<ID>`)
//! and variables (`UPDRAFT_VAR_<NAME>`) from the environment are captured here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How queued task instances get run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    /// One task instance at a time.
    Sequential,
    /// Up to `parallelism` task instances at once in this process.
    Local,
    /// Workers on any machine claim queued task instances from PostgreSQL.
    Distributed,
}

impl std::str::FromStr for ExecutorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sequential" => Ok(ExecutorKind::Sequential),
            "local" => Ok(ExecutorKind::Local),
            "distributed" => Ok(ExecutorKind::Distributed),
            other => Err(format!(
                "UPDRAFT_EXECUTOR=`{other}` is not an executor: use sequential, local or distributed"
            )),
        }
    }
}

/// Every setting of an Updraft process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `UPDRAFT_HOME` (default `./.updraft`): SQLite database and logs live here.
    pub home: PathBuf,
    /// `UPDRAFT_DAGS_FOLDER` (default `./dags`).
    pub dags_folder: PathBuf,
    /// `UPDRAFT_DATABASE_URL` (default `sqlite://<home>/updraft.db`).
    pub database_url: String,
    /// `UPDRAFT_EXECUTOR` (default `local`).
    pub executor: ExecutorKind,
    /// `UPDRAFT_PARALLELISM`: executor slots of this process (default 16); with the
    /// distributed executor, the tries queued or running at once over every worker (default
    /// 128).
    pub parallelism: usize,
    /// `UPDRAFT_HEARTBEAT_TIMEOUT` (default 30s; `45`, `2m`): a process whose heartbeat is
    /// older is dead, and a worker's claim lasts this long unless its heartbeat renews it.
    /// Heartbeats come every sixth of it.
    pub heartbeat_timeout: std::time::Duration,
    /// `UPDRAFT_QUEUED_TIMEOUT` (default 10m): an instance queued this long that no worker
    /// claimed goes back to scheduled, with a note.
    pub queued_timeout: std::time::Duration,
    /// `UPDRAFT_WEB_PORT` (default 8080).
    pub web_port: u16,
    /// `UPDRAFT_WEB_HOST` (default 127.0.0.1): address the web server binds. Set 0.0.0.0 to
    /// serve other machines (the Docker image does).
    pub web_host: String,
    /// `UPDRAFT_WEB_SESSION_HOURS` (default 12): a login lasts this long.
    pub session_hours: u32,
    /// `UPDRAFT_SECRET_KEY`: encrypts connections in the metadata database. Without it a key
    /// is generated in `UPDRAFT_HOME/secret.key` (fine for standalone; separate processes
    /// must share one key).
    pub secret_key: Option<String>,
    /// Connections from `UPDRAFT_CONN_<ID>`, keyed by lower-case id.
    pub connections: BTreeMap<String, String>,
    /// Variables from `UPDRAFT_VAR_<NAME>`, keyed by lower-case name.
    pub variables: BTreeMap<String, String>,
    /// `UPDRAFT_TRY_CGROUPS` (default on; `off`/`false`/`0` turns it off): run each bash try
    /// in a cgroup v2 of its own where the machine allows it. Off, a try is contained by its
    /// session, process group and environment marker only.
    pub try_cgroups: bool,
    /// `UPDRAFT_BASE_URL` (default `http://<web host>:<web port>`): where people reach the web
    /// UI, for the links in notifications.
    pub base_url: String,
    /// `UPDRAFT_NOTIFY_ATTEMPTS` (default 5): delivery attempts of a notification before it is
    /// failed.
    pub notify_attempts: i64,
    /// `UPDRAFT_NOTIFY_RETRY_DELAY` (default 10 s): the wait after a failed delivery, doubled
    /// per attempt (at most an hour).
    pub notify_retry_delay: std::time::Duration,
    /// OpenLineage events (`UPDRAFT_LINEAGE_*`); off unless `UPDRAFT_LINEAGE_URL` is set.
    pub lineage: LineageSettings,
}

/// Where this process sends its OpenLineage events, and how many may wait.
#[derive(Clone, PartialEq)]
pub struct LineageSettings {
    /// `UPDRAFT_LINEAGE_URL`: an `http://` or `https://` endpoint (the whole URL events are
    /// POSTed to, e.g. Marquez's `http://host:5000/api/v1/lineage`) or `file:///path` (one JSON
    /// event per line, appended). None (unset): lineage is off.
    pub target: Option<LineageTarget>,
    /// `UPDRAFT_LINEAGE_NAMESPACE` (default `updraft`): the job namespace of every event.
    pub namespace: String,
    /// `UPDRAFT_LINEAGE_QUEUE` (default 10,000, at least 1): events waiting to be sent; one
    /// more is dropped (and counted) rather than waited for.
    pub queue: usize,
}

/// Where events go.
#[derive(Clone, PartialEq)]
pub enum LineageTarget {
    /// POST each event to `url`, with `Authorization: Bearer <api_key>` when
    /// `UPDRAFT_LINEAGE_API_KEY` is set.
    Http {
        /// The endpoint.
        url: String,
        /// The bearer token; never printed (`Debug` shows `***`).
        api_key: Option<String>,
    },
    /// Append each event as a line to this file.
    File(PathBuf),
}

impl Default for LineageSettings {
    fn default() -> Self {
        LineageSettings { target: None, namespace: "updraft".into(), queue: 10_000 }
    }
}

impl std::fmt::Debug for LineageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineageTarget::Http { url, api_key } => f
                .debug_struct("Http")
                .field("url", url)
                .field("api_key", &api_key.as_ref().map(|_| "***"))
                .finish(),
            LineageTarget::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl std::fmt::Debug for LineageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineageSettings")
            .field("target", &self.target)
            .field("namespace", &self.namespace)
            .field("queue", &self.queue)
            .finish()
    }
}

impl LineageSettings {
    /// Reads `UPDRAFT_LINEAGE_*` through `get`.
    fn from_vars(get: &impl Fn(&str) -> Option<String>) -> Result<LineageSettings, ConfigError> {
        let defaults = LineageSettings::default();
        let target = match get("UPDRAFT_LINEAGE_URL") {
            None => None,
            Some(url) => Some(lineage_target(url.trim(), get("UPDRAFT_LINEAGE_API_KEY"))?),
        };
        let namespace = get("UPDRAFT_LINEAGE_NAMESPACE").unwrap_or(defaults.namespace);
        let queue: usize = parse_num(get, "UPDRAFT_LINEAGE_QUEUE", defaults.queue)?;
        Ok(LineageSettings { target, namespace, queue: queue.max(1) })
    }
}

/// The target `UPDRAFT_LINEAGE_URL` names; the error never repeats the URL (it may hold a
/// password) beyond its scheme.
fn lineage_target(url: &str, api_key: Option<String>) -> Result<LineageTarget, ConfigError> {
    if let Some(path) = url.strip_prefix("file://") {
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(ConfigError(
                "UPDRAFT_LINEAGE_URL: a file target is file:///absolute/path/events.jsonl".into(),
            ));
        }
        return Ok(LineageTarget::File(path));
    }
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || reqwest::Url::parse(url).is_err() {
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(ConfigError(format!(
            "UPDRAFT_LINEAGE_URL (`{scheme}://...`) must be an http:// or https:// endpoint, or \
             file:///path/events.jsonl"
        )));
    }
    Ok(LineageTarget::Http { url: url.to_string(), api_key })
}

/// A setting that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_vars(std::env::vars())
    }

    /// Builds settings from `(name, value)` pairs (the environment, or a test's map).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let home = PathBuf::from(get("UPDRAFT_HOME").unwrap_or_else(|| "./.updraft".into()));
        let dags_folder =
            PathBuf::from(get("UPDRAFT_DAGS_FOLDER").unwrap_or_else(|| "./dags".into()));
        let database_url = get("UPDRAFT_DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", home.join("updraft.db").display()));
        let executor = get("UPDRAFT_EXECUTOR")
            .map(|v| v.parse())
            .transpose()
            .map_err(ConfigError)?
            .unwrap_or(ExecutorKind::Local);
        let default_parallelism = if executor == ExecutorKind::Distributed { 128 } else { 16 };
        let parallelism = parse_num(&get, "UPDRAFT_PARALLELISM", default_parallelism)?;
        let heartbeat_timeout = parse_duration(&get, "UPDRAFT_HEARTBEAT_TIMEOUT", 30)?;
        let queued_timeout = parse_duration(&get, "UPDRAFT_QUEUED_TIMEOUT", 600)?;
        if executor == ExecutorKind::Distributed && database_url.starts_with("sqlite:") {
            return Err(ConfigError(
                "UPDRAFT_EXECUTOR=distributed needs PostgreSQL: workers on other machines claim \
                 tasks from the metadata database, and SQLite is a file of this machine; set \
                 UPDRAFT_DATABASE_URL=postgres://USER:PASS@HOST/DB, or use the local executor"
                    .into(),
            ));
        }
        let web_port = parse_num(&get, "UPDRAFT_WEB_PORT", 8080)?;
        let session_hours = parse_num(&get, "UPDRAFT_WEB_SESSION_HOURS", 12)?;
        let web_host = get("UPDRAFT_WEB_HOST").unwrap_or_else(|| "127.0.0.1".into());
        let base_url = get("UPDRAFT_BASE_URL")
            .unwrap_or_else(|| format!("http://{web_host}:{web_port}"))
            .trim_end_matches('/')
            .to_string();
        let notify_attempts: i64 = parse_num(&get, "UPDRAFT_NOTIFY_ATTEMPTS", 5)?;
        let notify_retry_delay = parse_duration(&get, "UPDRAFT_NOTIFY_RETRY_DELAY", 10)?;
        let lineage = LineageSettings::from_vars(&get)?;
        let prefixed = |prefix: &str| -> BTreeMap<String, String> {
            vars.iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(prefix).map(|id| (id.to_lowercase(), v.clone()))
                })
                .collect()
        };
        Ok(Settings {
            home,
            dags_folder,
            database_url,
            executor,
            parallelism: parallelism.max(1),
            heartbeat_timeout,
            queued_timeout,
            web_port,
            web_host,
            session_hours: session_hours.max(1),
            secret_key: get("UPDRAFT_SECRET_KEY"),
            connections: prefixed("UPDRAFT_CONN_"),
            variables: prefixed("UPDRAFT_VAR_"),
            try_cgroups: !get("UPDRAFT_TRY_CGROUPS").is_some_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "off" | "false" | "no")
            }),
            base_url,
            notify_attempts: notify_attempts.max(1),
            notify_retry_delay,
            lineage,
        })
    }

    /// Folder of task logs.
    pub fn log_dir(&self) -> PathBuf {
        self.home.join("logs")
    }

    /// Creates `UPDRAFT_HOME` (0700) and its log folder (0700, tightened if it exists): the
    /// database, the secret key and task logs (which may hold what a task printed) are for
    /// this user only. A home that already exists keeps its mode (it may be a folder the
    /// operator chose), with a warning when others may enter it.
    pub fn prepare_home(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if !self.home.exists() {
            private_dir(&self.home)?;
        } else if std::fs::metadata(&self.home)?.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                home = %self.home.display(),
                "UPDRAFT_HOME is open to other users; `chmod 700` it to keep logs private"
            );
        }
        private_dir(&self.log_dir())
    }

    /// Executor slots: one for `sequential`, `parallelism` otherwise.
    pub fn slots(&self) -> usize {
        match self.executor {
            ExecutorKind::Sequential => 1,
            _ => self.parallelism,
        }
    }

    /// Settings for tests and tools: everything under `home`, DAGs from `dags`.
    pub fn for_home(home: &Path, dags: &Path) -> Settings {
        Settings::from_vars([
            ("UPDRAFT_HOME".to_string(), home.display().to_string()),
            ("UPDRAFT_DAGS_FOLDER".to_string(), dags.display().to_string()),
        ])
        .unwrap_or_else(|_| unreachable!("fixed settings parse"))
    }
}

/// Creates `dir` and missing parents with mode 0700, and takes group and other access away
/// from `dir` itself if it existed.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// A duration setting: a number of seconds or a humantime text (`30s`, `2m`), at least 1 s.
fn parse_duration(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default_secs: u64,
) -> Result<std::time::Duration, ConfigError> {
    let Some(v) = get(key) else { return Ok(std::time::Duration::from_secs(default_secs)) };
    let t = v.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t).map_err(|e| {
            ConfigError(format!(
                "{key}=`{v}` is not a duration ({e}): write `30s`, `2m` or seconds"
            ))
        })?,
    };
    if d < std::time::Duration::from_secs(1) {
        return Err(ConfigError(format!("{key}=`{v}` is too short: at least 1s")));
    }
    Ok(d)
}

fn parse_num<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match get(key) {
        None => Ok(default),
        Some(v) => {
            v.trim().parse().map_err(|_| ConfigError(format!("{key}=`{v}` is not a valid number")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.web_port, 8080);
        assert_eq!(s.executor, ExecutorKind::Local);
        assert!(s.database_url.starts_with("sqlite://./.updraft"));
        let s = Settings::from_vars(vars(&[
            ("UPDRAFT_EXECUTOR", "sequential"),
            ("UPDRAFT_CONN_HTTP_DEFAULT", "http://localhost:1"),
            ("UPDRAFT_VAR_REGION", "eu"),
        ]))
        .unwrap();
        assert_eq!(s.slots(), 1);
        assert_eq!(s.connections["http_default"], "http://localhost:1");
        assert_eq!(s.variables["region"], "eu");
        assert!(s.try_cgroups);
        let s = Settings::from_vars(vars(&[("UPDRAFT_TRY_CGROUPS", "off")])).unwrap();
        assert!(!s.try_cgroups);
    }

    #[test]
    fn home_and_logs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::for_home(&dir.path().join("a/home"), dir.path());
        s.prepare_home().expect("prepare");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&s.home), 0o700);
        assert_eq!(mode(&s.log_dir()), 0o700);
        // An existing log folder open to others is tightened.
        std::fs::set_permissions(s.log_dir(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        s.prepare_home().expect("again");
        assert_eq!(mode(&s.log_dir()), 0o700);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Settings::from_vars(vars(&[("UPDRAFT_PARALLELISM", "many")])).unwrap_err();
        assert!(e.to_string().contains("UPDRAFT_PARALLELISM"));
        let e = Settings::from_vars(vars(&[("UPDRAFT_EXECUTOR", "celery")])).unwrap_err();
        assert!(e.to_string().contains("celery"));
        let e = Settings::from_vars(vars(&[("UPDRAFT_HEARTBEAT_TIMEOUT", "soon")])).unwrap_err();
        assert!(e.to_string().contains("UPDRAFT_HEARTBEAT_TIMEOUT=`soon`"), "{e}");
        let e = Settings::from_vars(vars(&[("UPDRAFT_QUEUED_TIMEOUT", "0")])).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
    }

    #[test]
    fn lineage_is_off_by_default_and_its_key_never_prints() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.lineage.target, None);
        assert_eq!((s.lineage.namespace.as_str(), s.lineage.queue), ("updraft", 10_000));
        let s = Settings::from_vars(vars(&[
            ("UPDRAFT_LINEAGE_URL", "http://127.0.0.1:5000/api/v1/lineage"),
            ("UPDRAFT_LINEAGE_API_KEY", "k3y-s3cr3t"),
            ("UPDRAFT_LINEAGE_NAMESPACE", "prod"),
            ("UPDRAFT_LINEAGE_QUEUE", "0"),
        ]))
        .unwrap();
        let want = LineageTarget::Http {
            url: "http://127.0.0.1:5000/api/v1/lineage".into(),
            api_key: Some("k3y-s3cr3t".into()),
        };
        assert_eq!(s.lineage.target, Some(want));
        assert_eq!((s.lineage.namespace.as_str(), s.lineage.queue), ("prod", 1));
        let shown = format!("{s:?}");
        assert!(!shown.contains("k3y-s3cr3t") && shown.contains("***"), "{shown}");
        let s = Settings::from_vars(vars(&[("UPDRAFT_LINEAGE_URL", "file:///tmp/ol.jsonl")]));
        assert_eq!(s.unwrap().lineage.target, Some(LineageTarget::File("/tmp/ol.jsonl".into())));
        for bad in ["kafka://u:pw@h:1", "file://relative.jsonl", "http://"] {
            let e = Settings::from_vars(vars(&[("UPDRAFT_LINEAGE_URL", bad)])).unwrap_err();
            assert!(e.to_string().contains("UPDRAFT_LINEAGE_URL") && !e.to_string().contains("pw"));
        }
    }

    #[test]
    fn the_distributed_executor_needs_postgres_and_counts_every_worker() {
        let e = Settings::from_vars(vars(&[("UPDRAFT_EXECUTOR", "distributed")])).unwrap_err();
        assert!(e.to_string().contains("needs PostgreSQL"), "{e}");
        let s = Settings::from_vars(vars(&[
            ("UPDRAFT_EXECUTOR", "distributed"),
            ("UPDRAFT_DATABASE_URL", "postgres://u:p@127.0.0.1/db"),
            ("UPDRAFT_HEARTBEAT_TIMEOUT", "2m"),
        ]))
        .unwrap();
        assert_eq!((s.parallelism, s.heartbeat_timeout.as_secs()), (128, 120));
        assert_eq!(s.queued_timeout.as_secs(), 600);
    }
}
