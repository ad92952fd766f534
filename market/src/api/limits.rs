//! Token-bucket rate limits per key (a maker's address, a client's IP).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A rate: `per_second` requests sustained, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held.
    pub burst: f64,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Self = Self {
        per_second: f64::INFINITY,
        burst: f64::INFINITY,
    };
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets per key; idle full buckets are dropped when there are many.
#[derive(Debug)]
pub(crate) struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// Keys kept before full buckets are swept.
const SWEEP_AT: usize = 100_000;

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`; `Err(wait)` when there is none, with how
    /// long until there is.
    pub(crate) fn take(&self, key: &K) -> Result<(), Duration> {
        if self.rate.per_second.is_infinite() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            let rate = self.rate;
            buckets.retain(|_, b| refill(b, now, rate) < rate.burst);
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.rate.burst,
            at: now,
        });
        let tokens = refill(b, now, self.rate);
        if tokens >= 1.0 {
            b.tokens = tokens - 1.0;
            Ok(())
        } else {
            b.tokens = tokens;
            Err(Duration::from_secs_f64(
                ((1.0 - tokens) / self.rate.per_second).max(0.001),
            ))
        }
    }
}

fn refill(b: &mut Bucket, now: Instant, rate: Rate) -> f64 {
    let elapsed = now.duration_since(b.at).as_secs_f64();
    b.at = now;
    (b.tokens + elapsed * rate.per_second).min(rate.burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let l = Limiter::new(Rate {
            per_second: 10.0,
            burst: 3.0,
        });
        for _ in 0..3 {
            l.take(&1).unwrap();
        }
        let wait = l.take(&1).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        l.take(&2).unwrap(); // another key has its own bucket
        std::thread::sleep(Duration::from_millis(120));
        l.take(&1).unwrap();
    }
}
