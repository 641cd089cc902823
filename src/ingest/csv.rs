//! CSV sources: RFC 4180 quoting (line breaks inside quotes stay in the field), LF or
//! CRLF line ends, a UTF-8 byte-order mark, and files that are not UTF-8 at all.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::parse::{Cell, decode_cp1252};
use super::{Assembler, Encoding, IngestError, LayoutColumn, io_err, match_header};

const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(crate) struct CsvSource {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    /// Per layout column, its field position in the file.
    map: Vec<Option<usize>>,
    fields: usize,
    encoding: Encoding,
    record: csv::ByteRecord,
    decoded: String,
}

/// Decides a file's encoding once, before any row is read, so every row of a file is
/// decoded the same way: UTF-8 if the whole file is valid UTF-8, else Windows-1252. Stops
/// at the first invalid byte; for a valid file it is one sequential read (which also
/// warms the page cache for the parse that follows).
fn detect_encoding(path: &Path) -> Result<Encoding, IngestError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut buf = vec![0u8; 8 << 20];
    let mut carry = 0usize;
    loop {
        let n = f.read(&mut buf[carry..]).map_err(io_err(path))?;
        if n == 0 {
            // A multi-byte sequence cut off by the end of the file is not UTF-8.
            return Ok(if carry == 0 {
                Encoding::Utf8
            } else {
                Encoding::Latin1
            });
        }
        let len = carry + n;
        match std::str::from_utf8(&buf[..len]) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_some() => return Ok(Encoding::Latin1),
            Err(e) => {
                let valid = e.valid_up_to();
                buf.copy_within(valid..len, 0);
                carry = len - valid;
            }
        }
    }
}

fn csv_err(path: &Path, row: u64, e: csv::Error) -> IngestError {
    let problem = match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        // Other kinds could quote the record; say only that it is malformed.
        _ => "malformed record".to_string(),
    };
    IngestError::Csv {
        path: path.to_path_buf(),
        row,
        problem,
    }
}

impl CsvSource {
    pub(crate) fn open(
        path: &Path,
        cols: &[LayoutColumn],
        _batch_rows: usize,
    ) -> Result<(CsvSource, Encoding), IngestError> {
        let encoding = detect_encoding(path)?;
        let file = File::open(path).map_err(io_err(path))?;
        let mut buf = BufReader::with_capacity(1 << 20, file);
        if buf.fill_buf().map_err(io_err(path))?.starts_with(BOM) {
            buf.consume(BOM.len());
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(buf);
        let mut record = csv::ByteRecord::new();
        let has_header = reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_err(path, 0, e))?;
        if !has_header {
            return Err(IngestError::NoHeader {
                path: path.to_path_buf(),
            });
        }
        let mut decoded = String::new();
        let header: Vec<String> = record
            .iter()
            .map(|f| match (encoding, std::str::from_utf8(f)) {
                (Encoding::Utf8, Ok(s)) => s.to_string(),
                _ => {
                    decode_cp1252(f, &mut decoded);
                    decoded.clone()
                }
            })
            .collect();
        let map = match_header(path, cols, &header)?;
        Ok((
            CsvSource {
                path: path.to_path_buf(),
                reader,
                map,
                fields: header.len(),
                encoding,
                record,
                decoded,
            },
            encoding,
        ))
    }

    /// Reads up to `max` records into `asm`; `Ok(false)` once the file is exhausted.
    pub(crate) fn read(
        &mut self,
        asm: &mut Assembler,
        next_row: &mut u64,
        max: usize,
    ) -> Result<bool, IngestError> {
        let ncols = asm.columns().len();
        for _ in 0..max {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_err(&self.path, *next_row + 1, e))?;
            if !more {
                return Ok(false);
            }
            *next_row += 1;
            let row = *next_row;
            if self.record.len() != self.fields {
                asm.push_reject(row, "wrong_field_count");
                continue;
            }
            for i in 0..ncols {
                let Some(j) = self.map[i] else {
                    asm.field(i, Cell::Null);
                    continue;
                };
                let bytes = &self.record[j];
                let text = match self.encoding {
                    Encoding::Utf8 => std::str::from_utf8(bytes).ok(),
                    // ASCII reads the same in both encodings.
                    Encoding::Latin1 if bytes.is_ascii() => std::str::from_utf8(bytes).ok(),
                    Encoding::Latin1 => None,
                };
                match text {
                    Some(s) => asm.field(i, Cell::Text(s)),
                    None => {
                        decode_cp1252(bytes, &mut self.decoded);
                        asm.field(i, Cell::Text(&self.decoded));
                    }
                }
            }
            asm.end_row(row);
        }
        Ok(true)
    }
}
