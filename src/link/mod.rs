//! Cross-matching other agencies' records to persons, on keyed tokens only.
//!
//! Passes run in the pipeline's order (SSN first, then the name+DOB rules); a record is
//! linked by the first pass whose token names exactly one person. A token held by two or
//! more persons is ambiguous and that pass is skipped for the record.
//!
//! Name passes carry one more guard: they link only when the record has no valid SSN or
//! the person has none on file. A name+DOB agreement between two *different* valid SSNs
//! is, at state scale, more often two people than a typo (with a million participants and
//! a few million other records, thousands of people share a surname, first name and
//! birthday), and eligibility evidence must not be attached to the wrong person. Records
//! with a mistyped SSN therefore stay unlinked unless their SSN is missing; the recall
//! floors in the tests are stated with that in mind.

pub mod evidence;
pub mod prob;
pub mod wages;

use crate::identity::registry::{Holder, PersonFlags, PersonId, Registry};
use crate::identity::token::{RULES, Rule, Token};

/// Token lookups for the cross-match: the registry's own token maps, read through merge
/// pointers, plus which surviving persons have an SSN on file.
///
/// Borrowing the registry instead of copying its tokens into maps of its own keeps one
/// copy of the six million tokens a state of a million participants holds.
pub struct PersonIndex<'r> {
    reg: &'r Registry,
    with_ssn: PersonFlags,
}

impl<'r> PersonIndex<'r> {
    pub fn build(reg: &'r Registry) -> PersonIndex<'r> {
        PersonIndex {
            reg,
            with_ssn: reg.persons_with_ssn(),
        }
    }

    pub fn has_ssn(&self, person: PersonId) -> bool {
        self.with_ssn.contains(person)
    }

    /// Runs the passes for one record's tokens (indexed like [`RULES`]).
    pub fn link(&self, passes: &[Rule], tokens: &[Option<Token>; RULES.len()]) -> LinkOutcome {
        let record_has_ssn = tokens[Rule::Ssn.index()].is_some();
        let mut ambiguous_at = None;
        for (i, &rule) in passes.iter().enumerate() {
            let Some(token) = &tokens[rule.index()] else {
                continue;
            };
            match self.reg.holder(rule, token) {
                Holder::One(p) => {
                    let is_ssn_rule = matches!(rule, Rule::Ssn | Rule::SsnDob);
                    if is_ssn_rule || !record_has_ssn || !self.has_ssn(p) {
                        return LinkOutcome::Linked { person: p, pass: i };
                    }
                }
                Holder::Several => {
                    ambiguous_at.get_or_insert(i);
                }
                Holder::Nobody => {}
            }
        }
        match ambiguous_at {
            Some(pass) => LinkOutcome::Ambiguous { pass },
            None => LinkOutcome::Unlinked,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Linked by `passes[pass]`.
    Linked {
        person: PersonId,
        pass: usize,
    },
    /// Not linked; the first pass where a token named several persons.
    Ambiguous {
        pass: usize,
    },
    Unlinked,
}

/// The pass name of a record linked by the probabilistic pass.
pub const PROBABILISTIC: &str = "probabilistic";
/// The pass name of a record linked because a person accepted the link in review.
pub const REVIEW_ACCEPTED: &str = "review_accepted";

/// Per-source counts: rows, links per pass, ambiguous, unlinked, and of the unlinked
/// those waiting in review.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LinkStats {
    pub rows: u64,
    pub linked_by_pass: Vec<(String, u64)>,
    pub ambiguous: u64,
    pub unlinked: u64,
    /// Unlinked or ambiguous records whose best candidate is in the review band.
    #[serde(default)]
    pub review: u64,
}

impl LinkStats {
    /// `probabilistic`: the pipeline runs the probabilistic pass, whose links (and
    /// accepted review decisions) are counted as passes of their own.
    pub fn new(passes: &[Rule], probabilistic: bool) -> LinkStats {
        let mut names: Vec<String> = passes.iter().map(|r| r.name().to_string()).collect();
        if probabilistic {
            names.push(REVIEW_ACCEPTED.into());
            names.push(PROBABILISTIC.into());
        }
        LinkStats {
            linked_by_pass: names.into_iter().map(|p| (p, 0)).collect(),
            ..Default::default()
        }
    }

    /// Counts a record linked by a pass other than a token rule (see [`LinkStats::new`]).
    pub fn count_linked_by(&mut self, pass: &str) {
        self.rows += 1;
        if let Some(p) = self.linked_by_pass.iter_mut().find(|(n, _)| n == pass) {
            p.1 += 1;
        }
    }

    pub fn count(&mut self, outcome: LinkOutcome) {
        self.rows += 1;
        match outcome {
            LinkOutcome::Linked { pass, .. } => self.linked_by_pass[pass].1 += 1,
            LinkOutcome::Ambiguous { .. } => self.ambiguous += 1,
            LinkOutcome::Unlinked => self.unlinked += 1,
        }
    }

    pub fn linked(&self) -> u64 {
        self.linked_by_pass.iter().map(|(_, n)| n).sum()
    }
}
