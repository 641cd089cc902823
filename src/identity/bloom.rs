//! Keyed Bloom-filter encodings of single identity fields (rule set version 2).
//!
//! Exact tokens say only "equal" or "not equal": one mistyped letter or digit and a
//! record is lost. These encodings keep *similarity*: each field (first name, last name,
//! date of birth, SSN, ZIP) becomes a fixed-length bit vector in which similar values set
//! mostly the same bits, so the Dice coefficient of two encodings estimates how similar
//! the two values are without either value being revealed (Schnell, Bachteler & Reiher,
//! BMC Med Inform Decis Mak 9:41, 2009). The probabilistic pass (`crate::link::prob`)
//! compares them field by field, in the Fellegi–Sunter model (Brown et al., IJPDS 4(1),
//! 2019, evaluate exactly that use of field-level Bloom filters).
//!
//! # Construction (see the README for the byte-exact specification)
//!
//! 1. The field is cut into *grams*: character bigrams of the normalized name padded with
//!    `_` at both ends (`ANA` → `_A`, `AN`, `NA`, `A_`), or position-digit pairs for the
//!    digit fields (`DOB 19830405` → `01`, `19`, `28`, `33`, …), so a mistyped digit or
//!    two swapped ones change only the grams at those positions.
//! 2. **Keyed random hashing.** Each gram sets `k` bit positions taken from
//!    `HMAC-SHA256(field key, "gram" 0x00 gram)`, under a key derived per field from the
//!    workspace key. Without the key nobody can compute the encoding of a guessed value,
//!    and the positions of different grams are independent: the double-hashing scheme of
//!    the first Bloom-filter protocols was broken exactly through its structure
//!    (Niedermeyer et al., J Privacy and Confidentiality 6(2), 2014).
//! 3. **Diffusion.** Output bit `j` is the XOR of `t` input bits at keyed positions
//!    (Armknecht, Heng & Schnell, "Strengthening privacy-preserving record linkage using
//!    diffusion", PoPETs 2023(2)). Pattern-mining attacks (Christen et al., 2017/2018)
//!    recover which bit positions belong to which frequent gram and then read rare names
//!    gram by gram; after diffusion no output bit belongs to one gram, while the Hamming
//!    distance, and with it the Dice coefficient, still tracks how many grams two values
//!    share.
//!
//! Why not the other hardenings the literature offers: a salt such as the birth year
//! changes every gram's positions with the salt, so a record without a date of birth, or
//! with the year mistyped, could no longer be compared on names at all, and UI wage
//! records carry no date of birth; balancing (a filter plus its complement) doubles the
//! size and hides only the Hamming weight; BLIP's random flips make encodings differ from
//! run to run. What no deterministic field-level encoding can hide is *frequency*: the
//! most common surname has the most common encoding, exactly as it has the most common
//! exact token. That is why encodings, like tokens, are kept only where tokens are: in
//! memory during a run and in partner files under the key, never in the de-identified
//! zone.
//!
//! Each field's encoding is computed from precomputed per-gram masks (an OR for the
//! filter, an XOR of precomputed diffused masks for the output, corrected for bits set by
//! an even number of grams), so encoding a record costs a few hundred word operations,
//! not one HMAC per gram.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::IdentityFields;
use super::dob;

type HmacSha256 = Hmac<Sha256>;

/// One encoded field.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    First,
    Last,
    Dob,
    Ssn,
    Zip,
}

/// Every encoded field, in encoding order (and in the order of [`Encoding::words`]).
pub const FIELDS: [Field; 5] = [
    Field::First,
    Field::Last,
    Field::Dob,
    Field::Ssn,
    Field::Zip,
];

/// Output bits XOR-ed together per diffused bit.
pub const DIFFUSION_T: usize = 3;

impl Field {
    pub const fn name(self) -> &'static str {
        match self {
            Field::First => "first",
            Field::Last => "last",
            Field::Dob => "dob",
            Field::Ssn => "ssn",
            Field::Zip => "zip",
        }
    }

    /// Filter length in bits (a multiple of 64).
    pub const fn bits(self) -> usize {
        match self {
            Field::First | Field::Last => 512,
            Field::Dob | Field::Ssn => 256,
            Field::Zip => 128,
        }
    }

    /// Bit positions each gram sets.
    pub const fn k(self) -> usize {
        match self {
            Field::First | Field::Last => 6,
            Field::Dob | Field::Ssn | Field::Zip => 4,
        }
    }

    /// Digits of a positional field; `None` for the names (bigrams).
    pub const fn digits(self) -> Option<usize> {
        match self {
            Field::First | Field::Last => None,
            Field::Dob => Some(8),
            Field::Ssn => Some(9),
            Field::Zip => Some(5),
        }
    }

    pub const fn words(self) -> usize {
        self.bits() / 64
    }

    /// First word of this field inside [`Encoding::words`].
    pub const fn offset(self) -> usize {
        match self {
            Field::First => 0,
            Field::Last => 8,
            Field::Dob => 16,
            Field::Ssn => 20,
            Field::Zip => 24,
        }
    }

    /// Position in [`FIELDS`] (and bit in [`Encoding::present`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The key-derivation label, e.g. `xmatch/v2/bloom/dob`. First and last name share
    /// `xmatch/v2/bloom/name`: a record with its names in each other's columns must be
    /// comparable crosswise, which needs both filters in one position space.
    pub fn label(self) -> String {
        match self {
            Field::First | Field::Last => "xmatch/v2/bloom/name".into(),
            _ => format!("xmatch/v2/bloom/{}", self.name()),
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        FIELDS.into_iter().find(|f| f.name() == name)
    }
}

/// Words of all five filters together: 8 + 8 + 4 + 4 + 2.
pub const ENCODING_WORDS: usize = 26;

/// The encodings of one record: five filters side by side, and which are present.
///
/// 216 bytes: a participant file of a million rows holds about 210 MB of them during a
/// run, which is why the filters are no longer than their fields need.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encoding {
    pub words: [u64; ENCODING_WORDS],
    /// Bit `field.index()` set when that field was usable.
    pub present: u8,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            words: [0; ENCODING_WORDS],
            present: 0,
        }
    }
}

/// Encodings are pseudonymous but linkable, like tokens: print which fields are present.
impl fmt::Debug for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for field in FIELDS {
            if self.has(field) {
                l.entry(&format_args!("{}", field.name()));
            }
        }
        l.finish()
    }
}

impl Encoding {
    pub fn has(&self, field: Field) -> bool {
        self.present & (1 << field.index()) != 0
    }

    /// The filter of one field (all zero when absent).
    pub fn field(&self, field: Field) -> &[u64] {
        &self.words[field.offset()..field.offset() + field.words()]
    }

    fn field_mut(&mut self, field: Field) -> &mut [u64] {
        &mut self.words[field.offset()..field.offset() + field.words()]
    }

    /// Dice coefficient of one field, `None` when either side lacks it.
    pub fn dice(&self, other: &Encoding, field: Field) -> Option<f64> {
        (self.has(field) && other.has(field)).then(|| dice(self.field(field), other.field(field)))
    }

    /// Whether one field's filters are identical (both present).
    pub fn same(&self, other: &Encoding, field: Field) -> bool {
        self.has(field) && other.has(field) && self.field(field) == other.field(field)
    }

    /// Dice coefficient of this record's `a` against the other's `b` (for names given in
    /// the wrong columns).
    pub fn dice_across(&self, a: Field, other: &Encoding, b: Field) -> Option<f64> {
        (self.has(a) && other.has(b) && a.bits() == b.bits())
            .then(|| dice(self.field(a), other.field(b)))
    }

    /// One field's filter as bytes: bit `j` is bit `j % 8` of byte `j / 8`.
    pub fn field_bytes(&self, field: Field) -> Option<Vec<u8>> {
        self.has(field).then(|| {
            self.field(field)
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect()
        })
    }

    /// Sets one field from its bytes (the inverse of [`Encoding::field_bytes`]).
    pub fn set_field_bytes(&mut self, field: Field, bytes: &[u8]) -> Result<(), usize> {
        if bytes.len() != field.bits() / 8 {
            return Err(bytes.len());
        }
        for (w, chunk) in self.field_mut(field).iter_mut().zip(bytes.chunks(8)) {
            *w = u64::from_le_bytes(chunk.try_into().expect("8-byte chunks"));
        }
        self.present |= 1 << field.index();
        Ok(())
    }
}

/// `2 |a ∧ b| / (|a| + |b|)`; 0 for two empty filters.
///
/// Comparing candidate pairs is mostly this popcount loop. The baseline x86-64 target has
/// no POPCNT instruction, so `count_ones` compiles to a dozen bit-twiddling instructions
/// per word; on a CPU that has it (every x86-64 server since about 2009) the same loop
/// compiled with the instruction enabled is chosen at run time.
pub fn dice(a: &[u64], b: &[u64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU supports POPCNT, checked just above.
        return unsafe { dice_popcnt(a, b) };
    }
    dice_portable(a, b)
}

#[inline(always)]
fn dice_portable(a: &[u64], b: &[u64]) -> f64 {
    let (mut both, mut total) = (0u32, 0u32);
    for (x, y) in a.iter().zip(b) {
        both += (x & y).count_ones();
        total += x.count_ones() + y.count_ones();
    }
    if total == 0 {
        0.0
    } else {
        2.0 * both as f64 / total as f64
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn dice_popcnt(a: &[u64], b: &[u64]) -> f64 {
    dice_portable(a, b)
}

/// The precomputed masks of one field under one key.
#[derive(Clone)]
struct FieldTables {
    field: Field,
    /// Per gram: the `k` input positions as a mask (`words` per gram).
    input: Vec<u64>,
    /// Per gram: the diffusion of that mask.
    output: Vec<u64>,
    /// Per input bit: the output bits it flips (the diffusion's column).
    column: Vec<u64>,
}

/// Symbols of a name bigram: `_` (padding) and `A`–`Z`.
const NAME_SYMBOLS: usize = 27;

fn name_symbol(b: u8) -> usize {
    if b == b'_' {
        0
    } else {
        (b - b'A') as usize + 1
    }
}

fn symbol_byte(s: usize) -> u8 {
    if s == 0 { b'_' } else { b'A' + (s - 1) as u8 }
}

impl FieldTables {
    fn new(workspace_key: &[u8; 32], field: Field) -> FieldTables {
        let key = derive(workspace_key, &field.label());
        let (m, w, k) = (field.bits(), field.words(), field.k());
        let grams: Vec<Vec<u8>> = match field.digits() {
            None => (0..NAME_SYMBOLS * NAME_SYMBOLS)
                .map(|g| vec![symbol_byte(g / NAME_SYMBOLS), symbol_byte(g % NAME_SYMBOLS)])
                .collect(),
            Some(n) => (0..n * 10)
                .map(|g| vec![b'0' + (g / 10) as u8, b'0' + (g % 10) as u8])
                .collect(),
        };
        let mut input = vec![0u64; grams.len() * w];
        for (g, gram) in grams.iter().enumerate() {
            for p in positions(&key, b"gram", gram, k, m) {
                input[g * w + p / 64] |= 1 << (p % 64);
            }
        }
        // Column i of the diffusion: every output bit j whose input list holds i an odd
        // number of times.
        let mut column = vec![0u64; m * w];
        for j in 0..m {
            let msg = (j as u16).to_be_bytes();
            for i in positions(&key, b"diffusion", &msg, DIFFUSION_T, m) {
                column[i * w + j / 64] ^= 1 << (j % 64);
            }
        }
        let mut output = vec![0u64; grams.len() * w];
        for g in 0..grams.len() {
            let out = &mut output[g * w..(g + 1) * w];
            for_each_bit(&input[g * w..(g + 1) * w], |i| {
                for (o, c) in out.iter_mut().zip(&column[i * w..(i + 1) * w]) {
                    *o ^= c;
                }
            });
        }
        FieldTables {
            field,
            input,
            output,
            column,
        }
    }

    /// Encodes the grams (indices into this field's gram table) into `out`.
    fn encode(&self, grams: impl Iterator<Item = usize>, out: &mut [u64]) {
        let w = self.field.words();
        let mut any = [0u64; 8];
        let mut odd = [0u64; 8];
        for g in grams {
            let input = &self.input[g * w..(g + 1) * w];
            let output = &self.output[g * w..(g + 1) * w];
            for i in 0..w {
                any[i] |= input[i];
                odd[i] ^= input[i];
                out[i] ^= output[i];
            }
        }
        // `out` is the diffusion of the XOR of the grams' masks; the filter is their OR.
        // They differ in the bits set by an even number of grams, which are few.
        let mut even = [0u64; 8];
        for i in 0..w {
            even[i] = any[i] & !odd[i];
        }
        for_each_bit(&even[..w], |i| {
            for (o, c) in out.iter_mut().zip(&self.column[i * w..(i + 1) * w]) {
                *o ^= c;
            }
        });
    }
}

fn for_each_bit(words: &[u64], mut f: impl FnMut(usize)) {
    for (wi, &word) in words.iter().enumerate() {
        let mut x = word;
        while x != 0 {
            f(wi * 64 + x.trailing_zeros() as usize);
            x &= x - 1;
        }
    }
}

/// `HMAC-SHA256(key, label)`: the per-purpose keys under the workspace key.
pub fn derive(workspace_key: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(workspace_key)
        .expect("HMAC accepts keys of any length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `n` positions below `m` (a power of two) from `HMAC-SHA256(key, tag 0x00 msg)`: its
/// bytes `2i, 2i+1` as a little-endian u16, modulo `m`.
fn positions(key: &[u8; 32], tag: &[u8], msg: &[u8], n: usize, m: usize) -> Vec<usize> {
    debug_assert!(m.is_power_of_two() && n <= 16);
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys");
    mac.update(tag);
    mac.update(&[0x00]);
    mac.update(msg);
    let h = mac.finalize().into_bytes();
    (0..n)
        .map(|i| u16::from_le_bytes([h[2 * i], h[2 * i + 1]]) as usize % m)
        .collect()
}

/// Encodes records under one key: the tables of every field, built once (about 3,300
/// HMACs, a millisecond) and shared by every thread.
#[derive(Clone)]
pub struct Encoder {
    tables: Vec<FieldTables>,
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder").finish_non_exhaustive()
    }
}

impl Encoder {
    pub fn new(workspace_key: &[u8; 32]) -> Encoder {
        Encoder {
            tables: FIELDS
                .iter()
                .map(|&f| FieldTables::new(workspace_key, f))
                .collect(),
        }
    }

    /// The encodings of a record's usable fields.
    pub fn encode(&self, f: &IdentityFields) -> Encoding {
        let mut e = Encoding::default();
        if let Some(first) = encodable_name(&f.first) {
            self.name(Field::First, first, &mut e);
        }
        if let Some(last) = encodable_name(&f.last) {
            self.name(Field::Last, last, &mut e);
        }
        if let Some(d) = f.dob {
            self.digits(Field::Dob, &dob::encode(d), &mut e);
        }
        if let Some(ssn) = &f.ssn {
            self.digits(Field::Ssn, ssn.digits(), &mut e);
        }
        if let Some(zip) = &f.zip {
            self.digits(Field::Zip, zip.as_str().as_bytes(), &mut e);
        }
        e
    }

    fn name(&self, field: Field, name: &[u8], e: &mut Encoding) {
        let grams = bigrams(name).map(|(a, b)| name_symbol(a) * NAME_SYMBOLS + name_symbol(b));
        self.tables[field.index()].encode(grams, e.field_mut(field));
        e.present |= 1 << field.index();
    }

    fn digits(&self, field: Field, digits: &[u8], e: &mut Encoding) {
        let grams = digits
            .iter()
            .enumerate()
            .map(|(p, d)| p * 10 + (d - b'0') as usize);
        self.tables[field.index()].encode(grams, e.field_mut(field));
        e.present |= 1 << field.index();
    }
}

/// The padded bigrams of a normalized name: `_N`, `NA`, …, `A_`.
fn bigrams(name: &[u8]) -> impl Iterator<Item = (u8, u8)> + '_ {
    let n = name.len();
    (0..=n).map(move |i| {
        let a = if i == 0 { b'_' } else { name[i - 1] };
        let b = if i == n { b'_' } else { name[i] };
        (a, b)
    })
}

/// A normalized name (`A`–`Z`) of at least two letters. An initial alone (wage records
/// carry many) is not encoded: its two bigrams share at most one with the full name, so
/// its filter would read as a name that disagrees, which is evidence against a match
/// where there is none. The blocking keys still use it.
fn encodable_name(n: &Option<String>) -> Option<&[u8]> {
    let b = n.as_deref()?.as_bytes();
    (b.len() >= 2 && b.iter().all(u8::is_ascii_uppercase)).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{demo, ssn};
    use chrono::NaiveDate;

    fn key() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    fn fields(first: &str, last: &str, dob: (i32, u32, u32), ssn: &str) -> IdentityFields {
        IdentityFields {
            ssn: Some(ssn::normalize(ssn).unwrap()),
            first: Some(first.into()),
            last: Some(last.into()),
            dob: NaiveDate::from_ymd_opt(dob.0, dob.1, dob.2),
            sex: None,
            zip: Some(demo::zip("65101").unwrap()),
        }
    }

    /// The fast path (precomputed masks, even-bit correction) must equal the definition:
    /// OR the grams' positions, then XOR `t` keyed input bits per output bit.
    /// The run-time choice of popcount must not change a single coefficient.
    #[test]
    fn dice_with_and_without_popcnt_agree() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let a: Vec<u64> = (0..16).map(|_| next() & next()).collect();
            let b: Vec<u64> = (0..16).map(|_| next() & next()).collect();
            assert_eq!(dice(&a, &b).to_bits(), dice_portable(&a, &b).to_bits());
        }
        assert_eq!(dice(&[0; 16], &[0; 16]), 0.0);
    }

    #[test]
    fn tables_equal_the_definition() {
        let k = key();
        let enc = Encoder::new(&k);
        let f = fields("ANNA", "NANA", (1983, 4, 5), "212-67-4431");
        let e = enc.encode(&f);
        let check = |field: Field, grams: Vec<Vec<u8>>| {
            let fk = derive(&k, &field.label());
            let m = field.bits();
            let mut b = vec![false; m];
            for g in &grams {
                for p in positions(&fk, b"gram", g, field.k(), m) {
                    b[p] = true;
                }
            }
            let mut want = vec![0u64; field.words()];
            for j in 0..m {
                let mut x = false;
                for i in positions(&fk, b"diffusion", &(j as u16).to_be_bytes(), DIFFUSION_T, m) {
                    x ^= b[i];
                }
                if x {
                    want[j / 64] |= 1 << (j % 64);
                }
            }
            assert_eq!(e.field(field), &want[..], "{}", field.name());
        };
        let big =
            |s: &str| -> Vec<Vec<u8>> { bigrams(s.as_bytes()).map(|(a, b)| vec![a, b]).collect() };
        check(Field::First, big("ANNA"));
        // NANA repeats the bigram NA: a set, so the repeat changes nothing.
        check(Field::Last, big("NANA"));
        let pos = |s: &str| -> Vec<Vec<u8>> {
            s.bytes()
                .enumerate()
                .map(|(p, d)| vec![b'0' + p as u8, d])
                .collect()
        };
        check(Field::Dob, pos("19830405"));
        check(Field::Ssn, pos("212674431"));
        check(Field::Zip, pos("65101"));
        assert_eq!(e.present, 0b11111);
    }

    #[test]
    fn similar_values_score_high_and_others_low() {
        let enc = Encoder::new(&key());
        let a = enc.encode(&fields("CATHERINE", "MORGAN", (1983, 4, 5), "212-67-4431"));
        let b = enc.encode(&fields("CATHRINE", "MORGEN", (1983, 4, 5), "212-67-4481"));
        let c = enc.encode(&fields(
            "DWAYNE",
            "FITZGERALD",
            (1961, 11, 29),
            "530-18-9902",
        ));
        assert!(a.same(&a, Field::First));
        assert_eq!(a.dice(&a, Field::Ssn), Some(1.0));
        for field in [Field::First, Field::Last, Field::Ssn] {
            let near = a.dice(&b, field).unwrap();
            let far = a.dice(&c, field).unwrap();
            assert!(near > 0.6, "{}: near {near}", field.name());
            assert!(far < 0.55, "{}: far {far}", field.name());
            assert!(!a.same(&b, field));
        }
        assert!(a.same(&b, Field::Dob));
    }

    #[test]
    fn absent_fields_are_absent_and_debug_shows_no_bits() {
        let enc = Encoder::new(&key());
        let mut f = fields("ANA", "LOPEZ", (1990, 1, 2), "212-67-4431");
        f.ssn = None;
        f.first = Some("not normalized".into());
        let e = enc.encode(&f);
        assert!(!e.has(Field::Ssn) && !e.has(Field::First) && e.has(Field::Last));
        assert_eq!(e.dice(&e, Field::Ssn), None);
        assert_eq!(format!("{e:?}"), "[last, dob, zip]");
        let bytes = e.field_bytes(Field::Last).unwrap();
        let mut back = Encoding::default();
        back.set_field_bytes(Field::Last, &bytes).unwrap();
        assert!(back.same(&e, Field::Last));
        assert_eq!(back.set_field_bytes(Field::Zip, &bytes), Err(64));
    }

    #[test]
    fn keys_separate_encodings() {
        let f = fields("ANA", "LOPEZ", (1990, 1, 2), "212-67-4431");
        let a = Encoder::new(&key()).encode(&f);
        let b = Encoder::new(&[9; 32]).encode(&f);
        for field in FIELDS {
            assert!(a.dice(&b, field).unwrap() < 0.7, "{}", field.name());
        }
    }
}
