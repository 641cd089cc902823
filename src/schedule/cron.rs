//! When a pipeline fires: a cron expression read as **local wall-clock time** in an IANA
//! time zone.
//!
//! tokio-cron-scheduler freezes a zone into a fixed UTC offset when a job is created, so a
//! "02:00 America/Chicago" job drifts by an hour after a daylight-saving change. xmatch
//! therefore computes each next fire instant itself, here, and hands tokio-cron-scheduler
//! only one-shot jobs at those instants (re-armed after every firing).
//!
//! The rules at a daylight-saving change, the ones a data team expects from a nightly job:
//! - a wall time that does not exist (02:30 on the spring-forward night) fires once, at the
//!   first instant after the gap (03:00 local);
//! - a wall time that occurs twice (01:30 on the fall-back night) fires once, at its first
//!   occurrence.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A parsed schedule: six-field cron (seconds first) in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
    expr: String,
}

/// Why a schedule could not be read; the caller names the file and field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("`{expr}` is not a cron expression with six fields, seconds first ({reason})")]
    Cron { expr: String, reason: String },
    #[error("`{0}` is not an IANA time zone (e.g. America/Chicago)")]
    TimeZone(String),
}

impl CronSchedule {
    pub fn parse(expr: &str, timezone: Option<&str>) -> Result<CronSchedule, ScheduleError> {
        let fields = expr.split_whitespace().count();
        if fields != 6 {
            return Err(ScheduleError::Cron {
                expr: expr.to_string(),
                reason: format!("found {fields} fields"),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError::Cron {
                expr: expr.to_string(),
                reason: e.to_string(),
            })?;
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::TimeZone(name.to_string()))?,
        };
        Ok(CronSchedule {
            cron,
            tz,
            expr: expr.to_string(),
        })
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The first fire instant strictly after `after`, or `None` if the expression never
    /// matches again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Walk the matching wall-clock times in a zone without transitions (UTC stands in
        // for "naive local"), then place each on the real zone's timeline.
        let mut wall = after.with_timezone(&self.tz).naive_local();
        // An instant inside the repeated hour maps back to the earlier wall time range, so
        // start an hour early; anything at or before `after` is skipped below.
        wall -= Duration::hours(1);
        // Bound the search: a valid expression matches within a few years (Feb 29 needs 4).
        for _ in 0..100_000 {
            let next = self
                .cron
                .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
                .ok()?
                .naive_utc();
            wall = next;
            let instant = match self.tz.from_local_datetime(&next) {
                LocalResult::Single(t) => t.with_timezone(&Utc),
                // Twice on the fall-back night: the first occurrence only.
                LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
                // In the spring-forward gap: the first instant after it.
                LocalResult::None => self.after_gap(next)?,
            };
            if instant > after {
                return Some(instant);
            }
        }
        None
    }

    /// The instant a daylight-saving gap containing `wall` ends (e.g. 03:00 local).
    fn after_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        // Gaps are whole minutes (at most a few hours) in every zone in use.
        let start = wall.with_second(0)?;
        (1..=4 * 60).find_map(|m| {
            self.tz
                .from_local_datetime(&(start + Duration::minutes(m)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chicago(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr, Some("America/Chicago")).unwrap()
    }

    fn local(s: &CronSchedule, t: DateTime<Utc>) -> String {
        t.with_timezone(&s.timezone())
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// Successive fire times from `from` (a UTC instant).
    fn fires(s: &CronSchedule, from: &str, n: usize) -> Vec<String> {
        let mut t: DateTime<Utc> = from.parse().unwrap();
        (0..n)
            .map(|_| {
                t = s.next_after(t).unwrap();
                local(s, t)
            })
            .collect()
    }

    #[test]
    fn daily_two_am_stays_at_two_local_across_both_changes() {
        let s = chicago("0 0 2 * * *");
        assert_eq!(
            fires(&s, "2025-03-07T12:00:00Z", 4),
            [
                "2025-03-08 02:00:00 CST",
                // 02:00 does not exist on 9 March: once, at the end of the gap.
                "2025-03-09 03:00:00 CDT",
                "2025-03-10 02:00:00 CDT",
                "2025-03-11 02:00:00 CDT",
            ]
        );
        assert_eq!(
            fires(&s, "2025-10-31T12:00:00Z", 4),
            [
                "2025-11-01 02:00:00 CDT",
                "2025-11-02 02:00:00 CST",
                "2025-11-03 02:00:00 CST",
                "2025-11-04 02:00:00 CST",
            ]
        );
        // July and January: 02:00 local both times, so 07:00 and 08:00 UTC.
        let july = s
            .next_after("2025-07-15T12:00:00Z".parse().unwrap())
            .unwrap();
        let january = s
            .next_after("2026-01-15T12:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(july.to_rfc3339(), "2025-07-16T07:00:00+00:00");
        assert_eq!(january.to_rfc3339(), "2026-01-16T08:00:00+00:00");
    }

    #[test]
    fn a_repeated_wall_time_fires_once_not_twice() {
        let s = chicago("0 30 1 * * *");
        assert_eq!(
            fires(&s, "2025-11-01T12:00:00Z", 3),
            [
                "2025-11-02 01:30:00 CDT",
                "2025-11-03 01:30:00 CST",
                "2025-11-04 01:30:00 CST",
            ]
        );
        // Asked from inside the repeated hour (01:10 CST, after the first 01:30 fired):
        // the second 01:30 is not a new firing.
        let second_pass: DateTime<Utc> = "2025-11-02T07:10:00Z".parse().unwrap();
        assert_eq!(
            local(&s, s.next_after(second_pass).unwrap()),
            "2025-11-03 01:30:00 CST"
        );
        // Asked from just before the first occurrence: it comes next.
        let before: DateTime<Utc> = "2025-11-02T06:20:00Z".parse().unwrap();
        assert_eq!(
            local(&s, s.next_after(before).unwrap()),
            "2025-11-02 01:30:00 CDT"
        );
    }

    #[test]
    fn a_time_inside_the_gap_fires_at_the_gap_end_once() {
        let s = chicago("0 30 2 * * *");
        assert_eq!(
            fires(&s, "2025-03-08T12:00:00Z", 2),
            ["2025-03-09 03:00:00 CDT", "2025-03-10 02:30:00 CDT"]
        );
        // Every 15 minutes through the night: the gap collapses to one firing at 03:00.
        let s = chicago("0 */15 1-3 * * *");
        let got = fires(&s, "2025-03-09T07:40:00Z", 4);
        assert_eq!(
            got,
            [
                "2025-03-09 01:45:00 CST",
                "2025-03-09 03:00:00 CDT",
                "2025-03-09 03:15:00 CDT",
                "2025-03-09 03:30:00 CDT",
            ]
        );
    }

    #[test]
    fn seconds_schedules_and_utc_default() {
        let s = CronSchedule::parse("*/2 * * * * *", None).unwrap();
        let t: DateTime<Utc> = "2025-01-01T00:00:01Z".parse().unwrap();
        assert_eq!(
            s.next_after(t).unwrap().to_rfc3339(),
            "2025-01-01T00:00:02+00:00"
        );
        assert_eq!(
            s.next_after(s.next_after(t).unwrap()).unwrap().to_rfc3339(),
            "2025-01-01T00:00:04+00:00"
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(matches!(
            CronSchedule::parse("0 2 * * *", None),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            CronSchedule::parse("0 0 25 * * *", None),
            Err(ScheduleError::Cron { .. })
        ));
        assert_eq!(
            CronSchedule::parse("0 0 2 * * *", Some("Mars/Olympus")).unwrap_err(),
            ScheduleError::TimeZone("Mars/Olympus".into())
        );
    }
}
