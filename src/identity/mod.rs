//! Identity normalization and keyed tokens.
//!
//! Raw identifying fields (SSN, names, date of birth, sex, ZIP) arrive from many
//! agencies in many spellings. This module turns them into one canonical form each
//! ([`ssn`], [`name`], [`dob`], [`demo`]) and then into keyed HMAC-SHA256 tokens
//! ([`token`]) that two agencies holding the same secret key can compare without
//! exchanging the identifiers themselves.
//!
//! Two rules run through the whole module:
//!
//! * **Never a token of garbage.** A field that is missing, a placeholder (`UNKNOWN`,
//!   `FNU`, `111-11-1111`) or invalid yields no value, and every token that needs it
//!   is `None`. A token built from a placeholder would "match" every other record
//!   carrying the same placeholder, which is far worse than not matching at all.
//! * **No PII in output.** [`Reason`] messages never echo the raw value, an [`Ssn`]
//!   prints only as `***-**-1234`, and the `Debug` output of [`IdentityFields`] and
//!   [`RawIdentity`] shows only which fields are present.

use std::fmt;

use chrono::NaiveDate;

pub mod blocking;
pub mod bloom;
pub mod demo;
pub mod dob;
pub mod identify;
pub mod ids;
pub mod name;
pub mod registry;
pub mod ssn;
pub mod token;

pub use demo::{Sex, Zip};
pub use ssn::Ssn;
pub use token::{RULE_SET_VERSION, RULES, Rule, Token, TokenSet, Tokenizer};

/// Why a raw identity field was not usable.
///
/// Every variant has a stable snake_case code ([`Reason::as_str`]) meant for
/// counters, reports and data-quality dashboards; the codes are part of the public
/// contract and will not be renamed. The `Display` text is a short human-readable
/// explanation that never contains the offending value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reason {
    /// SSN empty or an explicit refusal (`REFUSED`, `NONE`, `N/A`, …).
    #[error("SSN missing or refused")]
    SsnMissing,
    /// SSN contains characters other than digits and the separators ` `, `-`, `.`.
    #[error("SSN contains characters other than digits and separators")]
    SsnNonNumeric,
    /// SSN has a digit count other than 9 (or 7–8, which are repaired).
    #[error("SSN does not have 9 digits")]
    SsnBadLength,
    /// SSN area number 000 or 666 (never issued by SSA).
    #[error("SSN area number is never issued (000 or 666)")]
    SsnInvalidArea,
    /// Area number 900–999: an IRS ITIN (or other non-SSN tax ID), not an SSN.
    #[error("number is in the ITIN range (area 900-999), not an SSN")]
    SsnItin,
    /// SSN group number 00.
    #[error("SSN group number is 00")]
    SsnInvalidGroup,
    /// SSN serial number 0000.
    #[error("SSN serial number is 0000")]
    SsnInvalidSerial,
    /// A well-known fake or placeholder SSN (see [`ssn::KNOWN_FAKES`]).
    #[error("SSN is a well-known fake or placeholder")]
    SsnKnownFake,
    /// Name empty.
    #[error("name missing")]
    NameMissing,
    /// Name is a placeholder (`UNKNOWN`, `FNU`, `BABY GIRL`, `XXX`, only a title…).
    #[error("name is a placeholder")]
    NamePlaceholder,
    /// Name contains no Latin letters at all (digits/punctuation/non-Latin script only).
    #[error("name contains no Latin letters")]
    NameNoLetters,
    /// Date of birth empty.
    #[error("date of birth missing")]
    DobMissing,
    /// Date of birth in no accepted format, ambiguous (two-digit year) or not a calendar date.
    #[error("date of birth not in an accepted format")]
    DobUnparseable,
    /// Date of birth before 1900-01-01 or in the future.
    #[error("date of birth outside 1900-01-01..=today")]
    DobOutOfRange,
    /// ZIP empty.
    #[error("ZIP code missing")]
    ZipMissing,
    /// ZIP not 4/5/8/9 digits (with optional `-` before the +4), or a placeholder.
    #[error("ZIP code invalid")]
    ZipInvalid,
}

impl Reason {
    /// Every reason, in a fixed order, so callers can size counter arrays and report
    /// zero counts too.
    pub const ALL: [Reason; 16] = [
        Reason::SsnMissing,
        Reason::SsnNonNumeric,
        Reason::SsnBadLength,
        Reason::SsnInvalidArea,
        Reason::SsnItin,
        Reason::SsnInvalidGroup,
        Reason::SsnInvalidSerial,
        Reason::SsnKnownFake,
        Reason::NameMissing,
        Reason::NamePlaceholder,
        Reason::NameNoLetters,
        Reason::DobMissing,
        Reason::DobUnparseable,
        Reason::DobOutOfRange,
        Reason::ZipMissing,
        Reason::ZipInvalid,
    ];

    /// Stable snake_case code, e.g. `ssn_itin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::SsnMissing => "ssn_missing",
            Reason::SsnNonNumeric => "ssn_non_numeric",
            Reason::SsnBadLength => "ssn_bad_length",
            Reason::SsnInvalidArea => "ssn_invalid_area",
            Reason::SsnItin => "ssn_itin",
            Reason::SsnInvalidGroup => "ssn_invalid_group",
            Reason::SsnInvalidSerial => "ssn_invalid_serial",
            Reason::SsnKnownFake => "ssn_known_fake",
            Reason::NameMissing => "name_missing",
            Reason::NamePlaceholder => "name_placeholder",
            Reason::NameNoLetters => "name_no_letters",
            Reason::DobMissing => "dob_missing",
            Reason::DobUnparseable => "dob_unparseable",
            Reason::DobOutOfRange => "dob_out_of_range",
            Reason::ZipMissing => "zip_missing",
            Reason::ZipInvalid => "zip_invalid",
        }
    }

    /// Position of this reason in [`Reason::ALL`] (for counter arrays).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Parse a code produced by [`Reason::as_str`].
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == code)
    }
}

/// Normalized identity of one record: the input to [`Tokenizer::tokens`].
///
/// `None` means "absent or unusable"; the reason (if any) is reported separately by
/// [`normalize_record`]. Names are already normalized (`A`–`Z` only).
///
/// `Debug` deliberately prints only which fields are present (SSN masked), never the
/// names or the date of birth.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IdentityFields {
    pub ssn: Option<Ssn>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub dob: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub zip: Option<Zip>,
}

fn present<T>(v: &Option<T>) -> &'static str {
    if v.is_some() { "present" } else { "None" }
}

impl fmt::Debug for IdentityFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityFields")
            .field("ssn", &self.ssn)
            .field("first", &format_args!("{}", present(&self.first)))
            .field("last", &format_args!("{}", present(&self.last)))
            .field("dob", &format_args!("{}", present(&self.dob)))
            .field("sex", &self.sex)
            .field("zip", &self.zip)
            .finish()
    }
}

/// Raw identity columns of one source record, borrowed from the input.
///
/// `None` means the source has no such column at all (no reason is reported);
/// `Some("")` means the column exists but is empty (reported as `*_missing`).
/// `Debug` prints only which columns are present.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RawIdentity<'a> {
    pub ssn: Option<&'a str>,
    pub first: Option<&'a str>,
    pub last: Option<&'a str>,
    pub dob: Option<&'a str>,
    pub sex: Option<&'a str>,
    pub zip: Option<&'a str>,
}

impl fmt::Debug for RawIdentity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawIdentity")
            .field("ssn", &format_args!("{}", present(&self.ssn)))
            .field("first", &format_args!("{}", present(&self.first)))
            .field("last", &format_args!("{}", present(&self.last)))
            .field("dob", &format_args!("{}", present(&self.dob)))
            .field("sex", &format_args!("{}", present(&self.sex)))
            .field("zip", &format_args!("{}", present(&self.zip)))
            .finish()
    }
}

/// Normalize every raw column of one record.
///
/// Returns the usable fields and the reasons for every column that was present but
/// unusable, in field order (ssn, first, last, dob, zip). Sex never produces a reason:
/// PIRL element 201 value 9 ("did not self-identify") and blanks are legitimate, they
/// just yield `None`. `today` bounds the date of birth (no births in the future).
pub fn normalize_record(raw: RawIdentity<'_>, today: NaiveDate) -> (IdentityFields, Vec<Reason>) {
    fn keep<T>(r: Result<T, Reason>, reasons: &mut Vec<Reason>) -> Option<T> {
        r.map_err(|reason| reasons.push(reason)).ok()
    }
    let mut reasons = Vec::new();
    let r = &mut reasons;
    let ssn = raw.ssn.and_then(|s| keep(ssn::normalize(s), r));
    let first = raw.first.and_then(|s| keep(name::normalize(s), r));
    let last = raw.last.and_then(|s| keep(name::normalize(s), r));
    let dob = raw.dob.and_then(|s| keep(dob::parse(s, today), r));
    let zip = raw.zip.and_then(|s| keep(demo::zip(s), r));
    let sex = raw.sex.and_then(demo::sex);
    (
        IdentityFields {
            ssn,
            first,
            last,
            dob,
            sex,
            zip,
        },
        reasons,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_unique_and_indexed() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(Reason::from_code(r.as_str()), Some(*r));
            assert!(
                r.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn debug_output_hides_pii() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let raw = RawIdentity {
            ssn: Some("212-67-4431"),
            first: Some("Zebulon"),
            last: Some("Quackenbush"),
            dob: Some("1983-04-05"),
            sex: Some("M"),
            zip: Some("65101"),
        };
        let (fields, reasons) = normalize_record(raw, today);
        assert!(reasons.is_empty());
        for s in [format!("{fields:?}"), format!("{raw:?}")] {
            for secret in [
                "212", "674431", "ZEBULON", "Zebulon", "QUACK", "Quack", "1983", "65101",
            ] {
                assert!(!s.contains(secret), "{secret} leaked");
            }
        }
        assert!(format!("{fields:?}").contains("***-**-4431"));
    }
}
