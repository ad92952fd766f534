//! A timer queue: items due at a time, taken out soonest first.
//!
//! It gives exactly what a `BinaryHeap<Reverse<(Time, T)>>` gives (the same
//! items in the same order, ties by `T`), at a fraction of the cost when, as
//! in a market, most items are due a while after they are added: items go
//! unsorted into buckets of 1,024 ms, and a bucket is sorted once, when its
//! time comes. Adding is a push onto a vector; taking is a pop.

use std::collections::BTreeMap;

use super::types::Time;

/// Bucket width: `2^SHIFT` ms.
const SHIFT: u32 = 10;

#[derive(Debug, Clone)]
pub(super) struct Timers<T> {
    /// The earliest bucket, sorted latest first (the next item is last).
    current: Vec<(Time, T)>,
    /// Which bucket `current` holds, while it is not empty.
    bucket: u64,
    /// The later buckets, by `time >> SHIFT`, unsorted.
    later: BTreeMap<u64, Vec<(Time, T)>>,
    /// Emptied buckets, kept for their allocations.
    spare: Vec<Vec<(Time, T)>>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Self {
            current: Vec::new(),
            bucket: 0,
            later: BTreeMap::new(),
            spare: Vec::new(),
        }
    }
}

impl<T: Ord> Timers<T> {
    /// Adds `item`, due at `when`.
    pub(super) fn push(&mut self, when: Time, item: T) {
        let bucket = when >> SHIFT;
        if !self.current.is_empty() && bucket <= self.bucket {
            // Due within the bucket already open (or earlier): keep it sorted.
            let item = (when, item);
            let at = self.current.partition_point(|e| *e > item);
            self.current.insert(at, item);
            return;
        }
        self.later
            .entry(bucket)
            .or_insert_with(|| self.spare.pop().unwrap_or_default())
            .push((when, item));
    }

    /// Takes out the soonest item due at or before `now`.
    pub(super) fn pop_due(&mut self, now: Time) -> Option<(Time, T)> {
        loop {
            if let Some((when, _)) = self.current.last() {
                if *when > now {
                    return None;
                }
                return self.current.pop();
            }
            // The next bucket, once its first millisecond has come.
            let (&bucket, _) = self.later.first_key_value()?;
            if bucket > now >> SHIFT {
                return None;
            }
            let (bucket, mut next) = self.later.pop_first()?;
            next.sort_unstable_by(|a, b| b.cmp(a));
            let done = std::mem::replace(&mut self.current, next);
            if self.spare.len() < 64 {
                self.spare.push(done);
            }
            self.bucket = bucket;
        }
    }

    /// How many items are queued.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.current.len() + self.later.values().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Pushes and pops at a clock that mostly moves forward (sometimes
        /// back) give what a binary heap gives.
        #[test]
        fn timers_pop_what_a_heap_pops(
            ops in proptest::collection::vec((0u64..5_000, 0u64..4_000, 0u8..8, 0u16..50), 1..400),
        ) {
            let mut t = Timers::default();
            let mut heap = BinaryHeap::new();
            let mut now = 0u64;
            for (step, delay, id, back) in ops {
                now = (now + step % 700).saturating_sub(u64::from(back / 45) * 900);
                let when = if id == 0 { now.saturating_sub(delay) } else { now + delay };
                t.push(when, id);
                heap.push(Reverse((when, id)));
                loop {
                    let due = heap.peek().is_some_and(|Reverse((w, _))| *w <= now);
                    let want = if due { heap.pop().map(|Reverse(x)| x) } else { None };
                    let got = t.pop_due(now);
                    prop_assert_eq!(got, want);
                    if got.is_none() { break; }
                }
                prop_assert_eq!(t.len(), heap.len());
            }
            let mut rest = Vec::new();
            while let Some(x) = t.pop_due(u64::MAX) { rest.push(x); }
            let mut want = Vec::new();
            while let Some(Reverse(x)) = heap.pop() { want.push(x); }
            prop_assert_eq!(rest, want);
        }
    }
}
