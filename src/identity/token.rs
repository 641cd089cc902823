//! Keyed match tokens.
//!
//! # Why keyed HMAC and not a plain hash
//!
//! There are only about 10⁹ possible SSNs and far fewer plausible name+DOB
//! combinations, so an unkeyed hash (`SHA-256(ssn)`) is reversed by enumerating
//! every candidate in minutes. A token is therefore `HMAC-SHA256(key, message)` with
//! a 32-byte secret key held by the state; without the key a token reveals nothing
//! and cannot be recomputed. Every token set is recorded with the key's identifier
//! ([`Tokenizer::key_id`]) so that a key rotation never silently compares tokens
//! made under different keys.
//!
//! # Byte encoding (rule set version 1)
//!
//! ```text
//! message = "xmatch/v1/" <rule name>  0x00  field1  0x1F  field2  0x1F … fieldN
//! token   = HMAC-SHA256(key, message)            (32 raw bytes)
//! ```
//!
//! | rule                | fields, in order                    |
//! |---------------------|-------------------------------------|
//! | `ssn`               | ssn                                 |
//! | `ssn_dob`           | ssn, dob                            |
//! | `name_dob`          | last, first, dob                    |
//! | `name_init_sex_dob` | last, first initial, sex, dob       |
//! | `name_dob_zip3`     | last, first, dob, zip3              |
//!
//! Field encodings (all ASCII): ssn = 9 digits; dob = 8 digits `YYYYMMDD`; last,
//! first = normalized name, `A`–`Z` only, at least one letter; first initial = the
//! first letter of the normalized first name; sex = `M` or `F`; zip3 = the first 3
//! digits of the normalized ZIP. Because no field can contain `0x00` or `0x1F`, and
//! the label ends at the single `0x00`, the encoding is injective: distinct field
//! tuples (or rules) always give distinct messages. The rule name in the label is
//! a domain separator, so the `ssn` token of a person can never equal any other
//! rule's token even for the same bytes.
//!
//! **Null rule:** if any field of a rule is absent or invalid, the rule's token is
//! `None` — never a token of an empty or placeholder value.

use std::fmt;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::blocking::Blocker;
use super::bloom::Encoder;
use super::{IdentityFields, dob};

/// Version of the rule set and byte encoding. Bump it whenever a rule, field order, field
/// encoding or normalization changes, because tokens from different versions must never
/// be compared. Version 2 added the Bloom-filter encodings and blocking keys
/// ([`super::bloom`], [`super::blocking`], labels `xmatch/v2/…`) and left every version 1
/// token byte for byte as it was (labels `xmatch/v1/…`), so registries and partner files
/// of version 1 stay valid; a version 1 partner file links on its tokens only. Version 3
/// replaced two kinds of blocking key (`ssn_head` and `ssn_tail` became the four
/// `ssn_skip` windows, `soundex_last_month` became `soundex_last_dob`) and changed
/// nothing else: a version 2 partner file still links on its tokens and encodings, and
/// blocks on the keys the two versions share. Version 4 added the four `ssn_skip_*_last`
/// kinds (an SSN window with the last initial alone, for records without a first name)
/// and `soundex_first_dob` (for a changed surname), and changed nothing else, so a
/// version 3 file is a version 4 file without them.
pub const RULE_SET_VERSION: u32 = 4;

/// The version in the exact tokens' labels (`xmatch/v1/ssn`): unchanged since version 1.
pub const TOKEN_LABEL_VERSION: u32 = 1;

/// Rule set versions a tokenized file may carry.
pub const ACCEPTED_RULE_SET_VERSIONS: [i64; 4] = [1, 2, 3, 4];

/// A 32-byte HMAC-SHA256 token.
pub type Token = [u8; 32];

type HmacSha256 = Hmac<Sha256>;

/// One token rule: a fixed combination of normalized fields.
///
/// Several rules per person (as in OpenToken-style token sets) let records match
/// when one field is missing or wrong: the SSN rules catch most pairs, the
/// name/DOB rules catch records without an SSN or with a mistyped one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// SSN alone.
    Ssn,
    /// SSN + DOB: guards against SSN reuse/typos that land on another real SSN.
    SsnDob,
    /// Last + first + DOB: the strong name+DOB token for records without an SSN.
    NameDob,
    /// Last + first initial + sex + DOB: tolerates nicknames and first-name typos.
    NameInitSexDob,
    /// Last + first + DOB + ZIP3: separates common-name/same-birthday pairs.
    NameDobZip3,
}

/// All rules, in token-set order (`TokenSet` index = position here).
pub const RULES: [Rule; 5] = [
    Rule::Ssn,
    Rule::SsnDob,
    Rule::NameDob,
    Rule::NameInitSexDob,
    Rule::NameDobZip3,
];

impl Rule {
    /// Stable snake_case name, also the last component of the domain label.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Ssn => "ssn",
            Rule::SsnDob => "ssn_dob",
            Rule::NameDob => "name_dob",
            Rule::NameInitSexDob => "name_init_sex_dob",
            Rule::NameDobZip3 => "name_dob_zip3",
        }
    }

    /// The domain label absorbed before the fields, e.g. `xmatch/v1/ssn`.
    pub const fn label(self) -> &'static str {
        match self {
            Rule::Ssn => "xmatch/v1/ssn",
            Rule::SsnDob => "xmatch/v1/ssn_dob",
            Rule::NameDob => "xmatch/v1/name_dob",
            Rule::NameInitSexDob => "xmatch/v1/name_init_sex_dob",
            Rule::NameDobZip3 => "xmatch/v1/name_dob_zip3",
        }
    }

    /// The field names in message order (`ssn`, `dob`, `last`, `first`,
    /// `first_initial`, `sex`, `zip3`).
    pub const fn fields(self) -> &'static [&'static str] {
        match self {
            Rule::Ssn => &["ssn"],
            Rule::SsnDob => &["ssn", "dob"],
            Rule::NameDob => &["last", "first", "dob"],
            Rule::NameInitSexDob => &["last", "first_initial", "sex", "dob"],
            Rule::NameDobZip3 => &["last", "first", "dob", "zip3"],
        }
    }

    /// Position in [`RULES`] and in a [`TokenSet`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Look a rule up by [`Rule::name`].
    pub fn from_name(name: &str) -> Option<Rule> {
        RULES.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The tokens of one record, one slot per rule in [`RULES`] order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenSet {
    /// `tokens[rule.index()]`; `None` when a field of the rule is missing/invalid.
    pub tokens: [Option<Token>; RULES.len()],
}

impl TokenSet {
    /// The token of one rule.
    pub fn get(&self, rule: Rule) -> Option<&Token> {
        self.tokens[rule.index()].as_ref()
    }

    /// The token of one rule as lowercase hex.
    pub fn hex(&self, rule: Rule) -> Option<String> {
        self.get(rule).map(hex::encode)
    }

    /// `(rule, token)` for every rule, in [`RULES`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Rule, Option<&Token>)> + '_ {
        RULES.iter().map(move |&r| (r, self.get(r)))
    }

    /// How many rules produced a token.
    pub fn count(&self) -> usize {
        self.tokens.iter().filter(|t| t.is_some()).count()
    }
}

/// Tokens are pseudonymous but still linkable; print only which rules are present.
impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for (rule, tok) in self.iter() {
            if tok.is_some() {
                l.entry(&format_args!("{}", rule.name()));
            }
        }
        l.finish()
    }
}

/// Computes keyed tokens under one secret key.
///
/// # Why the pre-keyed states
///
/// HMAC costs two SHA-256 compressions just to absorb the key (the padded inner and
/// outer key blocks), and the domain label + `0x00` is the same for every message of
/// a rule. `new` does that work once per rule and keeps the resulting MAC states;
/// each token then clones a state (a memcpy of ~200 bytes) and absorbs only the
/// fields. That saves the two key-block compressions per token — about half the
/// work for messages this short (one inner block plus the outer block remain) —
/// and no heap allocation happens on the hot path: fields are fed to the MAC
/// piecewise into its internal block buffer.
///
/// The key itself is not stored (only the derived HMAC states, which are
/// equivalent to it, so treat a `Tokenizer` as secret). `Debug` shows only the key
/// id.
#[derive(Clone)]
pub struct Tokenizer {
    key_id: String,
    states: [HmacSha256; RULES.len()],
    /// Keyed, nothing absorbed: the start of record-id and employer tokens.
    base: HmacSha256,
    /// The similarity encodings and blocking keys under the same key (rule set v2).
    linkage: Arc<(Encoder, Blocker)>,
    /// Other key ids whose tokenized files are taken too: during a key rotation the
    /// registry holds tokens under both keys (see `registry::NEXT_KEY_RULE_OFFSET`).
    accepts: Vec<String>,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("key_id", &self.key_id)
            .field("rule_set_version", &RULE_SET_VERSION)
            .finish_non_exhaustive()
    }
}

const SEP: &[u8] = &[0x1F];

impl Tokenizer {
    /// Key one HMAC state per rule with `key` and pre-absorb `label ‖ 0x00`.
    ///
    /// `key_id` names the key (e.g. `"mo-2025-q3"`) and is stored beside tokens so
    /// that tokens from different keys are never compared; it is not secret.
    pub fn new(key: &[u8; 32], key_id: &str) -> Tokenizer {
        let states = RULES.map(|rule| {
            let mut mac =
                <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
            mac.update(rule.label().as_bytes());
            mac.update(&[0x00]);
            mac
        });
        Tokenizer {
            key_id: key_id.to_owned(),
            states,
            base: <HmacSha256 as Mac>::new_from_slice(key)
                .expect("HMAC accepts keys of any length"),
            linkage: Arc::new((Encoder::new(key), Blocker::new(key))),
            accepts: Vec::new(),
        }
    }

    /// The same tokenizer, also taking tokenized files made under `key_id` (the other
    /// key of a rotation in progress).
    pub fn accepting(mut self, key_id: &str) -> Tokenizer {
        if key_id != self.key_id && !self.accepts.iter().any(|k| k == key_id) {
            self.accepts.push(key_id.to_owned());
        }
        self
    }

    /// Whether a tokenized file made under `key_id` is taken.
    pub fn accepts(&self, key_id: &str) -> bool {
        key_id == self.key_id || self.accepts.iter().any(|k| k == key_id)
    }

    /// The Bloom-filter encoder under this key (see [`super::bloom`]).
    pub fn encoder(&self) -> &Encoder {
        &self.linkage.0
    }

    /// The same tokenizer with blocking keys for one run's memory alone
    /// ([`Blocker::in_memory`]): for a run whose every file is raw.
    pub fn with_in_memory_blocking(&self) -> Tokenizer {
        let mut t = self.clone();
        t.linkage = Arc::new((self.encoder().clone(), Blocker::in_memory()));
        t
    }

    /// The blocking-key maker under this key (see [`super::blocking`]).
    pub fn blocker(&self) -> &Blocker {
        &self.linkage.1
    }

    /// Keyed token of a record identifier of `source` (a case number, a claim id):
    /// message `xmatch/v1/record/<source>` ‖ 0x00 ‖ the identifier trimmed, as UTF-8.
    /// Lets a rerun recognise a case-management record without storing its number.
    pub fn record_token(&self, source: &str, id: &str) -> Token {
        self.labeled(&["xmatch/v1/record/", source], id.trim().as_bytes())
    }

    /// Keyed token of an employer account number (`xmatch/v1/employer` ‖ 0x00 ‖ the
    /// account, trimmed and upper-cased): a sole proprietor's account can name a person.
    pub fn employer_token(&self, account: &str) -> Token {
        self.labeled(
            &["xmatch/v1/employer"],
            account.trim().to_ascii_uppercase().as_bytes(),
        )
    }

    fn labeled(&self, label: &[&str], value: &[u8]) -> Token {
        let mut mac = self.base.clone();
        for part in label {
            mac.update(part.as_bytes());
        }
        mac.update(&[0x00]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// The identifier of the key these tokens are made under.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The token of one rule, or `None` if any of its fields is absent.
    pub fn token(&self, rule: Rule, f: &IdentityFields) -> Option<Token> {
        let dob = f.dob.map(dob::encode);
        self.token_with(rule, f, dob.as_ref())
    }

    /// The tokens of every rule in [`RULES`].
    pub fn tokens(&self, f: &IdentityFields) -> TokenSet {
        let dob = f.dob.map(dob::encode);
        TokenSet {
            tokens: RULES.map(|rule| self.token_with(rule, f, dob.as_ref())),
        }
    }

    /// Shared implementation with the DOB already encoded.
    fn token_with(&self, rule: Rule, f: &IdentityFields, dob: Option<&[u8; 8]>) -> Option<Token> {
        let mut mac = self.states[rule.index()].clone();
        match rule {
            Rule::Ssn => {
                mac.update(f.ssn.as_ref()?.digits());
            }
            Rule::SsnDob => {
                let (ssn, dob) = (f.ssn.as_ref()?, dob?);
                mac.update(ssn.digits());
                mac.update(SEP);
                mac.update(dob);
            }
            Rule::NameDob => {
                let (last, first, dob) = (name_bytes(&f.last)?, name_bytes(&f.first)?, dob?);
                mac.update(last);
                mac.update(SEP);
                mac.update(first);
                mac.update(SEP);
                mac.update(dob);
            }
            Rule::NameInitSexDob => {
                let last = name_bytes(&f.last)?;
                // Same validity test as the full first name, so a first name that
                // cannot make `name_dob` cannot make an initial either.
                let initial = name_bytes(&f.first)?[0];
                let (sex, dob) = (f.sex?, dob?);
                mac.update(last);
                mac.update(SEP);
                mac.update(&[initial]);
                mac.update(SEP);
                mac.update(&[sex.as_byte()]);
                mac.update(SEP);
                mac.update(dob);
            }
            Rule::NameDobZip3 => {
                let (last, first, dob) = (name_bytes(&f.last)?, name_bytes(&f.first)?, dob?);
                let zip3 = f.zip.as_ref()?.zip3();
                mac.update(last);
                mac.update(SEP);
                mac.update(first);
                mac.update(SEP);
                mac.update(dob);
                mac.update(SEP);
                mac.update(&zip3);
            }
        }
        Some(mac.finalize().into_bytes().into())
    }
}

/// A name field's bytes, or `None` if absent or not a normalized A–Z name.
///
/// `IdentityFields` has public `String` fields, so a caller could bypass
/// [`name::normalize`](super::name::normalize); refusing anything outside `A`–`Z`
/// keeps the separators unambiguous and upholds "never a token of garbage".
fn name_bytes(n: &Option<String>) -> Option<&[u8]> {
    let b = n.as_deref()?.as_bytes();
    (!b.is_empty() && b.iter().all(u8::is_ascii_uppercase)).then_some(b)
}

/// A hash map keyed by tokens.
pub type TokenMap<V> = std::collections::HashMap<Token, V, TokenHashBuilder>;

/// Hashes tokens by their own bytes instead of SipHash.
///
/// A token is an HMAC output: to anyone without the key its bytes are uniformly random,
/// so its first eight bytes are already as good a hash as any function could make, and
/// SipHash's resistance to chosen keys buys nothing (whoever could choose tokens would
/// hold the key). At a million persons the registry holds about six million tokens, and
/// SipHash over 32 bytes was a visible share of loading and matching them.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenHashBuilder;

impl std::hash::BuildHasher for TokenHashBuilder {
    type Hasher = TokenHasher;

    fn build_hasher(&self) -> TokenHasher {
        TokenHasher(0)
    }
}

/// See [`TokenHashBuilder`]. Anything else written (a length prefix, a rule number) goes
/// through `write` like the token's bytes and is folded in, so it also serves keys such as
/// `(rule, token)`.
#[derive(Debug, Clone, Copy)]
pub struct TokenHasher(u64);

impl TokenHasher {
    /// An odd constant with well-mixed bits: the multiply spreads every input bit upward.
    const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

    fn fold(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(Self::MIX);
    }
}

impl std::hash::Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(2) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.fold(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        // hashbrown takes the bucket from the low bits and a tag from the top seven.
        self.0 ^ (self.0 >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_spread_over_buckets() {
        use std::hash::BuildHasher;
        // hashbrown takes the bucket from the low bits and a tag from the top seven:
        // both must vary when only the token varies.
        let hashes: Vec<u64> = (0u32..4096)
            .map(|i| {
                let mut t = [0u8; 32];
                t[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
                TokenHashBuilder.hash_one((2i32, t))
            })
            .collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 2500, "low bits: {} distinct", low.len());
        assert_eq!(top.len(), 128, "top bits: {} distinct", top.len());
    }
    use crate::identity::{Sex, demo, ssn};
    use chrono::NaiveDate;

    fn key() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    fn fields() -> IdentityFields {
        IdentityFields {
            ssn: Some(ssn::normalize("212-67-4431").unwrap()),
            first: Some("ZEBULON".into()),
            last: Some("QUACKENBUSH".into()),
            dob: NaiveDate::from_ymd_opt(1983, 4, 5),
            sex: Some(Sex::M),
            zip: Some(demo::zip("65101").unwrap()),
        }
    }

    /// The pre-keyed clone must equal a from-scratch HMAC over the documented message.
    #[test]
    fn matches_plain_hmac_over_documented_message() {
        let t = Tokenizer::new(&key(), "test-key-0");
        let set = t.tokens(&fields());
        let msgs: [&[u8]; 5] = [
            b"xmatch/v1/ssn\x00212674431",
            b"xmatch/v1/ssn_dob\x00212674431\x1f19830405",
            b"xmatch/v1/name_dob\x00QUACKENBUSH\x1fZEBULON\x1f19830405",
            b"xmatch/v1/name_init_sex_dob\x00QUACKENBUSH\x1fZ\x1fM\x1f19830405",
            b"xmatch/v1/name_dob_zip3\x00QUACKENBUSH\x1fZEBULON\x1f19830405\x1f651",
        ];
        for (rule, msg) in RULES.into_iter().zip(msgs) {
            let mut mac = HmacSha256::new_from_slice(&key()).unwrap();
            mac.update(msg);
            let want: Token = mac.finalize().into_bytes().into();
            assert_eq!(set.get(rule), Some(&want), "{rule}");
            assert_eq!(t.token(rule, &fields()), Some(want));
        }
        assert_eq!(set.count(), 5);
    }

    #[test]
    fn null_rule_and_garbage_names() {
        let t = Tokenizer::new(&key(), "k");
        let mut f = fields();
        f.first = Some("Zebulon".into()); // not normalized: no name tokens at all
        let set = t.tokens(&f);
        assert!(set.get(Rule::NameDob).is_none() && set.get(Rule::NameInitSexDob).is_none());
        f.sex = None;
        f.first = Some("not normalized".into());
        let set = t.tokens(&f);
        assert!(set.get(Rule::Ssn).is_some() && set.get(Rule::SsnDob).is_some());
        assert!(set.get(Rule::NameDob).is_none());
        assert!(set.get(Rule::NameInitSexDob).is_none());
        assert!(set.get(Rule::NameDobZip3).is_none());
        assert_eq!(t.tokens(&IdentityFields::default()).count(), 0);
    }

    #[test]
    fn key_and_labels_separate_tokens() {
        let a = Tokenizer::new(&key(), "a").tokens(&fields());
        let b = Tokenizer::new(&[7; 32], "b").tokens(&fields());
        for r in RULES {
            assert_ne!(a.get(r), b.get(r));
            assert_eq!(Rule::from_name(r.name()), Some(r));
            assert_eq!(
                r.label(),
                format!("xmatch/v{TOKEN_LABEL_VERSION}/{}", r.name())
            );
        }
        let dbg = format!("{:?}", Tokenizer::new(&key(), "a"));
        assert!(dbg.contains("\"a\"") && !dbg.contains("00, 01"));
    }
}
