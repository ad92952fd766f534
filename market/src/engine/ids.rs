//! The order ids the engine remembers, each with a small number.
//!
//! A `HashMap<B256, _>` spends 36 bytes or more a bucket, so with tens of
//! thousands of ids remembered every lookup of an id placed long ago misses
//! the cache. Here the table holds 8-byte entries (32 bits of the id's hash
//! and the number), linear probing with deletion by backward shift, so it
//! stays in cache; the ids themselves sit in a side array that a lookup
//! reads only when the hash bits match. Forgetting an id names its number,
//! so it does not read the side array at all.

use std::hash::BuildHasher;

use alloy_primitives::map::FbBuildHasher;

use super::types::OrderId;

/// An empty table entry.
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub(super) struct Ids {
    /// `(low 32 bits of the hash, number)`; a power of two long, at most half full.
    table: Vec<(u32, u32)>,
    /// Number → id, for the numbers in use.
    ids: Vec<OrderId>,
    /// Numbers free for reuse.
    free: Vec<u32>,
    len: usize,
    hasher: FbBuildHasher<32>,
}

impl Default for Ids {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Ids {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            table: vec![(0, EMPTY); (2 * n).next_power_of_two().max(16)],
            ids: Vec::with_capacity(n),
            free: Vec::new(),
            len: 0,
            hasher: FbBuildHasher::default(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn tag(&self, id: &OrderId) -> u32 {
        self.hasher.hash_one(id) as u32
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    /// The number of a remembered id.
    pub(super) fn get(&self, id: &OrderId) -> Option<u32> {
        let tag = self.tag(id);
        let mask = self.mask();
        let mut i = tag as usize & mask;
        loop {
            let (t, n) = self.table[i];
            if n == EMPTY {
                return None;
            }
            if t == tag && self.ids[n as usize] == *id {
                return Some(n);
            }
            i = (i + 1) & mask;
        }
    }

    /// Remembers `id`, which must not be remembered yet; returns its number.
    pub(super) fn insert_new(&mut self, id: OrderId) -> u32 {
        if 2 * (self.len + 1) > self.table.len() {
            self.grow();
        }
        let n = match self.free.pop() {
            Some(n) => {
                self.ids[n as usize] = id;
                n
            }
            None => {
                self.ids.push(id);
                (self.ids.len() - 1) as u32
            }
        };
        let tag = self.tag(&id);
        self.place(tag, n);
        self.len += 1;
        n
    }

    fn place(&mut self, tag: u32, n: u32) {
        let mask = self.mask();
        let mut i = tag as usize & mask;
        while self.table[i].1 != EMPTY {
            i = (i + 1) & mask;
        }
        self.table[i] = (tag, n);
    }

    fn grow(&mut self) {
        let bigger = vec![(0, EMPTY); 2 * self.table.len()];
        let old = std::mem::replace(&mut self.table, bigger);
        for (tag, n) in old {
            if n != EMPTY {
                self.place(tag, n);
            }
        }
    }

    /// Forgets `id`, remembered as number `n`.
    pub(super) fn remove(&mut self, id: &OrderId, n: u32) {
        let tag = self.tag(id);
        let mask = self.mask();
        let mut hole = tag as usize & mask;
        while self.table[hole].1 != n {
            debug_assert_ne!(self.table[hole].1, EMPTY, "a remembered id is in the table");
            hole = (hole + 1) & mask;
        }
        // Move back each later entry of the run that may fill the hole.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let (t, m) = self.table[j];
            if m == EMPTY {
                break;
            }
            let home = t as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.table[hole] = (t, m);
                hole = j;
            }
        }
        self.table[hole] = (0, EMPTY);
        self.free.push(n);
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use alloy_primitives::B256;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Inserts and removals agree with a `HashMap`, through growth and
        /// long probe runs (a tiny id space, so ids come back).
        #[test]
        fn ids_behave_as_a_map(ops in proptest::collection::vec((any::<bool>(), 0u16..300), 1..2_000)) {
            let mut ids = Ids::default();
            let mut model: HashMap<OrderId, u32> = HashMap::new();
            for (insert, k) in ops {
                let id = B256::left_padding_from(&k.to_be_bytes());
                match (insert, model.get(&id).copied()) {
                    (true, None) => { model.insert(id, ids.insert_new(id)); }
                    (false, Some(n)) => { ids.remove(&id, n); model.remove(&id); }
                    _ => {}
                }
                prop_assert_eq!(ids.len(), model.len());
                prop_assert_eq!(ids.get(&id), model.get(&id).copied());
            }
            for k in 0u16..300 {
                let id = B256::left_padding_from(&k.to_be_bytes());
                prop_assert_eq!(ids.get(&id), model.get(&id).copied());
            }
        }
    }
}
