//! Date-of-birth parsing.
//!
//! Accepted formats (after trimming, with an optional trailing time part such as
//! `T00:00:00`, ` 00:00:00`, `T12:30`, `T00:00:00.000Z`, which is ignored):
//!
//! | format       | example      |
//! |--------------|--------------|
//! | `YYYY-MM-DD` | `1983-04-05` |
//! | `YYYYMMDD`   | `19830405` (PIRL element 200) |
//! | `YYYY/MM/DD` | `1983/04/05` |
//! | `MM/DD/YYYY` | `04/05/1983`, also `4/5/1983` |
//! | `MM-DD-YYYY` | `04-05-1983`, also `4-5-1983` |
//!
//! Month and day may have one or two digits in the separated forms; the year must
//! have exactly four. Two-digit years (`4/5/83`) are rejected: whether `83` means
//! 1883, 1983 or 2083 cannot be decided safely, and a wrong century silently
//! produces a wrong token. `DD/MM/YYYY` is not accepted; US agencies use month first.
//!
//! Range: `1900-01-01 ≤ dob ≤ today`. There is deliberately **no** minimum-age
//! check here (WIOA Youth starts at 14, but other programs and partner records
//! have no such floor); eligibility rules belong elsewhere.

use chrono::{Datelike, NaiveDate};

use super::Reason;

/// Earliest accepted date of birth.
pub const MIN_DOB: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("1900-01-01 is a valid date"),
};

/// Remove a trailing time part: `T` or a space followed by `HH:MM[:SS[.fff]][Z]`.
fn strip_time(s: &str) -> Option<&str> {
    let Some(pos) = s.find(['T', ' ']) else {
        return Some(s);
    };
    let (date, time) = (&s[..pos], s[pos + 1..].trim());
    let time = time.strip_suffix('Z').unwrap_or(time);
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    let two_digits = |p: &&str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if (parts.len() == 2 || parts.len() == 3) && parts.iter().all(two_digits) && frac_ok {
        Some(date)
    } else {
        None
    }
}

fn num(s: &str, min_len: usize, max_len: usize) -> Option<u32> {
    if s.len() < min_len || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse the date part into (year, month, day) without calendar validation.
fn parse_ymd(s: &str) -> Option<(i32, u32, u32)> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some((
            num(&s[0..4], 4, 4)? as i32,
            num(&s[4..6], 2, 2)?,
            num(&s[6..8], 2, 2)?,
        ));
    }
    let sep = if s.contains('-') {
        '-'
    } else if s.contains('/') {
        '/'
    } else {
        return None;
    };
    let mut it = s.split(sep);
    let (a, b, c) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    if a.len() == 4 {
        Some((num(a, 4, 4)? as i32, num(b, 1, 2)?, num(c, 1, 2)?))
    } else {
        Some((num(c, 4, 4)? as i32, num(a, 1, 2)?, num(b, 1, 2)?))
    }
}

/// Parse a raw date of birth and check `1900-01-01 ≤ dob ≤ today`.
///
/// Errors: empty → [`Reason::DobMissing`]; unknown format, two-digit year or an
/// impossible date (`2023-02-30`) → [`Reason::DobUnparseable`]; outside the range
/// → [`Reason::DobOutOfRange`]. Idempotent: `parse(encode(d))` returns `d`.
pub fn parse(raw: &str, today: NaiveDate) -> Result<NaiveDate, Reason> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Reason::DobMissing);
    }
    let date_part = strip_time(s).ok_or(Reason::DobUnparseable)?;
    let (y, m, d) = parse_ymd(date_part).ok_or(Reason::DobUnparseable)?;
    let date = NaiveDate::from_ymd_opt(y, m, d).ok_or(Reason::DobUnparseable)?;
    if date < MIN_DOB || date > today {
        return Err(Reason::DobOutOfRange);
    }
    Ok(date)
}

/// The token encoding of a date: 8 ASCII digits `YYYYMMDD` (PIRL element 200 form).
///
/// Only meaningful for years 1000–9999; [`parse`] only returns 1900..=today.
pub fn encode(d: NaiveDate) -> [u8; 8] {
    let mut out = [b'0'; 8];
    let mut put = |start: usize, width: usize, mut v: u32| {
        for i in (start..start + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, d.year().clamp(0, 9999) as u32);
    put(4, 2, d.month());
    put(6, 2, d.day());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
    }

    fn p(s: &str) -> Result<NaiveDate, Reason> {
        parse(s, today())
    }

    #[test]
    fn formats() {
        let d = NaiveDate::from_ymd_opt(1983, 4, 5).unwrap();
        for s in [
            "1983-04-05",
            "19830405",
            "04/05/1983",
            "4/5/1983",
            "04-05-1983",
            "1983/04/05",
            "1983-04-05T00:00:00",
            "1983-04-05 00:00:00",
            "1983-04-05T00:00:00.000Z",
            "04/05/1983 00:00",
            " 1983-04-05 ",
        ] {
            assert_eq!(p(s), Ok(d), "{s}");
        }
        assert_eq!(&encode(d), b"19830405");
    }

    #[test]
    fn reasons() {
        assert_eq!(p(""), Err(Reason::DobMissing));
        assert_eq!(p("  "), Err(Reason::DobMissing));
        assert_eq!(p("4/5/83"), Err(Reason::DobUnparseable));
        assert_eq!(p("83-04-05"), Err(Reason::DobUnparseable));
        assert_eq!(p("2023-02-30"), Err(Reason::DobUnparseable));
        assert_eq!(p("1983-13-01"), Err(Reason::DobUnparseable));
        assert_eq!(p("April 5, 1983"), Err(Reason::DobUnparseable));
        assert_eq!(p("1983-04/05"), Err(Reason::DobUnparseable));
        assert_eq!(p("1983-04-05Tnoon"), Err(Reason::DobUnparseable));
        assert_eq!(p("1899-12-31"), Err(Reason::DobOutOfRange));
        assert_eq!(p("2025-07-01"), Err(Reason::DobOutOfRange));
        assert_eq!(p("1900-01-01"), Ok(MIN_DOB));
        assert_eq!(p("2025-06-30"), Ok(today()));
    }
}
