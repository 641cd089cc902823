//! Demographic fields used in tokens: sex and ZIP code.

use std::fmt;

use super::Reason;

/// Sex as recorded for matching (PIRL element 201: 1 male, 2 female).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Sex {
    M,
    F,
}

impl Sex {
    /// The token encoding: `b'M'` or `b'F'`.
    pub const fn as_byte(self) -> u8 {
        match self {
            Sex::M => b'M',
            Sex::F => b'F',
        }
    }

    /// `"M"` or `"F"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Sex::M => "M",
            Sex::F => "F",
        }
    }
}

/// Read a raw sex value: `M`/`MALE`/`1` → M, `F`/`FEMALE`/`2` → F (case-insensitive,
/// trimmed). Anything else — `9` ("did not self-identify"), `U`, `X`, blank — is
/// `None`. That is not an error: the person may decline, and tokens that need sex
/// are simply not produced for them.
pub fn sex(raw: &str) -> Option<Sex> {
    let s = raw.trim();
    if ["M", "MALE", "1"].iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(Sex::M)
    } else if ["F", "FEMALE", "2"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
    {
        Some(Sex::F)
    } else {
        None
    }
}

/// A normalized 5-digit US ZIP code.
///
/// ZIP5 is a quasi-identifier, so `Debug` and `Display` show only the ZIP3 prefix
/// (`651**`); use [`Zip::as_str`] for the full value. Equality and hashing consider
/// only the digits, not whether the value was [`repaired`](Zip::repaired).
#[derive(Copy, Clone)]
pub struct Zip {
    digits: [u8; 5],
    repaired: bool,
}

impl Zip {
    /// The 5 digits, e.g. `"06101"`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits).unwrap_or("?????")
    }

    /// The first three digits as ASCII bytes (the token encoding of ZIP3).
    pub fn zip3(&self) -> [u8; 3] {
        [self.digits[0], self.digits[1], self.digits[2]]
    }

    /// The first three digits as a string, e.g. `"061"`.
    pub fn zip3_str(&self) -> &str {
        &self.as_str()[..3]
    }

    /// `true` when a leading zero lost by a spreadsheet was restored.
    pub fn repaired(&self) -> bool {
        self.repaired
    }
}

impl PartialEq for Zip {
    fn eq(&self, other: &Self) -> bool {
        self.digits == other.digits
    }
}

impl Eq for Zip {}

impl std::hash::Hash for Zip {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digits.hash(state);
    }
}

impl fmt::Display for Zip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}**", self.zip3_str())
    }
}

impl fmt::Debug for Zip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zip({}**)", self.zip3_str())
    }
}

/// Normalize a raw ZIP code to 5 digits.
///
/// Accepted: `12345`; ZIP+4 as `12345-6789`, `12345 6789` or `123456789` (the +4 is
/// dropped); 4 digits, or 8 digits (ZIP+4 stored as an integer), with a leading
/// zero restored (`repaired`, New England ZIPs start with 0). Empty →
/// [`Reason::ZipMissing`]; anything else, and the placeholders `00000` and `99999`
/// (neither is assigned by USPS), → [`Reason::ZipInvalid`].
/// Idempotent: `zip(z.as_str())` returns `z`'s digits.
pub fn zip(raw: &str) -> Result<Zip, Reason> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Reason::ZipMissing);
    }
    let mut buf = [b'0'; 9];
    let mut n = 0usize;
    // Number of digits before the (single) `-`/space separator, if any.
    let mut sep_at: Option<usize> = None;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => {
                if n == 9 {
                    return Err(Reason::ZipInvalid);
                }
                buf[n] = b;
                n += 1;
            }
            b'-' | b' ' if sep_at.is_none() && (n == 4 || n == 5) => sep_at = Some(n),
            _ => return Err(Reason::ZipInvalid),
        }
    }
    let (digits, repaired) = match (n, sep_at) {
        (5, None) | (9, None | Some(5)) => ([buf[0], buf[1], buf[2], buf[3], buf[4]], false),
        (4, None) | (8, None | Some(4)) => ([b'0', buf[0], buf[1], buf[2], buf[3]], true),
        _ => return Err(Reason::ZipInvalid),
    };
    if &digits == b"00000" || &digits == b"99999" {
        return Err(Reason::ZipInvalid);
    }
    Ok(Zip { digits, repaired })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sexes() {
        for s in ["M", "m", "male", " MALE ", "1"] {
            assert_eq!(sex(s), Some(Sex::M), "{s}");
        }
        for s in ["F", "f", "Female", "2"] {
            assert_eq!(sex(s), Some(Sex::F), "{s}");
        }
        for s in ["9", "U", "X", "", "  ", "other"] {
            assert_eq!(sex(s), None, "{s}");
        }
    }

    #[test]
    fn zips() {
        let z = |s: &str| zip(s).map(|z| z.as_str().to_owned());
        assert_eq!(z("65101").unwrap(), "65101");
        assert_eq!(z("65101-1234").unwrap(), "65101");
        assert_eq!(z("65101 1234").unwrap(), "65101");
        assert_eq!(z("651011234").unwrap(), "65101");
        assert_eq!(z("6101").unwrap(), "06101");
        assert_eq!(z("6101-1234").unwrap(), "06101");
        assert_eq!(z("61011234").unwrap(), "06101");
        assert!(zip("6101").unwrap().repaired());
        assert_eq!(zip("65101").unwrap().zip3(), *b"651");
        assert_eq!(zip(""), Err(Reason::ZipMissing));
        for bad in [
            "00000",
            "99999",
            "123",
            "123456",
            "1234567",
            "1234567890",
            "65101-",
            "65101-12",
            "6510a",
            "65-101",
            "651011234-",
            "ZIP",
        ] {
            assert_eq!(zip(bad), Err(Reason::ZipInvalid), "{bad}");
        }
        let z = zip("65101").unwrap();
        assert_eq!(format!("{z} {z:?}"), "651** Zip(651**)");
    }
}
