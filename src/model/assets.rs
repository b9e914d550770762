//! When an asset schedule is met: a DAG scheduled on assets gets a run once its condition
//! holds over the events recorded since its last asset-triggered run (Airflow's asset queue).
//!
//! Invariant: pure; the store counts the new events per asset, this file decides.

use std::collections::HashMap;

use crate::dag::assets::{AssetMode, AssetSchedule};

/// Whether `schedule` is met, given how many new events each asset has (an asset missing from
/// `new_events` has none). `all`: every listed asset has at least one; `any`: one has.
pub fn schedule_met(schedule: &AssetSchedule, new_events: &HashMap<&str, i64>) -> bool {
    let has_new = |uri: &str| new_events.get(uri).is_some_and(|n| *n > 0);
    match schedule.mode {
        AssetMode::All => schedule.uris().all(has_new),
        AssetMode::Any => schedule.uris().any(has_new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::assets::AssetRef;

    fn schedule(mode: AssetMode, uris: &[&str]) -> AssetSchedule {
        let assets = uris.iter().map(|u| AssetRef { uri: u.to_string(), watch: None }).collect();
        AssetSchedule { mode, assets, each_event: false }
    }

    #[test]
    fn all_needs_every_asset_and_any_one() {
        use AssetMode::{All, Any};
        // (mode, events per asset a/b, met)
        type Case = (AssetMode, &'static [(&'static str, i64)], bool);
        let cases: &[Case] = &[
            (All, &[], false),
            (All, &[("a", 1)], false),
            (All, &[("a", 3), ("b", 0)], false),
            (All, &[("a", 1), ("b", 2)], true),
            (All, &[("a", 1), ("b", 1), ("c", 5)], true),
            (Any, &[], false),
            (Any, &[("c", 4)], false),
            (Any, &[("b", 1)], true),
            (Any, &[("a", 2), ("b", 1)], true),
        ];
        for (mode, events, want) in cases {
            let events: HashMap<&str, i64> = events.iter().copied().collect();
            let got = schedule_met(&schedule(*mode, &["a", "b"]), &events);
            assert_eq!(got, *want, "{mode:?} {events:?}");
        }
    }
}
