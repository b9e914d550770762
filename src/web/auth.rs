//! Who is asking, and may they: roles, sessions, API tokens, passwords and CSRF (the login
//! rate limit is `super::limiter`).
//!
//! Invariants: every handler takes a [`Principal`] (or [`Form`], which contains one) and
//! calls [`Principal::require`] before it reads or changes anything — hiding a button is not
//! security. Passwords are argon2 hashes, checked on the blocking pool. Session ids and API
//! tokens are stored only as SHA-256 hashes. Every state-changing form carries the session's
//! CSRF token, checked by [`Form`].

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::WebError;
use super::redirect::safe_next;
use crate::secrets::token_hash;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "updraft_session";

pub use crate::actions::Role;

/// What a request wants to do; each route needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See DAGs, runs, logs, code.
    Read,
    /// Trigger, pause, clear, mark.
    Operate,
    /// Create, edit, delete DAG files.
    Author,
    /// Users, connections, variables, pools, audit log.
    Admin,
}

impl Action {
    /// The role that grants this action (admin grants all).
    pub fn role(self) -> Role {
        match self {
            Action::Read => Role::Viewer,
            Action::Operate => Role::Operator,
            Action::Author => Role::Author,
            Action::Admin => Role::Admin,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Action::Read => "reading",
            Action::Operate => "triggering, pausing, clearing or marking",
            Action::Author => "editing DAG files",
            Action::Admin => "administration",
        }
    }
}

/// Whether `roles` allow `action`: admin allows everything; any role allows reading.
pub fn allows(roles: &[Role], action: Action) -> bool {
    roles.contains(&Role::Admin)
        || match action {
            Action::Read => !roles.is_empty(),
            other => roles.contains(&other.role()),
        }
}

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User primary key.
    pub user_id: i64,
    /// Login name (recorded in the audit log).
    pub username: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// The session's CSRF token; None for API tokens (no cookie, so no CSRF).
    pub csrf: Option<String>,
    /// The hash of the session cookie (the session's key); None for API tokens.
    pub session: Option<String>,
    /// The message the session's last form post left, for the page this request shows; None
    /// on requests that show no page (API calls, live refreshes), which leave it waiting.
    pub flash: Option<String>,
}

impl Principal {
    /// Refuses the request unless the user's roles allow `action`.
    pub fn require(&self, action: Action) -> Result<(), WebError> {
        if allows(&self.roles, action) {
            Ok(())
        } else {
            Err(WebError::needs(action.role().as_str(), action.describe()))
        }
    }

    /// Whether the user may do `action` (for showing or hiding buttons only).
    pub fn can(&self, action: Action) -> bool {
        allows(&self.roles, action)
    }
}

fn parse_roles(names: &[String]) -> Vec<Role> {
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

/// The value of the session cookie, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `name`, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The token of an `Authorization: Bearer <token>` header. The scheme name is
/// case-insensitive (RFC 9110 section 11.1), so `bearer` and `BEARER` work too.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Authenticates from a bearer token (API) or the session cookie.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, WebError> {
    let now = Utc::now();
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let token = bearer_token(auth).ok_or_else(|| {
            WebError::BadRequest("the Authorization header must be `Bearer <token>`".into())
        })?;
        let user = state.store.token_user(&token_hash(token), now).await?;
        let user = user.ok_or(WebError::Unauthenticated)?;
        return Ok(Principal {
            user_id: user.id,
            username: user.username,
            roles: parse_roles(&user.roles),
            csrf: None,
            session: None,
            flash: None,
        });
    }
    let cookie = session_cookie(headers).ok_or(WebError::Unauthenticated)?;
    let session = token_hash(cookie);
    let found = state.store.session_user(&session, now).await?;
    let found = found.ok_or(WebError::Unauthenticated)?;
    Ok(Principal {
        user_id: found.user.id,
        username: found.user.username,
        roles: parse_roles(&found.user.roles),
        csrf: Some(found.csrf),
        session: Some(session),
        flash: found.flash,
    })
}

/// Whether a request shows a page (and so its flash message): a GET of a page, not an API
/// call and not a live refresh of one (`X-Live`, from `app.js`).
fn shows_a_page(parts: &Parts) -> bool {
    parts.method == axum::http::Method::GET
        && !parts.uri.path().starts_with("/api/")
        && !parts.headers.contains_key("x-live")
}

/// Why a request could not be authenticated, shown as a page or as JSON by path.
pub struct AuthRejection {
    api: bool,
    error: WebError,
    /// The page asked for, to return to after logging in (GETs of pages only).
    asked: Option<String>,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        if self.api {
            return self.error.into_json();
        }
        match (&self.error, &self.asked) {
            // The login page checks `next` again (`safe_next`) before it sends anyone there.
            (WebError::Unauthenticated, Some(asked)) if safe_next(asked) == asked => {
                let to = format!("/login?next={}", crate::web::pages::url_encode(asked));
                axum::response::Redirect::to(&to).into_response()
            }
            _ => self.error.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let api = parts.uri.path().starts_with("/api/");
        let asked = (parts.method == axum::http::Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_string()))
            .flatten();
        let mut user = authenticate(state, &parts.headers)
            .await
            .map_err(|error| AuthRejection { api, error, asked })?;
        // A flash is shown once: the page request that shows it drops it from the session.
        match (&user.flash, &user.session) {
            (Some(shown), Some(session)) if shows_a_page(parts) => {
                if let Err(e) = state.store.take_flash(session, shown).await {
                    tracing::warn!(error = %e, "could not drop a shown flash message");
                }
            }
            _ => user.flash = None,
        }
        Ok(user)
    }
}

/// A form post from a logged-in user: the user, the CSRF check, then the fields. Every
/// state-changing page route takes one.
pub struct Form<T> {
    /// Who posted it.
    pub user: Principal,
    /// The fields.
    pub data: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Largest form accepted (a DAG file in the editor is the biggest thing posted).
const MAX_FORM: usize = 1024 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let user = Principal::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
            WebError::BadRequest("the form is larger than 1 MiB".into()).into_response()
        })?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::BadRequest(format!("malformed form: {e}")).into_response())?;
        let expected = user.csrf.as_deref().unwrap_or("");
        if expected.is_empty() || !same_secret(expected, &field.csrf) {
            return Err(WebError::Csrf.into_response());
        }
        let data = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::BadRequest(format!("malformed form: {e}")).into_response())?;
        Ok(Form { user, data })
    }
}

/// Compares two secrets in a time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a password with argon2 on the blocking pool (one implementation, in `actions`).
pub async fn hash_password(password: String) -> Result<String, WebError> {
    Ok(crate::actions::hash_password(password).await?)
}

/// Checks a password against an argon2 hash (on the blocking pool).
pub async fn verify_password(password: String, hash: String) -> bool {
    crate::actions::verify_password(password, hash).await
}

/// Checks a new password's strength; the message says what is missing.
pub fn check_password(password: &str) -> Result<(), String> {
    crate::actions::check_password(password).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_matrix() {
        use Role::*;
        let cases: [(&[Role], [bool; 4]); 6] = [
            (&[], [false, false, false, false]),
            (&[Viewer], [true, false, false, false]),
            (&[Operator], [true, true, false, false]),
            (&[Author], [true, false, true, false]),
            (&[Operator, Author], [true, true, true, false]),
            (&[Admin], [true, true, true, true]),
        ];
        for (roles, expect) in cases {
            let got = [Action::Read, Action::Operate, Action::Author, Action::Admin]
                .map(|a| allows(roles, a));
            assert_eq!(got, expect, "{roles:?}");
        }
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; updraft_session=xyz; b=2".parse().expect("header"));
        assert_eq!(session_cookie(&h), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for ok in ["Bearer abc", "bearer abc", "BEARER  abc ", " bEaReR abc"] {
            assert_eq!(bearer_token(ok), Some("abc"), "{ok:?}");
        }
        for bad in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
    }
}
