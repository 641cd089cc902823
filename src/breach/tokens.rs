//! Reading a partner's list of exposed identifiers: raw SSNs or SSN tokens.
//!
//! Raw SSNs are normalized and tokenized as they are read and the digits are dropped at
//! once: nothing here stores, logs or returns an SSN, and problems are reported as
//! reason codes and line numbers, never as the offending value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::identity::token::{Rule, Token, Tokenizer};
use crate::identity::{IdentityFields, ssn};

use super::BreachError;

/// Column names taken to hold the identifier when the file has a header.
const HEADERS: [&str; 5] = ["ssn", "token", "tok_ssn", "ssn_token", "tokens"];

/// At most this many unusable line numbers are kept for the report.
const MAX_LINES_LISTED: usize = 20;

/// The identifiers of a tokens file, as SSN tokens.
#[derive(Debug, Default)]
pub struct TokenList {
    /// Distinct tokens, with whether any line gave it as a raw SSN.
    pub tokens: BTreeMap<Token, bool>,
    pub lines: u64,
    pub ssn_lines: u64,
    pub token_lines: u64,
    pub unusable: u64,
    /// Reason code (`ssn_bad_length`, …, or `bad_token` for hex of the wrong length) →
    /// how many lines.
    pub unusable_by_reason: BTreeMap<String, u64>,
    /// Line numbers (1-based) of the first unusable lines.
    pub unusable_lines: Vec<u64>,
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads `path`: one SSN or 64-hex token per line, or CSV whose header names an `ssn` /
/// `token` / `tok_ssn` column (otherwise the first column is used).
pub fn read(path: &Path, tokenizer: &Tokenizer) -> Result<TokenList, BreachError> {
    let bytes = std::fs::read(path).map_err(|source| BreachError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = TokenList::default();
    let mut column = 0usize;
    let mut first = true;
    for rec in reader.records() {
        let line = rec
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map(|p| p.line())
            .unwrap_or(0);
        let rec = match rec {
            Ok(rec) => rec,
            Err(_) => {
                out.lines += 1;
                out.note_unusable("unreadable_line", line);
                continue;
            }
        };
        if first {
            first = false;
            let names: Vec<String> = rec.iter().map(|f| f.trim().to_ascii_lowercase()).collect();
            if let Some(i) = names.iter().position(|n| HEADERS.contains(&n.as_str())) {
                column = i;
                continue;
            }
            // A header naming something else: words, no digits.
            let f0 = names.first().map(String::as_str).unwrap_or("");
            if !f0.is_empty()
                && f0.bytes().any(|b| b.is_ascii_alphabetic())
                && !f0.bytes().any(|b| b.is_ascii_digit())
            {
                continue;
            }
        }
        let value = rec.get(column).unwrap_or("").trim();
        if value.is_empty() && rec.iter().all(|f| f.trim().is_empty()) {
            continue; // a blank line
        }
        out.lines += 1;
        if value.len() == 64 && is_hex(value) {
            let mut t = [0u8; 32];
            hex::decode_to_slice(value.to_ascii_lowercase(), &mut t)
                .expect("64 hex digits decode to 32 bytes");
            out.token_lines += 1;
            out.tokens.entry(t).or_insert(false);
            continue;
        }
        // Longer than any SSN spelling and all hex: a damaged token, not an SSN.
        if value.len() > 11 && is_hex(value) {
            out.note_unusable("bad_token", line);
            continue;
        }
        match ssn::normalize(value) {
            Ok(s) => {
                let fields = IdentityFields {
                    ssn: Some(s),
                    ..IdentityFields::default()
                };
                let t = tokenizer
                    .token(Rule::Ssn, &fields)
                    .expect("a valid SSN always has an SSN token");
                out.ssn_lines += 1;
                out.tokens.insert(t, true);
            }
            Err(reason) => out.note_unusable(reason.as_str(), line),
        }
    }
    Ok(out)
}

impl TokenList {
    fn note_unusable(&mut self, reason: &str, line: u64) {
        self.unusable += 1;
        *self
            .unusable_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
        if self.unusable_lines.len() < MAX_LINES_LISTED && line > 0 {
            self.unusable_lines.push(line);
        }
    }

    /// Tokens that came from raw SSNs.
    pub fn from_ssns(&self) -> BTreeSet<Token> {
        self.tokens
            .iter()
            .filter(|(_, raw)| **raw)
            .map(|(t, _)| *t)
            .collect()
    }
}
