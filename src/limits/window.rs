//! The two kinds of window a limit is counted in.
//!
//! A per-minute limit is a sliding window of 60 one-second buckets: what was spent in the last
//! 60 seconds, never more than the limit in any 60 seconds, and a refusal can say exactly when
//! enough will have left the window (to the second, which is the bucket size). A daily budget is
//! a calendar day in UTC, since budgets are planned per day.
//!
//! Times are wall-clock milliseconds since the Unix epoch, so that replicas sharing state agree
//! on them; a clock that steps back leaves the window as it was.

pub const MINUTE_S: u64 = 60;
const DAY_MS: u64 = 86_400_000;

/// A sliding window of [`MINUTE_S`] one-second buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minute {
    pub limit: u64,
    buckets: [u64; MINUTE_S as usize],
    /// The second of the newest bucket.
    newest: u64,
    used: u64,
}

impl Minute {
    pub fn new(limit: u64) -> Minute {
        Minute {
            limit,
            buckets: [0; MINUTE_S as usize],
            newest: 0,
            used: 0,
        }
    }

    /// Moves the window to second `now`, emptying the buckets that fall out of it.
    fn advance(&mut self, now: u64) {
        if now <= self.newest {
            return;
        }
        if now - self.newest >= MINUTE_S {
            self.buckets = [0; MINUTE_S as usize];
            self.used = 0;
        } else {
            for second in self.newest + 1..=now {
                let slot = &mut self.buckets[(second % MINUTE_S) as usize];
                self.used -= *slot;
                *slot = 0;
            }
        }
        self.newest = now;
    }

    pub fn remaining(&mut self, now_ms: u64) -> u64 {
        self.advance(now_ms / 1000);
        self.limit.saturating_sub(self.used)
    }

    /// `None` when `cost` fits now; else how long until it will, in milliseconds. A cost above
    /// the limit fits an empty window.
    pub fn wait(&mut self, now_ms: u64, cost: u64) -> Option<u64> {
        let now = now_ms / 1000;
        self.advance(now);
        let cost = cost.min(self.limit);
        if self.used + cost <= self.limit {
            return None;
        }
        let mut freed = 0;
        let oldest = (now + 1).saturating_sub(MINUTE_S);
        for second in oldest..=now {
            freed += self.buckets[(second % MINUTE_S) as usize];
            if self.used - freed + cost <= self.limit {
                return Some(((second + MINUTE_S) * 1000).saturating_sub(now_ms));
            }
        }
        Some(((now + MINUTE_S) * 1000).saturating_sub(now_ms))
    }

    /// Counts `cost` in the current second (call [`Minute::wait`] first).
    pub fn add(&mut self, now_ms: u64, cost: u64) {
        let now = now_ms / 1000;
        self.advance(now);
        let cost = cost.min(self.limit);
        self.buckets[(now % MINUTE_S) as usize] += cost;
        self.used += cost;
    }

    /// Corrects what second `at` counted by `delta`, if that second is still in the window;
    /// else counts what was spent beyond it now.
    pub fn settle(&mut self, now_ms: u64, at: u64, delta: i64) {
        let now = now_ms / 1000;
        self.advance(now);
        if at + MINUTE_S > now && at <= now {
            let slot = &mut self.buckets[(at % MINUTE_S) as usize];
            let before = *slot;
            *slot = before.saturating_add_signed(delta);
            self.used = self.used - before + *slot;
        } else if delta > 0 {
            self.buckets[(now % MINUTE_S) as usize] += delta.unsigned_abs();
            self.used += delta.unsigned_abs();
        }
    }
}

/// A budget per calendar day (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub limit: u64,
    day: u64,
    used: u64,
}

impl Day {
    pub fn new(limit: u64) -> Day {
        Day {
            limit,
            day: 0,
            used: 0,
        }
    }

    fn advance(&mut self, now_ms: u64) {
        let day = now_ms / DAY_MS;
        if day > self.day {
            self.day = day;
            self.used = 0;
        }
    }

    pub fn remaining(&mut self, now_ms: u64) -> u64 {
        self.advance(now_ms);
        self.limit.saturating_sub(self.used)
    }

    /// `None` when `cost` fits today; else milliseconds until tomorrow (UTC).
    pub fn wait(&mut self, now_ms: u64, cost: u64) -> Option<u64> {
        self.advance(now_ms);
        if self.used + cost.min(self.limit) <= self.limit {
            None
        } else {
            Some((self.day + 1) * DAY_MS - now_ms)
        }
    }

    pub fn add(&mut self, now_ms: u64, cost: u64) {
        self.advance(now_ms);
        self.used += cost.min(self.limit);
    }

    /// Corrects what day `day` counted by `delta`; a call that ran past midnight counts what it
    /// spent beyond its reservation today.
    pub fn settle(&mut self, now_ms: u64, day: u64, delta: i64) {
        self.advance(now_ms);
        if day == self.day {
            self.used = self.used.saturating_add_signed(delta);
        } else if delta > 0 {
            self.used += delta.unsigned_abs();
        }
    }

    /// The day `now_ms` falls in.
    pub fn of(now_ms: u64) -> u64 {
        now_ms / DAY_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    #[test]
    fn a_minute_frees_what_was_spent_60_seconds_later() {
        let mut w = Minute::new(1000);
        assert_eq!(w.wait(T0, 600), None);
        w.add(T0, 600);
        w.add(T0 + 10_000, 300);
        assert_eq!(w.remaining(T0 + 10_000), 100);
        // 200 more must wait for the first 600 to leave: 60 s after they came, to the second.
        assert_eq!(w.wait(T0 + 10_500, 200), Some(49_500));
        // 400 more fits once both have left.
        assert_eq!(w.wait(T0 + 10_500, 1000), Some(59_500));
        assert_eq!(w.remaining(T0 + 60_000), 700);
        assert_eq!(w.remaining(T0 + 70_000), 1000);
        // Idle for longer than the window.
        w.add(T0 + 70_000, 5);
        assert_eq!(w.remaining(T0 + 500_000), 1000);
    }

    #[test]
    fn settling_corrects_the_second_that_reserved() {
        let mut w = Minute::new(1000);
        w.add(T0, 800);
        w.settle(T0 + 2_000, T0 / 1000, -700);
        assert_eq!(w.remaining(T0 + 2_000), 900);
        w.settle(T0 + 3_000, T0 / 1000, 50);
        assert_eq!(w.remaining(T0 + 3_000), 850);
        // Settled after its second left the window: only what was spent beyond counts, now.
        w.settle(T0 + 90_000, T0 / 1000, 40);
        assert_eq!(w.remaining(T0 + 90_000), 960);
        w.settle(T0 + 91_000, T0 / 1000, -40);
        assert_eq!(w.remaining(T0 + 91_000), 960);
    }

    #[test]
    fn a_cost_over_the_limit_waits_for_an_empty_window() {
        let mut w = Minute::new(100);
        w.add(T0, 1);
        assert_eq!(w.wait(T0, 5000), Some(60_000));
        assert_eq!(w.wait(T0 + 60_000, 5000), None);
    }

    #[test]
    fn a_day_resets_at_midnight_utc() {
        let mut d = Day::new(10_000);
        let midnight = (T0 / DAY_MS + 1) * DAY_MS;
        d.add(midnight - 5_000, 9_000);
        assert_eq!(d.wait(midnight - 4_000, 2_000), Some(4_000));
        assert_eq!(d.wait(midnight, 2_000), None);
        assert_eq!(d.remaining(midnight), 10_000);
    }
}
