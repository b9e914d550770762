//! Object URLs (`s3://bucket/key`, `file:///folder/key`) resolved to an `object_store` store and
//! a path, with the S3 settings taken from a connection.
//!
//! S3 connection URI, Airflow's `aws` connection in URI form:
//! `aws://ACCESS_KEY:SECRET@/?region_name=us-east-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A19000`
//! or, for an S3-compatible server, its address as the host:
//! `s3://ACCESS_KEY:SECRET@127.0.0.1:19000?scheme=http&region_name=us-east-1`.
//! Extras: `region_name` (default us-east-1), `endpoint_url`, `aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`, `path_style` (default true with a custom
//! endpoint: MinIO, moto, Ceph want it; false on AWS), `scheme` (http|https for the host form).
//!
//! Invariant: no credential is read from the environment here (config owns the environment):
//! an `s3://` URL needs a connection; a `file://` URL needs none.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::{Connection, OperatorError, TaskContext};

/// Where an object URL points.
pub struct Location {
    /// The store (one bucket, or the local filesystem from `/`).
    pub store: Arc<dyn ObjectStore>,
    /// The key inside the store (for `file://`, the absolute path without its leading `/`).
    pub path: Path,
    /// `s3://bucket` or `file://`: the URL of a key is `{base}/{key}`.
    pub base: String,
    /// The URL ended with `/`: a prefix, not one object.
    pub is_prefix: bool,
}

impl Location {
    /// The URL of a key of this store.
    pub fn url_of(&self, key: &Path) -> String {
        format!("{}/{}", self.base, key)
    }

    /// The key of `name` under this location taken as a folder.
    pub fn child(&self, name: &str) -> Path {
        if self.path.as_ref().is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.path))
        }
    }
}

/// Resolves `url` (already rendered); `conn_id` is used for `s3://` only.
pub fn open(ctx: &TaskContext, conn_id: &str, url: &str) -> Result<Location, OperatorError> {
    let is_prefix = url.ends_with('/');
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(OperatorError::Fatal(format!("`{url}` must be file:///absolute/path")));
        }
        let store = Arc::new(LocalFileSystem::new());
        return Ok(Location { store, path: Path::from(rest), base: "file://".into(), is_prefix });
    }
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(OperatorError::Fatal(format!(
            "`{url}` is not an object URL: write s3://bucket/key or file:///folder/key"
        )));
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(OperatorError::Fatal(format!("`{url}` names no bucket")));
    }
    let conn = ctx.connection(conn_id)?;
    if let Some(secret) = conn.extra.get("aws_secret_access_key") {
        ctx.log.add_secret(secret.clone());
    }
    let store = Arc::new(s3_store(&conn, bucket)?);
    Ok(Location { store, path: Path::from(key), base: format!("s3://{bucket}"), is_prefix })
}

/// An S3 store for `bucket` from the connection's settings.
pub fn s3_store(
    conn: &Connection,
    bucket: &str,
) -> Result<object_store::aws::AmazonS3, OperatorError> {
    // object_store builds its reqwest client on the process-wide provider.
    crate::tls::install_provider();
    if !matches!(conn.conn_type.as_str(), "aws" | "s3") {
        return Err(OperatorError::Fatal(format!(
            "connection `{}` is of type `{}`; an S3 connection is aws://... or s3://...",
            conn.conn_id, conn.conn_type
        )));
    }
    let extra = |k: &str| conn.extra.get(k).cloned();
    let region = extra("region_name").or_else(|| extra("region")).unwrap_or("us-east-1".into());
    let mut b = AmazonS3Builder::new().with_bucket_name(bucket).with_region(region);
    if let Some(key) = extra("aws_access_key_id").or_else(|| conn.login.clone()) {
        b = b.with_access_key_id(key);
    }
    if let Some(secret) = extra("aws_secret_access_key").or_else(|| conn.password.clone()) {
        b = b.with_secret_access_key(secret);
    }
    if let Some(token) = extra("aws_session_token") {
        b = b.with_token(token);
    }
    let endpoint = match (extra("endpoint_url"), &conn.host) {
        (Some(url), _) => Some(url),
        (None, Some(host)) => {
            let scheme = extra("scheme").unwrap_or("https".into());
            let port = conn.port.map(|p| format!(":{p}")).unwrap_or_default();
            Some(format!("{scheme}://{host}{port}"))
        }
        (None, None) => None,
    };
    if let Some(endpoint) = &endpoint {
        let path_style = extra("path_style").is_none_or(|v| v != "false");
        b = b
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(!path_style);
    }
    b.build().map_err(|e| {
        OperatorError::Fatal(format!("connection `{}`: bad S3 settings: {e}", conn.conn_id))
    })
}

/// Maps a store error: a missing object or bucket is fatal (a retry finds the same), anything
/// else (network, 5xx, throttling) retryable.
pub fn store_error(what: &str, e: object_store::Error) -> OperatorError {
    let msg = format!("{what}: {e}");
    match e {
        object_store::Error::NotFound { .. }
        | object_store::Error::InvalidPath { .. }
        | object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => OperatorError::Fatal(msg),
        _ => OperatorError::Retryable(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_connections() {
        let c =
            Connection::parse("s", "s3://AK:SK@127.0.0.1:19000?scheme=http&region_name=eu-west-1")
                .unwrap();
        assert!(s3_store(&c, "b").is_ok());
        let c =
            Connection::parse("s", "aws://AK:S%2FK@/?endpoint_url=http%3A%2F%2F127.0.0.1%3A19000");
        // The Airflow form with an empty host: accepted by the URI parser or not, the
        // extras-only form always works.
        if let Ok(c) = c {
            assert_eq!(c.password.as_deref(), Some("S/K"));
            assert!(s3_store(&c, "b").is_ok());
        }
        let c = Connection::parse(
            "s",
            "aws://?aws_access_key_id=AK&aws_secret_access_key=SK&region_name=us-east-1",
        )
        .unwrap();
        assert!(s3_store(&c, "b").is_ok());
        let c = Connection::parse("s", "http://h").unwrap();
        assert!(s3_store(&c, "b").is_err());
    }
}
