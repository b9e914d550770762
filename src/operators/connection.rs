//! Connections: the credentials and address of a user system, parsed from an Airflow-style URI
//! (`http://user:pass@host:8080/path?x=1`).
//!
//! This file owns the URI format only. It must not look connections up (that is
//! [`TaskContext::connection`](super::TaskContext::connection)) and it must never put a
//! password in an error message or a `Debug` output: both end up in logs and in the UI.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::Url;

/// A named connection, with every part percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// The name tasks refer to with `connection:`.
    pub conn_id: String,
    /// The URI scheme (`http`, `postgres`, `kafka`, ...), with `-` turned into `_`.
    pub conn_type: String,
    /// Host name or address; `None` for URIs without one (`sqlite:///file.db`).
    pub host: Option<String>,
    /// Port, when written.
    pub port: Option<u16>,
    /// User name.
    pub login: Option<String>,
    /// Password. Never printed: `Debug` shows `***`.
    pub password: Option<String>,
    /// The URI path without its leading `/`: a database name, or a base path for HTTP.
    pub schema: Option<String>,
    /// Query parameters; `__extra__={json object}` (Airflow's form) is flattened into them.
    pub extra: BTreeMap<String, String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("conn_id", &self.conn_id)
            .field("conn_type", &self.conn_type)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("schema", &self.schema)
            .field("extra", &self.extra)
            .finish()
    }
}

/// A connection written as fields (the admin page's form), the way Airflow's form has them.
#[derive(Debug, Default, Clone)]
pub struct Parts {
    pub conn_type: String,
    pub host: String,
    pub port: String,
    pub login: String,
    pub password: String,
    pub schema: String,
    /// A JSON object; each entry becomes a query parameter (text as is, other values as JSON).
    pub extra: String,
}

impl Parts {
    /// The URI these fields make, every part percent-encoded; the error names the field.
    pub fn to_uri(&self, conn_id: &str) -> Result<String, String> {
        let scheme = self.conn_type.trim().replace('_', "-");
        let ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !ok {
            return Err(format!(
                "connection `{conn_id}`: the type must be a scheme such as postgres, http or kafka"
            ));
        }
        let mut url = Url::parse(&format!("{scheme}://placeholder"))
            .map_err(|e| format!("connection `{conn_id}`: invalid type ({e})"))?;
        let host = self.host.trim();
        url.set_host(if host.is_empty() { None } else { Some(host) })
            .map_err(|e| format!("connection `{conn_id}`: invalid host ({e})"))?;
        let port = self.port.trim();
        if !port.is_empty() {
            let p: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("connection `{conn_id}`: the port must be a number from 1 to 65535")
            })?;
            url.set_port(Some(p))
                .map_err(|()| format!("connection `{conn_id}`: this URI cannot hold a port"))?;
        }
        let no_host = |what: &str| format!("connection `{conn_id}`: a {what} needs a host");
        if !self.login.is_empty() {
            url.set_username(self.login.trim()).map_err(|()| no_host("login"))?;
        }
        if !self.password.is_empty() {
            url.set_password(Some(&self.password)).map_err(|()| no_host("password"))?;
        }
        let schema = self.schema.trim();
        if !schema.is_empty() {
            // set_path percent-encodes what a path cannot hold; parse decodes it back.
            url.set_path(&format!("/{schema}"));
        }
        let extra = self.extra.trim();
        if !extra.is_empty() {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(extra)
                .map_err(|e| {
                    format!("connection `{conn_id}`: extra must be a JSON object ({e})")
                })?;
            let mut q = url.query_pairs_mut();
            for (k, v) in &map {
                match v {
                    serde_json::Value::String(s) => q.append_pair(k, s),
                    other => q.append_pair(k, &other.to_string()),
                };
            }
        }
        Ok(url.to_string())
    }
}

impl Connection {
    /// These settings as form fields (no password: a form never holds it).
    pub fn parts(&self) -> Parts {
        let extra = if self.extra.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&self.extra).unwrap_or_default()
        };
        Parts {
            conn_type: self.conn_type.clone(),
            host: self.host.clone().unwrap_or_default(),
            port: self.port.map(|p| p.to_string()).unwrap_or_default(),
            login: self.login.clone().unwrap_or_default(),
            password: String::new(),
            schema: self.schema.clone().unwrap_or_default(),
            extra,
        }
    }

    /// Parses `uri` as connection `conn_id`. The error names the connection and what is wrong,
    /// but never repeats the URI (it holds the password).
    pub fn parse(conn_id: &str, uri: &str) -> Result<Connection, String> {
        let url = Url::parse(uri.trim()).map_err(|e| {
            format!("connection `{conn_id}` has an invalid URI ({e}); expected e.g. scheme://user:password@host:port/schema?key=value")
        })?;
        let decode = |s: &str, part: &str| {
            percent_decode(s).ok_or_else(|| {
                format!("connection `{conn_id}`: the {part} is not valid percent-encoded UTF-8")
            })
        };
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let host = match url.host_str() {
            Some(h) => non_empty(decode(h, "host")?),
            None => None,
        };
        let login = non_empty(decode(url.username(), "login")?);
        let password = match url.password() {
            Some(p) => non_empty(decode(p, "password")?),
            None => None,
        };
        let path = url.path().strip_prefix('/').unwrap_or(url.path());
        let schema = non_empty(decode(path, "path")?);
        let mut extra = BTreeMap::new();
        for (key, value) in url.query_pairs() {
            if key == "__extra__" {
                flatten_extra(conn_id, &value, &mut extra)?;
            } else {
                extra.insert(key.into_owned(), value.into_owned());
            }
        }
        Ok(Connection {
            conn_id: conn_id.to_string(),
            conn_type: url.scheme().replace('-', "_"),
            host,
            port: url.port(),
            login,
            password,
            schema,
            extra,
        })
    }

    /// The base URL of an HTTP connection: `http(s)://host[:port][/schema]`.
    ///
    /// The scheme is the connection type when it is `http` or `https`; an `extra` named
    /// `scheme` overrides it, so that `http://host?scheme=https` works like Airflow's
    /// `http` connection type with an https endpoint.
    pub fn base_url(&self) -> Result<String, String> {
        let scheme = match self.extra.get("scheme") {
            Some(s) if s == "http" || s == "https" => s.as_str(),
            Some(s) => {
                return Err(format!(
                    "connection `{}`: extra `scheme={s}` must be http or https",
                    self.conn_id
                ));
            }
            None if self.conn_type == "http" || self.conn_type == "https" => &self.conn_type,
            None => {
                return Err(format!(
                    "connection `{}` is of type `{}`, not an http or https connection",
                    self.conn_id, self.conn_type
                ));
            }
        };
        let Some(host) = &self.host else {
            return Err(format!("connection `{}` has no host", self.conn_id));
        };
        let mut url = format!("{scheme}://{host}");
        if let Some(port) = self.port {
            url.push_str(&format!(":{port}"));
        }
        if let Some(schema) = &self.schema {
            url.push('/');
            url.push_str(schema);
        }
        Ok(url)
    }

    /// The URL of `endpoint` on this HTTP connection, joined like Airflow's HttpHook: exactly
    /// one `/` between the base URL and the endpoint.
    pub fn url_for(&self, endpoint: &str) -> Result<String, String> {
        let base = self.base_url()?;
        Ok(join_url(&base, endpoint))
    }

    /// The URI with its secrets hidden, for lists in the UI and the CLI:
    /// `type://login:***@host:port/schema`. The query is left out: extras may hold keys.
    pub fn masked(&self) -> String {
        let mut out = format!("{}://", self.conn_type);
        match (&self.login, &self.password) {
            (Some(l), Some(_)) => out.push_str(&format!("{l}:***@")),
            (Some(l), None) => out.push_str(&format!("{l}@")),
            (None, Some(_)) => out.push_str(":***@"),
            (None, None) => {}
        }
        out.push_str(self.host.as_deref().unwrap_or(""));
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        if let Some(schema) = &self.schema {
            out.push('/');
            out.push_str(schema);
        }
        if !self.extra.is_empty() {
            out.push_str("?…");
        }
        out
    }
}

/// Key fragments that mark an extra as a secret (Airflow's default sensitive field names).
const SENSITIVE: [&str; 12] = [
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
    "keyfile_dict",
    "service_account",
];

/// Whether a field or variable name looks like it holds a secret (`api_key`, `db_password`).
pub fn is_sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| name.contains(s))
}

/// Every secret a connection URI holds, in each form it may be printed in: the password
/// decoded and as written (percent-encoded), and the values of extras whose key looks
/// sensitive (`api_key`, `token`, `password`, ...). For the log masker; nothing else.
pub fn secrets_of(uri: &str) -> Vec<String> {
    let Ok(url) = Url::parse(uri.trim()) else { return Vec::new() };
    let mut out = Vec::new();
    let mut push = |raw: &str| {
        out.push(raw.to_string());
        if let Some(decoded) = percent_decode(raw) {
            out.push(decoded);
        }
    };
    if let Some(pw) = url.password() {
        push(pw);
    }
    let sensitive = is_sensitive_name;
    for pair in url.query().unwrap_or("").split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && sensitive(k)
        {
            push(v);
        }
    }
    if let Ok(conn) = Connection::parse("masking", uri) {
        out.extend(conn.extra.into_iter().filter(|(k, _)| sensitive(k)).map(|(_, v)| v));
    }
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

/// Joins a base URL and an endpoint with exactly one `/` between them (none when the endpoint
/// is empty or starts with `?`).
pub fn join_url(base: &str, endpoint: &str) -> String {
    if endpoint.is_empty() || endpoint.starts_with('?') {
        return format!("{base}{endpoint}");
    }
    format!("{}/{}", base.trim_end_matches('/'), endpoint.trim_start_matches('/'))
}

/// Adds the fields of Airflow's `__extra__` JSON object to `extra`; non-string values are kept
/// as their JSON text.
fn flatten_extra(
    conn_id: &str,
    json: &str,
    extra: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("connection `{conn_id}`: `__extra__` is not valid JSON ({e})"))?;
    let serde_json::Value::Object(map) = value else {
        return Err(format!("connection `{conn_id}`: `__extra__` must be a JSON object"));
    };
    for (k, v) in map {
        let text = match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        extra.insert(k, text);
    }
    Ok(())
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
/// (A dozen lines here instead of a new dependency: `Url` gives user info and paths still
/// encoded, and the `percent-encoding` crate is not a direct dependency.)
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_part() {
        let c =
            Connection::parse("api", "http://us%40er:p%3Ass@example.com:8080/v1/base?x=1&y=a+b")
                .unwrap();
        assert_eq!(c.conn_id, "api");
        assert_eq!(c.conn_type, "http");
        assert_eq!(c.host.as_deref(), Some("example.com"));
        assert_eq!(c.port, Some(8080));
        assert_eq!(c.login.as_deref(), Some("us@er"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        assert_eq!(c.schema.as_deref(), Some("v1/base"));
        assert_eq!(c.extra["x"], "1");
        assert_eq!(c.extra["y"], "a b");
    }

    #[test]
    fn non_http_schemes_and_missing_parts() {
        let c = Connection::parse("db", "postgres://pg.local/warehouse").unwrap();
        assert_eq!(c.conn_type, "postgres");
        assert_eq!(c.host.as_deref(), Some("pg.local"));
        assert_eq!((c.port, c.login.clone(), c.password.clone()), (None, None, None));
        assert_eq!(c.schema.as_deref(), Some("warehouse"));
        let c = Connection::parse("k", "kafka-cluster://broker1:9092").unwrap();
        assert_eq!(c.conn_type, "kafka_cluster");
        assert_eq!(c.schema, None);
        let c = Connection::parse("lite", "sqlite:///tmp/x.db").unwrap();
        assert_eq!(c.host, None);
        assert_eq!(c.schema.as_deref(), Some("tmp/x.db"));
    }

    #[test]
    fn airflow_extra_json_is_flattened() {
        let c =
            Connection::parse("c", "http://h/?__extra__=%7B%22a%22%3A%22b%22%2C%22n%22%3A2%7D&z=1")
                .unwrap();
        assert_eq!(c.extra["a"], "b");
        assert_eq!(c.extra["n"], "2");
        assert_eq!(c.extra["z"], "1");
        let e = Connection::parse("c", "http://h/?__extra__=nope").unwrap_err();
        assert!(e.contains("`c`") && e.contains("__extra__"), "{e}");
    }

    #[test]
    fn errors_name_the_connection_but_not_the_password() {
        let e = Connection::parse("my_api", "not a uri with hunter22").unwrap_err();
        assert!(e.contains("`my_api`"), "{e}");
        assert!(!e.contains("hunter22"), "{e}");
        let e = Connection::parse("my_api", "http://u:hunter22@h:99999/").unwrap_err();
        assert!(e.contains("`my_api`") && !e.contains("hunter22"), "{e}");
        let e = Connection::parse("my_api", "http://u:bad%zz@h/").unwrap_err();
        assert!(e.contains("password") && !e.contains("bad"), "{e}");
    }

    #[test]
    fn secrets_of_a_uri_in_every_printed_form() {
        let s = secrets_of(
            "http://u:p%2Fss@h/?api_key=k%3D1&region=eu&__extra__=%7B%22token%22%3A%22tk9%22%7D",
        );
        for want in ["p%2Fss", "p/ss", "k%3D1", "k=1", "tk9"] {
            assert!(s.contains(&want.to_string()), "{want} in {s:?}");
        }
        assert!(!s.iter().any(|x| x == "eu" || x == "u"), "{s:?}");
        assert!(secrets_of("not a uri").is_empty());
        assert!(secrets_of("kafka://broker:9092").is_empty());
    }

    #[test]
    fn debug_masks_the_password() {
        let c = Connection::parse("c", "http://u:hunter22@h/").unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("***") && !dbg.contains("hunter22"), "{dbg}");
    }

    #[test]
    fn base_urls() {
        let url = |uri: &str| Connection::parse("c", uri).unwrap().base_url();
        assert_eq!(url("http://h:8080").unwrap(), "http://h:8080");
        assert_eq!(url("https://h/api/v2").unwrap(), "https://h/api/v2");
        assert_eq!(url("http://h/api?scheme=https").unwrap(), "https://h/api");
        assert_eq!(url("http://u:p@127.0.0.1:1/").unwrap(), "http://127.0.0.1:1");
        assert!(url("postgres://h/db").unwrap_err().contains("not an http"));
        assert!(url("http://h?scheme=ftp").unwrap_err().contains("http or https"));
        let c = Connection::parse("c", "http://h/api").unwrap();
        assert_eq!(c.url_for("/users").unwrap(), "http://h/api/users");
        assert_eq!(c.url_for("users?x=1").unwrap(), "http://h/api/users?x=1");
        assert_eq!(c.url_for("").unwrap(), "http://h/api");
        assert_eq!(join_url("http://h/", "/a"), "http://h/a");
        assert_eq!(join_url("http://h", "?q=1"), "http://h?q=1");
    }
}
