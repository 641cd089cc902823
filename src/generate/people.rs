//! Invented people: identity, participation periods, and the facts other agencies hold
//! about them (benefit periods, UI claims, TAA cases).
//!
//! A person is a pure function of `(seed, person index)`: every source regenerates the
//! person it needs from the same streams, so the participant export, the SNAP file and the
//! wage file agree about who someone is without any shared state between chunks or
//! threads. Record-level noise (typos, formats) is drawn separately by each source.
//!
//! Person indices `0 .. n` are participants; `n .. n + pool` are people who never enrolled
//! but appear in agency files.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::names::names;
use super::rates::*;
use super::util::{Stream, add_years, age_on, chance, mix64, normal, pick, rng_for, unit};

/// Shared, read-only facts of a run.
pub(crate) struct World {
    pub seed: u64,
    /// Participant people.
    pub n: u64,
    /// Non-participant people.
    pub pool: u64,
    pub ssns: SsnSpace,
    pub employers: u64,
}

impl World {
    pub(crate) fn new(seed: u64, n: u64) -> World {
        let pool = ((n as f64) * POOL_PER_PARTICIPANT).ceil() as u64;
        let workers = n as f64 + pool as f64 * POOL_WAGE_WORKER;
        World {
            seed,
            n,
            pool,
            ssns: SsnSpace::new(seed),
            employers: ((workers / WORKERS_PER_EMPLOYER) as u64).max(50),
        }
    }

    pub(crate) fn people(&self) -> u64 {
        self.n + self.pool
    }

    pub(crate) fn is_participant(&self, pid: u64) -> bool {
        pid < self.n
    }
}

// ----- SSNs -----

const SSN_AREAS: u64 = 898; // 001–899 without 666
const SSN_GROUPS: u64 = 99;
const SSN_SERIALS: u64 = 9999;
const SSN_RAW: u64 = SSN_AREAS * SSN_GROUPS * SSN_SERIALS;

/// Well-known fake SSNs that are valid by the area/group/serial rules (SSA advertising
/// numbers, the Woolworth wallet card, all-same-digit values).
pub(crate) const FAKE_SSNS: [u32; 11] = [
    123456789, // 123-45-6789
    78051120,  // 078-05-1120, the Woolworth wallet card
    219099999, // 219-09-9999, SSA advertising
    457555462, // 457-55-5462, LifeLock advertising
    111111111, 222222222, 333333333, 444444444, 555555555, 777777777, 888888888,
];

/// Whether a 9-digit SSN passes SSA's structural rules and is not a known fake.
pub(crate) fn ssn_is_valid(ssn: u32) -> bool {
    let area = ssn / 1_000_000;
    let group = ssn / 10_000 % 100;
    let serial = ssn % 10_000;
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && ssn <= 999_999_999
        && !FAKE_SSNS.contains(&ssn)
}

/// Hands out a distinct valid SSN to every person index: an affine permutation of the
/// valid-SSN space (about 889 million values) with the known fakes cut out.
pub(crate) struct SsnSpace {
    a: u128,
    b: u128,
    size: u128,
    fakes: Vec<u64>,
}

fn ssn_raw_index(ssn: u32) -> u64 {
    let area = (ssn / 1_000_000) as u64;
    let group = (ssn / 10_000 % 100) as u64;
    let serial = (ssn % 10_000) as u64;
    let area_idx = if area < 666 { area - 1 } else { area - 2 };
    (area_idx * SSN_GROUPS + group - 1) * SSN_SERIALS + serial - 1
}

fn ssn_from_raw(r: u64) -> u32 {
    let serial = r % SSN_SERIALS + 1;
    let group = r / SSN_SERIALS % SSN_GROUPS + 1;
    let area_idx = r / SSN_SERIALS / SSN_GROUPS;
    let area = if area_idx + 1 < 666 {
        area_idx + 1
    } else {
        area_idx + 2
    };
    (area * 1_000_000 + group * 10_000 + serial) as u32
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl SsnSpace {
    fn new(seed: u64) -> SsnSpace {
        let mut fakes: Vec<u64> = FAKE_SSNS.iter().map(|&s| ssn_raw_index(s)).collect();
        fakes.sort_unstable();
        let size = (SSN_RAW - fakes.len() as u64) as u128;
        let mut a = (mix64(seed ^ 0x55) as u128 % size) | 1;
        while gcd(a, size) != 1 {
            a += 2;
        }
        SsnSpace {
            a,
            b: mix64(seed ^ 0xAA) as u128 % size,
            size,
            fakes,
        }
    }

    /// How many distinct SSNs exist to hand out.
    pub(crate) fn capacity(&self) -> u64 {
        self.size as u64
    }

    pub(crate) fn ssn(&self, pid: u64) -> u32 {
        let mut r = ((self.a * pid as u128 + self.b) % self.size) as u64;
        for &f in &self.fakes {
            if r >= f {
                r += 1;
            }
        }
        ssn_from_raw(r)
    }
}

// ----- People -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Program {
    WagnerPeyser,
    Adult,
    Dw,
    Youth,
    SnapEt,
    Taa,
    Ndwg,
}

/// Training kinds in the order of the catalogue's training services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrainKind {
    Ojt,
    Occupational,
    Customized,
    Apprenticeship,
    AdultEd,
}

impl TrainKind {
    pub(crate) const ALL: [TrainKind; 5] = [
        TrainKind::Ojt,
        TrainKind::Occupational,
        TrainKind::Customized,
        TrainKind::Apprenticeship,
        TrainKind::AdultEd,
    ];

    /// Education or training that counts for the credential indicator (TEGL 10-16 excludes
    /// OJT and customized training).
    pub(crate) fn is_education(self) -> bool {
        !matches!(self, TrainKind::Ojt | TrainKind::Customized)
    }

    /// PIRL 1303 type of training service.
    pub(crate) fn pirl_code(self, youth: bool) -> &'static str {
        match self {
            TrainKind::Ojt => "01",
            TrainKind::Occupational if youth => "10",
            TrainKind::Occupational => "06",
            TrainKind::Customized => "05",
            TrainKind::Apprenticeship => "09",
            TrainKind::AdultEd => "04",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Training {
    pub kind: TrainKind,
    pub start: i32,
    /// None while still in training on the as-of date.
    pub end: Option<i32>,
}

/// One participant period (entry to exit).
#[derive(Clone, Debug)]
pub(crate) struct Period {
    pub entry: i32,
    pub exit: Option<i32>,
    pub adult: bool,
    pub dw: bool,
    pub youth: bool,
    pub wp: bool,
    pub snap_et: bool,
    pub ndwg: bool,
    pub taa: bool,
    pub taa_declined_dw: bool,
    /// PIRL 400: 0 unemployed, 1 employed, 2 employed with notice, 3 not in labour force.
    pub emp_status: u8,
    pub training: Option<Training>,
    /// PIRL 923 code for exiters.
    pub exit_reason: &'static str,
}

impl Period {
    pub(crate) fn unemployed_at_entry(&self) -> bool {
        matches!(self.emp_status, 0 | 3)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Participation {
    pub periods: Vec<Period>,
    /// Re-entrant who gave no SSN in the first period and gave it in the second.
    pub ssn_given_later: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Person {
    pub pid: u64,
    pub female: bool,
    pub first: &'static str,
    pub middle: Option<&'static str>,
    pub last: &'static str,
    /// The surname other agencies know (before a marriage or divorce).
    pub former_last: Option<&'static str>,
    pub suffix: Option<&'static str>,
    pub dob: i32,
    pub ssn: u32,
    pub zip: u32,
    pub local_area: u32,
    /// PIRL 210: 0, 1, 9.
    pub hispanic: u8,
    /// AIAN, Asian, Black, NHPI, White.
    pub race: [bool; 5],
    /// PIRL 202: 0, 1, 9.
    pub disability: u8,
    pub part: Option<Participation>,
    /// Reference date for a non-participant's agency records.
    pub anchor: i32,
    pub twin: bool,
}

impl Person {
    pub(crate) fn first_entry(&self) -> Option<i32> {
        self.part.as_ref().map(|p| p.periods[0].entry)
    }
}

fn uniform_day(rng: &mut ChaCha8Rng, from: i32, to: i32) -> i32 {
    rng.random_range(from..=to)
}

/// A day of birth giving exactly `age` on `on`.
fn dob_for_age(rng: &mut ChaCha8Rng, on: i32, age: i32) -> i32 {
    let earliest = add_years(on, -(age + 1)) + 1;
    let latest = add_years(on, -age);
    uniform_day(rng, earliest, latest)
}

fn draw_zip(rng: &mut ChaCha8Rng) -> (u32, u32) {
    let zip3 = if chance(rng, NEW_ENGLAND_ZIP) {
        rng.random_range(10..=69)
    } else if chance(rng, 0.9) {
        rng.random_range(630..=658)
    } else {
        // Neighbouring states.
        *[
            600, 605, 610, 618, 620, 625, 660, 664, 667, 670, 720, 723, 500, 515,
        ]
        .get(rng.random_range(0..14))
        .unwrap_or(&630)
    };
    let zip = zip3 * 100 + rng.random_range(1..100);
    // A ZIP3 belongs to one local area.
    let area = (mix64(zip3 as u64 ^ 0x10CA1) % LOCAL_AREAS as u64) as u32 + 1;
    (zip, area)
}

fn other_surname(rng: &mut ChaCha8Rng, not: &str) -> &'static str {
    loop {
        let s = names().surnames.sample(rng);
        if s != not {
            return s;
        }
    }
}

/// The identity every source agrees on, before twin adjustments.
fn core(world: &World, pid: u64) -> Person {
    let mut rng = rng_for(world.seed, Stream::Person as u64, pid);
    let rng = &mut rng;
    let n = names();
    let female = chance(rng, FEMALE);
    let table = if female { &n.female } else { &n.male };
    let first = table.sample(rng);
    let middle = if chance(rng, HAS_MIDDLE_NAME) {
        let mut m = table.sample(rng);
        while m == first {
            m = table.sample(rng);
        }
        Some(m)
    } else {
        None
    };
    let last = n.surnames.sample(rng);
    let suffix = if !female && chance(rng, SUFFIX) {
        Some(pick(
            rng,
            &[("JR", 0.55), ("SR", 0.15), ("II", 0.1), ("III", 0.2)],
        ))
    } else {
        None
    };
    let former_last = if chance(rng, NAME_CHANGE) {
        Some(other_surname(rng, last))
    } else {
        None
    };
    let (zip, local_area) = draw_zip(rng);
    let hispanic = pick(rng, &[(0u8, 0.83), (1, 0.14), (9, 0.03)]);
    let mut race = [
        chance(rng, 0.015),
        chance(rng, 0.045),
        chance(rng, 0.22),
        chance(rng, 0.005),
        false,
    ];
    race[4] = chance(rng, 0.08) || !race.iter().any(|&r| r);
    let disability = pick(rng, &[(0u8, 0.85), (1, 0.10), (9, 0.05)]);
    let ssn = world.ssns.ssn(pid);
    let (dob, part, anchor) = if world.is_participant(pid) {
        let (dob, part) = participation(rng);
        (dob, Some(part), 0)
    } else {
        let age = 16 + (64.0 * unit(rng).powf(1.2)) as i32;
        let dob = dob_for_age(rng, AS_OF, age.min(80));
        let anchor = uniform_day(rng, days(2020, 1, 1), AS_OF - 30);
        (dob, None, anchor)
    };
    Person {
        pid,
        female,
        first,
        middle,
        last,
        former_last,
        suffix,
        dob,
        ssn,
        zip,
        local_area,
        hispanic,
        race,
        disability,
        part,
        anchor,
        twin: false,
    }
}

fn days(y: i32, m: u32, d: u32) -> i32 {
    super::util::days_from_civil(y, m, d)
}

/// The person with index `pid`.
pub(crate) fn person(world: &World, pid: u64) -> Person {
    let mut p = core(world, pid);
    let pair = pid / 2;
    if world.is_participant(pair * 2 + 1) {
        let mut trng = rng_for(world.seed, Stream::Twin as u64, pair);
        if chance(&mut trng, TWINS) {
            p.twin = true;
            if pid % 2 == 1 {
                // The second twin shares DOB, surname, ZIP, ethnicity and program dates
                // with the first, but has their own first name and SSN.
                let elder = core(world, pair * 2);
                p.last = elder.last;
                p.former_last = elder.former_last;
                p.dob = elder.dob;
                p.zip = elder.zip;
                p.local_area = elder.local_area;
                p.hispanic = elder.hispanic;
                p.race = elder.race;
                p.part = elder.part;
                let table = if p.female {
                    &names().female
                } else {
                    &names().male
                };
                while p.first == elder.first {
                    p.first = table.sample(&mut trng);
                }
                if p.middle == Some(p.first) {
                    p.middle = None;
                }
            }
        }
    }
    p
}

fn lognormal_days(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> i32 {
    (median * (sigma * normal(rng)).exp()) as i32
}

/// A participant's periods and date of birth.
fn participation(rng: &mut ChaCha8Rng) -> (i32, Participation) {
    let programs = [
        Program::WagnerPeyser,
        Program::Adult,
        Program::Dw,
        Program::Youth,
        Program::SnapEt,
        Program::Taa,
        Program::Ndwg,
    ];
    let program = programs[super::util::pick_weighted(rng, &cumulative(&PROGRAM_MIX))];
    let reentry = chance(rng, REENTRY);
    let last_first_entry = if reentry {
        ENTRY_LAST - 400
    } else {
        ENTRY_LAST
    };
    let entry = uniform_day(rng, ENTRY_FIRST, last_first_entry);
    let age = match program {
        Program::Youth => rng.random_range(14..=24),
        Program::WagnerPeyser => 16 + (59.0 * unit(rng).powf(1.5)) as i32,
        _ => 18 + (57.0 * unit(rng).powf(1.5)) as i32,
    };
    let age = if reentry { age.min(72) } else { age.min(75) };
    let dob = dob_for_age(rng, entry, age);
    let mut first = period(rng, program, entry, dob);
    let mut periods = Vec::with_capacity(2);
    let mut ssn_given_later = false;
    if reentry {
        // Close the first period early enough to come back at least 60 days later.
        let latest_exit = (ENTRY_LAST - 60).min(entry + 700);
        let exit = match first.exit {
            Some(x) if x <= latest_exit => x,
            _ => uniform_day(rng, (entry + 30).min(latest_exit), latest_exit),
        };
        first.exit = Some(exit);
        if let Some(t) = &mut first.training {
            let end = t.end.unwrap_or(exit).min(exit);
            t.start = t.start.min(end);
            t.end = Some(end);
        }
        if first.exit_reason.is_empty() {
            first.exit_reason = "00";
        }
        let entry2 = uniform_day(rng, exit + 60, (exit + 500).min(ENTRY_LAST));
        let program2 = if program == Program::Youth && age_on(dob, entry2) > 24 {
            Program::Adult
        } else {
            program
        };
        let second = period(rng, program2, entry2, dob);
        ssn_given_later = chance(rng, REENTRY_SSN_LATER);
        periods.push(first);
        periods.push(second);
    } else {
        periods.push(first);
    }
    (
        dob,
        Participation {
            periods,
            ssn_given_later,
        },
    )
}

pub(crate) fn cumulative(weights: &[f64]) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .iter()
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

fn period(rng: &mut ChaCha8Rng, program: Program, entry: i32, dob: i32) -> Period {
    let mut p = Period {
        entry,
        exit: None,
        adult: false,
        dw: false,
        youth: false,
        wp: !chance(rng, VIOLATION_NO_WP),
        snap_et: false,
        ndwg: false,
        taa: false,
        taa_declined_dw: false,
        emp_status: 0,
        training: None,
        exit_reason: "",
    };
    let training_rate = match program {
        Program::WagnerPeyser => 0.0,
        Program::Adult | Program::Dw => TRAINING_ADULT_DW,
        Program::Youth => TRAINING_YOUTH,
        Program::SnapEt => TRAINING_SNAP_ET,
        Program::Taa => TRAINING_TAA,
        Program::Ndwg => TRAINING_NDWG,
    };
    let trains = chance(rng, training_rate);
    match program {
        Program::WagnerPeyser => {}
        Program::Adult => {
            p.adult = true;
            p.dw = chance(rng, ADULT_DW_COENROLLED);
        }
        Program::Dw => {
            p.dw = true;
            p.adult = chance(rng, ADULT_DW_COENROLLED);
        }
        Program::Youth => p.youth = true,
        Program::SnapEt => {
            p.snap_et = true;
            p.adult = if trains {
                !chance(rng, VIOLATION_SNAP_ET_NO_ADULT)
            } else {
                chance(rng, 0.2)
            };
        }
        Program::Taa => {
            p.taa = true;
            let u = unit(rng);
            if u < TAA_DECLINED_DW {
                p.taa_declined_dw = true;
            } else if u >= TAA_DECLINED_DW + VIOLATION_TAA_NO_DW {
                p.dw = true;
            }
        }
        Program::Ndwg => {
            p.ndwg = true;
            p.dw = !chance(rng, VIOLATION_NDWG_NO_DW);
        }
    }
    p.emp_status = match program {
        Program::Dw | Program::Taa | Program::Ndwg => pick(rng, &[(0, 0.75), (2, 0.20), (1, 0.05)]),
        Program::Adult => pick(rng, &[(0, 0.55), (1, 0.30), (3, 0.15)]),
        Program::Youth => pick(rng, &[(3, 0.50), (0, 0.35), (1, 0.15)]),
        Program::WagnerPeyser => pick(rng, &[(0, 0.60), (1, 0.25), (2, 0.05), (3, 0.10)]),
        Program::SnapEt => pick(rng, &[(0, 0.60), (1, 0.25), (3, 0.15)]),
    };
    // Exit 30–700 days after entry, median about 200; long-stayers have not exited.
    if !chance(rng, LONG_STAY) {
        let d = (30 + lognormal_days(rng, 190.0, 0.7)).min(700);
        let exit = entry + d;
        if exit <= AS_OF {
            p.exit = Some(exit);
        }
    }
    if trains {
        let kind = TrainKind::ALL[super::util::pick_weighted(rng, &cumulative(&TRAINING_KIND))];
        let start = entry + rng.random_range(0..=45);
        let length = match kind {
            TrainKind::Ojt => rng.random_range(60..=180),
            TrainKind::Occupational => rng.random_range(60..=365),
            TrainKind::Customized => rng.random_range(30..=120),
            TrainKind::Apprenticeship => rng.random_range(180..=700),
            TrainKind::AdultEd => rng.random_range(90..=300),
        };
        let (start, end) = match p.exit {
            Some(exit) => (start.min(exit), Some((start + length).min(exit))),
            None => (start, Some(start + length).filter(|&e| e <= AS_OF)),
        };
        p.training = Some(Training { kind, start, end });
    }
    if p.exit.is_some() {
        let u = unit(rng);
        let youth_age = age_on(dob, entry) <= 24;
        p.exit_reason = if p.youth && youth_age && u < EXIT_REASON_FOSTER_YOUTH {
            "05"
        } else if u < EXIT_REASON_FOSTER_YOUTH + EXIT_REASON_OTHER {
            pick(
                rng,
                &[
                    ("01", 0.2),
                    ("02", 0.3),
                    ("03", 0.1),
                    ("04", 0.05),
                    ("06", 0.2),
                    ("07", 0.15),
                ],
            )
        } else {
            "00"
        };
    }
    p
}

// ----- What other agencies know -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Assist {
    Snap,
    Tanf,
}

/// A SNAP or TANF certification period.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AssistPeriod {
    pub program: Assist,
    pub supportive: bool,
    pub determination: i32,
    pub start: i32,
    pub end: i32,
}

/// Expected SNAP and TANF people per participant, scaled onto the pool so that agency files
/// hold about as many non-participant rows as participant rows.
fn pool_scale(world: &World) -> f64 {
    world.n as f64 / world.pool.max(1) as f64
}

/// Whether a non-participant has SNAP/TANF records, decided without building the person
/// (most of the pool has none, and building a person is the costly part of a chunk).
/// Always true for participants.
pub(crate) fn may_have_assist(world: &World, pid: u64) -> bool {
    if world.is_participant(pid) {
        return true;
    }
    let mut rng = rng_for(world.seed, Stream::Assist as u64, pid);
    let scale = pool_scale(world);
    let draws = [unit(&mut rng), unit(&mut rng)];
    draws[0] < SNAP * scale || draws[1] < TANF * scale
}

/// Whether a non-participant has UI claims (the first draw of `claims`).
pub(crate) fn may_have_claims(world: &World, pid: u64) -> bool {
    world.is_participant(pid)
        || chance(
            &mut rng_for(world.seed, Stream::Claims as u64, pid),
            pool_claim_rate(world),
        )
}

/// Whether a non-participant has a TAA case (the first draw of `taa_case`).
pub(crate) fn may_have_taa(world: &World, pid: u64) -> bool {
    world.is_participant(pid)
        || chance(
            &mut rng_for(world.seed, Stream::Taa as u64, pid),
            pool_taa_rate(world),
        )
}

fn pool_taa_rate(world: &World) -> f64 {
    TAA_POOL_RATIO * PROGRAM_MIX[5] * pool_scale(world)
}

/// The person's SNAP/TANF periods, oldest first per program.
pub(crate) fn assist_periods(world: &World, p: &Person) -> Vec<AssistPeriod> {
    let mut rng = rng_for(world.seed, Stream::Assist as u64, p.pid);
    let rng = &mut rng;
    let participant = p.part.is_some();
    let scale = if participant { 1.0 } else { pool_scale(world) };
    let anchor = p.first_entry().unwrap_or(p.anchor);
    // The two "on file at all" draws come first so `may_have_assist` can repeat them.
    let draws = [unit(rng), unit(rng)];
    let mut out = Vec::new();
    for (program, rate, stale_rate, draw) in [
        (Assist::Snap, SNAP, SNAP_STALE, draws[0]),
        (Assist::Tanf, TANF, TANF_STALE, draws[1]),
    ] {
        if draw >= rate * scale {
            continue;
        }
        let len = if chance(rng, 0.5) { 182 } else { 365 };
        let stale = chance(rng, stale_rate);
        let (mut start, count) = if stale {
            let end = anchor - rng.random_range(365..=1095);
            let count = rng.random_range(1..=2);
            (end - len * count + 1, count)
        } else {
            let before = rng.random_range(0..=2);
            let after = rng.random_range(0..=1);
            let covering = anchor - rng.random_range(0..len);
            (covering - before * len, before + 1 + after)
        };
        let supportive = program == Assist::Tanf && chance(rng, TANF_SUPPORTIVE);
        for _ in 0..count {
            let determination = start - rng.random_range(0..=30);
            if determination > AS_OF {
                break;
            }
            out.push(AssistPeriod {
                program,
                supportive,
                determination,
                start,
                end: start + len - 1,
            });
            start += len;
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClaimType {
    Reg,
    Ucfe,
    Ucx,
    Tra,
}

impl ClaimType {
    pub(crate) fn code(self) -> &'static str {
        match self {
            ClaimType::Reg => "REG",
            ClaimType::Ucfe => "UCFE",
            ClaimType::Ucx => "UCX",
            ClaimType::Tra => "TRA",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Claim {
    pub kind: ClaimType,
    pub filed: i32,
    pub weeks_paid: u8,
    pub separation: &'static str,
}

impl Claim {
    /// The benefit year: 52 weeks from the filing date.
    pub(crate) fn benefit_year_end(&self) -> i32 {
        self.filed + 52 * 7 - 1
    }
}

/// Non-participant claimant rate: about `CLAIM_POOL_RATIO` non-participant claims per
/// participant claim (participants average about 0.33 claims each).
fn pool_claim_rate(world: &World) -> f64 {
    (CLAIM_POOL_RATIO * 0.33 * pool_scale(world) / 1.15).min(1.0)
}

fn separation(rng: &mut ChaCha8Rng, dislocated: bool) -> &'static str {
    if dislocated {
        pick(rng, &[("LACK_OF_WORK", 0.92), ("OTHER", 0.08)])
    } else {
        pick(
            rng,
            &[
                ("LACK_OF_WORK", 0.72),
                ("QUIT", 0.09),
                ("DISCHARGE", 0.13),
                ("OTHER", 0.06),
            ],
        )
    }
}

fn weeks_paid(rng: &mut ChaCha8Rng, filed: i32) -> u8 {
    if chance(rng, 0.10) {
        return 0;
    }
    let elapsed_weeks = ((AS_OF - filed) / 7).max(0);
    let w = 1 + (25.0 * unit(rng).powf(0.9)) as i32;
    w.min(elapsed_weeks).clamp(0, 26) as u8
}

fn regular_kind(rng: &mut ChaCha8Rng) -> ClaimType {
    pick(
        rng,
        &[
            (ClaimType::Reg, 0.94),
            (ClaimType::Ucfe, 0.03),
            (ClaimType::Ucx, 0.03),
        ],
    )
}

/// The person's UI claims.
pub(crate) fn claims(world: &World, p: &Person) -> Vec<Claim> {
    let mut rng = rng_for(world.seed, Stream::Claims as u64, p.pid);
    let rng = &mut rng;
    let mut out = Vec::new();
    let mut push = |rng: &mut ChaCha8Rng, kind, filed: i32, dislocated| {
        if filed <= AS_OF {
            out.push(Claim {
                kind,
                filed,
                weeks_paid: weeks_paid(rng, filed),
                separation: separation(rng, dislocated),
            });
        }
    };
    match &p.part {
        Some(part) => {
            let first = &part.periods[0];
            let rate = if first.dw {
                CLAIM_DW
            } else {
                match first.emp_status {
                    0 => CLAIM_UNEMPLOYED,
                    2 => CLAIM_NOTICE,
                    _ => 0.03,
                }
            };
            let mut claimant = false;
            if chance(rng, rate) {
                claimant = true;
                let filed = if first.emp_status == 2 {
                    first.entry + rng.random_range(0..=60)
                } else {
                    first.entry - rng.random_range(0..=120)
                };
                let kind = regular_kind(rng);
                push(rng, kind, filed, first.dw);
            }
            if first.taa && chance(rng, CLAIM_TRA_FOR_TAA) {
                claimant = true;
                let filed = first.entry + rng.random_range(14..=90);
                push(rng, ClaimType::Tra, filed, true);
            }
            if claimant && chance(rng, CLAIM_SECOND) {
                let filed = if chance(rng, 0.5) {
                    first.entry - rng.random_range(400..=800)
                } else {
                    first.exit.unwrap_or(first.entry + 200) + rng.random_range(30..=300)
                };
                let kind = regular_kind(rng);
                push(rng, kind, filed, false);
            }
        }
        None => {
            if chance(rng, pool_claim_rate(world)) {
                let filed = p.anchor - rng.random_range(0..=60);
                let kind = regular_kind(rng);
                push(rng, kind, filed, false);
                if chance(rng, CLAIM_SECOND) {
                    let filed = filed - rng.random_range(400..=900);
                    let kind = regular_kind(rng);
                    push(rng, kind, filed, false);
                }
            }
        }
    }
    out.sort_by_key(|c| c.filed);
    out
}

/// A TAA case: the petition the worker is covered by and the benefits received.
#[derive(Clone, Debug)]
pub(crate) struct TaaCase {
    pub petition: u32,
    pub certified: i32,
    pub benefits: Vec<TaaBenefit>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct TaaBenefit {
    pub kind: &'static str,
    pub start: i32,
    pub end: Option<i32>,
}

/// Petitions per month: workers laid off by the same firm share a petition number and
/// certification date.
const PETITIONS_PER_MONTH: i32 = 8;

fn petition(world: &World, rng: &mut ChaCha8Rng, entry: i32) -> (u32, i32) {
    let (y, m, _) = super::util::civil_from_days(entry - 120);
    let month = (y - 2018) * 12 + m as i32 - 1;
    let index = month * PETITIONS_PER_MONTH + rng.random_range(0..PETITIONS_PER_MONTH);
    let mut prng = rng_for(world.seed, Stream::Petition as u64, index as u64);
    let certified = days(y, m, 1) + prng.random_range(0..28);
    (90_000 + index as u32, certified)
}

/// The person's TAA case, if they are a TAA worker.
pub(crate) fn taa_case(world: &World, p: &Person) -> Option<TaaCase> {
    let mut rng = rng_for(world.seed, Stream::Taa as u64, p.pid);
    let rng = &mut rng;
    let (entry, exit, training, age) = match &p.part {
        Some(part) => {
            let period = part.periods.iter().find(|q| q.taa)?;
            (
                period.entry,
                period.exit,
                period.training,
                age_on(p.dob, period.entry),
            )
        }
        None => {
            if !chance(rng, pool_taa_rate(world)) {
                return None;
            }
            let exit = p.anchor + rng.random_range(90..=500);
            (
                p.anchor,
                Some(exit).filter(|&x| x <= AS_OF),
                None,
                age_on(p.dob, p.anchor),
            )
        }
    };
    let (petition, certified) = petition(world, rng, entry);
    let mut benefits = vec![TaaBenefit {
        kind: "CASE_MANAGEMENT",
        start: entry,
        end: exit,
    }];
    if let Some(t) = training {
        benefits.push(TaaBenefit {
            kind: "TRAINING",
            start: t.start,
            end: t.end,
        });
    }
    if chance(rng, 0.6) {
        let start = entry + rng.random_range(14..=60);
        let end = start + 7 * rng.random_range(26..=78);
        benefits.push(TaaBenefit {
            kind: "TRA",
            start,
            end: Some(end).filter(|&e| e <= AS_OF),
        });
    }
    if chance(rng, 0.2) {
        let start = entry + rng.random_range(0..=90);
        benefits.push(TaaBenefit {
            kind: "JOB_SEARCH",
            start,
            end: Some(start + rng.random_range(1..=30)),
        });
    }
    if chance(rng, 0.05) {
        let start = entry + rng.random_range(30..=300);
        benefits.push(TaaBenefit {
            kind: "RELOCATION",
            start,
            end: Some(start + rng.random_range(1..=60)),
        });
    }
    if age >= 50 && chance(rng, 0.15) {
        let start = entry + rng.random_range(30..=200);
        benefits.push(TaaBenefit {
            kind: "RTAA",
            start,
            end: Some(start + 7 * rng.random_range(26..=104)),
        });
    }
    benefits.retain(|b| b.start <= AS_OF);
    for b in &mut benefits {
        b.end = b.end.filter(|&e| e <= AS_OF);
    }
    Some(TaaCase {
        petition,
        certified,
        benefits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ssns_are_valid_and_distinct() {
        let world = World::new(42, 1000);
        let mut seen = HashSet::new();
        for pid in 0..200_000 {
            let s = world.ssns.ssn(pid);
            assert!(ssn_is_valid(s), "pid {pid} got an invalid SSN");
            assert!(seen.insert(s), "SSN repeated");
        }
        for f in FAKE_SSNS {
            assert_eq!(ssn_from_raw(ssn_raw_index(f)), f);
        }
    }

    #[test]
    fn participants_are_14_to_75_at_every_entry() {
        let world = World::new(7, 20_000);
        for pid in 0..20_000 {
            let p = person(&world, pid);
            for period in &p.part.as_ref().unwrap().periods {
                let age = age_on(p.dob, period.entry);
                assert!((14..=75).contains(&age), "age {age}");
                if period.youth {
                    assert!(age <= 24);
                }
                assert!(period.entry >= ENTRY_FIRST && period.entry <= ENTRY_LAST);
                if let Some(x) = period.exit {
                    assert!(x > period.entry && x <= AS_OF);
                }
            }
        }
    }
}
