//! Cross-match evidence, per Ohio WIOAPL 15-07.1 VI.C.4: a match documents eligibility only
//! with the date of the eligibility determination, the dates of participation and the
//! benefit or service rendered, and only when it is current. The presence of an
//! identifier in another agency's file is not evidence.

use std::sync::Arc;

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// The window around program entry in which a benefit period counts as current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Months before entry the window opens (default 6).
    #[serde(default = "default_months_before")]
    pub months_before: u32,
    /// Days after entry the window closes (default 0: the entry date).
    #[serde(default)]
    pub days_after: u32,
}

fn default_months_before() -> u32 {
    6
}

impl Default for Window {
    fn default() -> Self {
        Window {
            months_before: default_months_before(),
            days_after: 0,
        }
    }
}

impl Window {
    pub fn bounds(&self, entry: NaiveDate) -> (NaiveDate, NaiveDate) {
        let start = entry
            .checked_sub_months(Months::new(self.months_before))
            .unwrap_or(NaiveDate::MIN);
        let end = entry + chrono::Duration::days(i64::from(self.days_after));
        (start, end)
    }
}

/// What a linked record says, in evidence roles (from the source's schema).
///
/// The program and benefit type take a handful of values per source, shared (`Arc<str>`)
/// rather than copied: a run holds one of these per linked record and period until it
/// writes them, 1.5 million at a million participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceFacts {
    pub program: Arc<str>,
    pub determination_date: Option<NaiveDate>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub benefit_type: Option<Arc<str>>,
}

/// Why evidence is or is not sufficient; the code is what the de-identified zone carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Sufficient,
    /// Linked, but none of the detail: an identifier alone.
    IdentifierOnly,
    NoDeterminationDate,
    NoPeriod,
    NoBenefitType,
    /// The benefit period ended before the window opened.
    Stale,
    /// The benefit period began after the window closed.
    AfterEntry,
}

impl Verdict {
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Sufficient => "sufficient",
            Verdict::IdentifierOnly => "identifier_only",
            Verdict::NoDeterminationDate => "no_determination_date",
            Verdict::NoPeriod => "no_period",
            Verdict::NoBenefitType => "no_benefit_type",
            Verdict::Stale => "stale_period",
            Verdict::AfterEntry => "period_after_entry",
        }
    }

    pub fn is_sufficient(self) -> bool {
        self == Verdict::Sufficient
    }
}

/// Judges one record against one participant period's entry date.
pub fn judge(facts: &EvidenceFacts, entry: NaiveDate, window: &Window) -> Verdict {
    let (det, start, end, kind) = (
        facts.determination_date,
        facts.period_start,
        facts.period_end,
        facts.benefit_type.as_deref().filter(|s| !s.is_empty()),
    );
    if det.is_none() && start.is_none() && end.is_none() && kind.is_none() {
        return Verdict::IdentifierOnly;
    }
    let Some(_) = det else {
        return Verdict::NoDeterminationDate;
    };
    let (Some(start), Some(end)) = (start, end) else {
        return Verdict::NoPeriod;
    };
    if kind.is_none() {
        return Verdict::NoBenefitType;
    }
    let (open, close) = window.bounds(entry);
    if end < open {
        Verdict::Stale
    } else if start > close {
        Verdict::AfterEntry
    } else {
        Verdict::Sufficient
    }
}

/// Statuses at entry that evidence can verify, and what the case file self-reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statuses {
    pub snap: bool,
    pub tanf: bool,
    pub ui_claimant: bool,
    pub taa: bool,
}

impl Statuses {
    /// Sets the status a sufficient piece of evidence of `program` verifies.
    pub fn verify(&mut self, program: &str) {
        match program {
            "SNAP" => self.snap = true,
            "TANF" => self.tanf = true,
            "UI" => self.ui_claimant = true,
            "TAA" => self.taa = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn facts(
        det: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        kind: Option<&str>,
    ) -> EvidenceFacts {
        EvidenceFacts {
            program: "SNAP".into(),
            determination_date: det.map(d),
            period_start: start.map(d),
            period_end: end.map(d),
            benefit_type: kind.map(Arc::from),
        }
    }

    #[test]
    fn evidence_needs_all_details_and_a_current_period() {
        let w = Window::default();
        let entry = d("2024-07-15");
        let full = |s, e| facts(Some("2024-01-01"), Some(s), Some(e), Some("FOOD"));
        assert_eq!(
            judge(&full("2024-01-01", "2024-06-30"), entry, &w),
            Verdict::Sufficient
        );
        // The window opens six months before entry: 2024-01-15.
        assert_eq!(
            judge(&full("2023-07-01", "2024-01-15"), entry, &w),
            Verdict::Sufficient
        );
        assert_eq!(
            judge(&full("2023-07-01", "2024-01-14"), entry, &w),
            Verdict::Stale
        );
        assert_eq!(
            judge(&full("2024-07-15", "2024-12-31"), entry, &w),
            Verdict::Sufficient
        );
        assert_eq!(
            judge(&full("2024-07-16", "2024-12-31"), entry, &w),
            Verdict::AfterEntry
        );
        assert_eq!(
            judge(&facts(None, None, None, None), entry, &w),
            Verdict::IdentifierOnly
        );
        assert_eq!(
            judge(
                &facts(None, Some("2024-01-01"), Some("2024-12-31"), Some("FOOD")),
                entry,
                &w
            ),
            Verdict::NoDeterminationDate
        );
        assert_eq!(
            judge(
                &facts(Some("2024-01-01"), Some("2024-01-01"), None, Some("FOOD")),
                entry,
                &w
            ),
            Verdict::NoPeriod
        );
        assert_eq!(
            judge(
                &facts(
                    Some("2024-01-01"),
                    Some("2024-01-01"),
                    Some("2024-12-31"),
                    None
                ),
                entry,
                &w
            ),
            Verdict::NoBenefitType
        );
    }
}
