//! A plain bitmap of internal person ids.
//!
//! Registry ids are issued densely from 1, so a million persons fit in 125 KB and a union
//! of thousands of decoded person sets is one bit-set per id: no sorting, no hashing, and
//! memory bounded by the registry's size rather than by how many files are unioned.

#[derive(Clone, Default)]
pub struct Bitmap {
    words: Vec<u64>,
}

impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitmap({} ids)", self.len())
    }
}

impl Bitmap {
    pub fn new() -> Bitmap {
        Bitmap::default()
    }

    /// Ids below zero never occur in the registry and are ignored.
    pub fn insert(&mut self, id: i64) {
        if id < 0 {
            return;
        }
        let (w, b) = ((id as u64 / 64) as usize, id as u64 % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << b;
    }

    pub fn remove(&mut self, id: i64) {
        if id < 0 {
            return;
        }
        let (w, b) = ((id as u64 / 64) as usize, id as u64 % 64);
        if let Some(word) = self.words.get_mut(w) {
            *word &= !(1 << b);
        }
    }

    pub fn contains(&self, id: i64) -> bool {
        if id < 0 {
            return false;
        }
        let (w, b) = ((id as u64 / 64) as usize, id as u64 % 64);
        self.words.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Whether any id in `[lo, hi)` is set; `lo` and `hi` are multiples of 64.
    pub fn any_between(&self, lo: i64, hi: i64) -> bool {
        debug_assert!(lo % 64 == 0 && hi % 64 == 0);
        let (lo, hi) = ((lo.max(0) / 64) as usize, (hi.max(0) / 64) as usize);
        let hi = hi.min(self.words.len());
        lo < hi && self.words[lo..hi].iter().any(|&w| w != 0)
    }

    /// One past the largest id set (0 when empty).
    pub fn end(&self) -> i64 {
        match self.words.iter().rposition(|&w| w != 0) {
            Some(i) => i as i64 * 64 + 64 - self.words[i].leading_zeros() as i64,
            None => 0,
        }
    }

    /// Sets every id of `other` here.
    pub fn union_with(&mut self, other: &Bitmap) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(i as i64 * 64 + b as i64)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_iterates_and_unions() {
        let mut a = Bitmap::new();
        for id in [5, 0, 64, 1_000, 5, -3] {
            a.insert(id);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 5, 64, 1_000]);
        assert_eq!(a.len(), 4);
        let mut b = Bitmap::new();
        b.insert(7);
        b.insert(100_000);
        a.union_with(&b);
        assert!(a.contains(100_000) && a.contains(7) && !a.contains(8));
        a.remove(5);
        assert_eq!(a.len(), 5);
        assert!(!Bitmap::new().contains(3) && Bitmap::new().is_empty());
        assert_eq!(a.end(), 100_001);
        assert_eq!(Bitmap::new().end(), 0);
        assert!(a.any_between(99_968, 100_032) && !a.any_between(1_024, 99_968));
        assert!(!a.any_between(200_000, 300_032));
    }
}
