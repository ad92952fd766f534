//! Maps keyed by 32-byte ids, split into shards so that none grows large.

use std::collections::HashMap;

use alloy_primitives::B256;

/// How many maps a [`Sharded`] map is split into.
const SHARDS: usize = 64;

/// A hash map keyed by id, kept as [`SHARDS`] maps chosen by the id's first
/// byte. A map grows by rehashing every entry into a table twice the size:
/// for a million jobs or deals that is a 100–400 ms pause of the sequencer,
/// which holds the jobs while it applies each commit. Sharded, a growth
/// rehashes one shard, a 64th of the entries. Ids are hashes, so the shards
/// fill evenly; each shard still hashes with its own random key, so ids made
/// to share a first byte only make one shard large, as one map would be.
#[derive(Debug)]
pub(crate) struct Sharded<V> {
    shards: Vec<HashMap<B256, V>>,
}

impl<V> Default for Sharded<V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
        }
    }
}

impl<V> Sharded<V> {
    fn shard(&self, id: &B256) -> usize {
        usize::from(id[0]) % SHARDS
    }

    pub(crate) fn get(&self, id: &B256) -> Option<&V> {
        self.shards[self.shard(id)].get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &B256) -> Option<&mut V> {
        let shard = self.shard(id);
        self.shards[shard].get_mut(id)
    }

    pub(crate) fn contains_key(&self, id: &B256) -> bool {
        self.shards[self.shard(id)].contains_key(id)
    }

    pub(crate) fn insert(&mut self, id: B256, value: V) -> Option<V> {
        let shard = self.shard(&id);
        self.shards[shard].insert(id, value)
    }

    pub(crate) fn remove(&mut self, id: &B256) -> Option<V> {
        let shard = self.shard(id);
        self.shards[shard].remove(id)
    }

    /// Every entry, shard by shard (in no particular order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&B256, &V)> {
        self.shards.iter().flatten()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &B256> {
        self.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_one_map() {
        let mut map = Sharded::default();
        let mut one = HashMap::new();
        for n in 0..5_000u64 {
            // Ids with every first byte, and many with the same one.
            let id = B256::left_padding_from(&(n * 0x0101_0101_0101).to_be_bytes());
            let id = if n % 3 == 0 {
                B256::with_last_byte(n as u8)
            } else {
                id
            };
            assert_eq!(map.insert(id, n), one.insert(id, n));
            if n % 7 == 0 {
                let gone = B256::left_padding_from(&((n / 2) * 0x0101_0101_0101).to_be_bytes());
                assert_eq!(map.remove(&gone), one.remove(&gone));
            }
        }
        assert_eq!(map.iter().count(), one.len());
        for (id, n) in &one {
            assert_eq!(map.get(id), Some(n));
            assert!(map.contains_key(id));
        }
        let mut all: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort();
        let mut expected: Vec<_> = one.into_iter().collect();
        expected.sort();
        assert_eq!(all, expected);
        *map.get_mut(&expected[0].0).unwrap() += 1;
        assert_eq!(map.get(&expected[0].0), Some(&(expected[0].1 + 1)));
        assert!(map.get(&B256::repeat_byte(0xab)).is_none());
    }
}
