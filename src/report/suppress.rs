//! Small-cell protection for anything that can leave the agency.
//!
//! *Primary*: a cell is suppressed when its numerator, its denominator, or the difference
//! between them is below the threshold (default 11 people, `[reporting]
//! small_cell_threshold`). A median is suppressed when it is computed over fewer people
//! than the threshold, or when the employment cell it comes from is suppressed.
//!
//! *Complementary*: within one program and indicator, the groups of an additive breakdown
//! (sex, age group, race/ethnicity, exit quarter: every person in exactly one group) add up to the
//! total. A lone suppressed group would be total minus the others, so a second group (the
//! smallest published one) is suppressed with it. A suppressed total would be the sum of
//! any fully published breakdown, so when the total is suppressed every group of every
//! breakdown of that indicator is suppressed too. Barrier groups overlap (a person can
//! have several barriers) and have no published sum, so only the primary rule applies.

/// Breakdowns whose groups partition the total.
pub const ADDITIVE: &[&str] = &["Sex", "Age at entry", "Race/ethnicity", "Exit quarter"];
pub const TOTAL: &str = "Total";

/// One published cell: counts of people.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub program: String,
    pub indicator: String,
    pub breakdown: String,
    pub group: String,
    pub numerator: u64,
    pub denominator: u64,
    /// Cohort members whose outcome is not known yet (wage quarter not loaded).
    pub awaiting: u64,
    /// Median earnings (dollars) for median cells; `numerator`/`denominator` then both
    /// hold the number of people the median is over.
    pub median: Option<f64>,
    pub suppressed: bool,
}

impl Cell {
    pub fn is_median(&self) -> bool {
        self.median.is_some()
    }

    /// The primary rule.
    pub fn small(&self, threshold: u64) -> bool {
        if self.is_median() {
            return self.denominator < threshold;
        }
        self.numerator < threshold
            || self.denominator < threshold
            || self.denominator.saturating_sub(self.numerator) < threshold
    }
}

/// The indicator a median comes from: a median is hidden whenever that cell is.
pub const MEDIAN_SOURCE: &str = "Employment rate Q2";

/// Applies primary and complementary suppression in place.
pub fn suppress(cells: &mut [Cell], threshold: u64) {
    for c in cells.iter_mut() {
        c.suppressed = c.small(threshold);
    }
    // Complementary suppression per (program, indicator), medians excluded (a median is
    // not additive; it follows its source cell below).
    let mut keys: Vec<(String, String)> = cells
        .iter()
        .filter(|c| !c.is_median())
        .map(|c| (c.program.clone(), c.indicator.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    for (program, indicator) in keys {
        let idx: Vec<usize> = (0..cells.len())
            .filter(|&i| {
                let c = &cells[i];
                !c.is_median() && c.program == program && c.indicator == indicator
            })
            .collect();
        let total_suppressed = idx
            .iter()
            .any(|&i| cells[i].breakdown == TOTAL && cells[i].suppressed);
        if total_suppressed {
            for &i in &idx {
                cells[i].suppressed = true;
            }
            continue;
        }
        for breakdown in ADDITIVE {
            let group: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| cells[i].breakdown == *breakdown)
                .collect();
            let hidden = group.iter().filter(|&&i| cells[i].suppressed).count();
            if hidden == 1 {
                // The smallest published group: the least information lost.
                if let Some(&j) =
                    group
                        .iter()
                        .filter(|&&i| !cells[i].suppressed)
                        .min_by(|&&a, &&b| {
                            (cells[a].denominator, &cells[a].group)
                                .cmp(&(cells[b].denominator, &cells[b].group))
                        })
                {
                    cells[j].suppressed = true;
                }
            }
        }
    }
    // Medians follow their source cell.
    let hidden_sources: std::collections::HashSet<(String, String, String)> = cells
        .iter()
        .filter(|c| c.indicator == MEDIAN_SOURCE && c.suppressed)
        .map(|c| (c.program.clone(), c.breakdown.clone(), c.group.clone()))
        .collect();
    for c in cells.iter_mut().filter(|c| c.is_median()) {
        if hidden_sources.contains(&(c.program.clone(), c.breakdown.clone(), c.group.clone())) {
            c.suppressed = true;
        }
    }
}
