//! The trigger form as an operator uses it: one typed input per param, text converted by the
//! param's type, refusals shown beside their fields (400, nothing created), and the free JSON
//! field unable to override a declared param.

use crate::support::common;

use std::path::Path;

use chrono::Utc;
use common::{Db, Env, both};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::web::{WebApp, logged_in};

const TYPED: &str = r#"
dag_id: typed
params:
  rows: 50
  who: world
  env: {type: string, enum: [dev, prod], default: dev, description: Where it runs}
  n: {type: integer, minimum: 1, maximum: 1000, default: 10}
  tags: {type: array}
tasks:
  a:
    type: empty
"#;

both!(the_form_converts_checks_and_shows_errors_beside_fields);

async fn the_form_converts_checks_and_shows_errors_beside_fields(env: Env) {
    let dag = updraft::dag::parse_dag_str(TYPED, Path::new("typed.yaml")).expect("valid DAG");
    let now = Utc::now();
    env.store.sync_dags([&dag], [], now).await.expect("sync");
    let olivia = logged_in(&env.store, "olivia", &["operator"]).await;
    let app = WebApp::serve(&env).await;
    let (http, url, cookie) = (&app.http, app.url("/dags/typed/trigger"), olivia.cookie());
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let (url, cookie, csrf) = (&url, &cookie, olivia.csrf.as_str());
        async move {
            let mut form = vec![("csrf", csrf)];
            form.extend(fields);
            let r = http.post(url).header("cookie", cookie).form(&form);
            let r = r.send().await.expect("POST");
            (r.status(), r.text().await.expect("body"))
        }
    };

    let page = http.get(&url).header("cookie", &cookie).send().await.expect("GET");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    for part in [
        r#"<select id="param-env" name="param.env">"#,
        r#"<option value="dev" selected>"#,
        r#"type="number" id="param-n" name="param.n" value="10" step="1" min="1" max="1000""#,
        r#"id="param-rows" name="param.rows" value="50""#,
        r#"<textarea id="param-tags" name="param.tags""#,
        "Where it runs",
        "(required)",
    ] {
        assert!(html.contains(part), "the form lacks {part}:\n{html}");
    }

    // Each refusal: 400, the reason beside its field, nothing created.
    type Fields = Vec<(&'static str, &'static str)>;
    let cases: Vec<(Fields, &str, &str)> = vec![
        (
            vec![("param.rows", "1 1 /dev/null; id > FILE"), ("param.tags", "[]")],
            "rows",
            "expected an integer",
        ),
        (vec![("param.n", "0"), ("param.tags", "[]")], "n", "from 1 to 1000"),
        (vec![("param.env", "staging"), ("param.tags", "[]")], "env", "one of `dev`, `prod`"),
        (vec![("param.tags", "")], "tags", "required"),
        (vec![("param.tags", "[]"), ("conf", r#"{"rows": "1; id"}"#)], "rows", "has its own field"),
    ];
    for (fields, param, words) in cases {
        let (status, body) = post(fields).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}: {body}");
        let marker = format!("id=\"param-error-{param}\">");
        let at = body.find(&marker).unwrap_or_else(|| panic!("no error beside {param}: {body}"));
        assert!(body[at..].contains(words), "{param}: {}", &body[at..]);
    }
    let (status, body) = post(vec![("param.tags", "[]"), ("run_id", "..")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("run id `..` cannot be"), "{body}");
    assert_eq!(
        env.store.count_runs(&updraft::store::RunFilter::dag("typed")).await.expect("count"),
        0
    );

    // Text converted by type; undeclared keys from the JSON field kept.
    let fields = vec![
        ("param.rows", " 7 "),
        ("param.who", "you"),
        ("param.n", "12"),
        ("param.tags", "[\"a\"]"),
        ("run_id", "form-1"),
        ("conf", r#"{"extra": true}"#),
    ];
    let (status, _) = post(fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let run = env.store.find_run("typed", "form-1").await.expect("query").expect("created");
    assert_eq!(
        serde_json::Value::Object(run.conf),
        json!({"rows": 7, "who": "you", "n": 12, "tags": ["a"], "extra": true})
    );
}
