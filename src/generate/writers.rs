//! Output files: CSV (RFC 4180 quoting, `\n` line ends) and Parquet (zstd level 1,
//! column-chunk statistics), each written under a temporary name and renamed only when the
//! whole run has succeeded.
//!
//! CSV rows are encoded by the generating threads (one buffer per chunk), so the writer
//! only copies bytes; a hand-rolled encoder is used because it only needs the five Arrow
//! types the schemas map to and is several times faster than a general formatter.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, Date32Array, Decimal128Array, Int8Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::GenerateError;
use super::util::civil_from_days;

/// Which formats to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
    #[default]
    Both,
}

impl Format {
    pub fn csv(self) -> bool {
        matches!(self, Format::Csv | Format::Both)
    }
    pub fn parquet(self) -> bool {
        matches!(self, Format::Parquet | Format::Both)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Both => "both",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            "both" => Ok(Format::Both),
            other => Err(format!("unknown format `{other}` (csv, parquet or both)")),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Files written under temporary names. Dropping the set without `commit` deletes them,
/// so a failed run leaves nothing half-written under a final name.
#[derive(Default)]
pub(crate) struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Staged {
    /// A temporary path in the same directory (so the rename is atomic) for `dest`.
    pub(crate) fn stage(&mut self, dir: &Path, file_name: &str) -> PathBuf {
        let tmp = dir.join(format!(".{file_name}.partial"));
        self.files.push((tmp.clone(), dir.join(file_name)));
        tmp
    }

    pub(crate) fn commit(mut self) -> Result<Vec<PathBuf>, GenerateError> {
        let mut done = Vec::with_capacity(self.files.len());
        for (tmp, dest) in &self.files {
            std::fs::rename(tmp, dest).map_err(io_err(dest))?;
            done.push(dest.clone());
        }
        self.committed = true;
        Ok(done)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            for (tmp, _) in &self.files {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}

/// One logical table (a source or the truth file) in one or both formats.
pub(crate) struct TableWriter {
    csv: Option<(PathBuf, BufWriter<File>)>,
    parquet: Option<(PathBuf, ArrowWriter<BufWriter<File>>)>,
    pub rows: u64,
    pub files: Vec<String>,
}

fn properties() -> Result<WriterProperties, GenerateError> {
    let level = ZstdLevel::try_new(1).map_err(|source| GenerateError::Parquet {
        path: PathBuf::new(),
        source,
    })?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build())
}

impl TableWriter {
    pub(crate) fn create(
        staged: &mut Staged,
        dir: &Path,
        stem: &str,
        schema: SchemaRef,
        format: Format,
    ) -> Result<TableWriter, GenerateError> {
        let mut files = Vec::new();
        let csv = if format.csv() {
            let name = format!("{stem}.csv");
            let path = staged.stage(dir, &name);
            let file = File::create(&path).map_err(io_err(&path))?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let mut line = Vec::new();
            for (i, h) in header.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                push_field(&mut line, h);
            }
            line.push(b'\n');
            w.write_all(&line).map_err(io_err(&path))?;
            files.push(name);
            Some((path, w))
        } else {
            None
        };
        let parquet = if format.parquet() {
            let name = format!("{stem}.parquet");
            let path = staged.stage(dir, &name);
            let file = File::create(&path).map_err(io_err(&path))?;
            let w = BufWriter::with_capacity(1 << 20, file);
            let writer =
                ArrowWriter::try_new(w, schema, Some(properties()?)).map_err(|source| {
                    GenerateError::Parquet {
                        path: path.clone(),
                        source,
                    }
                })?;
            files.push(name);
            Some((path, writer))
        } else {
            None
        };
        Ok(TableWriter {
            csv,
            parquet,
            rows: 0,
            files,
        })
    }

    /// Appends a batch; `csv` is the batch already encoded (data rows only).
    pub(crate) fn write(
        &mut self,
        batch: &RecordBatch,
        csv: Option<&[u8]>,
    ) -> Result<(), GenerateError> {
        if let Some((path, w)) = &mut self.csv {
            match csv {
                Some(bytes) => w.write_all(bytes),
                None => w.write_all(&encode_csv(batch)),
            }
            .map_err(io_err(path))?;
        }
        if let Some((path, w)) = &mut self.parquet {
            w.write(batch).map_err(|source| GenerateError::Parquet {
                path: path.clone(),
                source,
            })?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<(), GenerateError> {
        if let Some((path, mut w)) = self.csv {
            w.flush().map_err(io_err(&path))?;
        }
        if let Some((path, w)) = self.parquet {
            let mut inner = w.into_inner().map_err(|source| GenerateError::Parquet {
                path: path.clone(),
                source,
            })?;
            inner.flush().map_err(io_err(&path))?;
        }
        Ok(())
    }
}

/// Writes a field, quoting it when it holds a comma, quote or line break (RFC 4180).
fn push_field(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn push_date(out: &mut Vec<u8>, day: i32) {
    let (y, m, d) = civil_from_days(day);
    let y = y as u32;
    out.extend_from_slice(&[
        b'0' + (y / 1000 % 10) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (d / 10) as u8,
        b'0' + (d % 10) as u8,
    ]);
}

fn push_decimal(out: &mut Vec<u8>, v: i128, scale: u32) {
    let mut buf = itoa::Buffer::new();
    if v < 0 {
        out.push(b'-');
    }
    let v = v.unsigned_abs();
    let p = 10u128.pow(scale);
    out.extend_from_slice(buf.format(v / p).as_bytes());
    if scale > 0 {
        out.push(b'.');
        let frac = buf.format(v % p);
        for _ in frac.len()..scale as usize {
            out.push(b'0');
        }
        out.extend_from_slice(frac.as_bytes());
    }
}

enum ColRef<'a> {
    Str(&'a StringArray),
    Date(&'a Date32Array),
    I8(&'a Int8Array),
    I64(&'a Int64Array),
    Dec(&'a Decimal128Array, u32),
}

/// The batch's rows as CSV (no header). Nulls are empty fields; the generator never
/// writes empty strings, so CSV and Parquet hold the same values.
pub(crate) fn encode_csv(batch: &RecordBatch) -> Vec<u8> {
    let cols: Vec<ColRef> = batch
        .columns()
        .iter()
        .map(|a| {
            let any = a.as_any();
            match a.data_type() {
                DataType::Utf8 => ColRef::Str(any.downcast_ref().expect("utf8")),
                DataType::Date32 => ColRef::Date(any.downcast_ref().expect("date32")),
                DataType::Int8 => ColRef::I8(any.downcast_ref().expect("int8")),
                DataType::Int64 => ColRef::I64(any.downcast_ref().expect("int64")),
                DataType::Decimal128(_, s) => {
                    ColRef::Dec(any.downcast_ref().expect("decimal"), (*s).max(0) as u32)
                }
                // Columns::finish only builds the five types above.
                other => unreachable!("no CSV encoding for {other}"),
            }
        })
        .collect();
    let rows = batch.num_rows();
    let mut out = Vec::with_capacity(rows * cols.len() * 6);
    let mut buf = itoa::Buffer::new();
    for r in 0..rows {
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match c {
                ColRef::Str(a) if a.is_valid(r) => push_field(&mut out, a.value(r)),
                ColRef::Date(a) if a.is_valid(r) => push_date(&mut out, a.value(r)),
                ColRef::I8(a) if a.is_valid(r) => {
                    out.extend_from_slice(buf.format(a.value(r)).as_bytes())
                }
                ColRef::I64(a) if a.is_valid(r) => {
                    out.extend_from_slice(buf.format(a.value(r)).as_bytes())
                }
                ColRef::Dec(a, s) if a.is_valid(r) => push_decimal(&mut out, a.value(r), *s),
                _ => {}
            }
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_and_numbers() {
        let mut out = Vec::new();
        push_field(&mut out, "O'Brien, \"Bob\"");
        assert_eq!(out, b"\"O'Brien, \"\"Bob\"\"\"");
        out.clear();
        push_decimal(&mut out, 700_005, 2);
        assert_eq!(out, b"7000.05");
        out.clear();
        push_date(&mut out, 0);
        assert_eq!(out, b"1970-01-01");
    }
}
