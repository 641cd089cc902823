//! The case-management export: one row per participant period, plus duplicate rows.

use std::ops::Range;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::GenerateError;
use super::super::columns::{Col, Columns};
use super::super::noise::{
    SSN_JUNK, SsnLayout, add_spaces, dob_typo, invalid_ssn, maybe_nickname, misspell_as, pick_case,
    pick_dob_layout, pick_layout, push_dob, push_ssn, render_name, ssn_transposed, ssn_typo,
};
use super::super::noise_profile::IdentityNoise;
use super::super::people::{
    Assist, AssistPeriod, Claim, Period, Person, TrainKind, assist_periods, claims, cumulative,
    person,
};
use super::super::rates::*;
use super::super::util::{Scramble, chance, maybe, pick, push_iso, quarter_of, unit};
use super::{ChunkOut, Counts, Ctx, bump, finish_chunk, merge, push_zip};

const NAME: &str = "participants";

struct Handles {
    individual_id: Col,
    temp_id: Col,
    ssn: Col,
    first_name: Col,
    middle_name: Col,
    last_name: Col,
    dob: Col,
    sex: Col,
    ethnicity_hispanic: Col,
    race: [Col; 5],
    disability: Col,
    zip: Col,
    local_area: Col,
    entry_date: Col,
    exit_date: Col,
    adult: Col,
    dislocated_worker: Col,
    youth: Col,
    wagner_peyser: Col,
    snap_et: Col,
    ndwg: Col,
    taa: Col,
    taa_declined_dw: Col,
    employment_status_at_entry: Col,
    uc_status: Col,
    low_income: Col,
    tanf: Col,
    snap: Col,
    homeless: Col,
    ex_offender: Col,
    english_learner: Col,
    basic_skills_deficient: Col,
    single_parent: Col,
    training_type: Col,
    edu_enrollment_date: Col,
    edu_completion_date: Col,
    postsecondary_enrollment_date: Col,
    credential_type: Col,
    credential_date: Col,
    msg: [Col; 5],
    youth_placement_q2: Col,
    youth_placement_q4: Col,
    exit_reason: Col,
    services: Col,
    info_obtained_date: Col,
    entered_date: Col,
}

fn handles(c: &mut Columns) -> Handles {
    Handles {
        individual_id: c.str("individual_id"),
        temp_id: c.str("temp_id"),
        ssn: c.str("ssn"),
        first_name: c.str("first_name"),
        middle_name: c.str("middle_name"),
        last_name: c.str("last_name"),
        dob: c.str("dob"),
        sex: c.str("sex"),
        ethnicity_hispanic: c.str("ethnicity_hispanic"),
        race: [
            c.flag("race_aian"),
            c.flag("race_asian"),
            c.flag("race_black"),
            c.flag("race_nhpi"),
            c.flag("race_white"),
        ],
        disability: c.str("disability"),
        zip: c.str("zip"),
        local_area: c.str("local_area"),
        entry_date: c.date("entry_date"),
        exit_date: c.date("exit_date"),
        adult: c.flag("adult"),
        dislocated_worker: c.flag("dislocated_worker"),
        youth: c.flag("youth"),
        wagner_peyser: c.flag("wagner_peyser"),
        snap_et: c.flag("snap_et"),
        ndwg: c.flag("ndwg"),
        taa: c.flag("taa"),
        taa_declined_dw: c.flag("taa_declined_dw"),
        employment_status_at_entry: c.str("employment_status_at_entry"),
        uc_status: c.str("uc_status"),
        low_income: c.flag("low_income"),
        tanf: c.flag("tanf"),
        snap: c.flag("snap"),
        homeless: c.flag("homeless"),
        ex_offender: c.flag("ex_offender"),
        english_learner: c.flag("english_learner"),
        basic_skills_deficient: c.flag("basic_skills_deficient"),
        single_parent: c.flag("single_parent"),
        training_type: c.str("training_type"),
        edu_enrollment_date: c.date("edu_enrollment_date"),
        edu_completion_date: c.date("edu_completion_date"),
        postsecondary_enrollment_date: c.date("postsecondary_enrollment_date"),
        credential_type: c.str("credential_type"),
        credential_date: c.date("credential_date"),
        msg: [
            c.date("msg_edu_level_date"),
            c.date("msg_postsec_transcript_date"),
            c.date("msg_secondary_transcript_date"),
            c.date("msg_training_milestone_date"),
            c.date("msg_skills_progression_date"),
        ],
        youth_placement_q2: c.str("youth_placement_q2"),
        youth_placement_q4: c.str("youth_placement_q4"),
        exit_reason: c.str("exit_reason"),
        services: c.str("services"),
        info_obtained_date: c.date("info_obtained_date"),
        entered_date: c.date("entered_date"),
    }
}

pub(crate) fn declare(c: &mut Columns) {
    handles(c);
}

/// Identifiers as typed into the case-management system for one record.
#[derive(Default)]
struct Typed {
    ssn: Option<String>,
    first: String,
    middle: Option<String>,
    last: String,
    dob: Option<String>,
    sex: &'static str,
    zip: Option<String>,
    /// The identifier errors in this record, counted once per row written.
    counts: Counts,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SsnRule {
    Free,
    /// The re-entrant who declined in the first period.
    Withheld,
    /// …and gave it in the second.
    Given,
}

struct Tables {
    ssn_layouts: Vec<f64>,
    dob_layouts: Vec<f64>,
    cases: Vec<f64>,
}

/// The record as typed, with the errors the noise profile's `p_` rates inject. Draws for
/// rates the profile leaves at zero are skipped (`maybe`), so the default profile consumes
/// the stream exactly as it did before profiles existed.
fn typed(
    rng: &mut ChaCha8Rng,
    p: &Person,
    rule: SsnRule,
    t: &Tables,
    noise: &IdentityNoise,
) -> Typed {
    let mut out = Typed::default();
    let mut counts = Counts::new();
    let c = &mut counts;
    // SSN: declined, invalid, mistyped, transposed or correct; then a layout.
    let u = unit(rng);
    let missing = rule == SsnRule::Withheld || (rule == SsnRule::Free && u < noise.p_ssn_missing);
    out.ssn = if missing {
        if chance(rng, P_SSN_JUNK_SHARE) {
            bump(c, "ssn_missing_placeholder");
            Some(SSN_JUNK[rng.random_range(0..SSN_JUNK.len())].to_string())
        } else {
            bump(c, "ssn_missing_blank");
            None
        }
    } else {
        let v = u - noise.p_ssn_missing;
        let (invalid, typo) = (noise.p_ssn_invalid, noise.p_ssn_typo);
        let ssn = if (0.0..invalid).contains(&v) {
            bump(c, "ssn_invalid");
            invalid_ssn(rng)
        } else if (invalid..invalid + typo).contains(&v) {
            bump(c, "ssn_typo");
            ssn_typo(rng, p.ssn)
        } else if (invalid + typo..invalid + typo + noise.p_ssn_transposed).contains(&v) {
            match ssn_transposed(rng, p.ssn) {
                Some(s) => {
                    bump(c, "ssn_transposed");
                    s
                }
                None => p.ssn,
            }
        } else {
            p.ssn
        };
        let layout = pick_layout(rng, &t.ssn_layouts);
        if layout == SsnLayout::Integer && ssn < 100_000_000 {
            bump(c, "ssn_leading_zeros_lost");
        }
        let mut s = String::with_capacity(11);
        push_ssn(&mut s, ssn, layout);
        Some(s)
    };

    let case = pick_case(rng, &t.cases);
    let mut first = match maybe_nickname(rng, p.first, noise.p_nickname) {
        Some(n) => {
            bump(c, "first_name_nickname");
            n.to_string()
        }
        None => p.first.to_string(),
    };
    if chance(rng, noise.p_first_misspelled) {
        let (s, kind) = misspell_as(rng, &first, &noise.misspell_kinds);
        first = s;
        bump(c, kind.flag(true));
    }
    render_name(rng, &mut out.first, &first, case, P_ACCENT_STRIPPED, 0.0);
    out.middle = p.middle.and_then(|m| {
        let u = unit(rng);
        let mut s = String::new();
        if u < 0.45 {
            render_name(rng, &mut s, m, case, P_ACCENT_STRIPPED, 0.0);
            Some(s)
        } else if u < 0.65 {
            let initial: String = m.chars().take(1).collect();
            render_name(rng, &mut s, &initial, case, 0.0, 0.0);
            Some(s)
        } else {
            None
        }
    });
    let mut last = p.last.to_string();
    if chance(rng, noise.p_last_misspelled) {
        let (s, kind) = misspell_as(rng, &last, &noise.misspell_kinds);
        last = s;
        bump(c, kind.flag(false));
    }
    if let Some(suffix) = p.suffix
        && chance(rng, 0.7)
    {
        bump(c, "last_name_suffix");
        last.push_str(if chance(rng, 0.3) { ", " } else { " " });
        last.push_str(suffix);
    }
    render_name(rng, &mut out.last, &last, case, P_ACCENT_STRIPPED, 0.0);
    // Given name and surname in each other's field.
    if maybe(rng, noise.p_names_swapped) {
        std::mem::swap(&mut out.first, &mut out.last);
        bump(c, "names_swapped");
    }
    if chance(rng, P_EXTRA_SPACES) {
        bump(c, "name_extra_spaces");
        if chance(rng, 0.5) {
            add_spaces(rng, &mut out.first);
        } else {
            add_spaces(rng, &mut out.last);
        }
    }

    out.dob = if maybe(rng, noise.p_dob_missing) {
        bump(c, "dob_missing");
        None
    } else {
        let swapped = chance(rng, noise.p_dob_swapped);
        if swapped {
            bump(c, "dob_day_month_swapped");
        }
        let day = if maybe(rng, noise.p_dob_typo) {
            bump(c, "dob_typo");
            dob_typo(rng, p.dob)
        } else {
            p.dob
        };
        let mut s = String::with_capacity(10);
        push_dob(&mut s, day, pick_dob_layout(rng, &t.dob_layouts), swapped);
        Some(s)
    };

    out.sex = if chance(rng, SEX_NOT_IDENTIFIED) {
        bump(c, "sex_not_identified");
        "9"
    } else if p.female {
        "2"
    } else {
        "1"
    };
    out.zip = if chance(rng, noise.zip_missing) {
        bump(c, "zip_missing");
        None
    } else {
        let mut s = String::with_capacity(5);
        if p.zip < 10_000 && chance(rng, ZIP_LOST_ZERO) {
            bump(c, "zip_leading_zero_lost");
            s.push_str(itoa::Buffer::new().format(p.zip));
        } else {
            push_zip(&mut s, p.zip);
        }
        Some(s)
    };
    out.counts = counts;
    out
}

/// Everything about one participant period other than the identifiers.
#[derive(Default)]
struct Detail {
    emp_status: &'static str,
    uc_status: &'static str,
    low_income: bool,
    tanf: bool,
    snap: bool,
    barriers: [bool; 5],
    training_type: &'static str,
    edu_enrollment: Option<i32>,
    edu_completion: Option<i32>,
    postsecondary: Option<i32>,
    credential_type: Option<&'static str>,
    credential_date: Option<i32>,
    msg: [Option<i32>; 5],
    placement_q2: Option<&'static str>,
    placement_q4: Option<&'static str>,
    services: String,
    has_training_service: bool,
    info_obtained: i32,
    entered: i32,
}

fn covered(periods: &[AssistPeriod], program: Assist, day: i32) -> bool {
    periods
        .iter()
        .any(|a| a.program == program && a.start <= day && day <= a.end)
}

/// PIRL 401 as the agency's claims say it should be: 1/2 a claimant (referred by WPRS or
/// not), 3 an exhaustee, 0 neither.
fn uc_truth(rng: &mut ChaCha8Rng, claims: &[Claim], entry: i32) -> &'static str {
    if claims
        .iter()
        .any(|c| c.filed <= entry + 30 && c.benefit_year_end() >= entry)
    {
        if chance(rng, 0.3) { "1" } else { "2" }
    } else if claims
        .iter()
        .any(|c| c.weeks_paid >= 26 && c.filed > entry - 730 && c.benefit_year_end() < entry)
    {
        "3"
    } else {
        "0"
    }
}

fn last_day_of_quarter(q: i32) -> i32 {
    let next = q + 1;
    super::super::util::days_from_civil(next / 4, (next % 4) as u32 * 3 + 1, 1) - 1
}

fn placement(rng: &mut ChaCha8Rng) -> &'static str {
    pick(rng, &[("0", 0.70), ("1", 0.10), ("2", 0.12), ("3", 0.08)])
}

fn push_service(
    list: &mut Vec<(i32, usize, bool, u8)>,
    day: i32,
    kind: u8,
    code: usize,
    staff: bool,
) {
    list.push((day, code, staff, kind));
}

#[allow(clippy::too_many_arguments)]
fn detail(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    p: &Person,
    period: &Period,
    assist: &[AssistPeriod],
    claims: &[Claim],
    c: &mut Counts,
) -> Detail {
    let mut d = Detail {
        emp_status: ["0", "1", "2", "3"][period.emp_status as usize],
        ..Detail::default()
    };
    let entry = period.entry;
    // Self-reports, usually agreeing with the agencies.
    let snap_truth = covered(assist, Assist::Snap, entry);
    let tanf_truth = covered(assist, Assist::Tanf, entry);
    d.snap = snap_truth;
    if chance(rng, SELF_REPORT_DISAGREES) {
        d.snap = !d.snap;
        bump(c, "self_report_snap_disagrees");
    }
    d.tanf = tanf_truth;
    if chance(rng, SELF_REPORT_DISAGREES) {
        d.tanf = !d.tanf;
        bump(c, "self_report_tanf_disagrees");
    }
    d.uc_status = uc_truth(rng, claims, entry);
    if chance(rng, SELF_REPORT_DISAGREES) {
        let others: Vec<&str> = ["0", "1", "2", "3"]
            .into_iter()
            .filter(|s| *s != d.uc_status)
            .collect();
        d.uc_status = others[rng.random_range(0..others.len())];
        bump(c, "self_report_uc_disagrees");
    }
    let youth_age = super::super::util::age_on(p.dob, entry) <= 24;
    d.barriers = [
        chance(rng, 0.02),
        chance(rng, 0.05),
        chance(rng, 0.04),
        chance(rng, if youth_age { 0.30 } else { 0.10 }),
        chance(rng, 0.08),
    ];
    d.low_income = snap_truth || tanf_truth || d.barriers[0] || chance(rng, 0.30);

    // Services: self-service before or at entry, a staff-assisted service on the entry
    // date (participation starts with it), a few more, and training.
    let svc = &ctx.services;
    let end = period.exit.unwrap_or((entry + 365).min(AS_OF));
    let mut list: Vec<(i32, usize, bool, u8)> = Vec::with_capacity(8);
    if chance(rng, 0.6) {
        for _ in 0..rng.random_range(1..=3) {
            let code = rng.random_range(0..svc.self_service.len());
            let day = entry - rng.random_range(0..=30);
            push_service(&mut list, day, 0, code, chance(rng, 0.1));
        }
    }
    push_service(
        &mut list,
        entry,
        1,
        rng.random_range(0..svc.staff.len()),
        true,
    );
    for _ in 0..rng.random_range(0..=3) {
        let day = rng.random_range(entry..=end.max(entry));
        push_service(
            &mut list,
            day,
            1,
            rng.random_range(0..svc.staff.len()),
            true,
        );
    }
    d.training_type = "00";
    if let Some(t) = period.training {
        let kind_idx = TrainKind::ALL
            .iter()
            .position(|k| *k == t.kind)
            .unwrap_or(0);
        let code = kind_idx.min(svc.training.len() - 1);
        push_service(&mut list, t.start, 2, code, true);
        d.has_training_service = true;
        bump(c, "training");
        d.training_type = t.kind.pirl_code(period.youth);
        if t.kind.is_education() {
            d.edu_enrollment = Some(t.start);
            d.edu_completion = t.end;
            d.credential_type = Some("0");
            if let Some(done) = t.end
                && chance(rng, CREDENTIAL)
            {
                let day = done + rng.random_range(0..=90);
                let in_year = period.exit.is_none_or(|x| day <= x + 365);
                if day <= AS_OF && in_year {
                    d.credential_date = Some(day);
                    d.credential_type = Some(match t.kind {
                        TrainKind::AdultEd if youth_age => "1",
                        TrainKind::AdultEd => pick(rng, &[("1", 0.6), ("7", 0.4)]),
                        TrainKind::Apprenticeship => "5",
                        _ => pick(rng, &[("4", 0.2), ("5", 0.4), ("6", 0.3), ("2", 0.1)]),
                    });
                    bump(c, "credential");
                }
            }
            let until = t.end.unwrap_or(AS_OF);
            if chance(rng, SKILL_GAIN) && until > t.start + 30 {
                let day = rng.random_range(t.start + 30..=until);
                let which = match t.kind {
                    TrainKind::AdultEd if period.youth => 2,
                    TrainKind::AdultEd => 0,
                    TrainKind::Apprenticeship => 4,
                    _ => {
                        if chance(rng, 0.5) {
                            3
                        } else {
                            1
                        }
                    }
                };
                d.msg[which] = Some(day);
                bump(c, "skill_gain");
            }
            if t.kind == TrainKind::Occupational && chance(rng, 0.15) {
                d.postsecondary = Some(t.start);
            }
        }
    }
    if period.youth
        && let Some(exit) = period.exit
    {
        let q = quarter_of(exit);
        for (k, slot) in [(2, &mut d.placement_q2), (4, &mut d.placement_q4)] {
            let q_end = last_day_of_quarter(q + k);
            if q_end <= AS_OF {
                let code = placement(rng);
                if code == "2" && d.postsecondary.is_none() {
                    d.postsecondary = Some(q_end - rng.random_range(0..80));
                }
                *slot = Some(code);
            }
        }
    }
    list.sort_by_key(|&(day, code, _, kind)| (day, kind, code));
    let mut s = String::with_capacity(list.len() * 18);
    for (i, (day, code, staff, kind)) in list.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        let codes = match kind {
            0 => &svc.self_service,
            1 => &svc.staff,
            _ => &svc.training,
        };
        s.push_str(&codes[*code]);
        s.push(':');
        push_iso(&mut s, *day);
        s.push(':');
        s.push(if *staff { 'S' } else { 'U' });
    }
    d.services = s;

    // Information obtained at intake (on or up to a week before entry) and entered within
    // 30 days, except for the late ones.
    d.info_obtained = if chance(rng, 0.7) {
        entry
    } else {
        entry - rng.random_range(1..=7)
    };
    let lag = if chance(rng, ENTERED_LATE) {
        rng.random_range(31..=120)
    } else if chance(rng, 0.6) {
        rng.random_range(0..=2)
    } else {
        rng.random_range(0..=30)
    };
    d.entered = (d.info_obtained + lag).min(AS_OF);
    d
}

fn count_row(c: &mut Counts, period: &Period, d: &Detail, entered: i32) {
    bump(c, "rows");
    if !period.wp {
        bump(c, "violation_staff_assisted_without_wp");
    }
    if period.taa && !period.dw && !period.taa_declined_dw {
        bump(c, "violation_taa_without_dw");
    }
    if period.taa && period.taa_declined_dw {
        bump(c, "taa_declined_dw");
    }
    if period.snap_et && d.has_training_service && !period.adult {
        bump(c, "violation_snap_et_training_without_adult");
    }
    if period.ndwg && !period.dw {
        bump(c, "violation_ndwg_without_dw");
    }
    if entered - d.info_obtained > 30 {
        bump(c, "entered_late");
    }
    if period.exit.is_some() {
        bump(c, "exited");
        if period.exit_reason != "00" {
            bump(c, "exit_reason_other");
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn push_row(
    cols: &mut Columns,
    h: &Handles,
    id: &str,
    p: &Person,
    t: &Typed,
    period: &Period,
    d: &Detail,
    entered: i32,
) {
    let mut area = String::with_capacity(6);
    area.push_str("LWDA");
    super::super::util::push_num(&mut area, p.local_area, 2);
    cols.set_str(h.individual_id, Some(id));
    cols.set_str(h.temp_id, None);
    cols.set_str(h.ssn, t.ssn.as_deref());
    cols.set_str(h.first_name, Some(&t.first));
    cols.set_str(h.middle_name, t.middle.as_deref());
    cols.set_str(h.last_name, Some(&t.last));
    cols.set_str(h.dob, t.dob.as_deref());
    cols.set_str(h.sex, Some(t.sex));
    cols.set_str(
        h.ethnicity_hispanic,
        Some(
            ["0", "1", "9"][match p.hispanic {
                0 => 0,
                1 => 1,
                _ => 2,
            }],
        ),
    );
    for (col, v) in h.race.iter().zip(p.race) {
        cols.set_flag(*col, v);
    }
    cols.set_str(
        h.disability,
        Some(match p.disability {
            0 => "0",
            1 => "1",
            _ => "9",
        }),
    );
    cols.set_str(h.zip, t.zip.as_deref());
    cols.set_str(h.local_area, Some(&area));
    cols.set_date(h.entry_date, Some(period.entry));
    cols.set_date(h.exit_date, period.exit);
    cols.set_flag(h.adult, period.adult);
    cols.set_flag(h.dislocated_worker, period.dw);
    cols.set_flag(h.youth, period.youth);
    cols.set_flag(h.wagner_peyser, period.wp);
    cols.set_flag(h.snap_et, period.snap_et);
    cols.set_flag(h.ndwg, period.ndwg);
    cols.set_flag(h.taa, period.taa);
    cols.set_flag(h.taa_declined_dw, period.taa_declined_dw);
    cols.set_str(h.employment_status_at_entry, Some(d.emp_status));
    cols.set_str(h.uc_status, Some(d.uc_status));
    cols.set_flag(h.low_income, d.low_income);
    cols.set_flag(h.tanf, d.tanf);
    cols.set_flag(h.snap, d.snap);
    cols.set_flag(h.homeless, d.barriers[0]);
    cols.set_flag(h.ex_offender, d.barriers[1]);
    cols.set_flag(h.english_learner, d.barriers[2]);
    cols.set_flag(h.basic_skills_deficient, d.barriers[3]);
    cols.set_flag(h.single_parent, d.barriers[4]);
    cols.set_str(h.training_type, Some(d.training_type));
    cols.set_date(h.edu_enrollment_date, d.edu_enrollment);
    cols.set_date(h.edu_completion_date, d.edu_completion);
    cols.set_date(h.postsecondary_enrollment_date, d.postsecondary);
    cols.set_str(h.credential_type, d.credential_type);
    cols.set_date(h.credential_date, d.credential_date);
    for (col, v) in h.msg.iter().zip(d.msg) {
        cols.set_date(*col, v);
    }
    cols.set_str(h.youth_placement_q2, d.placement_q2);
    cols.set_str(h.youth_placement_q4, d.placement_q4);
    cols.set_str(
        h.exit_reason,
        Some(period.exit_reason).filter(|r| !r.is_empty()),
    );
    cols.set_str(h.services, Some(&d.services));
    cols.set_date(h.info_obtained_date, Some(d.info_obtained));
    cols.set_date(h.entered_date, Some(entered));
}

pub(crate) fn chunk(ctx: &Ctx, chunk: u64, range: Range<u64>) -> Result<ChunkOut, GenerateError> {
    let def = &super::SOURCES[0];
    let world = &ctx.world;
    let mut rng = def.rng(world, chunk);
    let rng = &mut rng;
    let rows_hint = (range.end - range.start) as usize * 103 / 100;
    let mut cols = Columns::new(NAME, rows_hint);
    let h = handles(&mut cols);
    let mut ids = Vec::with_capacity(rows_hint);
    let mut c = Counts::new();
    let tables = Tables {
        ssn_layouts: cumulative(&P_SSN_FORMATS),
        dob_layouts: cumulative(&P_DOB_FORMATS),
        cases: cumulative(&P_NAME_CASE),
    };
    // individual_id: "W" + 11 digits, a keyed bijection of (chunk, row) so IDs are unique
    // and carry no SSN, person index or order.
    let scramble = Scramble::new(world.seed, 0x1D, 36);
    let mut seq: u64 = 0;
    let next_id = |seq: &mut u64| -> String {
        let v = scramble.apply((chunk << 18) | *seq);
        *seq += 1;
        format!("W{v:011}")
    };
    for pid in range {
        let p = person(world, pid);
        let Some(part) = &p.part else { continue };
        bump(&mut c, "people");
        if p.twin {
            bump(&mut c, "twin_people");
        }
        if p.former_last.is_some() {
            bump(&mut c, "name_changed_people");
        }
        if part.periods.len() > 1 {
            bump(&mut c, "reentry_people");
            if part.ssn_given_later {
                bump(&mut c, "reentry_ssn_given_later");
            }
        }
        let assist = assist_periods(world, &p);
        let claims = claims(world, &p);
        for (i, period) in part.periods.iter().enumerate() {
            let rule = match (part.ssn_given_later, i) {
                (false, _) => SsnRule::Free,
                (true, 0) => SsnRule::Withheld,
                (true, _) => SsnRule::Given,
            };
            bump(&mut c, "periods");
            let t = typed(rng, &p, rule, &tables, &ctx.noise);
            let d = detail(ctx, rng, &p, period, &assist, &claims, &mut c);
            let id = next_id(&mut seq);
            push_row(&mut cols, &h, &id, &p, &t, period, &d, d.entered);
            count_row(&mut c, period, &d, d.entered);
            merge(&mut c, &t.counts);
            ids.push(pid as i64);
            if chance(rng, DUPLICATE) {
                let id = next_id(&mut seq);
                if chance(rng, DUPLICATE_EXACT_SHARE) {
                    bump(&mut c, "duplicate_exact");
                    push_row(&mut cols, &h, &id, &p, &t, period, &d, d.entered);
                    count_row(&mut c, period, &d, d.entered);
                    merge(&mut c, &t.counts);
                } else {
                    bump(&mut c, "duplicate_near");
                    let t2 = typed(rng, &p, rule, &tables, &ctx.noise);
                    let entered = (d.entered + rng.random_range(0..=10)).min(AS_OF);
                    push_row(&mut cols, &h, &id, &p, &t2, period, &d, entered);
                    count_row(&mut c, period, &d, entered);
                    merge(&mut c, &t2.counts);
                }
                ids.push(pid as i64);
            }
        }
    }
    finish_chunk(ctx, NAME, cols, ids, c)
}
