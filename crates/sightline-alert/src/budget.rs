//! Error-budget arithmetic over per-minute event counts: the SLI over a window, the budget
//! in minutes (total, used, remaining), burn rates over the alerting windows.
//!
//! Pure functions of a [`Buckets`] map and a clock, so every figure can be checked against a
//! hand computation (the tests below are those computations). See `docs/alerting.md` for the
//! definitions; in short, with objective `o` and window `W` minutes:
//! `total_minutes = W × (1 − o)`, occurrences use `used = (bad / total) / (1 − o)` of it,
//! timeslices use one minute per bad minute, and a burn rate is an error ratio over `1 − o`.
//!
//! Invariant: a bucket's key is the minute's start in ms since the epoch (a multiple of
//! 60,000) and its counts satisfy `0 ≤ good ≤ total`.

use std::collections::BTreeMap;

use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

pub const MINUTE_MS: i64 = 60_000;

/// Slack in comparing a slice's ratio with the objective: 999 of 1,000 meets 99.9% even
/// though `1 - 1/1000 < 99.9 / 100` in floating point.
const EPSILON: f64 = 1e-9;

/// The burn-rate windows reported and alerted on, as `(label, minutes)`.
pub const BURN_WINDOWS: [(&str, i64); 7] = [
    ("5m", 5),
    ("30m", 30),
    ("1h", 60),
    ("2h", 120),
    ("6h", 360),
    ("1d", 1_440),
    ("3d", 4_320),
];

/// Good and total events of one minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub good: f64,
    pub total: f64,
}

impl Count {
    pub fn add(&mut self, other: Count) {
        self.good += other.good;
        self.total += other.total;
    }

    /// Bad events, within `[0, total]` (a minute can see an error counter move before its
    /// total does).
    pub fn bad(&self) -> f64 {
        (self.total - self.good).clamp(0.0, self.total.max(0.0))
    }

    /// The good share, within `[0, 1]`; `None` without events.
    pub fn ratio(&self) -> Option<f64> {
        (self.total > 0.0).then(|| 1.0 - self.bad() / self.total)
    }
}

/// Counts per minute start (ms).
pub type Buckets = BTreeMap<i64, Count>;

/// The minute that holds `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// An SLO's compliance window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last `minutes`, ending now.
    Rolling { minutes: i64 },
    /// The current calendar month, UTC.
    CalendarMonth,
}

impl Window {
    /// `[start_ms, end_ms)` of the window holding `now_ms`, and its length in minutes (a
    /// calendar month counts all its days, elapsed or not).
    pub fn range(&self, now_ms: i64) -> (i64, i64, i64) {
        match *self {
            Window::Rolling { minutes } => {
                let end = minute_of(now_ms) + MINUTE_MS;
                (end - minutes * MINUTE_MS, end, minutes)
            }
            Window::CalendarMonth => {
                let now = Utc
                    .timestamp_millis_opt(now_ms)
                    .single()
                    .unwrap_or_else(Utc::now);
                let start = month_start_ms(now.year(), now.month());
                let (ny, nm) = if now.month() == 12 {
                    (now.year() + 1, 1)
                } else {
                    (now.year(), now.month() + 1)
                };
                let end = month_start_ms(ny, nm);
                (start, end, (end - start) / MINUTE_MS)
            }
        }
    }

    /// The longest span of history this window can need, in minutes (for pruning).
    pub fn max_minutes(&self) -> i64 {
        match *self {
            Window::Rolling { minutes } => minutes,
            Window::CalendarMonth => 31 * 1_440,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Window::Rolling { minutes } if minutes % 1_440 == 0 => format!("{}d", minutes / 1_440),
            Window::Rolling { minutes } if minutes % 60 == 0 => format!("{}h", minutes / 60),
            Window::Rolling { minutes } => format!("{minutes}m"),
            Window::CalendarMonth => "calendar month".into(),
        }
    }
}

fn month_start_ms(year: i32, month: u32) -> i64 {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// How bad events spend the budget (OpenSLO's `budgetingMethod`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budgeting {
    /// Every event counts: the SLI is good events over all events.
    #[default]
    Occurrences,
    /// One-minute slices: a slice is good when its own ratio meets the objective, and each
    /// bad slice spends one minute of budget.
    Timeslices,
}

/// What one SLO reports at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// Good over total in the window, as a ratio; `None` without events.
    pub sli: Option<f64>,
    pub events: Count,
    pub total_minutes: f64,
    pub used_minutes: f64,
    pub remaining_minutes: f64,
    /// Share of the budget left, as a ratio (negative once overspent).
    pub remaining_ratio: f64,
    pub exhausted: bool,
    /// Burn rate per [`BURN_WINDOWS`] label; `None` without events in that window.
    pub burn_rates: Vec<(&'static str, Option<f64>)>,
    /// Events per burn window (the low-traffic guard reads them).
    pub window_events: Vec<(&'static str, f64)>,
}

impl Status {
    pub fn burn(&self, window: &str) -> Option<f64> {
        self.burn_rates
            .iter()
            .find(|(w, _)| *w == window)
            .and_then(|(_, b)| *b)
    }

    pub fn events_in(&self, window: &str) -> f64 {
        self.window_events
            .iter()
            .find(|(w, _)| *w == window)
            .map_or(0.0, |(_, n)| *n)
    }

    /// Minutes until the budget is gone if errors go on at `burn` (the budget lasts the
    /// whole window at burn 1); `None` when not burning or already gone.
    pub fn minutes_to_exhaustion(&self, burn: f64, window_minutes: i64) -> Option<f64> {
        if burn <= 0.0 || self.remaining_ratio <= 0.0 {
            return None;
        }
        Some(self.remaining_ratio * window_minutes as f64 / burn)
    }
}

/// The status of an SLO with objective `objective` (a ratio in (0, 1)) at `now_ms`.
pub fn status(
    buckets: &Buckets,
    objective: f64,
    window: Window,
    budgeting: Budgeting,
    now_ms: i64,
) -> Status {
    let allowed = 1.0 - objective;
    let (start, end, window_minutes) = window.range(now_ms);
    let total_minutes = window_minutes as f64 * allowed;
    let in_window = buckets.range(start..end).map(|(_, c)| *c);
    let (sli, events, used_minutes) = match budgeting {
        Budgeting::Occurrences => {
            let mut sum = Count::default();
            in_window.for_each(|c| sum.add(c));
            let sli = sum.ratio();
            let used = sli.map_or(0.0, |s| (1.0 - s) / allowed * total_minutes);
            (sli, sum, used)
        }
        Budgeting::Timeslices => {
            let mut sum = Count::default();
            let (mut slices, mut bad) = (0.0, 0.0);
            for c in in_window {
                let Some(r) = c.ratio() else { continue };
                sum.add(c);
                slices += 1.0;
                if r < objective - EPSILON {
                    bad += 1.0;
                }
            }
            let sli = (slices > 0.0).then(|| (slices - bad) / slices);
            (sli, sum, bad)
        }
    };
    let remaining_minutes = total_minutes - used_minutes;
    let remaining_ratio = if total_minutes > 0.0 {
        remaining_minutes / total_minutes
    } else {
        1.0
    };
    let mut burn_rates = Vec::with_capacity(BURN_WINDOWS.len());
    let mut window_events = Vec::with_capacity(BURN_WINDOWS.len());
    for (label, minutes) in BURN_WINDOWS {
        let from = minute_of(now_ms) - (minutes - 1) * MINUTE_MS;
        let mut sum = Count::default();
        let (mut slices, mut bad_slices) = (0.0, 0.0);
        for (_, c) in buckets.range(from..=minute_of(now_ms)) {
            sum.add(*c);
            if let Some(r) = c.ratio() {
                slices += 1.0;
                if r < objective - EPSILON {
                    bad_slices += 1.0;
                }
            }
        }
        let ratio = match budgeting {
            Budgeting::Occurrences => (sum.total > 0.0).then(|| sum.bad() / sum.total),
            Budgeting::Timeslices => (slices > 0.0).then(|| bad_slices / slices),
        };
        burn_rates.push((label, ratio.map(|r| r / allowed)));
        window_events.push((label, sum.total));
    }
    Status {
        sli,
        events,
        total_minutes,
        used_minutes,
        remaining_minutes,
        remaining_ratio,
        exhausted: used_minutes >= total_minutes,
        burn_rates,
        window_events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000; // 2025-11-24T16:00:00Z, on a minute

    fn thirty_days() -> Window {
        Window::Rolling {
            minutes: 30 * 1_440,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn ninety_nine_nine_over_thirty_days_is_43_2_minutes() {
        let s = status(
            &Buckets::new(),
            0.999,
            thirty_days(),
            Budgeting::Occurrences,
            NOW,
        );
        assert!(close(s.total_minutes, 43.2), "{}", s.total_minutes);
        // No traffic: no SLI, nothing used, no burn.
        assert_eq!(s.sli, None);
        assert_eq!(s.used_minutes, 0.0);
        assert!(close(s.remaining_ratio, 1.0));
        assert!(!s.exhausted);
        assert!(s.burn_rates.iter().all(|(_, b)| b.is_none()));
    }

    #[test]
    fn five_percent_errors_burn_fifty_times_a_99_9_objective() {
        let mut b = Buckets::new();
        for m in 0..10 {
            b.insert(
                NOW - m * MINUTE_MS,
                Count {
                    good: 950.0,
                    total: 1_000.0,
                },
            );
        }
        let s = status(&b, 0.999, thirty_days(), Budgeting::Occurrences, NOW);
        assert!(close(s.sli.expect("sli"), 0.95));
        assert!(close(s.burn("5m").expect("5m"), 50.0));
        assert!(close(s.burn("1h").expect("1h"), 50.0));
        // Bad ratio 0.05 is 50 budgets: 50 × 43.2 minutes used, overspent.
        assert!(close(s.used_minutes, 2_160.0));
        assert!(close(s.remaining_minutes, 43.2 - 2_160.0));
        assert!(close(s.remaining_ratio, -49.0));
        assert!(s.exhausted);
        // The 5m window holds the current minute and the four before it.
        assert!(close(s.events_in("5m"), 5_000.0));
        assert!(close(s.events_in("1h"), 10_000.0));
    }

    #[test]
    fn half_the_budget_used() {
        // 99% objective, 1 bad in 200: the bad ratio 0.005 is half the allowed 0.01.
        let mut b = Buckets::new();
        b.insert(
            NOW,
            Count {
                good: 199.0,
                total: 200.0,
            },
        );
        let w = Window::Rolling { minutes: 1_440 };
        let s = status(&b, 0.99, w, Budgeting::Occurrences, NOW + 30_000);
        assert!(close(s.total_minutes, 14.4));
        assert!(close(s.used_minutes, 7.2));
        assert!(close(s.remaining_minutes, 7.2));
        assert!(close(s.remaining_ratio, 0.5));
        assert!(!s.exhausted);
        // At burn 0.5 the remaining half lasts a whole day.
        assert!(close(
            s.minutes_to_exhaustion(0.5, 1_440).expect("burning"),
            1_440.0
        ));
    }

    #[test]
    fn old_events_leave_the_window_and_the_burn_windows() {
        let mut b = Buckets::new();
        // Bad minute 2 hours ago, good traffic now.
        b.insert(
            NOW - 120 * MINUTE_MS,
            Count {
                good: 0.0,
                total: 10.0,
            },
        );
        b.insert(
            NOW,
            Count {
                good: 10.0,
                total: 10.0,
            },
        );
        let s = status(&b, 0.9, thirty_days(), Budgeting::Occurrences, NOW);
        assert!(close(s.sli.expect("sli"), 0.5));
        assert_eq!(s.burn("1h"), Some(0.0));
        // 2h = the current minute and the 119 before: the bad minute is 120 back.
        assert_eq!(s.burn("2h"), Some(0.0));
        assert!(close(s.burn("6h").expect("6h"), 5.0));
        let w = Window::Rolling { minutes: 60 };
        let s = status(&b, 0.9, w, Budgeting::Occurrences, NOW);
        assert!(close(s.sli.expect("sli"), 1.0));
    }

    #[test]
    fn timeslices_spend_a_minute_per_bad_minute() {
        let mut b = Buckets::new();
        b.insert(
            NOW,
            Count {
                good: 90.0,
                total: 100.0,
            },
        ); // 90% < 99%: bad slice
        b.insert(
            NOW - MINUTE_MS,
            Count {
                good: 100.0,
                total: 100.0,
            },
        );
        b.insert(
            NOW - 2 * MINUTE_MS,
            Count {
                good: 0.0,
                total: 0.0,
            },
        ); // no data: not a slice
        let w = Window::Rolling { minutes: 1_440 };
        let s = status(&b, 0.99, w, Budgeting::Timeslices, NOW);
        assert!(close(s.sli.expect("sli"), 0.5));
        assert!(close(s.used_minutes, 1.0));
        assert!(close(s.total_minutes, 14.4));
        assert!(close(s.remaining_minutes, 13.4));
        // Half the slices of the last 5 minutes are bad: 0.5 / 0.01.
        assert!(close(s.burn("5m").expect("5m"), 50.0));
    }

    #[test]
    fn a_slice_exactly_at_the_objective_is_good() {
        let mut b = Buckets::new();
        b.insert(
            NOW,
            Count {
                good: 999.0,
                total: 1_000.0,
            },
        );
        let s = status(&b, 99.9 / 100.0, thirty_days(), Budgeting::Timeslices, NOW);
        assert_eq!(s.sli, Some(1.0));
        assert_eq!(s.used_minutes, 0.0);
    }

    #[test]
    fn calendar_month_counts_all_its_days() {
        // 2026-02-10: February 2026 has 28 days.
        let feb = Utc
            .with_ymd_and_hms(2026, 2, 10, 12, 0, 0)
            .single()
            .expect("date")
            .timestamp_millis();
        let (start, end, minutes) = Window::CalendarMonth.range(feb);
        assert_eq!(minutes, 28 * 1_440);
        assert_eq!(start, month_start_ms(2026, 2));
        assert_eq!(end, month_start_ms(2026, 3));
        let s = status(
            &Buckets::new(),
            0.999,
            Window::CalendarMonth,
            Budgeting::Occurrences,
            feb,
        );
        assert!(close(s.total_minutes, 40.32));
        // December rolls into the next year.
        let dec = month_start_ms(2026, 12) + 1;
        assert_eq!(Window::CalendarMonth.range(dec).2, 31 * 1_440);
        // Events from January are outside February's window.
        let mut b = Buckets::new();
        b.insert(
            minute_of(start - 1),
            Count {
                good: 0.0,
                total: 5.0,
            },
        );
        let s = status(
            &b,
            0.999,
            Window::CalendarMonth,
            Budgeting::Occurrences,
            feb,
        );
        assert_eq!(s.sli, None);
    }
}
