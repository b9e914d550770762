//! The web app the page and API tests talk to: the real router over a store, served on
//! 127.0.0.1, and users of each role who start logged in — a session (cookie and CSRF token)
//! and an API token written straight to the store, so that a test does not pay argon2 or a
//! login round trip unless the login is what it tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use reqwest::redirect::Policy;
use tokio_util::sync::{CancellationToken, DropGuard};
use updraft::config::Settings;
use updraft::secrets::{random_token, token_hash};
use updraft::store::Store;
use updraft::web::{AppState, Metrics};

use crate::support::common::Env;

/// Every role a user may hold.
pub const ROLES: [&str; 4] = ["viewer", "operator", "author", "admin"];

/// A user who is logged in: the session a browser holds and a token an API client holds.
#[derive(Debug, Clone)]
pub struct Creds {
    /// The user's name.
    pub name: String,
    /// Value of the `updraft_session` cookie.
    pub session: String,
    /// The session's CSRF token, which every page post carries.
    pub csrf: String,
    /// A bearer token for `/api/v1`.
    pub token: String,
}

impl Creds {
    /// The `cookie` header of a browser logged in as this user.
    pub fn cookie(&self) -> String {
        format!("updraft_session={}", self.session)
    }
}

/// Creates user `name` with `roles` (none is allowed: such a user may do nothing), with a
/// session valid for an hour and an API token. The password hash is not a real one: this user
/// cannot log in through the form.
pub async fn logged_in(store: &Store, name: &str, roles: &[&str]) -> Creds {
    let now = Utc::now();
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let email = format!("{name}@example.com");
    let id = store.create_user(name, &email, "unused-hash", &roles, now).await.expect("user");
    let (session, csrf, token) = (random_token(), random_token(), random_token());
    let until = now + chrono::Duration::hours(1);
    store.create_session(&token_hash(&session), id, &csrf, now, until).await.expect("session");
    store.create_token(id, "test", &token_hash(&token), now, None).await.expect("token");
    Creds { name: name.to_string(), session, csrf, token }
}

/// One logged-in user per role of [`ROLES`], named after the role.
pub async fn role_users(store: &Store) -> HashMap<&'static str, Creds> {
    let mut users = HashMap::new();
    for role in ROLES {
        users.insert(role, logged_in(store, role, &[role]).await);
    }
    users
}

/// The server state over `store`, as `updraft web` builds it.
pub fn app_state(store: &Store, settings: &Settings) -> AppState {
    AppState::new(store.clone(), Arc::new(settings.clone()), Arc::new(Metrics::default()))
}

/// The web server on a free port of 127.0.0.1, stopped when dropped.
pub struct WebApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The state it serves (shared with the test: limiter, store, DAG cache).
    pub state: AppState,
    /// A client that does not follow redirects, so that a test sees them.
    pub http: reqwest::Client,
    _stop: DropGuard,
}

impl WebApp {
    /// Serves the app over `env`'s store and settings.
    pub async fn serve(env: &Env) -> WebApp {
        WebApp::serve_state(app_state(&env.store, &env.settings)).await
    }

    /// Serves `state`.
    pub async fn serve_state(state: AppState) -> WebApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        tokio::spawn(updraft::web::serve(listener, state.clone(), stop.clone()));
        let http = updraft::tls::http_client().redirect(Policy::none()).build().expect("client");
        WebApp { base, state, http, _stop: stop.drop_guard() }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
