//! Server-rendered pages. One module per area, each with a `router()`; shared here: the
//! layout's data ([`Chrome`]), rendering, and the formatting of times and durations.
//!
//! Invariant: every handler authenticates (a [`Principal`] or [`Form`] argument) and calls
//! `require` with the action it performs before touching the store.

pub mod account;
pub mod admin;
pub mod assets;
pub mod browse;
pub mod dag;
pub mod dags;
pub mod editor;
pub mod home;
pub mod login;
pub mod ti;
pub mod workers;

use askama::Template;
use axum::Router;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use super::AppState;
use super::auth::{Action, Principal};
use super::error::WebError;

pub use super::auth::Form;

/// What the layout (`templates/base.html`) shows around every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// Page title.
    pub title: String,
    /// Which navigation entry is active.
    pub nav: &'static str,
    /// Logged-in user.
    pub username: String,
    /// Their roles, for display.
    pub roles: String,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// Show operator controls (trigger, pause, clear, mark).
    pub can_operate: bool,
    /// Show the editor.
    pub can_author: bool,
    /// Show admin pages.
    pub is_admin: bool,
    /// What the user's last form post did, shown once (kept in the session, never the URL).
    pub flash: Option<String>,
    /// Why the user's last form post was refused, shown once like `flash`.
    pub flash_error: Option<String>,
}

/// The one-off message a form post leaves in the session for the next page: what was done,
/// or why it was refused. Stored as JSON in `web_session.flash`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum Flash {
    /// Shown in the green banner.
    Done(String),
    /// Shown in the red banner.
    Refused(String),
}

impl Flash {
    /// What a post's outcome leaves for the next page: its message, or why it was refused
    /// when the user can act on it (400, 409); any other error is an error page.
    pub fn of(result: Result<String, impl Into<WebError>>) -> Result<Flash, WebError> {
        match result.map_err(Into::into) {
            Ok(msg) => Ok(Flash::Done(msg)),
            Err(e @ (WebError::BadRequest(_) | WebError::Conflict(_))) => {
                Ok(Flash::Refused(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }
}

impl Chrome {
    /// The layout data for `user` on a page titled `title`.
    pub fn new(user: &Principal, nav: &'static str, title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            nav,
            username: user.username.clone(),
            roles: user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
            csrf: user.csrf.clone().unwrap_or_default(),
            can_operate: user.can(Action::Operate),
            can_author: user.can(Action::Author),
            is_admin: user.can(Action::Admin),
            flash: None,
            flash_error: None,
        }
        .with_flash(user.flash.as_deref())
    }

    fn with_flash(mut self, stored: Option<&str>) -> Chrome {
        match stored.and_then(|json| serde_json::from_str::<Flash>(json).ok()) {
            Some(Flash::Done(text)) if !text.is_empty() => self.flash = Some(text),
            Some(Flash::Refused(text)) if !text.is_empty() => self.flash_error = Some(text),
            _ => {}
        }
        self
    }
}

/// Renders a template to a response.
pub fn render(t: &impl Template) -> Result<Html<String>, WebError> {
    Ok(Html(t.render()?))
}

/// A redirect after a post, leaving `flash` in the user's session for the next page to show
/// once. The message never travels in the URL, so a link cannot forge one.
pub async fn redirect_with(
    state: &AppState,
    user: &Principal,
    path: &str,
    flash: Flash,
) -> Result<Response, WebError> {
    if let Some(session) = &user.session {
        let json = serde_json::to_string(&flash)
            .map_err(|e| WebError::Internal(format!("flash message: {e}")))?;
        state.store.set_flash(session, &json).await?;
    }
    Ok(Redirect::to(path).into_response())
}

/// A form field that must be `true` or `false`; the error names the field.
pub fn bool_field(name: &str, value: &str) -> Result<bool, WebError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(WebError::BadRequest(format!(
            "field `{name}`: expected true or false, got `{other}`"
        ))),
    }
}

/// Percent-encodes a value for a URL query or path segment.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time as the UI shows it (UTC, to the second, labelled), or a dash.
pub fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    use chrono::{Datelike, Timelike};
    // Written field by field: a page shows hundreds of times, and `format` parses its pattern
    // again for each.
    t.map(|t| {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    })
    .unwrap_or_else(|| "—".into())
}

/// "Next run" as the pages show it: when the next scheduled run starts (the end of its data
/// interval, when the scheduler creates it), with its logical date in `title`. A healthy
/// hourly DAG shows a time ahead, not the hour that just began.
#[derive(Debug, Clone, PartialEq)]
pub struct NextRun {
    /// The start time, "paused", or a dash.
    pub at: String,
    /// The logical date, for the tooltip; empty when there is none.
    pub title: String,
}

impl NextRun {
    /// From the DAG's pause flag, its next logical date and the time that run is due.
    pub fn new(paused: bool, logical: Option<DateTime<Utc>>, due: Option<DateTime<Utc>>) -> Self {
        if paused {
            return NextRun { at: "paused".into(), title: String::new() };
        }
        let title = logical.map(|l| format!("logical date {}", fmt_time(Some(l))));
        NextRun { at: fmt_time(due.or(logical)), title: title.unwrap_or_default() }
    }
}

/// A duration between two times, short (`1.24 s`, `3m 05s`), or a dash.
pub fn fmt_duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    let (Some(s), Some(e)) = (start, end) else { return "—".into() };
    let ms = (e - s).num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// Every page route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/home") }))
        .merge(login::router())
        .merge(dags::router())
        .merge(dag::router())
        .merge(browse::router())
        .merge(home::router())
        .merge(ti::router())
        .merge(editor::router())
        .merge(admin::router())
        .merge(account::router())
        .merge(workers::router())
        .merge(assets::router())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorView {
    chrome: Chrome,
    status: u16,
    reason: String,
    message: String,
}

/// Draws a page's error (403, 404, 409...) inside the layout, with the navigation of the user
/// who asked, so they can go on from there. A request without a valid session keeps the bare
/// page; an error that cannot be drawn keeps it too.
pub async fn error_pages(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers().clone();
    let response = next.run(req).await;
    let Some(page) = response.extensions().get::<super::error::ErrorPage>().cloned() else {
        return response;
    };
    let Ok(user) = super::auth::authenticate(&state, &headers).await else { return response };
    let status = response.status();
    let reason = status.canonical_reason().unwrap_or("Error").to_string();
    let view = ErrorView {
        chrome: Chrome::new(&user, "", format!("{} {reason}", status.as_u16())),
        status: status.as_u16(),
        reason,
        message: page.message,
    };
    match view.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => response,
    }
}

/// An import error as the DAG list and the home page show it.
pub(crate) struct ImportErrorView {
    pub text: String,
    /// The editor's page for the file, for users who may edit it.
    pub edit_href: Option<String>,
}

/// The import errors of the last scan, with edit links for authors.
pub(crate) async fn import_errors(
    state: &AppState,
    user: &Principal,
) -> Result<Vec<ImportErrorView>, WebError> {
    let can_edit = user.can(Action::Author);
    Ok(state
        .store
        .import_errors()
        .await?
        .iter()
        .map(|e| ImportErrorView {
            text: e.to_string(),
            edit_href: can_edit
                .then(|| format!("/editor/edit?file={}", url_encode(&e.file.to_string_lossy()))),
        })
        .collect())
}

/// The logical date field: what the browser's date-time picker sends (`2026-01-31T10:30`, or
/// with seconds), read as UTC, or a full RFC 3339 time with its offset.
pub(crate) fn parse_logical_date(
    text: &str,
) -> Result<chrono::DateTime<chrono::Utc>, crate::actions::ActionError> {
    use crate::actions::ActionError;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ActionError::Invalid(format!(
                "logical date `{text}` is not a date and time (use the picker, or e.g. \
                 2026-01-31T00:00:00Z)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let s = Utc::now();
        let d = |ms| fmt_duration(Some(s), Some(s + chrono::Duration::milliseconds(ms)));
        assert_eq!(d(250), "250 ms");
        assert_eq!(d(1240), "1.24 s");
        assert_eq!(d(185_000), "3m 05s");
        assert_eq!(d(7_380_000), "2h 03m");
        assert_eq!(fmt_duration(None, Some(s)), "—");
    }

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("a b/c&d"), "a%20b%2Fc%26d");
    }
}
