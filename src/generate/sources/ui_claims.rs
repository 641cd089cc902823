//! UI initial claims from the UI agency: one row per claim (benefit year).

use std::ops::Range;

use super::super::GenerateError;
use super::super::columns::{Col, Columns};
use super::super::people::{claims, may_have_claims, person};
use super::super::util::Scramble;
use super::{ChunkOut, Counts, Ctx, Profile, agency_identity, bump, finish_chunk};

const NAME: &str = "ui_claims";

struct Handles {
    claim_id: Col,
    ssn: Col,
    first: Col,
    last: Col,
    dob: Col,
    zip: Col,
    claim_type: Col,
    filed: Col,
    byb: Col,
    bye: Col,
    weeks_paid: Col,
    separation: Col,
}

fn handles(c: &mut Columns) -> Handles {
    Handles {
        claim_id: c.str("claim_id"),
        ssn: c.str("ssn"),
        first: c.str("first_name"),
        last: c.str("last_name"),
        dob: c.str("dob"),
        zip: c.str("zip"),
        claim_type: c.str("claim_type"),
        filed: c.date("claim_filed_date"),
        byb: c.date("benefit_year_begin"),
        bye: c.date("benefit_year_end"),
        weeks_paid: c.int("weeks_paid"),
        separation: c.str("separation_reason"),
    }
}

pub(crate) fn declare(c: &mut Columns) {
    handles(c);
}

pub(crate) fn chunk(ctx: &Ctx, chunk: u64, range: Range<u64>) -> Result<ChunkOut, GenerateError> {
    let def = &super::SOURCES[2];
    let world = &ctx.world;
    let mut rng = def.rng(world, chunk);
    let rng = &mut rng;
    let hint = (range.end - range.start) as usize / 5;
    let mut cols = Columns::new(NAME, hint);
    let h = handles(&mut cols);
    let mut ids = Vec::with_capacity(hint);
    let mut c = Counts::new();
    // UI systems key on the SSN: almost always present, stored bare, names in upper case.
    // A heavy profile's missing-name rate replaces the 1% when it is higher.
    let profile = Profile {
        last_missing: ctx.noise.x_last_missing,
        ..Profile::new(
            ctx.noise.x_ssn_missing[2],
            [0.1, 0.9, 0.0, 0.0],
            [0.9, 0.1, 0.0, 0.0],
            0.0,
            ctx.noise.x_first_missing.max(0.01),
        )
    };
    // Claim IDs: a keyed bijection of (person, claim number).
    let scramble = Scramble::new(world.seed, 0xC1A1, 44);
    for pid in range {
        if !may_have_claims(world, pid) {
            continue;
        }
        let p = person(world, pid);
        let list = claims(world, &p);
        if list.is_empty() {
            continue;
        }
        let who = agency_identity(rng, &p, &profile, &ctx.noise);
        for (i, claim) in list.iter().enumerate() {
            let id = format!("UI{:014}", scramble.apply(pid * 8 + i as u64));
            cols.set_str(h.claim_id, Some(&id));
            cols.set_str(h.ssn, who.ssn.as_deref());
            cols.set_str(h.first, who.first.as_deref());
            cols.set_str(h.last, who.last.as_deref());
            cols.set_str(h.dob, who.dob.as_deref());
            cols.set_str(h.zip, who.zip.as_deref());
            cols.set_str(h.claim_type, Some(claim.kind.code()));
            cols.set_date(h.filed, Some(claim.filed));
            cols.set_date(h.byb, Some(claim.filed));
            cols.set_date(h.bye, Some(claim.benefit_year_end()));
            cols.set_int(h.weeks_paid, Some(claim.weeks_paid as i64));
            cols.set_str(h.separation, Some(claim.separation));
            bump(&mut c, "rows");
            bump(
                &mut c,
                if p.part.is_some() {
                    "participant_rows"
                } else {
                    "non_participant_rows"
                },
            );
            who.count_row(&mut c);
            ids.push(pid as i64);
        }
    }
    finish_chunk(ctx, NAME, cols, ids, c)
}
