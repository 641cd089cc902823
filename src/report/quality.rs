//! `xmatch report data-quality`: rejected rows by reason, identity gaps, insufficient
//! evidence, contradicted self-reports and late data entry. Counts of records, not of
//! people in outcome groups; internal (for the data team).

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::session::LakeSession;
use super::{OutputFormat, ReportError};

/// (SQL, the dataset it needs).
const PARTS: &[(&str, &str)] = &[
    (include_str!("sql/quality_rejects.sql"), "data_quality"),
    (include_str!("sql/quality_participants.sql"), "participants"),
    (include_str!("sql/quality_evidence.sql"), "evidence"),
];

/// Rows `section, item, count, of_total, share`.
pub async fn data_quality(session: &LakeSession) -> Result<(SchemaRef, RecordBatch), ReportError> {
    let mut batches = Vec::new();
    for (sql, table) in PARTS {
        if !session.has_table(table) {
            continue;
        }
        let (_, b) = session.query(sql).await?;
        batches.extend(b);
    }
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("section", DataType::Utf8, true),
        Field::new("item", DataType::Utf8, true),
        Field::new("count", DataType::Int64, true),
        Field::new("of_total", DataType::Int64, true),
    ]));
    let mut aligned = Vec::new();
    for b in batches {
        let cols = (0..4)
            .map(|i| arrow::compute::cast(b.column(i), schema.field(i).data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        aligned.push(RecordBatch::try_new(schema.clone(), cols)?);
    }
    let merged = concat_batches(&schema, &aligned)?;
    let count = merged
        .column(2)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>();
    let total = merged
        .column(3)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>();
    let share: Float64Array = match (count, total) {
        (Some(c), Some(t)) => c
            .iter()
            .zip(t.iter())
            .map(|(c, t)| match (c, t) {
                (Some(c), Some(t)) if t > 0 => {
                    Some((c as f64 / t as f64 * 10_000.0).round() / 10_000.0)
                }
                _ => None,
            })
            .collect(),
        _ => Float64Array::new_null(merged.num_rows()),
    };
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("share", DataType::Float64, true));
    let out_schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut cols = merged.columns().to_vec();
    cols.push(Arc::new(share));
    Ok((out_schema.clone(), RecordBatch::try_new(out_schema, cols)?))
}

pub fn render(
    schema: &SchemaRef,
    batch: &RecordBatch,
    format: OutputFormat,
) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    if format == OutputFormat::Table {
        out.extend_from_slice(b"Data quality of the published snapshot\n");
    }
    super::output::render(schema, std::slice::from_ref(batch), format, &mut out)?;
    Ok(out)
}
