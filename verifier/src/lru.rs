//! A bounded map that evicts one least-recently-used entry at a time.
//!
//! The verifier keeps several caches whose keys come from evidence (memos, the collateral memory layer, the on-disk
//! index). Clearing such a cache whole when it fills lets one client flush everybody's entries; evicting the least
//! recently used entry costs the flooder its own entries first. No LRU crate is in the dependency tree, and this one
//! is small: a hash map for lookups plus an ordered map from a use counter to the key, both O(log n) at worst.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use sha2::{Digest, Sha256};

/// Bytes from each end of a part that [`ends_key`] reads: a DER certificate or CRL starts with its version and serial
/// and ends with its signature.
pub const KEY_HEAD: usize = 64;
pub const KEY_TAIL: usize = 96;

/// A memo key over `domain` and, for each part, whether it is there, its length and the bytes at both ends — so that
/// finding an entry does not hash kilobytes per request. It only finds the entry: a memo keyed this way must keep the
/// bytes its value was made from and use the value only when they match exactly; parts that share a key differ in
/// the middle and just replace each other's entry.
pub fn ends_key<'a>(domain: &[u8], parts: impl IntoIterator<Item = Option<&'a [u8]>>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    for part in parts {
        match part {
            None => h.update([0]),
            Some(bytes) => {
                h.update([1]);
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(&bytes[..bytes.len().min(KEY_HEAD)]);
                h.update(&bytes[bytes.len().saturating_sub(KEY_TAIL)..]);
            }
        }
    }
    h.finalize().into()
}

/// A map of at most `capacity` entries; inserting into a full map evicts the least recently used entry.
#[derive(Debug, Clone)]
pub struct Lru<K, V> {
    map: HashMap<K, (V, u64)>,
    /// Use stamp → key; the first entry is the least recently used.
    order: BTreeMap<u64, K>,
    next_stamp: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn stamp(&mut self) -> u64 {
        let s = self.next_stamp;
        self.next_stamp += 1;
        s
    }

    /// The value of `key`, marking it most recently used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let stamp = self.next_stamp;
        let (k, (_, old)) = self.map.get_key_value(key)?;
        let (k, old) = (k.clone(), *old);
        self.next_stamp += 1;
        self.order.remove(&old);
        self.order.insert(stamp, k);
        let entry = self.map.get_mut(key)?;
        entry.1 = stamp;
        Some(&entry.0)
    }

    /// The value of `key` without changing its recency.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key).map(|(v, _)| v)
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// Insert or replace `key` as the most recently used entry. Returns the entry evicted to make room, if any (never
    /// the key just inserted, and nothing when `key` was already present).
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        let stamp = self.stamp();
        if let Some((_, old)) = self.map.insert(key.clone(), (value, stamp)) {
            self.order.remove(&old);
            self.order.insert(stamp, key);
            return None;
        }
        self.order.insert(stamp, key);
        if self.map.len() > self.capacity {
            self.pop_lru()
        } else {
            None
        }
    }

    /// Remove `key`.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (value, stamp) = self.map.remove(key)?;
        self.order.remove(&stamp);
        Some(value)
    }

    /// Remove and return the least recently used entry.
    pub fn pop_lru(&mut self) -> Option<(K, V)> {
        let (_, key) = self.order.pop_first()?;
        let (value, _) = self.map.remove(&key)?;
        Some((key, value))
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    /// Keep only the entries for which `keep` is true (recency unchanged).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let order = &mut self.order;
        self.map.retain(|k, (v, stamp)| {
            let kept = keep(k, v);
            if !kept {
                order.remove(stamp);
            }
            kept
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_key_reads_presence_length_and_both_ends_only() {
        let blob: Vec<u8> = (0..=255).cycle().take(1000).map(|b: u32| b as u8).collect();
        let mut middle = blob.clone();
        middle[500] ^= 1;
        let key = |parts: &[Option<&[u8]>]| ends_key(b"d", parts.iter().copied());
        // The middle is not read: the memo must compare the bytes.
        assert_eq!(key(&[Some(&blob)]), key(&[Some(&middle)]));
        // The ends, the length, presence and the domain are.
        let mut tail = blob.clone();
        tail[999] ^= 1;
        let mut head = blob.clone();
        head[0] ^= 1;
        assert_ne!(key(&[Some(&blob)]), key(&[Some(&tail)]));
        assert_ne!(key(&[Some(&blob)]), key(&[Some(&head)]));
        assert_ne!(key(&[Some(&blob)]), key(&[Some(&blob[..999])]));
        assert_ne!(key(&[None]), key(&[Some(&[])]));
        assert_ne!(key(&[Some(&blob)]), ends_key(b"e", [Some(blob.as_slice())]));
    }

    #[test]
    fn a_full_map_evicts_exactly_the_least_recently_used_entry() {
        let mut m = Lru::new(3);
        assert_eq!(m.insert("a", 1), None);
        assert_eq!(m.insert("b", 2), None);
        assert_eq!(m.insert("c", 3), None);
        // Using `a` makes `b` the least recently used.
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.insert("d", 4), Some(("b", 2)));
        assert_eq!(m.len(), 3);
        assert!(m.contains("a") && m.contains("c") && m.contains("d"));
        // `peek` does not refresh: `c` goes next.
        assert_eq!(m.peek("c"), Some(&3));
        assert_eq!(m.insert("e", 5), Some(("c", 3)));
    }

    #[test]
    fn replacing_a_key_evicts_nothing_and_refreshes_it() {
        let mut m = Lru::new(2);
        m.insert(1, "x");
        m.insert(2, "y");
        assert_eq!(m.insert(1, "z"), None);
        assert_eq!(m.peek(&1), Some(&"z"));
        assert_eq!(m.insert(3, "w"), Some((2, "y")));
    }

    #[test]
    fn a_flood_of_new_keys_never_empties_the_map() {
        let mut m = Lru::new(100);
        for i in 0..100u32 {
            m.insert(i, i);
        }
        for i in 1_000..1_050u32 {
            m.insert(i, i);
            assert_eq!(m.len(), 100);
        }
        // The 50 oldest went, the 50 newest of the first batch stayed.
        assert!(!m.contains(&49) && m.contains(&50));
    }

    #[test]
    fn remove_pop_and_retain_keep_the_order_consistent() {
        let mut m = Lru::new(4);
        for i in 0..4 {
            m.insert(i, i * 10);
        }
        assert_eq!(m.remove(&1), Some(10));
        m.retain(|k, _| *k != 2);
        assert_eq!(m.pop_lru(), Some((0, 0)));
        assert_eq!(m.pop_lru(), Some((3, 30)));
        assert_eq!(m.pop_lru(), None);
        assert!(m.is_empty());
        assert_eq!(Lru::<u8, u8>::new(0).capacity(), 1);
    }
}
