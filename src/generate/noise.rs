//! How identifiers look once a person or an agency has typed them: SSN layouts, typos,
//! placeholders, name case and spacing, nicknames, misspellings, DOB layouts.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::names::nicknames_of;
use super::people::ssn_is_valid;
use super::rates::AS_OF;
use super::util::{chance, civil_from_days, days_from_civil, pick_weighted, push_num, unit};

/// Placeholders staff type when a person declines to give an SSN.
pub(crate) const SSN_JUNK: [&str; 7] = [
    "REFUSED",
    "000-00-0000",
    "000000000",
    "N/A",
    "NONE",
    "UNKNOWN",
    "DECLINED",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SsnLayout {
    Dashed,
    Bare,
    Spaced,
    /// Stored as a number: leading zeros are lost.
    Integer,
}

pub(crate) fn pick_layout(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> SsnLayout {
    [
        SsnLayout::Dashed,
        SsnLayout::Bare,
        SsnLayout::Spaced,
        SsnLayout::Integer,
    ][pick_weighted(rng, cumulative)]
}

/// Writes a 9-digit SSN in a layout.
pub(crate) fn push_ssn(out: &mut String, ssn: u32, layout: SsnLayout) {
    let area = ssn / 1_000_000;
    let group = ssn / 10_000 % 100;
    let serial = ssn % 10_000;
    match layout {
        SsnLayout::Dashed | SsnLayout::Spaced => {
            let sep = if layout == SsnLayout::Dashed {
                '-'
            } else {
                ' '
            };
            push_num(out, area, 3);
            out.push(sep);
            push_num(out, group, 2);
            out.push(sep);
            push_num(out, serial, 4);
        }
        SsnLayout::Bare => push_num(out, ssn, 9),
        SsnLayout::Integer => push_num(out, ssn, 1),
    }
}

fn digits(ssn: u32) -> [u8; 9] {
    let mut d = [0u8; 9];
    let mut x = ssn;
    for i in (0..9).rev() {
        d[i] = (x % 10) as u8;
        x /= 10;
    }
    d
}

fn from_digits(d: &[u8; 9]) -> u32 {
    d.iter().fold(0u32, |acc, &x| acc * 10 + x as u32)
}

/// One digit changed; the result is still a valid SSN (so a typo is a wrong person, not a
/// rejected value).
pub(crate) fn ssn_typo(rng: &mut ChaCha8Rng, ssn: u32) -> u32 {
    loop {
        let mut d = digits(ssn);
        let i = rng.random_range(0..9);
        let old = d[i];
        d[i] = (old + rng.random_range(1..10)) % 10;
        let s = from_digits(&d);
        if ssn_is_valid(s) {
            return s;
        }
    }
}

/// Two adjacent, different digits swapped; None when every neighbour pair is equal or no
/// swap stays valid.
pub(crate) fn ssn_transposed(rng: &mut ChaCha8Rng, ssn: u32) -> Option<u32> {
    let d = digits(ssn);
    let start = rng.random_range(0..8);
    (0..8).map(|k| (start + k) % 8).find_map(|i| {
        if d[i] == d[i + 1] {
            return None;
        }
        let mut e = d;
        e.swap(i, i + 1);
        let s = from_digits(&e);
        ssn_is_valid(s).then_some(s)
    })
}

/// An SSN that breaks SSA's rules: area 000, 666 or 9xx (an ITIN), group 00, serial 0000,
/// or a well-known fake.
pub(crate) fn invalid_ssn(rng: &mut ChaCha8Rng) -> u32 {
    let group = rng.random_range(1..100);
    let serial = rng.random_range(1..10_000);
    match rng.random_range(0..7) {
        0 => group * 10_000 + serial,
        1 => 666_000_000 + group * 10_000 + serial,
        2 => rng.random_range(900..1000) * 1_000_000 + rng.random_range(50..100) * 10_000 + serial,
        3 => rng.random_range(1..666) * 1_000_000 + serial,
        4 => rng.random_range(1..666) * 1_000_000 + group * 10_000,
        5 => 123_456_789,
        _ => 111_111_111,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Case {
    Upper,
    Title,
    Lower,
    Mixed,
}

pub(crate) fn pick_case(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> Case {
    [Case::Upper, Case::Title, Case::Lower, Case::Mixed][pick_weighted(rng, cumulative)]
}

/// Accented letters to their base letter, for agencies whose systems are ASCII-only.
pub(crate) fn strip_accents(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => 'A',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'O',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
            'ñ' => 'n',
            'Ñ' => 'N',
            'ç' => 'c',
            'Ç' => 'C',
            'ś' => 's',
            'Ś' => 'S',
            other => other,
        })
        .collect()
}

pub(crate) fn has_accent(s: &str) -> bool {
    !s.is_ascii()
}

/// Applies a case style. Title case restarts after a space, hyphen or apostrophe, as
/// case-management screens do (O'Brien, García-López).
pub(crate) fn push_cased(out: &mut String, s: &str, case: Case, rng: &mut ChaCha8Rng) {
    match case {
        Case::Upper => out.extend(s.chars().flat_map(char::to_uppercase)),
        Case::Lower => out.extend(s.chars().flat_map(char::to_lowercase)),
        Case::Title => {
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.extend(c.to_lowercase());
                }
                start = matches!(c, ' ' | '-' | '\'');
            }
        }
        Case::Mixed => {
            for c in s.chars() {
                if rng.random_bool(0.5) {
                    out.extend(c.to_uppercase());
                } else {
                    out.extend(c.to_lowercase());
                }
            }
        }
    }
}

/// Leading, trailing or doubled inner spaces.
pub(crate) fn add_spaces(rng: &mut ChaCha8Rng, s: &mut String) {
    match rng.random_range(0..3) {
        0 => s.insert(0, ' '),
        1 => s.push_str("  "),
        _ => {
            if let Some(i) = s.find(' ') {
                s.insert(i, ' ');
            } else {
                let mid = s
                    .char_indices()
                    .nth(s.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                if mid > 0 {
                    s.insert(mid, ' ');
                } else {
                    s.push(' ');
                }
            }
        }
    }
}

/// A one-letter misspelling: substitute, delete, double or swap a letter.
pub(crate) fn misspell(rng: &mut ChaCha8Rng, name: &str) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphabetic())
        .collect();
    if letters.len() < 3 {
        return name.to_string();
    }
    let i = letters[rng.random_range(1..letters.len())];
    match rng.random_range(0..4) {
        0 => {
            let c = (b'a' + rng.random_range(0..26u8)) as char;
            chars[i] = if chars[i].is_uppercase() {
                c.to_ascii_uppercase()
            } else {
                c
            };
        }
        1 => {
            chars.remove(i);
        }
        2 => chars.insert(i, chars[i]),
        _ => {
            if i + 1 < chars.len() && chars[i + 1].is_alphabetic() {
                chars.swap(i, i + 1);
            } else {
                chars.swap(i - 1, i);
            }
        }
    }
    let out: String = chars.into_iter().collect();
    if out == name {
        // Swapping two equal letters changes nothing: double one instead.
        let mut s = name.to_string();
        s.push(name.chars().last().unwrap_or('e'));
        s
    } else {
        out
    }
}

/// The kinds of misspelling a noise profile mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Misspelling {
    /// One letter substituted, deleted, doubled or swapped (`misspell`).
    OneLetter,
    /// A letter confusion of optical character recognition (`ocr_confusion`).
    Ocr,
    /// A letter replaced by a neighbouring key (`keyboard_typo`).
    Keyboard,
}

impl Misspelling {
    /// The scenario flag: `first_name_misspelled`, `last_name_ocr`, …
    pub(crate) fn flag(self, first: bool) -> &'static str {
        match (self, first) {
            (Misspelling::OneLetter, true) => "first_name_misspelled",
            (Misspelling::OneLetter, false) => "last_name_misspelled",
            (Misspelling::Ocr, true) => "first_name_ocr",
            (Misspelling::Ocr, false) => "last_name_ocr",
            (Misspelling::Keyboard, true) => "first_name_keyboard",
            (Misspelling::Keyboard, false) => "last_name_keyboard",
        }
    }
}

/// Misspells a name with a kind drawn by weight from `kinds` (one-letter, OCR, keyboard).
/// When only one-letter slips are on (the default profile) no draw picks the kind, so the
/// stream is what `misspell` alone consumes. A name with nothing an OCR engine confuses
/// gets a keyboard typo instead; the kind returned is the one applied.
pub(crate) fn misspell_as(
    rng: &mut ChaCha8Rng,
    name: &str,
    kinds: &[f64; 3],
) -> (String, Misspelling) {
    let kind = if kinds[1] <= 0.0 && kinds[2] <= 0.0 {
        Misspelling::OneLetter
    } else {
        let x = unit(rng) * kinds.iter().sum::<f64>();
        if x < kinds[0] {
            Misspelling::OneLetter
        } else if x < kinds[0] + kinds[1] {
            Misspelling::Ocr
        } else {
            Misspelling::Keyboard
        }
    };
    match kind {
        Misspelling::OneLetter => (misspell(rng, name), kind),
        Misspelling::Ocr => match ocr_confusion(rng, name) {
            Some(s) => (s, kind),
            None => keyboard_or_slip(rng, name),
        },
        Misspelling::Keyboard => keyboard_or_slip(rng, name),
    }
}

fn keyboard_or_slip(rng: &mut ChaCha8Rng, name: &str) -> (String, Misspelling) {
    match keyboard_typo(rng, name) {
        Some(s) => (s, Misspelling::Keyboard),
        None => (misspell(rng, name), Misspelling::OneLetter),
    }
}

/// Letter shapes OCR engines confuse, both ways, compared without case (the name is cased
/// when rendered): rn/m, cl/d, vv/w, ri/n, li/h, I/L, U/V, E/F, B/R, O/Q, C/G, C/E, H/N.
const OCR_CONFUSIONS: [(&str, &str); 26] = [
    ("rn", "m"),
    ("m", "rn"),
    ("cl", "d"),
    ("d", "cl"),
    ("vv", "w"),
    ("w", "vv"),
    ("ri", "n"),
    ("n", "ri"),
    ("li", "h"),
    ("h", "li"),
    ("i", "l"),
    ("l", "i"),
    ("u", "v"),
    ("v", "u"),
    ("e", "f"),
    ("f", "e"),
    ("b", "r"),
    ("r", "b"),
    ("o", "q"),
    ("q", "o"),
    ("c", "g"),
    ("g", "c"),
    ("c", "e"),
    ("e", "c"),
    ("h", "n"),
    ("n", "h"),
];

/// One OCR letter confusion at a place drawn among every place one applies; None when the
/// name has none. The replacement takes the case of the letter it replaces.
pub(crate) fn ocr_confusion(rng: &mut ChaCha8Rng, name: &str) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut sites: Vec<(usize, usize)> = Vec::new();
    for i in 0..lower.len() {
        for (k, (from, _)) in OCR_CONFUSIONS.iter().enumerate() {
            let n = from.len();
            if i + n <= lower.len() && lower[i..i + n].iter().copied().eq(from.chars()) {
                sites.push((i, k));
            }
        }
    }
    if sites.is_empty() {
        return None;
    }
    let (i, k) = sites[rng.random_range(0..sites.len())];
    let (from, to) = OCR_CONFUSIONS[k];
    let upper = chars[i].is_uppercase();
    let mut out: String = chars[..i].iter().collect();
    for (j, c) in to.chars().enumerate() {
        out.push(if upper && j == 0 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out.extend(&chars[i + from.len()..]);
    Some(out)
}

/// The keys next to a letter on a QWERTY keyboard.
fn qwerty_neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "ryfg",
        'y' => "tugh",
        'u' => "yihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "ol",
        'a' => "qwsz",
        's' => "awedxz",
        'd' => "serfcx",
        'f' => "drtgcv",
        'g' => "ftyhvb",
        'h' => "gyujbn",
        'j' => "huiknm",
        'k' => "jiolm",
        'l' => "kop",
        'z' => "asx",
        'x' => "zsdc",
        'c' => "xdfv",
        'v' => "cfgb",
        'b' => "vghn",
        'n' => "bhjm",
        'm' => "njk",
        _ => "",
    }
}

/// One ASCII letter replaced by a neighbouring key, keeping its case; None when the name has
/// no ASCII letter.
pub(crate) fn keyboard_typo(rng: &mut ChaCha8Rng, name: &str) -> Option<String> {
    let mut chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_alphabetic())
        .collect();
    if letters.is_empty() {
        return None;
    }
    let i = letters[rng.random_range(0..letters.len())];
    let keys = qwerty_neighbours(chars[i].to_ascii_lowercase()).as_bytes();
    let c = keys[rng.random_range(0..keys.len())] as char;
    chars[i] = if chars[i].is_uppercase() {
        c.to_ascii_uppercase()
    } else {
        c
    };
    Some(chars.into_iter().collect())
}

/// A DOB with one digit of its `YYYYMMDD` form mistyped, still a real date between 1900
/// and the as-of date (a typo that a date check cannot catch).
pub(crate) fn dob_typo(rng: &mut ChaCha8Rng, day: i32) -> i32 {
    let (y, m, d) = civil_from_days(day);
    let digits = |y: i32, m: u32, d: u32| -> [u32; 8] {
        let y = y as u32;
        [
            y / 1000,
            y / 100 % 10,
            y / 10 % 10,
            y % 10,
            m / 10,
            m % 10,
            d / 10,
            d % 10,
        ]
    };
    let (max_y, _, _) = civil_from_days(AS_OF);
    for _ in 0..100 {
        let mut g = digits(y, m, d);
        let i = rng.random_range(0..8);
        g[i] = (g[i] + rng.random_range(1..10)) % 10;
        let ny = (g[0] * 1000 + g[1] * 100 + g[2] * 10 + g[3]) as i32;
        let nm = g[4] * 10 + g[5];
        let nd = g[6] * 10 + g[7];
        if !(1900..=max_y).contains(&ny) || !(1..=12).contains(&nm) || !(1..=31).contains(&nd) {
            continue;
        }
        let out = days_from_civil(ny, nm, nd);
        if civil_from_days(out) == (ny, nm, nd) && out <= AS_OF {
            return out;
        }
    }
    // Not reached in practice: the day's last digit almost always has a valid neighbour.
    if d < 28 { day + 1 } else { day - 1 }
}

/// A nickname when the name has one and the draw says so.
pub(crate) fn maybe_nickname(
    rng: &mut ChaCha8Rng,
    first: &'static str,
    p: f64,
) -> Option<&'static str> {
    let nicks = nicknames_of(first);
    if nicks.is_empty() || !chance(rng, p) {
        return None;
    }
    Some(nicks[rng.random_range(0..nicks.len())])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DobLayout {
    Iso,
    Us,
    Compact,
}

pub(crate) fn pick_dob_layout(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> DobLayout {
    [DobLayout::Iso, DobLayout::Us, DobLayout::Compact][pick_weighted(rng, cumulative)]
}

/// Writes a DOB; `swapped` exchanges day and month (a US/European mix-up).
pub(crate) fn push_dob(out: &mut String, day: i32, layout: DobLayout, swapped: bool) {
    let (y, m, d) = civil_from_days(day);
    let (m, d) = if swapped { (d, m) } else { (m, d) };
    match layout {
        DobLayout::Iso => {
            push_num(out, y as u32, 4);
            out.push('-');
            push_num(out, m, 2);
            out.push('-');
            push_num(out, d, 2);
        }
        DobLayout::Us => {
            push_num(out, m, 2);
            out.push('/');
            push_num(out, d, 2);
            out.push('/');
            push_num(out, y as u32, 4);
        }
        DobLayout::Compact => {
            push_num(out, y as u32, 4);
            push_num(out, m, 2);
            push_num(out, d, 2);
        }
    }
}

/// Renders a name: optional accent stripping, case style, optional extra spaces.
pub(crate) fn render_name(
    rng: &mut ChaCha8Rng,
    out: &mut String,
    name: &str,
    case: Case,
    strip_accent_p: f64,
    spaces_p: f64,
) {
    out.clear();
    if has_accent(name) && unit(rng) < strip_accent_p {
        let plain = strip_accents(name);
        push_cased(out, &plain, case, rng);
    } else {
        push_cased(out, name, case, rng);
    }
    if chance(rng, spaces_p) {
        add_spaces(rng, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::util::rng_for;

    #[test]
    fn ssn_errors_stay_valid_and_differ() {
        let mut rng = rng_for(1, 2, 3);
        for ssn in [78_051_121u32, 123_456_780, 501_234_567, 899_990_001] {
            for _ in 0..200 {
                let t = ssn_typo(&mut rng, ssn);
                assert_ne!(t, ssn);
                assert!(ssn_is_valid(t));
                if let Some(t) = ssn_transposed(&mut rng, ssn) {
                    assert_ne!(t, ssn);
                    assert!(ssn_is_valid(t));
                }
                assert!(!ssn_is_valid(invalid_ssn(&mut rng)));
            }
        }
    }

    #[test]
    fn heavy_misspellings_change_the_name() {
        let mut rng = rng_for(4, 5, 6);
        for name in ["Maria", "Clark", "Wendy", "Liam", "José", "O'Brien", "Bao"] {
            for _ in 0..200 {
                let ocr = ocr_confusion(&mut rng, name);
                if let Some(s) = &ocr {
                    assert_ne!(s, name);
                }
                let kb = keyboard_typo(&mut rng, name).unwrap();
                assert_ne!(kb, name);
                assert_eq!(kb.chars().count(), name.chars().count());
                let (s, kind) = misspell_as(&mut rng, name, &[0.5, 0.25, 0.25]);
                assert_ne!(s, name, "{kind:?}");
            }
        }
        assert_eq!(
            ocr_confusion(&mut rng, "Dorn")
                .as_deref()
                .map(|s| s.len() >= 3),
            Some(true)
        );
        assert_eq!(ocr_confusion(&mut rng, "Kay"), None);
        assert_eq!(
            misspell_as(&mut rng, "Kay", &[0.0, 1.0, 0.0]).1,
            Misspelling::Keyboard
        );
    }

    #[test]
    fn dob_typos_are_real_other_dates() {
        let mut rng = rng_for(7, 8, 9);
        let min = days_from_civil(1900, 1, 1);
        for day in [
            days_from_civil(1960, 2, 29),
            days_from_civil(1999, 12, 31),
            days_from_civil(2010, 9, 30),
            days_from_civil(1985, 1, 1),
        ] {
            for _ in 0..500 {
                let t = dob_typo(&mut rng, day);
                assert_ne!(t, day);
                assert!((min..=AS_OF).contains(&t));
                let (mut a, mut b) = (String::new(), String::new());
                push_dob(&mut a, day, DobLayout::Compact, false);
                push_dob(&mut b, t, DobLayout::Compact, false);
                let differ = a.chars().zip(b.chars()).filter(|(x, y)| x != y).count();
                assert_eq!(differ, 1, "{a} → {b}");
            }
        }
    }

    #[test]
    fn layouts() {
        let mut s = String::new();
        push_ssn(&mut s, 12_345_678, SsnLayout::Dashed);
        assert_eq!(s, "012-34-5678");
        s.clear();
        push_ssn(&mut s, 12_345_678, SsnLayout::Integer);
        assert_eq!(s, "12345678");
        s.clear();
        let day = crate::generate::util::days_from_civil(1990, 3, 25);
        push_dob(&mut s, day, DobLayout::Us, true);
        assert_eq!(s, "25/03/1990");
        let mut rng = rng_for(1, 2, 3);
        s.clear();
        push_cased(&mut s, "o'brien garcía-lópez", Case::Title, &mut rng);
        assert_eq!(s, "O'Brien García-López");
        assert_eq!(strip_accents("Zoë Muñoz"), "Zoe Munoz");
    }
}
