//! `type: s3`: batch object work (put, get, copy, delete, list).
//!
//! Schema only, like the rest of `kinds`: no clients, no I/O. Which fields an `s3` operation
//! needs is checked in `parse/kind_streaming.rs`, so a put without a `dest` is a load error.

use serde::Deserialize;

use super::aws_default;

/// What an `s3` task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum S3Operation {
    /// Local file(s) `source` (a path or glob) -> `dest` (an object URL; a prefix ending in `/`
    /// when the glob may match several files).
    Put,
    /// Object `source` -> local file `dest`.
    Get,
    /// Object `source` -> object `dest`, on the same store.
    Copy,
    /// Object `url`, or every object under it when it ends in `/`.
    Delete,
    /// Objects under prefix `url` -> XCom (a list of URLs).
    List,
}

/// `type: s3`: batch object work on S3, S3-compatible servers and local folders.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Task {
    /// S3 connection: endpoint, region, path style, credentials; unused for `file://`.
    #[serde(default = "aws_default")]
    pub connection: String,
    /// The operation.
    pub operation: S3Operation,
    /// Source (templated): a local path or glob for put, an object URL for get and copy.
    pub source: Option<String>,
    /// Destination (templated): an object URL for put and copy, a local path for get.
    pub dest: Option<String>,
    /// Object or prefix URL (templated) for delete and list: `s3://bucket/key`,
    /// `file:///folder/key`.
    pub url: Option<String>,
    /// Bound on the objects a list returns as XCom (XCom lives in the metadata database).
    #[serde(default = "max_keys")]
    pub max_keys: usize,
}

fn max_keys() -> usize {
    1000
}
