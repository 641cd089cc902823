//! Writing query and report results: a readable table for a terminal, CSV and JSON for
//! files and programs, Parquet for further analysis.

use std::io::Write;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{ReportError, one_line};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

impl OutputFormat {
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s {
            "table" => Some(OutputFormat::Table),
            "csv" => Some(OutputFormat::Csv),
            "json" => Some(OutputFormat::Json),
            "parquet" => Some(OutputFormat::Parquet),
            _ => None,
        }
    }
}

/// Writes `batches` in `format` to `out` (stdout when `None`). Parquet is binary and
/// needs a file.
pub fn write_result(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
    out: Option<&Path>,
) -> Result<(), ReportError> {
    match (format, out) {
        (OutputFormat::Parquet, None) => Err(ReportError::Usage(
            "--format parquet writes a binary file: give --out FILE".into(),
        )),
        (OutputFormat::Parquet, Some(path)) => write_parquet(schema, batches, path),
        (_, Some(path)) => {
            let mut buf = Vec::new();
            render(schema, batches, format, &mut buf)?;
            std::fs::write(path, buf).map_err(|source| ReportError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
        (_, None) => {
            let mut buf = Vec::new();
            render(schema, batches, format, &mut buf)?;
            std::io::stdout()
                .write_all(&buf)
                .map_err(|e| ReportError::Output(e.to_string()))
        }
    }
}

/// Renders table, CSV or JSON into `out`.
pub fn render(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
    out: &mut Vec<u8>,
) -> Result<(), ReportError> {
    match format {
        OutputFormat::Table => {
            let t =
                arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), batches)?;
            writeln!(out, "{t}").map_err(|e| ReportError::Output(e.to_string()))?;
        }
        OutputFormat::Csv => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                // The writer only writes a header with a first batch: write it ourselves.
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(out, "{}", names.join(","))
                    .map_err(|e| ReportError::Output(e.to_string()))?;
            } else {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut *out);
                for b in batches {
                    w.write(b)?;
                }
            }
        }
        OutputFormat::Json => {
            let rows = json_rows(batches)?;
            serde_json::to_writer_pretty(&mut *out, &rows)
                .map_err(|e| ReportError::Output(e.to_string()))?;
            out.push(b'\n');
        }
        OutputFormat::Parquet => {
            return Err(ReportError::Usage(
                "parquet output goes to a file, not a buffer".into(),
            ));
        }
    }
    Ok(())
}

/// Rows as JSON objects: numbers and booleans as JSON values, decimals as numbers,
/// dates and everything else as their display text, nulls as `null`.
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<serde_json::Value>, ReportError> {
    let mut rows = Vec::new();
    for b in batches {
        let schema = b.schema();
        let mut cols: Vec<Vec<serde_json::Value>> = Vec::new();
        for (field, array) in schema.fields().iter().zip(b.columns()) {
            cols.push(json_column(array, field.data_type())?);
        }
        for r in 0..b.num_rows() {
            let mut obj = serde_json::Map::new();
            for (field, col) in schema.fields().iter().zip(&cols) {
                obj.insert(field.name().clone(), col[r].clone());
            }
            rows.push(serde_json::Value::Object(obj));
        }
    }
    Ok(rows)
}

fn json_column(
    array: &arrow::array::ArrayRef,
    ty: &DataType,
) -> Result<Vec<serde_json::Value>, ReportError> {
    use serde_json::Value;
    let n = array.len();
    Ok(match ty {
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Bool(a.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            let a = cast(array, &DataType::Int64)?;
            let a = a.as_primitive::<arrow::datatypes::Int64Type>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::from(a.value(i))
                    }
                })
                .collect()
        }
        DataType::UInt64 => {
            let a = array.as_primitive::<arrow::datatypes::UInt64Type>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::from(a.value(i))
                    }
                })
                .collect()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            let a = cast(array, &DataType::Float64)?;
            let a = a.as_primitive::<arrow::datatypes::Float64Type>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        serde_json::Number::from_f64(a.value(i))
                            .map(Value::Number)
                            .unwrap_or(Value::Null)
                    }
                })
                .collect()
        }
        _ => {
            let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            (0..n)
                .map(|i| {
                    if array.is_null(i) {
                        Value::Null
                    } else {
                        Value::String(f.value(i).to_string())
                    }
                })
                .collect()
        }
    })
}

fn write_parquet(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    path: &Path,
) -> Result<(), ReportError> {
    let file = std::fs::File::create(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let pq = |e: parquet::errors::ParquetError| {
        ReportError::Output(one_line(&format!("{}: {e}", path.display())))
    };
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).map_err(pq)?;
    for b in batches {
        w.write(b).map_err(pq)?;
    }
    w.close().map_err(pq)?;
    Ok(())
}
