//! `xmatch tokenize`: the partner-agency side of a cross-match.
//!
//! A partner holding the shared key turns its raw file into the tokenized layout
//! ([`crate::ingest::layout`]) on its own machine and sends only that, so the state never
//! receives the partner's SSNs, names or dates of birth. Every schema column that is
//! neither an identity input nor a direct identifier is kept; identity columns become
//! `tok_<rule>` tokens (hex in CSV, 32-byte binary in Parquet), the record id becomes
//! `tok_record`, and DOB / ZIP / sex become birth year / ZIP3 / sex. `key_id` and
//! `rule_set_version` on every row let the receiver refuse tokens it cannot compare.
//!
//! The tokens are computed by the same [`identify`](crate::identity::identify) that reads
//! raw files centrally, so a tokenized file matches exactly as its raw original would.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeBinaryArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::identity::identify::{IdentifiedBatch, IdentifyError, ReasonCounts, identify_with};
use crate::identity::{RULE_SET_VERSION, Token, Tokenizer};
use crate::ingest::layout::{self, ColumnKind, Layout};
use crate::ingest::{self, FileFormat, FileStats, IngestBatch, IngestError, SourceFile};
use crate::schema::SourceSchema;

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{}: {source}", path.display())]
    Identify {
        path: PathBuf,
        #[source]
        source: IdentifyError,
    },
    #[error("{}: cannot write: {problem}", path.display())]
    Write { path: PathBuf, problem: String },
    #[error("{}: the output must be a different file from the input", path.display())]
    SameFile { path: PathBuf },
}

/// What `tokenize` read and wrote. Holds counts only, no values.
#[derive(Clone, Debug)]
pub struct TokenizeSummary {
    pub input: FileStats,
    pub output: PathBuf,
    pub rows_written: u64,
    /// Rows refused by ingest, by reason code (they are not written: a partner fixes
    /// them at the source).
    pub rejects: BTreeMap<String, u64>,
    /// Unusable identity fields among the written rows (their tokens are empty).
    pub reasons: ReasonCounts,
    pub key_id: String,
}

impl fmt::Display for TokenizeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} -> {}",
            self.input.path.display(),
            self.output.display()
        )?;
        writeln!(
            f,
            "  read {}  accepted {}  rejected {}  written {}  (key {}, rule set v{}, input {}, sha256 {})",
            self.input.rows_read,
            self.input.rows_accepted,
            self.input.rows_rejected,
            self.rows_written,
            self.key_id,
            RULE_SET_VERSION,
            self.input.encoding.as_str(),
            self.input.sha256
        )?;
        for (code, n) in &self.rejects {
            writeln!(f, "  rejected {code:<24} {n}")?;
        }
        for (code, n) in self.reasons.nonzero() {
            writeln!(f, "  unusable {code:<24} {n}")?;
        }
        Ok(())
    }
}

/// The Arrow schema of a tokenized file as written: tokens as 32-byte binary (Parquet)
/// or hex text (CSV).
fn file_schema(schema: &SourceSchema, format: FileFormat) -> SchemaRef {
    let fields: Vec<Field> = layout::columns(schema, Layout::Tokenized)
        .into_iter()
        .map(|c| {
            let dt = match (&c.data_type, format) {
                (DataType::FixedSizeBinary(_), FileFormat::Csv) => DataType::Utf8,
                (dt, _) => dt.clone(),
            };
            Field::new(c.name, dt, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn tokens_array(t: &[Option<Token>], format: FileFormat) -> ArrayRef {
    bytes_array(
        t.iter().map(|o| o.as_ref().map(|x| x.as_slice())),
        32,
        format,
    )
}

/// Fixed-size values as binary (Parquet) or lowercase hex (CSV).
fn bytes_array<'a>(
    values: impl Iterator<Item = Option<&'a [u8]>>,
    size: i32,
    format: FileFormat,
) -> ArrayRef {
    match format {
        FileFormat::Parquet => Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(values, size)
                .expect("values have the column's size"),
        ),
        FileFormat::Csv => Arc::new(StringArray::from_iter(values.map(|o| o.map(hex::encode)))),
    }
}

/// One output batch in the tokenized layout.
fn tokenized_batch(
    schema: &SourceSchema,
    out_schema: &SchemaRef,
    format: FileFormat,
    input: &IngestBatch,
    id: &IdentifiedBatch,
    key_id: &str,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = input.batch.num_rows();
    let arrays: Vec<ArrayRef> = layout::columns(schema, Layout::Tokenized)
        .iter()
        .map(|c| -> ArrayRef {
            match c.kind {
                ColumnKind::Schema(_) => input
                    .batch
                    .column_by_name(&c.name)
                    .expect("an ingested batch has every layout column")
                    .clone(),
                ColumnKind::Token(rule) => tokens_array(&id.tokens[rule.index()], format),
                ColumnKind::RecordToken => tokens_array(&id.record_token, format),
                ColumnKind::Encoding(field) => {
                    let bytes: Vec<Option<Vec<u8>>> = id
                        .features
                        .iter()
                        .map(|f| f.encoding.field_bytes(field))
                        .collect();
                    bytes_array(
                        bytes.iter().map(|b| b.as_deref()),
                        (field.bits() / 8) as i32,
                        format,
                    )
                }
                ColumnKind::Block(kind) => {
                    let keys: Vec<Option<[u8; 8]>> = id
                        .features
                        .iter()
                        .map(|f| f.blocks.get(kind).map(u64::to_le_bytes))
                        .collect();
                    bytes_array(keys.iter().map(|k| k.as_ref().map(|k| &k[..])), 8, format)
                }
                ColumnKind::BirthYear => Arc::new(Int64Array::from_iter(
                    id.birth_year.iter().map(|y| y.map(i64::from)),
                )),
                ColumnKind::Zip3 => Arc::new(StringArray::from_iter(
                    id.zip3
                        .iter()
                        .map(|z| z.as_ref().and_then(|z| std::str::from_utf8(z).ok())),
                )),
                ColumnKind::Sex => Arc::new(StringArray::from_iter(
                    id.sex.iter().map(|s| s.map(|s| s.as_str())),
                )),
                ColumnKind::KeyId => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    key_id, n,
                ))),
                ColumnKind::RuleSetVersion => Arc::new(Int64Array::from_iter_values(
                    std::iter::repeat_n(RULE_SET_VERSION as i64, n),
                )),
            }
        })
        .collect();
    RecordBatch::try_new(out_schema.clone(), arrays)
}

enum Sink {
    Csv(arrow::csv::Writer<BufWriter<File>>),
    Parquet(ArrowWriter<BufWriter<File>>),
}

impl Sink {
    fn write(&mut self, b: &RecordBatch) -> Result<(), String> {
        match self {
            Sink::Csv(w) => w.write(b).map_err(|e| e.to_string()),
            Sink::Parquet(w) => w.write(b).map_err(|e| e.to_string()),
        }
    }

    fn close(self) -> Result<(), String> {
        let mut inner = match self {
            Sink::Csv(w) => w.into_inner(),
            Sink::Parquet(w) => w.into_inner().map_err(|e| e.to_string())?,
        };
        inner.flush().map_err(|e| e.to_string())?;
        inner
            .into_inner()
            .map_err(|e| e.to_string())?
            .sync_all()
            .map_err(|e| e.to_string())
    }
}

/// Parquet as the lake writes it: zstd level 1, no page index (readers here never use it).
fn parquet_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("level 1 is valid"),
        ))
        .set_offset_index_disabled(true)
        .build()
}

/// Removes the partial output unless the run completed.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Reads the raw file `input` in `schema`'s layout and writes its tokenized layout to
/// `output` (CSV or Parquet by extension). The output appears only when complete: it is
/// written under a temporary name and renamed. `today` bounds dates of birth.
pub fn tokenize(
    input: &SourceFile,
    output: &Path,
    schema: &SourceSchema,
    tokenizer: &Tokenizer,
    today: NaiveDate,
) -> Result<TokenizeSummary, TokenizeError> {
    let out_format = FileFormat::from_path(output).ok_or_else(|| IngestError::UnknownFormat {
        path: output.to_path_buf(),
    })?;
    if let (Ok(a), Ok(b)) = (input.path.canonicalize(), output.canonicalize())
        && a == b
    {
        return Err(TokenizeError::SameFile {
            path: output.to_path_buf(),
        });
    }
    let werr = |problem: String| TokenizeError::Write {
        path: output.to_path_buf(),
        problem,
    };
    let mut reader = ingest::open(input, schema, Layout::Raw, ingest::DEFAULT_BATCH_ROWS)?;
    let out_schema = file_schema(schema, out_format);
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = output.with_file_name(format!(".{name}.partial"));
    let mut partial = Partial(Some(tmp.clone()));
    let file = File::create(&tmp).map_err(|e| werr(e.to_string()))?;
    let buf = BufWriter::with_capacity(1 << 20, file);
    let mut sink = match out_format {
        FileFormat::Csv => Sink::Csv(
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(buf),
        ),
        FileFormat::Parquet => Sink::Parquet(
            ArrowWriter::try_new(buf, out_schema.clone(), Some(parquet_properties()))
                .map_err(|e| werr(e.to_string()))?,
        ),
    };
    let mut rejects = BTreeMap::new();
    let mut reasons = ReasonCounts::default();
    let mut written = 0u64;
    for batch in reader.by_ref() {
        let batch = batch?;
        for r in &batch.rejects {
            *rejects.entry(r.reason.clone()).or_insert(0) += 1;
        }
        let id = identify_with(&batch, schema, Layout::Raw, tokenizer, today, true).map_err(
            |source| TokenizeError::Identify {
                path: input.path.clone(),
                source,
            },
        )?;
        reasons.add(&id.reason_counts());
        let out = tokenized_batch(
            schema,
            &out_schema,
            out_format,
            &batch,
            &id,
            tokenizer.key_id(),
        )
        .map_err(|e| werr(e.to_string()))?;
        written += out.num_rows() as u64;
        sink.write(&out).map_err(werr)?;
    }
    let stats = reader.finish()?;
    sink.close().map_err(werr)?;
    std::fs::rename(&tmp, output).map_err(|e| werr(e.to_string()))?;
    partial.0 = None;
    Ok(TokenizeSummary {
        input: stats,
        output: output.to_path_buf(),
        rows_written: written,
        rejects,
        reasons,
        key_id: tokenizer.key_id().to_string(),
    })
}
