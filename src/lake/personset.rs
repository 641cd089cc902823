//! A compact set of internal person ids, for lineage.
//!
//! Lineage must answer "which persons did this file hold?" long after the file is gone, so
//! each written file carries the set of internal ids (never `person_key`s: the store maps
//! ids to keys, and a set of ids is meaningless outside it). Ids are issued densely by the
//! registry, so the sorted ids' gaps are small: delta + LEB128 varint puts a typical
//! person in one or two bytes (1 M dense persons ≈ 1 MB) without a compression crate.
//!
//! Encoding (version 1): `0x01`, varint count, varint zigzag(first id), then for each
//! following id the varint of `id - previous - 1` (strictly increasing, so never negative).

use std::fmt;

const VERSION: u8 = 1;

/// A sorted, duplicate-free set of internal person ids.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PersonSet {
    ids: Vec<i64>,
}

impl fmt::Debug for PersonSet {
    // Sets can hold a million ids: show the size, not the contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonSet({} persons)", self.ids.len())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PersonSetError {
    #[error("person set encoding is empty")]
    Empty,
    #[error("person set encoding version {0} is not known (expected {VERSION})")]
    Version(u8),
    #[error("person set encoding is truncated or malformed at byte {0}")]
    Malformed(usize),
    #[error("person set encoding has {0} trailing bytes")]
    Trailing(usize),
}

impl PersonSet {
    pub fn new() -> PersonSet {
        PersonSet::default()
    }

    /// Builds a set from ids in any order, with repeats.
    pub fn from_ids(ids: impl IntoIterator<Item = i64>) -> PersonSet {
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        PersonSet { ids }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: i64) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.ids.iter().copied()
    }

    pub fn as_slice(&self) -> &[i64] {
        &self.ids
    }

    /// Both sets' ids (a linear merge: both are sorted).
    pub fn union(&self, other: &PersonSet) -> PersonSet {
        let (a, b) = (&self.ids, &other.ids);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(a[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        PersonSet { ids: out }
    }

    /// Ids present in both sets (breach questions: "which of these persons were in it?").
    pub fn intersection(&self, other: &PersonSet) -> PersonSet {
        let (small, large) = if self.len() <= other.len() {
            (self, other)
        } else {
            (other, self)
        };
        PersonSet {
            ids: small.iter().filter(|id| large.contains(*id)).collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.ids.len() * 2);
        out.push(VERSION);
        put_varint(&mut out, self.ids.len() as u64);
        let mut prev: Option<i64> = None;
        for &id in &self.ids {
            match prev {
                None => put_varint(&mut out, zigzag(id)),
                // Strictly increasing, so the wrapping difference is the true gap (≥ 1)
                // even across the whole i64 range.
                Some(p) => put_varint(&mut out, (id.wrapping_sub(p) as u64).wrapping_sub(1)),
            }
            prev = Some(id);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<PersonSet, PersonSetError> {
        let (n, pos) = header(bytes)?;
        let mut ids = Vec::with_capacity(n);
        decode_ids(bytes, n, pos, |id| ids.push(id))?;
        Ok(PersonSet { ids })
    }

    /// Decodes `bytes` without building a set: `each` sees every id in ascending order.
    /// On an error, `each` may already have seen some ids.
    pub fn decode_each(bytes: &[u8], each: impl FnMut(i64)) -> Result<(), PersonSetError> {
        let (n, pos) = header(bytes)?;
        decode_ids(bytes, n, pos, each)
    }
}

/// The version check and the id count; returns the count and where the ids start.
fn header(bytes: &[u8]) -> Result<(usize, usize), PersonSetError> {
    let (&version, _) = bytes.split_first().ok_or(PersonSetError::Empty)?;
    if version != VERSION {
        return Err(PersonSetError::Version(version));
    }
    let mut pos = 1;
    let n = get_varint(bytes, &mut pos)?;
    // Each id takes at least one byte: a count beyond that is corruption, and checking it
    // first keeps a damaged blob from asking for a huge allocation.
    if n > (bytes.len() - pos) as u64 {
        return Err(PersonSetError::Malformed(pos));
    }
    Ok((n as usize, pos))
}

fn decode_ids(
    bytes: &[u8],
    n: usize,
    mut pos: usize,
    mut each: impl FnMut(i64),
) -> Result<(), PersonSetError> {
    let mut prev: Option<i64> = None;
    for _ in 0..n {
        let at = pos;
        // Dense sets put almost every gap in one byte: decode those inline.
        let v = match bytes.get(pos) {
            Some(&b) if b < 0x80 => {
                pos += 1;
                u64::from(b)
            }
            _ => get_varint(bytes, &mut pos)?,
        };
        let id = match prev {
            None => unzigzag(v),
            Some(p) => {
                let gap = v.checked_add(1).ok_or(PersonSetError::Malformed(at))?;
                let id = p.wrapping_add(gap as i64);
                if id <= p {
                    return Err(PersonSetError::Malformed(at));
                }
                id
            }
        };
        each(id);
        prev = Some(id);
    }
    if pos != bytes.len() {
        return Err(PersonSetError::Trailing(bytes.len() - pos));
    }
    Ok(())
}

impl FromIterator<i64> for PersonSet {
    fn from_iter<T: IntoIterator<Item = i64>>(iter: T) -> Self {
        PersonSet::from_ids(iter)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, PersonSetError> {
    let start = *pos;
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(PersonSetError::Malformed(start))?;
        *pos += 1;
        // The tenth byte may only carry the top bit of a u64.
        if shift == 63 && b > 1 {
            return Err(PersonSetError::Malformed(start));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(PersonSetError::Malformed(start))
}

/// Accumulates ids while a file is written; deduplicates as it goes so that a 20 M-row
/// wage file with ~1 M persons never holds 20 M ids at once.
#[derive(Default)]
pub(crate) struct PersonSetBuilder {
    ids: Vec<i64>,
    compacted: usize,
}

impl PersonSetBuilder {
    pub(crate) fn extend(&mut self, ids: impl IntoIterator<Item = i64>) {
        self.ids.extend(ids);
        if self.ids.len() > 2 * self.compacted.max(1 << 16) {
            self.ids.sort_unstable();
            self.ids.dedup();
            self.compacted = self.ids.len();
        }
    }

    pub(crate) fn finish(self) -> PersonSet {
        PersonSet::from_ids(self.ids)
    }
}
