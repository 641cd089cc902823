//! Checking and converting one field: the row-level rules of ingest, shared by the CSV and
//! Parquet readers so that the same data gives the same accepted rows in either format.

use crate::schema::ColumnType;

use super::layout::{ColumnKind, LayoutColumn};

/// How a layout column's values are checked.
#[derive(Clone, Debug)]
pub(crate) enum Check {
    Text,
    Code(Vec<String>),
    YearQuarter,
    ServiceList,
    Date,
    Int,
    Flag,
    Decimal,
    /// A fixed number of bytes: a token, an encoding or a blocking key (hex in CSV).
    Bytes(usize),
    BirthYear,
    Zip3,
    Sex,
}

impl Check {
    pub(crate) fn of(col: &LayoutColumn, schema: &crate::schema::SourceSchema) -> Check {
        match col.kind {
            ColumnKind::Schema(i) => {
                let c = &schema.columns[i];
                // Identity values are judged by `identity::identify`, which reports why a
                // value is unusable without losing the rest of the row (e.g. sex `M` in a
                // column coded 1/2/9 is still a usable sex).
                if c.identity.is_some() {
                    return Check::Text;
                }
                match c.ty {
                    ColumnType::String => Check::Text,
                    ColumnType::Code => Check::Code(c.allowed.clone()),
                    ColumnType::YearQuarter => Check::YearQuarter,
                    ColumnType::ServiceList => Check::ServiceList,
                    ColumnType::Date => Check::Date,
                    ColumnType::Int => Check::Int,
                    ColumnType::Flag => Check::Flag,
                    ColumnType::Decimal => Check::Decimal,
                }
            }
            ColumnKind::Token(_) | ColumnKind::RecordToken => Check::Bytes(32),
            ColumnKind::Encoding(f) => Check::Bytes(f.bits() / 8),
            ColumnKind::Block(_) => Check::Bytes(8),
            ColumnKind::BirthYear => Check::BirthYear,
            ColumnKind::Zip3 => Check::Zip3,
            ColumnKind::Sex => Check::Sex,
            ColumnKind::KeyId => Check::Text,
            ColumnKind::RuleSetVersion => Check::Int,
        }
    }

    /// The reject reason for a value of this column that does not parse.
    fn bad(&self) -> &'static str {
        match self {
            Check::Text => "bad_text",
            Check::Code(_) => "bad_code",
            Check::YearQuarter => "bad_year_quarter",
            Check::ServiceList => "bad_service_list",
            Check::Date => "bad_date",
            Check::Int => "bad_int",
            Check::Flag => "bad_flag",
            Check::Decimal => "bad_decimal",
            Check::Bytes(32) => "bad_token",
            Check::Bytes(8) => "bad_blocking_key",
            Check::Bytes(_) => "bad_encoding",
            Check::BirthYear => "bad_birth_year",
            Check::Zip3 => "bad_zip3",
            Check::Sex => "bad_sex",
        }
    }
}

/// A checked value. Text values are left in the column's scratch string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Null,
    Str,
    Date(i32),
    Int(i64),
    Flag(i8),
    /// Cents (scale 2).
    Dec(i128),
    /// `len` bytes at the start of the buffer (at most [`MAX_BYTES`]).
    Bin(u8, [u8; MAX_BYTES]),
}

/// The longest binary value a layout holds: a 512-bit name encoding.
pub(crate) const MAX_BYTES: usize = 64;

impl Parsed {
    fn bin(b: &[u8]) -> Parsed {
        let mut buf = [0u8; MAX_BYTES];
        buf[..b.len()].copy_from_slice(b);
        Parsed::Bin(b.len() as u8, buf)
    }
}

/// A value as a file holds it, before checking.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cell<'a> {
    Null,
    Text(&'a str),
    Date(i32),
    Int(i64),
    /// Already at scale 2.
    Dec(i128),
    Bin(&'a [u8]),
}

/// Dates outside these years are typos (`0024`, `2204`), not history.
const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2199;
/// Decimal128(14, 2) holds at most 12 integer digits.
const MAX_CENTS: i128 = 10i128.pow(14) - 1;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm); no
/// allocation and no chrono round trip on the hot path.
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u32;
    }
    Some(v)
}

fn ymd(y: u32, m: u32, d: u32) -> Option<i32> {
    let y = y as i32;
    if !(MIN_YEAR..=MAX_YEAR).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    if d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses a date: `YYYY-MM-DD` (the fast path), `YYYY/MM/DD`, `MM/DD/YYYY` (one- or
/// two-digit month and day) or `YYYYMMDD`, optionally followed by a time (`T…` or ` …`),
/// which is ignored. Two-digit years are refused: `01/02/03` has no safe reading.
pub(crate) fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        return ymd(digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..])?);
    }
    let date = match s.find(['T', ' ']) {
        Some(i) => &s[..i],
        None => s,
    };
    let b = date.as_bytes();
    if b.len() == 8 {
        return ymd(digits(&b[..4])?, digits(&b[4..6])?, digits(&b[6..])?);
    }
    let sep = if date.contains('-') { '-' } else { '/' };
    let mut parts = date.split(sep);
    let (a, m, c) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    match (a.len(), m.len(), c.len()) {
        (4, 1..=2, 1..=2) => ymd(
            digits(a.as_bytes())?,
            digits(m.as_bytes())?,
            digits(c.as_bytes())?,
        ),
        (1..=2, 1..=2, 4) if sep == '/' => ymd(
            digits(c.as_bytes())?,
            digits(a.as_bytes())?,
            digits(m.as_bytes())?,
        ),
        _ => None,
    }
}

/// Parses money to cents: an optional sign, digits, and at most two decimals. More
/// decimals are refused rather than rounded: a wage file with fractions of a cent is
/// wrong in a way someone should look at.
pub(crate) fn parse_decimal(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int.is_empty() && frac.is_empty()) || int.len() > 12 || frac.len() > 2 {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as i128;
    }
    for _ in frac.len()..2 {
        v *= 10;
    }
    Some(if neg { -v } else { v })
}

fn parse_flag(s: &str) -> Option<i8> {
    const YES: [&str; 5] = ["1", "Y", "YES", "T", "TRUE"];
    const NO: [&str; 5] = ["0", "N", "NO", "F", "FALSE"];
    if YES.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(1)
    } else if NO.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(0)
    } else {
        None
    }
}

fn year_quarter(s: &str, out: &mut String) -> bool {
    let b = s.as_bytes();
    let ok = b.len() == 6
        && b[..4].iter().all(u8::is_ascii_digit)
        && (b[4] == b'Q' || b[4] == b'q')
        && (b'1'..=b'4').contains(&b[5])
        && (MIN_YEAR..=MAX_YEAR).contains(&(digits(&b[..4]).unwrap_or(0) as i32));
    if ok {
        out.push_str(&s[..4]);
        out.push('Q');
        out.push(b[5] as char);
    }
    ok
}

/// `CODE:YYYY-MM-DD:S|U` entries separated by `;` (a trailing `;` is tolerated). Only the
/// form is checked here; whether a code is in the service catalogue is for the stages
/// that read the catalogue.
fn service_list(s: &str) -> bool {
    let mut any = false;
    for entry in s.split(';') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let mut parts = entry.split(':');
        let (Some(code), Some(date), Some(mode), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let date = date.as_bytes();
        let strict_date = date.len() == 10 && date[4] == b'-' && date[7] == b'-';
        if code.is_empty()
            || !code.bytes().all(|b| b.is_ascii_alphanumeric())
            || !strict_date
            || parse_date(std::str::from_utf8(date).unwrap_or("")).is_none()
            || !(mode == "S" || mode == "U")
        {
            return false;
        }
        any = true;
    }
    any
}

/// Checks one text value. `out` receives the value's text for text columns (trimmed;
/// empty means null).
pub(crate) fn parse_text(
    check: &Check,
    raw: &str,
    out: &mut String,
) -> Result<Parsed, &'static str> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(Parsed::Null);
    }
    let bad = check.bad();
    match check {
        Check::Text => {
            out.push_str(s);
            Ok(Parsed::Str)
        }
        Check::Code(allowed) => {
            if allowed.iter().any(|a| a == s) {
                out.push_str(s);
                Ok(Parsed::Str)
            } else {
                Err(bad)
            }
        }
        Check::YearQuarter => year_quarter(s, out).then_some(Parsed::Str).ok_or(bad),
        Check::ServiceList => {
            if service_list(s) {
                out.push_str(s);
                Ok(Parsed::Str)
            } else {
                Err(bad)
            }
        }
        Check::Date => parse_date(s).map(Parsed::Date).ok_or(bad),
        Check::Int => s.parse::<i64>().map(Parsed::Int).map_err(|_| bad),
        Check::Flag => parse_flag(s).map(Parsed::Flag).ok_or(bad),
        Check::Decimal => parse_decimal(s).map(Parsed::Dec).ok_or(bad),
        Check::Bytes(n) => {
            let mut t = [0u8; MAX_BYTES];
            hex::decode_to_slice(s, t.get_mut(..*n).ok_or(bad)?).map_err(|_| bad)?;
            Ok(Parsed::Bin(*n as u8, t))
        }
        Check::BirthYear => match s.parse::<i64>() {
            Ok(y) if (MIN_YEAR as i64..=MAX_YEAR as i64).contains(&y) => Ok(Parsed::Int(y)),
            _ => Err(bad),
        },
        Check::Zip3 => {
            if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(s);
                Ok(Parsed::Str)
            } else {
                Err(bad)
            }
        }
        Check::Sex => match s {
            "M" | "m" => {
                out.push('M');
                Ok(Parsed::Str)
            }
            "F" | "f" => {
                out.push('F');
                Ok(Parsed::Str)
            }
            _ => Err(bad),
        },
    }
}

/// Checks one value of any representation (Parquet columns may already be typed).
pub(crate) fn parse_cell(
    check: &Check,
    cell: Cell<'_>,
    out: &mut String,
) -> Result<Parsed, &'static str> {
    let bad = check.bad();
    match (cell, check) {
        (Cell::Null, _) => Ok(Parsed::Null),
        (Cell::Text(s), _) => parse_text(check, s, out),
        (Cell::Date(d), Check::Date) => {
            let lo = days_from_civil(MIN_YEAR, 1, 1);
            let hi = days_from_civil(MAX_YEAR, 12, 31);
            (lo..=hi).contains(&d).then_some(Parsed::Date(d)).ok_or(bad)
        }
        (Cell::Int(v), Check::Int) => Ok(Parsed::Int(v)),
        (Cell::Int(v), Check::Flag) => match v {
            0 | 1 => Ok(Parsed::Flag(v as i8)),
            _ => Err(bad),
        },
        (Cell::Int(v), Check::BirthYear) => {
            if (MIN_YEAR as i64..=MAX_YEAR as i64).contains(&v) {
                Ok(Parsed::Int(v))
            } else {
                Err(bad)
            }
        }
        (Cell::Dec(v), Check::Decimal) => {
            (v.abs() <= MAX_CENTS).then_some(Parsed::Dec(v)).ok_or(bad)
        }
        (Cell::Bin(b), Check::Bytes(n)) if b.len() == *n && *n <= MAX_BYTES => Ok(Parsed::bin(b)),
        // The reader only hands a typed cell to a column that accepts the type.
        _ => Err(bad),
    }
}

/// A 128-bit hash of a row's checked values, for finding exact duplicate rows without
/// keeping the rows. Two independent 64-bit folded-multiply lanes: fast (a few ns per
/// field) and with accidental collisions around 2^-100 per pair, far below any other
/// error source. Not a defence against someone crafting collisions, and it need not be:
/// a crafted collision only moves a row to the rejects file, where it is visible.
#[derive(Clone, Copy)]
pub(crate) struct RowHash {
    a: u64,
    b: u64,
}

const P1: u64 = 0xa076_1d64_78bd_642f;
const P2: u64 = 0xe703_7ed1_a0b4_28db;
const P3: u64 = 0x8ebc_6af0_9c88_c6e3;
const P4: u64 = 0x5899_65cc_7537_4cc3;

#[inline]
fn fold(x: u64, k: u64) -> u64 {
    let r = (x as u128).wrapping_mul(k as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

impl RowHash {
    pub(crate) fn new() -> RowHash {
        RowHash { a: P3, b: P4 }
    }

    #[inline]
    fn word(&mut self, w: u64) {
        self.a = fold(self.a ^ w, P1);
        self.b = fold(self.b ^ w.rotate_left(32), P2);
    }

    /// Feeds bytes with their length, so field boundaries cannot shift.
    pub(crate) fn bytes(&mut self, s: &[u8]) {
        self.word(s.len() as u64 ^ 0xff00_0000_0000_0000);
        let mut chunks = s.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(buf));
        }
    }

    pub(crate) fn value(&mut self, p: &Parsed, text: &str) {
        match p {
            Parsed::Null => self.word(0x6e75_6c6c),
            Parsed::Str => self.bytes(text.as_bytes()),
            Parsed::Date(d) => self.word(*d as u64 ^ (1 << 60)),
            Parsed::Int(v) => self.word(*v as u64 ^ (2 << 60)),
            Parsed::Flag(v) => self.word(*v as u64 ^ (3 << 60)),
            Parsed::Dec(v) => {
                self.word(*v as u64 ^ (4 << 60));
                self.word((*v >> 64) as u64);
            }
            Parsed::Bin(n, t) => self.bytes(&t[..*n as usize]),
        }
    }

    pub(crate) fn finish(self) -> u128 {
        ((fold(self.a, P3) as u128) << 64) | fold(self.b, P4) as u128
    }
}

/// Windows-1252 characters for bytes 0x80–0x9F (ISO-8859-1 has C1 controls there,
/// which no name contains; the five unassigned bytes keep their Latin-1 meaning).
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// Decodes Windows-1252 (a superset of Latin-1's printable characters) into `out`.
pub(crate) fn decode_cp1252(bytes: &[u8], out: &mut String) {
    out.clear();
    out.reserve(bytes.len() + 4);
    for &b in bytes {
        out.push(match b {
            0x80..=0x9F => CP1252_HIGH[(b - 0x80) as usize],
            _ => b as char,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = |s| parse_date(s);
        assert_eq!(d("1970-01-01"), Some(0));
        assert_eq!(d("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(d("2/29/2024"), d("2024-02-29"));
        assert_eq!(d("20240229"), d("2024-02-29"));
        assert_eq!(d("2024/02/29"), d("2024-02-29"));
        assert_eq!(d("2024-02-29T00:00:00"), d("2024-02-29"));
        assert_eq!(d("2024-02-29 13:00"), d("2024-02-29"));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "01/02/03",
            "0024-01-01",
            "x",
            "2024-1-1-1",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
        // Agrees with chrono.
        let c = chrono::NaiveDate::from_ymd_opt(1987, 7, 14).unwrap();
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        assert_eq!(d("1987-07-14"), Some((c - epoch).num_days() as i32));
    }

    #[test]
    fn decimals_and_flags() {
        assert_eq!(parse_decimal("1234.5"), Some(123_450));
        assert_eq!(parse_decimal("-0.07"), Some(-7));
        assert_eq!(parse_decimal("12"), Some(1200));
        assert_eq!(parse_decimal(".5"), Some(50));
        for bad in ["1.234", "1,000", "$5", "", ".", "1e3", "-"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
        assert_eq!(parse_flag("y"), Some(1));
        assert_eq!(parse_flag("0"), Some(0));
        assert_eq!(parse_flag("2"), None);
    }

    #[test]
    fn year_quarters_and_services() {
        let mut s = String::new();
        assert!(year_quarter("2024q3", &mut s) && s == "2024Q3");
        assert!(!year_quarter("2024Q5", &mut String::new()));
        assert!(!year_quarter("24Q1", &mut String::new()));
        assert!(service_list("ORI:2024-01-05:S;TRN1:2024-02-01:U;"));
        assert!(!service_list("ORI:2024-01-05"));
        assert!(!service_list("ORI:2024-13-05:S"));
        assert!(!service_list("ORI:2024-01-05:X"));
    }

    #[test]
    fn row_hash_separates_field_boundaries() {
        let h = |fields: &[&str]| {
            let mut r = RowHash::new();
            for f in fields {
                r.value(&Parsed::Str, f);
            }
            r.finish()
        };
        assert_ne!(h(&["ab", "c"]), h(&["a", "bc"]));
        assert_eq!(h(&["ab", "c"]), h(&["ab", "c"]));
    }

    #[test]
    fn cp1252() {
        let mut s = String::new();
        decode_cp1252(b"Mu\xf1oz \x80", &mut s);
        assert_eq!(s, "Muñoz €");
    }
}
