//! TAA: one row per benefit or service a trade-certified worker received.

use std::ops::Range;

use super::super::GenerateError;
use super::super::columns::{Col, Columns};
use super::super::people::{may_have_taa, person, taa_case};
use super::super::rates::*;
use super::super::util::{Scramble, chance};
use super::{ChunkOut, Counts, Ctx, Profile, agency_identity, bump, finish_chunk};

const NAME: &str = "taa";

struct Handles {
    case_id: Col,
    petition: Col,
    certified: Col,
    ssn: Col,
    first: Col,
    last: Col,
    dob: Col,
    benefit_type: Col,
    start: Col,
    end: Col,
}

fn handles(c: &mut Columns) -> Handles {
    Handles {
        case_id: c.str("taa_case_id"),
        petition: c.str("petition_number"),
        certified: c.date("certification_date"),
        ssn: c.str("ssn"),
        first: c.str("first_name"),
        last: c.str("last_name"),
        dob: c.str("dob"),
        benefit_type: c.str("benefit_type"),
        start: c.date("service_start"),
        end: c.date("service_end"),
    }
}

pub(crate) fn declare(c: &mut Columns) {
    handles(c);
}

pub(crate) fn chunk(ctx: &Ctx, chunk: u64, range: Range<u64>) -> Result<ChunkOut, GenerateError> {
    let def = &super::SOURCES[4];
    let world = &ctx.world;
    let mut rng = def.rng(world, chunk);
    let rng = &mut rng;
    let hint = (range.end - range.start) as usize / 50;
    let mut cols = Columns::new(NAME, hint);
    let h = handles(&mut cols);
    let mut ids = Vec::with_capacity(hint);
    let mut c = Counts::new();
    let profile = Profile {
        last_missing: ctx.noise.x_last_missing,
        zip: false,
        ..Profile::new(
            ctx.noise.x_ssn_missing[1],
            [0.8, 0.2, 0.0, 0.0],
            [0.4, 0.6, 0.0, 0.0],
            0.0,
            ctx.noise.x_first_missing,
        )
    };
    let cases = Scramble::new(world.seed, 0x7AA, 36);
    for pid in range {
        if !may_have_taa(world, pid) {
            continue;
        }
        let p = person(world, pid);
        let Some(case) = taa_case(world, &p) else {
            continue;
        };
        let who = agency_identity(rng, &p, &profile, &ctx.noise);
        let case_no = cases.apply(pid);
        let petition = format!("TA-W-{}", case.petition);
        bump(
            &mut c,
            if p.part.is_some() {
                "participant_people"
            } else {
                "non_participant_people"
            },
        );
        for (i, b) in case.benefits.iter().enumerate() {
            let id = format!("T{case_no:011}-{:02}", i + 1);
            cols.set_str(h.case_id, Some(&id));
            cols.set_str(h.petition, Some(&petition));
            cols.set_date(h.certified, Some(case.certified));
            cols.set_str(h.ssn, who.ssn.as_deref());
            cols.set_str(h.first, who.first.as_deref());
            cols.set_str(h.last, who.last.as_deref());
            cols.set_str(h.dob, who.dob.as_deref());
            cols.set_str(h.benefit_type, Some(b.kind));
            if chance(rng, TAA_NO_DATES) {
                bump(&mut c, "service_dates_missing");
                cols.set_date(h.start, None);
                cols.set_date(h.end, None);
            } else {
                cols.set_date(h.start, Some(b.start));
                cols.set_date(h.end, b.end);
            }
            bump(&mut c, "rows");
            who.count_row(&mut c);
            ids.push(pid as i64);
        }
    }
    finish_chunk(ctx, NAME, cols, ids, c)
}
