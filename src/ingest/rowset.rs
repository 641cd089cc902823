//! The set of row hashes that finds a file's exact duplicate rows.
//!
//! A 20-million-row wage file puts 20 million row hashes into one table, and every insert
//! lands on a random cache line of it. Inserted one at a time (hashbrown, one call per
//! row), waiting for those lines from memory was a third of the reader thread's time at a
//! million participants, and that thread is what the wage link waits for. So a batch's
//! hashes are inserted together, and while one is placed the slot of a hash a few places
//! ahead is prefetched: the memory waits overlap instead of queueing one behind another.
//!
//! Open addressing with linear probing over a table of bare hashes (the row hashes are
//! already uniform). The table is alive while the wage file is read, which is when a run
//! peaks, so it is kept small:
//! - a slot holds 96 of the hash's 128 bits (12 bytes, not 16). Two different rows of a
//!   20-million-row file agree on 96 bits with a chance of about 2.5·10⁻¹⁵ (n²/2⁹⁷); the
//!   low 64 of them pick the home slot, so the table can still grow and rehash;
//! - the table is sized to three quarters full exactly (home slot by multiply-shift),
//!   not rounded up to a power of two, which left a 20-million-row file's table 60 % full.
//!
//! At 20 million rows that is 320 MB instead of 512 MB. Zero marks an empty slot; a row
//! whose 96 bits are zero is stored as one, which merges it with a row whose bits are
//! one, a chance of 2⁻⁹⁶.

/// How far ahead of the insert the prefetch runs: enough to cover one memory round trip
/// at a few nanoseconds per insert.
const AHEAD: usize = 16;

/// The 96 kept bits of a row hash, low word first.
type Slot = [u32; 3];

const EMPTY: Slot = [0; 3];

#[derive(Default)]
pub(crate) struct RowSet {
    slots: Vec<Slot>,
    len: usize,
}

impl RowSet {
    /// Makes room for `more` hashes beyond those held, so that inserting them never
    /// rehashes (the reader knows a Parquet file's row count up front).
    pub(crate) fn reserve(&mut self, more: usize) {
        let need = self.len.saturating_add(more);
        // At most three quarters full: linear probing stays within a cache line or two.
        if need.saturating_mul(4) > self.slots.len().saturating_mul(3) {
            // Growing by half at least, so that batch-by-batch reserves (a CSV file,
            // whose row count is not known) rehash a logarithmic number of times.
            let slots = (need.saturating_mul(4) / 3 + 1)
                .max(self.slots.len() + self.slots.len() / 2)
                .max(64);
            self.rehash(slots);
        }
    }

    /// Inserts `hashes` in order. `fresh` receives, for each, whether it was new: `false`
    /// means an equal hash came earlier, in this call or an earlier one.
    pub(crate) fn insert_all(&mut self, hashes: &[u128], fresh: &mut Vec<bool>) {
        self.reserve(hashes.len());
        fresh.reserve(hashes.len());
        let n = self.slots.len();
        for (k, &h) in hashes.iter().enumerate() {
            if let Some(&ahead) = hashes.get(k + AHEAD) {
                prefetch(&self.slots[home(stored(ahead), n)]);
            }
            fresh.push(self.place(stored(h), n));
        }
    }

    /// `true` if `h` was not there yet (and now is). Needs a free slot.
    #[inline]
    fn place(&mut self, h: Slot, n: usize) -> bool {
        let mut i = home(h, n);
        loop {
            match self.slots[i] {
                EMPTY => {
                    self.slots[i] = h;
                    self.len += 1;
                    return true;
                }
                s if s == h => return false,
                _ => {
                    i += 1;
                    if i == n {
                        i = 0;
                    }
                }
            }
        }
    }

    fn rehash(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots]);
        self.len = 0;
        for h in old.into_iter().filter(|&h| h != EMPTY) {
            self.place(h, slots);
        }
    }
}

/// The kept bits of `h` (its low 96), never [`EMPTY`].
#[inline]
fn stored(h: u128) -> Slot {
    let s = [h as u32, (h >> 32) as u32, (h >> 64) as u32];
    if s == EMPTY { [1, 0, 0] } else { s }
}

/// Home slot of `h` among `n`: its low 64 bits scaled to `0..n` (multiply-shift, which
/// needs no power-of-two table).
#[inline]
fn home(h: Slot, n: usize) -> usize {
    let lo = u64::from(h[0]) | (u64::from(h[1]) << 32);
    ((u128::from(lo) * n as u128) >> 64) as usize
}

#[inline]
fn prefetch(slot: &Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint to the cache; it reads nothing and cannot fault,
    // and the pointer comes from a live reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (slot as *const Slot).cast::<i8>(),
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
    fn hashes_differing_in_their_high_32_bits_only_are_one_row() {
        // What the slot keeps is the low 96 bits: the documented trade.
        let mut set = RowSet::default();
        assert_eq!(
            fresh_of(&mut set, &[7, 7 | (1u128 << 100), 7 | (1u128 << 95)]),
            [true, false, true]
        );
    }

    #[test]
    fn the_table_is_sized_to_three_quarters_not_to_a_power_of_two() {
        let mut set = RowSet::default();
        set.reserve(20_000_000 / 1_000);
        assert_eq!(set.slots.len(), 20_000 * 4 / 3 + 1);
    }

    #[test]
    fn growing_keeps_every_hash_and_colliding_slots_probe_on() {
        // Hashes that share their low 64 bits land on one slot and must probe past it
        // (and wrap around the table's end); many small batches make the table grow
        // several times along the way.
        let hashes: Vec<u128> = (0..5_000u128)
            .map(|i| (i << 64) | if i % 2 == 0 { 15 } else { u64::MAX as u128 })
            .collect();
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
