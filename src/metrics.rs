//! In-process figures of the scheduler and executor — loop duration, hand-off latency,
//! executor slots — and of the OpenLineage queue (events sent, failed, dropped) that `/metrics`
//! exports.
//!
//! Invariant: recording is lock-free (atomics), so the scheduler and workers never wait on a
//! scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the histogram buckets, in seconds: from 100 µs to 10 s.
const BUCKETS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 10.0];

/// A Prometheus histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; 12],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    /// Appends the histogram in Prometheus text format.
    pub fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// What the scheduler and executor of this process report.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Duration of one pass of the scheduler loop that did work.
    pub scheduler_loop: Histogram,
    /// From a task instance becoming runnable (its upstream ended) to its try starting.
    pub handoff: Histogram,
    /// Executor slots in total.
    pub slots_total: AtomicU64,
    /// Executor slots in use.
    pub slots_busy: AtomicU64,
    /// OpenLineage events the endpoint accepted (2xx) or the file received.
    pub lineage_sent: AtomicU64,
    /// OpenLineage events that failed: an error answer, a timeout, a refused connection, a
    /// write error. Not retried.
    pub lineage_failed: AtomicU64,
    /// OpenLineage events dropped because the queue was full (the endpoint is slow or dead).
    pub lineage_dropped: AtomicU64,
}

impl Metrics {
    /// Appends the OpenLineage counters in Prometheus text format.
    pub fn write_lineage(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP updraft_lineage_events_total OpenLineage events of this process by outcome \
             (dropped: the queue was full).\n# TYPE updraft_lineage_events_total counter"
        );
        let counters = [
            ("sent", &self.lineage_sent),
            ("failed", &self.lineage_failed),
            ("dropped", &self.lineage_dropped),
        ];
        for (result, n) in counters {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "updraft_lineage_events_total{{result=\"{result}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut out = String::new();
        h.write(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }
}
