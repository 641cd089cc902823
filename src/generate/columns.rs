//! Columns filled by name and assembled in the schema's order.
//!
//! A source generator registers each column it produces under its schema name and gets a
//! typed handle back. `finish` then lays the arrays out in the order `schemas/<name>.toml`
//! declares and refuses a batch if the schema has a column the generator did not produce,
//! the generator produced one the schema lacks, or the types disagree. The column list
//! therefore lives in the schema file only; a renamed or added schema column is an error,
//! never a silently shifted file.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int8Builder, Int64Builder, StringBuilder,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use crate::schema::SourceSchema;

use super::GenerateError;

enum Builder {
    Str(StringBuilder),
    Date(Date32Builder),
    Flag(Int8Builder),
    Int(Int64Builder),
    Money(Decimal128Builder),
}

impl Builder {
    fn data_type(&self) -> DataType {
        match self {
            Builder::Str(_) => DataType::Utf8,
            Builder::Date(_) => DataType::Date32,
            Builder::Flag(_) => DataType::Int8,
            Builder::Int(_) => DataType::Int64,
            Builder::Money(_) => DataType::Decimal128(14, 2),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Flag(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Money(b) => Arc::new(b.finish()),
        }
    }
}

/// Handle to a registered column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Col(usize);

/// The columns of one chunk under construction.
pub(crate) struct Columns {
    source: &'static str,
    cols: Vec<(&'static str, Builder)>,
    capacity: usize,
}

impl Columns {
    pub(crate) fn new(source: &'static str, capacity: usize) -> Columns {
        Columns {
            source,
            cols: Vec::new(),
            capacity,
        }
    }

    fn add(&mut self, name: &'static str, b: Builder) -> Col {
        self.cols.push((name, b));
        Col(self.cols.len() - 1)
    }

    pub(crate) fn str(&mut self, name: &'static str) -> Col {
        let b = StringBuilder::with_capacity(self.capacity, self.capacity * 12);
        self.add(name, Builder::Str(b))
    }
    pub(crate) fn date(&mut self, name: &'static str) -> Col {
        let b = Date32Builder::with_capacity(self.capacity);
        self.add(name, Builder::Date(b))
    }
    pub(crate) fn flag(&mut self, name: &'static str) -> Col {
        let b = Int8Builder::with_capacity(self.capacity);
        self.add(name, Builder::Flag(b))
    }
    pub(crate) fn int(&mut self, name: &'static str) -> Col {
        let b = Int64Builder::with_capacity(self.capacity);
        self.add(name, Builder::Int(b))
    }
    pub(crate) fn money(&mut self, name: &'static str) -> Col {
        let b = Decimal128Builder::with_capacity(self.capacity)
            .with_precision_and_scale(14, 2)
            .expect("14,2 is a valid decimal");
        self.add(name, Builder::Money(b))
    }

    #[inline]
    pub(crate) fn set_str(&mut self, c: Col, v: Option<&str>) {
        match &mut self.cols[c.0].1 {
            Builder::Str(b) => b.append_option(v),
            _ => unreachable!("column registered with another type"),
        }
    }
    #[inline]
    pub(crate) fn set_date(&mut self, c: Col, v: Option<i32>) {
        match &mut self.cols[c.0].1 {
            Builder::Date(b) => b.append_option(v),
            _ => unreachable!("column registered with another type"),
        }
    }
    #[inline]
    pub(crate) fn set_flag(&mut self, c: Col, v: bool) {
        match &mut self.cols[c.0].1 {
            Builder::Flag(b) => b.append_value(v as i8),
            _ => unreachable!("column registered with another type"),
        }
    }
    #[inline]
    pub(crate) fn set_int(&mut self, c: Col, v: Option<i64>) {
        match &mut self.cols[c.0].1 {
            Builder::Int(b) => b.append_option(v),
            _ => unreachable!("column registered with another type"),
        }
    }
    /// Money in cents.
    #[inline]
    pub(crate) fn set_money(&mut self, c: Col, cents: Option<i64>) {
        match &mut self.cols[c.0].1 {
            Builder::Money(b) => b.append_option(cents.map(i128::from)),
            _ => unreachable!("column registered with another type"),
        }
    }

    /// The batch in the schema's column order, or an error naming the first mismatch.
    pub(crate) fn finish(mut self, schema: &SourceSchema) -> Result<RecordBatch, GenerateError> {
        for (i, (name, _)) in self.cols.iter().enumerate() {
            if self.cols[..i].iter().any(|(n, _)| n == name) {
                return Err(GenerateError::DuplicateColumn {
                    source_name: self.source,
                    column: (*name).to_string(),
                });
            }
            if schema.column(name).is_none() {
                return Err(GenerateError::UnknownColumn {
                    source_name: self.source,
                    column: (*name).to_string(),
                });
            }
        }
        let arrow_schema = schema.arrow_schema();
        let mut arrays = Vec::with_capacity(arrow_schema.fields().len());
        for field in arrow_schema.fields() {
            let Some(pos) = self.cols.iter().position(|(n, _)| *n == field.name()) else {
                return Err(GenerateError::MissingColumn {
                    source_name: self.source,
                    column: field.name().clone(),
                });
            };
            let builder = &mut self.cols[pos].1;
            if &builder.data_type() != field.data_type() {
                return Err(GenerateError::ColumnType {
                    source_name: self.source,
                    column: field.name().clone(),
                    produced: builder.data_type().to_string(),
                    expected: field.data_type().to_string(),
                });
            }
            arrays.push(builder.finish());
        }
        Ok(RecordBatch::try_new(arrow_schema, arrays)?)
    }
}
