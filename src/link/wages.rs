//! Employment and earnings after exit from UI wage records (the WIOA indicators' source):
//! quarters 1–4 after the exit quarter, and retention with the same employer in quarters
//! 2 and 4. A quarter whose wage file has not been loaded yet is unknown, not zero.

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};

use crate::identity::registry::PersonId;
use crate::identity::token::{Token, Tokenizer};

/// A calendar quarter, e.g. 2024Q3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    pub year: i32,
    /// 1–4.
    pub q: u8,
}

impl Quarter {
    pub fn of(date: NaiveDate) -> Quarter {
        Quarter {
            year: date.year(),
            q: ((date.month0() / 3) + 1) as u8,
        }
    }

    /// Parses `YYYYQn`.
    pub fn parse(s: &str) -> Option<Quarter> {
        let s = s.trim();
        let (y, q) = s.split_once(['Q', 'q'])?;
        let year: i32 = y.parse().ok()?;
        let q: u8 = q.parse().ok()?;
        ((1..=4).contains(&q) && (1900..=2200).contains(&year)).then_some(Quarter { year, q })
    }

    /// The quarter's first day (1 January, 1 April, 1 July or 1 October).
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, u32::from(self.q - 1) * 3 + 1, 1)
            .expect("a parsed quarter has a valid first day")
    }

    pub fn plus(self, n: u32) -> Quarter {
        let idx = self.year * 4 + i32::from(self.q - 1) + n as i32;
        Quarter {
            year: idx.div_euclid(4),
            q: (idx.rem_euclid(4) + 1) as u8,
        }
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

/// The run's employers: each UI account number gets a small index the first time it is
/// seen, and its keyed token is made once.
#[derive(Debug, Default)]
pub struct Employers {
    index: std::collections::HashMap<String, u32>,
    tokens: Vec<Token>,
}

impl Employers {
    /// The index of `account`, tokenizing it on first sight.
    pub fn id(&mut self, account: &str, tokenizer: &Tokenizer) -> u32 {
        if let Some(&id) = self.index.get(account) {
            return id;
        }
        let id = u32::try_from(self.tokens.len()).expect("fewer than 4 billion employers");
        self.tokens.push(tokenizer.employer_token(account));
        self.index.insert(account.to_string(), id);
        id
    }

    /// Every token in hex, by index: the form the de-identified zone writes.
    pub fn hex_tokens(&self) -> Vec<String> {
        self.tokens.iter().map(hex::encode).collect()
    }
}

/// Linked wage rows as a run collects them: one exactly sized chunk per batch.
///
/// A state of a million participants links about seven million wage rows while the
/// wage file is read, which is when the run peaks. In one vector grown by doubling they
/// would, at its last doubling, hold the old and the new buffer at once (400 MB for
/// 270 MB of rows) and keep up to half of the new one unused; chunks hold what they hold.
/// [`WageChunks::into_rows`] makes the one vector once linking is over and the
/// participants' blocking index is gone.
#[derive(Debug, Default)]
pub struct WageChunks {
    chunks: Vec<Vec<WageRow>>,
    len: usize,
}

impl WageChunks {
    /// Adds one batch's rows, copied into an allocation of exactly their size when
    /// `rows` has room to spare (`shrink_to_fit` would not do: mimalloc shrinks a block
    /// in place, keeping all of it, unless it loses more than half).
    pub fn push_chunk(&mut self, rows: Vec<WageRow>) {
        if rows.is_empty() {
            return;
        }
        self.len += rows.len();
        if rows.capacity() == rows.len() {
            self.chunks.push(rows);
        } else {
            self.chunks.push(rows.as_slice().to_vec());
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every row, in the order the chunks came; each chunk is freed once copied.
    pub fn into_rows(self) -> Vec<WageRow> {
        let mut rows = Vec::with_capacity(self.len);
        for chunk in self.chunks {
            rows.extend_from_slice(&chunk);
        }
        rows
    }
}

/// One linked wage record.
///
/// Compact on purpose: a state of a million participants links about seven million wage
/// records, so the employer is an index into the run's table of employer tokens (a few
/// hundred thousand) rather than the 32-byte token itself.
#[derive(Debug, Clone, Copy)]
pub struct WageRow {
    pub person: PersonId,
    /// Index into the run's employer-token table.
    pub employer: u32,
    pub quarter: Quarter,
    /// Wages in cents.
    pub cents: i64,
}

/// Outcomes of one participant period. `None` = the quarter is not loaded yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub employed: [Option<bool>; 4],
    pub wages_cents: [Option<i64>; 4],
    pub retention_same_employer: Option<bool>,
}

/// Linked wage rows grouped by person (one sorted vector, so millions of rows cost no
/// per-person allocation), and which quarters the wage files cover.
pub struct WageIndex {
    rows: Vec<WageRow>,
    by_person: HashMap<PersonId, std::ops::Range<usize>>,
    loaded: BTreeSet<Quarter>,
}

impl WageIndex {
    pub fn new(mut rows: Vec<WageRow>, loaded: BTreeSet<Quarter>) -> WageIndex {
        rows.sort_unstable_by_key(|r| (r.person, r.quarter));
        let mut by_person = HashMap::new();
        let mut start = 0;
        for i in 1..=rows.len() {
            if i == rows.len() || rows[i].person != rows[start].person {
                by_person.insert(rows[start].person, start..i);
                start = i;
            }
        }
        WageIndex {
            rows,
            by_person,
            loaded,
        }
    }

    /// Every linked row, grouped by person.
    pub fn rows(&self) -> &[WageRow] {
        &self.rows
    }

    pub fn loaded_quarters(&self) -> &BTreeSet<Quarter> {
        &self.loaded
    }

    pub fn outcomes(&self, person: PersonId, exit: NaiveDate) -> Outcomes {
        let exit_q = Quarter::of(exit);
        let rows = self
            .by_person
            .get(&person)
            .map(|r| &self.rows[r.clone()])
            .unwrap_or(&[]);
        let mut out = Outcomes::default();
        let mut employers: [BTreeSet<u32>; 4] = Default::default();
        for (k, employers_k) in employers.iter_mut().enumerate() {
            let q = exit_q.plus(k as u32 + 1);
            if !self.loaded.contains(&q) {
                continue;
            }
            let mut total = 0i64;
            for r in rows.iter().filter(|r| r.quarter == q) {
                total += r.cents;
                if r.cents > 0 {
                    employers_k.insert(r.employer);
                }
            }
            out.wages_cents[k] = Some(total);
            out.employed[k] = Some(total > 0);
        }
        if out.employed[1].is_some() && out.employed[3].is_some() {
            out.retention_same_employer = Some(!employers[1].is_disjoint(&employers[3]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wage_chunks_give_back_every_row_in_order() {
        let row = |person| WageRow {
            person,
            employer: 0,
            quarter: Quarter { year: 2024, q: 1 },
            cents: 100,
        };
        let mut chunks = WageChunks::default();
        assert!(chunks.is_empty());
        let mut first = Vec::with_capacity(1_000);
        first.extend([row(3), row(1)]);
        chunks.push_chunk(first);
        chunks.push_chunk(Vec::new());
        chunks.push_chunk(vec![row(2)]);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.chunks.iter().all(|c| c.capacity() == c.len()));
        let people: Vec<PersonId> = chunks.into_rows().iter().map(|r| r.person).collect();
        assert_eq!(people, [3, 1, 2]);
    }

    #[test]
    fn quarters_after_exit_and_retention() {
        let (e1, e2) = (1, 2);
        let q = |s: &str| Quarter::parse(s).unwrap();
        let rows = vec![
            WageRow {
                person: 1,
                employer: e1,
                quarter: q("2024Q1"),
                cents: 50_000,
            },
            WageRow {
                person: 1,
                employer: e1,
                quarter: q("2024Q2"),
                cents: 70_000,
            },
            WageRow {
                person: 1,
                employer: e2,
                quarter: q("2024Q2"),
                cents: 10_000,
            },
            WageRow {
                person: 1,
                employer: e1,
                quarter: q("2024Q4"),
                cents: 90_000,
            },
        ];
        let loaded: BTreeSet<Quarter> = ["2024Q1", "2024Q2", "2024Q3", "2024Q4"].map(q).into();
        let idx = WageIndex::new(rows, loaded);
        // Exit in 2023Q4: Q1..Q4 after exit are 2024Q1..2024Q4.
        let o = idx.outcomes(1, "2023-11-15".parse().unwrap());
        assert_eq!(
            o.employed,
            [Some(true), Some(true), Some(false), Some(true)]
        );
        assert_eq!(o.wages_cents[1], Some(80_000));
        assert_eq!(o.retention_same_employer, Some(true));
        // Exit in 2024Q2: Q3, Q4 loaded; 2025Q1, 2025Q2 not yet.
        let o = idx.outcomes(1, "2024-05-01".parse().unwrap());
        assert_eq!(o.employed, [Some(false), Some(true), None, None]);
        assert_eq!(o.retention_same_employer, None);
        assert_eq!(q("2024Q4").plus(1), q("2025Q1"));
        assert!(Quarter::parse("2024Q5").is_none());
    }
}
