//! The command line: parses arguments and calls the library. No logic lives here beyond
//! choosing what to call and how to print it.

use crate::store::ReviewFilter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::generate::{self, Format, GenerateOptions, NoiseProfile};
use crate::pipeline::{Pipeline, RunOptions, demo};
use crate::schema::Catalog;
use crate::workspace::{self, Workspace};

#[derive(Debug, Parser)]
#[command(
    name = "xmatch",
    version,
    about = "Cross-match WIOA participants with partner-agency records on keyed tokens, \
             without spreading Social Security numbers"
)]
pub struct Cli {
    /// Workspace directory (default: $XMATCH_WORKSPACE, else the nearest xmatch.toml
    /// in this directory or its parents).
    #[arg(short = 'w', long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    /// Log filter, e.g. `info` or `xmatch=debug` (default: $XMATCH_LOG, else `warn`).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace: xmatch.toml, a secret key (0600) and its id, the state store,
    /// and the zone directories. Never overwrites an existing key or store.
    Init {
        /// Directory to create or complete (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Generate a synthetic state: participants, public assistance, UI claims, UI wages
    /// and TAA files with realistic errors, plus a ground-truth file.
    Generate {
        /// Number of participants (about 20 wage rows are generated per participant).
        #[arg(long, default_value_t = 10_000)]
        participants: usize,
        /// Seed: the same seed and size give byte-identical files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (default: the workspace's incoming directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// File formats to write.
        #[arg(long, value_enum, default_value_t = FormatArg::Both)]
        format: FormatArg,
        /// Identity-error profile: `default` (the rates in src/generate/rates.rs) or
        /// `heavy` (more and harder SSN, name, DOB and ZIP errors; see the README).
        #[arg(long, value_enum, default_value_t = NoiseArg::Default)]
        noise: NoiseArg,
    },
    /// Run a pipeline now: resolve identities, cross-match, judge evidence and publish the
    /// de-identified zone atomically. Prints the run summary.
    Run {
        /// Pipeline name (in the workspace's pipelines/) or path to its .toml file.
        pipeline: String,
        /// Publish even if a source is empty or shrank past the pipeline's guard rail.
        #[arg(long)]
        accept_drop: bool,
    },
    /// The whole product on the embedded default: make a workspace (default ./xmatch-demo),
    /// generate a mid-size state, run the nightly pipeline and print the summary.
    Demo {
        /// Workspace directory to create or reuse.
        #[arg(long, default_value = "xmatch-demo")]
        dir: PathBuf,
        /// Participants to generate.
        #[arg(long, default_value_t = 100_000)]
        participants: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Identity-error profile of the generated state (as `generate --noise`).
        #[arg(long, value_enum, default_value_t = NoiseArg::Default)]
        noise: NoiseArg,
    },
    /// Run the daemon: every pipelines/*.toml on its cron schedule and time zone, with
    /// retries, catch-up and no overlap (also across machines sharing a PostgreSQL store).
    /// SIGHUP reloads pipeline files; SIGTERM/SIGINT stop it gracefully.
    Serve {
        /// Answer GET /healthz and /metrics (Prometheus) here, e.g. 127.0.0.1:9464.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Seconds SIGTERM waits for a running run before abandoning it (nothing is
        /// half-published: publishing is atomic).
        #[arg(long, default_value_t = 300, value_name = "SECS")]
        grace: u64,
    },
    /// Clerical review: probable links (L…) and identifier conflicts (R…), listed masked
    /// with their field weights; accept or reject them (one, several, or a CSV), or undo
    /// a merge. Every decision is in the audit log with the OS user; later runs honour it.
    Review {
        #[command(subcommand)]
        action: ReviewCommand,
    },
    /// The run history: the last runs (newest first), or one run in detail.
    Runs {
        #[command(subcommand)]
        show: Option<RunsCommand>,
        /// Only runs of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        last: u32,
    },
    /// Size your hardware: generate a state of N participants (not timed), then run the
    /// nightly pipeline twice on it (empty registry, then steady state) and print per-stage
    /// times, rows per second and peak memory of each run.
    ///
    /// With --linkage: judge linkage instead of speed. Runs the pipeline on a generated
    /// state with the exact passes alone, then with the probabilistic pass, and prints
    /// each run's precision and recall against the generator's truth per source, the
    /// bands' sizes and the model's self-reported precision and recall beside the true
    /// ones.
    Bench {
        /// Participants (default 1,000,000; 100,000 with --linkage).
        #[arg(long)]
        participants: Option<usize>,
        /// Workspace directory (default: a fresh one under the system temp directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        linkage: bool,
        /// Identity-error profile of the generated state (as `generate --noise`).
        #[arg(long, value_enum, default_value_t = NoiseArg::Default)]
        noise: NoiseArg,
    },
    /// Partner side: turn a raw source file into keyed tokens with the shared key, so
    /// only tokens leave the agency. Writes CSV or Parquet by OUT's extension.
    Tokenize {
        /// The source schema the input follows (see `xmatch schema`).
        #[arg(long)]
        schema: String,
        /// Raw input file (.csv or .parquet).
        input: PathBuf,
        /// Tokenized output file (.csv or .parquet); written only when complete.
        output: PathBuf,
        /// The shared key file (its id is read from `<KEY>.id`); default: the
        /// workspace's key.
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
    },
    /// Run one read-only SQL query over the published de-identified snapshot.
    Query {
        /// The SQL (tables: see `xmatch tables`).
        sql: String,
        #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
        format: QueryFormat,
        /// Write to this file instead of stdout (required for parquet).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the tables `query` and the reports can read, with their columns.
    Tables,
    /// Reports over the published snapshot.
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// Extracts for federal reporting (written to the secure zone, audited).
    Export {
        #[command(subcommand)]
        export: ExportCommand,
    },
    /// Breach impact: which persons and which PII an exposed file, dataset, run, time
    /// window or list of identifiers affects, the 24-hour reporting deadline, and the
    /// notification list. Every query is recorded in the audit log.
    #[command(group(clap::ArgGroup::new("exposed").required(true)
        .args(["file", "sha256", "dataset", "run", "from", "tokens"])))]
    Breach {
        /// A copy of a file that was exposed (found on a laptop, a share…).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// The SHA-256 of an exposed file.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// A dataset exposed in every run (e.g. participants, crosswalk, matches).
        #[arg(long, value_name = "NAME")]
        dataset: Option<String>,
        /// Every file a run wrote.
        #[arg(long, value_name = "ID")]
        run: Option<i64>,
        /// Start of a window in which a system was compromised (RFC 3339 or UTC date).
        #[arg(long, value_name = "TIME", value_parser = crate::breach::parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// End of the window, exclusive (default: now).
        #[arg(long, value_name = "TIME", requires = "from", value_parser = crate::breach::parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// A partner's file of SSNs or 64-hex SSN tokens, one per line (or CSV with a
        /// `ssn`/`token` header); raw SSNs are tokenized on the fly, never stored.
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
        /// When the breach was discovered (default: now); the deadline is 24 h later.
        #[arg(long, value_name = "TIME", value_parser = crate::breach::parse_time)]
        discovered_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Add temporary IDs and case-management IDs to the notification list (audited).
        #[arg(long, requires = "reason")]
        identify: bool,
        /// Why the identifying list is needed (recorded in the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Write the notification list as CSV, or the whole impact as JSON.
        #[arg(long, value_enum)]
        format: Option<BreachFormat>,
        /// Where to write --format output (default: stdout, with the summary on stderr).
        #[arg(long, value_name = "FILE", requires = "format")]
        out: Option<PathBuf>,
    },
    /// Delete de-identified and secure-zone files past retention ([retention] in
    /// xmatch.toml: years after each program year's closeout date). Lineage keeps a
    /// tombstone of each file with its persons; the registry and audit log are never
    /// purged. Written to the audit log.
    Purge {
        /// Show what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Judge retention as of this date (YYYY-MM-DD; default: today). A later date
        /// than today is accepted only with --dry-run.
        #[arg(long, value_name = "DATE")]
        today: Option<chrono::NaiveDate>,
        /// Why (recorded in the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// The monitor's printout of one participant (Ohio WIOAPL 15-07.1 VII): periods,
    /// programs, services and every cross-match with its source, determination date,
    /// benefit period, benefit type, match pass and weight, and verdict; SSN masked to
    /// the last four digits. Written as HTML to the secure zone and audited; refused
    /// without a reason.
    Evidence {
        /// The person's key (PIRL 100), or a temporary ID (T…).
        #[arg(value_name = "PERSON_KEY|TEMP_ID")]
        subject: String,
        /// Why the printout is needed (recorded in the audit log with the OS user).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// The workspace key's lifecycle: a passphrase-wrapped backup and its restore,
    /// rotation to a new key and the old key's retirement.
    Key {
        #[command(subcommand)]
        action: KeyCommand,
    },
    /// The encrypted secure zone: decrypt one file for a person (audited).
    Secure {
        #[command(subcommand)]
        action: SecureCommand,
    },
    /// Show the source schemas: columns, PII classes, sensitive categories and roles.
    Schema {
        /// One source (default: list all sources).
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// WIOA primary indicators (TEGL 10-16) per program with breakdowns, participants
    /// served and exited, co-enrolment share; small cells suppressed.
    Performance {
        #[arg(long, value_name = "PY")]
        program_year: i32,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Internal use only: no suppression; written to the secure zone and audited.
        #[arg(long)]
        no_suppress: bool,
    },
    /// Missouri P13 co-enrolment findings (person key, rule, dates) and counts per rule
    /// and local area.
    Coenrollment {
        /// Only periods that entered in this program year.
        #[arg(long, value_name = "PY")]
        program_year: Option<i32>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Rejected rows, identity gaps, insufficient evidence, contradicted self-reports and
    /// late data entry.
    DataQuality {
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// One self-contained HTML page of the suppressed performance report (charts by
    /// program, by exit quarter and by breakdown), co-enrolment counts and data quality,
    /// written to the workspace's reports/.
    Html {
        #[arg(long, value_name = "PY")]
        program_year: i32,
    },
    /// Write this quarter's suppressed report files (CSV and JSON) to the workspace's
    /// reports/ area, once the UI wage quarter they need is loaded.
    Publish {
        /// Default: the program year of the quarter that ended last.
        #[arg(long, value_name = "PY")]
        program_year: Option<i32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// PIRL extract: one row per participant period, PIRL element numbers as columns
    /// (100 = person key), after WIPS-style edit checks.
    Pirl {
        #[arg(long, value_name = "PY")]
        program_year: i32,
        /// Write nothing (and fail) when any edit check fails; by default the file is
        /// written with the failure report beside it.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write the key (and a rotation's new key) wrapped under a passphrase (Argon2id,
    /// AES-256-GCM) to a new file, mode 0600. The passphrase comes from
    /// $XMATCH_KEY_PASSPHRASE or is asked twice on the terminal.
    Backup {
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Restore the key from a backup: refused when its key id is not the store's (or
    /// --expect-key-id), or when a different key is already in place.
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The key id the backup must hold (when the store is gone too).
        #[arg(long, value_name = "ID")]
        expect_key_id: Option<String>,
    },
    /// Begin a rotation: a new key beside the current one. Until `retire`, runs tokenize
    /// participants under both keys and accept partner files under either.
    Rotate,
    /// End the rotation from key id OLD: secure-zone files sealed again under the new
    /// key, the old key's registry tokens deleted, the new key made the workspace's.
    /// Refused while a run is in progress, or while some person is known under OLD only
    /// (unless --force).
    Retire {
        /// The key id being retired (the current one, as a check).
        old: String,
        /// Retire even if some persons have no tokens under the new key yet.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecureCommand {
    /// Decrypt one secure-zone file to stdout (or --out FILE, mode 0600), after checking
    /// every chunk; recorded in the audit log with the OS user and the reason. Refused
    /// without a reason.
    Cat {
        /// The file: a path, or one relative to the secure zone (runs/3/crosswalk.parquet).
        file: PathBuf,
        /// Why the plaintext is needed (recorded in the audit log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Write the plaintext to this new file (0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Pending items (oldest first), or all or decided ones.
    List {
        #[arg(long, conflicts_with = "decided")]
        all: bool,
        #[arg(long)]
        decided: bool,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Accept items: an L item links its record to the person; an R item merges the two.
    Accept {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Reject items: the record never links to that person; the two persons stay apart.
    Reject {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Decide a batch from a CSV with the header `id,decision,reason`
    /// (decision: accept or reject). The file is checked whole before anything changes.
    Decide { csv: std::path::PathBuf },
    /// Undo the merge of the person with this key: it is a person of its own again.
    Unmerge {
        person_key: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: status, trigger, timings, counts, error and output files.
    Show { id: i64 },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum QueryFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

impl From<QueryFormat> for crate::report::OutputFormat {
    fn from(f: QueryFormat) -> Self {
        use crate::report::OutputFormat as O;
        match f {
            QueryFormat::Table => O::Table,
            QueryFormat::Csv => O::Csv,
            QueryFormat::Json => O::Json,
            QueryFormat::Parquet => O::Parquet,
        }
    }
}

impl From<ReportFormat> for crate::report::OutputFormat {
    fn from(f: ReportFormat) -> Self {
        use crate::report::OutputFormat as O;
        match f {
            ReportFormat::Table => O::Table,
            ReportFormat::Csv => O::Csv,
            ReportFormat::Json => O::Json,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Parquet,
    Both,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BreachFormat {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NoiseArg {
    Default,
    Heavy,
}

impl From<NoiseArg> for NoiseProfile {
    fn from(n: NoiseArg) -> NoiseProfile {
        match n {
            NoiseArg::Default => NoiseProfile::Default,
            NoiseArg::Heavy => NoiseProfile::Heavy,
        }
    }
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Csv => Format::Csv,
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Both => Format::Both,
        }
    }
}

pub fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("XMATCH_LOG").ok())
        // sqlx warns of "slow statements" by printing the whole statement; a bulk insert of
        // a million rows is slow by design and its text is noise.
        .unwrap_or_else(|| "warn,sqlx=error".to_string());
    // The scheduler library narrates its own start-up at INFO; an operator asking for
    // `info` wants xmatch's lines (unless they name the crate themselves).
    let filter = if filter.contains("tokio_cron_scheduler") {
        filter
    } else {
        format!("{filter},tokio_cron_scheduler=warn")
    };
    // Colour codes only on a terminal: journald and log files get plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub async fn run(cli: Cli) -> Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let find = || Workspace::find(cli.workspace.as_deref(), &cwd);
    match cli.command {
        Command::Init { dir } => {
            let dir = dir
                .or(cli.workspace.clone())
                .or_else(|| std::env::var_os(workspace::WORKSPACE_ENV).map(PathBuf::from))
                .unwrap_or(cwd.clone());
            let report = workspace::init(&dir).await?;
            println!("{report}");
        }
        Command::Generate {
            participants,
            seed,
            out,
            format,
            noise,
        } => {
            let out = match out {
                Some(out) => out,
                None => find()
                    .context("`generate` writes to the workspace's incoming directory; pass --out DIR to write elsewhere")?
                    .incoming_dir(),
            };
            let catalog = Catalog::builtin()?;
            let opts = GenerateOptions {
                participants,
                seed,
                out,
                format: format.into(),
                noise: noise.into(),
            };
            let summary = tokio::task::spawn_blocking(move || generate::generate(&opts, &catalog))
                .await
                .context("the generator thread failed")??;
            println!("{summary}");
        }
        Command::Run {
            pipeline,
            accept_drop,
        } => {
            let ws = find()?;
            let catalog = Catalog::builtin()?;
            let path = Pipeline::locate(&pipeline, ws.root())?;
            let pipeline = Pipeline::load(&path, &catalog)?;
            let opts = RunOptions {
                accept_drop,
                progress: true,
                ..RunOptions::default()
            };
            let outcome = crate::pipeline::execute(&ws, &pipeline, &opts).await?;
            println!("{outcome}");
        }
        Command::Serve { listen, grace } => {
            let ws = find()?;
            let opts = crate::schedule::ServeOptions {
                listen,
                grace: std::time::Duration::from_secs(grace),
                ..Default::default()
            };
            let exit = crate::schedule::serve(ws, opts).await?;
            if !exit.abandoned.is_empty() {
                eprintln!(
                    "xmatch serve: stopped; run(s) {:?} did not finish within the grace period and were marked abandoned (nothing of theirs was published)",
                    exit.abandoned
                );
            }
            // Abandoned runs may still occupy blocking threads; the runtime would wait
            // for them on the way out.
            std::process::exit(0);
        }
        Command::Review { action } => {
            let ws = find()?;
            let store = ws.open_store().await?;
            let actor = crate::report::actor();
            let text = match action {
                ReviewCommand::List {
                    all,
                    decided,
                    limit,
                } => {
                    let filter = match (all, decided) {
                        (true, _) => ReviewFilter::All,
                        (_, true) => ReviewFilter::Decided,
                        _ => ReviewFilter::Pending,
                    };
                    crate::review::list(&store, filter, limit).await?
                }
                ReviewCommand::Accept { ids, reason } => {
                    crate::review::decide(&store, &ids, true, &actor, &reason).await?
                }
                ReviewCommand::Reject { ids, reason } => {
                    crate::review::decide(&store, &ids, false, &actor, &reason).await?
                }
                ReviewCommand::Decide { csv } => {
                    crate::review::decide_csv(&store, &csv, &actor).await?
                }
                ReviewCommand::Unmerge { person_key, reason } => {
                    crate::review::unmerge(&store, &person_key, &actor, &reason).await?
                }
            };
            print!("{text}");
        }
        Command::Runs {
            show,
            pipeline,
            last,
        } => {
            let ws = find()?;
            let store = ws.open_store().await?;
            let text = match show {
                Some(RunsCommand::Show { id }) => {
                    crate::schedule::history::show(&store, id).await?
                }
                None => crate::schedule::history::list(&store, pipeline.as_deref(), last).await?,
            };
            print!("{text}");
        }
        Command::Demo {
            dir,
            participants,
            seed,
            noise,
        } => {
            let report = demo::demo(&dir, participants, seed, noise.into(), 1).await?;
            for run in &report.runs {
                println!("{run}");
            }
            println!(
                "\nworkspace {} is ready: try `xmatch -w {} schema participants`",
                report.workspace.display(),
                report.workspace.display()
            );
        }
        Command::Bench {
            participants,
            dir,
            seed,
            linkage: true,
            noise,
        } => {
            let noise: NoiseProfile = noise.into();
            let participants = participants.unwrap_or(100_000);
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("xmatch-linkage-{participants}-{seed}-{noise}"))
            });
            let report = demo::linkage_bench(&dir, participants, seed, noise).await?;
            println!("{report}");
        }
        Command::Bench {
            participants,
            dir,
            seed,
            linkage: false,
            noise,
        } => {
            let noise: NoiseProfile = noise.into();
            let participants = participants.unwrap_or(1_000_000);
            let dir = dir.unwrap_or_else(|| {
                let suffix = match noise {
                    NoiseProfile::Default => String::new(),
                    other => format!("-{other}"),
                };
                std::env::temp_dir().join(format!("xmatch-bench-{participants}-{seed}{suffix}"))
            });
            let report = demo::demo(&dir, participants, seed, noise, 2).await?;
            println!(
                "generated {} participants in {:.1}s (not counted)\n",
                report.generated_participants, report.generate_seconds
            );
            for (i, run) in report.runs.iter().enumerate() {
                let label = if i == 0 {
                    "first run (empty registry)"
                } else {
                    "second run (steady state)"
                };
                let rows: u64 = run.sources.iter().map(|s| s.read).sum();
                println!(
                    "== {label}: {rows} source rows, {:.0} rows/s",
                    rows as f64 / run.total_seconds()
                );
                println!("{run}\n");
            }
        }
        Command::Tokenize {
            schema,
            input,
            output,
            key,
        } => {
            let key = match key {
                Some(path) => workspace::load_key(&path)?,
                None => find()
                    .context("`tokenize` needs the shared key: pass --key FILE or run inside a workspace")?
                    .load_key()?,
            };
            let tokenizer = crate::identity::Tokenizer::new(key.bytes(), key.id());
            drop(key);
            let catalog = Catalog::builtin()?;
            let source = catalog.source(&schema)?.clone();
            let input = crate::ingest::SourceFile::new(input)?;
            let today = chrono::Local::now().date_naive();
            let summary = tokio::task::spawn_blocking(move || {
                crate::tokenize::tokenize(&input, &output, &source, &tokenizer, today)
            })
            .await
            .context("the tokenize thread failed")??;
            print!("{summary}");
        }
        Command::Query { sql, format, out } => {
            let ws = find()?;
            let session = crate::report::LakeSession::open(&ws.lake_dir()).await?;
            let (schema, batches) = session.query(&sql).await?;
            crate::report::output::write_result(&schema, &batches, format.into(), out.as_deref())?;
        }
        Command::Tables => {
            let ws = find()?;
            let session = crate::report::LakeSession::open(&ws.lake_dir()).await?;
            print!("{}", crate::report::session::render_tables(&session));
        }
        Command::Report { report } => {
            let ws = find()?;
            crate::report::run_command(&ws, report).await?;
        }
        Command::Export {
            export:
                ExportCommand::Pirl {
                    program_year,
                    strict,
                },
        } => {
            let ws = find()?;
            let opts = crate::report::pirl::ExportOptions {
                program_year,
                strict,
            };
            crate::report::pirl::run_command(&ws, &opts).await?;
        }
        Command::Breach {
            file,
            sha256,
            dataset,
            run,
            from,
            to,
            tokens,
            discovered_at,
            identify,
            reason,
            format,
            out,
        } => {
            use crate::breach::{self, Query};
            let query = if let Some(path) = file {
                Query::File { path }
            } else if let Some(h) = sha256 {
                Query::Sha256(h)
            } else if let Some(d) = dataset {
                Query::Dataset(d)
            } else if let Some(r) = run {
                Query::Run(r)
            } else if let Some(from) = from {
                Query::Window {
                    from,
                    to: to.unwrap_or_else(chrono::Utc::now),
                }
            } else {
                Query::Tokens {
                    path: tokens.expect("clap requires one of the exposure arguments"),
                }
            };
            let ws = find()?;
            let catalog = Catalog::builtin()?;
            let store = ws.open_store().await?;
            let mut opts = breach::Options::new(discovered_at.unwrap_or_else(chrono::Utc::now));
            opts.identify = identify;
            opts.reason = reason;
            let impact = breach::assess(&ws, &store, &catalog, &query, &opts).await?;
            store.close().await;
            let rendered = format.map(|f| match f {
                BreachFormat::Csv => breach::render_csv(&impact),
                BreachFormat::Json => breach::render_json(&impact) + "\n",
            });
            match (rendered, out) {
                (None, _) => println!("{impact}"),
                (Some(text), Some(out)) => {
                    write_private(&out, &text)?;
                    println!("{impact}");
                    println!("  written to {}", out.display());
                }
                (Some(text), None) => {
                    eprintln!("{impact}");
                    print!("{text}");
                }
            }
        }
        Command::Purge {
            dry_run,
            today,
            reason,
        } => {
            let now = chrono::Local::now().date_naive();
            let today = today.unwrap_or(now);
            if !dry_run && today > now {
                anyhow::bail!(
                    "--today {today} is later than today ({now}): a purge never runs ahead of the clock; add --dry-run to preview"
                );
            }
            let ws = find()?;
            let opts = crate::purge::PurgeOptions {
                dry_run,
                today,
                actor: crate::breach::current_user(),
                reason,
            };
            let report = crate::purge::purge(&ws, &opts).await?;
            print!("{report}");
        }
        Command::Evidence { subject, reason } => {
            let ws = find()?;
            let printout =
                crate::report::evidence::printout(&ws, &subject, reason.as_deref()).await?;
            print!("{printout}");
        }
        Command::Key { action } => {
            let ws = find()?;
            match action {
                KeyCommand::Backup { to } => {
                    let pass = crate::keys::passphrase(true)?;
                    let report = crate::keys::backup::backup(
                        &ws,
                        &pass,
                        &to,
                        crate::keys::backup::KdfParams::default(),
                    )?;
                    println!("{report}");
                }
                KeyCommand::Restore {
                    from,
                    expect_key_id,
                } => {
                    let pass = crate::keys::passphrase(false)?;
                    let report =
                        crate::keys::backup::restore(&ws, &pass, &from, expect_key_id.as_deref())
                            .await?;
                    println!("{report}");
                }
                KeyCommand::Rotate => {
                    let actor = crate::breach::current_user();
                    println!("{}", crate::keys::rotate::rotate(&ws, &actor).await?);
                }
                KeyCommand::Retire { old, force } => {
                    let actor = crate::breach::current_user();
                    println!(
                        "{}",
                        crate::keys::rotate::retire(&ws, &old, force, &actor).await?
                    );
                }
            }
        }
        Command::Secure {
            action: SecureCommand::Cat { file, reason, out },
        } => {
            let ws = find()?;
            let actor = crate::breach::current_user();
            match out {
                Some(path) => {
                    let mut f = create_private(&path)?;
                    let done =
                        crate::secure::cat::cat(&ws, &file, reason.as_deref(), &actor, &mut f)
                            .await;
                    if done.is_err() {
                        let _ = std::fs::remove_file(&path);
                    }
                    let done = done?;
                    eprintln!(
                        "decrypted {} ({} bytes, run {}, key id {}) to {}",
                        done.recorded_as,
                        done.bytes,
                        done.run_id,
                        done.key_id,
                        path.display()
                    );
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut lock = stdout.lock();
                    crate::secure::cat::cat(&ws, &file, reason.as_deref(), &actor, &mut lock)
                        .await?;
                }
            }
        }
        Command::Schema { name } => {
            let catalog = Catalog::builtin()?;
            match name {
                None => print!("{}", crate::schema::render_catalog(&catalog)),
                Some(name) => print!("{}", crate::schema::render_source(catalog.source(&name)?)),
            }
        }
    }
    Ok(())
}

/// A new file only its owner can read (decrypted secure-zone contents); never overwrites.
fn create_private(path: &std::path::Path) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Writes a notification list readable only by its owner: it names persons.
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
