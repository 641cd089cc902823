//! Identifiers xmatch hands out: the `person_key` that replaces every identifier in the
//! de-identified zone (and fills PIRL element 100), and the temporary ID staff read out to
//! a person who gave no SSN.
//!
//! Both are drawn from the operating system's random source and never derived from PII,
//! so knowing one tells nothing about the person. Both end in a check character computed
//! with the Damm algorithm over GF(32): it catches every single wrong character and every
//! swap of two neighbours, the two mistakes people make when reading out or typing an ID.
//! Characters come from Crockford's base-32 alphabet (no I, L, O or U), so the IDs read
//! aloud without ambiguity; input is case-insensitive and takes I/L as 1 and O as 0.

use std::fmt;

use rand::TryRngCore;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Body length of a person key; with the check character it is 12, PIRL element 100's limit.
const PERSON_KEY_BODY: usize = 11;
/// Body length of a temporary ID after its `T` prefix: 40 random bits.
const TEMP_ID_BODY: usize = 8;
/// Prefix that marks a temporary ID, so staff and systems can tell it from other numbers.
pub const TEMP_ID_PREFIX: char = 'T';

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("wrong length: expected {expected} characters, got {got}")]
    Length { expected: usize, got: usize },
    #[error("character {position} is not in the ID alphabet")]
    Character { position: usize },
    #[error("a temporary ID starts with {TEMP_ID_PREFIX}")]
    Prefix,
    #[error("the check character does not match: a character is mistyped or two are swapped")]
    Check,
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("the store holds a token of rule {0}, which this version of xmatch does not know")]
    UnknownRule(i32),
    #[error("the store holds person id {0}; person ids are allocated densely from 1")]
    PersonId(i64),
}

/// Multiplication in GF(2^5) with the primitive polynomial x^5 + x^2 + 1.
fn gf32_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        b >>= 1;
        a <<= 1;
        if a & 0x20 != 0 {
            a ^= 0x25;
        }
    }
    product & 0x1f
}

/// Damm's quasigroup x ∘ y = 2·x + y over GF(32). Because 2 ≠ 0, 1 it is totally
/// anti-symmetric: (c∘x)∘y = (c∘y)∘x only when x = y, which is what catches transpositions.
fn damm(digits: impl Iterator<Item = u8>) -> u8 {
    digits.fold(0, |interim, d| gf32_mul(2, interim) ^ d)
}

fn decode_char(c: u8) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        b'I' | b'L' => b'1',
        b'O' => b'0',
        other => other,
    };
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

/// Random digits from the OS source, drawn 4 KiB at a time: a first run issues a
/// million keys, and a system call for each twelve bytes was a visible share of it. Each
/// byte is handed out once.
fn random_body(len: usize) -> Result<Vec<u8>, IdError> {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }
    POOL.with(|pool| {
        let (buf, used) = &mut *pool.borrow_mut();
        if buf.len() - *used < len {
            buf.resize(4096.max(len), 0);
            // Exhausted until the fill succeeds: a failed fill hands nothing out.
            *used = buf.len();
            rand::rngs::OsRng
                .try_fill_bytes(buf)
                .map_err(|e| IdError::Random(e.to_string()))?;
            *used = 0;
        }
        let body = buf[*used..*used + len].iter().map(|b| b & 0x1f).collect();
        *used += len;
        Ok(body)
    })
}

/// Appends the check character and renders the digits.
fn render(prefix: Option<char>, body: &[u8]) -> String {
    // The check character c makes the whole sequence fold to 0: 2·interim + c = 0, and
    // in characteristic 2, c = 2·interim.
    let check = gf32_mul(2, damm(body.iter().copied()));
    let mut s = String::with_capacity(body.len() + 2);
    s.extend(prefix);
    s.extend(body.iter().map(|&d| ALPHABET[d as usize] as char));
    s.push(ALPHABET[check as usize] as char);
    s
}

/// Parses digits (body plus check), checking the check character.
fn parse_digits(s: &str, expected: usize) -> Result<Vec<u8>, IdError> {
    let bytes = s.as_bytes();
    if bytes.len() != expected {
        return Err(IdError::Length {
            expected,
            got: bytes.len(),
        });
    }
    let digits = bytes
        .iter()
        .enumerate()
        .map(|(i, &c)| decode_char(c).ok_or(IdError::Character { position: i + 1 }))
        .collect::<Result<Vec<u8>, _>>()?;
    if damm(digits.iter().copied()) != 0 {
        return Err(IdError::Check);
    }
    Ok(digits)
}

/// The stable key of a person in the registry and in every de-identified dataset.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey(String);

impl PersonKey {
    pub fn generate() -> Result<PersonKey, IdError> {
        Ok(PersonKey(render(None, &random_body(PERSON_KEY_BODY)?)))
    }

    pub fn parse(s: &str) -> Result<PersonKey, IdError> {
        let digits = parse_digits(s.trim(), PERSON_KEY_BODY + 1)?;
        Ok(PersonKey(render(None, &digits[..PERSON_KEY_BODY])))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A temporary ID for a person who gave no SSN: `T`, 8 characters and a check character,
/// e.g. `T4G7KM2QXJ`. Short enough to read out at a front desk.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TempId(String);

impl TempId {
    pub fn generate() -> Result<TempId, IdError> {
        Ok(TempId(render(
            Some(TEMP_ID_PREFIX),
            &random_body(TEMP_ID_BODY)?,
        )))
    }

    /// Accepts what staff typed: any case, surrounding spaces, and a dash or space after
    /// the prefix or between groups; rejects a mistyped or transposed ID.
    pub fn parse(s: &str) -> Result<TempId, IdError> {
        let cleaned: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .collect();
        let mut chars = cleaned.chars();
        match chars.next() {
            Some(c) if c.eq_ignore_ascii_case(&TEMP_ID_PREFIX) => {}
            _ => return Err(IdError::Prefix),
        }
        let digits = parse_digits(chars.as_str(), TEMP_ID_BODY + 1)?;
        Ok(TempId(render(
            Some(TEMP_ID_PREFIX),
            &digits[..TEMP_ID_BODY],
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! show_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.0)
            }
        }
    )*};
}
show_as_str!(PersonKey, TempId);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of `id` with one character replaced by another alphabet character.
    fn substitutions(id: &str, skip: usize) -> Vec<String> {
        let mut out = Vec::new();
        for i in skip..id.len() {
            for &a in ALPHABET {
                if a != id.as_bytes()[i] {
                    let mut v = id.as_bytes().to_vec();
                    v[i] = a;
                    out.push(String::from_utf8(v).unwrap());
                }
            }
        }
        out
    }

    fn transpositions(id: &str, skip: usize) -> Vec<String> {
        let b = id.as_bytes();
        (skip..b.len() - 1)
            .filter(|&i| b[i] != b[i + 1])
            .map(|i| {
                let mut v = b.to_vec();
                v.swap(i, i + 1);
                String::from_utf8(v).unwrap()
            })
            .collect()
    }

    #[test]
    fn every_single_substitution_and_adjacent_swap_of_a_temp_id_is_rejected() {
        for _ in 0..200 {
            let id = TempId::generate().unwrap();
            assert_eq!(TempId::parse(id.as_str()).unwrap(), id);
            for bad in substitutions(id.as_str(), 1)
                .into_iter()
                .chain(transpositions(id.as_str(), 1))
            {
                assert!(
                    TempId::parse(&bad).is_err(),
                    "{bad} (from {id}) was accepted"
                );
            }
        }
    }

    #[test]
    fn every_single_substitution_and_adjacent_swap_of_a_person_key_is_rejected() {
        for _ in 0..200 {
            let key = PersonKey::generate().unwrap();
            assert_eq!(key.as_str().len(), 12);
            assert!(key.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(PersonKey::parse(key.as_str()).unwrap(), key);
            for bad in substitutions(key.as_str(), 0)
                .into_iter()
                .chain(transpositions(key.as_str(), 0))
            {
                assert!(
                    PersonKey::parse(&bad).is_err(),
                    "{bad} (from {key}) was accepted"
                );
            }
        }
    }

    #[test]
    fn temp_ids_accept_what_staff_type() {
        let id = TempId::generate().unwrap();
        let s = id.as_str();
        let typed = format!(" {}-{} {}", &s[..1], s[1..5].to_lowercase(), &s[5..]);
        assert_eq!(TempId::parse(&typed).unwrap(), id);
        // Another letter in place of the prefix (dropping it instead fails on the length
        // unless the next character happens to be a T).
        assert_eq!(
            TempId::parse(&format!("X{}", &s[1..])),
            Err(IdError::Prefix)
        );
        assert!(matches!(
            TempId::parse(&s[..s.len() - 1]),
            Err(IdError::Length { .. })
        ));
        assert!(matches!(
            TempId::parse("T!!!!!!!!!"),
            Err(IdError::Character { position: 1 })
        ));
    }

    #[test]
    fn the_field_multiplication_is_a_field() {
        // Every non-zero element has an inverse, so x ∘ y is a Latin square.
        for a in 1..32u8 {
            assert!((1..32u8).any(|b| gf32_mul(a, b) == 1), "{a} has no inverse");
        }
    }
}
