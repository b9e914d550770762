//! Admin pages: users and roles, connections, variables, pools, and the audit log.
//!
//! Invariants: every route needs `Action::Admin`, checked first. Every change writes an audit
//! entry that names what changed but never a secret (no password, no URI, no variable value).
//! A refused change (bad input, last admin, conflict) shows the page again with the reason and
//! a 4xx status; nothing is written.

pub mod audit;
pub mod connections;
pub mod settings;
pub mod users;

use std::future::Future;

use axum::Router;
use axum::response::{Html, IntoResponse, Response};

use super::{Flash, Principal, redirect_with};
use crate::web::{AppState, WebError};

/// A posted form as its fields in order; repeated names (role checkboxes) stay repeated.
pub type Fields = Vec<(String, String)>;

/// The first value of field `name`, or empty.
pub fn field(fields: &Fields, name: &str) -> String {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// After a post: success redirects to `path` with `Ok`'s message; a refusal the user can fix
/// (400, 404, 409) renders `page` with the reason and that status; anything else is an error.
pub async fn finish<F, Fut>(
    state: &AppState,
    user: &Principal,
    result: Result<String, WebError>,
    path: &str,
    page: F,
) -> Result<Response, WebError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Html<String>, WebError>>,
{
    match result {
        Ok(msg) => redirect_with(state, user, path, Flash::Done(msg)).await,
        Err(e @ (WebError::BadRequest(_) | WebError::Conflict(_) | WebError::NotFound(_))) => {
            let status = e.status();
            Ok((status, page(e.to_string()).await?).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Routes of the admin pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(users::router())
        .merge(connections::router())
        .merge(settings::router())
        .merge(audit::router())
}
