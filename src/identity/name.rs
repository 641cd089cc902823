//! Person-name normalization.
//!
//! The canonical form is a non-empty string of ASCII `A`–`Z` only. Agencies spell the
//! same name with different case, accents, punctuation, spacing, titles and
//! generational suffixes; all of that is removed so that `José García-López Jr.`
//! and `JOSE GARCIALOPEZ` give the same token. The price is that a few genuinely
//! different names collapse (`O'Neil`/`ONeil`), which tokens built from several
//! fields absorb.
//!
//! Non-Latin scripts are *not* transliterated (that needs locale-specific tables);
//! a name with no Latin letters is rejected as [`Reason::NameNoLetters`] rather
//! than producing a token of nothing.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::Reason;

/// Titles and honorifics dropped as whole words (compared after folding to A–Z/0–9).
pub const TITLES: &[&str] = &[
    "MR", "MRS", "MS", "MISS", "MX", "MSTR", "DR", "REV", "PROF", "SIR", "DAME", "HON",
];

/// Generational suffixes and post-nominal degrees dropped as whole words.
///
/// `V` and `X` are included (fifth, tenth) at the cost of dropping a bare middle
/// initial V or X, which carries little identifying power anyway.
pub const SUFFIXES: &[&str] = &[
    "JR", "SR", "JNR", "SNR", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "2ND", "3RD",
    "4TH", "5TH", "ESQ", "PHD", "MD",
];

/// Whole-name placeholders rejected as [`Reason::NamePlaceholder`] (compared to the
/// normalized result, so `Baby Girl` and `N/A` are caught as `BABYGIRL` and `NA`).
/// A string of one letter repeated (`XX`, `XXX`, `AAAA`) is also a placeholder.
pub const PLACEHOLDERS: &[&str] = &[
    "UNKNOWN",
    "UNK",
    "UNKN",
    "TEST",
    "TESTER",
    "TESTING",
    "NONE",
    "NULL",
    "NIL",
    "NA",
    "FNU",
    "LNU",
    "NFN",
    "NLN",
    "NMN",
    "BABY",
    "BABYBOY",
    "BABYGIRL",
    "INFANT",
    "REFUSED",
    "DECLINED",
    "ANONYMOUS",
    "NOTPROVIDED",
    "NOTGIVEN",
    "NOTAVAILABLE",
    "NOTAPPLICABLE",
    "NOTSTATED",
    "NONAME",
    "NOFIRSTNAME",
    "NOLASTNAME",
    "UNKNOWNNAME",
    "MISSING",
    "UNDEFINED",
    "BLANK",
    "DUMMY",
    "SAMPLE",
    "DELETED",
    "NAME",
    "FIRSTNAME",
    "LASTNAME",
    "ASDF",
    "QWERTY",
];

/// Fold one character to zero or more of `A`–`Z`/`0`–`9`, appending to `out`.
///
/// Input is already NFKD-decomposed with combining marks removed. Letters that do
/// not decompose (ß, Æ, Ø, Ł, Œ, Đ, Ð, Þ, ı) get their conventional Latin spelling;
/// everything else outside A–Z/0–9 is dropped.
fn fold_char(c: char, out: &mut String) {
    let mapped: &str = match c {
        'a'..='z' => {
            out.push(c.to_ascii_uppercase());
            return;
        }
        'A'..='Z' | '0'..='9' => {
            out.push(c);
            return;
        }
        'ß' | 'ẞ' => "SS",
        'Æ' | 'æ' => "AE",
        'Ø' | 'ø' => "O",
        'Ł' | 'ł' => "L",
        'Œ' | 'œ' => "OE",
        'Đ' | 'đ' | 'Ð' | 'ð' => "D",
        'Þ' | 'þ' => "TH",
        'ı' => "I",
        'ſ' => "S",
        _ => return,
    };
    out.push_str(mapped);
}

/// Separators between words. Hyphens and apostrophes are *not* word separators, so
/// `Garcia-Lopez` and `O'Brien` stay one word each for title/suffix detection.
fn is_word_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':' | '/' | '\\' | '(' | ')' | '"')
}

fn is_placeholder(s: &str) -> bool {
    let b = s.as_bytes();
    PLACEHOLDERS.contains(&s) || (b.len() >= 2 && b.iter().all(|&c| c == b[0]))
}

/// Steps 2–4 over decomposed characters: returns the concatenated kept words and
/// whether any Latin letter was seen at all.
fn fold_words(capacity: usize, chars: impl Iterator<Item = char>) -> (String, bool) {
    let mut out = String::with_capacity(capacity);
    let mut word = String::with_capacity(capacity);
    let mut any_letter = false;
    for c in chars {
        if is_word_separator(c) {
            flush(&mut word, &mut out);
            continue;
        }
        let before = word.len();
        fold_char(c, &mut word);
        if word[before..].bytes().any(|b| b.is_ascii_uppercase()) {
            any_letter = true;
        }
    }
    flush(&mut word, &mut out);
    (out, any_letter)
}

/// Append the letters of a finished word to `out` unless it is a title or suffix.
fn flush(word: &mut String, out: &mut String) {
    if !word.is_empty() {
        if !is_dropped_word(word) {
            out.extend(word.chars().filter(char::is_ascii_uppercase));
        }
        word.clear();
    }
}

fn is_dropped_word(s: &str) -> bool {
    TITLES.contains(&s) || SUFFIXES.contains(&s)
}

/// Normalize a first or last name.
///
/// 1. Empty/whitespace → [`Reason::NameMissing`].
/// 2. NFKD-decompose and drop combining marks (`José` → `Jose`; compatibility
///    decomposition also folds full-width letters and ligatures such as `ﬁ`), map
///    non-decomposing letters (ß→SS, Æ→AE, Ø→O, Ł→L, Œ→OE, Đ/Ð→D, Þ→TH), uppercase.
/// 3. Split into words on whitespace and `, . ; : / \ ( ) "`; drop words that are a
///    title ([`TITLES`]) or suffix ([`SUFFIXES`]) once reduced to A–Z/0–9.
/// 4. Keep only `A`–`Z` of the remaining words and concatenate (`O'Brien` →
///    `OBRIEN`, `Garcia-Lopez` → `GARCIALOPEZ`, `Mary Ann` → `MARYANN`).
/// 5. No Latin letter anywhere in the input → [`Reason::NameNoLetters`]; nothing left
///    after dropping titles/suffixes, or the result is a placeholder
///    ([`PLACEHOLDERS`], one repeated letter) or itself a title/suffix word
///    (`D R` → `DR`) → [`Reason::NamePlaceholder`].
///
/// The last check makes the function idempotent: every `Ok` output is a single
/// A–Z word that step 3 keeps and step 5 accepts, so it normalizes to itself.
pub fn normalize(raw: &str) -> Result<String, Reason> {
    if raw.trim().is_empty() {
        return Err(Reason::NameMissing);
    }
    // NFKD is the identity on ASCII, which is most input: skip the decomposer then.
    let (out, any_letter) = if raw.is_ascii() {
        fold_words(raw.len(), raw.chars())
    } else {
        fold_words(raw.len(), raw.nfkd().filter(|&c| !is_combining_mark(c)))
    };
    if !any_letter {
        return Err(Reason::NameNoLetters);
    }
    if out.is_empty() || is_placeholder(&out) || is_dropped_word(&out) {
        return Err(Reason::NamePlaceholder);
    }
    Ok(out)
}

/// The first letter of an already-normalized name (`"JOSE"` → `'J'`).
pub fn first_initial(normalized: &str) -> Option<char> {
    normalized.chars().next().filter(char::is_ascii_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<String, Reason> {
        normalize(s)
    }

    #[test]
    fn folding() {
        assert_eq!(n("José").unwrap(), "JOSE");
        assert_eq!(n("  renée ").unwrap(), "RENEE");
        assert_eq!(n("Strauß").unwrap(), "STRAUSS");
        assert_eq!(n("Ærø").unwrap(), "AERO");
        assert_eq!(n("Łukasz").unwrap(), "LUKASZ");
        assert_eq!(n("Œuvray").unwrap(), "OEUVRAY");
        assert_eq!(n("Đorđe").unwrap(), "DORDE");
        assert_eq!(n("Þórunn").unwrap(), "THORUNN");
        assert_eq!(n("Søren").unwrap(), "SOREN");
        assert_eq!(n("Ｊｏｈｎ").unwrap(), "JOHN");
        assert_eq!(n("Nguyễn").unwrap(), "NGUYEN");
    }

    #[test]
    fn punctuation_titles_suffixes() {
        assert_eq!(n("O'Brien").unwrap(), "OBRIEN");
        assert_eq!(n("Garcia-Lopez").unwrap(), "GARCIALOPEZ");
        assert_eq!(n("Mary Ann").unwrap(), "MARYANN");
        assert_eq!(n("Dr. Alma Quist").unwrap(), "ALMAQUIST");
        assert_eq!(n("Mrs Quist").unwrap(), "QUIST");
        assert_eq!(n("Quist, Jr.").unwrap(), "QUIST");
        assert_eq!(n("Quist III").unwrap(), "QUIST");
        assert_eq!(n("Quist 2nd").unwrap(), "QUIST");
        assert_eq!(n("Quist-Sr").unwrap(), "QUISTSR"); // not a whole word
        assert_eq!(n("Smith2").unwrap(), "SMITH");
    }

    #[test]
    fn rejects() {
        assert_eq!(n(""), Err(Reason::NameMissing));
        assert_eq!(n("   "), Err(Reason::NameMissing));
        assert_eq!(n("1234"), Err(Reason::NameNoLetters));
        assert_eq!(n("--"), Err(Reason::NameNoLetters));
        assert_eq!(n("Иван"), Err(Reason::NameNoLetters));
        for p in [
            "UNKNOWN",
            "unk",
            "Test",
            "none",
            "NULL",
            "N/A",
            "FNU",
            "LNU",
            "NFN",
            "NLN",
            "Baby",
            "Baby Boy",
            "baby girl",
            "Refused",
            "Anonymous",
            "Not Provided",
            "XXX",
            "zz",
            "Jr.",
            "Mr",
            "D R",
        ] {
            assert_eq!(n(p), Err(Reason::NamePlaceholder), "{p}");
        }
    }

    #[test]
    fn initial() {
        assert_eq!(first_initial("JOSE"), Some('J'));
        assert_eq!(first_initial(""), None);
    }
}
