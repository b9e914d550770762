//! The use cases: one function per thing a person does to Updraft — trigger a run, backfill,
//! pause, clear, mark; create users, change roles and passwords, delete users; issue and revoke
//! API tokens; save and delete connections, variables and pools — each writing its audit entry.
//! The web pages, the REST API and the CLI all call these, so the three cannot drift apart
//! (a run id or a conf is checked the same way whoever triggers).
//!
//! Invariants:
//! - Callers have checked who may act: the web through its role extractors, the CLI by being an
//!   admin tool run by whoever holds the database credentials. These functions take an
//!   [`Actor`] only to record who did it.
//! - Every change writes exactly one audit entry through [`audit`], the only audit insert.
//! - States are decided by `model` (`user_change`: what a clear or mark writes), conf by
//!   `dag::params::check_conf`; the store persists what is decided here.
//! - One error type, [`ActionError`], which `web::error` and the CLI each map (to a status code,
//!   to an exit code).

pub mod assets;
pub mod backfills;
pub mod connections;
pub mod runs;
pub mod settings;
pub mod tokens;
pub mod users;

use chrono::Utc;

use crate::dag::params::ConfErrors;
use crate::store::{AuditEntry, Store, StoreError};

pub use runs::{
    BulkAction, ConfInput, MAX_BULK, MAX_NOTE, RunVersion, TiBulkAction, TiKey, TriggerRequest,
    active_dag, backfill, bulk, bulk_tis, check_ids, check_run_id, clear, clear_run, delete_run,
    find_run, find_ti, mark, mark_run, set_note, set_paused, stored_dag, trigger,
};
pub use users::{Role, check_password, hash_password, verify_password};

/// Why an action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The DAG, run, task instance, user... does not exist; the message names it.
    #[error("{0}")]
    NotFound(String),
    /// A value given is invalid; the message names the field and the rule.
    #[error("{0}")]
    Invalid(String),
    /// The conf does not fit the DAG's params; each error names its param.
    #[error("{0}")]
    Conf(#[from] ConfErrors),
    /// It already exists, changed meanwhile, or would break a rule (the last admin).
    #[error("{0}")]
    Conflict(String),
    /// A failure on our side (database, hashing); callers log it and show no detail.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ActionError::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => ActionError::Conflict(format!("{what} already exists")),
            other => ActionError::Internal(other.to_string()),
        }
    }
}

/// Result of an action.
pub type Result<T, E = ActionError> = std::result::Result<T, E>;

/// Who does something, as the audit log and `triggered_by` record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `alice` for a web user, `cli:<os user>` for the command line.
    name: String,
    /// The user's id for a web user: the actions that must not act on the caller themselves
    /// (delete, deactivate) need it.
    user_id: Option<i64>,
}

impl Actor {
    /// A logged-in user (web page or API token).
    pub fn user(user_id: i64, username: &str) -> Actor {
        Actor { name: username.to_string(), user_id: Some(user_id) }
    }

    /// The command line, run by the operating-system user `os_user`.
    pub fn cli(os_user: &str) -> Actor {
        Actor { name: format!("cli:{os_user}"), user_id: None }
    }

    /// Someone who is not logged in and gave `name` (a login attempt): recorded under the name
    /// typed, since no user is proven.
    pub fn unverified(name: &str) -> Actor {
        Actor { name: name.to_string(), user_id: None }
    }

    /// The name the audit log records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user id, for a web user.
    pub fn user_id(&self) -> Option<i64> {
        self.user_id
    }

    /// What a run this actor triggers records as `triggered_by`.
    pub fn triggered_by(&self) -> String {
        match self.user_id {
            Some(_) => format!("user:{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What an audit entry is about: the event and, where they apply, the DAG, run, task and a
/// detail (a file name, a new state, a user name — never a secret).
#[derive(Debug, Clone, Default)]
pub struct Audit<'a> {
    event: &'a str,
    dag_id: Option<&'a str>,
    run_id: Option<&'a str>,
    task_id: Option<&'a str>,
    map_index: Option<i64>,
    extra: Option<String>,
}

impl<'a> Audit<'a> {
    /// An entry for `event` (`trigger`, `user_created`, `dag_file_saved`...).
    pub fn new(event: &'a str) -> Audit<'a> {
        Audit { event, ..Default::default() }
    }

    /// About DAG `dag_id`.
    pub fn dag(mut self, dag_id: &'a str) -> Self {
        self.dag_id = Some(dag_id);
        self
    }

    /// About run `run_id`.
    pub fn run(mut self, run_id: &'a str) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// About task `task_id` (and one map index of it, when mapped).
    pub fn task(mut self, task_id: &'a str, map_index: Option<i64>) -> Self {
        self.task_id = Some(task_id);
        self.map_index = map_index.filter(|m| *m >= 0);
        self
    }

    /// With a detail.
    pub fn extra(mut self, extra: impl Into<String>) -> Self {
        self.extra = Some(extra.into());
        self
    }
}

/// Appends `entry` for `actor` to the audit log: the one audit insert of the crate.
pub async fn audit(store: &Store, actor: &Actor, entry: Audit<'_>) -> Result<()> {
    let row = AuditEntry {
        username: actor.name(),
        event: entry.event,
        dag_id: entry.dag_id,
        run_id: entry.run_id,
        task_id: entry.task_id,
        map_index: entry.map_index,
        extra: entry.extra,
    };
    store.record_audit(&row, Utc::now()).await?;
    Ok(())
}

/// Checks a name typed by a person (connection id, pool name): 1 to 250 letters, digits, `_`,
/// `.` or `-`. The message names the field.
pub fn check_name(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 250
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ActionError::Invalid(format!(
            "{what} `{id}`: use 1 to 250 letters, digits, `_`, `.` or `-`"
        )))
    }
}
