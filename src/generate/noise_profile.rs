//! Noise profiles: the identity-error rates of a run, chosen with `--noise`.
//!
//! `Default` is exactly the constants of `rates.rs`, so a default run is byte-identical to
//! the output before profiles existed. `Heavy` raises every identity error and adds kinds
//! the default never injects (OCR and keyboard misspellings, swapped names, missing
//! surnames, mistyped DOB digits), so a linkage benchmark is not tuned to one set of rates.
//!
//! A rate the default leaves at zero is never drawn for (see `util::maybe`): the default's
//! random streams are consumed exactly as before.

use std::fmt;

use super::rates::*;

/// Which identity-error rates a run uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NoiseProfile {
    /// The rates of `rates.rs`.
    #[default]
    Default,
    /// Harder data: see `IdentityNoise::heavy`.
    Heavy,
}

impl NoiseProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            NoiseProfile::Default => "default",
            NoiseProfile::Heavy => "heavy",
        }
    }

    pub fn rates(self) -> IdentityNoise {
        match self {
            NoiseProfile::Default => IdentityNoise::default_rates(),
            NoiseProfile::Heavy => IdentityNoise::heavy(),
        }
    }
}

impl fmt::Display for NoiseProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity-error rates a profile sets. `p_` rates are per participant record, `x_`
/// rates per agency identity (one per person and agency, shown on all of that agency's rows
/// for the person). Misspelling rates cover all kinds; `misspell_kinds` splits them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdentityNoise {
    // ----- Participants -----
    pub p_ssn_missing: f64,
    pub p_ssn_invalid: f64,
    pub p_ssn_typo: f64,
    pub p_ssn_transposed: f64,
    pub p_nickname: f64,
    pub p_first_misspelled: f64,
    pub p_last_misspelled: f64,
    pub p_names_swapped: f64,
    pub p_dob_missing: f64,
    pub p_dob_swapped: f64,
    pub p_dob_typo: f64,
    // ----- Agency rows -----
    /// Public assistance, TAA, UI claims, UI wages.
    pub x_ssn_missing: [f64; 4],
    /// A typo (60%) or transposition (40%) in an SSN that is present.
    pub x_ssn_typo: f64,
    pub x_nickname: f64,
    pub x_first_misspelled: f64,
    pub x_last_misspelled: f64,
    pub x_names_swapped: f64,
    /// First name missing in files whose name columns are complete otherwise (public
    /// assistance, TAA, UI claims); the wage file keeps its own initials and blanks.
    pub x_first_missing: f64,
    /// Last name missing, in the same files.
    pub x_last_missing: f64,
    pub x_dob_missing: f64,
    pub x_dob_typo: f64,
    // ----- Both -----
    pub zip_missing: f64,
    /// Misspelling kinds: one letter substituted, deleted, doubled or swapped; an OCR letter
    /// confusion (rn↔m, cl↔d, I↔L …); a QWERTY neighbour key.
    pub misspell_kinds: [f64; 3],
}

impl IdentityNoise {
    /// Today's constants, unchanged.
    pub const fn default_rates() -> IdentityNoise {
        IdentityNoise {
            p_ssn_missing: P_SSN_MISSING,
            p_ssn_invalid: P_SSN_INVALID,
            p_ssn_typo: P_SSN_TYPO,
            p_ssn_transposed: P_SSN_TRANSPOSED,
            p_nickname: P_NICKNAME,
            p_first_misspelled: P_FIRST_MISSPELLED,
            p_last_misspelled: P_LAST_MISSPELLED,
            p_names_swapped: 0.0,
            p_dob_missing: 0.0,
            p_dob_swapped: P_DOB_SWAPPED,
            p_dob_typo: 0.0,
            x_ssn_missing: X_SSN_MISSING,
            x_ssn_typo: X_SSN_TYPO,
            x_nickname: X_NICKNAME,
            x_first_misspelled: X_MISSPELLED,
            x_last_misspelled: X_MISSPELLED,
            x_names_swapped: 0.0,
            x_first_missing: 0.0,
            x_last_missing: 0.0,
            x_dob_missing: X_DOB_MISSING,
            x_dob_typo: 0.0,
            zip_missing: ZIP_MISSING,
            misspell_kinds: [1.0, 0.0, 0.0],
        }
    }

    /// The heavy profile.
    pub const fn heavy() -> IdentityNoise {
        IdentityNoise {
            // Twice the default: intake staff under load skip the SSN question more often.
            p_ssn_missing: 2.0 * P_SSN_MISSING,
            // Unchanged: invalid SSNs are rejected by the validator, not a linkage test.
            p_ssn_invalid: P_SSN_INVALID,
            // 1.2% + 0.8% = 2% of records with a wrong but valid SSN: a real risk of
            // false SSN agreement and missed links that SSN-first matching must survive.
            p_ssn_typo: 0.012,
            p_ssn_transposed: 0.008,
            // Unchanged: nicknames are already a name-comparison test at the default rate.
            p_nickname: P_NICKNAME,
            // About 4.5% each, a third of them OCR or keyboard errors: scanned forms and
            // fast typing, beyond the one-letter slips of the default.
            p_first_misspelled: 0.045,
            p_last_misspelled: 0.045,
            // First and last name entered in each other's field (common with surnames
            // that read as given names).
            p_names_swapped: 0.015,
            // A DOB not captured at intake: the comparator must not require it.
            p_dob_missing: 0.02,
            // Unchanged: the day/month swap is its own scenario.
            p_dob_swapped: P_DOB_SWAPPED,
            // One digit of the DOB mistyped (still a real date).
            p_dob_typo: 0.01,
            // Twice the default in every agency file.
            x_ssn_missing: [
                2.0 * X_SSN_MISSING[0],
                2.0 * X_SSN_MISSING[1],
                2.0 * X_SSN_MISSING[2],
                2.0 * X_SSN_MISSING[3],
            ],
            // 3% of agency identities with a valid SSN carry a digit error: six times the
            // default, so exact SSN blocking alone misses a visible share of links.
            x_ssn_typo: 0.03,
            x_nickname: X_NICKNAME,
            // As for participants: about 4.5% per name, three kinds.
            x_first_misspelled: 0.045,
            x_last_misspelled: 0.045,
            x_names_swapped: 0.015,
            // Partner files with incomplete names: surname-only rows and, rarer, given
            // name only.
            x_first_missing: 0.03,
            x_last_missing: 0.01,
            // Three times the default: DOB is often optional in partner systems.
            x_dob_missing: 0.06,
            x_dob_typo: 0.01,
            // 2.5 times the default, for participants and agencies.
            zip_missing: 0.05,
            // Half one-letter slips, a quarter OCR confusions, a quarter keyboard typos.
            misspell_kinds: [0.5, 0.25, 0.25],
        }
    }
}
