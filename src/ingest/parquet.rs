//! Parquet sources: columns found by name, read only the ones the layout needs, in
//! batches. Types are accepted where they can hold the schema's values without loss
//! (e.g. any integer for an `int`, a dictionary-encoded string for a `code`); anything
//! else is an error naming the file and column, so a drifted export fails loudly.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int64Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::layout::ColumnKind;
use super::parse::Cell;
use super::{Assembler, IngestError, LayoutColumn, io_err, match_header};

pub(crate) struct ParquetSource {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    /// Per layout column: its name in the file and how to convert it.
    plan: Vec<Option<(String, Conv)>>,
    /// Rows the footer declares.
    pub(crate) rows: usize,
}

/// How a file column is turned into cells.
#[derive(Clone, Copy, Debug)]
enum Conv {
    Text,
    Date,
    Int,
    Dec,
    Bin,
}

fn is_text(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

fn is_int(dt: &DataType) -> bool {
    dt.is_integer()
}

/// How a file column of type `found` feeds a layout column, if it can.
fn conversion(col: &LayoutColumn, identity: bool, found: &DataType) -> Option<Conv> {
    if is_text(found) {
        return Some(Conv::Text);
    }
    match &col.data_type {
        // Identity inputs are strings in the schema, but an export may type them: an SSN
        // as an integer (leading zeros are restored by the normalizer), a DOB as a date.
        DataType::Utf8 if identity => match found {
            t if is_int(t) => Some(Conv::Text),
            DataType::Date32 | DataType::Date64 => Some(Conv::Text),
            _ => None,
        },
        DataType::Date32 => matches!(
            found,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
        )
        .then_some(Conv::Date),
        DataType::Int64 | DataType::Int8 => {
            (is_int(found) || matches!(found, DataType::Boolean)).then_some(Conv::Int)
        }
        DataType::Decimal128(_, _) => match found {
            DataType::Decimal128(_, s) | DataType::Decimal256(_, s) if *s <= 2 => Some(Conv::Dec),
            t if is_int(t) => Some(Conv::Dec),
            _ => None,
        },
        DataType::FixedSizeBinary(n) => (matches!(found, DataType::FixedSizeBinary(m) if m == n)
            || matches!(
                found,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            ))
        .then_some(Conv::Bin),
        _ => None,
    }
}

fn pq_err(path: &Path, e: impl std::fmt::Display) -> IngestError {
    IngestError::Parquet {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

impl ParquetSource {
    pub(crate) fn open(
        path: &Path,
        cols: &[LayoutColumn],
        batch_rows: usize,
        identity: &[bool],
    ) -> Result<ParquetSource, IngestError> {
        let file = File::open(path).map_err(io_err(path))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| pq_err(path, e))?;
        let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let fields = builder.schema().fields().clone();
        let header: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        let map = match_header(path, cols, &header)?;
        let mut plan = Vec::with_capacity(cols.len());
        let mut roots = Vec::new();
        for ((c, found), &ident) in cols.iter().zip(&map).zip(identity) {
            let Some(j) = *found else {
                plan.push(None);
                continue;
            };
            let dt = fields[j].data_type();
            let conv = conversion(c, ident, dt).ok_or_else(|| IngestError::WrongType {
                path: path.to_path_buf(),
                column: c.name.clone(),
                found: dt.to_string(),
                expected: c.data_type.to_string(),
            })?;
            roots.push(j);
            plan.push(Some((fields[j].name().clone(), conv)));
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_rows)
            .build()
            .map_err(|e| pq_err(path, e))?;
        Ok(ParquetSource {
            path: path.to_path_buf(),
            reader,
            plan,
            rows,
        })
    }

    /// Reads one file batch into `asm`; `Ok(false)` once the file is exhausted.
    pub(crate) fn read(
        &mut self,
        asm: &mut Assembler,
        next_row: &mut u64,
    ) -> Result<bool, IngestError> {
        let Some(batch) = self.reader.next() else {
            return Ok(false);
        };
        let batch = batch.map_err(|e| pq_err(&self.path, e))?;
        let arrays = self.convert(&batch)?;
        for r in 0..batch.num_rows() {
            *next_row += 1;
            for (i, a) in arrays.iter().enumerate() {
                asm.field(i, cell(a, r));
            }
            asm.end_row(*next_row);
        }
        Ok(true)
    }

    fn convert(&self, batch: &RecordBatch) -> Result<Vec<Col>, IngestError> {
        let path = &self.path;
        self.plan
            .iter()
            .map(|p| {
                let Some((name, conv)) = p else {
                    return Ok(Col::Missing);
                };
                let a = batch
                    .column_by_name(name)
                    .ok_or_else(|| pq_err(path, format!("column `{name}` vanished")))?;
                let to = |dt: &DataType| {
                    cast(a, dt).map_err(|e| pq_err(path, format!("column `{name}`: {e}")))
                };
                Ok(match conv {
                    Conv::Text => Col::Text(to(&DataType::Utf8)?),
                    Conv::Date => Col::Date(to(&DataType::Date32)?),
                    Conv::Int => Col::Int(to(&DataType::Int64)?),
                    Conv::Dec => Col::Dec(to(&DataType::Decimal128(38, 2))?),
                    Conv::Bin => match a.data_type() {
                        DataType::FixedSizeBinary(_) => Col::Fixed(a.clone()),
                        _ => Col::Bin(to(&DataType::Binary)?),
                    },
                })
            })
            .collect()
    }
}

enum Col {
    Missing,
    Text(ArrayRef),
    Date(ArrayRef),
    Int(ArrayRef),
    Dec(ArrayRef),
    Fixed(ArrayRef),
    Bin(ArrayRef),
}

#[inline]
fn cell(c: &Col, r: usize) -> Cell<'_> {
    match c {
        Col::Missing => Cell::Null,
        Col::Text(a) if a.is_valid(r) => {
            let a: &StringArray = a.as_string();
            Cell::Text(a.value(r))
        }
        Col::Date(a) if a.is_valid(r) => Cell::Date(a.as_primitive::<Date32Type>().value(r)),
        Col::Int(a) if a.is_valid(r) => Cell::Int(a.as_primitive::<Int64Type>().value(r)),
        Col::Dec(a) if a.is_valid(r) => Cell::Dec(a.as_primitive::<Decimal128Type>().value(r)),
        Col::Fixed(a) if a.is_valid(r) => Cell::Bin(a.as_fixed_size_binary().value(r)),
        Col::Bin(a) if a.is_valid(r) => Cell::Bin(a.as_binary::<i32>().value(r)),
        _ => Cell::Null,
    }
}

/// Whether the layout column is an identity input of the schema.
pub(crate) fn identity_flags(
    schema: &crate::schema::SourceSchema,
    cols: &[LayoutColumn],
) -> Vec<bool> {
    cols.iter()
        .map(|c| matches!(c.kind, ColumnKind::Schema(i) if schema.columns[i].identity.is_some()))
        .collect()
}
