//! Deterministic building blocks: random streams, bijective scrambles and civil dates.
//!
//! Everything the generator draws comes from a ChaCha8 stream keyed by
//! `(seed, stream, index)`. Because a stream depends only on those three numbers, and
//! never on which thread asks or in what order, the output is byte-identical whatever the
//! thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The independent random streams. A person's identity, benefits, claims and wages each
/// have their own stream so that every source regenerates exactly the same facts about a
/// person, while record-level noise comes from a per-(source, chunk) stream.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(crate) enum Stream {
    Person = 1,
    Assist = 2,
    Claims = 3,
    Taa = 4,
    Wages = 5,
    Twin = 6,
    Petition = 7,
    /// Record noise: `Chunk + source ordinal`.
    Chunk = 100,
}

/// SplitMix64 finalizer: a cheap, well-mixed 64-bit hash.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream for `(seed, stream, index)`.
pub(crate) fn rng_for(seed: u64, stream: u64, index: u64) -> ChaCha8Rng {
    let a = mix64(seed);
    let b = mix64(a ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let c = mix64(b ^ index);
    let d = mix64(c ^ 0xA076_1D64_78BD_642F);
    let mut bytes = [0u8; 32];
    for (i, w) in [a, b, c, d].iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    ChaCha8Rng::from_seed(bytes)
}

/// A keyed bijection on `[0, 2^bits)`. Record identifiers are built from it so that they
/// are unique by construction yet reveal neither the person index nor the row order.
/// Every step (odd multiply, xor-shift right, add) is invertible modulo `2^bits`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scramble {
    bits: u32,
    k1: u64,
    k2: u64,
}

impl Scramble {
    pub(crate) fn new(seed: u64, purpose: u64, bits: u32) -> Scramble {
        debug_assert!((8..=62).contains(&bits));
        Scramble {
            bits,
            k1: mix64(seed ^ purpose.wrapping_mul(0x9E37_79B9)),
            k2: mix64(seed.rotate_left(17) ^ purpose),
        }
    }

    pub(crate) fn apply(&self, x: u64) -> u64 {
        let mask = (1u64 << self.bits) - 1;
        let h = self.bits / 2;
        let mut x = x & mask;
        for k in [self.k1, self.k2] {
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D) & mask;
            x ^= x >> h;
            x = x.wrapping_add(k) & mask;
            x = x.wrapping_mul(k | 1) & mask;
            x ^= x >> (h + 1);
        }
        x
    }
}

/// Uniform in `[0, 1)`.
#[inline]
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

#[inline]
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    unit(rng) < p
}

/// Like `chance`, but draws nothing when `p` is zero: a rate a noise profile leaves off
/// consumes no randomness, so the rest of the stream is what it was without it.
#[inline]
pub(crate) fn maybe(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && chance(rng, p)
}

/// A standard normal draw (Box–Muller); `rand_distr` is not among the allowed crates.
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Picks an index by weight from a cumulative table (last entry = total).
pub(crate) fn pick_weighted(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> usize {
    let total = *cumulative.last().expect("non-empty table");
    let x = unit(rng) * total;
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len() - 1)
}

/// Picks one of `items` by `(item, weight)`.
pub(crate) fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = unit(rng) * total;
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

// ----- Civil dates as days since 1970-01-01 (the Arrow Date32 representation) -----

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// The civil date `(year, month, day)` of a day number.
pub(crate) const fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The same calendar day `years` later (29 February becomes 28 February).
pub(crate) fn add_years(day: i32, years: i32) -> i32 {
    let (y, m, d) = civil_from_days(day);
    let d = if m == 2 && d == 29 { 28 } else { d };
    days_from_civil(y + years, m, d)
}

/// Whole years between `dob` and `on` (age on that day).
pub(crate) fn age_on(dob: i32, on: i32) -> i32 {
    let (by, bm, bd) = civil_from_days(dob);
    let (y, m, d) = civil_from_days(on);
    let mut age = y - by;
    if (m, d) < (bm, bd) {
        age -= 1;
    }
    age
}

/// Absolute quarter number (`year * 4 + quarter - 1`) of a day.
pub(crate) fn quarter_of(day: i32) -> i32 {
    let (y, m, _) = civil_from_days(day);
    y * 4 + (m as i32 - 1) / 3
}

/// Writes `YYYY-MM-DD`.
pub(crate) fn push_iso(out: &mut String, day: i32) {
    let (y, m, d) = civil_from_days(day);
    push_num(out, y as u32, 4);
    out.push('-');
    push_num(out, m, 2);
    out.push('-');
    push_num(out, d, 2);
}

/// Writes `n` zero-padded to `width` digits.
pub(crate) fn push_num(out: &mut String, n: impl Into<u64>, width: usize) {
    let mut buf = itoa::Buffer::new();
    let s = buf.format(n.into());
    for _ in s.len()..width {
        out.push('0');
    }
    out.push_str(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in -40_000..40_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2025, 9, 30)), (2025, 9, 30));
    }

    #[test]
    fn scramble_is_a_bijection() {
        let s = Scramble::new(7, 3, 12);
        let mut seen = vec![false; 1 << 12];
        for x in 0..(1u64 << 12) {
            let y = s.apply(x) as usize;
            assert!(!seen[y]);
            seen[y] = true;
        }
    }

    #[test]
    fn ages() {
        let dob = days_from_civil(2000, 3, 15);
        assert_eq!(age_on(dob, days_from_civil(2014, 3, 14)), 13);
        assert_eq!(age_on(dob, days_from_civil(2014, 3, 15)), 14);
        assert_eq!(
            add_years(days_from_civil(2024, 2, 29), 1),
            days_from_civil(2025, 2, 28)
        );
    }
}
