//! De-identification: what the de-identified zone keeps of a source row is decided by the
//! schema, column by column (`deid`: drop, keep, birth_year, zip3, token); nothing here
//! names a column. Direct identifiers are dropped, the date of birth becomes a birth year
//! and an age at entry, the ZIP code its first three digits, and employer accounts keyed
//! tokens. A `person_key` stands in for every identifier.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int32Array, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use chrono::{Datelike, NaiveDate};

use crate::identity::{demo, dob, token::Tokenizer};
use crate::schema::{ColumnType, Deid, SourceSchema};

#[derive(Debug, thiserror::Error)]
pub enum DeidError {
    #[error("de-identifying {source_name}: column `{column}` is missing from the batch")]
    MissingColumn { source_name: String, column: String },
    #[error("de-identifying {source_name}: {source}")]
    Arrow {
        source_name: String,
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// Program year of a date: PY N runs 1 July N to 30 June N+1.
pub fn program_year(date: NaiveDate) -> i32 {
    if date.month() >= 7 {
        date.year()
    } else {
        date.year() - 1
    }
}

/// Whole years between `dob` and `at`.
pub fn age_at(dob: NaiveDate, at: NaiveDate) -> i32 {
    let mut age = at.year() - dob.year();
    if (at.month(), at.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

pub fn date32(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

pub fn from_date32(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(i64::from(days))
}

/// The de-identified columns a source yields, in schema order (service lists are
/// published as their own dataset and left out here).
pub fn deid_fields(schema: &SourceSchema, age_at_column: Option<&str>) -> Vec<Field> {
    let mut out = Vec::new();
    for c in &schema.columns {
        match c.deid {
            Deid::Drop => {}
            Deid::Keep if c.ty == ColumnType::ServiceList => {}
            Deid::Keep => out.push(Field::new(&c.name, c.ty.arrow_type(), true)),
            Deid::BirthYear => {
                out.push(Field::new("birth_year", DataType::Int32, true));
                if age_at_column.is_some() {
                    out.push(Field::new("age_at_entry", DataType::Int32, true));
                }
            }
            Deid::Zip3 => out.push(Field::new("zip3", DataType::Utf8, true)),
            Deid::Token => out.push(Field::new(
                format!("{}_token", c.name),
                DataType::Utf8,
                true,
            )),
        }
    }
    out
}

/// De-identifies one batch of a source: `person_key` first, then the schema's columns
/// as their `deid` says. `age_at_column` names a date column (e.g. the entry date) to
/// compute the age at, from the date of birth that is itself never written.
pub fn deid_batch(
    schema: &SourceSchema,
    batch: &RecordBatch,
    person_keys: ArrayRef,
    age_at_column: Option<&str>,
    tokenizer: &Tokenizer,
    today: NaiveDate,
) -> Result<RecordBatch, DeidError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| DeidError::MissingColumn {
                source_name: schema.name.clone(),
                column: name.to_string(),
            })
    };
    let mut fields = vec![Field::new("person_key", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![person_keys];
    for (field, c) in deid_fields(schema, age_at_column)
        .into_iter()
        .zip(deid_sources(schema, age_at_column))
    {
        let array: ArrayRef = match c {
            Source::Keep(name) => column(name)?.clone(),
            Source::BirthYear(name) => {
                let dobs = parse_dobs(column(name)?, today);
                Arc::new(
                    dobs.iter()
                        .map(|d| d.map(|d| d.year()))
                        .collect::<Int32Array>(),
                )
            }
            Source::Age(name, at) => {
                let dobs = parse_dobs(column(name)?, today);
                let at = column(at)?.as_primitive::<Date32Type>();
                Arc::new(
                    dobs.iter()
                        .enumerate()
                        .map(|(i, d)| {
                            let d = (*d)?;
                            (!at.is_null(i)).then(|| age_at(d, from_date32(at.value(i))))
                        })
                        .collect::<Int32Array>(),
                )
            }
            Source::Zip3(name) => {
                let raw = column(name)?.as_string::<i32>();
                Arc::new(
                    raw.iter()
                        .map(|v| {
                            v.and_then(|v| demo::zip(v).ok())
                                .map(|z| z.zip3_str().to_string())
                        })
                        .collect::<StringArray>(),
                )
            }
            Source::Token(name) => {
                let raw = column(name)?.as_string::<i32>();
                let mut b = StringBuilder::with_capacity(raw.len(), raw.len() * 64);
                for v in raw.iter() {
                    match v.filter(|v| !v.trim().is_empty()) {
                        Some(v) => b.append_value(hex::encode(tokenizer.employer_token(v))),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        };
        fields.push(field);
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|source| DeidError::Arrow {
        source_name: schema.name.clone(),
        source,
    })
}

/// The Arrow schema `deid_batch` produces.
pub fn deid_schema(schema: &SourceSchema, age_at_column: Option<&str>) -> SchemaRef {
    let mut fields = vec![Field::new("person_key", DataType::Utf8, false)];
    fields.extend(deid_fields(schema, age_at_column));
    Arc::new(Schema::new(fields))
}

enum Source<'a> {
    Keep(&'a str),
    BirthYear(&'a str),
    Age(&'a str, &'a str),
    Zip3(&'a str),
    Token(&'a str),
}

/// Where each field of `deid_fields` comes from, in the same order.
fn deid_sources<'a>(schema: &'a SourceSchema, age_at_column: Option<&'a str>) -> Vec<Source<'a>> {
    let mut out = Vec::new();
    for c in &schema.columns {
        match c.deid {
            Deid::Drop => {}
            Deid::Keep if c.ty == ColumnType::ServiceList => {}
            Deid::Keep => out.push(Source::Keep(&c.name)),
            Deid::BirthYear => {
                out.push(Source::BirthYear(&c.name));
                if let Some(at) = age_at_column {
                    out.push(Source::Age(&c.name, at));
                }
            }
            Deid::Zip3 => out.push(Source::Zip3(&c.name)),
            Deid::Token => out.push(Source::Token(&c.name)),
        }
    }
    out
}

fn parse_dobs(array: &ArrayRef, today: NaiveDate) -> Vec<Option<NaiveDate>> {
    match array.data_type() {
        DataType::Date32 => {
            let a: &Date32Array = array.as_primitive();
            (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| from_date32(a.value(i))))
                .collect()
        }
        _ => array
            .as_string::<i32>()
            .iter()
            .map(|v| v.and_then(|v| dob::parse(v, today).ok()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_years_and_ages() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(program_year(d("2024-06-30")), 2023);
        assert_eq!(program_year(d("2024-07-01")), 2024);
        assert_eq!(age_at(d("2000-07-02"), d("2024-07-01")), 23);
        assert_eq!(age_at(d("2000-07-01"), d("2024-07-01")), 24);
        assert_eq!(from_date32(date32(d("2024-02-29"))), d("2024-02-29"));
    }
}
