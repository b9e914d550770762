//! Table-driven tests of typed params: declarations read from YAML (and their load errors at
//! line:col), the conf check, and the trigger form's conversion and merge rules.

use std::path::Path;

use serde_json::{Value, json};

use super::{ParamSpecs, check_conf, form_conf};
use crate::dag::{Dag, LoadError, parse_dag_str};

/// The params of the issue's example, on a manual DAG.
const PARAMS: &str = r#"
  rows: 50
  who: world
  ratio: 0.5
  flag: true
  list: [a, b]
  nested: {x: 1}
  anything: null
  env: {type: string, enum: [dev, prod], default: dev, description: Where to run}
  day: {type: string, pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", default: "2026-01-01"}
  n: {type: integer, minimum: 1, maximum: 1000, default: 10}
  tags: {type: array}
  o: {type: object, default: {}}
  f: {type: number, exclusiveMinimum: 0, default: 1.5}
  b: {type: boolean, default: false}
  maybe: {type: [string, "null"]}
  short: {type: string, minLength: 2, maxLength: 4, default: abc}
  when: {type: string, format: date, default: "2026-01-31"}
"#;

fn dag_with(params: &str, schedule: &str) -> Result<Dag, Vec<LoadError>> {
    let src = format!(
        "dag_id: d\nschedule: {schedule}\nstart_date: 2026-01-01\nparams:{params}tasks:\n  a:\n    type: empty\n"
    );
    parse_dag_str(&src, Path::new("d.yaml"))
}

fn specs() -> ParamSpecs {
    dag_with(PARAMS, "null").expect("valid params").param_specs
}

fn conf(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

#[test]
fn plain_defaults_infer_types_and_declarations_resolve_defaults() {
    let dag = dag_with(PARAMS, "null").expect("valid");
    let d = &dag.params;
    assert_eq!(d["rows"], json!(50));
    assert_eq!(d["who"], json!("world"));
    assert_eq!(d["env"], json!("dev"));
    assert_eq!(d["n"], json!(10));
    assert_eq!(d["nested"], json!({"x": 1}));
    // Required: no default, not nullable. Nullable without a default: null.
    assert!(!d.contains_key("tags"));
    assert_eq!(d["maybe"], Value::Null);
    let s = &dag.param_specs;
    assert_eq!(s["rows"].types, [super::ParamType::Integer]);
    assert_eq!(s["ratio"].types, [super::ParamType::Number]);
    assert_eq!(s["nested"].types, [super::ParamType::Object]);
    assert!(s["anything"].types.is_empty());
    assert_eq!(s["env"].description.as_deref(), Some("Where to run"));
    assert_eq!(
        s["n"].schema(),
        json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 10})
    );
}

#[test]
fn conf_is_checked_against_every_declaration() {
    let specs = specs();
    let ok = [
        json!({"tags": []}),
        json!({"tags": ["x"], "rows": 7, "who": "you", "env": "prod", "n": 1000}),
        json!({"tags": [], "n": 5.0, "f": 2, "ratio": 3, "maybe": null, "maybe2": 1}),
        json!({"tags": [], "day": "2030-12-31", "b": true, "o": {"k": [1]}, "short": "ab"}),
        json!({"tags": [], "anything": {"x": 1}, "unknown_key": "kept", "when": "2026-02-28"}),
    ];
    for c in ok {
        let given = conf(c.clone());
        assert_eq!(check_conf(&specs, given.clone()), Ok(given), "{c}");
    }
    // (conf, param named, words in the message)
    let bad = [
        (json!({}), "tags", "required (no default): give a list"),
        (json!({"tags": [], "rows": "50"}), "rows", "expected an integer, got the text `50`"),
        (json!({"tags": [], "rows": "50"}), "rows", "send it as a JSON value"),
        (json!({"tags": [], "rows": 1.5}), "rows", "got the number 1.5"),
        (json!({"tags": [], "who": 5}), "who", "expected a string, got the number 5"),
        (json!({"tags": [], "env": "staging"}), "env", "expected one of `dev`, `prod`"),
        (json!({"tags": [], "day": "01/02/2026"}), "day", "matching `^[0-9]{4}"),
        (json!({"tags": [], "n": 0}), "n", "expected an integer from 1 to 1000, got the number 0"),
        (json!({"tags": [], "n": 1001}), "n", "from 1 to 1000"),
        (json!({"tags": "a,b"}), "tags", "expected a list, got the text `a,b`"),
        (json!({"tags": [], "o": []}), "o", "expected an object, got a list"),
        (json!({"tags": [], "f": 0}), "f", "above 0"),
        (json!({"tags": [], "b": "true"}), "b", "expected true or false"),
        (json!({"tags": [], "maybe": 3}), "maybe", "expected a string or null"),
        (json!({"tags": [], "short": "a"}), "short", "of 2 to 4 characters"),
        (json!({"tags": [], "when": "2026-02-30"}), "when", "in date format"),
        (json!({"tags": [], "list": {}}), "list", "expected a list"),
        (json!({"tags": [], "who": "x\ny", "rows": null}), "rows", "got null"),
    ];
    for (c, param, words) in bad {
        let errs = check_conf(&specs, conf(c.clone())).expect_err(&c.to_string());
        let msg =
            errs.about(param).unwrap_or_else(|| panic!("{c}: no error about {param}: {errs}"));
        assert!(msg.contains(words), "{c}: `{msg}` lacks `{words}`");
        assert!(errs.to_string().contains(&format!("param `{param}`")), "{errs}");
    }
    // Every problem at once, in declaration order.
    let errs = check_conf(&specs, conf(json!({"rows": "x", "n": 0}))).expect_err("three");
    let names: Vec<&str> = errs.0.iter().map(|e| e.param.as_str()).collect();
    assert_eq!(names, ["rows", "n", "tags"]);
}

#[test]
fn form_text_is_converted_by_type_and_json_cannot_override_a_field() {
    let specs = specs();
    let typed = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let got = form_conf(
        &specs,
        &typed(&[
            ("rows", " 50 "),
            ("who", " spaced "),
            ("n", "7"),
            ("f", "2.5"),
            ("b", "true"),
            ("tags", "[\"a\"]"),
            ("o", "{\"k\": 1}"),
            ("maybe", ""),
            ("anything", "[1]"),
            ("env", "prod"),
        ]),
        conf(json!({"extra": 1})),
    )
    .expect("valid form");
    assert_eq!(
        Value::Object(got),
        json!({"rows": 50, "who": " spaced ", "n": 7, "f": 2.5, "b": true, "tags": ["a"],
               "o": {"k": 1}, "maybe": null, "anything": [1], "env": "prod", "extra": 1})
    );
    // An empty field: the default for non-strings, "" for a string with a default.
    let got =
        form_conf(&specs, &typed(&[("rows", ""), ("who", ""), ("tags", "[]")]), conf(json!({})))
            .expect("valid");
    assert_eq!(Value::Object(got), json!({"who": "", "tags": []}));
    let bad = [
        (typed(&[("rows", "fifty"), ("tags", "[]")]), json!({}), "rows", "got the text `fifty`"),
        (typed(&[("n", "0"), ("tags", "[]")]), json!({}), "n", "from 1 to 1000"),
        (typed(&[("tags", "")]), json!({}), "tags", "required"),
        (typed(&[("tags", "a b")]), json!({}), "tags", "expected a list"),
        (typed(&[("tags", "[]")]), json!({"rows": 1}), "rows", "has its own field"),
        (typed(&[("tags", "[]"), ("env", "qa")]), json!({}), "env", "one of `dev`, `prod`"),
    ];
    for (fields, extra, param, words) in bad {
        let errs = form_conf(&specs, &fields, conf(extra.clone())).expect_err(param);
        let msg = errs.about(param).unwrap_or_else(|| panic!("no error about {param}: {errs}"));
        assert!(msg.contains(words), "`{msg}` lacks `{words}`");
    }
}

fn load_errors(params: &str, schedule: &str) -> Vec<String> {
    match dag_with(params, schedule) {
        Ok(_) => panic!("expected errors for {params}"),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn bad_declarations_are_load_errors_at_their_position() {
    // Line 5 is the first param line (after dag_id, schedule, start_date, params).
    let cases = [
        (
            "\n  a: {type: strin}\n",
            "d.yaml:5:13: unknown param type `strin`; did you mean `string`?",
        ),
        (
            "\n  a: {type: integer, default: x}\n",
            "d.yaml:5:31: the default of `params.a` does not fit its declaration: expected an integer, got the text `x`",
        ),
        (
            "\n  a: {type: string, pattern: \"([a-z\"}\n",
            "d.yaml:5:30: `pattern` is not a valid regular expression",
        ),
        (
            "\n  a: {type: string, enum: [x, 1]}\n",
            "d.yaml:5:31: this `enum` value can never be accepted: expected a string, got the number 1",
        ),
        ("\n  a: {type: integer, minimum: 5, maximum: 1}\n", "`minimum` 5 is above `maximum` 1"),
        ("\n  a: {type: integer, pattern: x}\n", "d.yaml:5:22: `pattern` applies to strings"),
        (
            "\n  a: {type: string, maximun: 3}\n",
            "d.yaml:5:21: unknown key `maximun` in the declaration of `params.a`; did you mean `maximum`?",
        ),
        ("\n  a: {type: string, format: day}\n", "unknown format `day`"),
        ("\n  a: {type: string, enum: []}\n", "a non-empty list"),
        (
            "\n  a: {type: string, default: x, pattern: \"^y$\"}\n",
            "does not fit its declaration: expected a string matching `^y$`",
        ),
        ("\n  a: {type: 5}\n", "a type name or a list of them"),
        (" [1, 2]\n", "`params` must be a mapping"),
    ];
    for (params, want) in cases {
        let errs = load_errors(params, "null");
        assert!(errs.iter().any(|e| e.contains(want)), "{params}: {errs:?} lacks `{want}`");
    }
}

#[test]
fn a_scheduled_dag_needs_a_value_for_every_param() {
    let errs = load_errors("\n  rows: 5\n  day: {type: string}\n", "\"@daily\"");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("d.yaml:6:3: param `day` has no default"), "{errs:?}");
    // Nullable, or manual: fine.
    dag_with("\n  day: {type: [string, \"null\"]}\n", "\"@daily\"").expect("nullable");
    dag_with("\n  day: {type: string}\n", "null").expect("manual");
}
