//! Reading files themselves: an exposed copy whose lineage cannot be trusted, the current
//! participants dataset (programs and local areas), and the secure zone's crosswalk.
//!
//! Only the columns needed are decoded (Parquet projection); values are never logged.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use super::BreachError;
use crate::secure::SecureZone;

/// The column holding person keys in every xmatch output that has persons.
pub const PERSON_KEY: &str = "person_key";

/// What a file holds, read from the file itself.
#[derive(Debug, Default)]
pub struct Table {
    pub format: &'static str,
    pub columns: Vec<String>,
    pub rows: u64,
    /// Every non-empty value of the `person_key` column(s), in file order, with repeats.
    pub person_keys: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BreachError + '_ {
    move |source| BreachError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pq(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> BreachError + '_ {
    move |e| BreachError::Read {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

fn arrow_err(path: &Path) -> impl FnOnce(arrow::error::ArrowError) -> BreachError + '_ {
    move |e| BreachError::Read {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

/// Parquet by its magic bytes, else CSV with a header if the bytes are text; `None` for
/// anything else (a format xmatch never writes). A sealed secure-zone file is opened
/// with `zone`'s keys wherever it lies (a copy is read for what it holds); one that does
/// not authenticate, or is under a key the workspace does not hold, is `None` too.
/// Fails only when the file cannot be read.
pub fn read_table(path: &Path, zone: Option<&SecureZone>) -> Result<Option<Table>, BreachError> {
    let mut head = [0u8; 8];
    let n = File::open(path)
        .map_err(io(path))?
        .read(&mut head)
        .map_err(io(path))?;
    if n >= 4 && &head[..4] == b"PAR1" {
        // A truncated Parquet file (no footer) cannot be decoded: report it as unknown
        // content rather than failing, the bytes were readable.
        let file = File::open(path).map_err(io(path))?;
        return Ok(read_parquet_table(file, path).ok());
    }
    if n == 8 && &head == crate::secure::format::MAGIC {
        let Some(sealed) = zone.and_then(|z| z.open_anywhere(path).ok()) else {
            return Ok(None);
        };
        let mut magic = [0u8; 4];
        if sealed.len() >= 4 && sealed.reader(0).read_exact(&mut magic).is_ok() && &magic == b"PAR1"
        {
            return Ok(read_parquet_table(sealed, path).ok());
        }
        let mut bytes = Vec::new();
        if sealed.reader(0).read_to_end(&mut bytes).is_err() {
            return Ok(None);
        }
        return Ok(csv_table(&bytes));
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(csv_table(&bytes))
}

/// A CSV table with a header, if the bytes are text.
fn csv_table(bytes: &[u8]) -> Option<Table> {
    if bytes.contains(&0) {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let Ok(headers) = reader.headers() else {
        return None;
    };
    let columns: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    if columns.iter().all(|c| c.is_empty()) {
        return None;
    }
    let key_idx: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i] == PERSON_KEY)
        .collect();
    let mut table = Table {
        format: "csv",
        columns,
        ..Table::default()
    };
    for rec in reader.records() {
        let Ok(rec) = rec else { continue };
        table.rows += 1;
        for &i in &key_idx {
            if let Some(v) = rec.get(i).map(str::trim).filter(|v| !v.is_empty()) {
                table.person_keys.push(v.to_string());
            }
        }
    }
    Some(table)
}

fn read_parquet_table<R: ChunkReader + 'static>(
    file: R,
    path: &Path,
) -> Result<Table, BreachError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq(path))?;
    let columns: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let keys: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i] == PERSON_KEY)
        .collect();
    let mut person_keys = Vec::new();
    if !keys.is_empty() {
        let mask = ProjectionMask::roots(builder.parquet_schema(), keys);
        for batch in builder.with_projection(mask).build().map_err(pq(path))? {
            let batch = batch.map_err(arrow_err(path))?;
            for col in batch.columns() {
                for v in strings(col, path)?.into_iter().flatten() {
                    if !v.is_empty() {
                        person_keys.push(v);
                    }
                }
            }
        }
    }
    Ok(Table {
        format: "parquet",
        columns,
        rows,
        person_keys,
    })
}

fn strings(col: &dyn Array, path: &Path) -> Result<Vec<Option<String>>, BreachError> {
    let col = arrow::compute::cast(col, &DataType::Utf8).map_err(arrow_err(path))?;
    let s = col.as_string::<i32>();
    Ok((0..s.len())
        .map(|i| (!s.is_null(i)).then(|| s.value(i).to_string()))
        .collect())
}

/// Reads the named columns (those a file has) of every Parquet file under `dir`, calling
/// `each` with the batch; the closure finds columns by name.
pub fn scan_dataset(
    dir: &Path,
    wanted: &[&str],
    mut each: impl FnMut(&RecordBatch) -> Result<(), BreachError>,
) -> Result<(), BreachError> {
    for path in crate::lake::parquet_files(dir) {
        let file = File::open(&path).map_err(io(&path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq(&path))?;
        let idx: Vec<usize> = builder
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| wanted.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
        for batch in builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()
            .map_err(pq(&path))?
        {
            each(&batch.map_err(arrow_err(&path))?)?;
        }
    }
    Ok(())
}

/// A column of a batch as strings (nulls as `None`), or `None` if the batch lacks it.
pub fn column_strings(
    batch: &RecordBatch,
    name: &str,
    path: &Path,
) -> Result<Option<Vec<Option<String>>>, BreachError> {
    match batch.column_by_name(name) {
        Some(c) => Ok(Some(strings(c, path)?)),
        None => Ok(None),
    }
}

/// A column of a batch cast to `Utf8` (read it with `as_string::<i32>()`), or `None` if the
/// batch lacks it: no string is copied out.
pub fn column_utf8(
    batch: &RecordBatch,
    name: &str,
    path: &Path,
) -> Result<Option<arrow::array::ArrayRef>, BreachError> {
    match batch.column_by_name(name) {
        Some(c) => Ok(Some(
            arrow::compute::cast(c, &DataType::Utf8).map_err(arrow_err(path))?,
        )),
        None => Ok(None),
    }
}

/// A flag column as one bool per row: set where the value reads `1` or `true` (as
/// [`column_strings`] would render it), null is unset. `None` if the batch lacks it.
pub fn column_flags(
    batch: &RecordBatch,
    name: &str,
    path: &Path,
) -> Result<Option<Vec<bool>>, BreachError> {
    let Some(c) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let t = c.data_type();
    let flags = if t.is_integer() || *t == DataType::Boolean {
        // An integer renders as `1` exactly when it is 1; a boolean as `true` when true.
        let c = arrow::compute::cast(c, &DataType::Int64).map_err(arrow_err(path))?;
        let c = c.as_primitive::<arrow::datatypes::Int64Type>();
        (0..c.len())
            .map(|i| !c.is_null(i) && c.value(i) == 1)
            .collect()
    } else {
        let c = arrow::compute::cast(c, &DataType::Utf8).map_err(arrow_err(path))?;
        let c = c.as_string::<i32>();
        (0..c.len())
            .map(|i| !c.is_null(i) && matches!(c.value(i), "1" | "true"))
            .collect()
    };
    Ok(Some(flags))
}

/// What the secure zone's crosswalk says about one person.
#[derive(Debug, Default, Clone)]
pub struct Identifiers {
    pub temp_ids: BTreeSet<String>,
    pub individual_ids: BTreeSet<String>,
}

/// The crosswalk of the latest secure run, restricted to `wanted` person keys. Returns the
/// run it came from (`None` when the secure zone holds no crosswalk).
pub fn crosswalk(
    zone: &SecureZone,
    wanted: &HashMap<String, usize>,
) -> Result<(Option<i64>, HashMap<usize, Identifiers>), BreachError> {
    let runs = zone.root().join("runs");
    let mut ids: Vec<i64> = std::fs::read_dir(&runs)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    let Some(run) = ids.into_iter().rev().find(|id| {
        runs.join(id.to_string())
            .join("crosswalk.parquet")
            .is_file()
    }) else {
        return Ok((None, HashMap::new()));
    };
    let path = runs.join(run.to_string()).join("crosswalk.parquet");
    let mut out: HashMap<usize, Identifiers> = HashMap::new();
    let batches = zone.parquet(&path, Some(&[PERSON_KEY, "temp_id", "individual_id"]))?;
    for batch in batches {
        let keys = column_strings(&batch, PERSON_KEY, &path)?.unwrap_or_default();
        let temp = column_strings(&batch, "temp_id", &path)?.unwrap_or_default();
        let ind = column_strings(&batch, "individual_id", &path)?.unwrap_or_default();
        for (i, key) in keys.iter().enumerate() {
            let Some(&idx) = key.as_ref().and_then(|k| wanted.get(k)) else {
                continue;
            };
            let e = out.entry(idx).or_default();
            if let Some(Some(t)) = temp.get(i) {
                e.temp_ids.insert(t.clone());
            }
            if let Some(Some(v)) = ind.get(i) {
                e.individual_ids.insert(v.clone());
            }
        }
    }
    Ok((Some(run), out))
}
