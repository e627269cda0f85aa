//! Which ticks of a due schedule fire now: a pure function of the
//! expression, the catch-up policy, the schedule's cursor and the
//! database clock, so the store applies it inside its transaction and the
//! tests check it without a database.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{CatchUp, ON_TIME};
use crate::error::DurableError;

/// At most this many ticks fire in one transaction (a caught-up backlog
/// of [`CatchUp::All`] is worked off over several).
pub(crate) const MAX_FIRE: usize = 100;

/// A parsed expression in its time zone.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    cron: cron::Schedule,
    zone: Tz,
}

/// Longest expression accepted: a real one is a few dozen characters.
const MAX_CRON_LEN: usize = 256;

impl Compiled {
    /// Parse `cron` in time zone `zone`.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] naming the expression or the zone.
    pub(crate) fn new(cron: &str, zone: &str) -> Result<Self, DurableError> {
        if cron.len() > MAX_CRON_LEN {
            return Err(DurableError::InvalidInput(format!(
                "cron expression of {} bytes: at most {MAX_CRON_LEN}",
                cron.len()
            )));
        }
        let parsed = cron::Schedule::from_str(cron).map_err(|e| {
            DurableError::InvalidInput(format!(
                "cron expression {cron:?}: {e} (six or seven fields: sec min hour day-of-month month day-of-week [year])"
            ))
        })?;
        let zone = Tz::from_str(zone).map_err(|_| {
            DurableError::InvalidInput(format!(
                "time zone {zone:?} is not an IANA time zone name (like \"Europe/Berlin\" or \"UTC\")"
            ))
        })?;
        Ok(Self { cron: parsed, zone })
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&self.zone))
    }

    /// Ticks strictly after `ms`, in epoch ms, oldest first.
    pub(crate) fn ticks_after(&self, ms: i64) -> impl Iterator<Item = i64> + '_ {
        self.at(ms)
            .into_iter()
            .flat_map(|t| self.cron.after_owned(t))
            .map(|t| t.timestamp_millis())
    }

    /// Ticks strictly before `ms`, latest first.
    fn ticks_before(&self, ms: i64) -> impl Iterator<Item = i64> + '_ {
        self.at(ms)
            .into_iter()
            .flat_map(|t| self.cron.after_owned(t).rev())
            .map(|t| t.timestamp_millis())
    }

    /// The first tick strictly after `ms`.
    pub(crate) fn next_after(&self, ms: i64) -> Option<i64> {
        self.ticks_after(ms).next()
    }
}

/// What one firing does: the ticks to start, oldest first, and where the
/// cursor goes (the earliest tick not fired and not dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) ticks: Vec<i64>,
    pub(crate) next: Option<i64>,
}

/// The firing of a schedule whose cursor is `next` when the clock reads
/// `now`: the ticks in `[next, now]` that the policy keeps. Ticks older
/// than [`ON_TIME`] are missed; the policy decides which of those fire.
pub(crate) fn plan(compiled: &Compiled, catch_up: CatchUp, next: i64, now: i64) -> Plan {
    if next > now {
        return Plan {
            ticks: Vec::new(),
            next: Some(next),
        };
    }
    let on_time_from = now.saturating_sub(i64::try_from(ON_TIME.as_millis()).unwrap_or(i64::MAX));
    // Ticks at or after `next` (the cursor is a tick itself).
    let from = next.saturating_sub(1);
    if catch_up == CatchUp::All {
        let ticks: Vec<i64> = compiled
            .ticks_after(from)
            .take_while(|&t| t <= now)
            .take(MAX_FIRE)
            .collect();
        let last = ticks.last().copied();
        let next = match last {
            // Everything up to the last fired was taken: go on after it.
            Some(last) => compiled.next_after(last),
            None => compiled.next_after(now),
        };
        return Plan { ticks, next };
    }
    let keep = match catch_up {
        CatchUp::Skip | CatchUp::All => 0,
        CatchUp::Once => 1,
        CatchUp::Bounded(n) => (n as usize).min(MAX_FIRE),
    };
    let mut ticks: Vec<i64> = if keep > 0 && next < on_time_from {
        // The latest missed ticks: before `on_time_from`, not before `next`.
        let mut missed: Vec<i64> = compiled
            .ticks_before(on_time_from)
            .take_while(|&t| t >= next)
            .take(keep)
            .collect();
        missed.reverse();
        missed
    } else {
        Vec::new()
    };
    let on_time = compiled
        .ticks_after(from.max(on_time_from.saturating_sub(1)))
        .take_while(|&t| t <= now)
        .take(MAX_FIRE);
    ticks.extend(on_time);
    Plan {
        ticks,
        next: compiled.next_after(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1000;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000;

    fn every_second() -> Compiled {
        Compiled::new("* * * * * *", "UTC").unwrap()
    }

    #[test]
    fn nothing_fires_before_the_cursor() {
        let p = plan(&every_second(), CatchUp::All, T0 + 5 * SEC, T0);
        assert_eq!(
            p,
            Plan {
                ticks: vec![],
                next: Some(T0 + 5 * SEC)
            }
        );
    }

    #[test]
    fn on_time_ticks_fire_under_every_policy() {
        for policy in [
            CatchUp::Skip,
            CatchUp::Once,
            CatchUp::All,
            CatchUp::Bounded(2),
        ] {
            let p = plan(&every_second(), policy, T0, T0 + 2 * SEC + 500);
            assert_eq!(p.ticks, vec![T0, T0 + SEC, T0 + 2 * SEC], "{policy:?}");
            assert_eq!(p.next, Some(T0 + 3 * SEC), "{policy:?}");
        }
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        // Down for a minute: the cursor is 60 s behind.
        let now = T0 + 60 * SEC;
        let on_time: Vec<i64> = (50..=60).map(|s| T0 + s * SEC).collect();
        let skip = plan(&every_second(), CatchUp::Skip, T0, now);
        assert_eq!(skip.ticks, on_time);
        let once = plan(&every_second(), CatchUp::Once, T0, now);
        assert_eq!(once.ticks[0], T0 + 49 * SEC);
        assert_eq!(&once.ticks[1..], &on_time[..]);
        let bounded = plan(&every_second(), CatchUp::Bounded(3), T0, now);
        assert_eq!(
            &bounded.ticks[..3],
            &[T0 + 47 * SEC, T0 + 48 * SEC, T0 + 49 * SEC]
        );
        assert_eq!(&bounded.ticks[3..], &on_time[..]);
        let all = plan(&every_second(), CatchUp::All, T0, now);
        assert_eq!(
            all.ticks,
            (0..=60).map(|s| T0 + s * SEC).collect::<Vec<_>>()
        );
        for p in [skip, once, bounded, all] {
            assert_eq!(p.next, Some(now + SEC));
        }
    }

    #[test]
    fn a_long_backlog_is_caught_up_in_batches() {
        let now = T0 + 1000 * SEC;
        let first = plan(&every_second(), CatchUp::All, T0, now);
        assert_eq!(first.ticks.len(), MAX_FIRE);
        assert_eq!(first.next, Some(T0 + MAX_FIRE as i64 * SEC));
        let mut cursor = first.next.unwrap();
        let mut fired = first.ticks.len();
        while cursor <= now {
            let p = plan(&every_second(), CatchUp::All, cursor, now);
            fired += p.ticks.len();
            cursor = p.next.unwrap();
        }
        assert_eq!(fired, 1001);
        assert_eq!(cursor, now + SEC);
    }

    #[test]
    fn a_bound_larger_than_the_backlog_takes_all_of_it() {
        let now = T0 + 20 * SEC;
        let p = plan(&every_second(), CatchUp::Bounded(1000), T0 + 5 * SEC, now);
        assert_eq!(p.ticks, (5..=20).map(|s| T0 + s * SEC).collect::<Vec<_>>());
    }

    #[test]
    fn an_expression_without_future_ticks_ends() {
        let past = Compiled::new("0 0 0 1 1 * 2020", "UTC").unwrap();
        assert_eq!(past.next_after(T0), None);
        let p = plan(&past, CatchUp::All, T0 - SEC, T0);
        assert_eq!(
            p,
            Plan {
                ticks: vec![],
                next: None
            }
        );
    }

    #[test]
    fn ticks_follow_the_wall_clock_of_the_zone() {
        // 01:30 every day in New York: on 2026-11-01 the clocks go back at
        // 02:00, so 01:30 happens twice (EDT, then EST).
        let ny = Compiled::new("0 30 1 * * *", "America/New_York").unwrap();
        let start = "2026-10-31T12:00:00Z"
            .parse::<DateTime<Utc>>()
            .unwrap()
            .timestamp_millis();
        let ticks: Vec<String> = ny
            .ticks_after(start)
            .take(3)
            .map(|ms| Utc.timestamp_millis_opt(ms).unwrap().to_rfc3339())
            .collect();
        assert_eq!(
            ticks,
            [
                "2026-11-01T05:30:00+00:00",
                "2026-11-01T06:30:00+00:00",
                "2026-11-02T06:30:00+00:00"
            ]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_typed_errors() {
        for (cron, zone) in [
            ("", "UTC"),
            ("* * * * *", "UTC"),
            ("61 * * * * *", "UTC"),
            ("* * * * * * * *", "UTC"),
            ("'; DROP TABLE durable_schedule; --", "UTC"),
            ("* * * * * *", "Mars/Olympus"),
            ("* * * * * *", ""),
            ("* * * * * *", "UTC\0"),
        ] {
            let err = Compiled::new(cron, zone).unwrap_err();
            assert!(
                matches!(err, DurableError::InvalidInput(_)),
                "{cron:?} {zone:?}: {err}"
            );
        }
        let long = "1,".repeat(200) + "1 * * * * *";
        assert!(matches!(
            Compiled::new(&long, "UTC"),
            Err(DurableError::InvalidInput(_))
        ));
    }

    /// Fuzz the expression input: random mixes of cron tokens, digits and
    /// stray bytes either parse (and then yield ticks without panicking)
    /// or are refused with a typed error.
    #[test]
    fn random_expressions_never_panic() {
        const TOKENS: &[&str] = &[
            "*", "?", "/", "-", ",", "L", "W", "#", "0", "1", "5", "7", "12", "31", "59", "60",
            "99", "2026", "MON", "Fri", "JAN", "dec", " ", " ", " ", "\t", "@", "\u{0}", "é", "-1",
            "*/0",
        ];
        const FIELDS: &[&str] = &["*", "0", "1", "*/5", "1-5", "0,30", "2/3", "*/7"];
        let mut state: u64 = 0x5EED_C10C;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let (mut parsed, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let fields = 5 + next() % 4;
            let mut text = String::new();
            for f in 0..fields {
                if f > 0 {
                    text.push(' ');
                }
                // Mostly well-formed fields, so that many expressions parse
                // and their ticks get computed; the rest is noise.
                if next() % 8 < 7 {
                    text.push_str(FIELDS[next() % FIELDS.len()]);
                } else {
                    for _ in 0..1 + next() % 3 {
                        text.push_str(TOKENS[next() % TOKENS.len()]);
                    }
                }
            }
            match Compiled::new(&text, "UTC") {
                Ok(c) => {
                    parsed += 1;
                    let _ = c.ticks_after(T0).take(3).count();
                    let _ = plan(&c, CatchUp::Bounded(2), T0, T0 + 30 * SEC);
                }
                Err(DurableError::InvalidInput(_)) => refused += 1,
                Err(other) => panic!("{text:?}: untyped error {other}"),
            }
        }
        assert!(
            parsed > 0 && refused > 0,
            "parsed {parsed}, refused {refused}"
        );
    }
}
