//! The retention rule: which program year a file belongs to, and the day after which it
//! may go.
//!
//! Records are kept "at least three years after submittal of the final closeout
//! expenditure report for that funding period" (Ohio WIOAPL 15-07.1 F, rule 5101:9-9-21;
//! 2 CFR 200.334 sets the same federal floor). The closeout date is per program year and
//! only the state knows it, so it comes from `[retention.closeout]` in `xmatch.toml`.
//!
//! **The rule.** A file belongs to one program year (PY N runs 1 July N – 30 June N+1):
//!
//! * a de-identified file under a `program_year=N` partition belongs to PY N;
//! * a de-identified file under a `year_quarter=YYYYQn` partition belongs to the program
//!   year holding that quarter (2022Q3 and 2023Q2 are both PY 2022; a quarter never
//!   straddles two program years);
//! * every other file — unpartitioned de-identified datasets such as `data_quality`, the
//!   null partition `__HIVE_DEFAULT_PARTITION__`, any partition column not named above,
//!   and every secure-zone file (`secure/runs/<run>/…`) — belongs to the program year of
//!   the day its run wrote it (the lineage's `written_at`, as a UTC date: never earlier
//!   than the run's start, and for a US state never earlier than the local date, so a run
//!   near midnight on 30 June is never placed in the earlier, sooner-expiring year).
//!
//! PY N's files are **past retention** on day `today` when PY N has a configured closeout
//! date C and `today > C + years_after_closeout years` (the anniversary itself is still
//! inside the period; 29 February closes on 28 February). A program year without a
//! closeout date is never past retention: until the final expenditure report is in, the
//! three years have not started.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};

/// The federal and Ohio floor: fewer years would destroy records the state must keep.
pub const MIN_YEARS_AFTER_CLOSEOUT: u32 = 3;
/// Far beyond any records schedule; it keeps date arithmetic in range.
pub const MAX_YEARS_AFTER_CLOSEOUT: u32 = 100;

/// The validated `[retention]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub years_after_closeout: u32,
    /// Program year → closeout date.
    pub closeout: BTreeMap<i32, NaiveDate>,
}

/// Why a file belongs to its program year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Its `program_year=` partition.
    ProgramYear,
    /// Its `year_quarter=` partition.
    Quarter,
    /// The day its run wrote it.
    RunDate,
}

/// When a program year's files may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Kept through this day; past retention from the next.
    Through(NaiveDate),
    /// No closeout date configured: kept.
    NoCloseout,
}

impl Policy {
    /// Checks the raw configuration; the error names the offending field.
    pub fn from_config(cfg: &crate::workspace::Retention) -> Result<Policy, String> {
        let years = cfg.years_after_closeout;
        if years < MIN_YEARS_AFTER_CLOSEOUT {
            return Err(format!(
                "retention.years_after_closeout = {years}: records must be kept at least \
                 {MIN_YEARS_AFTER_CLOSEOUT} years after closeout (2 CFR 200.334, WIOAPL 15-07.1 F)"
            ));
        }
        if years > MAX_YEARS_AFTER_CLOSEOUT {
            return Err(format!(
                "retention.years_after_closeout = {years}: more than {MAX_YEARS_AFTER_CLOSEOUT}"
            ));
        }
        let mut closeout = BTreeMap::new();
        for (key, value) in &cfg.closeout {
            let field = format!("retention.closeout.{key}");
            let py = parse_program_year_key(key).ok_or_else(|| {
                format!("{field}: a program year is written PY and four digits, e.g. PY2022")
            })?;
            let date = parse_date(value).ok_or_else(|| {
                format!("{field}: expected a date such as \"2025-09-30\", found {value}")
            })?;
            let py_end = program_year_end(py);
            if date <= py_end {
                return Err(format!(
                    "{field} = {date}: a program year closes out after it ends ({py_end})"
                ));
            }
            if closeout.insert(py, date).is_some() {
                return Err(format!("{field}: program year {py} is given twice"));
            }
        }
        Ok(Policy {
            years_after_closeout: years,
            closeout,
        })
    }

    pub fn limit(&self, program_year: i32) -> Limit {
        match self.closeout.get(&program_year) {
            None => Limit::NoCloseout,
            Some(&c) => Limit::Through(add_years(c, self.years_after_closeout)),
        }
    }

    /// Whether PY `program_year`'s files are past retention on `today`.
    pub fn past_retention(&self, program_year: i32, today: NaiveDate) -> bool {
        match self.limit(program_year) {
            Limit::Through(last_kept) => today > last_kept,
            Limit::NoCloseout => false,
        }
    }
}

/// `PY2022` → 2022 (also `py2022`: the key is typed by hand).
fn parse_program_year_key(key: &str) -> Option<i32> {
    let digits = key.strip_prefix("PY").or_else(|| key.strip_prefix("py"))?;
    (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A quoted `"2025-09-30"` or a TOML date literal `2025-09-30`.
fn parse_date(value: &toml::Value) -> Option<NaiveDate> {
    match value {
        toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            let d = dt.date?;
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        _ => None,
    }
}

/// 30 June of N+1, the last day of PY N.
pub fn program_year_end(program_year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(program_year + 1, 6, 30).expect("a valid date")
}

/// PY N runs 1 July N to 30 June N+1.
pub fn program_year_of(date: NaiveDate) -> i32 {
    crate::deid::program_year(date)
}

fn add_years(date: NaiveDate, years: u32) -> NaiveDate {
    // `checked_add_months` clamps 29 February to 28 February in a common year.
    date.checked_add_months(Months::new(years * 12))
        .expect("years are bounded by MAX_YEARS_AFTER_CLOSEOUT")
}

/// The program year a file belongs to, from its zone-relative path and the day it was
/// written (see the module documentation).
pub fn classify(zone: crate::lake::Zone, path: &str, written: NaiveDate) -> (i32, Basis) {
    if zone == crate::lake::Zone::Deid {
        for component in path.split('/') {
            if let Some(v) = component.strip_prefix("program_year=")
                && let Ok(py) = v.parse::<i32>()
                && (1900..=2200).contains(&py)
            {
                return (py, Basis::ProgramYear);
            }
            if let Some(v) = component.strip_prefix("year_quarter=")
                && let Some(q) = crate::link::wages::Quarter::parse(v)
            {
                let first_month = u32::from(q.q - 1) * 3 + 1;
                let first_day = NaiveDate::from_ymd_opt(q.year, first_month, 1)
                    .expect("Quarter::parse bounds year and quarter");
                return (program_year_of(first_day), Basis::Quarter);
            }
        }
    }
    (program_year_of(written), Basis::RunDate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::Zone;
    use crate::workspace::Retention;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn retention(toml_text: &str) -> Result<Policy, String> {
        let cfg: Retention = toml::from_str(toml_text).map_err(|e| e.message().to_string())?;
        Policy::from_config(&cfg)
    }

    #[test]
    fn purge_policy_reads_quoted_and_literal_dates() {
        let p = retention(
            "years_after_closeout = 3\n[closeout]\nPY2021 = \"2024-09-30\"\nPY2022 = 2025-09-30\n",
        )
        .unwrap();
        assert_eq!(p.closeout[&2021], d("2024-09-30"));
        assert_eq!(p.closeout[&2022], d("2025-09-30"));
        assert_eq!(p.limit(2021), Limit::Through(d("2027-09-30")));
        assert_eq!(p.limit(2023), Limit::NoCloseout);
    }

    #[test]
    fn purge_policy_errors_name_the_field() {
        let e = retention("years_after_closeout = 2\n").unwrap_err();
        assert!(e.starts_with("retention.years_after_closeout = 2:"), "{e}");
        let e = retention("[closeout]\nFY2022 = \"2025-09-30\"\n").unwrap_err();
        assert!(e.starts_with("retention.closeout.FY2022:"), "{e}");
        let e = retention("[closeout]\nPY2022 = \"30/09/2025\"\n").unwrap_err();
        assert!(e.starts_with("retention.closeout.PY2022:"), "{e}");
        let e = retention("[closeout]\nPY2022 = 2025-09-30T00:00:00Z\n").unwrap_err();
        assert!(e.starts_with("retention.closeout.PY2022:"), "{e}");
        // Closing out before the year has even ended is a typo, not a policy.
        let e = retention("[closeout]\nPY2022 = \"2023-06-30\"\n").unwrap_err();
        assert!(
            e.starts_with("retention.closeout.PY2022 = 2023-06-30:"),
            "{e}"
        );
        let e = retention("[closeout]\nPY2022 = \"2025-09-30\"\npy2022 = \"2025-10-30\"\n")
            .unwrap_err();
        assert!(e.contains("given twice"), "{e}");
        assert!(retention("keep_forever = true\n").is_err());
    }

    #[test]
    fn purge_boundary_is_the_day_after_the_anniversary() {
        let p = retention("[closeout]\nPY2021 = \"2024-09-30\"\n").unwrap();
        assert!(!p.past_retention(2021, d("2027-09-30")));
        assert!(p.past_retention(2021, d("2027-10-01")));
        assert!(
            !p.past_retention(2022, d("2099-01-01")),
            "no closeout: kept"
        );
        let leap =
            retention("years_after_closeout = 3\n[closeout]\nPY2022 = \"2024-02-29\"\n").unwrap();
        assert_eq!(leap.limit(2022), Limit::Through(d("2027-02-28")));
    }

    #[test]
    fn purge_classifies_partitions_and_run_dates() {
        let written = d("2025-09-30");
        let c = |zone, path| classify(zone, path, written);
        assert_eq!(
            c(
                Zone::Deid,
                "participants/program_year=2021/part-00000.parquet"
            ),
            (2021, Basis::ProgramYear)
        );
        assert_eq!(
            c(
                Zone::Deid,
                "quarterly_wages/year_quarter=2022Q3/part-00001.parquet"
            ),
            (2022, Basis::Quarter)
        );
        assert_eq!(
            c(
                Zone::Deid,
                "quarterly_wages/year_quarter=2023Q2/part-00000.parquet"
            ),
            (2022, Basis::Quarter)
        );
        assert_eq!(
            c(
                Zone::Deid,
                "quarterly_wages/year_quarter=2023Q3/part-00000.parquet"
            ),
            (2023, Basis::Quarter)
        );
        assert_eq!(
            c(Zone::Deid, "data_quality/part-00000.parquet"),
            (2025, Basis::RunDate)
        );
        assert_eq!(
            c(
                Zone::Deid,
                "evidence/program_year=__HIVE_DEFAULT_PARTITION__/part-00000.parquet"
            ),
            (2025, Basis::RunDate)
        );
        // A secure file named like a partition is still the run's.
        assert_eq!(
            c(Zone::Secure, "program_year=2019/crosswalk.parquet"),
            (2025, Basis::RunDate)
        );
        assert_eq!(
            classify(Zone::Secure, "crosswalk.parquet", d("2025-06-30")),
            (2024, Basis::RunDate)
        );
    }
}
