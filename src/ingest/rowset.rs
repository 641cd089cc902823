//! The set of row hashes that finds a file's exact duplicate rows.
//!
//! A 20-million-row wage file puts 20 million 128-bit hashes into one table of half a
//! gigabyte, and every insert lands on a random cache line of it. Inserted one at a time
//! (hashbrown, one call per row), waiting for those lines from memory was a third of the
//! reader thread's time at a million participants, and that thread is what the wage link
//! waits for. So a batch's hashes are inserted together, and while one is placed the slot
//! of a hash a few places ahead is prefetched: the memory waits overlap instead of
//! queueing one behind another.
//!
//! Open addressing with linear probing over a power-of-two table of bare hashes (the row
//! hashes are already uniform, so their low bits pick the slot). Zero marks an empty slot;
//! a row hashing to zero is stored as one, which merges it with a row hashing to one, a
//! chance of 2^-128 beside the hash's own collision chance.

/// How far ahead of the insert the prefetch runs: enough to cover one memory round trip
/// at a few nanoseconds per insert.
const AHEAD: usize = 16;

const EMPTY: u128 = 0;

#[derive(Default)]
pub(crate) struct RowSet {
    slots: Vec<u128>,
    len: usize,
}

impl RowSet {
    /// Makes room for `more` hashes beyond those held, so that inserting them never
    /// rehashes (the reader knows a Parquet file's row count up front).
    pub(crate) fn reserve(&mut self, more: usize) {
        let need = self.len.saturating_add(more);
        // At most three quarters full: linear probing stays within a cache line or two.
        let slots = (need.saturating_mul(4) / 3 + 1).next_power_of_two().max(64);
        if slots > self.slots.len() {
            self.rehash(slots);
        }
    }

    /// Inserts `hashes` in order. `fresh` receives, for each, whether it was new: `false`
    /// means an equal hash came earlier, in this call or an earlier one.
    pub(crate) fn insert_all(&mut self, hashes: &[u128], fresh: &mut Vec<bool>) {
        self.reserve(hashes.len());
        fresh.reserve(hashes.len());
        let mask = self.slots.len() - 1;
        for (k, &h) in hashes.iter().enumerate() {
            if let Some(&ahead) = hashes.get(k + AHEAD) {
                prefetch(&self.slots[slot_of(ahead, mask)]);
            }
            fresh.push(self.place(stored(h), mask));
        }
    }

    /// `true` if `h` was not there yet (and now is). Needs a free slot.
    #[inline]
    fn place(&mut self, h: u128, mask: usize) -> bool {
        let mut i = slot_of(h, mask);
        loop {
            match self.slots[i] {
                EMPTY => {
                    self.slots[i] = h;
                    self.len += 1;
                    return true;
                }
                s if s == h => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn rehash(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots]);
        self.len = 0;
        let mask = slots - 1;
        for h in old.into_iter().filter(|&h| h != EMPTY) {
            self.place(h, mask);
        }
    }
}

#[inline]
fn stored(h: u128) -> u128 {
    if h == EMPTY { 1 } else { h }
}

#[inline]
fn slot_of(h: u128, mask: usize) -> usize {
    (h as usize) & mask
}

#[inline]
fn prefetch(slot: &u128) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint to the cache; it reads nothing and cannot fault,
    // and the pointer comes from a live reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (slot as *const u128).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_of(set: &mut RowSet, hashes: &[u128]) -> Vec<bool> {
        let mut fresh = Vec::new();
        set.insert_all(hashes, &mut fresh);
        fresh
    }

    #[test]
    fn a_repeat_is_not_fresh_within_a_batch_or_across_batches() {
        let mut set = RowSet::default();
        assert_eq!(
            fresh_of(&mut set, &[5, 7, 5, 9, 7]),
            [true, true, false, true, false]
        );
        assert_eq!(fresh_of(&mut set, &[9, 11, 11]), [false, true, false]);
        assert_eq!(set.len, 4);
    }

    #[test]
    fn zero_is_a_hash_like_any_other() {
        let mut set = RowSet::default();
        assert_eq!(fresh_of(&mut set, &[0, 0, 2]), [true, false, true]);
    }

    #[test]
    fn growing_keeps_every_hash_and_colliding_slots_probe_on() {
        // Hashes that share their low bits land on one slot and must probe past it; many
        // small batches make the table grow several times along the way.
        let hashes: Vec<u128> = (0..5_000u128).map(|i| (i << 64) | (i & 15)).collect();
        let mut set = RowSet::default();
        for chunk in hashes.chunks(333) {
            assert!(fresh_of(&mut set, chunk).iter().all(|&f| f));
        }
        assert!(fresh_of(&mut set, &hashes).iter().all(|&f| !f));
        assert_eq!(set.len, hashes.len());
        assert!(set.len * 4 <= set.slots.len() * 3);
    }

    #[test]
    fn reserving_sizes_the_table_once() {
        let mut set = RowSet::default();
        set.reserve(20_000);
        let slots = set.slots.len();
        let hashes: Vec<u128> = (1..=20_000u128)
            .map(|i| i * 0x9e37_79b9_7f4a_7c15)
            .collect();
        fresh_of(&mut set, &hashes);
        assert_eq!(set.slots.len(), slots);
    }
}
