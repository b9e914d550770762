//! [`SensorSettings`]: how every sensor pokes — `poke_interval`, `timeout`, `soft_fail` —
//! written once and shared by each sensor's settings.
//!
//! In YAML these keys sit beside the sensor's own ones (`path`, `topic`...). serde's
//! `flatten` cannot be used for that: it does not combine with `deny_unknown_fields` and it
//! buffers the values, losing the path an error needs for its line and column. So a sensor's
//! struct holds this one as a `#[serde(skip)] sensor` field, and the parser
//! (`parse/kind.rs`) deserializes the two from their own keys of the same mapping.
//!
//! Invariant: the defaults are Airflow's (poke every minute, give up after seven days), and a
//! sensor that never mentions these keys gets exactly them.

use std::time::Duration;

use serde::Deserialize;

use super::Dur;

/// How a sensor pokes. Between pokes the task is `up_for_reschedule` and holds no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(from = "SensorFields")]
pub struct SensorSettings {
    /// Time between two pokes.
    pub poke_interval: Duration,
    /// Give up (fail, or skip when `soft_fail`) this long after the first poke.
    pub timeout: Duration,
    /// On timeout, mark the task skipped instead of failed.
    pub soft_fail: bool,
}

/// Airflow's defaults: poke every minute, give up after seven days.
const DEFAULT_POKE: Duration = Duration::from_secs(60);
const DEFAULT_SENSOR_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for SensorSettings {
    fn default() -> Self {
        SensorSettings {
            poke_interval: DEFAULT_POKE,
            timeout: DEFAULT_SENSOR_TIMEOUT,
            soft_fail: false,
        }
    }
}

/// The keys as written; absent ones take the defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SensorFields {
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<SensorFields> for SensorSettings {
    fn from(f: SensorFields) -> Self {
        SensorSettings {
            poke_interval: f.poke_interval.map_or(DEFAULT_POKE, |d| d.0),
            timeout: f.timeout.map_or(DEFAULT_SENSOR_TIMEOUT, |d| d.0),
            soft_fail: f.soft_fail,
        }
    }
}
