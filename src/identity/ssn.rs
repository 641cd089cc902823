//! Social Security Number normalization and validation.
//!
//! The canonical form is exactly 9 ASCII digits. Formatting (`123-45-6789`,
//! `123 45 6789`, `123.45.6789`) is stripped; 7- and 8-digit values, which are SSNs
//! that went through a spreadsheet as integers and lost their leading zeros, are
//! left-padded and flagged [`Ssn::repaired`].
//!
//! Validity follows the SSA's structural rules (area 000/666 never issued, 900–999
//! are ITINs, group 00 and serial 0000 never issued) plus a deny-list of well-known
//! fakes ([`KNOWN_FAKES`]). Since SSA's 2011 randomization, no finer check (e.g. the
//! old "highest group issued" table) is valid, so none is attempted.

use std::fmt;

use super::Reason;

/// A normalized, structurally valid SSN.
///
/// The digits are private: `Debug` and `Display` show only `***-**-NNNN`, so an `Ssn`
/// can be logged or put in an error without leaking it. Use [`Ssn::digits`] to feed
/// it to a hash. Equality and hashing consider only the digits, not whether the
/// value was [`repaired`](Ssn::repaired).
#[derive(Clone, Copy)]
pub struct Ssn {
    digits: [u8; 9],
    repaired: bool,
}

impl Ssn {
    /// The 9 ASCII digits (`b'0'..=b'9'`), for hashing only. Never display them.
    pub fn digits(&self) -> &[u8; 9] {
        &self.digits
    }

    /// The last four digits, e.g. `"1234"`; the only part that may be shown.
    pub fn last4(&self) -> &str {
        // The digits are ASCII by construction.
        std::str::from_utf8(&self.digits[5..]).unwrap_or("????")
    }

    /// The masked form `***-**-NNNN`.
    pub fn masked(&self) -> String {
        format!("***-**-{}", self.last4())
    }

    /// `true` when the input had 7 or 8 digits and leading zeros were restored.
    pub fn repaired(&self) -> bool {
        self.repaired
    }
}

impl PartialEq for Ssn {
    fn eq(&self, other: &Self) -> bool {
        self.digits == other.digits
    }
}

impl Eq for Ssn {}

impl std::hash::Hash for Ssn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digits.hash(state);
    }
}

impl fmt::Display for Ssn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "***-**-{}", self.last4())
    }
}

impl fmt::Debug for Ssn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ssn(***-**-{})", self.last4())
    }
}

/// The last four digits of an SSN as read, without an allocation: every row of a
/// twenty-million-row wage file carries one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Last4([u8; 4]);

impl Last4 {
    /// The last four ASCII digits of `s`, if it has at least four.
    pub fn of(s: &str) -> Option<Last4> {
        let mut out = [0u8; 4];
        let mut n = 0;
        for b in s.bytes().rev().filter(u8::is_ascii_digit).take(4) {
            n += 1;
            out[4 - n] = b;
        }
        (n == 4).then_some(Last4(out))
    }
}

impl std::ops::Deref for Last4 {
    type Target = str;
    fn deref(&self) -> &str {
        // Four ASCII digits by construction.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl fmt::Debug for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Last4({})", &**self)
    }
}

/// Well-known fake or placeholder SSNs, rejected as [`Reason::SsnKnownFake`].
///
/// Why each is here — every entry is a number that many *different* people's
/// records carry, so a token built from it would falsely link them all:
///
/// * `078-05-1120` — the Woolworth wallet-card sample (1938); used by 40,000+ people,
///   voided by SSA.
/// * `219-09-9999` — the sample printed in a 1940 Social Security Board pamphlet.
/// * `457-55-5462` — published by LifeLock's CEO in advertising; used by many
///   identity thieves.
/// * `123-45-6789` and every other 9-digit run of the ascending (`012345678`,
///   `234567890`, …) or descending (`987654321`, `876543210`, …) digit cycle — what
///   people type when a form insists on a number. Several are structurally valid
///   (`012-34-5678`, `234-56-7890`, `876-54-3210`), so the structural rules alone
///   would not catch them. The chance that a real SSN is one of these 20 numbers is
///   negligible next to the harm of merging everyone who typed one.
/// * `111-11-1111` … `999-99-9999` — every all-same-digit number (the structurally
///   valid ones from 111 to 888 especially); `000-00-0000` is already invalid by area.
/// * `987-65-4320` … `987-65-4329` — reserved by SSA for use in advertisements
///   (also ITIN-range, listed so the reason says "fake" rather than "ITIN").
///
/// The deny-list is checked *before* the structural rules, so a number that is
/// both (e.g. `999-99-9999`) reports `ssn_known_fake`.
pub const KNOWN_FAKES: &[[u8; 9]] = &[
    *b"078051120",
    *b"219099999",
    *b"457555462",
    *b"987654320",
    *b"987654322",
    *b"987654323",
    *b"987654324",
    *b"987654325",
    *b"987654326",
    *b"987654327",
    *b"987654328",
    *b"987654329",
    // 987654321 is covered by the descending runs below.
];

/// `true` if `d` (9 ASCII digits) is on the deny-list: [`KNOWN_FAKES`], an
/// all-same-digit number (other than 000000000, which is invalid by area), or a
/// 9-digit window of the ascending or descending digit cycle.
pub fn is_known_fake(d: &[u8; 9]) -> bool {
    if KNOWN_FAKES.contains(d) {
        return true;
    }
    if d[0] != b'0' && d.iter().all(|&b| b == d[0]) {
        return true;
    }
    // Ascending cycle 0123456789012…: each digit is the previous + 1 (mod 10).
    let ascending = d.windows(2).all(|w| (w[0] - b'0' + 1) % 10 == w[1] - b'0');
    // Descending cycle 9876543210987…: each digit is the previous − 1 (mod 10).
    let descending = d.windows(2).all(|w| (w[1] - b'0' + 1) % 10 == w[0] - b'0');
    ascending || descending
}

/// Words meaning "no SSN given" (compared case-insensitively after trimming).
const MISSING_WORDS: &[&str] = &[
    "REFUSED",
    "REFUSE",
    "DECLINED",
    "NONE",
    "N/A",
    "NA",
    "NULL",
    "UNKNOWN",
    "UNK",
    "NOT PROVIDED",
];

/// Normalize and validate a raw SSN.
///
/// Steps: trim; empty or a refusal word → [`Reason::SsnMissing`]; drop a trailing
/// `.0` left by a spreadsheet export of an integer; remove spaces, `-` and `.`; any
/// other non-digit → [`Reason::SsnNonNumeric`]; 7–8 digits are left-padded with
/// zeros (`repaired`); any count other than 9 → [`Reason::SsnBadLength`]; then the
/// deny-list ([`is_known_fake`]) and the SSA structural rules (area, ITIN, group,
/// serial), in that order.
///
/// Idempotent: normalizing the 9 digits of a returned `Ssn` returns an equal `Ssn`.
pub fn normalize(raw: &str) -> Result<Ssn, Reason> {
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || MISSING_WORDS
            .iter()
            .any(|w| trimmed.eq_ignore_ascii_case(w))
    {
        return Err(Reason::SsnMissing);
    }
    let body = match trimmed.strip_suffix(".0") {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => trimmed,
    };
    let mut buf = [b'0'; 9];
    let mut n = 0usize;
    for c in body.chars() {
        match c {
            '0'..='9' => {
                if n < 9 {
                    buf[n] = c as u8;
                }
                n += 1;
            }
            '-' | '.' => {}
            c if c.is_whitespace() => {}
            _ => return Err(Reason::SsnNonNumeric),
        }
    }
    let (digits, repaired) = match n {
        9 => (buf, false),
        7 | 8 => {
            let pad = 9 - n;
            let mut d = [b'0'; 9];
            d[pad..].copy_from_slice(&buf[..n]);
            (d, true)
        }
        _ => return Err(Reason::SsnBadLength),
    };
    validate(&digits)?;
    Ok(Ssn { digits, repaired })
}

/// Deny-list and SSA structural checks on 9 ASCII digits.
fn validate(d: &[u8; 9]) -> Result<(), Reason> {
    if is_known_fake(d) {
        return Err(Reason::SsnKnownFake);
    }
    match &d[0..3] {
        b"000" | b"666" => return Err(Reason::SsnInvalidArea),
        [b'9', _, _] => return Err(Reason::SsnItin),
        _ => {}
    }
    if &d[3..5] == b"00" {
        return Err(Reason::SsnInvalidGroup);
    }
    if &d[5..9] == b"0000" {
        return Err(Reason::SsnInvalidSerial);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last4_takes_the_last_four_digits_as_read() {
        assert_eq!(Last4::of("212-67-4431").as_deref(), Some("4431"));
        assert_eq!(Last4::of(" 21267 44-31x").as_deref(), Some("4431"));
        assert_eq!(Last4::of("1234").as_deref(), Some("1234"));
        assert_eq!(Last4::of("12-3"), None);
        assert_eq!(Last4::of(""), None);
        assert_eq!(format!("{:?}", Last4::of("0012").unwrap()), "Last4(0012)");
    }

    fn ok(s: &str) -> [u8; 9] {
        *normalize(s).expect("valid").digits()
    }

    #[test]
    fn formats() {
        assert_eq!(&ok("212-67-4431"), b"212674431");
        assert_eq!(&ok(" 212 67 4431 "), b"212674431");
        assert_eq!(&ok("212.67.4431"), b"212674431");
        assert_eq!(&ok("212674431.0"), b"212674431");
        let r = normalize("1674431").unwrap();
        assert_eq!(r.digits(), b"001674431");
        assert!(r.repaired());
        assert!(!normalize("212674431").unwrap().repaired());
    }

    #[test]
    fn reasons() {
        assert_eq!(normalize(""), Err(Reason::SsnMissing));
        assert_eq!(normalize("  refused "), Err(Reason::SsnMissing));
        assert_eq!(normalize("N/A"), Err(Reason::SsnMissing));
        assert_eq!(normalize("21267443X"), Err(Reason::SsnNonNumeric));
        assert_eq!(normalize("123456"), Err(Reason::SsnBadLength));
        assert_eq!(normalize("2126744310"), Err(Reason::SsnBadLength));
        assert_eq!(normalize("000-12-3456"), Err(Reason::SsnInvalidArea));
        assert_eq!(normalize("666-12-3456"), Err(Reason::SsnInvalidArea));
        assert_eq!(normalize("912-70-1234"), Err(Reason::SsnItin));
        assert_eq!(normalize("212-00-4431"), Err(Reason::SsnInvalidGroup));
        assert_eq!(normalize("212-67-0000"), Err(Reason::SsnInvalidSerial));
        for fake in [
            "123-45-6789",
            "078-05-1120",
            "219-09-9999",
            "457-55-5462",
            "111-11-1111",
            "888888888",
            "999-99-9999",
            "012-34-5678",
            "234-56-7890",
            "987-65-4321",
            "876-54-3210",
            "987-65-4325",
            "78051120",
        ] {
            assert_eq!(normalize(fake), Err(Reason::SsnKnownFake), "{fake}");
        }
    }

    #[test]
    fn masking() {
        let s = normalize("212-67-4431").unwrap();
        assert_eq!(s.masked(), "***-**-4431");
        assert_eq!(s.to_string(), "***-**-4431");
        assert_eq!(format!("{s:?}"), "Ssn(***-**-4431)");
        assert_eq!(s.last4(), "4431");
    }
}
