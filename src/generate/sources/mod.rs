//! The five generated sources. Each walks a range of person indices in fixed-size chunks
//! (the chunk size depends on the source, never on the thread count) and returns one Arrow
//! batch per chunk plus the person behind every row, for the truth file.

use std::collections::BTreeMap;
use std::ops::Range;

use arrow::record_batch::RecordBatch;
use rand_chacha::ChaCha8Rng;

use crate::schema::{Catalog, SourceSchema};

use super::GenerateError;
use super::columns::Columns;
use super::noise::{
    SsnLayout, dob_typo, maybe_nickname, misspell_as, pick_case, pick_dob_layout, pick_layout,
    push_dob, push_ssn, render_name, ssn_transposed, ssn_typo, strip_accents,
};
use super::noise_profile::IdentityNoise;
use super::people::{Person, World, cumulative};
use super::rates::*;
use super::util::{Stream, chance, maybe, push_num, rng_for};

pub(crate) mod participants;
pub(crate) mod public_assistance;
pub(crate) mod taa;
pub(crate) mod ui_claims;
pub(crate) mod ui_wages;

/// Scenario counters of a chunk, merged in chunk order.
pub(crate) type Counts = BTreeMap<&'static str, u64>;

pub(crate) fn bump(counts: &mut Counts, key: &'static str) {
    add(counts, key, 1);
}

pub(crate) fn merge(counts: &mut Counts, other: &Counts) {
    for (k, v) in other {
        add(counts, k, *v);
    }
}

pub(crate) fn add(counts: &mut Counts, key: &'static str, n: u64) {
    *counts.entry(key).or_insert(0) += n;
}

/// What a chunk produced.
pub(crate) struct ChunkOut {
    pub batch: RecordBatch,
    /// The generated person behind each row, in row order.
    pub person_ids: Vec<i64>,
    pub counts: Counts,
    /// The batch as CSV data rows (no header), when CSV is written.
    pub csv: Option<Vec<u8>>,
}

/// Service codes from the catalogue, by role.
pub(crate) struct ServiceCodes {
    /// The self-service / informational basic career services (do not trigger participation).
    pub self_service: Vec<String>,
    /// Staff-assisted basic and individualized career services.
    pub staff: Vec<String>,
    /// Training services in catalogue order; matched to `TrainKind::ALL` by position.
    pub training: Vec<String>,
}

impl ServiceCodes {
    pub(crate) fn from_catalog(catalog: &Catalog) -> Result<ServiceCodes, GenerateError> {
        let s = catalog.services();
        let codes = |f: &dyn Fn(&crate::schema::Service) -> bool| -> Vec<String> {
            s.iter().filter(|x| f(x)).map(|x| x.code.clone()).collect()
        };
        let out = ServiceCodes {
            self_service: codes(&|x| !x.triggers_participation),
            staff: codes(&|x| x.triggers_participation && x.kind != "training"),
            training: codes(&|x| x.kind == "training"),
        };
        for (list, what) in [
            (&out.self_service, "self-service"),
            (&out.staff, "staff-assisted career"),
            (&out.training, "training"),
        ] {
            if list.is_empty() {
                return Err(GenerateError::Services(what));
            }
        }
        Ok(out)
    }
}

/// Everything a chunk needs, shared read-only across threads.
pub(crate) struct Ctx<'a> {
    pub world: World,
    pub services: ServiceCodes,
    pub schemas: BTreeMap<&'static str, &'a SourceSchema>,
    pub csv: bool,
    /// The identity-error rates of the run's noise profile.
    pub noise: IdentityNoise,
}

impl Ctx<'_> {
    pub(crate) fn schema(&self, name: &str) -> &SourceSchema {
        self.schemas[name]
    }
}

/// One source: its name, how many person indices it walks, its chunk size in persons,
/// how it declares its columns and how it fills a chunk.
pub(crate) struct SourceDef {
    pub name: &'static str,
    /// Ordinal used to key the source's record-noise streams.
    pub ordinal: u64,
    pub chunk_persons: u64,
    pub participants_only: bool,
    pub declare: fn(&mut Columns),
    pub chunk: fn(&Ctx, u64, Range<u64>) -> Result<ChunkOut, GenerateError>,
}

/// The sources in the order they are written.
pub(crate) const SOURCES: [SourceDef; 5] = [
    SourceDef {
        name: "participants",
        ordinal: 0,
        chunk_persons: 32_768,
        participants_only: true,
        declare: participants::declare,
        chunk: participants::chunk,
    },
    SourceDef {
        name: "public_assistance",
        ordinal: 1,
        chunk_persons: 65_536,
        participants_only: false,
        declare: public_assistance::declare,
        chunk: public_assistance::chunk,
    },
    SourceDef {
        name: "ui_claims",
        ordinal: 2,
        chunk_persons: 65_536,
        participants_only: false,
        declare: ui_claims::declare,
        chunk: ui_claims::chunk,
    },
    SourceDef {
        name: "ui_wages",
        ordinal: 3,
        chunk_persons: 16_384,
        participants_only: false,
        declare: ui_wages::declare,
        chunk: ui_wages::chunk,
    },
    SourceDef {
        name: "taa",
        ordinal: 4,
        chunk_persons: 65_536,
        participants_only: false,
        declare: taa::declare,
        chunk: taa::chunk,
    },
];

impl SourceDef {
    pub(crate) fn persons(&self, world: &World) -> u64 {
        if self.participants_only {
            world.n
        } else {
            world.people()
        }
    }

    pub(crate) fn chunks(&self, world: &World) -> u64 {
        self.persons(world).div_ceil(self.chunk_persons)
    }

    pub(crate) fn range(&self, world: &World, chunk: u64) -> Range<u64> {
        let lo = chunk * self.chunk_persons;
        lo..(lo + self.chunk_persons).min(self.persons(world))
    }

    /// The record-noise stream of a chunk.
    pub(crate) fn rng(&self, world: &World, chunk: u64) -> ChaCha8Rng {
        rng_for(world.seed, Stream::Chunk as u64 + self.ordinal, chunk)
    }

    /// Checks the declared columns against the schema before anything is written.
    pub(crate) fn check(&self, schema: &SourceSchema) -> Result<(), GenerateError> {
        let mut cols = Columns::new(self.name, 0);
        (self.declare)(&mut cols);
        cols.finish(schema).map(|_| ())
    }
}

/// Finishes a chunk: batch in schema order plus its CSV rows.
pub(crate) fn finish_chunk(
    ctx: &Ctx,
    name: &'static str,
    cols: Columns,
    person_ids: Vec<i64>,
    counts: Counts,
) -> Result<ChunkOut, GenerateError> {
    let batch = cols.finish(ctx.schema(name))?;
    let csv = ctx.csv.then(|| super::writers::encode_csv(&batch));
    Ok(ChunkOut {
        batch,
        person_ids,
        counts,
        csv,
    })
}

// ----- How an agency's records show a person -----

/// An agency's habits: SSN and DOB layouts, name case, error rates.
pub(crate) struct Profile {
    pub ssn_missing: f64,
    pub ssn_layouts: Vec<f64>,
    pub dob_layouts: Vec<f64>,
    pub cases: Vec<f64>,
    /// First name shown as an initial only (wage records), and missing.
    pub first_initial: f64,
    pub first_missing: f64,
    /// Last name missing (zero unless the noise profile sets it).
    pub last_missing: f64,
    /// Whether the agency's file has a DOB column at all (wage records do not).
    pub dob: bool,
    /// Whether the agency's file has a ZIP column (missing ZIPs are counted only there).
    pub zip: bool,
}

impl Profile {
    pub(crate) fn new(
        ssn_missing: f64,
        ssn_layouts: [f64; 4],
        cases: [f64; 4],
        first_initial: f64,
        first_missing: f64,
    ) -> Profile {
        Profile {
            ssn_missing,
            ssn_layouts: cumulative(&ssn_layouts),
            dob_layouts: cumulative(&[0.55, 0.30, 0.15]),
            cases: cumulative(&cases),
            first_initial,
            first_missing,
            last_missing: 0.0,
            dob: true,
            zip: true,
        }
    }
}

/// A person as one agency recorded them (the same on all of that agency's rows for the
/// person, as a case file would be).
pub(crate) struct AgencyIdentity {
    pub ssn: Option<String>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub dob: Option<String>,
    pub zip: Option<String>,
    pub sex: &'static str,
    /// Which errors were injected, counted once per row written.
    pub flags: Vec<&'static str>,
}

impl AgencyIdentity {
    pub(crate) fn count_row(&self, counts: &mut Counts) {
        for f in &self.flags {
            bump(counts, f);
        }
    }
}

pub(crate) fn push_zip(out: &mut String, zip: u32) {
    push_num(out, zip, 5);
}

/// How one agency shows a person, with the errors the noise profile's `x_` rates inject.
/// Draws for rates the profile leaves at zero are skipped (`maybe`), so the default profile
/// consumes the stream exactly as it did before profiles existed.
pub(crate) fn agency_identity(
    rng: &mut ChaCha8Rng,
    p: &Person,
    profile: &Profile,
    noise: &IdentityNoise,
) -> AgencyIdentity {
    let mut flags = Vec::new();
    let ssn = if chance(rng, profile.ssn_missing) {
        flags.push("ssn_missing");
        None
    } else {
        let mut ssn = p.ssn;
        if chance(rng, noise.x_ssn_typo) {
            if chance(rng, 0.6) {
                ssn = ssn_typo(rng, ssn);
                flags.push("ssn_typo");
            } else if let Some(t) = ssn_transposed(rng, ssn) {
                ssn = t;
                flags.push("ssn_transposed");
            }
        }
        let layout = pick_layout(rng, &profile.ssn_layouts);
        let mut s = String::with_capacity(11);
        push_ssn(&mut s, ssn, layout);
        if layout == SsnLayout::Integer && ssn < 100_000_000 {
            flags.push("ssn_leading_zeros_lost");
        }
        Some(s)
    };
    let case = pick_case(rng, &profile.cases);
    let mut full_first = false;
    let mut first = if chance(rng, profile.first_missing) {
        flags.push("first_name_missing");
        None
    } else if chance(rng, profile.first_initial) {
        flags.push("first_name_initial");
        let initial: String = strip_accents(p.first).chars().take(1).collect();
        let mut out = String::new();
        render_name(rng, &mut out, &initial, case, 0.0, 0.0);
        Some(out)
    } else {
        let mut name: String = match maybe_nickname(rng, p.first, noise.x_nickname) {
            Some(n) => {
                flags.push("first_name_nickname");
                n.to_string()
            }
            None => p.first.to_string(),
        };
        if chance(rng, noise.x_first_misspelled) {
            let (s, kind) = misspell_as(rng, &name, &noise.misspell_kinds);
            name = s;
            flags.push(kind.flag(true));
        }
        let mut out = String::new();
        render_name(rng, &mut out, &name, case, X_ACCENT_STRIPPED, 0.01);
        full_first = true;
        Some(out)
    };
    let mut last = if maybe(rng, profile.last_missing) {
        flags.push("last_name_missing");
        None
    } else {
        let mut surname = match p.former_last {
            Some(former) if chance(rng, NAME_CHANGE_SHOWN_EXTERNALLY) => {
                flags.push("former_surname");
                former.to_string()
            }
            _ => p.last.to_string(),
        };
        if chance(rng, noise.x_last_misspelled) {
            let (s, kind) = misspell_as(rng, &surname, &noise.misspell_kinds);
            surname = s;
            flags.push(kind.flag(false));
        }
        if let Some(suffix) = p.suffix
            && chance(rng, 0.4)
        {
            surname.push(' ');
            surname.push_str(suffix);
        }
        let mut last = String::new();
        render_name(rng, &mut last, &surname, case, X_ACCENT_STRIPPED, 0.01);
        Some(last)
    };
    // Given name and surname in each other's field (only when both are written out).
    if full_first && last.is_some() && maybe(rng, noise.x_names_swapped) {
        std::mem::swap(&mut first, &mut last);
        flags.push("names_swapped");
    }
    let dob = if !profile.dob {
        None
    } else if chance(rng, noise.x_dob_missing) {
        flags.push("dob_missing");
        None
    } else {
        let day = if maybe(rng, noise.x_dob_typo) {
            flags.push("dob_typo");
            dob_typo(rng, p.dob)
        } else {
            p.dob
        };
        let mut s = String::with_capacity(10);
        push_dob(
            &mut s,
            day,
            pick_dob_layout(rng, &profile.dob_layouts),
            false,
        );
        Some(s)
    };
    let zip = if chance(rng, noise.zip_missing) {
        if profile.zip {
            flags.push("zip_missing");
        }
        None
    } else {
        let mut s = String::with_capacity(5);
        push_zip(&mut s, p.zip);
        Some(s)
    };
    let sex = if chance(rng, 0.01) {
        "U"
    } else if p.female {
        "F"
    } else {
        "M"
    };
    AgencyIdentity {
        ssn,
        first,
        last,
        dob,
        zip,
        sex,
        flags,
    }
}
