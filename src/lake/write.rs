//! Turning batches into files: person ids taken out, types normalized, rows split by
//! partition value, bytes hashed as they are written.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use super::personset::PersonSetBuilder;
use super::{HIVE_DEFAULT_PARTITION, LakeError, fsx};
use crate::secure::SealWriter;

/// The writer properties of every Parquet file xmatch writes.
///
/// - zstd(1): measured best size/speed trade-off here (ENGINEERING.md).
/// - Chunk statistics: row-group min/max let DataFusion prune, and every reader knows them.
/// - No page index (neither column index nor offset index): arrow-rs issue 10316 reports
///   that files with page indexes written by parquet-rs ≥ 58.3 read as empty in
///   parquet-mr based readers (Spark, Trino, Hive). Chunk statistics plus a disabled offset
///   index keeps the footer to what every reader has understood for a decade.
pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("zstd level 1 is valid"),
        ))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .build()
}

/// A writer that hashes every byte on its way to the file, so the SHA-256 recorded in
/// lineage is of exactly what was written, without reading the file back.
pub(crate) struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Sha256,
}

impl HashingWriter {
    pub(crate) fn new(file: File) -> HashingWriter {
        HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
        }
    }

    /// Flushes, fsyncs and returns the hex SHA-256 of the bytes written.
    pub(crate) fn finish(self, path: &Path) -> Result<String, LakeError> {
        let file = self
            .inner
            .into_inner()
            .map_err(|e| fsx::io(path)(e.into_error()))?;
        file.sync_all().map_err(fsx::io(path))?;
        Ok(hex::encode(self.hasher.finalize()))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where a writer's bytes go: straight to the file (the de-identified zone), or sealed
/// first (the secure zone). Either way the hash is of the bytes on disk, so lineage
/// records the ciphertext's SHA-256 and `breach --file` finds a copy of the sealed file.
pub(crate) enum Sink {
    Plain(HashingWriter),
    // Boxed: the cipher state and chunk buffer make it far larger than the plain writer.
    Sealed(Box<SealWriter<HashingWriter>>),
}

impl Sink {
    fn finish(self, path: &Path) -> Result<String, LakeError> {
        match self {
            Sink::Plain(h) => h.finish(path),
            Sink::Sealed(s) => s.finish().map_err(fsx::io(path))?.finish(path),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Sealed(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Sealed(w) => w.flush(),
        }
    }
}

/// An open output file of either format.
pub(crate) enum FileWriter {
    Parquet(ArrowWriter<Sink>),
    Csv(arrow::csv::Writer<Sink>),
}

impl FileWriter {
    pub(crate) fn parquet(
        sink: Sink,
        schema: SchemaRef,
        path: &Path,
    ) -> Result<FileWriter, LakeError> {
        let w =
            ArrowWriter::try_new(sink, schema, Some(writer_properties())).map_err(|source| {
                LakeError::Parquet {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        Ok(FileWriter::Parquet(w))
    }

    pub(crate) fn csv(sink: Sink) -> FileWriter {
        FileWriter::Csv(
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(sink),
        )
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch, path: &Path) -> Result<(), LakeError> {
        match self {
            FileWriter::Parquet(w) => w.write(batch).map_err(|source| LakeError::Parquet {
                path: path.to_path_buf(),
                source,
            }),
            FileWriter::Csv(w) => w.write(batch).map_err(|source| LakeError::Arrow {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the footer, fsyncs, and returns the file's SHA-256.
    pub(crate) fn finish(self, path: &Path) -> Result<String, LakeError> {
        let inner = match self {
            FileWriter::Parquet(w) => w.into_inner().map_err(|source| LakeError::Parquet {
                path: path.to_path_buf(),
                source,
            })?,
            FileWriter::Csv(w) => w.into_inner(),
        };
        inner.finish(path)
    }
}

/// One output file being written, with what lineage needs to know about it.
pub(crate) struct OpenFile {
    /// Relative to the zone's root (the snapshot, or the run's secure directory).
    pub(crate) relative: PathBuf,
    pub(crate) absolute: PathBuf,
    pub(crate) writer: FileWriter,
    pub(crate) rows: u64,
    pub(crate) persons: PersonSetBuilder,
}

/// A batch ready to write: person ids taken out, the partition column (if any) split off.
pub(crate) struct Prepared {
    /// The batch without the person-id and partition columns, types normalized.
    pub(crate) batch: RecordBatch,
    pub(crate) person_ids: Option<Int64Array>,
    /// When partitioned: the distinct directory values (Hive-escaped) and each row's
    /// index into them.
    pub(crate) partition_values: Option<(Vec<String>, Vec<u32>)>,
}

/// Removes the person-id and partition columns and normalizes types for every reader:
/// timestamps to microseconds (Spark rejects nanoseconds), `Date64` to `Date32`.
pub(crate) fn prepare(
    batch: &RecordBatch,
    dataset: &str,
    person_id_column: Option<&str>,
    partition: Option<&str>,
) -> Result<Prepared, LakeError> {
    let schema = batch.schema();
    let mut person_ids = None;
    if let Some(name) = person_id_column {
        let (idx, field) =
            schema
                .column_with_name(name)
                .ok_or_else(|| LakeError::PersonIdColumn {
                    dataset: dataset.to_string(),
                    column: name.to_string(),
                    problem: "is not among the batch's columns".into(),
                })?;
        if field.data_type() != &DataType::Int64 {
            return Err(LakeError::PersonIdColumn {
                dataset: dataset.to_string(),
                column: name.to_string(),
                problem: format!("must be Int64, not {}", field.data_type()),
            });
        }
        person_ids = Some(
            batch
                .column(idx)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("checked Int64")
                .clone(),
        );
    }
    let mut partition_values = None;
    if let Some(name) = partition {
        let idx = schema
            .index_of(name)
            .map_err(|_| LakeError::PartitionColumn {
                dataset: dataset.to_string(),
                column: name.to_string(),
                problem: "is not among the batch's columns".into(),
            })?;
        partition_values = Some(partition_groups(batch.column(idx), dataset, name)?);
    }

    let mut fields: Vec<Field> = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name().as_str();
        if Some(name) == person_id_column || Some(name) == partition {
            continue;
        }
        let target = match field.data_type() {
            DataType::Timestamp(unit, tz) if *unit != TimeUnit::Microsecond => {
                Some(DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))
            }
            DataType::Date64 => Some(DataType::Date32),
            _ => None,
        };
        match target {
            Some(t) => {
                let cast = cast(column, &t).map_err(|source| LakeError::Convert {
                    dataset: dataset.to_string(),
                    column: name.to_string(),
                    source,
                })?;
                fields.push(field.as_ref().clone().with_data_type(t));
                columns.push(cast);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batch = RecordBatch::try_new_with_options(
        out_schema,
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|source| LakeError::Convert {
        dataset: dataset.to_string(),
        column: "(batch)".into(),
        source,
    })?;
    Ok(Prepared {
        batch,
        person_ids,
        partition_values,
    })
}

/// The rows of `prepared` grouped by partition value, each group as its own batch.
pub(crate) fn split_by_partition(
    prepared: Prepared,
    dataset: &str,
) -> Result<Vec<(String, RecordBatch, Option<Int64Array>)>, LakeError> {
    let Some((values, row_groups)) = prepared.partition_values else {
        return Ok(vec![(String::new(), prepared.batch, prepared.person_ids)]);
    };
    if row_groups.is_empty() {
        return Ok(Vec::new());
    }
    // The common case (a batch from one partition) costs no copying.
    if values.len() == 1 {
        let value = values.into_iter().next().expect("non-empty");
        return Ok(vec![(value, prepared.batch, prepared.person_ids)]);
    }
    let mut groups: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (row, &g) in row_groups.iter().enumerate() {
        groups
            .entry(values[g as usize].as_str())
            .or_default()
            .push(row as u32);
    }
    let err = |source| LakeError::Convert {
        dataset: dataset.to_string(),
        column: "(partition split)".into(),
        source,
    };
    let mut out = Vec::with_capacity(groups.len());
    for (value, rows) in groups {
        let indices = UInt32Array::from(rows);
        let columns = prepared
            .batch
            .columns()
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let batch = RecordBatch::try_new_with_options(
            prepared.batch.schema(),
            columns,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(indices.len())),
        )
        .map_err(err)?;
        let ids = match &prepared.person_ids {
            Some(ids) => Some(
                take(ids, &indices, None)
                    .map_err(err)?
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("take keeps the type")
                    .clone(),
            ),
            None => None,
        };
        out.push((value.to_string(), batch, ids));
    }
    Ok(out)
}

/// Each row's partition value as a directory name component: the value's display form,
/// Hive-escaped; null or empty → `__HIVE_DEFAULT_PARTITION__` (Hive's convention).
/// Returns the distinct values and each row's index into them. Formats into one reused
/// buffer, so a 20 M-row file with a handful of partitions allocates a handful of strings.
fn partition_groups(
    column: &ArrayRef,
    dataset: &str,
    name: &str,
) -> Result<(Vec<String>, Vec<u32>), LakeError> {
    use std::fmt::Write as _;
    let opts = FormatOptions::default();
    let formatter =
        ArrayFormatter::try_new(column.as_ref(), &opts).map_err(|source| LakeError::Convert {
            dataset: dataset.to_string(),
            column: name.to_string(),
            source,
        })?;
    let mut distinct: Vec<String> = Vec::new();
    let mut rows = Vec::with_capacity(column.len());
    let mut buf = String::new();
    for row in 0..column.len() {
        buf.clear();
        if !column.is_null(row) {
            write!(buf, "{}", formatter.value(row)).map_err(|_| LakeError::Convert {
                dataset: dataset.to_string(),
                column: name.to_string(),
                source: arrow::error::ArrowError::ComputeError(format!(
                    "cannot format the value of row {row}"
                )),
            })?;
        }
        let key: std::borrow::Cow<'_, str> = if buf.is_empty() {
            HIVE_DEFAULT_PARTITION.into()
        } else if buf.chars().any(escaped) {
            hive_escape(&buf).into()
        } else {
            buf.as_str().into()
        };
        // Partitions are few and rows come in runs: check the last value, then scan.
        let idx = match rows.last() {
            Some(&prev) if distinct[prev as usize] == *key => prev as usize,
            _ => match distinct.iter().position(|d| *d == *key) {
                Some(i) => i,
                None => {
                    distinct.push(key.into_owned());
                    distinct.len() - 1
                }
            },
        };
        rows.push(idx as u32);
    }
    Ok((distinct, rows))
}

fn escaped(c: char) -> bool {
    c.is_ascii_control()
        || matches!(
            c,
            '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
        )
}

/// Hive's path escaping (FileUtils.escapePathName): control characters and
/// `"#%'*/:=?\{[]^` and DEL become `%XX`. DataFusion, Spark and DuckDB percent-decode it.
pub fn hive_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if escaped(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}
