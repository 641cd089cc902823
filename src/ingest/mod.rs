//! Reading source files: CSV or Parquet, raw or tokenized, streamed in typed batches.
//!
//! A source file is read in batches of a fixed number of records so that a 20-million-row
//! wage file never sits in memory. Each record is either **accepted** into a typed Arrow
//! batch in the layout's schema ([`layout::arrow_schema`]) or **rejected** with a stable
//! reason code, its row number and column, so that for every file
//! `rows_read = rows_accepted + rows_rejected`. Problems with the whole file (a missing
//! required column, a column of the wrong type, an unreadable file) fail up front.
//!
//! What ingest judges: required values present, dates / integers / decimals / flags that
//! parse, codes in the schema's `allowed` list, well-formed year-quarters and service lists,
//! and exact duplicate rows. What it does not judge: identity values (SSN, names, date of
//! birth, ZIP, sex); `identity::identify` does, because a bad SSN still leaves a usable
//! name+DOB, so such a row is not a reject.
//!
//! Nothing here puts a value from the file into an error, a log line or a reject reason:
//! those name the file, row and column only.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Builder, Decimal128Builder,
    FixedSizeBinaryBuilder, Int8Builder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, SchemaRef};
use sha2::{Digest, Sha256};

use crate::identity::ssn::Last4;
use crate::schema::{IdentityRole, SourceSchema};

mod csv;
pub mod layout;
mod parquet;
pub(crate) mod parse;
mod rowset;

pub use layout::{Layout, LayoutColumn};

use parse::{Cell, Check, Parsed, RowHash};
use rowset::RowSet;

/// Records per batch when the caller has no reason to choose: large enough to amortize
/// per-batch work, small enough (a few MB for the wage file) to keep memory flat.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// Reject reason of a row that carries none of its schema's `identified_by` sets: no
/// exact or probabilistic pass could link it, so keeping it would only hide it in the
/// unlinked count.
pub const NO_IDENTIFIER: &str = "no_identifier";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Parquet,
}

impl FileFormat {
    /// The format a file name's extension says (`.csv`, `.parquet` / `.pq`), any case.
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileFormat::Csv),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

/// A file to read and the format to read it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub format: FileFormat,
}

impl SourceFile {
    /// A file whose format is given by its extension.
    pub fn new(path: impl Into<PathBuf>) -> Result<SourceFile, IngestError> {
        let path = path.into();
        let format = FileFormat::from_path(&path)
            .ok_or_else(|| IngestError::UnknownFormat { path: path.clone() })?;
        Ok(SourceFile { path, format })
    }
}

/// How a CSV file's bytes were decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark. Parquet files are always UTF-8.
    Utf8,
    /// Not valid UTF-8, so decoded as Windows-1252 (a superset of ISO-8859-1's printable
    /// characters): what older agency systems and spreadsheet exports write.
    Latin1,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Latin1 => "windows-1252",
        }
    }
}

/// A record that was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// 1-based data row (the header is not counted; a quoted line break does not start a
    /// new row).
    pub row: u64,
    /// Stable snake_case reason code, e.g. `bad_date`, `missing_required`, `duplicate_row`.
    pub reason: String,
    /// The column at fault, where one is.
    pub column: Option<String>,
    /// The record's own id (raw layout), so staff can find it; secure zone only.
    pub record_id: Option<String>,
    /// The last four SSN digits, where the record has at least four; secure zone only.
    pub ssn_last4: Option<String>,
}

/// One batch of a source file.
#[derive(Clone, Debug)]
pub struct IngestBatch {
    /// Accepted rows only, in the layout's Arrow schema.
    pub batch: RecordBatch,
    /// The source row number of each accepted row.
    pub rows: Vec<u64>,
    pub rejects: Vec<Reject>,
}

/// What was read from one file; the input guard rails compare it across runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStats {
    pub path: PathBuf,
    pub format: FileFormat,
    pub encoding: Encoding,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unknown file format (expected a .csv or .parquet extension)", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}: the file has no header row", path.display())]
    NoHeader { path: PathBuf },
    #[error("{}: required column `{column}` is missing", path.display())]
    MissingColumn { path: PathBuf, column: String },
    #[error("{}: column `{column}` appears more than once", path.display())]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("{}: column `{column}` is of type {found}; expected {expected}", path.display())]
    WrongType {
        path: PathBuf,
        column: String,
        found: String,
        expected: String,
    },
    #[error("{}: row {row}: cannot read the CSV: {problem}", path.display())]
    Csv {
        path: PathBuf,
        row: u64,
        problem: String,
    },
    #[error("{}: cannot read the Parquet file: {problem}", path.display())]
    Parquet { path: PathBuf, problem: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SHA-256 of a whole file, hex.
pub fn sha256_file(path: &Path) -> Result<String, IngestError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Opens a source file for reading in the layout of `schema`.
///
/// Fails, naming file and column, when a required column is missing, a Parquet column
/// has a type that cannot hold the schema's values, or the file cannot be opened. Extra
/// columns are ignored and listed in a warning. The file's SHA-256 is computed on a
/// second thread while the batches are read.
pub fn open(
    file: &SourceFile,
    schema: &SourceSchema,
    layout: Layout,
    batch_rows: usize,
) -> Result<SourceReader, IngestError> {
    let cols = layout::columns(schema, layout);
    let batch_rows = batch_rows.max(1);
    // Rows the file says it holds (Parquet footers do; CSV is not counted ahead).
    let mut rows_hint = 0;
    let (inner, encoding) = match file.format {
        FileFormat::Csv => {
            let (r, enc) = csv::CsvSource::open(&file.path, &cols, batch_rows)?;
            (Inner::Csv(Box::new(r)), enc)
        }
        FileFormat::Parquet => {
            let identity = parquet::identity_flags(schema, &cols);
            let r = parquet::ParquetSource::open(&file.path, &cols, batch_rows, &identity)?;
            rows_hint = r.rows;
            (Inner::Parquet(Box::new(r)), Encoding::Utf8)
        }
    };
    let path = file.path.clone();
    let sha = std::thread::spawn(move || sha256_file(&path));
    let mut asm = Assembler::new(schema, layout, cols, batch_rows);
    // Sizing the duplicate-row set once: growing it to 20 million wage rows rehashes it
    // a dozen times and briefly holds the old and the new table (about 800 MB together).
    asm.seen.reserve(rows_hint);
    Ok(SourceReader {
        file: file.clone(),
        encoding,
        inner,
        asm,
        batch_rows,
        next_row: 0,
        done: false,
        sha: Some(sha),
        stats: (0, 0),
    })
}

enum Inner {
    Csv(Box<csv::CsvSource>),
    Parquet(Box<parquet::ParquetSource>),
}

/// A source file being read; iterate for batches, then call [`SourceReader::finish`].
pub struct SourceReader {
    file: SourceFile,
    encoding: Encoding,
    inner: Inner,
    asm: Assembler,
    batch_rows: usize,
    next_row: u64,
    done: bool,
    sha: Option<JoinHandle<Result<String, IngestError>>>,
    /// (accepted, rejected) so far.
    stats: (u64, u64),
}

impl SourceReader {
    /// The Arrow schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.asm.schema.clone()
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The file's row count when its format records one (Parquet), so that what is
    /// collected row by row can be sized once: a vector grown by doubling copies itself
    /// and faults in twice its final size.
    pub fn rows_hint(&self) -> Option<usize> {
        match &self.inner {
            Inner::Csv(_) => None,
            Inner::Parquet(p) => Some(p.rows),
        }
    }

    /// Reads what is left (if anything) and returns the file's statistics.
    pub fn finish(mut self) -> Result<FileStats, IngestError> {
        for b in self.by_ref() {
            b?;
        }
        let sha = self
            .sha
            .take()
            .expect("finish consumes the reader")
            .join()
            .map_err(|_| IngestError::Io {
                path: self.file.path.clone(),
                source: std::io::Error::other("the hashing thread panicked"),
            })??;
        Ok(FileStats {
            path: self.file.path.clone(),
            format: self.file.format,
            encoding: self.encoding,
            sha256: sha,
            rows_read: self.next_row,
            rows_accepted: self.stats.0,
            rows_rejected: self.stats.1,
        })
    }

    fn read_batch(&mut self) -> Result<Option<IngestBatch>, IngestError> {
        let start = self.next_row;
        let more = match &mut self.inner {
            Inner::Csv(r) => r.read(&mut self.asm, &mut self.next_row, self.batch_rows)?,
            Inner::Parquet(r) => r.read(&mut self.asm, &mut self.next_row)?,
        };
        if !more {
            self.done = true;
        }
        if self.next_row == start {
            return Ok(None);
        }
        let batch = self.asm.take().map_err(|e| IngestError::Parquet {
            path: self.file.path.clone(),
            problem: e.to_string(),
        })?;
        self.stats.0 += batch.rows.len() as u64;
        self.stats.1 += batch.rejects.len() as u64;
        Ok(Some(batch))
    }
}

impl Iterator for SourceReader {
    type Item = Result<IngestBatch, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.read_batch() {
                Ok(Some(b)) => return Some(Ok(b)),
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Bytes per string value a batch's string builders start with room for; a longer
/// average only costs a regrowth or two.
const STR_BYTES: usize = 12;

enum Builder {
    Str(StringBuilder),
    Date(Date32Builder),
    Int(Int64Builder),
    Flag(Int8Builder),
    Dec(Decimal128Builder),
    Tok(FixedSizeBinaryBuilder),
}

impl Builder {
    /// A builder with room for `rows` values. Arrow's builders give their buffers away
    /// on `finish` and would otherwise start every batch from nothing, doubling a dozen
    /// times on the way to a full batch (a seventh of the reader thread's time at twenty
    /// million wage rows).
    fn new(dt: &DataType, rows: usize) -> Builder {
        match dt {
            DataType::Date32 => Builder::Date(Date32Builder::with_capacity(rows)),
            DataType::Int64 => Builder::Int(Int64Builder::with_capacity(rows)),
            DataType::Int8 => Builder::Flag(Int8Builder::with_capacity(rows)),
            DataType::Decimal128(p, s) => Builder::Dec(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(*p, *s)
                    .expect("the schema's decimal type is valid"),
            ),
            DataType::FixedSizeBinary(n) => {
                Builder::Tok(FixedSizeBinaryBuilder::with_capacity(rows, *n))
            }
            _ => Builder::Str(StringBuilder::with_capacity(rows, rows * STR_BYTES)),
        }
    }

    fn append(&mut self, p: &Parsed, text: &str) {
        match (self, p) {
            (Builder::Str(b), Parsed::Str) => b.append_value(text),
            (Builder::Str(b), _) => b.append_null(),
            (Builder::Date(b), Parsed::Date(d)) => b.append_value(*d),
            (Builder::Date(b), _) => b.append_null(),
            (Builder::Int(b), Parsed::Int(v)) => b.append_value(*v),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Flag(b), Parsed::Flag(v)) => b.append_value(*v),
            (Builder::Flag(b), _) => b.append_null(),
            (Builder::Dec(b), Parsed::Dec(v)) => b.append_value(*v),
            (Builder::Dec(b), _) => b.append_null(),
            (Builder::Tok(b), Parsed::Bin(n, t)) => {
                b.append_value(&t[..*n as usize])
                    .expect("the checked length is the column's");
            }
            (Builder::Tok(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Flag(b) => Arc::new(b.finish()),
            Builder::Dec(b) => Arc::new(b.finish()),
            Builder::Tok(b) => Arc::new(b.finish()),
        }
    }
}

/// Checks records column by column and collects the accepted ones into builders; shared
/// by both readers so CSV and Parquet of the same data give the same batches.
pub(crate) struct Assembler {
    schema: SchemaRef,
    cols: Vec<LayoutColumn>,
    checks: Vec<Check>,
    builders: Vec<Builder>,
    /// The capacity each batch's builders start with.
    batch_rows: usize,
    parsed: Vec<Parsed>,
    scratch: Vec<String>,
    seen: RowSet,
    /// The hashes of the batch's rows that passed their checks, in row order: they meet
    /// the duplicate-row set together, when the batch is taken (see [`rowset`]).
    pending: Vec<u128>,
    /// Per pending hash, whether it was new; scratch for [`Assembler::take`].
    fresh: Vec<bool>,
    rows: Vec<u64>,
    rejects: Vec<Reject>,
    /// Layout positions of the record-id and SSN columns (raw layout), for rejects.
    record_id: Option<usize>,
    ssn: Option<usize>,
    /// The first problem of the record being checked: reason and layout column.
    fault: Option<(&'static str, usize)>,
    /// The schema's `identified_by` sets as layout positions (raw layout only: a
    /// tokenized row's identifiers were judged by the partner's `xmatch tokenize`).
    identified_by: Vec<Vec<usize>>,
}

impl Assembler {
    fn new(
        schema: &SourceSchema,
        layout: Layout,
        cols: Vec<LayoutColumn>,
        batch_rows: usize,
    ) -> Assembler {
        let checks = cols.iter().map(|c| Check::of(c, schema)).collect();
        // Room for a default batch at most: a caller's much larger batch only regrows.
        let batch_rows = batch_rows.min(DEFAULT_BATCH_ROWS);
        let builders = cols
            .iter()
            .map(|c| Builder::new(&c.data_type, batch_rows))
            .collect();
        let pos = |role| {
            let name = &schema.identity_column(role)?.name;
            cols.iter().position(|c| &c.name == name)
        };
        let (record_id, ssn) = match layout {
            Layout::Raw => (pos(IdentityRole::RecordId), pos(IdentityRole::Ssn)),
            Layout::Tokenized => (None, None),
        };
        let identified_by = match layout {
            Layout::Raw => schema
                .identified_by
                .iter()
                .map(|group| {
                    group
                        .iter()
                        // A column the layout lacks can never be present.
                        .map(|n| cols.iter().position(|c| &c.name == n).unwrap_or(usize::MAX))
                        .collect()
                })
                .collect(),
            Layout::Tokenized => Vec::new(),
        };
        Assembler {
            schema: layout::arrow_schema(schema, layout),
            parsed: vec![Parsed::Null; cols.len()],
            scratch: vec![String::new(); cols.len()],
            checks,
            builders,
            batch_rows,
            cols,
            seen: RowSet::default(),
            pending: Vec::new(),
            fresh: Vec::new(),
            rows: Vec::new(),
            rejects: Vec::new(),
            record_id,
            ssn,
            fault: None,
            identified_by,
        }
    }

    pub(crate) fn columns(&self) -> &[LayoutColumn] {
        &self.cols
    }

    /// Checks the value of layout column `i` of the current record. Call it for every
    /// column, in any order, then [`Assembler::end_row`].
    #[inline]
    pub(crate) fn field(&mut self, i: usize, cell: Cell<'_>) {
        let out = &mut self.scratch[i];
        out.clear();
        let p = match parse::parse_cell(&self.checks[i], cell, out) {
            Ok(Parsed::Null) if self.cols[i].required => Err("missing_required"),
            other => other,
        };
        match p {
            Ok(p) => self.parsed[i] = p,
            Err(reason) => {
                self.parsed[i] = Parsed::Null;
                if self.fault.is_none() {
                    self.fault = Some((reason, i));
                }
            }
        }
    }

    /// Accepts or rejects the record whose fields were just given. A record that passes
    /// its checks is kept; whether it repeats an earlier record is decided for the whole
    /// batch in [`Assembler::take`].
    pub(crate) fn end_row(&mut self, row: u64) {
        if self.fault.is_none() && !self.identifiable() {
            self.fault = Some((NO_IDENTIFIER, usize::MAX));
        }
        match self.fault.take() {
            None => {
                let mut h = RowHash::new();
                for (p, s) in self.parsed.iter().zip(&self.scratch) {
                    h.value(p, s);
                }
                self.pending.push(h.finish());
                for ((b, p), s) in self
                    .builders
                    .iter_mut()
                    .zip(&self.parsed)
                    .zip(&self.scratch)
                {
                    b.append(p, s);
                }
                self.rows.push(row);
            }
            Some((reason, col)) => {
                let column = self.cols.get(col).map(|c| c.name.clone());
                let reject = self.reject_info(row, reason, column);
                self.rejects.push(reject);
            }
        }
    }

    /// Whether the record carries one of the schema's `identified_by` sets in full.
    fn identifiable(&self) -> bool {
        self.identified_by.is_empty()
            || self.identified_by.iter().any(|g| {
                g.iter()
                    .all(|&i| self.parsed.get(i).is_some_and(|p| *p != Parsed::Null))
            })
    }

    /// A reject for a record whose columns were not (all) checked.
    pub(crate) fn push_reject(&mut self, row: u64, reason: &str) {
        self.fault = None;
        self.rejects.push(Reject {
            row,
            reason: reason.to_string(),
            column: None,
            record_id: None,
            ssn_last4: None,
        });
    }

    fn reject_info(&self, row: u64, reason: &str, column: Option<String>) -> Reject {
        let record_id = self
            .record_id
            .filter(|&i| self.parsed[i] == Parsed::Str)
            .map(|i| self.scratch[i].as_str());
        let ssn = self.ssn.map(|i| self.scratch[i].as_str());
        reject(row, reason, column, record_id, ssn)
    }

    fn take(&mut self) -> Result<IngestBatch, arrow::error::ArrowError> {
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .zip(&self.cols)
            .map(|(b, c)| std::mem::replace(b, Builder::new(&c.data_type, self.batch_rows)))
            .map(|mut b| b.finish())
            .collect();
        let mut batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        let mut rows = std::mem::take(&mut self.rows);
        let mut rejects = std::mem::take(&mut self.rejects);
        self.fresh.clear();
        self.seen.insert_all(&self.pending, &mut self.fresh);
        self.pending.clear();
        if self.fresh.contains(&false) {
            for (k, _) in self.fresh.iter().enumerate().filter(|(_, f)| !**f) {
                rejects.push(self.duplicate(&batch, k, rows[k]));
            }
            batch = filter_record_batch(&batch, &BooleanArray::from(self.fresh.clone()))?;
            let mut fresh = self.fresh.iter();
            rows.retain(|_| *fresh.next().expect("one flag per row"));
            // In row order, as if each record had been judged when it was read.
            rejects.sort_by_key(|r| r.row);
        }
        Ok(IngestBatch {
            batch,
            rows,
            rejects,
        })
    }

    /// The reject of the batch's `k`-th kept record, which repeats an earlier record.
    /// Its record id and SSN are read back from the batch, as the checks kept them.
    fn duplicate(&self, batch: &RecordBatch, k: usize, row: u64) -> Reject {
        let text = |col: Option<usize>| {
            col.and_then(|i| batch.column(i).as_string_opt::<i32>())
                .filter(|a| a.is_valid(k))
                .map(|a| a.value(k))
        };
        reject(
            row,
            "duplicate_row",
            None,
            text(self.record_id),
            text(self.ssn),
        )
    }
}

/// A reject that carries what staff need to find the record, and of the SSN only its
/// last four digits.
fn reject(
    row: u64,
    reason: &str,
    column: Option<String>,
    record_id: Option<&str>,
    ssn: Option<&str>,
) -> Reject {
    Reject {
        row,
        reason: reason.to_string(),
        column,
        record_id: record_id.map(str::to_string),
        ssn_last4: ssn.and_then(Last4::of).map(|l| l.to_string()),
    }
}

/// Matches a file's column names to the layout: exact after trimming and lower-casing,
/// so `SSN ` and `ssn` are the same column. Returns, per layout column, its position in
/// the file, and fails on a missing must-exist column or a repeated one.
pub(crate) fn match_header(
    path: &Path,
    cols: &[LayoutColumn],
    header: &[String],
) -> Result<Vec<Option<usize>>, IngestError> {
    let norm: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for (i, h) in norm.iter().enumerate() {
        if !h.is_empty() && norm[..i].contains(h) && cols.iter().any(|c| &c.name == h) {
            return Err(IngestError::DuplicateColumn {
                path: path.to_path_buf(),
                column: h.clone(),
            });
        }
    }
    let mut map = Vec::with_capacity(cols.len());
    let mut absent = Vec::new();
    for c in cols {
        let found = norm.iter().position(|h| h == &c.name);
        if found.is_none() {
            if c.must_exist {
                return Err(IngestError::MissingColumn {
                    path: path.to_path_buf(),
                    column: c.name.clone(),
                });
            }
            absent.push(c.name.as_str());
        }
        map.push(found);
    }
    let extra: Vec<&str> = norm
        .iter()
        .filter(|h| !cols.iter().any(|c| &c.name == *h))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        tracing::warn!(file = %path.display(), columns = ?extra, "ignoring columns the schema does not have");
    }
    if !absent.is_empty() {
        tracing::warn!(file = %path.display(), columns = ?absent, "optional columns are absent; reading them as empty");
    }
    Ok(map)
}
