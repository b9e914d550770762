//! Login and logout: argon2 check, rate limit per user name and per client address, session
//! cookie (HttpOnly, SameSite=Lax, expiring).

use std::net::SocketAddr;

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
use crate::store::AuditEntry;
use crate::web::auth::{SESSION_COOKIE, session_cookie, verify_password};
use crate::web::{AppState, WebError};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    username: String,
    next: String,
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
}

/// Only same-site paths may follow a login (no open redirect).
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/dags"
    }
}

async fn page(Query(q): Query<NextQuery>) -> Result<Response, WebError> {
    let page = LoginPage { error: None, username: String::new(), next: q.next };
    Ok(render(&page)?.into_response())
}

async fn login(
    State(state): State<AppState>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    axum::Form(f): axum::Form<LoginForm>,
) -> Result<Response, WebError> {
    let user_key = format!("user:{}", f.username.to_lowercase());
    let addr_key = addr.map(|Extension(ConnectInfo(a))| format!("addr:{}", a.ip()));
    let refuse = |status: StatusCode, msg: &str| -> Result<Response, WebError> {
        let page = LoginPage {
            error: Some(msg.to_string()),
            username: f.username.clone(),
            next: f.next.clone(),
        };
        Ok((status, render(&page)?).into_response())
    };
    if state.limiter.blocked(&user_key)
        || addr_key.as_deref().is_some_and(|k| state.limiter.blocked(k))
    {
        return refuse(StatusCode::TOO_MANY_REQUESTS, &WebError::TooManyRequests.to_string());
    }
    let user = state.store.find_user(f.username.trim()).await?;
    let ok = match &user {
        Some(u) if u.active => verify_password(f.password.clone(), u.password_hash.clone()).await,
        _ => {
            // Spend the same time as a real check, so timing does not reveal user names.
            let _ = verify_password(f.password.clone(), dummy_hash().await).await;
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        state.limiter.failed(&user_key);
        if let Some(k) = &addr_key {
            state.limiter.failed(k);
        }
        return refuse(StatusCode::UNAUTHORIZED, "wrong user name or password");
    };
    state.limiter.succeeded(&user_key);
    let now = Utc::now();
    let token = random_token();
    let expires = now + chrono::Duration::hours(i64::from(state.settings.session_hours));
    state.store.create_session(&token_hash(&token), user.id, &random_token(), now, expires).await?;
    state.store.record_login(user.id, now).await?;
    let audit = AuditEntry { username: &user.username, event: "login", ..Default::default() };
    state.store.record_audit(&audit, now).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        i64::from(state.settings.session_hours) * 3600
    );
    let mut resp = Redirect::to(safe_next(&f.next)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
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
    use super::safe_next;

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next("/dags/x"), "/dags/x");
        assert_eq!(safe_next("//evil.example"), "/dags");
        assert_eq!(safe_next("https://evil.example"), "/dags");
        assert_eq!(safe_next("/\\evil"), "/dags");
    }
}
