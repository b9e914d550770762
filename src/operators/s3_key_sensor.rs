//! `type: s3_key_sensor`: one poke for an object, or for any object under a prefix.
//!
//! Like every sensor, it must not loop or sleep: it answers at once; waiting `poke_interval`
//! between pokes (holding no executor slot) and applying `timeout` happen outside operators.

use object_store::ObjectStoreExt;
use serde_json::Value;

use super::objects::{open, store_error};
use super::s3::keys_under;
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::S3KeySensorTask;

/// Done with the matching URLs (one, or up to 1000 under a prefix).
pub async fn run(ctx: &TaskContext, task: &S3KeySensorTask) -> Result<Outcome, OperatorError> {
    let url = ctx.render("key", &task.key)?;
    let loc = open(ctx, &task.connection, &url)?;
    if loc.is_prefix {
        let keys = keys_under(&loc, 1000).await?;
        if keys.is_empty() {
            return Ok(Outcome::NotYet(format!("no object under {url}")));
        }
        ctx.log.line(format!("{} object(s) under {url}", keys.len()));
        let urls = keys.iter().map(|k| Value::String(loc.url_of(k))).collect();
        return Ok(Outcome::Done(Some(Value::Array(urls))));
    }
    match loc.store.head(&loc.path).await {
        Ok(meta) => {
            ctx.log.line(format!("{url} exists ({} bytes)", meta.size));
            Ok(Outcome::Done(Some(Value::Array(vec![Value::String(url)]))))
        }
        Err(object_store::Error::NotFound { .. }) => {
            Ok(Outcome::NotYet(format!("{url} does not exist")))
        }
        Err(e) => Err(store_error(&format!("head {url}"), e)),
    }
}
