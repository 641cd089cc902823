//! Pipeline files (`pipelines/*.toml`): which sources to read, how to match, the evidence
//! window, the guard rails and the schedule. A broken file is refused at load with a
//! message naming the file and the field.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::identity::token::Rule;
use crate::link::evidence::Window;
use crate::link::prob::ProbConfig;
use crate::schedule::cron::CronSchedule;
use crate::schema::{Catalog, SourceKind};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field}: {problem}")]
    Field {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("no pipeline `{name}`: looked for {tried}")]
    NotFound { name: String, tried: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Cron expression, six fields, seconds first.
    pub schedule: Option<String>,
    /// IANA time zone of the schedule (default UTC).
    pub timezone: Option<String>,
    /// What the pipeline does; a cross-match unless it says otherwise.
    #[serde(default)]
    pub kind: JobKind,
    /// What a daemon that was down at a schedule time does when it starts again.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Extra tries after a failed run, each after a doubling delay.
    #[serde(default)]
    pub retries: u32,
    /// Delay before the first retry; the n-th retry waits `2^(n-1)` times this.
    #[serde(default = "default_backoff")]
    pub retry_backoff_seconds: u64,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default, rename = "match")]
    pub matching: MatchConfig,
    #[serde(default)]
    pub evidence: Window,
    #[serde(default)]
    pub guard: Guard,
    /// The file it was loaded from.
    #[serde(skip)]
    pub file: PathBuf,
    /// `schedule` and `timezone`, parsed.
    #[serde(skip)]
    pub cron: Option<CronSchedule>,
}

fn default_backoff() -> u64 {
    60
}

/// The job a pipeline runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Resolve identities, cross-match the sources, publish the de-identified zone.
    #[default]
    Crossmatch,
    /// Write the quarter's suppressed report files once its wage data is loaded.
    QuarterlyReport,
    /// Delete files and run data past the configured retention.
    RetentionPurge,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Crossmatch => "crossmatch",
            JobKind::QuarterlyReport => "quarterly_report",
            JobKind::RetentionPurge => "retention_purge",
        }
    }
}

/// Schedule times missed while no daemon was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Record the missed time as skipped and wait for the next one.
    #[default]
    Skip,
    /// Run once at start, however many times were missed.
    Once,
}

/// Who hears about a failed or abandoned run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// `http://host:port/path`: receives a JSON POST per failed or abandoned run.
    pub webhook: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub schema: String,
    /// Relative to the workspace root; may be a glob (`*`, `?`).
    pub path: String,
    pub format: Option<FileFormatName>,
    #[serde(default)]
    pub tokenized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormatName {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    #[serde(default = "default_passes")]
    pub passes: Vec<String>,
    /// The probabilistic pass after the exact ones (`[match.probabilistic]`).
    #[serde(default)]
    pub probabilistic: ProbConfig,
}

fn default_passes() -> Vec<String> {
    ["ssn", "name_dob", "name_dob_zip3", "name_init_sex_dob"]
        .map(String::from)
        .to_vec()
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            passes: default_passes(),
            probabilistic: ProbConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Largest tolerated share of rows lost against the previous successful run.
    pub max_row_drop: f64,
}

impl Default for Guard {
    fn default() -> Self {
        Guard { max_row_drop: 0.20 }
    }
}

impl Pipeline {
    /// Finds a pipeline by file path, or by name in the workspace's `pipelines/` folder.
    pub fn locate(name_or_path: &str, workspace_root: &Path) -> Result<PathBuf, ConfigError> {
        let direct = PathBuf::from(name_or_path);
        let candidates = [
            direct.clone(),
            workspace_root
                .join("pipelines")
                .join(format!("{name_or_path}.toml")),
            workspace_root.join("pipelines").join(name_or_path),
        ];
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| ConfigError::NotFound {
                name: name_or_path.to_string(),
                tried: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn load(path: &Path, catalog: &Catalog) -> Result<Pipeline, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Pipeline::parse(&text, path, catalog)
    }

    pub fn parse(text: &str, path: &Path, catalog: &Catalog) -> Result<Pipeline, ConfigError> {
        let mut p: Pipeline = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().replace('\n', " ").trim().to_string(),
        })?;
        p.file = path.to_path_buf();
        p.validate(catalog)?;
        p.cron = match &p.schedule {
            Some(expr) => Some(
                CronSchedule::parse(expr, p.timezone.as_deref()).map_err(|e| {
                    let field = match e {
                        crate::schedule::cron::ScheduleError::TimeZone(_) => "timezone",
                        crate::schedule::cron::ScheduleError::Cron { .. } => "schedule",
                    };
                    p.field_err(field, e.to_string())
                })?,
            ),
            None => None,
        };
        Ok(p)
    }

    fn field_err(&self, field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            path: self.file.clone(),
            field: field.into(),
            problem: problem.into(),
        }
    }

    fn validate(&self, catalog: &Catalog) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        let mut participants = 0;
        for (i, s) in self.sources.iter().enumerate() {
            let field = |f: &str| format!("sources[{i}].{f}");
            if !names.insert(s.name.as_str()) {
                return Err(self.field_err(field("name"), format!("`{}` is used twice", s.name)));
            }
            let schema = catalog
                .source(&s.schema)
                .map_err(|e| self.field_err(field("schema"), e.to_string()))?;
            if schema.kind == SourceKind::Participants {
                participants += 1;
            }
            if s.path.trim().is_empty() {
                return Err(self.field_err(field("path"), "is empty"));
            }
        }
        match self.kind {
            JobKind::Crossmatch if participants != 1 => {
                return Err(self.field_err(
                    "sources",
                    format!(
                        "needs exactly one source with the participants schema, found {participants}"
                    ),
                ));
            }
            JobKind::QuarterlyReport | JobKind::RetentionPurge if !self.sources.is_empty() => {
                return Err(self.field_err(
                    "sources",
                    format!(
                        "a {} pipeline reads the workspace, not source files; remove them",
                        self.kind.as_str()
                    ),
                ));
            }
            _ => {}
        }
        if self.retries > 10 {
            return Err(self.field_err("retries", "at most 10"));
        }
        if self.retry_backoff_seconds == 0 {
            return Err(self.field_err("retry_backoff_seconds", "at least 1"));
        }
        if let Some(url) = &self.notify.webhook {
            crate::schedule::webhook::Target::parse(url)
                .map_err(|e| self.field_err("notify.webhook", e))?;
        }
        self.passes()?;
        if let Some((field, problem)) = self.matching.probabilistic.problem() {
            return Err(self.field_err(format!("match.probabilistic.{field}"), problem));
        }
        if !(0.0..=1.0).contains(&self.guard.max_row_drop) {
            return Err(self.field_err("guard.max_row_drop", "is a share between 0 and 1"));
        }
        Ok(())
    }

    /// The match passes as token rules.
    pub fn passes(&self) -> Result<Vec<Rule>, ConfigError> {
        if self.matching.passes.is_empty() {
            return Err(self.field_err("match.passes", "lists no pass"));
        }
        self.matching
            .passes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Rule::from_name(p).ok_or_else(|| {
                    self.field_err(
                        format!("match.passes[{i}]"),
                        format!(
                            "unknown rule `{p}` (known: {})",
                            crate::identity::token::RULES.map(|r| r.name()).join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

/// The pipeline files shipped with xmatch; `init` copies them into the workspace.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "nightly-crossmatch.toml",
        include_str!("../../pipelines/nightly-crossmatch.toml"),
    ),
    (
        "quarterly-performance.toml",
        include_str!("../../pipelines/quarterly-performance.toml"),
    ),
    (
        "retention-purge.toml",
        include_str!("../../pipelines/retention-purge.toml"),
    ),
];

/// Every `*.toml` in `dir`, loaded: the good ones, and one error per broken file (a daemon
/// runs the good ones and reports the others).
pub fn load_dir(dir: &Path, catalog: &Catalog) -> (Vec<Pipeline>, Vec<ConfigError>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(source) => {
            return (
                Vec::new(),
                vec![ConfigError::Read {
                    path: dir.to_path_buf(),
                    source,
                }],
            );
        }
    };
    files.sort();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut names = std::collections::HashMap::new();
    for f in files {
        match Pipeline::load(&f, catalog) {
            Ok(p) => {
                if let Some(first) = names.insert(p.name.clone(), f.clone()) {
                    bad.push(p.field_err(
                        "name",
                        format!("`{}` is also the name in {}", p.name, first.display()),
                    ));
                } else {
                    good.push(p);
                }
            }
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}
