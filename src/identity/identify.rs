//! From an ingested batch to per-row identity: the keyed token of every rule, the reasons
//! a field was unusable, the record token, a carried temporary ID, and the generalized
//! quasi-identifiers (birth year, ZIP3, sex) the de-identified zone keeps.
//!
//! Raw batches are normalized here (the normalizers in this module's siblings decide what
//! is usable); tokenized batches already carry the tokens, which are taken as they are,
//! after checking they were made under this workspace's key and rule set. Either way the
//! output has one entry per accepted row, so later stages never care which layout a
//! source arrived in.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, FixedSizeBinaryArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Int64Type};
use chrono::{Datelike, NaiveDate};
use rayon::prelude::*;

use crate::ingest::IngestBatch;
use crate::ingest::layout::{self, Layout};
use crate::schema::{IdentityRole, SourceSchema};

use super::blocking::{BLOCK_KINDS, BlockKeys};
use super::bloom::{Encoding, FIELDS};
use super::ids::TempId;
use super::ssn::Last4;
use super::token::{ACCEPTED_RULE_SET_VERSIONS, RULE_SET_VERSION, RULES, Token, Tokenizer};
use super::{IdentityFields, RawIdentity, Reason, Sex, normalize_record};

/// Reason code of a carried temporary ID whose check character does not match (or that
/// is malformed): the ID is not trusted and the row resolves as if it carried none.
/// Kept beside [`Reason`] because `Reason` describes the fields tokens are made from.
pub const TEMP_ID_INVALID: &str = "temp_id_invalid";

/// Rows at or above which a batch is identified on all cores.
const PARALLEL_ROWS: usize = 4096;

/// The identity of every accepted row of one batch, column-wise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentifiedBatch {
    /// `tokens[rule.index()][row]`; `None` when a field of the rule is missing or invalid.
    pub tokens: [Vec<Option<Token>>; RULES.len()],
    /// Per row, why identity fields were unusable (empty = clean).
    pub reasons: Vec<Vec<Reason>>,
    /// Keyed token of the record-id column (`xmatch/v1/record/<schema>`).
    pub record_token: Vec<Option<Token>>,
    /// A carried temporary ID that passed its check character.
    pub temp_id: Vec<Option<TempId>>,
    /// A temporary ID was carried but failed its check ([`TEMP_ID_INVALID`]).
    pub temp_id_invalid: Vec<bool>,
    pub birth_year: Vec<Option<i32>>,
    /// The ZIP code's first three digits: bytes, not a `String`, since every row of every
    /// source has one and only `tokenize` writes it out (24 million allocations at a
    /// million participants for a value nothing in a run reads).
    pub zip3: Vec<Option<[u8; 3]>>,
    pub sex: Vec<Option<Sex>>,
    /// Last four SSN digits, for rejects files in the secure zone only.
    pub ssn_last4: Vec<Option<Last4>>,
    /// What the probabilistic pass compares, one per row; empty unless asked for (see
    /// [`identify_with`]), because most rows of a source link on their tokens.
    pub features: Vec<Features>,
    /// A tokenized batch made under another key than the tokenizer's (the other key of a
    /// rotation, which the tokenizer [accepts](Tokenizer::accepts)): its id. Its tokens
    /// link through the registry, which holds both keys' tokens; its encodings are under
    /// that key and cannot be compared with the participants'.
    pub other_key: Option<String>,
}

/// One record as the probabilistic pass sees it (rule set versions 2 to 4): the Bloom-filter
/// encodings of its fields, its blocking keys and its sex.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub encoding: Encoding,
    pub blocks: BlockKeys,
    pub sex: Option<Sex>,
}

impl Features {
    /// The features of a record's normalized fields.
    pub fn of(fields: &IdentityFields, tokenizer: &Tokenizer) -> Features {
        Features {
            encoding: tokenizer.encoder().encode(fields),
            blocks: tokenizer.blocker().keys(fields),
            sex: fields.sex,
        }
    }

    /// Whether the record has anything the probabilistic pass could block on.
    pub fn is_blockable(&self) -> bool {
        self.blocks.iter().next().is_some()
    }
}

/// How often each reason occurred in a batch (or several, with [`ReasonCounts::add`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReasonCounts {
    /// Indexed by [`Reason::index`].
    pub by_reason: [u64; Reason::ALL.len()],
    pub temp_id_invalid: u64,
}

impl ReasonCounts {
    pub fn get(&self, r: Reason) -> u64 {
        self.by_reason[r.index()]
    }

    pub fn add(&mut self, other: &ReasonCounts) {
        for (a, b) in self.by_reason.iter_mut().zip(other.by_reason) {
            *a += b;
        }
        self.temp_id_invalid += other.temp_id_invalid;
    }

    /// `(code, count)` for every non-zero count, in [`Reason::ALL`] order.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Reason::ALL
            .iter()
            .map(|r| (r.as_str(), self.get(*r)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if self.temp_id_invalid > 0 {
            out.push((TEMP_ID_INVALID, self.temp_id_invalid));
        }
        out
    }
}

impl IdentifiedBatch {
    pub fn len(&self) -> usize {
        self.reasons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }

    pub fn reason_counts(&self) -> ReasonCounts {
        let mut c = ReasonCounts::default();
        for rs in &self.reasons {
            for r in rs {
                c.by_reason[r.index()] += 1;
            }
        }
        c.temp_id_invalid = self.temp_id_invalid.iter().filter(|b| **b).count() as u64;
        c
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    #[error("schema `{schema}`: the batch has no column `{column}`")]
    MissingColumn { schema: String, column: String },
    #[error("schema `{schema}`: column `{column}` is of type {found}; expected {expected}")]
    WrongType {
        schema: String,
        column: String,
        found: String,
        expected: String,
    },
    #[error(
        "row {row}: the tokens were made under key `{found}`, but this workspace's key is `{expected}`; tokens under different keys never match"
    )]
    KeyMismatch {
        row: u64,
        found: String,
        expected: String,
    },
    #[error(
        "row {row}: the tokens were made under key `{found}`, but earlier rows of the batch under key `{first}`; a tokenized file holds one key's tokens"
    )]
    MixedKeys {
        row: u64,
        found: String,
        first: String,
    },
    #[error(
        "row {row}: the tokens follow rule set version {found}; this xmatch reads versions 1 and {expected}"
    )]
    RuleSetVersion { row: u64, found: i64, expected: u32 },
}

/// One row's identity, before it is laid out column-wise.
#[derive(Default)]
struct RowOut {
    tokens: [Option<Token>; RULES.len()],
    reasons: Vec<Reason>,
    record: Option<Token>,
    temp: Option<TempId>,
    temp_invalid: bool,
    birth_year: Option<i32>,
    zip3: Option<[u8; 3]>,
    sex: Option<Sex>,
    last4: Option<Last4>,
}

/// Identifies every accepted row of `batch`. `today` bounds dates of birth (the run's
/// date, so a rerun of the same day gives the same answer). Uses all cores for large
/// batches; the output does not depend on how the work was split.
pub fn identify(
    batch: &IngestBatch,
    schema: &SourceSchema,
    layout: Layout,
    tokenizer: &Tokenizer,
    today: NaiveDate,
) -> Result<IdentifiedBatch, IdentifyError> {
    identify_with(batch, schema, layout, tokenizer, today, false)
}

/// [`identify`], with the probabilistic pass's [`Features`] of every row when `features`
/// is set (the participants, whom every agency record is compared with, and the partner
/// side's `tokenize`, which must ship them).
pub fn identify_with(
    batch: &IngestBatch,
    schema: &SourceSchema,
    layout: Layout,
    tokenizer: &Tokenizer,
    today: NaiveDate,
    features: bool,
) -> Result<IdentifiedBatch, IdentifyError> {
    let n = batch.batch.num_rows();
    match layout {
        Layout::Raw => {
            let cols = RawColumns::new(batch, schema, features)?;
            let row = |r: usize| cols.row(r, schema, tokenizer, today);
            Ok(if features {
                with_features(n, |r| {
                    let (out, fields) = row(r);
                    (out, Features::of(&fields, tokenizer))
                })
            } else {
                columnar(run(n, |r| row(r).0))
            })
        }
        Layout::Tokenized => {
            let cols = TokColumns::new(batch, schema, tokenizer)?;
            let mut out = if features {
                with_features(n, |r| (cols.row(r), cols.features(r)))
            } else {
                columnar(run(n, |r| cols.row(r)))
            };
            out.other_key = cols
                .key_id
                .filter(|k| *k != tokenizer.key_id())
                .map(str::to_string);
            Ok(out)
        }
    }
}

/// Rows and their features, each written once into its own column: a participant's
/// features (a third of a kilobyte) were a heap allocation of their own, moved into the
/// batch's vector and freed, a million times over in a million-participant run.
fn with_features(
    n: usize,
    f: impl Fn(usize) -> (RowOut, Features) + Sync + Send,
) -> IdentifiedBatch {
    let mut rows = Vec::with_capacity(n);
    let mut features = Vec::with_capacity(n);
    if n >= PARALLEL_ROWS {
        (0..n)
            .into_par_iter()
            .with_min_len(1024)
            .map(f)
            .unzip_into_vecs(&mut rows, &mut features);
    } else {
        (rows, features) = (0..n).map(f).unzip();
    }
    IdentifiedBatch {
        features,
        ..columnar(rows)
    }
}

/// A row's SSN token and record token.
pub type RowKeys = (Option<Token>, Option<Token>);

/// The SSN token and record token of some rows of a raw batch under `tokenizer`, in the
/// order given: during a rotation, a run records the new key's record key of the review
/// items whose records it sees.
pub fn keys_of(
    batch: &IngestBatch,
    schema: &SourceSchema,
    tokenizer: &Tokenizer,
    today: NaiveDate,
    rows: &[usize],
) -> Result<Vec<RowKeys>, IdentifyError> {
    let cols = RawColumns::new(batch, schema, false)?;
    Ok(rows
        .iter()
        .map(|&r| {
            let (fields, _) = cols.fields(r, today);
            let ssn = tokenizer.token(super::token::Rule::Ssn, &fields);
            let record = RawColumns::get(cols.record, r)
                .filter(|s| !s.trim().is_empty())
                .map(|s| tokenizer.record_token(&schema.name, s));
            (ssn, record)
        })
        .collect())
}

/// The [`Features`] of some rows of a batch (those the exact passes left unlinked), in
/// the order given. Raw rows are normalized again: re-reading a few rows is cheaper than
/// keeping every row's normalized names until the exact passes have run.
pub fn features_of(
    batch: &IngestBatch,
    schema: &SourceSchema,
    layout: Layout,
    tokenizer: &Tokenizer,
    today: NaiveDate,
    rows: &[usize],
) -> Result<Vec<Features>, IdentifyError> {
    encode_rows(batch, schema, layout, tokenizer, today, rows, None)
}

/// The blocking keys an agency record probes (see
/// [`crate::identity::blocking::BlockKeys::probes`]), alone, for some rows of a batch:
/// a fraction of the keyed hashing [`features_of`] does. The probabilistic pass screens
/// unlinked records on them and encodes only those that meet a participant (see
/// [`crate::link::prob::SourcePass`]).
///
/// The keys come once per distinct raw identity ([`Distinct`]): a worker's wage rows
/// share theirs, and the screening looks each set up once, not once per row.
pub fn blocks_of(
    batch: &IngestBatch,
    schema: &SourceSchema,
    layout: Layout,
    tokenizer: &Tokenizer,
    today: NaiveDate,
    rows: &[usize],
) -> Result<Distinct<BlockKeys>, IdentifyError> {
    Ok(match layout {
        Layout::Raw => {
            let cols = RawColumns::new(batch, schema, true)?;
            distinct_per_identity(&cols, rows, &|r| r, &|r| {
                tokenizer.blocker().probe_keys(&cols.fields(r, today).0)
            })
        }
        Layout::Tokenized => {
            let cols = TokColumns::new(batch, schema, tokenizer)?;
            Distinct {
                values: pick(rows, &|r| cols.features(r).blocks),
                slots: (0..rows.len() as u32).collect(),
            }
        }
    })
}

/// Values of some rows, each worked out once per distinct raw identity: row `i`'s is
/// `values[slots[i]]` ([`Distinct::get`]).
#[derive(Debug, Clone, Default)]
pub struct Distinct<T> {
    pub values: Vec<T>,
    pub slots: Vec<u32>,
}

impl<T> Distinct<T> {
    /// The value of the `i`-th row asked for.
    pub fn get(&self, i: usize) -> &T {
        &self.values[self.slots[i] as usize]
    }

    /// Rows asked for.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// [`features_of`] for rows whose blocking keys `blocks` (one per row) are known already.
pub fn features_with_blocks(
    batch: &IngestBatch,
    schema: &SourceSchema,
    layout: Layout,
    tokenizer: &Tokenizer,
    today: NaiveDate,
    rows: &[usize],
    blocks: &[BlockKeys],
) -> Result<Vec<Features>, IdentifyError> {
    encode_rows(batch, schema, layout, tokenizer, today, rows, Some(blocks))
}

fn encode_rows(
    batch: &IngestBatch,
    schema: &SourceSchema,
    layout: Layout,
    tokenizer: &Tokenizer,
    today: NaiveDate,
    rows: &[usize],
    blocks: Option<&[BlockKeys]>,
) -> Result<Vec<Features>, IdentifyError> {
    let positions: Vec<usize> = (0..rows.len()).collect();
    Ok(match layout {
        Layout::Raw => {
            let cols = RawColumns::new(batch, schema, true)?;
            per_identity(&cols, &positions, &|i| rows[i], &|i| {
                let fields = cols.fields(rows[i], today).0;
                match blocks {
                    Some(b) => Features {
                        encoding: tokenizer.encoder().encode(&fields),
                        blocks: b[i],
                        sex: fields.sex,
                    },
                    None => Features::of(&fields, tokenizer),
                }
            })
        }
        Layout::Tokenized => {
            let cols = TokColumns::new(batch, schema, tokenizer)?;
            pick(&positions, &|i| cols.features(rows[i]))
        }
    })
}

/// `f` of every row in `rows`, in order, on both cores when there are enough.
fn pick<O: Send>(rows: &[usize], f: &(dyn Fn(usize) -> O + Sync)) -> Vec<O> {
    if rows.len() >= PARALLEL_ROWS {
        rows.par_iter().with_min_len(1024).map(|&r| f(r)).collect()
    } else {
        rows.iter().map(|&r| f(r)).collect()
    }
}

/// `f` of each item, computed once per distinct raw identity (of batch row `row(item)`)
/// and copied to the others. A person's rows repeat their identity: a worker's wage rows,
/// quarter after quarter, or a household's benefit periods. Hashing a row's raw columns
/// costs a small part of normalizing and keying or encoding it.
fn per_identity<O: Clone + Send>(
    cols: &RawColumns<'_>,
    items: &[usize],
    row: &(dyn Fn(usize) -> usize + Sync),
    f: &(dyn Fn(usize) -> O + Sync),
) -> Vec<O> {
    let d = distinct_per_identity(cols, items, row, f);
    d.slots
        .iter()
        .map(|&s| d.values[s as usize].clone())
        .collect()
}

/// [`per_identity`] without copying each value out to its items.
fn distinct_per_identity<O: Send>(
    cols: &RawColumns<'_>,
    items: &[usize],
    row: &(dyn Fn(usize) -> usize + Sync),
    f: &(dyn Fn(usize) -> O + Sync),
) -> Distinct<O> {
    let mut distinct: HashMap<RawIdentity<'_>, u32, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(items.len() / 4, Default::default());
    let mut firsts: Vec<usize> = Vec::new();
    // A person's rows usually come together (a worker's quarters, a case's periods): a row
    // like the one before takes its slot without hashing its strings and probing the map,
    // which was half a second of one core for a million-participant state's wage file.
    let mut last: Option<(RawIdentity<'_>, u32)> = None;
    let slots: Vec<u32> = items
        .iter()
        .map(|&i| {
            let raw = cols.raw(row(i));
            if let Some((prev, slot)) = last
                && prev == raw
            {
                return slot;
            }
            let next = firsts.len() as u32;
            let slot = *distinct.entry(raw).or_insert_with(|| {
                firsts.push(i);
                next
            });
            last = Some((raw, slot));
            slot
        })
        .collect();
    drop(distinct);
    Distinct {
        values: pick(&firsts, f),
        slots,
    }
}

fn run(n: usize, f: impl Fn(usize) -> RowOut + Sync + Send) -> Vec<RowOut> {
    if n >= PARALLEL_ROWS {
        (0..n).into_par_iter().with_min_len(1024).map(f).collect()
    } else {
        (0..n).map(f).collect()
    }
}

fn columnar(rows: Vec<RowOut>) -> IdentifiedBatch {
    let n = rows.len();
    let mut out = IdentifiedBatch {
        tokens: std::array::from_fn(|_| Vec::with_capacity(n)),
        reasons: Vec::with_capacity(n),
        record_token: Vec::with_capacity(n),
        temp_id: Vec::with_capacity(n),
        temp_id_invalid: Vec::with_capacity(n),
        birth_year: Vec::with_capacity(n),
        zip3: Vec::with_capacity(n),
        sex: Vec::with_capacity(n),
        ssn_last4: Vec::with_capacity(n),
        features: Vec::new(),
        other_key: None,
    };
    for r in rows {
        for (col, t) in out.tokens.iter_mut().zip(r.tokens) {
            col.push(t);
        }
        out.reasons.push(r.reasons);
        out.record_token.push(r.record);
        out.temp_id.push(r.temp);
        out.temp_id_invalid.push(r.temp_invalid);
        out.birth_year.push(r.birth_year);
        out.zip3.push(r.zip3);
        out.sex.push(r.sex);
        out.ssn_last4.push(r.last4);
    }
    out
}

fn string_column<'a>(
    batch: &'a IngestBatch,
    schema: &SourceSchema,
    name: &str,
) -> Result<Option<&'a StringArray>, IdentifyError> {
    let Some(a) = batch.batch.column_by_name(name) else {
        return Ok(None);
    };
    a.as_string_opt::<i32>()
        .map(Some)
        .ok_or_else(|| IdentifyError::WrongType {
            schema: schema.name.clone(),
            column: name.to_string(),
            found: a.data_type().to_string(),
            expected: DataType::Utf8.to_string(),
        })
}

/// The identity columns of a raw batch; `None` where the schema has no such column.
struct RawColumns<'a> {
    ssn: Option<&'a StringArray>,
    first: Option<&'a StringArray>,
    last: Option<&'a StringArray>,
    dob: Option<&'a StringArray>,
    sex: Option<&'a StringArray>,
    zip: Option<&'a StringArray>,
    record: Option<&'a StringArray>,
    temp: Option<&'a StringArray>,
}

impl<'a> RawColumns<'a> {
    /// `all_names`: read the name columns even where no token rule can use them (the
    /// probabilistic pass compares names on their own).
    fn new(
        batch: &'a IngestBatch,
        schema: &SourceSchema,
        all_names: bool,
    ) -> Result<RawColumns<'a>, IdentifyError> {
        let col = |role| -> Result<Option<&'a StringArray>, IdentifyError> {
            let Some(c) = schema.identity_column(role) else {
                return Ok(None);
            };
            match string_column(batch, schema, &c.name)? {
                Some(a) => Ok(Some(a)),
                None => Err(IdentifyError::MissingColumn {
                    schema: schema.name.clone(),
                    column: c.name.clone(),
                }),
            }
        };
        let dob = col(IdentityRole::Dob)?;
        // Names only matter if some rule can be made from this source's columns. Every
        // name rule also takes the date of birth, so a source without one (UI wage
        // records) cannot use its names: they are neither normalized nor judged. At
        // twenty million wage rows that was a sixth of the link's work.
        let has = |field: &str| match field {
            "ssn" => schema.identity_column(IdentityRole::Ssn).is_some(),
            "dob" => dob.is_some(),
            "sex" => schema.identity_column(IdentityRole::Sex).is_some(),
            "zip3" => schema.identity_column(IdentityRole::Zip).is_some(),
            _ => true,
        };
        let names_usable = RULES.iter().any(|r| {
            let f = r.fields();
            f.iter().any(|x| x.contains("first") || *x == "last") && f.iter().all(|x| has(x))
        });
        let names = |role| {
            if names_usable || all_names {
                col(role)
            } else {
                Ok(None)
            }
        };
        Ok(RawColumns {
            ssn: col(IdentityRole::Ssn)?,
            first: names(IdentityRole::FirstName)?,
            last: names(IdentityRole::LastName)?,
            dob,
            sex: col(IdentityRole::Sex)?,
            zip: col(IdentityRole::Zip)?,
            record: col(IdentityRole::RecordId)?,
            temp: col(IdentityRole::TempId)?,
        })
    }

    /// A column the source has but this row leaves empty is `Some("")`, which the
    /// normalizers report as `*_missing`; a column the source lacks is `None`.
    fn get(a: Option<&'a StringArray>, r: usize) -> Option<&'a str> {
        a.map(|a| if a.is_valid(r) { a.value(r) } else { "" })
    }

    fn raw(&self, r: usize) -> RawIdentity<'a> {
        RawIdentity {
            ssn: Self::get(self.ssn, r),
            first: Self::get(self.first, r),
            last: Self::get(self.last, r),
            dob: Self::get(self.dob, r),
            sex: Self::get(self.sex, r),
            zip: Self::get(self.zip, r),
        }
    }

    fn fields(&self, r: usize, today: NaiveDate) -> (IdentityFields, Vec<Reason>) {
        normalize_record(self.raw(r), today)
    }

    fn row(
        &self,
        r: usize,
        schema: &SourceSchema,
        tok: &Tokenizer,
        today: NaiveDate,
    ) -> (RowOut, IdentityFields) {
        let get = |a: Option<&'a StringArray>| Self::get(a, r);
        let raw = self.raw(r);
        let (fields, reasons) = normalize_record(raw, today);
        let set = tok.tokens(&fields);
        let (temp, temp_invalid) = match get(self.temp).map(str::trim) {
            Some(s) if !s.is_empty() => match TempId::parse(s) {
                Ok(id) => (Some(id), false),
                Err(_) => (None, true),
            },
            _ => (None, false),
        };
        let record = get(self.record)
            .filter(|s| !s.trim().is_empty())
            .map(|s| tok.record_token(&schema.name, s));
        let last4 = match &fields.ssn {
            Some(ssn) => Last4::of(ssn.last4()),
            None => raw.ssn.and_then(Last4::of),
        };
        let out = RowOut {
            tokens: set.tokens,
            reasons,
            record,
            temp,
            temp_invalid,
            birth_year: fields.dob.map(|d| d.year()),
            zip3: fields.zip.as_ref().map(|z| z.zip3()),
            sex: fields.sex,
            last4,
        };
        (out, fields)
    }
}

/// The token columns of a tokenized batch.
struct TokColumns<'a> {
    tokens: [Option<&'a FixedSizeBinaryArray>; RULES.len()],
    encodings: [Option<&'a FixedSizeBinaryArray>; FIELDS.len()],
    blocks: [Option<&'a FixedSizeBinaryArray>; BLOCK_KINDS.len()],
    record: Option<&'a FixedSizeBinaryArray>,
    birth_year: Option<&'a Int64Array>,
    zip3: Option<&'a StringArray>,
    sex: Option<&'a StringArray>,
    /// The key every row's tokens were made under (`None` for an empty batch).
    key_id: Option<&'a str>,
}

impl<'a> TokColumns<'a> {
    fn new(
        batch: &'a IngestBatch,
        schema: &SourceSchema,
        tokenizer: &Tokenizer,
    ) -> Result<TokColumns<'a>, IdentifyError> {
        let wrong = |name: &str, found: &DataType, expected: DataType| IdentifyError::WrongType {
            schema: schema.name.clone(),
            column: name.to_string(),
            found: found.to_string(),
            expected: expected.to_string(),
        };
        let sized = |name: &str,
                     n: i32|
         -> Result<Option<&'a FixedSizeBinaryArray>, IdentifyError> {
            match batch.batch.column_by_name(name) {
                None => Ok(None),
                Some(a) => match a.data_type() {
                    DataType::FixedSizeBinary(m) if *m == n => Ok(Some(a.as_fixed_size_binary())),
                    dt => Err(wrong(name, dt, DataType::FixedSizeBinary(n))),
                },
            }
        };
        let bin = |name: &str| sized(name, 32);
        let int = |name: &str| -> Result<Option<&'a Int64Array>, IdentifyError> {
            match batch.batch.column_by_name(name) {
                None => Ok(None),
                Some(a) => a
                    .as_primitive_opt::<Int64Type>()
                    .map(Some)
                    .ok_or_else(|| wrong(name, a.data_type(), DataType::Int64)),
            }
        };
        let missing = |name: &str| IdentifyError::MissingColumn {
            schema: schema.name.clone(),
            column: name.to_string(),
        };
        // Tokens made under another key or rule set look like tokens but never match:
        // refuse them rather than silently matching nothing.
        let key_ids =
            string_column(batch, schema, layout::KEY_ID)?.ok_or_else(|| missing(layout::KEY_ID))?;
        let versions = int(layout::RULE_SET_VERSION_COL)?
            .ok_or_else(|| missing(layout::RULE_SET_VERSION_COL))?;
        let mut batch_key: Option<&'a str> = None;
        for r in 0..batch.batch.num_rows() {
            let row = batch.rows.get(r).copied().unwrap_or(r as u64 + 1);
            let key = if key_ids.is_valid(r) {
                key_ids.value(r)
            } else {
                ""
            };
            if !tokenizer.accepts(key) {
                return Err(IdentifyError::KeyMismatch {
                    row,
                    found: key.to_string(),
                    expected: tokenizer.key_id().to_string(),
                });
            }
            match batch_key {
                None => batch_key = Some(key),
                Some(first) if first != key => {
                    return Err(IdentifyError::MixedKeys {
                        row,
                        found: key.to_string(),
                        first: first.to_string(),
                    });
                }
                Some(_) => {}
            }
            let v = if versions.is_valid(r) {
                versions.value(r)
            } else {
                -1
            };
            if !ACCEPTED_RULE_SET_VERSIONS.contains(&v) {
                return Err(IdentifyError::RuleSetVersion {
                    row,
                    found: v,
                    expected: RULE_SET_VERSION,
                });
            }
        }
        let mut tokens = [None; RULES.len()];
        for rule in RULES {
            tokens[rule.index()] = bin(&layout::token_column(rule))?;
        }
        let mut encodings = [None; FIELDS.len()];
        for field in FIELDS {
            encodings[field.index()] =
                sized(&layout::encoding_column(field), (field.bits() / 8) as i32)?;
        }
        let mut blocks = [None; BLOCK_KINDS.len()];
        for kind in BLOCK_KINDS {
            blocks[kind.index()] = sized(&layout::block_column(kind), 8)?;
        }
        Ok(TokColumns {
            tokens,
            encodings,
            blocks,
            record: bin(layout::TOK_RECORD)?,
            birth_year: int(layout::BIRTH_YEAR)?,
            zip3: string_column(batch, schema, layout::ZIP3)?,
            sex: string_column(batch, schema, layout::SEX)?,
            key_id: batch_key,
        })
    }

    /// What the partner's `tokenize` computed for the probabilistic pass; a version 1
    /// file has none of it, so its rows can link on their tokens only.
    fn features(&self, r: usize) -> Features {
        let mut out = Features::default();
        for field in FIELDS {
            if let Some(a) = self.encodings[field.index()].filter(|a| a.is_valid(r)) {
                out.encoding
                    .set_field_bytes(field, a.value(r))
                    .expect("the column's width is the field's");
            }
        }
        for kind in BLOCK_KINDS {
            if let Some(a) = self.blocks[kind.index()].filter(|a| a.is_valid(r)) {
                let b: [u8; 8] = a.value(r).try_into().expect("8-byte column");
                out.blocks.set(kind, u64::from_le_bytes(b));
            }
        }
        out.sex = self
            .sex
            .filter(|a| a.is_valid(r))
            .and_then(|a| super::demo::sex(a.value(r)));
        out
    }

    fn row(&self, r: usize) -> RowOut {
        let tok = |a: Option<&FixedSizeBinaryArray>| -> Option<Token> {
            let a = a?;
            a.is_valid(r).then(|| a.value(r).try_into().ok()).flatten()
        };
        fn s(a: Option<&StringArray>, r: usize) -> Option<&str> {
            a.filter(|a| a.is_valid(r)).map(|a| a.value(r))
        }
        RowOut {
            tokens: std::array::from_fn(|i| tok(self.tokens[i])),
            record: tok(self.record),
            birth_year: self
                .birth_year
                .filter(|a| a.is_valid(r))
                .and_then(|a| i32::try_from(a.value(r)).ok()),
            zip3: s(self.zip3, r).and_then(|z| z.as_bytes().try_into().ok()),
            sex: s(self.sex, r).and_then(super::demo::sex),
            ..RowOut::default()
        }
    }
}
