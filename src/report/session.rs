//! One DataFusion session over the published snapshot.
//!
//! `lake/current` is resolved once ([`crate::lake::current_snapshot`]) and every table is
//! registered under that snapshot's directory, so a publish during a query cannot mix two
//! runs' files. Each dataset directory becomes a listing table; its Hive partition column
//! (`program_year=…`, `year_quarter=…`) is declared, so a filter on it prunes whole
//! directories before any file is opened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::prelude::SessionConfig;

use super::ReportError;
use crate::schema::Catalog;

/// The rules for excluding exiters from the indicators, as a table the reports read.
pub const EXCLUSION_RULES_SQL: &str = include_str!("sql/exclusion_rules.sql");
/// One row per participant period and WIOA program with cohort years and breakdown groups.
pub const INDICATOR_BASE_SQL: &str = include_str!("sql/indicator_base.sql");

/// A table the session knows.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    /// `dataset` (a published Parquet dataset), `catalog` or `view`.
    pub kind: &'static str,
    pub partition: Option<String>,
    pub files: usize,
    pub schema: SchemaRef,
}

pub struct LakeSession {
    ctx: SessionContext,
    run_id: i64,
    snapshot: PathBuf,
    tables: Vec<TableInfo>,
}

/// The type of a Hive partition column. `program_year` is an integer so that
/// `program_year = 2024` and ranges compare numerically; anything else stays a string
/// (a null partition is the literal `__HIVE_DEFAULT_PARTITION__`, see the lake module).
fn partition_type(column: &str) -> DataType {
    match column {
        "program_year" => DataType::Int32,
        _ => DataType::Utf8,
    }
}

impl LakeSession {
    /// Opens the published snapshot of `lake_dir`. Fails with a clear message when nothing
    /// has been published yet.
    pub async fn open(lake_dir: &Path) -> Result<LakeSession, ReportError> {
        let (run_id, snapshot) = crate::lake::current_snapshot(lake_dir)?
            .ok_or_else(|| ReportError::NothingPublished(lake_dir.to_path_buf()))?;
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_collect_statistics(true);
        // DataFusion 55 pushes a MIN/MAX aggregate's running bound into the Parquet scan
        // even when another aggregate of the same node needs the rows it prunes:
        // `SELECT min(entry_date), max(coalesce(exit_date, entry_date))` returned a
        // wrong maximum here (apache/datafusion#24816, fixed after 55.2). Off until the
        // pinned version has the fix; `query` refuses `SET`, so it stays off.
        config
            .options_mut()
            .optimizer
            .enable_aggregate_dynamic_filter_pushdown = false;
        let ctx = SessionContext::new_with_config(config);
        let mut session = LakeSession {
            ctx,
            run_id,
            snapshot: snapshot.clone(),
            tables: Vec::new(),
        };
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshot)
            .map_err(|source| ReportError::Io {
                path: snapshot.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            session.register_dataset(&dir).await?;
        }
        session.register_catalog()?;
        session
            .register_view("exclusion_rules", EXCLUSION_RULES_SQL)
            .await?;
        if session.has_table("participants") {
            session
                .register_view("indicator_base", INDICATOR_BASE_SQL)
                .await?;
        }
        Ok(session)
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    pub fn snapshot_dir(&self) -> &Path {
        &self.snapshot
    }

    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    pub fn has_table(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.name == name)
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    async fn register_dataset(&mut self, dir: &Path) -> Result<(), ReportError> {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            return Ok(());
        };
        let files = crate::lake::parquet_files(dir).len();
        if files == 0 {
            // A dataset with no rows this run (e.g. no evidence links): nothing to infer a
            // schema from. It is simply absent; a query naming it says "table not found".
            return Ok(());
        }
        let partition = std::fs::read_dir(dir)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .find_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.split_once('=').map(|(k, _)| k.to_string())
            });
        let state = self.ctx.state();
        let mut options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        if let Some(p) = &partition {
            options = options.with_table_partition_cols(vec![(p.clone(), partition_type(p))]);
        }
        let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
        let schema = options.infer_schema(&state, &url).await?;
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        let table = ListingTable::try_new(config)?;
        let schema = datafusion::catalog::TableProvider::schema(&table);
        self.ctx.register_table(name.as_str(), Arc::new(table))?;
        self.tables.push(TableInfo {
            name,
            kind: "dataset",
            partition,
            files,
            schema,
        });
        Ok(())
    }

    /// `service_catalog`: the service codes of `schemas/services.toml`, so a report can
    /// say "services that trigger participation" by joining, instead of repeating the
    /// 13 non-triggering codes in SQL.
    fn register_catalog(&mut self) -> Result<(), ReportError> {
        let catalog = Catalog::builtin()?;
        let services = catalog.services();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("code", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("triggers_participation", DataType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    services.iter().map(|s| s.code.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    services.iter().map(|s| s.name.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    services.iter().map(|s| s.kind.as_str()),
                )),
                Arc::new(BooleanArray::from(
                    services
                        .iter()
                        .map(|s| s.triggers_participation)
                        .collect::<Vec<_>>(),
                )),
            ],
        )?;
        let table = MemTable::try_new(schema.clone(), vec![vec![batch]])?;
        self.ctx
            .register_table("service_catalog", Arc::new(table))?;
        self.tables.push(TableInfo {
            name: "service_catalog".into(),
            kind: "catalog",
            partition: None,
            files: 0,
            schema,
        });
        Ok(())
    }

    async fn register_view(&mut self, name: &str, sql: &str) -> Result<(), ReportError> {
        let df = self.ctx.sql(sql).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        self.ctx.register_table(name, df.into_view())?;
        self.tables.push(TableInfo {
            name: name.into(),
            kind: "view",
            partition: None,
            files: 0,
            schema,
        });
        Ok(())
    }

    /// Registers (or replaces) a report's intermediate table. The report contexts share
    /// this session's catalog, so the name is replaced rather than added twice.
    pub fn set_scratch_table(
        &self,
        name: &str,
        table: Arc<dyn datafusion::catalog::TableProvider>,
    ) -> Result<(), ReportError> {
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, table)?;
        Ok(())
    }

    /// Runs one read-only SQL statement: DDL, DML and `SET` are refused, so an ad-hoc
    /// query cannot change the session the reports rely on, nor write files.
    pub async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ReportError> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = self.ctx.sql_with_options(sql, options).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    /// The physical plan of a query, as text (what `EXPLAIN` shows): lets a test see which
    /// files a query will open.
    pub async fn physical_plan(&self, sql: &str) -> Result<String, ReportError> {
        let df = self.ctx.sql(sql).await?;
        let plan = df.create_physical_plan().await?;
        Ok(datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string())
    }
}

/// `xmatch tables`: every table with its columns and types.
pub fn render_tables(session: &LakeSession) -> String {
    let mut out = format!(
        "snapshot of run {} ({})\n",
        session.run_id(),
        session.snapshot_dir().display()
    );
    for t in session.tables() {
        let what = match (t.kind, &t.partition) {
            ("dataset", Some(p)) => format!("dataset, {} files, partitioned by {p}", t.files),
            ("dataset", None) => format!("dataset, {} files", t.files),
            (k, _) => k.to_string(),
        };
        out.push_str(&format!("\n{} ({what})\n", t.name));
        for f in t.schema.fields() {
            out.push_str(&format!("  {:<32} {}\n", f.name(), f.data_type()));
        }
    }
    out
}
