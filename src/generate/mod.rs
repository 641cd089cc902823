//! Synthetic state data: `xmatch generate`.
//!
//! Writes a participants export and four agency files (public assistance, UI claims, UI
//! wages, TAA) about invented people, with the errors real files carry (missing and
//! mistyped SSNs, nicknames, format variety, duplicates, re-entries, twins, name changes,
//! co-enrolment violations), plus `truth` — which invented person every record belongs
//! to — and `manifest.json` with the count of every injected scenario. Matching and
//! reporting code can then be measured against a known answer at realistic scale.
//!
//! Every person is generated: names come from frequency tables, SSNs are drawn from the
//! valid space by a keyed permutation, and nothing is read from real records. Even so,
//! generated SSNs, names and DOBs are treated like real PII: they never appear in logs,
//! errors or panics.
//!
//! Output is deterministic: the same participant count and seed give byte-identical files
//! whatever the thread count, because every random draw comes from a stream keyed by
//! `(seed, stream, index)` (see `util`) and chunks are written in order.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;

use crate::schema::{Catalog, IdentityRole, SchemaError};

mod columns;
mod names;
mod noise;
pub mod noise_profile;
mod people;
pub mod rates;
mod sources;
mod util;
mod writers;

pub use noise_profile::{IdentityNoise, NoiseProfile};
pub use writers::Format;

use people::World;
use sources::{ChunkOut, Ctx, SOURCES, ServiceCodes, SourceDef};
use writers::{Staged, TableWriter};

/// What to generate and where.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Participant people. The participants file holds about 2.5% more rows (re-entries
    /// and duplicates); agency files add 3.5 non-participant people per participant.
    pub participants: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub format: Format,
    /// Identity-error rates: `Default` (the constants of `rates`) or `Heavy`.
    pub noise: NoiseProfile,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("the number of participants must be at least 1")]
    NoParticipants,
    #[error(
        "{participants} participants need {needed} distinct SSNs, more than the {available} valid ones"
    )]
    TooManyPeople {
        participants: usize,
        needed: u64,
        available: u64,
    },
    #[error("schema `{source_name}` has column `{column}`, which the generator does not produce")]
    MissingColumn {
        source_name: &'static str,
        column: String,
    },
    #[error("the generator produces column `{column}`, which schema `{source_name}` does not have")]
    UnknownColumn {
        source_name: &'static str,
        column: String,
    },
    #[error("the generator produces column `{column}` twice for `{source_name}`")]
    DuplicateColumn {
        source_name: &'static str,
        column: String,
    },
    #[error(
        "column `{column}` of `{source_name}`: the generator produces {produced}, the schema says {expected}"
    )]
    ColumnType {
        source_name: &'static str,
        column: String,
        produced: String,
        expected: String,
    },
    #[error("schema `{0}` has no `identity = \"record_id\"` column and is not the wage file")]
    NoRecordId(&'static str),
    #[error("the service catalogue has no {0} service")]
    Services(&'static str),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing Parquet {}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("building a record batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("writing the manifest: {0}")]
    Json(#[from] serde_json::Error),
}

/// One output table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    /// `participants`, …, `truth`.
    pub name: String,
    pub rows: u64,
    /// File names written in the output directory.
    pub files: Vec<String>,
}

/// What a run wrote.
#[derive(Clone, Debug)]
pub struct GenerateSummary {
    pub out: PathBuf,
    pub seed: u64,
    pub participants: usize,
    pub noise: NoiseProfile,
    pub tables: Vec<FileSummary>,
    /// Injected-scenario counts, as in `manifest.json` (`source.scenario`).
    pub scenarios: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl GenerateSummary {
    pub fn rows(&self, name: &str) -> Option<u64> {
        self.tables.iter().find(|t| t.name == name).map(|t| t.rows)
    }
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noise = match self.noise {
            NoiseProfile::Default => String::new(),
            other => format!(", {other} noise"),
        };
        writeln!(
            f,
            "generated {} participants (seed {}{noise}) into {} in {:.1} s",
            self.participants,
            self.seed,
            self.out.display(),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "{:<18} {:>12}  files", "table", "rows")?;
        for t in &self.tables {
            writeln!(f, "{:<18} {:>12}  {}", t.name, t.rows, t.files.join(", "))?;
        }
        write!(f, "{:<18} {:>12}  manifest.json", "manifest", "")
    }
}

/// The truth file: which generated person each record belongs to.
fn truth_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("record_id", DataType::Utf8, false),
        Field::new("person_id", DataType::Int64, false),
    ]))
}

/// Chunks generated at once per group: enough to keep both cores busy while the previous
/// group is written, few enough that memory stays bounded (a chunk is about 64k rows).
fn group_size() -> u64 {
    (rayon::current_num_threads() as u64 * 2).max(2)
}

/// Generates the files. See the module documentation.
pub fn generate(
    opts: &GenerateOptions,
    catalog: &Catalog,
) -> Result<GenerateSummary, GenerateError> {
    let started = Instant::now();
    if opts.participants == 0 {
        return Err(GenerateError::NoParticipants);
    }
    let world = World::new(opts.seed, opts.participants as u64);
    if world.people() > world.ssns.capacity() {
        return Err(GenerateError::TooManyPeople {
            participants: opts.participants,
            needed: world.people(),
            available: world.ssns.capacity(),
        });
    }
    // Check every source's columns against its schema before writing anything.
    let mut schemas = BTreeMap::new();
    let mut record_ids = BTreeMap::new();
    for def in &SOURCES {
        let schema = catalog.source(def.name)?;
        def.check(schema)?;
        let rid = schema
            .identity_column(IdentityRole::RecordId)
            .map(|c| c.name.clone());
        if rid.is_none() && def.name != "ui_wages" {
            return Err(GenerateError::NoRecordId(def.name));
        }
        record_ids.insert(def.name, rid);
        schemas.insert(def.name, schema);
    }
    let ctx = Ctx {
        world,
        services: ServiceCodes::from_catalog(catalog)?,
        schemas,
        csv: opts.format.csv(),
        noise: opts.noise.rates(),
    };
    std::fs::create_dir_all(&opts.out).map_err(|source| GenerateError::Io {
        path: opts.out.clone(),
        source,
    })?;

    let mut staged = Staged::default();
    let mut truth =
        TableWriter::create(&mut staged, &opts.out, "truth", truth_schema(), opts.format)?;
    let mut tables = Vec::new();
    let mut scenarios: BTreeMap<String, u64> = BTreeMap::new();
    for def in &SOURCES {
        let schema = ctx.schema(def.name).arrow_schema();
        let mut writer =
            TableWriter::create(&mut staged, &opts.out, def.name, schema, opts.format)?;
        let rid = record_ids[def.name].as_deref();
        let counts = run_source(&ctx, def, rid, &mut writer, &mut truth)?;
        for (k, v) in counts {
            scenarios.insert(format!("{}.{k}", def.name), v);
        }
        tables.push(FileSummary {
            name: def.name.to_string(),
            rows: writer.rows,
            files: writer.files.clone(),
        });
        writer.finish()?;
        tracing::debug!(
            source = def.name,
            elapsed_s = started.elapsed().as_secs_f64(),
            "source written"
        );
    }
    tables.push(FileSummary {
        name: "truth".into(),
        rows: truth.rows,
        files: truth.files.clone(),
    });
    truth.finish()?;

    let manifest = manifest(opts, &ctx.world, &tables, &scenarios);
    let path = staged.stage(&opts.out, "manifest.json");
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|source| GenerateError::Io { path, source })?;
    staged.commit()?;

    Ok(GenerateSummary {
        out: opts.out.clone(),
        seed: opts.seed,
        participants: opts.participants,
        noise: opts.noise,
        tables,
        scenarios,
        elapsed: started.elapsed(),
    })
}

/// Generates one source: groups of chunks in parallel, each group written (source file and
/// truth rows) while the next is generated.
fn run_source(
    ctx: &Ctx,
    def: &SourceDef,
    record_id: Option<&str>,
    writer: &mut TableWriter,
    truth: &mut TableWriter,
) -> Result<BTreeMap<&'static str, u64>, GenerateError> {
    let chunks = def.chunks(&ctx.world);
    let group = group_size();
    let mut counts = BTreeMap::new();
    let mut pending: Vec<ChunkOut> = Vec::new();
    let mut next = 0u64;
    loop {
        let range = next..(next + group).min(chunks);
        next = range.end;
        if range.is_empty() && pending.is_empty() {
            break;
        }
        let write = |pending: &[ChunkOut],
                     writer: &mut TableWriter,
                     truth: &mut TableWriter|
         -> Result<(), GenerateError> {
            let first_row = writer.rows;
            let (a, b) = rayon::join(
                || -> Result<(), GenerateError> {
                    for out in pending {
                        writer.write(&out.batch, out.csv.as_deref())?;
                    }
                    Ok(())
                },
                || -> Result<(), GenerateError> {
                    let mut row = first_row;
                    for out in pending {
                        let batch = truth_batch(def.name, record_id, out, row)?;
                        row += out.batch.num_rows() as u64;
                        truth.write(&batch, None)?;
                    }
                    Ok(())
                },
            );
            a.and(b)
        };
        let (written, generated) = rayon::join(
            || write(&pending, writer, truth),
            || {
                range
                    .clone()
                    .into_par_iter()
                    .map(|chunk| (def.chunk)(ctx, chunk, def.range(&ctx.world, chunk)))
                    .collect::<Result<Vec<_>, _>>()
            },
        );
        written?;
        for out in &pending {
            for (k, v) in &out.counts {
                *counts.entry(*k).or_insert(0) += v;
            }
        }
        pending = generated?;
    }
    Ok(counts)
}

/// Truth rows of a chunk: the record ID column's values, or for the wage file (which has
/// none) the 1-based data row number.
fn truth_batch(
    source: &str,
    record_id: Option<&str>,
    out: &ChunkOut,
    first_row: u64,
) -> Result<RecordBatch, GenerateError> {
    let n = out.batch.num_rows();
    let ids: ArrayRef = match record_id.and_then(|c| out.batch.column_by_name(c)) {
        Some(col) => col.clone(),
        None => {
            let mut buf = itoa::Buffer::new();
            Arc::new(StringArray::from_iter_values(
                (0..n as u64).map(|i| buf.format(first_row + i + 1).to_string()),
            ))
        }
    };
    let sources: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
        source, n,
    )));
    let persons: ArrayRef = Arc::new(Int64Array::from(out.person_ids.clone()));
    Ok(RecordBatch::try_new(
        truth_schema(),
        vec![sources, ids, persons],
    )?)
}

fn manifest(
    opts: &GenerateOptions,
    world: &World,
    tables: &[FileSummary],
    scenarios: &BTreeMap<String, u64>,
) -> serde_json::Value {
    let mut as_of = String::new();
    util::push_iso(&mut as_of, rates::AS_OF);
    let files: BTreeMap<&str, serde_json::Value> = tables
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                serde_json::json!({ "rows": t.rows, "files": t.files }),
            )
        })
        .collect();
    serde_json::json!({
        "generator": "xmatch generate",
        "seed": opts.seed,
        "participants": opts.participants,
        "non_participant_people": world.pool,
        "employers": world.employers,
        "as_of": as_of,
        "format": opts.format.as_str(),
        "noise": opts.noise.as_str(),
        "tables": files,
        "scenarios": scenarios,
    })
}

/// The output directory's file name for a table in a format (for callers and tests).
pub fn file_name(table: &str, format: Format) -> String {
    let ext = match format {
        Format::Parquet => "parquet",
        _ => "csv",
    };
    format!("{table}.{ext}")
}

/// The table names written, in order.
pub fn table_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = SOURCES.iter().map(|s| s.name).collect();
    v.push("truth");
    v
}
