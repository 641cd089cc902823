//! Every rate the generator uses, in one place so the README can quote them and a test can
//! hold the output to them. Rates are probabilities per person, per participant period or
//! per record, as each comment says. The realised counts of every injected scenario are
//! written to `manifest.json`.

use super::util::days_from_civil;

// ----- Calendar -----

/// The fixed "as of" date: nothing happens after it, so runs never depend on the clock.
pub const AS_OF: i32 = days_from_civil(2025, 9, 30);
/// Program entries fall in PY2021 … PY2024: 2021-07-01 … 2025-06-30.
pub const ENTRY_FIRST: i32 = days_from_civil(2021, 7, 1);
pub const ENTRY_LAST: i32 = days_from_civil(2025, 6, 30);
/// UI wage quarters: 2022Q3 … 2025Q2 (12 quarters), as absolute quarter numbers.
pub const WAGE_Q_FIRST: i32 = 2022 * 4 + 2;
pub const WAGE_QUARTERS: i32 = 12;

// ----- People -----

/// Non-participant people per participant person. They fill the external sources (and
/// 95% of them are wage earners), so wage files hold more than 3 non-participant workers
/// per participant.
pub const POOL_PER_PARTICIPANT: f64 = 3.5;
/// Share of non-participants with at least one wage record.
pub const POOL_WAGE_WORKER: f64 = 0.95;
pub const FEMALE: f64 = 0.51;
/// Participants who did not self-identify their sex (PIRL 201 = 9), per record.
pub const SEX_NOT_IDENTIFIED: f64 = 0.01;
/// People with a middle name; the participants export shows it in full for 45% of
/// records, as an initial for 20% and not at all for 35%.
pub const HAS_MIDDLE_NAME: f64 = 0.75;
/// Men with a generational suffix (JR, SR, II, III); shown appended to the surname in 70%
/// of participant records and 40% of agency records.
pub const SUFFIX: f64 = 0.03;
/// People whose surname changed (marriage, divorce): agency records carry the other surname
/// in 90% of their rows.
pub const NAME_CHANGE: f64 = 0.02;
pub const NAME_CHANGE_SHOWN_EXTERNALLY: f64 = 0.90;
/// Participant people who are one of a twin pair (same DOB, surname, ZIP and program dates;
/// different first names and SSNs).
pub const TWINS: f64 = 0.003;
/// ZIPs in New England (leading zero); 5% of those records lost the zero (4 digits).
pub const NEW_ENGLAND_ZIP: f64 = 0.06;
pub const ZIP_LOST_ZERO: f64 = 0.05;
/// ZIP left blank, per record.
pub const ZIP_MISSING: f64 = 0.02;
/// Local workforce development areas.
pub const LOCAL_AREAS: u32 = 15;

// ----- Participants: identifiers -----

/// Records without an SSN (the person declined): 65% blank, 35% placeholder junk such as
/// `REFUSED` or `000-00-0000`.
pub const P_SSN_MISSING: f64 = 0.04;
pub const P_SSN_JUNK_SHARE: f64 = 0.35;
/// Records with an invalid SSN (area 000/666/9xx, group 00, serial 0000, 123-45-6789,
/// 111-11-1111).
pub const P_SSN_INVALID: f64 = 0.005;
/// Records with one digit mistyped (result still a valid SSN).
pub const P_SSN_TYPO: f64 = 0.006;
/// Records with two adjacent digits transposed.
pub const P_SSN_TRANSPOSED: f64 = 0.004;
/// SSN layouts in the participants export: dashed, bare, with spaces, integer-like (leading
/// zeros lost, visible for the ~11% of SSNs whose area starts with 0).
pub const P_SSN_FORMATS: [f64; 4] = [0.50, 0.33, 0.05, 0.12];
/// DOB layouts: `YYYY-MM-DD`, `MM/DD/YYYY`, `YYYYMMDD`.
pub const P_DOB_FORMATS: [f64; 3] = [0.50, 0.35, 0.15];
/// DOBs entered with day and month swapped (per record).
pub const P_DOB_SWAPPED: f64 = 0.005;
/// A nickname instead of the formal first name, per record of a person whose name has one.
pub const P_NICKNAME: f64 = 0.05;
/// One-letter misspellings (substitution, deletion, doubling or swap), per record.
pub const P_FIRST_MISSPELLED: f64 = 0.01;
pub const P_LAST_MISSPELLED: f64 = 0.008;
/// Name case: UPPER, Title, lower, random mixed.
pub const P_NAME_CASE: [f64; 4] = [0.45, 0.45, 0.05, 0.05];
/// Leading, trailing or doubled inner spaces in a name, per record.
pub const P_EXTRA_SPACES: f64 = 0.03;
/// Accents stripped (José → Jose), per record of an accented name.
pub const P_ACCENT_STRIPPED: f64 = 0.30;

// ----- Participants: periods -----

/// A second copy of a participant period under a new individual_id (staff created the
/// person twice); half are exact copies, half re-keyed with different formatting.
pub const DUPLICATE: f64 = 0.01;
pub const DUPLICATE_EXACT_SHARE: f64 = 0.5;
/// People with a second participant period (re-entry after an exit).
pub const REENTRY: f64 = 0.015;
/// Of re-entrants, those who gave no SSN in the first period but did in the second.
pub const REENTRY_SSN_LATER: f64 = 0.35;
/// Primary program mix: W-P only, Adult, DW, Youth, SNAP E&T, TAA, NDWG.
pub const PROGRAM_MIX: [f64; 7] = [0.52, 0.16, 0.13, 0.10, 0.05, 0.02, 0.02];
/// Adults also co-enrolled as DW and vice versa.
pub const ADULT_DW_COENROLLED: f64 = 0.05;
/// Periods ended before the as-of date: the exit comes 30–700 days after entry (median
/// about 200) unless the person is a long-stayer (15%); about 75% of periods have exited.
pub const LONG_STAY: f64 = 0.15;
/// Exiters with another reason for exit (PIRL 923 codes 01–04, 06, 07); 05 (foster care)
/// only for Youth, at 2% of Youth exiters.
pub const EXIT_REASON_OTHER: f64 = 0.035;
pub const EXIT_REASON_FOSTER_YOUTH: f64 = 0.02;
/// Training: share of periods with a training service by program.
pub const TRAINING_ADULT_DW: f64 = 0.45;
pub const TRAINING_YOUTH: f64 = 0.35;
pub const TRAINING_TAA: f64 = 0.75;
pub const TRAINING_NDWG: f64 = 0.35;
pub const TRAINING_SNAP_ET: f64 = 0.45;
/// Training kind: T01 OJT, T02 occupational skills (ITA), T03 customized, T04
/// apprenticeship, T05 adult education with training.
pub const TRAINING_KIND: [f64; 5] = [0.20, 0.55, 0.07, 0.08, 0.10];
/// Of those in education/training (not OJT/customized), share with a credential, and with a
/// measurable skill gain.
pub const CREDENTIAL: f64 = 0.60;
pub const SKILL_GAIN: f64 = 0.55;
/// Records entered more than 30 days after the information was obtained (31–120 days);
/// the rest within 0–30 days (most the same week).
pub const ENTERED_LATE: f64 = 0.05;
/// Self-reported SNAP, TANF and UC status that disagree with the agency's records.
pub const SELF_REPORT_DISAGREES: f64 = 0.05;

// ----- Deliberate co-enrolment violations (Missouri P13) -----

/// Participant periods with staff-assisted services but no W-P enrolment.
pub const VIOLATION_NO_WP: f64 = 0.01;
/// TAA participants who declined DW (legitimate, `taa_declined_dw = 1`).
pub const TAA_DECLINED_DW: f64 = 0.10;
/// TAA participants neither in DW nor declined (violation).
pub const VIOLATION_TAA_NO_DW: f64 = 0.08;
/// SNAP E&T participants in training without Adult (violation).
pub const VIOLATION_SNAP_ET_NO_ADULT: f64 = 0.15;
/// NDWG participants not in DW (violation).
pub const VIOLATION_NDWG_NO_DW: f64 = 0.08;

// ----- Public assistance -----

/// Participants with SNAP / TANF certification periods on file.
pub const SNAP: f64 = 0.35;
pub const TANF: f64 = 0.08;
/// Of those, people whose only periods ended 1–3 years before entry (stale evidence).
pub const SNAP_STALE: f64 = 0.12;
pub const TANF_STALE: f64 = 0.15;
/// TANF rows that are supportive services rather than cash.
pub const TANF_SUPPORTIVE: f64 = 0.10;
/// Rows with no determination date; rows with the benefit period missing (start, end or
/// both): evidence that is incomplete under Ohio WIOAPL 15-07.1.
pub const PA_NO_DETERMINATION: f64 = 0.03;
pub const PA_NO_PERIOD: f64 = 0.02;

// ----- UI claims -----

/// Participants with a UI claim: DW, other unemployed entrants, entrants with a
/// termination notice; TAA participants also get a TRA claim.
pub const CLAIM_DW: f64 = 0.85;
pub const CLAIM_UNEMPLOYED: f64 = 0.40;
pub const CLAIM_NOTICE: f64 = 0.30;
pub const CLAIM_TRA_FOR_TAA: f64 = 0.60;
/// Claimants with an additional (earlier or later) claim.
pub const CLAIM_SECOND: f64 = 0.15;
/// Non-participant claim records per participant claim record (in expectation).
pub const CLAIM_POOL_RATIO: f64 = 1.5;

// ----- TAA -----

/// Non-TAA-participant people in the TAA file per TAA participant.
pub const TAA_POOL_RATIO: f64 = 0.2;
/// TAA rows without service dates.
pub const TAA_NO_DATES: f64 = 0.02;

// ----- Agency-side identity errors -----

/// Missing SSN in agency rows: public assistance, TAA, UI claims, UI wages.
pub const X_SSN_MISSING: [f64; 4] = [0.03, 0.02, 0.003, 0.002];
/// SSN with a typo or transposition in agency rows.
pub const X_SSN_TYPO: f64 = 0.005;
/// Nickname in agency rows (of names that have one).
pub const X_NICKNAME: f64 = 0.06;
pub const X_MISSPELLED: f64 = 0.005;
/// Accents stripped in agency rows.
pub const X_ACCENT_STRIPPED: f64 = 0.70;
/// DOB missing in agency rows.
pub const X_DOB_MISSING: f64 = 0.02;

// ----- UI wages -----

/// Participants' employment probability per quarter, by position relative to the period:
/// before entry / entry quarter / during / Q1 after exit / Q2–Q4 after exit / later,
/// for unemployed or out-of-labour-force entrants and for employed entrants.
pub const EMPLOYED_UNEMPLOYED_ENTRANT: [f64; 6] = [0.55, 0.30, 0.35, 0.62, 0.70, 0.72];
pub const EMPLOYED_EMPLOYED_ENTRANT: [f64; 6] = [0.88, 0.85, 0.80, 0.75, 0.78, 0.78];
/// Youth are less often employed (many are in school).
pub const YOUTH_EMPLOYMENT_FACTOR: f64 = 0.8;
/// Persistence: how strongly this quarter's status follows last quarter's.
pub const EMPLOYMENT_PERSISTENCE: f64 = 0.6;
/// Non-participant workers: share of quarters employed (stationary rate of a two-state chain).
pub const POOL_EMPLOYED: f64 = 0.27;
/// Same employer as last quarter when employed in both; return to the last employer after a
/// gap.
pub const SAME_EMPLOYER: f64 = 0.90;
pub const RETURN_TO_EMPLOYER: f64 = 0.30;
/// Employed quarters with a second employer (a small side job).
pub const SECOND_EMPLOYER: f64 = 0.07;
/// Quarterly wages: log-normal, median $8,000, sigma 0.6 between people, 0.15 between
/// quarters; Youth median $4,000; partial first quarter of a job 30–100%.
pub const WAGE_MEDIAN: f64 = 8_000.0;
pub const WAGE_MEDIAN_YOUTH: f64 = 4_000.0;
pub const WAGE_SIGMA_PERSON: f64 = 0.6;
pub const WAGE_SIGMA_QUARTER: f64 = 0.15;
/// Workers per employer (employer sizes are skewed: a few large, many small).
pub const WORKERS_PER_EMPLOYER: f64 = 15.0;
