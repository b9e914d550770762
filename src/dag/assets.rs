//! Assets: the data a task produces (`outlets:`) or reads (`inlets:`), named by a URI, and the
//! DAGs scheduled on them (`schedule: {assets: [...]}`), as in Airflow's data-aware scheduling.
//!
//! This file owns the declarations: what an asset reference is, when an asset schedule is met
//! is `model::assets`'s, and where events come from at run time is the scheduler's. A watched
//! asset (`watch:`) gets its events from outside: a Kafka topic or an S3 prefix, polled by the
//! scheduler, one poller per source however many DAGs listen to it ([`Watch::source_key`]).
//!
//! Invariant: pure; a URI is checked once, here, at load time ([`check_uri`]), and every later
//! layer (store, API, pages) takes it as given.

use std::time::Duration;

/// The longest asset URI accepted, in characters (Airflow's limit).
pub const MAX_URI_LEN: usize = 1500;

/// A DAG's asset schedule: a run whenever the condition over its assets is met by events
/// newer than the DAG's last asset-triggered run.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetSchedule {
    /// Whether every asset must have a new event, or one is enough.
    pub mode: AssetMode,
    /// The assets, in file order, each at most once.
    pub assets: Vec<AssetRef>,
    /// One run per event (`each_event: true`), instead of one run taking every event waiting
    /// (Airflow's queue, the default). Only with `any:` or a single asset.
    pub each_event: bool,
}

impl AssetSchedule {
    /// The URIs the schedule listens to.
    pub fn uris(&self) -> impl Iterator<Item = &str> {
        self.assets.iter().map(|a| a.uri.as_str())
    }
}

/// `assets:` (every one) or `any:` (one is enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetMode {
    /// A run when every listed asset has a new event (Airflow's `&`, the default).
    All,
    /// A run when any listed asset has a new event (Airflow's `|`).
    Any,
}

impl AssetMode {
    /// The YAML key that selects the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetMode::All => "assets",
            AssetMode::Any => "any",
        }
    }
}

/// One asset of a schedule, and where its events come from besides tasks and the API.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRef {
    /// The asset's URI, as written.
    pub uri: String,
    /// An outside source polled for events.
    pub watch: Option<Watch>,
}

/// An outside source of an asset's events.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    /// Each message of a topic is one event; offsets are committed only once its event is
    /// recorded.
    Kafka {
        /// Kafka connection id.
        connection: String,
        /// The topic.
        topic: String,
        /// The consumer group the watcher commits under (default `updraft-watch-<topic>`).
        group_id: String,
    },
    /// Each new object under a prefix (by key and ETag) is one event.
    S3 {
        /// S3 connection id.
        connection: String,
        /// The bucket.
        bucket: String,
        /// The key prefix (may be empty: the whole bucket).
        prefix: String,
        /// How often the prefix is listed.
        poke_interval: Duration,
    },
}

impl Watch {
    /// What identifies the source: DAGs whose watches share it share one poller.
    pub fn source_key(&self) -> String {
        match self {
            Watch::Kafka { connection, topic, group_id } => {
                format!("kafka:{connection}:{topic}:{group_id}")
            }
            Watch::S3 { connection, bucket, prefix, .. } => {
                format!("s3:{connection}:{bucket}/{prefix}")
            }
        }
    }

    /// The kind, as shown in the UI.
    pub fn kind(&self) -> &'static str {
        match self {
            Watch::Kafka { .. } => "kafka",
            Watch::S3 { .. } => "s3",
        }
    }

    /// What the watcher reads, for people: `kafka topic flights`, `s3://lake/in/`.
    pub fn describe(&self) -> String {
        match self {
            Watch::Kafka { connection, topic, .. } => {
                format!("Kafka topic {topic} ({connection})")
            }
            Watch::S3 { connection, bucket, prefix, .. } => {
                format!("s3://{bucket}/{prefix} ({connection})")
            }
        }
    }
}

/// How a DAG names an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use<'a> {
    /// Its schedule listens to it.
    Schedule,
    /// This task's successful tries produce it.
    Outlet(&'a str),
    /// This task reads it.
    Inlet(&'a str),
}

impl Use<'_> {
    /// The stored spelling: `schedule`, `outlet`, `inlet`.
    pub fn kind(&self) -> &'static str {
        match self {
            Use::Schedule => "schedule",
            Use::Outlet(_) => "outlet",
            Use::Inlet(_) => "inlet",
        }
    }

    /// The task, for an outlet or an inlet.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Use::Schedule => None,
            Use::Outlet(t) | Use::Inlet(t) => Some(t),
        }
    }
}

/// Checks an asset URI: `scheme://...` or a plain name, printable, without spaces, at most
/// [`MAX_URI_LEN`] characters. The error is a sentence naming what is wrong.
pub fn check_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Err("an asset URI cannot be empty".to_string());
    }
    let len = uri.chars().count();
    if len > MAX_URI_LEN {
        return Err(format!(
            "an asset URI is at most {MAX_URI_LEN} characters; this one has {len}"
        ));
    }
    if let Some(c) = uri.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "asset URI `{}` contains {}; write it without spaces or control characters",
            uri.escape_debug(),
            if c == ' ' { "a space".to_string() } else { format!("{:?}", c) }
        ));
    }
    if let Some((scheme, rest)) = uri.split_once("://") {
        let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid {
            return Err(format!("asset URI `{uri}` has an invalid scheme `{scheme}`"));
        }
        if rest.is_empty() {
            return Err(format!("asset URI `{uri}` names nothing after `{scheme}://`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_names_or_urls() {
        for ok in ["kafka://flights", "s3://lake/quotes/", "postgres://mart/top", "daily_report"] {
            assert_eq!(check_uri(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "empty"),
            ("a b", "a space"),
            ("a\tb", "'\\t'"),
            ("1x://y", "invalid scheme"),
            ("kafka://", "names nothing"),
        ];
        for (bad, why) in cases {
            let err = check_uri(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(check_uri(&"x".repeat(MAX_URI_LEN + 1)).is_err());
    }

    #[test]
    fn watches_sharing_a_source_share_a_key() {
        let a = Watch::Kafka {
            connection: "k".into(),
            topic: "flights".into(),
            group_id: "updraft-watch-flights".into(),
        };
        let b = Watch::S3 {
            connection: "aws".into(),
            bucket: "lake".into(),
            prefix: "in/".into(),
            poke_interval: Duration::from_secs(5),
        };
        let mut b2 = b.clone();
        if let Watch::S3 { poke_interval, .. } = &mut b2 {
            *poke_interval = Duration::from_secs(60);
        }
        assert_eq!(b.source_key(), b2.source_key());
        assert_ne!(a.source_key(), b.source_key());
    }
}
