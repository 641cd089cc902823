//! Source schemas: the declarative files in `schemas/` are the single source of truth for
//! which columns a source has, how they are validated, what the de-identified zone keeps
//! and which PII a file exposes. Code asks this module; it never lists columns itself.
//!
//! The files are compiled into the binary so that `xmatch` works from any directory and a
//! workspace cannot silently drift from the rules its lineage was recorded under.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;

/// The schema files shipped with xmatch, by file name.
const BUILTIN: &[(&str, &str)] = &[
    (
        "participants.toml",
        include_str!("../schemas/participants.toml"),
    ),
    (
        "public_assistance.toml",
        include_str!("../schemas/public_assistance.toml"),
    ),
    ("ui_claims.toml", include_str!("../schemas/ui_claims.toml")),
    ("ui_wages.toml", include_str!("../schemas/ui_wages.toml")),
    ("taa.toml", include_str!("../schemas/taa.toml")),
];
const SENSITIVITY: &str = include_str!("../schemas/sensitivity.toml");
const SERVICES: &str = include_str!("../schemas/services.toml");
/// The PIRL extract's element list (`report::pirl` parses it against the participants
/// schema, so it can never disagree with it about a column's PII class).
pub const PIRL: &str = include_str!("../schemas/pirl.toml");

/// File names of every schema file compiled in (sources plus the two catalogues), so a
/// test can prove nothing in `schemas/` is left out.
pub fn builtin_file_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    names.extend(["sensitivity.toml", "services.toml", "pirl.toml"]);
    names
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schemas/{file}: {source}")]
    Parse {
        file: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("schemas/{file}: column `{column}`: {problem}")]
    Column {
        file: String,
        column: String,
        problem: String,
    },
    #[error("schemas/{file}: {problem}")]
    Invalid { file: String, problem: String },
    #[error("unknown source schema `{0}` (known: {1})")]
    Unknown(String, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiClass {
    /// Identifies a person on its own (SSN, names, addresses, phone, email, record IDs).
    Direct,
    /// Identifies a person in combination (DOB, ZIP, sex, race).
    Quasi,
    None,
}

impl PiiClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiClass::Direct => "direct",
            PiiClass::Quasi => "quasi",
            PiiClass::None => "none",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Date,
    Int,
    Decimal,
    Flag,
    Code,
    YearQuarter,
    ServiceList,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityRole {
    Ssn,
    FirstName,
    MiddleName,
    LastName,
    Dob,
    Sex,
    Zip,
    /// The source's own record identifier (case number, claim id).
    RecordId,
    /// A temporary ID that xmatch issued earlier.
    TempId,
}

/// What the de-identified zone keeps of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deid {
    Drop,
    Keep,
    BirthYear,
    Zip3,
    /// Replaced by a keyed token (e.g. employer accounts).
    Token,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The case-management export: the people being matched.
    Participants,
    /// Another agency's records that can document eligibility.
    Evidence,
    /// UI quarterly wage records: outcomes, not eligibility.
    Wages,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(default)]
    pirl: Option<u32>,
    #[serde(rename = "type")]
    ty: ColumnType,
    #[serde(default)]
    required: bool,
    pii: PiiClass,
    #[serde(default)]
    sensitive: Option<String>,
    #[serde(default)]
    identity: Option<IdentityRole>,
    #[serde(default)]
    deid: Option<Deid>,
    #[serde(default)]
    allowed: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    #[serde(default)]
    program: Option<String>,
    #[serde(default)]
    program_column: Option<String>,
    determination_date: String,
    period_start: String,
    period_end: String,
    benefit_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    kind: SourceKind,
    description: String,
    columns: Vec<RawColumn>,
    #[serde(default)]
    evidence: Option<RawEvidence>,
    #[serde(default)]
    identified_by: Vec<Vec<String>>,
}

/// A sensitive-PII category with its severity rank (1 = most severe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub rank: usize,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub pirl: Option<u32>,
    pub ty: ColumnType,
    pub required: bool,
    pub pii: PiiClass,
    /// A category name from `sensitivity.toml`.
    pub sensitive: Option<String>,
    pub identity: Option<IdentityRole>,
    pub deid: Deid,
    pub allowed: Vec<String>,
    pub description: Option<String>,
}

/// Where a source's evidence of program receipt comes from.
#[derive(Debug, Clone)]
pub enum ProgramSource {
    /// Every row is of one program (e.g. `UI`).
    Fixed(String),
    /// The program is in this column (e.g. SNAP or TANF).
    Column(String),
}

/// Which columns play which part in cross-match evidence.
#[derive(Debug, Clone)]
pub struct EvidenceRoles {
    pub program: ProgramSource,
    pub determination_date: String,
    pub period_start: String,
    pub period_end: String,
    pub benefit_type: String,
}

#[derive(Debug, Clone)]
pub struct SourceSchema {
    pub name: String,
    pub kind: SourceKind,
    pub description: String,
    pub columns: Vec<Column>,
    pub evidence: Option<EvidenceRoles>,
    /// Alternative sets of identity columns, one of which a row must carry in full (a
    /// non-blank value in each) to be kept: a row with none of them is something no pass,
    /// exact or probabilistic, could ever link. Empty: no such rule (participants, whose
    /// record id alone makes a person).
    pub identified_by: Vec<Vec<String>>,
}

impl SourceSchema {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Position of the column in the schema's declared order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column that feeds an identity field, if the source has one.
    pub fn identity_column(&self, role: IdentityRole) -> Option<&Column> {
        self.columns.iter().find(|c| c.identity == Some(role))
    }

    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub triggers_participation: bool,
}

/// Every source schema plus the sensitivity order and the service catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    sources: BTreeMap<String, SourceSchema>,
    categories: Vec<Category>,
    services: Vec<Service>,
}

impl Catalog {
    /// The schemas compiled into this binary.
    pub fn builtin() -> Result<Catalog, SchemaError> {
        let files: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        Catalog::from_texts(&files, SENSITIVITY, SERVICES)
    }

    /// Builds a catalogue from schema texts (file name, contents); used by `builtin` and by
    /// tests that check a broken schema is refused with a message naming file and column.
    pub fn from_texts(
        sources: &[(String, String)],
        sensitivity: &str,
        services: &str,
    ) -> Result<Catalog, SchemaError> {
        let categories = parse_categories(sensitivity)?;
        let services = parse_services(services)?;
        let known: HashSet<&str> = categories.iter().map(|c| c.name.as_str()).collect();
        let mut map = BTreeMap::new();
        for (file, text) in sources {
            let raw: RawSource = toml::from_str(text).map_err(|e| SchemaError::Parse {
                file: file.clone(),
                source: Box::new(e),
            })?;
            let schema = validate_source(file, raw, &known)?;
            if map.contains_key(&schema.name) {
                return Err(SchemaError::Invalid {
                    file: file.clone(),
                    problem: format!("a second schema is named `{}`", schema.name),
                });
            }
            map.insert(schema.name.clone(), schema);
        }
        Ok(Catalog {
            sources: map,
            categories,
            services,
        })
    }

    pub fn source(&self, name: &str) -> Result<&SourceSchema, SchemaError> {
        self.sources.get(name).ok_or_else(|| {
            SchemaError::Unknown(
                name.to_string(),
                self.sources.keys().cloned().collect::<Vec<_>>().join(", "),
            )
        })
    }

    pub fn sources(&self) -> impl Iterator<Item = &SourceSchema> {
        self.sources.values()
    }

    /// Categories, most severe first.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    pub fn category(&self, name: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// The most severe of the given categories (unknown names are ignored).
    pub fn most_severe<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<&Category> {
        names
            .into_iter()
            .filter_map(|n| self.category(n))
            .min_by_key(|c| c.rank)
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, code: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.code == code)
    }
}

fn parse_categories(text: &str) -> Result<Vec<Category>, SchemaError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        category: Vec<RawCategory>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawCategory {
        name: String,
        description: String,
    }
    let file: File = toml::from_str(text).map_err(|e| SchemaError::Parse {
        file: "sensitivity.toml".into(),
        source: Box::new(e),
    })?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, c) in file.category.into_iter().enumerate() {
        if !seen.insert(c.name.clone()) {
            return Err(SchemaError::Invalid {
                file: "sensitivity.toml".into(),
                problem: format!("category `{}` is listed twice", c.name),
            });
        }
        out.push(Category {
            name: c.name,
            rank: i + 1,
            description: c.description,
        });
    }
    Ok(out)
}

fn parse_services(text: &str) -> Result<Vec<Service>, SchemaError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        service: Vec<RawService>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawService {
        code: String,
        name: String,
        kind: String,
        triggers_participation: bool,
    }
    let file: File = toml::from_str(text).map_err(|e| SchemaError::Parse {
        file: "services.toml".into(),
        source: Box::new(e),
    })?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for s in file.service {
        let bad = |problem: String| SchemaError::Invalid {
            file: "services.toml".into(),
            problem,
        };
        if !seen.insert(s.code.clone()) {
            return Err(bad(format!("service code `{}` is listed twice", s.code)));
        }
        // The code is written into a `;`/`:`-separated list, so it must not contain them.
        if s.code.is_empty() || !s.code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(format!(
                "service code `{}` must be letters and digits",
                s.code
            )));
        }
        if !["basic", "individualized", "training"].contains(&s.kind.as_str()) {
            return Err(bad(format!(
                "service `{}` has unknown kind `{}`",
                s.code, s.kind
            )));
        }
        out.push(Service {
            code: s.code,
            name: s.name,
            kind: s.kind,
            triggers_participation: s.triggers_participation,
        });
    }
    Ok(out)
}

fn validate_source(
    file: &str,
    raw: RawSource,
    categories: &HashSet<&str>,
) -> Result<SourceSchema, SchemaError> {
    let col_err = |column: &str, problem: String| SchemaError::Column {
        file: file.to_string(),
        column: column.to_string(),
        problem,
    };
    let mut names = HashSet::new();
    let mut roles = HashSet::new();
    let mut columns = Vec::with_capacity(raw.columns.len());
    for c in raw.columns {
        if !names.insert(c.name.clone()) {
            return Err(col_err(&c.name, "declared twice".into()));
        }
        if !c
            .name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        {
            return Err(col_err(
                &c.name,
                "names are lower_snake_case so SQL and Parquet readers agree".into(),
            ));
        }
        if let Some(role) = c.identity
            && !roles.insert(role)
        {
            return Err(col_err(
                &c.name,
                format!("identity role {role:?} is already played by another column"),
            ));
        }
        if let Some(cat) = &c.sensitive
            && !categories.contains(cat.as_str())
        {
            return Err(col_err(
                &c.name,
                format!("unknown sensitive category `{cat}` (see sensitivity.toml)"),
            ));
        }
        if (c.ty == ColumnType::Code) == c.allowed.is_empty() {
            return Err(col_err(
                &c.name,
                "a `code` column lists its `allowed` values, and only a code column does".into(),
            ));
        }
        let deid = match (c.pii, c.deid) {
            (PiiClass::Direct, Some(Deid::Keep)) => {
                return Err(col_err(
                    &c.name,
                    "a direct identifier cannot be kept in the de-identified zone".into(),
                ));
            }
            (PiiClass::Quasi, None) => {
                return Err(col_err(
                    &c.name,
                    "a quasi-identifier must say how it is de-identified (`deid`)".into(),
                ));
            }
            (_, Some(d)) => d,
            (PiiClass::Direct, None) => Deid::Drop,
            (PiiClass::None, None) => Deid::Keep,
        };
        if deid == Deid::BirthYear && c.identity != Some(IdentityRole::Dob) {
            return Err(col_err(
                &c.name,
                "birth_year applies to the dob column".into(),
            ));
        }
        if deid == Deid::Zip3 && c.identity != Some(IdentityRole::Zip) {
            return Err(col_err(&c.name, "zip3 applies to the zip column".into()));
        }
        columns.push(Column {
            name: c.name,
            pirl: c.pirl,
            ty: c.ty,
            required: c.required,
            pii: c.pii,
            sensitive: c.sensitive,
            identity: c.identity,
            deid,
            allowed: c.allowed,
            description: c.description,
        });
    }
    let invalid = |problem: String| SchemaError::Invalid {
        file: file.to_string(),
        problem,
    };
    if !columns
        .iter()
        .any(|c| c.identity == Some(IdentityRole::Ssn))
    {
        return Err(invalid(
            "every source needs an `identity = \"ssn\"` column".into(),
        ));
    }
    let evidence = match (raw.kind, raw.evidence) {
        (SourceKind::Evidence, None) => {
            return Err(invalid(
                "an evidence source needs an [evidence] table naming its columns' roles".into(),
            ));
        }
        (SourceKind::Evidence, Some(e)) => {
            let program = match (e.program, e.program_column) {
                (Some(p), None) => ProgramSource::Fixed(p),
                (None, Some(col)) => ProgramSource::Column(col),
                _ => {
                    return Err(invalid(
                        "[evidence] names exactly one of `program` and `program_column`".into(),
                    ));
                }
            };
            let roles = EvidenceRoles {
                program,
                determination_date: e.determination_date,
                period_start: e.period_start,
                period_end: e.period_end,
                benefit_type: e.benefit_type,
            };
            let mut referenced = vec![
                ("determination_date", &roles.determination_date),
                ("period_start", &roles.period_start),
                ("period_end", &roles.period_end),
                ("benefit_type", &roles.benefit_type),
            ];
            if let ProgramSource::Column(c) = &roles.program {
                referenced.push(("program_column", c));
            }
            for (role, col) in referenced {
                let Some(found) = columns.iter().find(|c| &c.name == col) else {
                    return Err(invalid(format!(
                        "[evidence] {role} names `{col}`, which is not a column"
                    )));
                };
                let is_date = role.ends_with("date") || role.starts_with("period");
                if is_date && found.ty != ColumnType::Date {
                    return Err(invalid(format!(
                        "[evidence] {role} names `{col}`, which is not a date column"
                    )));
                }
            }
            Some(roles)
        }
        (_, Some(_)) => {
            return Err(invalid(
                "only an `evidence` source has an [evidence] table".into(),
            ));
        }
        (_, None) => None,
    };
    for group in &raw.identified_by {
        if group.is_empty() {
            return Err(invalid("`identified_by` holds an empty list".into()));
        }
        for col in group {
            match columns.iter().find(|c| &c.name == col) {
                None => {
                    return Err(invalid(format!(
                        "`identified_by` names `{col}`, which is not a column"
                    )));
                }
                Some(c) if c.identity.is_none() => {
                    return Err(invalid(format!(
                        "`identified_by` names `{col}`, which feeds no identity field"
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(SourceSchema {
        name: raw.name,
        kind: raw.kind,
        description: raw.description,
        columns,
        evidence,
        identified_by: raw.identified_by,
    })
}

impl ColumnType {
    /// The Arrow type a raw source file carries this column as. Identity inputs stay
    /// strings because sources format them in many ways; normalizing them is `identity`'s job.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Date => DataType::Date32,
            ColumnType::Int => DataType::Int64,
            ColumnType::Flag => DataType::Int8,
            // Money in cents exactly: floating point would drift in sums and medians.
            ColumnType::Decimal => DataType::Decimal128(14, 2),
            ColumnType::String
            | ColumnType::Code
            | ColumnType::YearQuarter
            | ColumnType::ServiceList => DataType::Utf8,
        }
    }
}

impl SourceSchema {
    /// The Arrow schema of a raw source file in this layout. Every field is nullable:
    /// a missing required value is a row to reject with a reason, not a file to refuse.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow_type(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Participants => "participants",
            SourceKind::Evidence => "evidence",
            SourceKind::Wages => "wages",
        })
    }
}

/// A one-line-per-source listing, for `xmatch schema`.
pub fn render_catalog(catalog: &Catalog) -> String {
    let mut out = String::new();
    for s in catalog.sources() {
        let direct = s
            .columns
            .iter()
            .filter(|c| c.pii == PiiClass::Direct)
            .count();
        let quasi = s
            .columns
            .iter()
            .filter(|c| c.pii == PiiClass::Quasi)
            .count();
        out.push_str(&format!(
            "{:<18} {:<12} {:>2} columns ({direct} direct, {quasi} quasi)  {}\n",
            s.name,
            s.kind.to_string(),
            s.columns.len(),
            s.description
        ));
    }
    out.push_str("\nsensitive categories, most severe first: ");
    let cats: Vec<&str> = catalog
        .categories()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    out.push_str(&cats.join(" > "));
    out.push('\n');
    out
}

/// One source's columns with their classes and roles, for `xmatch schema NAME`.
pub fn render_source(s: &SourceSchema) -> String {
    let mut out = format!("{} ({}): {}\n\n", s.name, s.kind, s.description);
    out.push_str(&format!(
        "{:<32} {:>5} {:<13} {:<7} {:<18} {:<12} {:<10}\n",
        "column", "pirl", "type", "pii", "sensitive", "identity", "deid"
    ));
    for c in &s.columns {
        out.push_str(&format!(
            "{:<32} {:>5} {:<13} {:<7} {:<18} {:<12} {:<10}{}\n",
            c.name,
            c.pirl.map(|p| p.to_string()).unwrap_or_default(),
            format!("{:?}", c.ty).to_lowercase(),
            c.pii.as_str(),
            c.sensitive.as_deref().unwrap_or(""),
            c.identity
                .map(|r| format!("{r:?}").to_lowercase())
                .unwrap_or_default(),
            format!("{:?}", c.deid).to_lowercase(),
            if c.required { " required" } else { "" }
        ));
    }
    if let Some(e) = &s.evidence {
        let program = match &e.program {
            ProgramSource::Fixed(p) => p.clone(),
            ProgramSource::Column(c) => format!("column {c}"),
        };
        out.push_str(&format!(
            "\nevidence: program {program}; determination {}; period {} .. {}; benefit type {}\n",
            e.determination_date, e.period_start, e.period_end, e.benefit_type
        ));
    }
    out
}
