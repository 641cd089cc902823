//! Keyed blocking keys (rule set version 4): which records are worth comparing.
//!
//! Comparing every agency record with every participant is quadratic (twenty million wage
//! rows × a million participants). The probabilistic pass therefore compares a record
//! only with the participants that share at least one *blocking key* with it: a keyed
//! hash of a few coarse pieces of identity that survive the errors real files carry. The
//! keys are chosen so that each common error leaves at least one of them intact:
//!
//! | kind                 | material                                   | survives                                  |
//! |----------------------|--------------------------------------------|-------------------------------------------|
//! | `ssn_skip_1_3`       | SSN digits 4–9, initials                   | a wrong digit in 1–3, a swap within 1–3   |
//! | `ssn_skip_3_5`       | SSN digits 1–2 and 6–9, initials           | a wrong digit in 3–5, a swap within 3–5   |
//! | `ssn_skip_5_7`       | SSN digits 1–4 and 8–9, initials           | a wrong digit in 5–7, a swap within 5–7   |
//! | `ssn_skip_7_9`       | SSN digits 1–6, initials                   | a wrong digit in 7–9, a swap within 7–9   |
//! | `ssn_gap`            | SSN digits 1–4 and 7–9                     | digits 5 and 6 swapped, any name error    |
//! | `dob_initials`       | DOB, initials                              | no or a wrong SSN, typos past the initial |
//! | `soundex_last_dob`   | Soundex of the surname, date of birth      | first-name changes, surname typos         |
//! | `soundex_names_zip3` | Soundex of both names (sorted), ZIP3       | no SSN and no date of birth               |
//! | `ssn_skip_1_3_last` … `ssn_skip_7_9_last` | an `ssn_skip` window, last initial | as `ssn_skip`, with no first name |
//! | `soundex_first_dob`  | Soundex of the first name, date of birth   | a changed surname, with no or a wrong SSN |
//!
//! The four `ssn_skip` windows overlap by one digit, so every single wrong digit and every
//! swap of two neighbouring digits falls inside one window and leaves that key intact.
//! Six SSN digits and two initials are specific enough that a stranger rarely shares one
//! with any of a million participants; rule set version 2 had an SSN head (five digits)
//! and tail (four) with initials instead, and at a million participants 6.0 M of 12.6 M
//! unlinked wage rows met some participant through them, nearly all strangers.
//!
//! The surname key holds the whole date of birth. With the year and month only (rule set
//! 2) a common surname's block held a dozen participants at a million, and nearly all the
//! public-assistance and UI-claims pairs were strangers met that way. What the day bought
//! back — a record with a changed first name *and* a mistyped birth day — is rare.
//!
//! `ssn_gap` carries no name, so a record it finds may have lost its initials too; but
//! seven digits are shared with one participant in ten by chance at that scale. Records
//! therefore *probe* it only when they have no `ssn_skip` key (a name is missing):
//! participants carry it always (see [`BlockKeys::probes`]).
//!
//! The `_last` windows (rule set 4) are for the record with a surname and no first name,
//! which has no initials: a wage file leaves the first name blank on a few percent of its
//! rows. Before them such a record with one wrong SSN digit outside digits 5–6 met its
//! person through no key at all (1,168 wage rows of 100,000 participants under heavy
//! noise). Like `ssn_gap` they are probed only by a record without `ssn_skip` keys, so a
//! named record's stranger rate is unchanged; participants carry them always.
//!
//! `soundex_first_dob` (rule set 4) is `soundex_last_dob` for the other name: a record
//! whose surname changed outright (a marriage) and whose SSN is blank or mistyped held
//! no key with its person, since every other named key holds the last initial or the
//! surname (217 records of 100,000 participants under heavy noise, most of them public
//! assistance). Wage files carry no date of birth, so it costs the ten million wage rows
//! nothing.
//!
//! *Initials* are the first letters of the normalized first and last names, sorted
//! (`JOHN ADAMS` → `AJ`), so a record with its names in the wrong columns keeps its keys.
//! A key whose fields are missing is absent. Soundex is American Soundex as the
//! `rphonetic` crate (a port of Apache Commons Codec) computes it.
//!
//! `key = first 8 bytes, little-endian, of HMAC-SHA256(block key, kind 0x00 material)`
//! with `block key = HMAC-SHA256(workspace key, "xmatch/v2/block")`: like tokens, a
//! blocking key reveals nothing without the workspace key, so partner files can carry
//! them. Sixty-four bits are plenty: a collision only adds a candidate pair. (The label
//! kept its `v2`: version 3 changed which kinds there are, not how a key is derived.)
//!
//! **Inside one run** whose files are all raw, the keys only have to agree with each
//! other: they index the participants and look up the agency records in the run's own
//! memory, and are never written or compared with anything made elsewhere.
//! [`Blocker::in_memory`] gives such a run keys from SipHash under a random key drawn for
//! the run (std's `RandomState`) instead of the HMAC: the same material, so the same
//! blocks and the same candidate pairs, at an eighth of the cost. In profiles of a
//! million-participant run the blocking keys (fourteen million participant keys, and the
//! screening of ten million unlinked wage rows) took 3.1 CPU-seconds with the HMAC and
//! 0.4 with SipHash. Like the HMAC keys they say nothing without their key, and that key
//! is never stored: it dies with the run, whose memory holds the raw identities anyway.
//! A run with a tokenized file keeps the HMAC keys, which are what partner files carry.

use std::hash::{BuildHasher, Hasher, RandomState};

use hmac::{Hmac, Mac};
use rphonetic::Encoder as _;
use sha2::Sha256;

use super::IdentityFields;
use super::bloom::derive;
use super::dob;

type HmacSha256 = Hmac<Sha256>;

/// The kinds of blocking key, in the order of [`BlockKeys::keys`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    SsnSkip13,
    SsnSkip35,
    SsnSkip57,
    SsnSkip79,
    SsnGap,
    DobInitials,
    SoundexLastDob,
    SoundexNamesZip3,
    SsnSkip13Last,
    SsnSkip35Last,
    SsnSkip57Last,
    SsnSkip79Last,
    SoundexFirstDob,
}

pub const BLOCK_KINDS: [BlockKind; 13] = [
    BlockKind::SsnSkip13,
    BlockKind::SsnSkip35,
    BlockKind::SsnSkip57,
    BlockKind::SsnSkip79,
    BlockKind::SsnGap,
    BlockKind::DobInitials,
    BlockKind::SoundexLastDob,
    BlockKind::SoundexNamesZip3,
    BlockKind::SsnSkip13Last,
    BlockKind::SsnSkip35Last,
    BlockKind::SsnSkip57Last,
    BlockKind::SsnSkip79Last,
    BlockKind::SoundexFirstDob,
];

impl BlockKind {
    pub const fn name(self) -> &'static str {
        match self {
            BlockKind::SsnSkip13 => "ssn_skip_1_3",
            BlockKind::SsnSkip35 => "ssn_skip_3_5",
            BlockKind::SsnSkip57 => "ssn_skip_5_7",
            BlockKind::SsnSkip79 => "ssn_skip_7_9",
            BlockKind::SsnGap => "ssn_gap",
            BlockKind::DobInitials => "dob_initials",
            BlockKind::SoundexLastDob => "soundex_last_dob",
            BlockKind::SoundexNamesZip3 => "soundex_names_zip3",
            BlockKind::SsnSkip13Last => "ssn_skip_1_3_last",
            BlockKind::SsnSkip35Last => "ssn_skip_3_5_last",
            BlockKind::SsnSkip57Last => "ssn_skip_5_7_last",
            BlockKind::SsnSkip79Last => "ssn_skip_7_9_last",
            BlockKind::SoundexFirstDob => "soundex_first_dob",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn from_name(name: &str) -> Option<BlockKind> {
        BLOCK_KINDS.into_iter().find(|k| k.name() == name)
    }

    /// Whether this is an `ssn_skip` kind (with or without `_last`): six SSN digits exact,
    /// and the initials or the last initial.
    pub const fn is_ssn_window(self) -> bool {
        self.skipped().is_some()
    }

    /// Whether this kind holds the last initial alone, for records without a first name.
    pub const fn is_last_only(self) -> bool {
        matches!(
            self,
            BlockKind::SsnSkip13Last
                | BlockKind::SsnSkip35Last
                | BlockKind::SsnSkip57Last
                | BlockKind::SsnSkip79Last
        )
    }

    /// The SSN digits (0-based, `lo..hi`) an `ssn_skip` kind leaves out.
    const fn skipped(self) -> Option<(usize, usize)> {
        match self {
            BlockKind::SsnSkip13 | BlockKind::SsnSkip13Last => Some((0, 3)),
            BlockKind::SsnSkip35 | BlockKind::SsnSkip35Last => Some((2, 5)),
            BlockKind::SsnSkip57 | BlockKind::SsnSkip57Last => Some((4, 7)),
            BlockKind::SsnSkip79 | BlockKind::SsnSkip79Last => Some((6, 9)),
            _ => None,
        }
    }
}

/// A record's blocking keys, one slot per [`BlockKind`].
///
/// Presence is a bit mask beside plain `u64`s, not an `Option<u64>` per slot: a `u64`
/// has no spare value, so each `Option` would take 16 bytes, and every participant row
/// and every screened agency record holds one of these (13 slots: 112 bytes, not 208).
/// An absent slot is always 0, so the derived equality and hash compare present keys.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BlockKeys {
    keys: [u64; BLOCK_KINDS.len()],
    present: u16,
}

const _: () = assert!(BLOCK_KINDS.len() <= u16::BITS as usize);

impl std::fmt::Debug for BlockKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        for (k, _) in self.iter() {
            l.entry(&format_args!("{}", k.name()));
        }
        l.finish()
    }
}

impl BlockKeys {
    pub fn get(&self, kind: BlockKind) -> Option<u64> {
        (self.present & (1 << kind.index()) != 0).then(|| self.keys[kind.index()])
    }

    /// Sets the key of `kind`.
    pub fn set(&mut self, kind: BlockKind, key: u64) {
        self.keys[kind.index()] = key;
        self.present |= 1 << kind.index();
    }

    /// Whether the record has no key at all (nothing the probabilistic pass can block on).
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// `(kind, key)` of every present key.
    pub fn iter(&self) -> impl Iterator<Item = (BlockKind, u64)> + '_ {
        BLOCK_KINDS.iter().filter_map(|&k| Some((k, self.get(k)?)))
    }

    /// The keys an agency record looks participants up by: every present key, except
    /// `ssn_gap` and the `_last` windows where an `ssn_skip` key is present. Those keys
    /// hold all of `ssn_gap`'s digits but two and the initials besides, so only a record
    /// without initials needs the nameless key, and probing it always would compare one
    /// record in ten with a stranger at a million participants; a `_last` window is an
    /// `ssn_skip` key with one initial fewer. Participants are indexed on every key.
    pub fn probes(&self) -> impl Iterator<Item = (BlockKind, u64)> + '_ {
        self.iter().filter(|&(k, _)| self.probed(k))
    }

    /// Whether a record holding these keys probes `kind`. Every `ssn_skip` kind precedes
    /// `ssn_gap` and the `_last` windows in [`BLOCK_KINDS`], so this holds as soon as they
    /// are filled in.
    fn probed(&self, kind: BlockKind) -> bool {
        !(kind == BlockKind::SsnGap || kind.is_last_only())
            || self.get(BlockKind::SsnSkip13).is_none()
    }
}

/// Computes blocking keys under one workspace key.
#[derive(Clone)]
pub struct Blocker {
    keying: Keying,
}

/// How a [`Blocker`] turns material into keys.
#[derive(Clone)]
enum Keying {
    /// HMAC-SHA256, keyed, with each kind's `kind 0x00` prefix absorbed (in
    /// [`BLOCK_KINDS`] order): the keys partner files carry. Boxed: thirteen states
    /// are about two kilobytes, the other variant a few words.
    Hmac(Box<[HmacSha256; BLOCK_KINDS.len()]>),
    /// SipHash under a key drawn for one run ([`Blocker::in_memory`]).
    InMemory(RandomState),
}

impl std::fmt::Debug for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocker").finish_non_exhaustive()
    }
}

/// American Soundex of a normalized name (`A`–`Z`), e.g. `ROBERT` → `R163`.
pub fn soundex(name: &str) -> String {
    rphonetic::Soundex::default().encode(name)
}

impl Blocker {
    pub fn new(workspace_key: &[u8; 32]) -> Blocker {
        let key = derive(workspace_key, "xmatch/v2/block");
        let base = <HmacSha256 as Mac>::new_from_slice(&key).expect("HMAC accepts keys");
        Blocker {
            keying: Keying::Hmac(Box::new(BLOCK_KINDS.map(|kind| {
                let mut mac = base.clone();
                mac.update(kind.name().as_bytes());
                mac.update(&[0x00]);
                mac
            }))),
        }
    }

    /// A blocker with keys for one run's memory alone: SipHash of the kind and the same
    /// material as the HMAC keys', under a random key drawn now (see the module
    /// documentation). Two such blockers never agree; one run uses one.
    pub fn in_memory() -> Blocker {
        Blocker {
            keying: Keying::InMemory(RandomState::new()),
        }
    }

    /// The key of one kind over its material.
    pub fn key(&self, kind: BlockKind, material: &[u8]) -> u64 {
        match &self.keying {
            Keying::Hmac(kinds) => {
                let mut mac = kinds[kind.index()].clone();
                mac.update(material);
                let h = mac.finalize().into_bytes();
                u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
            }
            Keying::InMemory(state) => {
                let mut h = state.build_hasher();
                h.write_u8(kind.index() as u8);
                h.write(material);
                h.finish()
            }
        }
    }

    /// Every blocking key the record's usable fields allow.
    pub fn keys(&self, f: &IdentityFields) -> BlockKeys {
        self.fill(f, false)
    }

    /// The keys an agency record probes ([`BlockKeys::probes`]), without hashing the one
    /// it would not probe: a wage file's unlinked rows are screened by the ten million.
    pub fn probe_keys(&self, f: &IdentityFields) -> BlockKeys {
        self.fill(f, true)
    }

    fn fill(&self, f: &IdentityFields, probing: bool) -> BlockKeys {
        let mut out = BlockKeys::default();
        let mut parts = Parts::of(f);
        let mut m = Vec::with_capacity(32);
        for kind in BLOCK_KINDS {
            if probing && !out.probed(kind) {
                continue;
            }
            m.clear();
            if parts.material(kind, &mut m) {
                out.set(kind, self.key(kind, &m));
            }
        }
        out
    }
}

fn name_of(n: &Option<String>) -> Option<&str> {
    n.as_deref()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase()))
}

/// The pieces a record's keys are made of, each worked out once: the initials go into
/// six keys and a name's Soundex into two, and working them out key by key (with a
/// vector and a Soundex string per key) cost more than the keyed hashing itself, in a
/// profile of a million-participant run. Soundex is computed on first use: a wage
/// record, which has no date of birth or ZIP code, never needs it.
struct Parts<'a> {
    f: &'a IdentityFields,
    first: Option<&'a str>,
    last: Option<&'a str>,
    initials: Option<[u8; 2]>,
    dob: Option<[u8; 8]>,
    /// Soundex codes, once worked out (the outer `Option`).
    first_code: Option<Option<String>>,
    last_code: Option<Option<String>>,
}

impl<'a> Parts<'a> {
    fn of(f: &'a IdentityFields) -> Parts<'a> {
        let (first, last) = (name_of(&f.first), name_of(&f.last));
        let initials = first.zip(last).map(|(a, b)| {
            let (a, b) = (a.as_bytes()[0], b.as_bytes()[0]);
            [a.min(b), a.max(b)]
        });
        Parts {
            f,
            first,
            last,
            initials,
            dob: f.dob.map(dob::encode),
            first_code: None,
            last_code: None,
        }
    }

    /// Works out the Soundex codes of both names, if not done yet.
    fn codes(&mut self) -> (Option<&str>, Option<&str>) {
        let (first, last) = (self.first, self.last);
        self.first_code.get_or_insert_with(|| first.map(soundex));
        self.last_code.get_or_insert_with(|| last.map(soundex));
        (
            self.first_code.as_ref().and_then(Option::as_deref),
            self.last_code.as_ref().and_then(Option::as_deref),
        )
    }

    /// Appends the material of `kind` to `m`; `false` when a field it needs is missing.
    fn material(&mut self, kind: BlockKind, m: &mut Vec<u8>) -> bool {
        let window = |m: &mut Vec<u8>, ssn: &super::ssn::Ssn, tail: &[u8]| {
            let (lo, hi) = kind.skipped().expect("an ssn_skip kind");
            let d = ssn.digits();
            m.extend_from_slice(&d[..lo]);
            m.extend_from_slice(&d[hi..]);
            m.push(0x1F);
            m.extend_from_slice(tail);
        };
        match kind {
            // The named windows end in the initials, the `_last` ones in the last initial.
            BlockKind::SsnSkip13
            | BlockKind::SsnSkip35
            | BlockKind::SsnSkip57
            | BlockKind::SsnSkip79
            | BlockKind::SsnSkip13Last
            | BlockKind::SsnSkip35Last
            | BlockKind::SsnSkip57Last
            | BlockKind::SsnSkip79Last => {
                let tail = if kind.is_last_only() {
                    self.last.map(|l| &l.as_bytes()[..1])
                } else {
                    self.initials.as_ref().map(|i| &i[..])
                };
                let (Some(ssn), Some(tail)) = (self.f.ssn.as_ref(), tail) else {
                    return false;
                };
                window(m, ssn, tail);
            }
            BlockKind::SsnGap => {
                let Some(ssn) = self.f.ssn.as_ref() else {
                    return false;
                };
                let d = ssn.digits();
                m.extend_from_slice(&d[..4]);
                m.extend_from_slice(&d[6..]);
            }
            BlockKind::DobInitials => {
                let (Some(dob), Some(i)) = (self.dob, self.initials) else {
                    return false;
                };
                m.extend_from_slice(&dob);
                m.push(0x1F);
                m.extend_from_slice(&i);
            }
            BlockKind::SoundexLastDob | BlockKind::SoundexFirstDob => {
                let Some(dob) = self.dob else {
                    return false;
                };
                let (first, last) = self.codes();
                let code = if kind == BlockKind::SoundexLastDob {
                    last
                } else {
                    first
                };
                let Some(code) = code else {
                    return false;
                };
                m.extend_from_slice(code.as_bytes());
                m.push(0x1F);
                m.extend_from_slice(&dob);
            }
            BlockKind::SoundexNamesZip3 => {
                let Some(zip3) = self.f.zip.as_ref().map(|z| z.zip3()) else {
                    return false;
                };
                let (Some(a), Some(b)) = self.codes() else {
                    return false;
                };
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                m.extend_from_slice(lo.as_bytes());
                m.push(0x1F);
                m.extend_from_slice(hi.as_bytes());
                m.push(0x1F);
                m.extend_from_slice(&zip3);
            }
        }
        true
    }
}

/// The material of one kind of key, or `None` when a field it needs is missing. Public so
/// the golden vectors can show it.
pub fn material(kind: BlockKind, f: &IdentityFields) -> Option<Vec<u8>> {
    let mut m = Vec::new();
    Parts::of(f).material(kind, &mut m).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{demo, ssn};
    use chrono::NaiveDate;

    fn f(first: &str, last: &str, ssn: Option<&str>) -> IdentityFields {
        IdentityFields {
            ssn: ssn.map(|s| ssn::normalize(s).unwrap()),
            first: Some(first.into()),
            last: Some(last.into()),
            dob: NaiveDate::from_ymd_opt(1983, 4, 5),
            sex: None,
            zip: Some(demo::zip("65101").unwrap()),
        }
    }

    #[test]
    fn soundex_is_american_soundex() {
        for (name, code) in [
            ("ROBERT", "R163"),
            ("RUPERT", "R163"),
            ("ASHCRAFT", "A261"),
            ("TYMCZAK", "T522"),
            ("PFISTER", "P236"),
            ("LEE", "L000"),
        ] {
            assert_eq!(soundex(name), code, "{name}");
        }
    }

    #[test]
    fn each_error_keeps_a_key() {
        let b = Blocker::new(&[3; 32]);
        let base = b.keys(&f("JOHN", "ADAMS", Some("212-67-4431")));
        let shared = |other: &BlockKeys| -> Vec<&'static str> {
            BLOCK_KINDS
                .iter()
                .filter(|k| base.get(**k).is_some() && base.get(**k) == other.get(**k))
                .map(|k| k.name())
                .collect()
        };
        let named = |kinds: &[&str]| kinds.iter().any(|k| k.starts_with("ssn_skip"));
        // Every wrong digit and every swap of neighbours keeps an ssn_skip key.
        let digits = *b"212674431";
        for i in 0..9 {
            let mut d = digits;
            d[i] = if d[i] == b'9' { b'1' } else { d[i] + 1 };
            let typo = b.keys(&f("JOHN", "ADAMS", Some(std::str::from_utf8(&d).unwrap())));
            assert!(named(&shared(&typo)), "digit {} wrong", i + 1);
            if i < 8 && digits[i] != digits[i + 1] {
                let mut d = digits;
                d.swap(i, i + 1);
                let swap = b.keys(&f("JOHN", "ADAMS", Some(std::str::from_utf8(&d).unwrap())));
                assert!(
                    named(&shared(&swap)),
                    "digits {} and {} swapped",
                    i + 1,
                    i + 2
                );
            }
        }
        let swapped = b.keys(&f("JOHN", "ADAMS", Some("212-64-7431")));
        assert!(shared(&swapped).contains(&"ssn_gap"));
        // A stranger sharing five digits and the initials shares no SSN key.
        let stranger = b.keys(&f("JANE", "ALLEN", Some("212-67-9999")));
        let ssn_keys: Vec<_> = shared(&stranger)
            .into_iter()
            .filter(|k| k.starts_with("ssn"))
            .collect();
        assert!(ssn_keys.is_empty(), "{ssn_keys:?}");
        // Names in the wrong columns keep the initials.
        let crossed = b.keys(&f("ADAMS", "JOHN", Some("212-67-4481")));
        assert!(shared(&crossed).contains(&"ssn_skip_7_9"));
        // A new surname and no SSN: the first name and date of birth still block.
        let married = b.keys(&f("JOHN", "BAKER", None));
        assert_eq!(shared(&married), ["soundex_first_dob"]);
        // No SSN: date of birth and names still block.
        let none = b.keys(&f("JON", "ADAMS", None));
        assert_eq!(none.get(BlockKind::SsnSkip13), None);
        assert!(shared(&none).contains(&"dob_initials"));
        assert!(shared(&none).contains(&"soundex_last_dob"));
        assert!(shared(&none).contains(&"soundex_names_zip3"));
        assert_ne!(
            Blocker::new(&[4; 32]).keys(&f("JOHN", "ADAMS", None)),
            b.keys(&f("JOHN", "ADAMS", None))
        );
    }

    #[test]
    fn in_memory_keys_make_the_same_blocks_as_the_keyed_hmac() {
        let b = Blocker::new(&[3; 32]);
        let m = Blocker::in_memory();
        let mut records = Vec::new();
        for (first, last) in [("JOHN", "ADAMS"), ("JON", "ADAMS"), ("JANE", "ALLEN")] {
            for ssn in [Some("212-67-4431"), Some("212-67-4481"), None] {
                records.push(f(first, last, ssn));
                let mut nameless = f(first, last, ssn);
                nameless.first = None;
                records.push(nameless);
                let mut undated = f(first, last, ssn);
                undated.dob = NaiveDate::from_ymd_opt(1983, 4, 6);
                records.push(undated);
            }
        }
        let (hmac, fast): (Vec<BlockKeys>, Vec<BlockKeys>) =
            records.iter().map(|r| (b.keys(r), m.keys(r))).unzip();
        for kind in BLOCK_KINDS {
            for i in 0..records.len() {
                assert_eq!(hmac[i].get(kind).is_some(), fast[i].get(kind).is_some());
                for j in 0..records.len() {
                    let same = |k: &[BlockKeys]| {
                        k[i].get(kind).is_some() && k[i].get(kind) == k[j].get(kind)
                    };
                    assert_eq!(same(&hmac), same(&fast), "{} of {i} and {j}", kind.name());
                }
            }
        }
        // Another kind over the same material is another key.
        let r = f("JOHN", "ADAMS", Some("212-67-4431"));
        assert_ne!(
            m.key(BlockKind::SsnSkip13, b"x"),
            m.key(BlockKind::SsnGap, b"x")
        );
        assert_ne!(
            fast[0].get(BlockKind::SsnSkip13),
            b.keys(&r).get(BlockKind::SsnSkip13)
        );
        // Each run draws its own key.
        assert_ne!(Blocker::in_memory().keys(&r), m.keys(&r));
    }

    #[test]
    fn records_probe_the_nameless_ssn_key_only_without_initials() {
        let b = Blocker::new(&[3; 32]);
        let probed = |k: &BlockKeys| -> Vec<BlockKind> { k.probes().map(|(k, _)| k).collect() };
        let full = b.keys(&f("JOHN", "ADAMS", Some("212-67-4431")));
        assert!(
            full.get(BlockKind::SsnGap).is_some(),
            "participants carry it"
        );
        assert!(!probed(&full).contains(&BlockKind::SsnGap));
        assert!(!probed(&full).contains(&BlockKind::SsnSkip13Last));
        assert_eq!(probed(&full).len(), full.iter().count() - 5);
        let mut nameless = f("JOHN", "ADAMS", Some("212-67-4431"));
        nameless.first = None;
        let k = b.keys(&nameless);
        assert!(probed(&k).contains(&BlockKind::SsnGap));
        assert!(probed(&k).contains(&BlockKind::SsnSkip57Last));
        assert_eq!(k.get(BlockKind::SsnGap), full.get(BlockKind::SsnGap));
        // What a record probes is what it hashes for probing.
        for fields in [f("JOHN", "ADAMS", Some("212-67-4431")), nameless] {
            let all = b.keys(&fields);
            let hashed = b.probe_keys(&fields);
            assert_eq!(
                hashed.iter().collect::<Vec<_>>(),
                all.probes().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_record_without_a_first_name_keeps_a_window_through_any_one_ssn_error() {
        let b = Blocker::new(&[3; 32]);
        let person = b.keys(&f("JOHN", "ADAMS", Some("212-67-4431")));
        let nameless = |ssn: &str| {
            let mut r = f("JOHN", "ADAMS", Some(ssn));
            r.first = None;
            b.probe_keys(&r)
        };
        let shares_window = |probes: &BlockKeys| {
            probes
                .probes()
                .any(|(k, key)| k.is_ssn_window() && person.get(k) == Some(key))
        };
        let digits = *b"212674431";
        for i in 0..9 {
            let mut d = digits;
            d[i] = if d[i] == b'9' { b'1' } else { d[i] + 1 };
            let typo = nameless(std::str::from_utf8(&d).unwrap());
            assert!(shares_window(&typo), "digit {} wrong", i + 1);
        }
        // The last initial is what the window holds besides the digits: another
        // surname's record with the same digits shares none of them.
        let mut other = f("JOHN", "BAKER", Some("212-67-4431"));
        other.first = None;
        assert!(!shares_window(&b.probe_keys(&other)));
        // A named record's `_last` windows are never probed, only held.
        assert!(person.probes().all(|(k, _)| !k.is_last_only()));
        assert!(person.get(BlockKind::SsnSkip79Last).is_some());
        assert_eq!(
            material(
                BlockKind::SsnSkip13Last,
                &f("JOHN", "ADAMS", Some("212-67-4431"))
            ),
            Some(b"674431\x1fA".to_vec())
        );
    }
}
