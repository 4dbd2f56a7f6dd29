//! The last minute of a backend's calls, in one-second buckets of atomics: what the status page
//! shows beside the counters since start (calls, errors, time to the answer's headers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SECONDS: usize = 60;

#[derive(Default)]
struct Bucket {
    /// The second (since the Unix epoch) the counts are of.
    second: AtomicU64,
    calls: AtomicU64,
    errors: AtomicU64,
    header_micros: AtomicU64,
}

/// A minute of calls; recording takes no lock. A bucket is emptied by the first call of a new
/// second that lands on it, so two calls racing at a second's turn may lose one count: a
/// status page's figure, not an account.
pub struct Recent {
    buckets: [Bucket; SECONDS],
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            buckets: std::array::from_fn(|_| Bucket::default()),
        }
    }
}

/// What a backend did in the last minute.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Minute {
    pub calls: u64,
    /// 429s, 5xx and calls with no answer.
    pub errors: u64,
    /// Mean time to the response headers, in milliseconds.
    pub mean_header_ms: Option<f64>,
    /// Calls per second, oldest second first (for the page's bars).
    pub per_second: Vec<u64>,
}

fn now_s() -> u64 {
    crate::limits::now_ms() / 1000
}

impl Recent {
    pub fn record(&self, took: Duration, failed: bool) {
        self.record_at(now_s(), took, failed);
    }

    fn record_at(&self, second: u64, took: Duration, failed: bool) {
        let bucket = &self.buckets[(second % SECONDS as u64) as usize];
        let seen = bucket.second.load(Ordering::Acquire);
        if seen != second
            && bucket
                .second
                .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.errors.store(0, Ordering::Relaxed);
            bucket.header_micros.store(0, Ordering::Relaxed);
        }
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        bucket
            .errors
            .fetch_add(u64::from(failed), Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        bucket.header_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn minute(&self) -> Minute {
        self.minute_at(now_s())
    }

    fn minute_at(&self, now: u64) -> Minute {
        let mut minute = Minute {
            per_second: vec![0; SECONDS],
            ..Minute::default()
        };
        let mut micros = 0;
        for (age, slot) in (0..SECONDS as u64).zip((0..SECONDS).rev()) {
            let Some(second) = now.checked_sub(age) else {
                break;
            };
            let bucket = &self.buckets[(second % SECONDS as u64) as usize];
            if bucket.second.load(Ordering::Acquire) != second {
                continue;
            }
            let calls = bucket.calls.load(Ordering::Relaxed);
            minute.calls += calls;
            minute.errors += bucket.errors.load(Ordering::Relaxed);
            micros += bucket.header_micros.load(Ordering::Relaxed);
            minute.per_second[slot] = calls;
        }
        if minute.calls > 0 {
            minute.mean_header_ms = Some(micros as f64 / minute.calls as f64 / 1000.0);
        }
        minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_keeps_the_last_sixty_seconds() {
        let recent = Recent::default();
        let ms = Duration::from_millis;
        recent.record_at(1000, ms(10), false);
        recent.record_at(1000, ms(30), true);
        recent.record_at(1059, ms(20), false);
        let minute = recent.minute_at(1059);
        assert_eq!((minute.calls, minute.errors), (3, 1));
        assert_eq!(minute.mean_header_ms, Some(20.0));
        assert_eq!(minute.per_second[0], 2, "the oldest second first");
        assert_eq!(minute.per_second[59], 1);
        // A minute later the first second has left the window, and its bucket is reused.
        recent.record_at(1060, ms(40), false);
        let minute = recent.minute_at(1060);
        assert_eq!((minute.calls, minute.errors), (2, 0));
        assert_eq!(recent.minute_at(1200).calls, 0);
    }
}
