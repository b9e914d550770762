//! What the Kafka sinks and sources share: when a streaming task stops ([`Until`]), where a
//! new consumer group starts ([`StartFrom`]), and how often progress is logged.
//!
//! Schema only, like the rest of `kinds`: plain data, no clients and no I/O.

use serde::{Deserialize, Deserializer};

use super::Dur;

/// When a streaming task stops. Written `caught_up`, `forever`, `{max_messages: N}` or
/// `{duration: 5m}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Every assigned partition reached the end offset it had when the task looked (a batch
    /// task that drains the backlog: the scheduled-pipeline default).
    CaughtUp,
    /// Never: a long-running streaming task, stopped by its cancellation (kill, timeout).
    Forever,
    /// After this many messages (good ones and dead letters alike).
    MaxMessages(u64),
    /// After this long.
    Duration(Dur),
}

impl<'de> Deserialize<'de> for Until {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Map(UntilMap),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct UntilMap {
            max_messages: Option<u64>,
            duration: Option<Dur>,
        }
        let msg = "`until` must be caught_up, forever, {max_messages: N} or {duration: 5m}";
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(msg))? {
            Raw::Word(w) if w == "caught_up" => Ok(Until::CaughtUp),
            Raw::Word(w) if w == "forever" => Ok(Until::Forever),
            Raw::Map(UntilMap { max_messages: Some(n), duration: None }) => {
                Ok(Until::MaxMessages(n))
            }
            Raw::Map(UntilMap { max_messages: None, duration: Some(d) }) => Ok(Until::Duration(d)),
            _ => Err(serde::de::Error::custom(msg)),
        }
    }
}

pub(super) fn caught_up() -> Until {
    Until::CaughtUp
}

/// Where a new consumer group starts: Kafka's `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest message still in the topic (the pipelines' default: nothing is missed).
    Earliest,
    /// Only messages produced after the group first joins.
    Latest,
}

pub(super) fn earliest() -> StartFrom {
    StartFrom::Earliest
}

/// How often a streaming task writes its progress line, unless the task says otherwise.
pub(super) fn progress() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}
