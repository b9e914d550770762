//! The author's editor: list, create, edit, validate and delete the DAG files of the DAGs
//! folder in the browser. The scheduler's file watcher picks saved files up by itself.
//!
//! Invariants: every route needs `Action::Author`. A DAG that is not active yet is recorded
//! as paused before its file is written (an author cannot run what they save). A file is validated with the CLI's parser
//! (`crate::dag::parse_dag_str`) plus the folder-wide unique `dag_id` rule before anything is
//! written, and an invalid file writes nothing. File names are confined to the DAGs folder by
//! [`files::resolve`] before any filesystem access; writes are atomic ([`files::write_atomic`]).

pub mod files;

use std::path::{Path, PathBuf};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Chrome, Flash, Form, fmt_time, redirect_with, render, url_encode};
use crate::actions;
use crate::dag::Dag;
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// What a new file starts with: the smallest valid DAG, as a reminder of the format.
const TEMPLATE: &str = "dag_id: my_dag\ndescription: What this DAG does\nschedule: null\n\
tags: []\ntasks:\n  hello:\n    type: bash\n    command: echo hello\n";

/// One validation error as the page and the JSON show it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    /// 1-based line; 0 for the whole file.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

struct FileRow {
    name: String,
    name_url: String,
    size: u64,
    modified: String,
    dag_id: Option<String>,
    errors: usize,
    editable: bool,
}

#[derive(Template)]
#[template(path = "editor_list.html")]
struct ListPage {
    chrome: Chrome,
    files: Vec<FileRow>,
    folder: String,
}

#[derive(Template)]
#[template(path = "editor.html")]
struct EditPage {
    chrome: Chrome,
    file: String,
    is_new: bool,
    content: String,
    errors: Vec<ErrorView>,
    error: Option<String>,
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| WebError::Internal(e.to_string()))?
}

async fn list(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Author)?;
    let folder = state.settings.dags_folder.clone();
    let (entries, bag) = blocking(move || {
        let entries = files::list(&folder)?;
        Ok((entries, crate::dag::loader::load_folder(folder)))
    })
    .await?;
    let files = entries
        .into_iter()
        .map(|f| {
            let rel = PathBuf::from(&f.name);
            FileRow {
                name_url: url_encode(&f.name),
                size: f.size,
                modified: fmt_time(f.modified.map(DateTime::<Utc>::from)),
                dag_id: bag.dags.values().find(|d| d.fileloc == rel).map(|d| d.dag_id.clone()),
                errors: bag.errors.get(&rel).map_or(0, Vec::len),
                editable: f.editable,
                name: f.name,
            }
        })
        .collect();
    let page = ListPage {
        chrome: Chrome::new(&user, "editor", "Editor"),
        files,
        folder: state.settings.dags_folder.display().to_string(),
    };
    Ok(render(&page)?.into_response())
}

async fn new_file(user: Principal) -> Result<Response, WebError> {
    user.require(Action::Author)?;
    let page = EditPage {
        chrome: Chrome::new(&user, "editor", "New DAG file"),
        file: String::new(),
        is_new: true,
        content: TEMPLATE.to_string(),
        errors: Vec::new(),
        error: None,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
struct FileQuery {
    #[serde(default)]
    file: String,
}

async fn edit(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<FileQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Author)?;
    let folder = state.settings.dags_folder.clone();
    let name = q.file.clone();
    let content = blocking(move || {
        let path = files::resolve(&folder, &name)?;
        files::read(&path, &name)
    })
    .await?;
    let page = EditPage {
        chrome: Chrome::new(&user, "editor", format!("Edit {}", q.file)),
        file: q.file,
        is_new: false,
        content,
        errors: Vec::new(),
        error: None,
    };
    Ok(render(&page)?.into_response())
}

/// Browsers post textarea text with CRLF line ends; files keep the Unix form.
fn normalize(content: &str) -> String {
    content.replace("\r\n", "\n")
}

/// Validates `content` as DAG file `file` of `folder`: the CLI's parser, then the rule that no
/// other file of the folder defines the same `dag_id`. Ok carries the parsed DAG.
fn validate_in(folder: &Path, file: &str, content: &str) -> Result<Dag, Vec<ErrorView>> {
    let view =
        |e: crate::dag::LoadError| ErrorView { line: e.line, column: e.column, message: e.message };
    let dag = crate::dag::parse_dag_str(content, Path::new(file))
        .map_err(|errs| errs.into_iter().map(view).collect::<Vec<_>>())?;
    let bag = crate::dag::loader::load_folder(folder);
    if let Some(other) = bag.dags.get(&dag.dag_id).filter(|d| d.fileloc != Path::new(file)) {
        return Err(vec![view(crate::dag::loader::duplicate_dag_id(&dag, &other.fileloc))]);
    }
    Ok(dag)
}

#[derive(Deserialize)]
struct ValidateForm {
    #[serde(default)]
    file: String,
    #[serde(default)]
    content: String,
}

#[derive(Serialize)]
struct Validation {
    valid: bool,
    dag_id: Option<String>,
    errors: Vec<ErrorView>,
}

async fn validate(State(state): State<AppState>, form: Form<ValidateForm>) -> Response {
    if let Err(e) = form.user.require(Action::Author) {
        return e.into_json();
    }
    let ValidateForm { file, content } = form.data;
    let folder = state.settings.dags_folder.clone();
    let result = blocking(move || {
        files::resolve(&folder, &file)?;
        Ok(validate_in(&folder, &file, &normalize(&content)))
    })
    .await;
    match result {
        Ok(Ok(dag)) => {
            Json(Validation { valid: true, dag_id: Some(dag.dag_id), errors: Vec::new() })
                .into_response()
        }
        Ok(Err(errors)) => Json(Validation { valid: false, dag_id: None, errors }).into_response(),
        Err(e @ WebError::BadRequest(_)) => {
            let errors = vec![ErrorView { line: 0, column: 0, message: e.to_string() }];
            (StatusCode::BAD_REQUEST, Json(Validation { valid: false, dag_id: None, errors }))
                .into_response()
        }
        Err(e) => e.into_json(),
    }
}

#[derive(Deserialize)]
struct SaveForm {
    #[serde(default)]
    file: String,
    #[serde(default)]
    content: String,
    /// Set by the "new file" form: refuse to replace an existing file.
    #[serde(default)]
    new: String,
}

/// What a save ended with, short of an internal error.
enum Saved {
    Written(String, bool),
    Invalid(StatusCode, Vec<ErrorView>, Option<String>),
}

/// Saves a validated file. A DAG that is not active yet (a new file, a new `dag_id`, a file
/// that did not load before) is recorded as paused before its file is written, so the
/// scheduler's first sync of the file finds it paused: an author cannot run a DAG by saving
/// one with a schedule or a `trigger_dag` task; an operator unpauses it.
async fn save(State(state): State<AppState>, form: Form<SaveForm>) -> Result<Response, WebError> {
    form.user.require(Action::Author)?;
    let SaveForm { file, content, new } = form.data;
    let is_new = new == "1";
    let content = normalize(&content);
    let folder = state.settings.dags_folder.clone();
    let (name, text) = (file.clone(), content.clone());
    let checked = blocking(move || {
        let path = files::resolve(&folder, &name)?;
        if is_new && files::exists(&path) {
            let msg = format!("`{name}` already exists: open it from the list to edit it");
            return Ok(Err(Saved::Invalid(StatusCode::CONFLICT, Vec::new(), Some(msg))));
        }
        Ok(match validate_in(&folder, &name, &text) {
            Err(errors) => Err(Saved::Invalid(StatusCode::BAD_REQUEST, errors, None)),
            Ok(dag) => Ok((path, dag)),
        })
    })
    .await;
    let outcome = match checked {
        Err(e @ WebError::BadRequest(_)) => {
            Saved::Invalid(StatusCode::BAD_REQUEST, Vec::new(), Some(e.to_string()))
        }
        Err(e) => return Err(e),
        Ok(Err(refused)) => refused,
        Ok(Ok((path, dag))) => {
            let paused = state.store.pause_at_creation(&dag, Utc::now()).await?;
            let text = content.clone();
            blocking(move || {
                files::write_atomic(&path, &text)
                    .map_err(|e| WebError::Internal(format!("write {}: {e}", path.display())))
            })
            .await?;
            // The version is the user's: the folder scan that finds the file keeps the name.
            state.store.record_saved_version(&dag, &form.user.username, Utc::now()).await?;
            Saved::Written(dag.dag_id, paused)
        }
    };
    match outcome {
        Saved::Written(dag_id, paused) => {
            let actor = form.user.actor();
            let entry = actions::Audit::new("dag_file_saved").dag(&dag_id).extra(file.clone());
            actions::audit(&state.store, &actor, entry).await?;
            if paused {
                let entry =
                    actions::Audit::new("paused_at_creation").dag(&dag_id).extra(file.clone());
                actions::audit(&state.store, &actor, entry).await?;
            }
            let then = if paused {
                "; it starts paused until an operator unpauses it"
            } else {
                "; the scheduler picks it up shortly"
            };
            let msg = format!("Saved {file} (DAG {dag_id}){then}");
            redirect_with(&state, &form.user, "/editor", Flash::Done(msg)).await
        }
        Saved::Invalid(status, errors, error) => {
            let error = error.or_else(|| {
                Some(format!("Not saved: {} error(s); the file on disk is unchanged", errors.len()))
            });
            let page = EditPage {
                chrome: Chrome::new(&form.user, "editor", format!("Edit {file}")),
                file,
                is_new,
                content,
                errors,
                error,
            };
            Ok((status, render(&page)?).into_response())
        }
    }
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    file: String,
}

async fn delete(
    State(state): State<AppState>,
    form: Form<DeleteForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Author)?;
    let folder = state.settings.dags_folder.clone();
    let name = form.data.file.clone();
    let dag_id = blocking(move || {
        let path = files::resolve(&folder, &name)?;
        let dag_id = crate::dag::parse_dag(&path, Path::new(&name)).ok().map(|d| d.dag_id);
        files::delete(&path, &name)?;
        Ok(dag_id)
    })
    .await?;
    let file = form.data.file;
    let mut entry = actions::Audit::new("dag_file_deleted").extra(file.clone());
    if let Some(id) = dag_id.as_deref() {
        entry = entry.dag(id);
    }
    actions::audit(&state.store, &form.user.actor(), entry).await?;
    redirect_with(&state, &form.user, "/editor", Flash::Done(format!("Deleted {file}"))).await
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/editor", get(list))
        .route("/editor/new", get(new_file))
        .route("/editor/edit", get(edit))
        .route("/editor/validate", post(validate))
        .route("/editor/save", post(save))
        .route("/editor/delete", post(delete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_file_template_is_a_valid_dag() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            validate_in(dir.path(), "my_dag.yaml", TEMPLATE).ok().map(|d| d.dag_id).as_deref(),
            Some("my_dag")
        );
        assert_eq!(normalize("a\r\nb\r\n"), "a\nb\n");
    }

    #[test]
    fn a_dag_id_another_file_defines_is_refused_where_it_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dag = "dag_id: same\ntasks:\n  a:\n    type: empty\n";
        std::fs::write(dir.path().join("first.yaml"), dag).expect("write");
        let refused = |file: &str, content: &str| {
            let errors = validate_in(dir.path(), file, content).expect_err("a second definition");
            assert_eq!(errors.len(), 1);
            assert!(errors[0].message.contains("already defined in `first.yaml`"));
            (errors[0].line, errors[0].column)
        };
        assert_eq!(refused("second.yaml", &format!("# a comment\n{dag}")), (2, 9));
        // Without a `dag_id:` line the id is the file's name: the whole file is the place.
        assert_eq!(refused("same.yaml", "tasks:\n  a:\n    type: empty\n"), (1, 1));
        assert!(validate_in(dir.path(), "first.yaml", dag).is_ok(), "its own file may keep it");
    }
}
