//! UI quarterly wage records: one row per worker, employer and quarter, 2022Q3 … 2025Q2.
//!
//! Workers are every participant plus the 95% of non-participants who earn wages in the
//! state. A participant's chance of being employed in a quarter depends on where the
//! quarter falls relative to their period (see `rates::EMPLOYED_*`); quarters are linked by
//! a persistence term so spells, not coin flips, make up a work history. Employers are
//! sticky, so retention with the same employer in Q2 and Q4 after exit can be measured.

use std::ops::Range;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::GenerateError;
use super::super::columns::{Col, Columns};
use super::super::people::{Person, World, person};
use super::super::rates::*;
use super::super::util::{Scramble, Stream, chance, normal, quarter_of, rng_for, unit};
use super::{ChunkOut, Counts, Ctx, Profile, add, agency_identity, bump, finish_chunk};

const NAME: &str = "ui_wages";

struct Handles {
    ssn: Col,
    first: Col,
    last: Col,
    employer: Col,
    quarter: Col,
    wages: Col,
}

fn handles(c: &mut Columns) -> Handles {
    Handles {
        ssn: c.str("ssn"),
        first: c.str("first_name"),
        last: c.str("last_name"),
        employer: c.str("employer_id"),
        quarter: c.str("year_quarter"),
        wages: c.money("wages"),
    }
}

pub(crate) fn declare(c: &mut Columns) {
    handles(c);
}

/// One wage record: quarter offset (0 = 2022Q3), employer index, wages in cents.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WageRow {
    pub quarter: i32,
    pub employer: u64,
    pub cents: i64,
}

/// Employer sizes are skewed: a cubed uniform puts most workers at a few large employers.
fn new_employer(rng: &mut ChaCha8Rng, employers: u64) -> u64 {
    ((employers as f64) * unit(rng).powi(3)) as u64 % employers
}

/// The employment probability of a participant in an absolute quarter.
fn participant_rate(p: &Person, q: i32) -> f64 {
    let Some(part) = &p.part else {
        return POOL_EMPLOYED;
    };
    // The latest period that had started by the quarter, else the first.
    let period = part
        .periods
        .iter()
        .rev()
        .find(|x| quarter_of(x.entry) <= q)
        .unwrap_or(&part.periods[0]);
    let eq = quarter_of(period.entry);
    let slot = if q < eq {
        0
    } else if q == eq {
        1
    } else {
        match period.exit.map(quarter_of) {
            None => 2,
            Some(xq) if q <= xq => 2,
            Some(xq) => match q - xq {
                1 => 3,
                2..=4 => 4,
                _ => 5,
            },
        }
    };
    let table = if period.unemployed_at_entry() {
        &EMPLOYED_UNEMPLOYED_ENTRANT
    } else {
        &EMPLOYED_EMPLOYED_ENTRANT
    };
    let youth = if period.youth {
        YOUTH_EMPLOYMENT_FACTOR
    } else {
        1.0
    };
    table[slot] * youth
}

/// A worker's wage records, oldest quarter first.
pub(crate) fn wage_rows(world: &World, p: &Person) -> Vec<WageRow> {
    let mut rng = rng_for(world.seed, Stream::Wages as u64, p.pid);
    let rng = &mut rng;
    let participant = p.part.is_some();
    if !participant && !chance(rng, POOL_WAGE_WORKER) {
        return Vec::new();
    }
    let youth = p.part.as_ref().is_some_and(|part| part.periods[0].youth);
    let median = if youth {
        WAGE_MEDIAN_YOUTH
    } else {
        WAGE_MEDIAN
    };
    let base = median * (WAGE_SIGMA_PERSON * normal(rng)).exp();
    let mut out = Vec::with_capacity(8);
    let mut prev: Option<u64> = None;
    let mut last: Option<u64> = None;
    for k in 0..WAGE_QUARTERS {
        let rate = participant_rate(p, WAGE_Q_FIRST + k);
        let rate = match (k, prev) {
            (0, _) => rate,
            (_, Some(_)) => rate + (1.0 - rate) * EMPLOYMENT_PERSISTENCE,
            (_, None) => rate * (1.0 - EMPLOYMENT_PERSISTENCE),
        };
        if !chance(rng, rate) {
            prev = None;
            continue;
        }
        let employer = match (prev, last) {
            (Some(e), _) if chance(rng, SAME_EMPLOYER) => e,
            (None, Some(e)) if chance(rng, RETURN_TO_EMPLOYER) => e,
            _ => new_employer(rng, world.employers),
        };
        // A job's first quarter is usually a partial quarter.
        let share = if prev == Some(employer) {
            1.0
        } else {
            0.3 + 0.7 * unit(rng)
        };
        let dollars = base * (WAGE_SIGMA_QUARTER * normal(rng)).exp() * share;
        out.push(WageRow {
            quarter: k,
            employer,
            cents: ((dollars * 100.0) as i64).max(1_000),
        });
        if chance(rng, SECOND_EMPLOYER) {
            let side = new_employer(rng, world.employers);
            if side != employer {
                let dollars = base * (0.05 + 0.35 * unit(rng));
                out.push(WageRow {
                    quarter: k,
                    employer: side,
                    cents: ((dollars * 100.0) as i64).max(1_000),
                });
            }
        }
        prev = Some(employer);
        last = Some(employer);
    }
    if out.is_empty() && !participant {
        // Every non-participant worker has at least one record.
        out.push(WageRow {
            quarter: rng.random_range(0..WAGE_QUARTERS),
            employer: new_employer(rng, world.employers),
            cents: ((base * (0.3 + 0.7 * unit(rng)) * 100.0) as i64).max(1_000),
        });
    }
    out
}

pub(crate) fn chunk(ctx: &Ctx, chunk: u64, range: Range<u64>) -> Result<ChunkOut, GenerateError> {
    let def = &super::SOURCES[3];
    let world = &ctx.world;
    let mut rng = def.rng(world, chunk);
    let rng = &mut rng;
    let hint = (range.end - range.start) as usize * 9 / 2;
    let mut cols = Columns::new(NAME, hint);
    let h = handles(&mut cols);
    let mut ids = Vec::with_capacity(hint);
    let mut c = Counts::new();
    // Employers report SSNs bare (sometimes as numbers), names upper case, often with
    // the first name cut to an initial; the noise profile's missing-name rates do not apply
    // (wage rows keep this shape).
    let profile = Profile {
        dob: false,
        zip: false,
        ..Profile::new(
            ctx.noise.x_ssn_missing[3],
            [0.05, 0.92, 0.0, 0.03],
            [0.95, 0.05, 0.0, 0.0],
            0.15,
            0.05,
        )
    };
    let employer_ids = Scramble::new(world.seed, 0xE3, 33);
    let quarters: Vec<String> = (0..WAGE_QUARTERS)
        .map(|k| {
            let q = WAGE_Q_FIRST + k;
            format!("{}Q{}", q / 4, q % 4 + 1)
        })
        .collect();
    let mut employer = String::with_capacity(10);
    for pid in range {
        let p = person(world, pid);
        let rows = wage_rows(world, &p);
        if rows.is_empty() {
            continue;
        }
        bump(
            &mut c,
            if p.part.is_some() {
                "participant_workers"
            } else {
                "non_participant_workers"
            },
        );
        let who = agency_identity(rng, &p, &profile, &ctx.noise);
        for row in &rows {
            employer.clear();
            super::super::util::push_num(&mut employer, employer_ids.apply(row.employer), 10);
            cols.set_str(h.ssn, who.ssn.as_deref());
            cols.set_str(h.first, who.first.as_deref());
            cols.set_str(h.last, who.last.as_deref());
            cols.set_str(h.employer, Some(&employer));
            cols.set_str(h.quarter, Some(&quarters[row.quarter as usize]));
            cols.set_money(h.wages, Some(row.cents));
            ids.push(pid as i64);
        }
        for flag in &who.flags {
            add(&mut c, flag, rows.len() as u64);
        }
    }
    add(&mut c, "rows", ids.len() as u64);
    finish_chunk(ctx, NAME, cols, ids, c)
}
