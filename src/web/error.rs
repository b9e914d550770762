//! Errors of the web layer and how they are shown: an HTML page for the UI, a JSON object for
//! `/api`. A 500 logs its cause and never shows it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use crate::store::StoreError;

/// The `WWW-Authenticate` challenge of the API's 401s.
pub const CHALLENGE: &str = "Bearer realm=\"updraft\"";

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No valid session or token.
    #[error("log in first")]
    Unauthenticated,
    /// Logged in, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// No such DAG, run, task, file...
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or its values are invalid; the message names what and where.
    #[error("{0}")]
    BadRequest(String),
    /// The form's CSRF token is missing or wrong.
    #[error("the form has expired or did not come from this site: reload the page and try again")]
    Csrf,
    /// The thing already exists, or changed meanwhile.
    #[error("{0}")]
    Conflict(String),
    /// Too many failed logins.
    #[error("too many failed logins: wait a few minutes and try again")]
    TooManyRequests,
    /// A failure on our side; the cause is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl WebError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthenticated => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A refusal naming the role needed.
    pub fn needs(role: &str, what: &str) -> WebError {
        WebError::Forbidden(format!("{what} needs the {role} role"))
    }

    /// Renders as JSON (the API's form). A 401 names the scheme to use in `WWW-Authenticate`,
    /// as HTTP requires of every 401.
    pub fn into_json(self) -> Response {
        if let WebError::Internal(cause) = &self {
            tracing::error!(cause = %cause, "request failed");
        }
        let status = self.status();
        let mut resp =
            (status, Json(json!({ "error": self.to_string(), "status": status.as_u16() })))
                .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        resp
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => WebError::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => WebError::Conflict(format!("{what} already exists")),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Internal(format!("template: {e}"))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if matches!(self, WebError::Unauthenticated) {
            return Redirect::to("/login").into_response();
        }
        if let WebError::Internal(cause) = &self {
            tracing::error!(cause = %cause, "request failed");
        }
        let status = self.status();
        let message = self.to_string();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = format!(
            "<!doctype html><html><head><meta charset=utf-8><title>{title} · Updraft</title>\
             <link rel=stylesheet href=/static/app.css></head><body><main class=error-page>\
             <h1>{} {title}</h1><p class=error-message>{}</p><p><a href=/dags>Back to DAGs</a></p>\
             </main></body></html>",
            status.as_u16(),
            escape(&message)
        );
        let mut response = (status, Html(body)).into_response();
        // The pages' layer redraws it inside the layout for a logged-in user.
        response.extensions_mut().insert(ErrorPage { message });
        response
    }
}

/// Marks an HTML error response with its message, so the pages' layer can show it inside the
/// navigation of the user who asked (`pages::error_pages`); without a session it stays bare.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    /// What went wrong, as shown.
    pub message: String,
}

/// An error of an `/api` handler: the same errors, as JSON.
#[derive(Debug)]
pub struct ApiError(pub WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_json()
    }
}

/// HTML-escapes text for the few places that build markup by hand (templates escape
/// themselves).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
