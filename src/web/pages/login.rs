//! Login and logout: a pre-session CSRF token, the back-off of `web::limiter`, argon2 check,
//! audit of every attempt, and the session cookie (HttpOnly, SameSite=Lax, expiring).
//!
//! Invariants: a login post is accepted only with the token its own login page set (a
//! double-submit cookie, `SameSite=Strict` and `HttpOnly`), so another site cannot log a
//! browser into an account of its choosing; the name is normalised once ([`login_name`]) for
//! the lookup, the limit and the audit; every failed password is in the audit log and the
//! server log with user and address, never the password; `next` goes through
//! [`safe_next`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::{Form, render};
use crate::secrets::{random_token, token_hash};
use crate::web::auth::{SESSION_COOKIE, cookie, session_cookie, verify_password};
use crate::web::limiter::login_name;
use crate::web::redirect::safe_next;
use crate::web::{AppState, WebError};

/// The cookie holding the login form's CSRF token, scoped to `/login`.
pub const LOGIN_CSRF_COOKIE: &str = "updraft_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    username: String,
    next: String,
    csrf: String,
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

/// The browser's login token when it has a well-formed one, else a fresh one.
fn login_token(headers: &HeaderMap) -> String {
    cookie(headers, LOGIN_CSRF_COOKIE)
        .filter(|t| {
            t.len() >= 32
                && t.len() <= 64
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(random_token, str::to_string)
}

/// The login page (`status`) with its token cookie set.
fn login_page(status: StatusCode, page: LoginPage) -> Result<Response, WebError> {
    let set = format!(
        "{LOGIN_CSRF_COOKIE}={}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600",
        page.csrf
    );
    let mut resp = (status, render(&page)?).into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn page(headers: HeaderMap, Query(q): Query<NextQuery>) -> Result<Response, WebError> {
    let page = LoginPage {
        error: None,
        username: String::new(),
        next: safe_next(&q.next).to_string(),
        csrf: login_token(&headers),
    };
    login_page(StatusCode::OK, page)
}

async fn login(
    State(state): State<AppState>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoginForm>,
) -> Result<Response, WebError> {
    let ip: Option<IpAddr> = addr.map(|Extension(ConnectInfo(a))| a.ip());
    let name = login_name(&f.username);
    let refuse = |status: StatusCode, msg: String| {
        let page = LoginPage {
            error: Some(msg),
            username: name.to_string(),
            next: safe_next(&f.next).to_string(),
            csrf: login_token(&headers),
        };
        login_page(status, page)
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !crate::web::auth::same_secret(expected, &f.csrf) {
        return refuse(StatusCode::FORBIDDEN, WebError::Csrf.to_string());
    }
    if let Err(wait) = state.limiter.check(name, ip, Instant::now()) {
        tracing::info!(user = ?name, addr = ?ip, wait_s = wait.as_secs(), "login refused: backing off");
        let mut resp = refuse(StatusCode::TOO_MANY_REQUESTS, too_many(wait))?;
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return Ok(resp);
    }
    let user = state.store.find_user(name).await?;
    let ok = match &user {
        Some(u) if u.active => verify_password(f.password.clone(), u.password_hash.clone()).await,
        _ => {
            // Spend the same time as a real check, so timing does not reveal user names.
            let _ = verify_password(f.password.clone(), dummy_hash().await).await;
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        state.limiter.failed(name, ip, Instant::now());
        audit_login(&state, name, "login_failed", ip).await?;
        return refuse(StatusCode::UNAUTHORIZED, "wrong user name or password".into());
    };
    state.limiter.succeeded(name, ip);
    let now = Utc::now();
    let token = random_token();
    let expires = now + chrono::Duration::hours(i64::from(state.settings.session_hours));
    state.store.create_session(&token_hash(&token), user.id, &random_token(), now, expires).await?;
    state.store.record_login(user.id, now).await?;
    audit_login(&state, &user.username, "login", ip).await?;
    let session = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        i64::from(state.settings.session_hours) * 3600
    );
    let mut resp = Redirect::to(safe_next(&f.next)).into_response();
    let spent = format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0");
    for c in [session, spent] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

fn too_many(wait: Duration) -> String {
    format!(
        "too many failed logins for this user from this address: wait {} s and try again",
        wait.as_secs().max(1)
    )
}

/// The one place a login attempt is audited (and, when it failed, logged): user as typed
/// (normalised, at most 64 characters), event, client address.
async fn audit_login(
    state: &AppState,
    name: &str,
    event: &str,
    ip: Option<IpAddr>,
) -> Result<(), WebError> {
    let name: String = name.chars().take(64).collect();
    let from = ip.map_or_else(|| "unknown address".to_string(), |a| a.to_string());
    if event != "login" {
        // Debug formatting escapes control characters, so a name cannot forge log lines.
        tracing::warn!(user = ?name, addr = %from, "failed login");
    }
    let entry = crate::actions::Audit::new(event).extra(format!("from {from}"));
    crate::actions::audit(&state.store, &crate::actions::Actor::unverified(&name), entry).await?;
    Ok(())
}

#[derive(Deserialize)]
struct Empty {}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Form<Empty>,
) -> Result<Response, WebError> {
    if let Some(cookie) = session_cookie(&headers) {
        state.store.delete_session(&token_hash(cookie)).await?;
    }
    let _ = form.data;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("updraft_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(resp)
}

/// An argon2 hash of a random password, checked when the user does not exist. Computed once;
/// a constant in all but name.
async fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = HASH.get() {
        return h.clone();
    }
    let h = crate::web::auth::hash_password(random_token()).await.unwrap_or_default();
    HASH.get_or_init(|| h).clone()
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/login", get(page).post(login)).route("/logout", post(logout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_login_token_is_kept_and_anything_else_replaced() {
        let mut h = HeaderMap::new();
        let good = "a".repeat(43);
        h.insert(header::COOKIE, format!("{LOGIN_CSRF_COOKIE}={good}").parse().expect("header"));
        assert_eq!(login_token(&h), good);
        h.insert(header::COOKIE, format!("{LOGIN_CSRF_COOKIE}=short").parse().expect("header"));
        assert_ne!(login_token(&h), "short");
        assert!(login_token(&HeaderMap::new()).len() >= 32);
    }
}
