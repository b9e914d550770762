//! The web boundary against a hostile client, over real HTTP on 127.0.0.1: return paths that
//! try to leave the site, login guessing from one address and from another, the login form's
//! CSRF token, security headers, `/health` details, and DAGs an author creates in the editor.
//! Clients bind distinct loopback addresses (127.0.0.2, 127.0.0.3) so the server sees them as
//! different machines.

use crate::support::common;

use std::net::IpAddr;
use std::time::Duration;

use common::{Db, Env};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use updraft::web::AppState;

use crate::support::web::WebApp;

const LIMIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "right-password-1";

struct App {
    env: Env,
    base: String,
    state: AppState,
    /// The server, stopped when this is dropped.
    _app: WebApp,
}

/// A browser at one address: its session (after login) and CSRF token.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: Option<String>,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of cookie `name` set by this reply.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next()?.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// The value of the hidden field `name` of the page.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&marker).unwrap_or_else(|| panic!("no {name}: {}", self.body));
        self.body[at + marker.len()..].split('"').next().unwrap_or_default().to_string()
    }
}

impl App {
    async fn new() -> App {
        let env = Env::new(Db::Sqlite).await.expect("sqlite env");
        App::serve(env).await
    }

    async fn serve(env: Env) -> App {
        let app = WebApp::serve(&env).await;
        App { env, base: app.base.clone(), state: app.state.clone(), _app: app }
    }

    async fn user(&self, name: &str, roles: &[&str]) {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let actor = updraft::actions::Actor::cli("test");
        updraft::actions::users::create_user(&self.env.store, &actor, name, "", PASSWORD, &roles)
            .await
            .expect("create user");
    }

    /// A browser whose connections come from `addr` (a loopback address).
    fn browser(&self, addr: &str) -> Browser {
        let ip: IpAddr = addr.parse().expect("ip");
        let http = updraft::tls::http_client()
            .redirect(Policy::none())
            .local_address(ip)
            .build()
            .expect("client");
        Browser { http, base: self.base.clone(), session: None }
    }
}

impl Browser {
    async fn reply(resp: reqwest::Response) -> Reply {
        let (status, headers) = (resp.status(), resp.headers().clone());
        Reply { status, headers, body: resp.text().await.unwrap_or_default() }
    }

    async fn get(&self, path: &str) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(s) = &self.session {
            req = req.header("cookie", format!("updraft_session={s}"));
        }
        Self::reply(req.send().await.expect("get")).await
    }

    /// Opens the login page and posts it: the reply to the post.
    async fn login_with_next(&self, name: &str, password: &str, next: &str) -> Reply {
        let page = self.get("/login").await;
        let token = page.set_cookie("updraft_login_csrf").expect("login token cookie");
        assert_eq!(page.field("csrf"), token, "the form carries the cookie's token");
        let form = [("username", name), ("password", password), ("next", next), ("csrf", &token)];
        let req = self
            .http
            .post(format!("{}/login", self.base))
            .header("cookie", format!("updraft_login_csrf={token}"))
            .form(&form);
        Self::reply(req.send().await.expect("post login")).await
    }

    async fn login(&mut self, name: &str, password: &str) -> Reply {
        let r = self.login_with_next(name, password, "").await;
        self.session = r.set_cookie("updraft_session");
        r
    }

    /// Posts a page form with the session's CSRF token (read from `/account`).
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = self.get("/account").await.field("csrf");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let session = self.session.as_deref().expect("logged in");
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("updraft_session={session}"))
            .form(&form);
        Self::reply(req.send().await.expect("post")).await
    }
}

/// Values a hostile page would put in `next`.
const HOSTILE_NEXT: &[&str] = &[
    "//evil.example",
    "/\t/evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/\r\nSet-Cookie: x=y",
    "/x\n",
    "/x\u{7f}",
    "https://evil.example/",
    "/dags//evil.example",
];

#[tokio::test]
async fn a_page_asked_for_before_login_is_where_the_login_leads() {
    let app = App::new().await;
    app.user("op", &["operator"]).await;
    let b = app.browser("127.0.0.1");
    let asked = "/dags/d/runs?before=12";
    let r = b.get(asked).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let to_login = r.header("location").to_string();
    assert_eq!(to_login, format!("/login?next={}", updraft::web::pages::url_encode(asked)));
    let page = b.get(&to_login).await;
    assert_eq!(page.field("next"), asked, "the login form carries the page asked for");
    let r = b.login_with_next("op", PASSWORD, &page.field("next")).await;
    assert_eq!(r.header("location"), asked);
    // A form post, an API call and a path that is not plain ask for no return.
    let post = b.http.post(format!("{}/dags/d/pause", b.base)).form(&[("paused", "true")]);
    let r = post.send().await.expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/login"));
    let r = b.get("/api/v1/dags").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = b.get("/dags/d/runs?x=//evil.example").await;
    assert_eq!(r.header("location"), "/login");
}

#[tokio::test]
async fn no_return_path_leaves_the_site_or_breaks_the_reply() {
    let app = App::new().await;
    app.user("op", &["operator"]).await;
    app.env.write_dag("d.yaml", "dag_id: d\ntasks:\n  a: { type: empty }\n");
    let bag = updraft::dag::loader::load_folder(app.env.dags_dir());
    let now = chrono::Utc::now();
    app.env.store.sync_dags(bag.dags.values(), std::iter::empty(), now).await.expect("sync");
    let mut b = app.browser("127.0.0.1");
    for next in HOSTILE_NEXT {
        // The login page does not echo it back into its form...
        let page = b.get(&format!("/login?next={}", updraft::web::pages::url_encode(next))).await;
        assert_eq!(page.status, StatusCode::OK, "{next:?}");
        assert_eq!(page.field("next"), "/dags", "{next:?}");
        // ... and a login posting it lands on the default page, with its session cookie.
        let r = b.login_with_next("op", PASSWORD, next).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next:?}: {}", r.body);
        assert_eq!(r.header("location"), "/dags", "{next:?}");
        assert!(r.set_cookie("updraft_session").is_some(), "{next:?}");
    }
    let r = b.login_with_next("op", PASSWORD, "/dags/d/runs?x=%2F%2F").await;
    assert_eq!(r.header("location"), "/dags/d/runs?x=%2F%2F", "a plain path is kept");
    b.login("op", PASSWORD).await;
    for next in HOSTILE_NEXT {
        let r = b.post("/dags/d/pause", &[("paused", "true"), ("next", next)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "pause with {next:?}: {}", r.body);
        assert_eq!(r.header("location"), "/dags", "pause with {next:?}");
    }
    let r = b.post("/dags/d/pause", &[("paused", "false"), ("next", "/dags/d")]).await;
    assert_eq!(r.header("location"), "/dags/d");
}

#[tokio::test]
async fn guessing_from_one_address_does_not_lock_the_user_out_elsewhere() {
    let app = App::new().await;
    app.user("admin", &["admin"]).await;
    let attacker = app.browser("127.0.0.2");
    for i in 0..5 {
        let r = attacker.login_with_next("admin", &format!("guess-{i}"), "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "try {i}: {}", r.body);
        assert!(r.set_cookie("updraft_session").is_none());
    }
    // A long guessing campaign from that address (recorded directly: waiting out the
    // doubling waits would take minutes): the waits have grown to minutes.
    let from = Some("127.0.0.2".parse().expect("ip"));
    for _ in 0..10 {
        app.state.limiter.failed("admin", from, std::time::Instant::now());
    }
    // The guesser is refused without a password check, the right password included...
    for password in ["guess-5", PASSWORD] {
        let r = attacker.login_with_next("admin", password, "").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert!(r.header("retry-after").parse::<u64>().is_ok_and(|s| s >= 60), "{:?}", r.headers);
        assert!(r.set_cookie("updraft_session").is_none());
    }
    // ... and so is the same name with spaces around it, which the lookup would accept.
    for name in ["admin ", " admin", "admin\t"] {
        let r = attacker.login_with_next(name, PASSWORD, "").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{name:?} shares admin's limit");
    }
    // The real admin, from another address, logs in.
    let mut owner = app.browser("127.0.0.3");
    let r = owner.login("admin", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(owner.session.is_some());
    // Every failed password is in the audit log, with user and address.
    let audit = app.env.store.list_audit(None, None, 100).await.expect("audit");
    let failed: Vec<_> = audit.iter().filter(|a| a.event == "login_failed").collect();
    assert_eq!(failed.len(), 5, "the five wrong passwords; refused attempts checked none");
    assert!(failed.iter().all(|a| a.username == "admin"));
    assert!(failed.iter().all(|a| a.extra.as_deref() == Some("from 127.0.0.2")), "{failed:?}");
    assert!(
        audit.iter().any(|a| a.event == "login" && a.extra.as_deref() == Some("from 127.0.0.3"))
    );
    assert!(!format!("{audit:?}").contains("guess-"), "no password in the audit log");
    // The admin's audit page shows the failures.
    let page = owner.get("/admin/audit").await;
    assert!(page.body.contains("login_failed"), "{}", page.body);
}

#[tokio::test]
async fn the_login_form_needs_its_own_token() {
    let app = App::new().await;
    app.user("viewer", &["viewer"]).await;
    let b = app.browser("127.0.0.1");
    let post = |cookie: Option<&str>, csrf: &str| {
        let mut req = b.http.post(format!("{}/login", app.base)).form(&[
            ("username", "viewer"),
            ("password", PASSWORD),
            ("csrf", csrf),
        ]);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("updraft_login_csrf={c}"));
        }
        async move { Browser::reply(req.send().await.expect("post")).await }
    };
    let token = b.get("/login").await.set_cookie("updraft_login_csrf").expect("token");
    // Another site can post the form, but cannot read or set the cookie it must match.
    for (cookie, csrf) in [(None, ""), (None, token.as_str()), (Some(token.as_str()), "forged")] {
        let r = post(cookie, csrf).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "cookie {cookie:?}, field {csrf:?}");
        assert!(r.set_cookie("updraft_session").is_none());
        assert!(r.body.contains("did not come from this site"), "{}", r.body);
    }
    let r = post(Some(&token), &token).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.set_cookie("updraft_session").is_some());
    // The token cookie is HttpOnly, SameSite=Strict, only for /login.
    let page = b.get("/login").await;
    let set = page.header("set-cookie").to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/login"] {
        assert!(set.contains(part), "{set}");
    }
}

#[tokio::test]
async fn pages_cannot_be_framed_and_nothing_is_sniffed() {
    let app = App::new().await;
    app.user("viewer", &["viewer"]).await;
    let mut b = app.browser("127.0.0.1");
    let login = b.get("/login").await;
    b.login("viewer", PASSWORD).await;
    let dags = b.get("/dags").await;
    for page in [&login, &dags] {
        let csp = page.header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
    }
    for path in ["/api/v1/dags", "/health", "/metrics", "/static/app.js", "/nope", "/api/v1/nope"] {
        let r = b.get(path).await;
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
        assert!(r.header("content-security-policy").contains("frame-ancestors 'none'"), "{path}");
    }
}

#[tokio::test]
async fn health_shows_hosts_and_pids_only_to_logged_in_callers() {
    let app = App::new().await;
    app.user("viewer", &["viewer"]).await;
    let now = chrono::Utc::now();
    let process = updraft::store::ProcessRow {
        id: "box-7:4242:1".into(),
        kind: "scheduler".into(),
        hostname: "box-7".into(),
        pid: 4242,
        heartbeat_at: now,
        stopped_at: None,
        ..Default::default()
    };
    app.env.store.heartbeat(&process, now).await.expect("heartbeat");
    let mut b = app.browser("127.0.0.1");
    for path in ["/health", "/api/v1/health"] {
        let anonymous = b.get(path).await;
        assert_eq!(anonymous.status, StatusCode::OK);
        assert!(anonymous.body.contains("\"scheduler\""), "{}", anonymous.body);
        assert!(!anonymous.body.contains("box-7") && !anonymous.body.contains("4242"));
    }
    b.login("viewer", PASSWORD).await;
    for path in ["/health", "/api/v1/health"] {
        let known = b.get(path).await;
        let json: serde_json::Value = serde_json::from_str(&known.body).expect("json");
        let p = &json["processes"][0];
        assert_eq!((p["hostname"].as_str(), p["pid"].as_i64()), (Some("box-7"), Some(4242)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_an_author_creates_waits_for_an_operator() {
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    let engine = env.start().await;
    let app = App::serve(env).await;
    app.user("ed", &["author"]).await;
    app.user("op", &["operator"]).await;
    let mut author = app.browser("127.0.0.1");
    author.login("ed", PASSWORD).await;
    // Due at once, and it would trigger an existing DAG too.
    let yaml = "dag_id: sneaky\nschedule: \"@once\"\nstart_date: 2020-01-01\ntasks:\n  \
                go: { type: trigger_dag, trigger_dag_id: control }\n";
    let r = author
        .post("/editor/save", &[("file", "sneaky.yaml"), ("content", yaml), ("new", "1")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), "/editor");
    let list = author.get("/editor").await;
    assert!(list.body.contains("it starts paused until an operator unpauses it"), "{}", list.body);
    // A DAG file written beside it (not through the editor) runs: once it has, the
    // scheduler has loaded both files and made its scheduling decisions.
    app.env.write_dag(
        "control.yaml",
        "dag_id: control\nschedule: \"@once\"\nstart_date: 2020-01-01\ntasks:\n  a: { type: empty }\n",
    );
    let store = app.env.store.clone();
    app.env
        .wait_until("the control DAG ran", LIMIT, || async {
            store.count_runs(&updraft::store::RunFilter::dag("control")).await.unwrap_or(0) > 0
                && store.get_dag("sneaky").await.is_ok_and(|d| d.is_active)
        })
        .await;
    let dag = store.get_dag("sneaky").await.expect("sneaky");
    assert!(dag.is_paused, "the author's DAG starts paused");
    assert_eq!(
        store.count_runs(&updraft::store::RunFilter::dag("sneaky")).await.expect("count"),
        0,
        "and has not run"
    );
    let list = author.get("/api/v1/dags/sneaky").await;
    assert!(list.body.contains("\"is_paused\":true"), "{}", list.body);
    // The author cannot unpause it; an operator can, and then it runs.
    let r = author.post("/dags/sneaky/pause", &[("paused", "false")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut op = app.browser("127.0.0.1");
    op.login("op", PASSWORD).await;
    let r = op.post("/dags/sneaky/pause", &[("paused", "false"), ("next", "/dags/sneaky")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    app.env
        .wait_until("sneaky ran once unpaused", LIMIT, || async {
            store.count_runs(&updraft::store::RunFilter::dag("sneaky")).await.unwrap_or(0) > 0
        })
        .await;
    // Editing a DAG an operator unpaused keeps it unpaused.
    let edited = yaml.replace("go:", "go_on:");
    let r = author.post("/editor/save", &[("file", "sneaky.yaml"), ("content", &edited)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(!store.get_dag("sneaky").await.expect("dag").is_paused);
    // Audit: the first save paused the DAG at creation, the edit did not.
    let audit = store.list_audit(Some("sneaky"), None, 50).await.expect("audit");
    let paused_by_editor: Vec<_> =
        audit.iter().filter(|a| a.event == "paused_at_creation").map(|a| &a.username).collect();
    assert_eq!(paused_by_editor, ["ed"], "the first save only");
    engine.stop().await;
}
