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

/// The fire times after `from`, `n` of them, as RFC 3339 UTC.
fn fires(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
    let mut at = t(from);
    let mut out = Vec::new();
    for _ in 0..n {
        match schedule.next_fire_after(at) {
            Some(next) => {
                out.push(next.to_rfc3339());
                at = next;
            }
            None => break,
        }
    }
    out
}

/// `0 2 * * *` in Paris: 02:00 on the wall clock every day, also across the changes. On
/// 2026-03-29 02:00 does not exist (clocks go from 02:00 CET to 03:00 CEST): the run is at the
/// first instant after the jump, once. On 2026-10-25 02:00 happens twice (03:00 CEST back to
/// 02:00 CET): once, the first time.
#[test]
fn a_fixed_time_in_paris_keeps_its_wall_time_across_both_changes() {
    let paris = sched("0 2 * * *").in_zone(chrono_tz::Europe::Paris);
    let spring = fires(&paris, "2026-03-26T12:00:00Z", 5);
    let want = [
        "2026-03-27T01:00:00+00:00", // 02:00 CET
        "2026-03-28T01:00:00+00:00",
        "2026-03-29T01:00:00+00:00", // 02:00 does not exist: 03:00 CEST, right after the jump
        "2026-03-30T00:00:00+00:00", // 02:00 CEST
        "2026-03-31T00:00:00+00:00",
    ];
    assert_eq!(spring, want);
    let autumn = fires(&paris, "2026-10-23T12:00:00Z", 4);
    let want = [
        "2026-10-24T00:00:00+00:00", // 02:00 CEST
        "2026-10-25T00:00:00+00:00", // 02:00 CEST, the first of the two; not again at 02:00 CET
        "2026-10-26T01:00:00+00:00", // 02:00 CET
        "2026-10-27T01:00:00+00:00",
    ];
    assert_eq!(autumn, want);
    // The same logical dates as the runs a year of catch-up creates (intervals end to end).
    let ivs = paris.intervals_between(t("2026-03-27T00:00:00Z"), t("2026-03-30T12:00:00Z"));
    let starts: Vec<String> = ivs.iter().map(|i| i.start.to_rfc3339()).collect();
    assert_eq!(starts, &spring[..4]);
    assert_eq!(ivs[2].end, t("2026-03-30T00:00:00Z"), "a 23-hour day");
    let ivs = paris.intervals_between(t("2026-10-24T00:00:00Z"), t("2026-10-25T00:00:00Z"));
    assert_eq!(ivs[1].end, t("2026-10-26T01:00:00Z"), "a 25-hour day");
    // Backwards too: the interval that ended last, from a `now` just after the spring jump.
    let next = paris.next_interval(None, None, None, false, t("2026-03-29T01:30:00Z"));
    assert_eq!(next, Some(iv("2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z")));
}

/// `30 * * * *` where the offset has half hours: Kolkata (+05:30, no daylight saving) fires on
/// the UTC hour; Lord Howe Island moves its clocks by 30 minutes. There `*` in the hour follows
/// the clock as it is: the repeated 01:30 of 2026-04-05 fires twice (30 minutes apart), and on
/// 2026-10-04 the skipped half hour (02:00 to 02:30) holds no fire time, so none is lost.
#[test]
fn an_hourly_expression_follows_the_clock_in_half_hour_zones() {
    let kolkata = sched("30 * * * *").in_zone(chrono_tz::Asia::Kolkata);
    let got = fires(&kolkata, "2026-06-01T00:10:00Z", 3);
    assert_eq!(
        got,
        ["2026-06-01T01:00:00+00:00", "2026-06-01T02:00:00+00:00", "2026-06-01T03:00:00+00:00"]
    );
    let lord_howe = sched("30 * * * *").in_zone(chrono_tz::Australia::Lord_Howe);
    let back = fires(&lord_howe, "2026-04-04T13:00:00Z", 4);
    let want = [
        "2026-04-04T13:30:00+00:00", // 00:30 +11:00
        "2026-04-04T14:30:00+00:00", // 01:30 +11:00
        "2026-04-04T15:00:00+00:00", // 01:30 again, +10:30
        "2026-04-04T16:00:00+00:00", // 02:30 +10:30
    ];
    assert_eq!(back, want);
    let forward = fires(&lord_howe, "2026-10-03T14:00:00Z", 3);
    let want = [
        "2026-10-03T15:00:00+00:00", // 01:30 +10:30
        "2026-10-03T15:30:00+00:00", // 02:30 +11:00, just after the jump
        "2026-10-03T16:30:00+00:00", // 03:30 +11:00
    ];
    assert_eq!(forward, want);
    // And backwards over the same instants.
    let prev = |s: &str| lord_howe_prev(&lord_howe, s);
    assert_eq!(prev("2026-04-04T16:00:00Z"), "2026-04-04T15:00:00+00:00");
    assert_eq!(prev("2026-04-04T15:00:00Z"), "2026-04-04T14:30:00+00:00");
}

fn lord_howe_prev(s: &Schedule, at: &str) -> String {
    let Schedule::Cron { fires, .. } = s else { panic!("a cron schedule") };
    fires.prev_before(t(at)).map(|d| d.to_rfc3339()).unwrap_or_default()
}

/// A zone changes nothing for UTC, and `@daily` (fixed minute and hour) in New York keeps
/// midnight on both sides of the March change.
#[test]
fn presets_in_a_zone() {
    let ny = sched("@daily").in_zone(chrono_tz::America::New_York);
    let got = fires(&ny, "2026-03-07T12:00:00Z", 3);
    assert_eq!(
        got,
        ["2026-03-08T05:00:00+00:00", "2026-03-09T04:00:00+00:00", "2026-03-10T04:00:00+00:00"]
    );
    assert_eq!(sched("@daily").in_zone(chrono_tz::UTC), sched("@daily"));
    assert_ne!(ny, sched("@daily"), "the same text in another zone is another schedule");
}
