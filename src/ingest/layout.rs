//! The column layouts a source file can arrive in.
//!
//! A **raw** file has exactly the schema's columns. A **tokenized** file (written by
//! `xmatch tokenize` at a partner agency) has every schema column that is neither an
//! identity input nor a direct identifier, and in place of the identity columns the keyed
//! tokens and generalized values that can be computed from them. Both layouts are derived
//! from the schema file here, so neither the reader nor the writer lists a column itself.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::identity::blocking::{BLOCK_KINDS, BlockKind};
use crate::identity::bloom::{FIELDS, Field as EncodedField};
use crate::identity::{RULES, Rule};
use crate::schema::{ColumnType, IdentityRole, PiiClass, SourceSchema};

/// Which layout a source file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// The schema's own columns, with raw identifiers.
    Raw,
    /// Keyed tokens instead of identifiers (see [`columns`]).
    Tokenized,
}

/// Name of the record-id token column in the tokenized layout.
pub const TOK_RECORD: &str = "tok_record";
/// Name of the key-id column in the tokenized layout.
pub const KEY_ID: &str = "key_id";
/// Name of the rule-set-version column in the tokenized layout.
pub const RULE_SET_VERSION_COL: &str = "rule_set_version";
/// Generalized quasi-identifiers written in the tokenized layout.
pub const BIRTH_YEAR: &str = "birth_year";
pub const ZIP3: &str = "zip3";
pub const SEX: &str = "sex";

/// The token column of a rule, e.g. `tok_ssn_dob`.
pub fn token_column(rule: Rule) -> String {
    format!("tok_{}", rule.name())
}

/// The Bloom-filter encoding column of a field, e.g. `enc_last`.
pub fn encoding_column(field: EncodedField) -> String {
    format!("enc_{}", field.name())
}

/// The blocking-key column of a kind, e.g. `blk_ssn_skip_1_3`.
pub fn block_column(kind: BlockKind) -> String {
    format!("blk_{}", kind.name())
}

/// What a layout column holds, which decides how its values are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// A schema column (index into `SourceSchema::columns`), checked by its declared type.
    Schema(usize),
    /// A 32-byte keyed token of a rule.
    Token(Rule),
    /// The Bloom-filter encoding of one field (rule set version 2).
    Encoding(EncodedField),
    /// An 8-byte keyed blocking key (rule set version 2; the kinds of version 3).
    Block(BlockKind),
    /// The keyed token of the source's record id.
    RecordToken,
    /// Year of birth (integer).
    BirthYear,
    /// First three ZIP digits.
    Zip3,
    /// `M` or `F`.
    Sex,
    /// The id of the key the tokens were made under.
    KeyId,
    /// The token rule-set version.
    RuleSetVersion,
}

/// One column of a layout.
#[derive(Clone, Debug)]
pub struct LayoutColumn {
    pub name: String,
    pub kind: ColumnKind,
    /// The Arrow type of the column in an ingested batch.
    pub data_type: DataType,
    /// Whether a row with an empty value is rejected.
    pub required: bool,
    /// Whether the file must have this column at all (else reading fails up front).
    pub must_exist: bool,
}

/// The rules a schema's identity columns can feed: a rule whose every field has a column.
pub fn token_rules(schema: &SourceSchema) -> Vec<Rule> {
    let has = |role| schema.identity_column(role).is_some();
    RULES
        .into_iter()
        .filter(|rule| {
            rule.fields().iter().all(|f| match *f {
                "ssn" => has(IdentityRole::Ssn),
                "dob" => has(IdentityRole::Dob),
                "last" => has(IdentityRole::LastName),
                "first" | "first_initial" => has(IdentityRole::FirstName),
                "sex" => has(IdentityRole::Sex),
                "zip3" => has(IdentityRole::Zip),
                _ => false,
            })
        })
        .collect()
}

/// The fields a schema's identity columns can encode.
pub fn encoded_fields(schema: &SourceSchema) -> Vec<EncodedField> {
    let has = |role| schema.identity_column(role).is_some();
    FIELDS
        .into_iter()
        .filter(|f| match f {
            EncodedField::First => has(IdentityRole::FirstName),
            EncodedField::Last => has(IdentityRole::LastName),
            EncodedField::Dob => has(IdentityRole::Dob),
            EncodedField::Ssn => has(IdentityRole::Ssn),
            EncodedField::Zip => has(IdentityRole::Zip),
        })
        .collect()
}

/// The blocking keys a schema's identity columns can make.
pub fn block_kinds(schema: &SourceSchema) -> Vec<BlockKind> {
    let has = |role| schema.identity_column(role).is_some();
    let names = has(IdentityRole::FirstName) && has(IdentityRole::LastName);
    BLOCK_KINDS
        .into_iter()
        .filter(|k| match k {
            BlockKind::SsnSkip13
            | BlockKind::SsnSkip35
            | BlockKind::SsnSkip57
            | BlockKind::SsnSkip79 => has(IdentityRole::Ssn) && names,
            BlockKind::SsnGap => has(IdentityRole::Ssn),
            BlockKind::DobInitials => has(IdentityRole::Dob) && names,
            BlockKind::SoundexLastDob => has(IdentityRole::Dob) && has(IdentityRole::LastName),
            BlockKind::SoundexFirstDob => has(IdentityRole::Dob) && has(IdentityRole::FirstName),
            BlockKind::SoundexNamesZip3 => names && has(IdentityRole::Zip),
            BlockKind::SsnSkip13Last
            | BlockKind::SsnSkip35Last
            | BlockKind::SsnSkip57Last
            | BlockKind::SsnSkip79Last => has(IdentityRole::Ssn) && has(IdentityRole::LastName),
        })
        .collect()
}

/// Whether a schema column is carried unchanged into the tokenized layout.
pub fn kept_in_tokenized(c: &crate::schema::Column) -> bool {
    c.identity.is_none() && c.pii != PiiClass::Direct
}

/// The columns of `schema` in `layout`, in file order.
pub fn columns(schema: &SourceSchema, layout: Layout) -> Vec<LayoutColumn> {
    let schema_col = |i: usize| {
        let c = &schema.columns[i];
        LayoutColumn {
            name: c.name.clone(),
            kind: ColumnKind::Schema(i),
            data_type: c.ty.arrow_type(),
            required: c.required,
            // A file without the SSN column would silently give every person a temporary
            // ID, and one without a name or DOB column would link nothing by name, so
            // they must be there even where blank values are allowed.
            must_exist: c.required
                || matches!(
                    c.identity,
                    Some(
                        IdentityRole::Ssn
                            | IdentityRole::FirstName
                            | IdentityRole::LastName
                            | IdentityRole::Dob
                    )
                ),
        }
    };
    match layout {
        Layout::Raw => (0..schema.columns.len()).map(schema_col).collect(),
        Layout::Tokenized => {
            let mut out: Vec<LayoutColumn> = (0..schema.columns.len())
                .filter(|&i| kept_in_tokenized(&schema.columns[i]))
                .map(schema_col)
                .collect();
            let extra = |name: String, kind, data_type, required| LayoutColumn {
                name,
                kind,
                data_type,
                required,
                must_exist: required,
            };
            for rule in token_rules(schema) {
                out.push(extra(
                    token_column(rule),
                    ColumnKind::Token(rule),
                    DataType::FixedSizeBinary(32),
                    false,
                ));
            }
            for field in encoded_fields(schema) {
                out.push(extra(
                    encoding_column(field),
                    ColumnKind::Encoding(field),
                    DataType::FixedSizeBinary((field.bits() / 8) as i32),
                    false,
                ));
            }
            for kind in block_kinds(schema) {
                out.push(extra(
                    block_column(kind),
                    ColumnKind::Block(kind),
                    DataType::FixedSizeBinary(8),
                    false,
                ));
            }
            if schema.identity_column(IdentityRole::RecordId).is_some() {
                out.push(extra(
                    TOK_RECORD.into(),
                    ColumnKind::RecordToken,
                    DataType::FixedSizeBinary(32),
                    true,
                ));
            }
            if schema.identity_column(IdentityRole::Dob).is_some() {
                out.push(extra(
                    BIRTH_YEAR.into(),
                    ColumnKind::BirthYear,
                    DataType::Int64,
                    false,
                ));
            }
            if schema.identity_column(IdentityRole::Zip).is_some() {
                out.push(extra(ZIP3.into(), ColumnKind::Zip3, DataType::Utf8, false));
            }
            if schema.identity_column(IdentityRole::Sex).is_some() {
                out.push(extra(SEX.into(), ColumnKind::Sex, DataType::Utf8, false));
            }
            out.push(extra(
                KEY_ID.into(),
                ColumnKind::KeyId,
                DataType::Utf8,
                true,
            ));
            out.push(extra(
                RULE_SET_VERSION_COL.into(),
                ColumnKind::RuleSetVersion,
                DataType::Int64,
                true,
            ));
            out
        }
    }
}

/// The Arrow schema of an ingested batch in `layout`. Every field is nullable: a missing
/// required value is a rejected row, not a refused file.
pub fn arrow_schema(schema: &SourceSchema, layout: Layout) -> SchemaRef {
    Arc::new(Schema::new(
        columns(schema, layout)
            .into_iter()
            .map(|c| Field::new(c.name, c.data_type, true))
            .collect::<Vec<_>>(),
    ))
}

/// The declared type of a schema column, or `None` for the tokenized layout's own columns.
pub fn column_type(schema: &SourceSchema, c: &LayoutColumn) -> Option<ColumnType> {
    match c.kind {
        ColumnKind::Schema(i) => Some(schema.columns[i].ty),
        _ => None,
    }
}
