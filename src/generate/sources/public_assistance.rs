//! SNAP and TANF certification periods from the public-assistance agency.

use std::ops::Range;

use rand::Rng;

use super::super::GenerateError;
use super::super::columns::{Col, Columns};
use super::super::people::{Assist, assist_periods, may_have_assist, person};
use super::super::rates::*;
use super::super::util::{Scramble, chance, pick};
use super::{ChunkOut, Counts, Ctx, Profile, agency_identity, bump, finish_chunk};

const NAME: &str = "public_assistance";

struct Handles {
    case_id: Col,
    ssn: Col,
    first: Col,
    last: Col,
    dob: Col,
    sex: Col,
    zip: Col,
    program: Col,
    determination: Col,
    start: Col,
    end: Col,
    benefit_type: Col,
}

fn handles(c: &mut Columns) -> Handles {
    Handles {
        case_id: c.str("case_id"),
        ssn: c.str("ssn"),
        first: c.str("first_name"),
        last: c.str("last_name"),
        dob: c.str("dob"),
        sex: c.str("sex"),
        zip: c.str("zip"),
        program: c.str("program"),
        determination: c.date("determination_date"),
        start: c.date("benefit_start"),
        end: c.date("benefit_end"),
        benefit_type: c.str("benefit_type"),
    }
}

pub(crate) fn declare(c: &mut Columns) {
    handles(c);
}

pub(crate) fn chunk(ctx: &Ctx, chunk: u64, range: Range<u64>) -> Result<ChunkOut, GenerateError> {
    let def = &super::SOURCES[1];
    let world = &ctx.world;
    let mut rng = def.rng(world, chunk);
    let rng = &mut rng;
    let hint = (range.end - range.start) as usize / 4;
    let mut cols = Columns::new(NAME, hint);
    let Handles {
        case_id,
        ssn,
        first,
        last,
        dob,
        sex,
        zip,
        program,
        determination,
        start,
        end,
        benefit_type,
    } = handles(&mut cols);
    let mut ids = Vec::with_capacity(hint);
    let mut c = Counts::new();
    let profile = Profile {
        last_missing: ctx.noise.x_last_missing,
        ..Profile::new(
            ctx.noise.x_ssn_missing[0],
            [0.6, 0.4, 0.0, 0.0],
            [0.7, 0.25, 0.0, 0.05],
            0.0,
            ctx.noise.x_first_missing,
        )
    };
    // Case number: a keyed bijection of the person, so a person keeps one case number
    // across certification periods; the row adds the person line and period number.
    let cases = Scramble::new(world.seed, 0xCA5E, 39);
    let mut id = String::with_capacity(20);
    for pid in range {
        if !may_have_assist(world, pid) {
            continue;
        }
        let p = person(world, pid);
        let periods = assist_periods(world, &p);
        if periods.is_empty() {
            continue;
        }
        let who = agency_identity(rng, &p, &profile, &ctx.noise);
        let line: u32 = pick(rng, &[(1, 0.6), (2, 0.25), (3, 0.1), (4, 0.05)]);
        let case = cases.apply(pid);
        for (i, a) in periods.iter().enumerate() {
            id.clear();
            id.push_str(&format!("{case:012}-{line:02}-{}", i + 1));
            cols.set_str(case_id, Some(&id));
            cols.set_str(ssn, who.ssn.as_deref());
            cols.set_str(first, who.first.as_deref());
            cols.set_str(last, who.last.as_deref());
            cols.set_str(dob, who.dob.as_deref());
            cols.set_str(sex, Some(who.sex));
            cols.set_str(zip, who.zip.as_deref());
            let (prog, kind) = match a.program {
                Assist::Snap => ("SNAP", "FOOD"),
                Assist::Tanf if a.supportive => ("TANF", "SUPPORTIVE"),
                Assist::Tanf => ("TANF", "CASH"),
            };
            cols.set_str(program, Some(prog));
            // Incomplete evidence: no determination date, or no benefit period.
            if chance(rng, PA_NO_DETERMINATION) {
                bump(&mut c, "determination_missing");
                cols.set_date(determination, None);
            } else {
                cols.set_date(determination, Some(a.determination));
            }
            if chance(rng, PA_NO_PERIOD) {
                bump(&mut c, "period_missing");
                let which = rng.random_range(0..3);
                cols.set_date(start, Some(a.start).filter(|_| which == 1));
                cols.set_date(end, Some(a.end).filter(|_| which == 2));
            } else {
                cols.set_date(start, Some(a.start));
                cols.set_date(end, Some(a.end));
            }
            cols.set_str(benefit_type, Some(kind));
            bump(&mut c, "rows");
            bump(
                &mut c,
                if p.part.is_some() {
                    "participant_rows"
                } else {
                    "non_participant_rows"
                },
            );
            if p.first_entry().is_some_and(|e| a.end < e - 365) {
                bump(&mut c, "participant_rows_ended_a_year_before_entry");
            }
            who.count_row(&mut c);
            ids.push(pid as i64);
        }
    }
    finish_chunk(ctx, NAME, cols, ids, c)
}
