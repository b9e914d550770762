//! The editor, the admin pages and the account page over real HTTP: a served router, users
//! created in the store, sessions from `/login`, CSRF tokens read from the pages.

use crate::support::common;

use std::path::Path;

use common::{Db, Env};
use reqwest::StatusCode;

use crate::support::web::WebApp;

const GOOD: &str = "dag_id: good\ntasks:\n  a:\n    type: bash\n    command: echo hi\n";
const BROKEN: &str = "dag_id: good\ntasks:\n  a:\n    type: bash\n    comand: echo hi\n";

struct App {
    env: Env,
    base: String,
    http: reqwest::Client,
    /// The server, stopped when this is dropped.
    _app: WebApp,
}

/// A logged-in browser: its session cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

struct Reply {
    status: StatusCode,
    body: String,
    location: String,
}

impl App {
    async fn new() -> App {
        let env = Env::new(Db::Sqlite).await.expect("sqlite env");
        let app = WebApp::serve(&env).await;
        App { env, base: app.base.clone(), http: app.http.clone(), _app: app }
    }

    async fn user(&self, name: &str, password: &str, roles: &[&str]) {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let actor = updraft::actions::Actor::cli("test");
        updraft::actions::users::create_user(&self.env.store, &actor, name, "", password, &roles)
            .await
            .expect("create user");
    }

    async fn try_login(&self, name: &str, password: &str) -> Option<Session> {
        // The login form's token, from its page and cookie (the post must carry both).
        let page = self.http.get(format!("{}/login", self.base)).send().await.expect("page");
        let token_cookie =
            page.headers().get("set-cookie")?.to_str().ok()?.split(';').next()?.to_string();
        let token = token_cookie.split_once('=')?.1.to_string();
        let resp = self
            .http
            .post(format!("{}/login", self.base))
            .header("cookie", &token_cookie)
            .form(&[("username", name), ("password", password), ("csrf", &token)])
            .send()
            .await
            .expect("login");
        let set = resp.headers().get("set-cookie")?.to_str().ok()?.to_string();
        let cookie = set.split(';').next()?.to_string();
        let mut s = Session { cookie, csrf: String::new() };
        let page = self.get(Some(&s), "/account").await.body;
        let at = page.find("name=\"csrf\" value=\"")? + 19;
        s.csrf = page[at..].split('"').next()?.to_string();
        Some(s)
    }

    async fn login(&self, name: &str, password: &str) -> Session {
        self.try_login(name, password).await.unwrap_or_else(|| panic!("{name} cannot log in"))
    }

    async fn reply(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let location =
            resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        Reply { status, location, body: resp.text().await.unwrap_or_default() }
    }

    async fn get(&self, s: Option<&Session>, path: &str) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(s) = s {
            req = req.header("cookie", &s.cookie);
        }
        Self::reply(req.send().await.expect("get")).await
    }

    async fn post(&self, s: &Session, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut form = vec![("csrf", s.csrf.as_str())];
        form.extend_from_slice(fields);
        let req = self.http.post(format!("{}{path}", self.base)).header("cookie", &s.cookie);
        Self::reply(req.form(&form).send().await.expect("post")).await
    }

    fn dag_file(&self, name: &str) -> std::path::PathBuf {
        self.env.dags_dir().join(name)
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn editor_validates_before_writing_and_writes_atomically() {
    let app = App::new().await;
    app.user("ed", "password1", &["author"]).await;
    let s = app.login("ed", "password1").await;
    std::fs::write(app.dag_file("good.yaml"), GOOD).expect("seed");

    let list = app.get(Some(&s), "/editor").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("good.yaml") && list.body.contains(">good</a>"), "{}", list.body);
    let edit = app.get(Some(&s), "/editor/edit?file=good.yaml").await;
    assert!(edit.body.contains("textarea class=\"editor\"") && edit.body.contains("echo hi"));

    // Validation: the CLI's error with line and column, as JSON.
    let v = app.post(&s, "/editor/validate", &[("file", "good.yaml"), ("content", BROKEN)]).await;
    let json: serde_json::Value = serde_json::from_str(&v.body).expect("json");
    assert_eq!(json["valid"], false, "{json}");
    let e = &json["errors"][0];
    assert_eq!((e["line"].as_u64(), e["column"].as_u64()), (Some(5), Some(5)), "{json}");
    assert!(e["message"].as_str().unwrap_or("").contains("comand"), "{json}");

    // A broken save: 400, the errors on the page, the file byte-identical.
    let bad = app.post(&s, "/editor/save", &[("file", "good.yaml"), ("content", BROKEN)]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("data-line=\"5\"") && bad.body.contains("comand"), "{}", bad.body);
    assert_eq!(std::fs::read(app.dag_file("good.yaml")).expect("read"), GOOD.as_bytes());

    // A dag_id another file defines is refused, and nothing is written.
    let dup = app
        .post(&s, "/editor/save", &[("file", "copy.yaml"), ("content", GOOD), ("new", "1")])
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.body.contains("already defined in `good.yaml`"), "{}", dup.body);
    assert!(!app.dag_file("copy.yaml").exists());

    // A valid save (CRLF from the browser) writes the file, leaves no temporary file.
    let fixed = GOOD.replace("echo hi", "echo fixed").replace('\n', "\r\n");
    let ok = app.post(&s, "/editor/save", &[("file", "good.yaml"), ("content", &fixed)]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let written = std::fs::read_to_string(app.dag_file("good.yaml")).expect("read");
    assert_eq!(written, GOOD.replace("echo hi", "echo fixed"));
    assert_eq!(names_in(&app.env.dags_dir()), vec!["good.yaml"]);
    // The saved text is a version of the DAG, saved by the author who saved it.
    let versions = app.env.store.dag_versions("good").await.expect("versions");
    let saved = versions.first().expect("a version");
    assert_eq!(saved.version, updraft::dag::version_of(&written), "the text on disk");
    assert_eq!(saved.saved_by.as_deref(), Some("ed"), "the author: {versions:?}");

    // New file, then delete; both audited.
    let other = GOOD.replace("dag_id: good", "dag_id: other");
    let new = app
        .post(&s, "/editor/save", &[("file", "other.yml"), ("content", &other), ("new", "1")])
        .await;
    assert_eq!(new.status, StatusCode::SEE_OTHER, "{}", new.body);
    let again = app
        .post(&s, "/editor/save", &[("file", "other.yml"), ("content", &other), ("new", "1")])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let del = app.post(&s, "/editor/delete", &[("file", "other.yml")]).await;
    assert_eq!(del.status, StatusCode::SEE_OTHER);
    assert!(!app.dag_file("other.yml").exists());
    let audit = app.env.store.list_audit(None, None, 10).await.expect("audit");
    let events: Vec<_> = audit.iter().map(|a| (a.event.as_str(), a.extra.as_deref())).collect();
    assert!(events.contains(&("dag_file_saved", Some("good.yaml"))), "{events:?}");
    assert!(events.contains(&("dag_file_deleted", Some("other.yml"))), "{events:?}");
}

#[tokio::test]
async fn editor_refuses_names_outside_the_folder() {
    let app = App::new().await;
    app.user("ed", "password1", &["author"]).await;
    let s = app.login("ed", "password1").await;
    let outside = app.env.path("outside.yaml");
    std::fs::write(&outside, "keep me").expect("outside file");
    std::os::unix::fs::symlink(&outside, app.dag_file("link.yaml")).expect("symlink");
    let before = names_in(app.env.dir.path());

    for name in ["../x.yaml", "sub/x.yaml", "x.txt", "link.yaml", "../outside.yaml", ".x.yaml"] {
        for (path, extra) in
            [("/editor/save", ("content", GOOD)), ("/editor/validate", ("content", GOOD))]
        {
            let r = app.post(&s, path, &[("file", name), extra]).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {name}: {}", r.body);
            assert!(r.body.contains("plain file name"), "{path} {name}: {}", r.body);
        }
        let r = app.post(&s, "/editor/delete", &[("file", name)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "delete {name}");
        let url = format!("/editor/edit?file={}", updraft::web::pages::url_encode(name));
        assert_eq!(app.get(Some(&s), &url).await.status, StatusCode::BAD_REQUEST, "{name}");
    }
    assert_eq!(std::fs::read_to_string(&outside).expect("outside"), "keep me");
    assert!(std::fs::symlink_metadata(app.dag_file("link.yaml")).expect("link").is_symlink());
    assert_eq!(names_in(app.env.dir.path()), before);
    assert_eq!(names_in(&app.env.dags_dir()), vec!["link.yaml"]);
}

#[tokio::test]
async fn editor_needs_the_author_role() {
    let app = App::new().await;
    app.user("op", "password1", &["operator", "viewer"]).await;
    let s = app.login("op", "password1").await;
    std::fs::write(app.dag_file("good.yaml"), GOOD).expect("seed");
    for path in ["/editor", "/editor/new", "/editor/edit?file=good.yaml"] {
        let r = app.get(Some(&s), path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "GET {path}");
        assert!(r.body.contains("needs the author role"), "{}", r.body);
    }
    for path in ["/editor/validate", "/editor/save", "/editor/delete"] {
        let r = app.post(&s, path, &[("file", "good.yaml"), ("content", "dag_id: x")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path}");
    }
    assert_eq!(std::fs::read_to_string(app.dag_file("good.yaml")).expect("read"), GOOD);
    // Without a login, pages send to /login.
    let r = app.get(None, "/editor").await;
    assert!(r.status.is_redirection() && r.location.starts_with("/login"));
}

#[tokio::test]
async fn admin_creates_a_user_who_can_then_log_in() {
    let app = App::new().await;
    app.user("root", "password0", &["admin"]).await;
    let s = app.login("root", "password0").await;
    let form = [
        ("username", "carol"),
        ("password", "carolpass"),
        ("role", "viewer"),
        ("role", "operator"),
    ];
    let r = app.post(&s, "/admin/users", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let carol = app.login("carol", "carolpass").await;
    let dags = app.get(Some(&carol), "/dags").await;
    assert_eq!(dags.status, StatusCode::OK);
    let user = app.env.store.find_user("carol").await.expect("find").expect("carol");
    assert_eq!(user.roles, vec!["operator", "viewer"]);
    assert!(!user.password_hash.contains("carolpass"));
    // Taken name, unknown role, short password: refused with the reason.
    for (form, why) in [
        (&form[..], "is taken"),
        (&[("username", "dan"), ("password", "danpass12"), ("role", "root")][..], "unknown role"),
        (&[("username", "dan"), ("password", "short"), ("role", "viewer")][..], "8 characters"),
    ] {
        let r = app.post(&s, "/admin/users", form).await;
        assert!(r.status.is_client_error() && r.body.contains(why), "{why}: {}", r.body);
    }
    let audit = app.env.store.list_audit(None, None, 20).await.expect("audit");
    let created = audit.iter().find(|a| a.event == "user_created").expect("audited");
    assert_eq!(created.username, "root");
    assert!(audit.iter().all(|a| !a.extra.as_deref().unwrap_or("").contains("carolpass")));
}

#[tokio::test]
async fn connections_are_stored_encrypted_and_listed_masked() {
    let app = App::new().await;
    app.user("root", "password0", &["admin"]).await;
    let s = app.login("root", "password0").await;
    let uri = "postgres://etl:Sup3rSecretPw@db.internal:5432/warehouse";
    let form = [("conn_id", "warehouse"), ("uri", uri), ("description", "main DB")];
    let r = app.post(&s, "/admin/connections", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // The raw table holds no clear password.
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut db =
        sqlx::AnyConnection::connect(&app.env.settings.database_url).await.expect("raw db");
    let rows = sqlx::query("SELECT conn_id, conn_type, description, uri_encrypted FROM connection")
        .fetch_all(&mut db)
        .await
        .expect("raw rows");
    assert_eq!(rows.len(), 1);
    for col in ["conn_id", "conn_type", "description", "uri_encrypted"] {
        let v: String = rows[0].try_get(col).expect("column");
        assert!(!v.contains("Sup3rSecretPw"), "{col} holds the password: {v}");
    }
    let enc: String = rows[0].try_get("uri_encrypted").expect("column");
    assert!(enc.starts_with("v1:"), "{enc}");

    let list = app.get(Some(&s), "/admin/connections").await;
    assert!(list.body.contains("postgres://etl:***@db.internal:5432/warehouse"), "{}", list.body);
    let edit = app.get(Some(&s), "/admin/connections?edit=warehouse").await;
    for page in [&list.body, &edit.body] {
        assert!(!page.contains("Sup3rSecretPw"));
    }
    // Replacing with an empty URI keeps the stored one and changes the description.
    let form = [("conn_id", "warehouse"), ("uri", ""), ("description", "renamed")];
    assert_eq!(app.post(&s, "/admin/connections", &form).await.status, StatusCode::SEE_OTHER);
    let secrets = updraft::secrets::SecretBox::for_settings(&app.env.settings).expect("key");
    let stored = app.env.store.connection_uri("warehouse").await.expect("uri").expect("some");
    assert_eq!(secrets.decrypt(&stored).expect("decrypt"), uri);
    // A bad URI is refused without being echoed.
    let form = [("conn_id", "bad"), ("uri", "not a uri Sup3rSecretPw"), ("description", "")];
    let r = app.post(&s, "/admin/connections", &form).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("invalid URI") && !r.body.contains("Sup3rSecretPw"), "{}", r.body);
}

#[tokio::test]
async fn connections_from_fields_keep_their_password_and_are_tested() {
    let app = App::new().await;
    app.user("root", "password0", &["admin"]).await;
    let s = app.login("root", "password0").await;
    let port = app.base.rsplit(':').next().expect("port").to_string();
    // Fields make the URI, every part encoded; extra becomes its query.
    let form = [
        ("conn_id", "self"),
        ("conn_type", "http"),
        ("host", "127.0.0.1"),
        ("port", port.as_str()),
        ("login", "etl user"),
        ("password", "p@ss/w rd"),
        ("schema", "health"),
        ("extra", r#"{"timeout": 5, "mode": "a b"}"#),
        ("uri", ""),
        ("description", "the server itself"),
    ];
    let r = app.post(&s, "/admin/connections", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let secrets = updraft::secrets::SecretBox::for_settings(&app.env.settings).expect("key");
    let uri = |id: &'static str| {
        let (store, secrets) = (&app.env.store, &secrets);
        async move {
            let stored = store.connection_uri(id).await.expect("uri").expect("some");
            secrets.decrypt(&stored).expect("decrypt")
        }
    };
    let parsed = updraft::operators::connection::Connection::parse("self", &uri("self").await)
        .expect("a valid URI");
    assert_eq!(parsed.login.as_deref(), Some("etl user"));
    assert_eq!(parsed.password.as_deref(), Some("p@ss/w rd"));
    assert_eq!(
        (parsed.host.as_deref(), parsed.schema.as_deref()),
        (Some("127.0.0.1"), Some("health"))
    );
    assert_eq!(parsed.extra.get("timeout").map(String::as_str), Some("5"));
    assert_eq!(parsed.extra.get("mode").map(String::as_str), Some("a b"));
    // The edit form shows the fields, never the password; saved without one, it is kept.
    let edit = app.get(Some(&s), "/admin/connections?edit=self").await;
    assert!(edit.body.contains("name=\"login\" value=\"etl user\""), "{}", edit.body);
    assert!(edit.body.contains("name=\"schema\" value=\"health\""));
    assert!(!edit.body.contains("p@ss"), "no password in the page");
    let mut again = form;
    again[5] = ("password", "");
    again[2] = ("host", "localhost");
    assert_eq!(app.post(&s, "/admin/connections", &again).await.status, StatusCode::SEE_OTHER);
    let parsed = updraft::operators::connection::Connection::parse("self", &uri("self").await)
        .expect("valid");
    assert_eq!(parsed.host.as_deref(), Some("localhost"));
    assert_eq!(parsed.password.as_deref(), Some("p@ss/w rd"), "the stored password kept");
    // Each field's mistake is named.
    for (field, value, words) in [
        ("port", "70000", "the port must be a number from 1 to 65535"),
        ("extra", "[1, 2]", "extra must be a JSON object"),
        ("conn_type", "9x", "the type must be a scheme"),
    ] {
        let mut bad = form;
        let at = bad.iter().position(|(k, _)| *k == field).expect("field");
        bad[at] = (field, value);
        bad[0] = ("conn_id", "bad");
        let r = app.post(&s, "/admin/connections", &bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(r.body.contains(words) && !r.body.contains("p@ss"), "{field}: {}", r.body);
    }
    assert!(app.env.store.connection_uri("bad").await.expect("read").is_none());

    // Test: the server answers itself; a closed port is named, and both are audited.
    let r = app.post(&s, "/admin/connections/test", &[("conn_id", "self")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = app.get(Some(&s), &r.location).await;
    assert!(page.body.contains("Connection self works: HTTP 200"), "{}", page.body);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port().to_string();
    drop(closed);
    let form = [
        ("conn_id", "gone"),
        ("conn_type", "redis"),
        ("host", "127.0.0.1"),
        ("port", closed_port.as_str()),
    ];
    assert_eq!(app.post(&s, "/admin/connections", &form).await.status, StatusCode::SEE_OTHER);
    let r = app.post(&s, "/admin/connections/test", &[("conn_id", "gone")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains(&format!("cannot reach 127.0.0.1:{closed_port}")), "{}", r.body);
    let r = app.post(&s, "/admin/connections/test", &[("conn_id", "nope")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let audit = app.env.store.list_audit(None, None, 50).await.expect("audit");
    let tested: Vec<&str> = audit
        .iter()
        .filter(|a| a.event == "connection_tested")
        .filter_map(|a| a.extra.as_deref())
        .collect();
    assert!(tested.contains(&"self: ok") && tested.contains(&"gone: failed"), "{tested:?}");
}

/// An admin sends a test notification through a webhook connection: the receiver gets a
/// signed `test` event and the page shows its answer; a receiver answering 500 is shown
/// failed with that answer; both are audited; a connection that is no notifier offers none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sends_a_test_notification_and_sees_the_answer() {
    let app = App::new().await;
    app.user("root", "password0", &["admin"]).await;
    let s = app.login("root", "password0").await;
    let receiver = crate::support::receivers::Receiver::default();
    let base = receiver.start().await;
    for (id, uri) in [
        ("hook", format!("{base}/ok/test?secret=t0p+s3cret")),
        ("broken_hook", format!("{base}/fail/test")),
        ("html_hook", format!("{base}/html/test")),
        ("warehouse", "postgres://etl:pw@127.0.0.1:1/db".to_string()),
    ] {
        let r = app.post(&s, "/admin/connections", &[("conn_id", id), ("uri", &uri)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let list = app.get(Some(&s), "/admin/connections").await;
    let row = |id: &str| {
        let at = format!("data-conn-id=\"{id}\"");
        list.body.split(&at).nth(1).and_then(|r| r.split("</tr>").next()).unwrap_or("").to_string()
    };
    assert!(row("hook").contains("Send test notification"), "{}", row("hook"));
    assert!(!row("warehouse").contains("Send test notification"), "no notifier, no test send");

    let r = app.post(&s, "/admin/connections/test-notification", &[("conn_id", "hook")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = app.get(Some(&s), &r.location).await;
    let flash = page.body.split("Test notification sent").nth(1).unwrap_or("");
    assert!(flash.starts_with(" through hook (answer: 200"), "{}", page.body);
    let got = receiver.at("/ok/test");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body["event"], "test");
    assert!(got[0].body["title"].as_str().unwrap_or("").contains("sent by root"), "{got:?}");
    assert!(got[0].signed_with("t0p+s3cret"), "signed with the connection's secret: {got:?}");

    let form = [("conn_id", "broken_hook")];
    let r = app.post(&s, "/admin/connections/test-notification", &form).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Test notification through broken_hook failed"), "{}", r.body);
    assert!(r.body.contains("receiver broke"), "the receiver's answer is shown: {}", r.body);
    // A hostile answer is shown as text, never as markup.
    let form = [("conn_id", "html_hook")];
    let r = app.post(&s, "/admin/connections/test-notification", &form).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let hostile = crate::support::receivers::HOSTILE_ANSWER;
    assert!(!r.body.contains(hostile), "the answer reached the page as markup: {}", r.body);
    assert!(r.body.contains("&#60;img src=x onerror=alert(1)&#62;"), "{}", r.body);
    let r = app.post(&s, "/admin/connections/test-notification", &[("conn_id", "nope")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let audit = app.env.store.list_audit(None, None, 50).await.expect("audit");
    let tested: Vec<&str> = audit
        .iter()
        .filter(|a| a.event == "notifier_tested")
        .filter_map(|a| a.extra.as_deref())
        .collect();
    assert_eq!(tested.len(), 3, "{tested:?}");
    assert!(tested.contains(&"hook: sent"), "{tested:?}");
    assert!(tested.iter().any(|t| t.starts_with("broken_hook: failed")), "{tested:?}");
    assert!(!tested.iter().any(|t| t.contains("s3cret")), "no secret in the audit log");
}

#[tokio::test]
async fn the_last_admin_stays() {
    let app = App::new().await;
    app.user("root", "password0", &["admin"]).await;
    app.user("vic", "password1", &["viewer"]).await;
    let s = app.login("root", "password0").await;
    let root = app.env.store.find_user("root").await.expect("find").expect("root");
    let vic = app.env.store.find_user("vic").await.expect("find").expect("vic");
    let id = root.id;
    for (path, form) in [
        (format!("/admin/users/{id}/delete"), vec![]),
        (format!("/admin/users/{id}/roles"), vec![("role", "viewer")]),
        (format!("/admin/users/{id}/active"), vec![("active", "false")]),
    ] {
        let r = app.post(&s, &path, &form).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {}", r.body);
    }
    let root = app.env.store.find_user("root").await.expect("find").expect("root");
    assert!(root.active && root.roles == vec!["admin"]);
    // With a second admin, the first may step down; then the second is the last one.
    let r = app.post(&s, &format!("/admin/users/{}/roles", vic.id), &[("role", "admin")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app.post(&s, &format!("/admin/users/{id}/roles"), &[("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let v = app.login("vic", "password1").await;
    let r = app.post(&v, &format!("/admin/users/{}/roles", vic.id), &[("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("last active admin"), "{}", r.body);
    // An admin may delete someone else.
    let r = app.post(&v, &format!("/admin/users/{id}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app.env.store.find_user("root").await.expect("find").is_none());
}

#[tokio::test]
async fn admin_pages_need_the_admin_role() {
    let app = App::new().await;
    app.user("root", "password0", &["admin"]).await;
    app.user("busy", "password1", &["viewer", "operator", "author"]).await;
    let s = app.login("busy", "password1").await;
    let id = app.env.store.find_user("root").await.expect("find").expect("root").id;
    for path in
        ["/admin/users", "/admin/connections", "/admin/variables", "/admin/pools", "/admin/audit"]
    {
        let r = app.get(Some(&s), path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "GET {path}");
        assert!(r.body.contains("needs the admin role"), "{}", r.body);
    }
    let fields = [
        ("username", "x1"),
        ("password", "password9"),
        ("role", "admin"),
        ("conn_id", "c"),
        ("uri", "http://h"),
        ("key", "k"),
        ("value", "v"),
        ("name", "p"),
        ("slots", "3"),
        ("active", "false"),
    ];
    for path in [
        "/admin/users".to_string(),
        format!("/admin/users/{id}/roles"),
        format!("/admin/users/{id}/password"),
        format!("/admin/users/{id}/active"),
        format!("/admin/users/{id}/delete"),
        "/admin/connections".into(),
        "/admin/connections/delete".into(),
        "/admin/connections/test".into(),
        "/admin/variables".into(),
        "/admin/variables/delete".into(),
        "/admin/pools".into(),
        "/admin/pools/delete".into(),
    ] {
        let r = app.post(&s, &path, &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path}: {}", r.body);
    }
    assert_eq!(app.env.store.list_users().await.expect("users").len(), 2);
    assert!(app.env.store.list_connections().await.expect("conns").is_empty());
}

#[tokio::test]
async fn variables_pools_and_audit() {
    let app = App::new().await;
    app.user("root", "password0", &["admin"]).await;
    let s = app.login("root", "password0").await;
    let r =
        app.post(&s, "/admin/variables", &[("key", "db_password"), ("value", "hunter22")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app.post(&s, "/admin/variables", &[("key", "batch"), ("value", "10")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = app.get(Some(&s), "/admin/variables").await.body;
    assert!(page.contains("batch") && page.contains(">10<") && !page.contains("hunter22"));
    let r = app.post(&s, "/admin/pools", &[("name", "db"), ("slots", "2")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app.post(&s, "/admin/pools", &[("name", "db"), ("slots", "many")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.post(&s, "/admin/pools/delete", &[("name", "default_pool")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let pools = app.env.store.list_pools().await.expect("pools");
    assert!(pools.iter().any(|p| p.name == "db" && p.slots == 2));
    let audit = app.get(Some(&s), "/admin/audit").await.body;
    assert!(audit.contains("variable_set") && audit.contains("pool_set"));
    assert!(!audit.contains("hunter22"));
}

#[tokio::test]
async fn api_tokens_authenticate_until_revoked() {
    let app = App::new().await;
    app.user("vic", "password1", &["viewer"]).await;
    let s = app.login("vic", "password1").await;
    let r = app.post(&s, "/account/tokens", &[("name", "ci"), ("expires_days", "30")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let at = r.body.find("updraft_").expect("token shown");
    let token: String = r.body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "_-".contains(*c))
        .collect();
    assert!(token.len() > 40, "{token}");
    let bearer = |t: &str| {
        app.http.get(format!("{}/dags", app.base)).header("authorization", format!("Bearer {t}"))
    };
    assert_eq!(bearer(&token).send().await.expect("get").status(), StatusCode::OK);
    // Shown once: the account page lists the token's name, never its secret.
    let page = app.get(Some(&s), "/account").await.body;
    assert!(page.contains(">ci<") && !page.contains(&token));
    let vic = app.env.store.find_user("vic").await.expect("find").expect("vic");
    let id = app.env.store.list_tokens(vic.id).await.expect("tokens")[0].id.to_string();
    let r = app.post(&s, "/account/tokens/revoke", &[("token_id", &id)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let after = bearer(&token).send().await.expect("get");
    assert!(after.status().is_redirection() || after.status() == StatusCode::UNAUTHORIZED);
    // Password change: the current one is checked, then every session ends.
    let r = app
        .post(
            &s,
            "/account/password",
            &[("current", "nope"), ("password", "newpass12"), ("confirm", "newpass12")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let form = [("current", "password1"), ("password", "newpass12"), ("confirm", "newpass12")];
    assert!(app.post(&s, "/account/password", &form).await.status.is_redirection());
    assert!(app.get(Some(&s), "/account").await.status.is_redirection());
    assert!(app.try_login("vic", "password1").await.is_none());
    app.login("vic", "newpass12").await;
}
