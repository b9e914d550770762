//! `type: s3`: put, get, copy, delete and list objects on S3, S3-compatible servers and local
//! folders (`file://`), through `object_store`.
//!
//! This file owns what each operation does and the XCom it returns (the URLs it touched, so a
//! downstream task can use them). It must bound what goes to XCom (`max_keys`): a listing of a
//! big bucket must not land in the metadata database.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{Value, json};

use super::objects::{Location, open, store_error};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::{S3Operation, S3Task};

/// Runs the operation; see [`S3Operation`] for each one's XCom.
pub async fn run(ctx: &TaskContext, task: &S3Task) -> Result<Outcome, OperatorError> {
    let field = |name: &str, v: &Option<String>| match v {
        Some(text) => ctx.render(name, text),
        None => Err(OperatorError::Fatal(format!("this s3 operation needs `{name}`"))),
    };
    let work = async {
        match task.operation {
            S3Operation::Put => {
                put(ctx, task, &field("source", &task.source)?, &field("dest", &task.dest)?).await
            }
            S3Operation::Get => {
                get(ctx, task, &field("source", &task.source)?, &field("dest", &task.dest)?).await
            }
            S3Operation::Copy => {
                copy(ctx, task, &field("source", &task.source)?, &field("dest", &task.dest)?).await
            }
            S3Operation::Delete => delete(ctx, task, &field("url", &task.url)?).await,
            S3Operation::List => list(ctx, task, &field("url", &task.url)?).await,
        }
    };
    tokio::select! {
        r = work => r.map(|v| Outcome::Done(Some(v))),
        () = ctx.cancel.cancelled() => Err(OperatorError::Retryable("killed: s3 operation cancelled".into())),
    }
}

/// Local files matching `source` (a path or glob) -> objects. A single file goes to `dest` as
/// named unless `dest` ends in `/`; several go under `dest` by file name. XCom: their URLs.
async fn put(
    ctx: &TaskContext,
    task: &S3Task,
    source: &str,
    dest: &str,
) -> Result<Value, OperatorError> {
    let files: Vec<std::path::PathBuf> = glob::glob(source)
        .map_err(|e| OperatorError::Fatal(format!("`{source}` is not a valid glob: {e}")))?
        .flatten()
        .filter(|p| p.is_file())
        .collect();
    if files.is_empty() {
        return Err(OperatorError::Fatal(format!("no file matches `{source}`")));
    }
    let loc = open(ctx, &task.connection, dest)?;
    let many = files.len() > 1 || loc.is_prefix;
    let mut urls = Vec::new();
    for file in &files {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| OperatorError::Fatal(format!("cannot read `{}`: {e}", file.display())))?;
        let key = if many {
            let name =
                file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            loc.child(&name)
        } else {
            loc.path.clone()
        };
        let n = bytes.len();
        loc.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(|e| store_error(&format!("put {}", loc.url_of(&key)), e))?;
        ctx.log.line(format!("put {} -> {} ({n} bytes)", file.display(), loc.url_of(&key)));
        urls.push(Value::String(loc.url_of(&key)));
    }
    Ok(Value::Array(urls))
}

/// Object `source` -> local file `dest` (folders created). XCom: `{path, bytes}`.
async fn get(
    ctx: &TaskContext,
    task: &S3Task,
    source: &str,
    dest: &str,
) -> Result<Value, OperatorError> {
    let loc = open(ctx, &task.connection, source)?;
    let bytes = fetch(&loc, &loc.path).await?;
    if let Some(parent) = std::path::Path::new(dest).parent().filter(|p| !p.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent).await.map_err(|e| {
            OperatorError::Fatal(format!("cannot create `{}`: {e}", parent.display()))
        })?;
    }
    tokio::fs::write(dest, &bytes)
        .await
        .map_err(|e| OperatorError::Fatal(format!("cannot write `{dest}`: {e}")))?;
    ctx.log.line(format!("get {source} -> {dest} ({} bytes)", bytes.len()));
    Ok(json!({"path": dest, "bytes": bytes.len()}))
}

/// Object -> object. On one store (same bucket, or two local paths) the store copies;
/// across stores the object goes through this process. XCom: the destination URL.
async fn copy(
    ctx: &TaskContext,
    task: &S3Task,
    source: &str,
    dest: &str,
) -> Result<Value, OperatorError> {
    let from = open(ctx, &task.connection, source)?;
    let to = open(ctx, &task.connection, dest)?;
    let target = if to.is_prefix {
        to.child(from.path.filename().unwrap_or("object"))
    } else {
        to.path.clone()
    };
    if from.base == to.base {
        from.store
            .copy(&from.path, &target)
            .await
            .map_err(|e| store_error(&format!("copy {source}"), e))?;
    } else {
        let bytes = fetch(&from, &from.path).await?;
        to.store
            .put(&target, PutPayload::from(bytes))
            .await
            .map_err(|e| store_error(&format!("put {}", to.url_of(&target)), e))?;
    }
    ctx.log.line(format!("copy {source} -> {}", to.url_of(&target)));
    Ok(Value::String(to.url_of(&target)))
}

/// One object, or every object under a prefix URL (ending in `/`). XCom: `{deleted}`.
async fn delete(ctx: &TaskContext, task: &S3Task, url: &str) -> Result<Value, OperatorError> {
    let loc = open(ctx, &task.connection, url)?;
    let keys =
        if loc.is_prefix { keys_under(&loc, usize::MAX).await? } else { vec![loc.path.clone()] };
    for key in &keys {
        loc.store
            .delete(key)
            .await
            .map_err(|e| store_error(&format!("delete {}", loc.url_of(key)), e))?;
    }
    ctx.log.line(format!("deleted {} object(s) at {url}", keys.len()));
    Ok(json!({"deleted": keys.len()}))
}

/// Objects under a prefix, sorted, at most `max_keys`. XCom: their URLs.
async fn list(ctx: &TaskContext, task: &S3Task, url: &str) -> Result<Value, OperatorError> {
    let loc = open(ctx, &task.connection, url)?;
    let keys = keys_under(&loc, usize::MAX).await?;
    ctx.log.line(format!("{} object(s) under {url}", keys.len()));
    if keys.len() > task.max_keys {
        ctx.log.line(format!("XCom holds the first {} (max_keys)", task.max_keys));
    }
    Ok(Value::Array(
        keys.iter().take(task.max_keys).map(|k| Value::String(loc.url_of(k))).collect(),
    ))
}

/// Keys under `loc`'s path (a prefix), sorted. A local folder that does not exist is empty.
pub async fn keys_under(loc: &Location, limit: usize) -> Result<Vec<Path>, OperatorError> {
    let prefix = (!loc.path.as_ref().is_empty()).then_some(&loc.path);
    let listed: Result<Vec<_>, _> = loc.store.list(prefix).try_collect().await;
    let metas = match listed {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) if loc.base == "file://" => vec![],
        Err(e) => return Err(store_error(&format!("list {}", loc.url_of(&loc.path)), e)),
    };
    let mut keys: Vec<Path> = metas.into_iter().map(|m| m.location).collect();
    keys.sort();
    keys.truncate(limit);
    Ok(keys)
}

async fn fetch(loc: &Location, key: &Path) -> Result<bytes::Bytes, OperatorError> {
    let what = format!("get {}", loc.url_of(key));
    let result = loc.store.get(key).await.map_err(|e| store_error(&what, e))?;
    result.bytes().await.map_err(|e| store_error(&what, e))
}
