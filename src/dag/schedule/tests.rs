//! Table-driven tests of schedule parsing and data intervals. No clock: `now` is in each row.

use chrono::{DateTime, Datelike, Utc, Weekday};

use super::{DataInterval, Schedule};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).expect("test timestamp")
}

fn iv(start: &str, end: &str) -> DataInterval {
    DataInterval { start: t(start), end: t(end) }
}

fn sched(text: &str) -> Schedule {
    Schedule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

struct Case {
    name: &'static str,
    schedule: &'static str,
    last: Option<(&'static str, &'static str)>,
    start_date: Option<&'static str>,
    end_date: Option<&'static str>,
    catchup: bool,
    now: &'static str,
    want: Option<(&'static str, &'static str)>,
}

const START: Option<&str> = Some("2026-01-01T00:00:00Z");

#[test]
fn next_interval_table() {
    let cases = [
        Case {
            name: "hourly, catchup, first run is the first interval after start_date",
            schedule: "@hourly",
            last: None,
            start_date: Some("2026-01-01T00:20:00Z"),
            end_date: None,
            catchup: true,
            now: "2026-01-01T05:30:00Z",
            want: Some(("2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z")),
        },
        Case {
            name: "hourly, catchup, continues where the last run ended",
            schedule: "0 * * * *",
            last: Some(("2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z")),
            start_date: START,
            end_date: None,
            catchup: true,
            now: "2026-01-01T05:30:00Z",
            want: Some(("2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z")),
        },
        Case {
            name: "hourly, no catchup, skips to the latest ended interval",
            schedule: "@hourly",
            last: Some(("2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z")),
            start_date: START,
            end_date: None,
            catchup: false,
            now: "2026-01-01T05:30:00Z",
            want: Some(("2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z")),
        },
        Case {
            name: "no catchup, now exactly on a boundary: that interval has ended",
            schedule: "@hourly",
            last: None,
            start_date: START,
            end_date: None,
            catchup: false,
            now: "2026-01-01T05:00:00Z",
            want: Some(("2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z")),
        },
        Case {
            name: "no catchup, latest interval already run: the next one, not yet due",
            schedule: "@hourly",
            last: Some(("2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z")),
            start_date: START,
            end_date: None,
            catchup: false,
            now: "2026-01-01T05:30:00Z",
            want: Some(("2026-01-01T05:00:00Z", "2026-01-01T06:00:00Z")),
        },
        Case {
            name: "daily, catchup, first run",
            schedule: "@daily",
            last: None,
            start_date: START,
            end_date: None,
            catchup: true,
            now: "2026-03-01T12:00:00Z",
            want: Some(("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")),
        },
        Case {
            name: "daily, no catchup, start_date in the future: the first upcoming interval",
            schedule: "@daily",
            last: None,
            start_date: Some("2026-06-01T00:00:00Z"),
            end_date: None,
            catchup: false,
            now: "2026-03-01T12:00:00Z",
            want: Some(("2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z")),
        },
        Case {
            name: "daily, no catchup, no start_date",
            schedule: "@daily",
            last: None,
            start_date: None,
            end_date: None,
            catchup: true,
            now: "2026-03-01T12:00:00Z",
            want: Some(("2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z")),
        },
        Case {
            name: "end_date: an interval starting on it still runs",
            schedule: "@daily",
            last: Some(("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")),
            start_date: START,
            end_date: Some("2026-01-03T00:00:00Z"),
            catchup: true,
            now: "2026-03-01T00:00:00Z",
            want: Some(("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z")),
        },
        Case {
            name: "end_date: nothing starts after it",
            schedule: "@daily",
            last: Some(("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z")),
            start_date: START,
            end_date: Some("2026-01-03T00:00:00Z"),
            catchup: true,
            now: "2026-03-01T00:00:00Z",
            want: None,
        },
        Case {
            name: "@once: start = end = start_date",
            schedule: "@once",
            last: None,
            start_date: Some("2026-01-01T06:00:00Z"),
            end_date: None,
            catchup: false,
            now: "2026-03-01T00:00:00Z",
            want: Some(("2026-01-01T06:00:00Z", "2026-01-01T06:00:00Z")),
        },
        Case {
            name: "@once after its run",
            schedule: "@once",
            last: Some(("2026-01-01T06:00:00Z", "2026-01-01T06:00:00Z")),
            start_date: START,
            end_date: None,
            catchup: false,
            now: "2026-03-01T00:00:00Z",
            want: None,
        },
        Case {
            name: "@once without start_date",
            schedule: "@once",
            last: None,
            start_date: None,
            end_date: None,
            catchup: false,
            now: "2026-03-01T00:00:00Z",
            want: None,
        },
        Case {
            name: "manual only",
            schedule: "null",
            last: None,
            start_date: START,
            end_date: None,
            catchup: true,
            now: "2026-03-01T00:00:00Z",
            want: None,
        },
        Case {
            name: "weekly on Monday (1 = Monday in classic cron)",
            schedule: "0 9 * * 1",
            last: None,
            start_date: START, // a Thursday
            end_date: None,
            catchup: true,
            now: "2026-03-01T00:00:00Z",
            want: Some(("2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")),
        },
    ];
    for c in cases {
        let got = sched(c.schedule).next_interval(
            c.last.map(|(s, e)| iv(s, e)),
            c.start_date.map(t),
            c.end_date.map(t),
            c.catchup,
            t(c.now),
        );
        assert_eq!(got, c.want.map(|(s, e)| iv(s, e)), "{}", c.name);
    }
}

#[test]
fn weekday_numbers_follow_classic_cron() {
    let cases = [
        ("0 9 * * 0", Weekday::Sun),
        ("0 9 * * 1", Weekday::Mon),
        ("0 9 * * 2", Weekday::Tue),
        ("0 9 * * 5", Weekday::Fri),
        ("0 9 * * 6", Weekday::Sat),
        ("0 9 * * 7", Weekday::Sun),
        ("0 9 * * MON", Weekday::Mon),
        ("@weekly", Weekday::Sun),
    ];
    for (expr, day) in cases {
        let s = sched(expr);
        let mut at = t("2026-01-01T00:00:00Z");
        for _ in 0..3 {
            at = s.next_fire_after(at).expect("fires");
            assert_eq!(at.weekday(), day, "{expr} fired on {at}");
        }
    }
    let weekdays = sched("30 8 * * 1-5");
    let fires: Vec<Weekday> = weekdays
        .intervals_between(t("2026-01-03T00:00:00Z"), t("2026-01-10T00:00:00Z"))
        .iter()
        .map(|i| i.start.weekday())
        .collect();
    use Weekday::*;
    assert_eq!(fires, [Mon, Tue, Wed, Thu, Fri]);
}

#[test]
fn intervals_between_for_backfill() {
    let s = sched("@daily");
    let got = s.intervals_between(t("2026-01-01T00:00:00Z"), t("2026-01-03T00:00:00Z"));
    assert_eq!(
        got,
        [
            iv("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
            iv("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"),
            iv("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"),
        ]
    );
    let unaligned = s.intervals_between(t("2026-01-01T00:00:01Z"), t("2026-01-02T12:00:00Z"));
    assert_eq!(unaligned, [iv("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")]);
    assert!(
        sched("@once")
            .intervals_between(t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z"))
            .is_empty()
    );
}

#[test]
fn parse_and_display() {
    let ok = [
        ("@daily", "@daily"),
        ("  @Hourly ", "@Hourly"),
        ("*/5 * * * *", "*/5 * * * *"),
        ("30 0 9 * * *", "30 0 9 * * *"),
        ("@once", "@once"),
        ("", "None"),
    ];
    for (text, shown) in ok {
        assert_eq!(sched(text).to_string(), shown, "{text}");
    }
    let bad = [
        ("@dialy", "unknown schedule preset `@dialy`; did you mean `@daily`?"),
        ("0 24 * * *", "invalid schedule `0 24 * * *`: hour field `24`"),
        ("0 0 30 2 *", "never fires"),
        ("every day", "expected 5 fields"),
    ];
    for (text, want) in bad {
        let err = Schedule::parse(text).expect_err(text);
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn six_fields_have_seconds_first() {
    let s = sched("30 0 9 * * *");
    assert_eq!(s.next_fire_after(t("2026-01-01T00:00:00Z")), Some(t("2026-01-01T09:00:30Z")));
}
