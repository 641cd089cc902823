//! One entry point for every kind of pipeline, as the daemon and `xmatch run` call it.
//! Each kind's body runs inside the run frame of [`super::run::with_run`] (history,
//! lease, heartbeat), so a quarterly report or a purge is recorded, kept from overlapping
//! itself and retried exactly like a cross-match.

use std::fmt;

use serde::Serialize;

use super::config::{JobKind, Pipeline};
use super::run::{RunError, RunOptions, run, with_run};
use super::summary::RunSummary;
use crate::purge::{PurgeOptions, PurgeReport, purge_with_store};
use crate::report::publish::{PublishOptions, QuarterlyOutcome, publish_quarterly};
use crate::workspace::Workspace;

/// What a run produced, by pipeline kind.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum JobOutcome {
    Crossmatch(Box<RunSummary>),
    QuarterlyReport(QuarterlySummary),
    RetentionPurge(PurgeReport),
}

/// The report files a quarterly run wrote (kept as the run's summary).
#[derive(Debug, Clone, Serialize)]
pub struct QuarterlySummary {
    pub program_year: i32,
    pub reporting_quarter: String,
    pub wage_quarter: String,
    pub dir: String,
    pub files: Vec<String>,
}

impl fmt::Display for QuarterlySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "program year {}, quarter ending {} (wage quarter {} loaded): reports written to {}",
            self.program_year, self.reporting_quarter, self.wage_quarter, self.dir
        )?;
        for file in &self.files {
            writeln!(f, "  {file}")?;
        }
        Ok(())
    }
}

impl fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobOutcome::Crossmatch(s) => s.fmt(f),
            JobOutcome::QuarterlyReport(s) => s.fmt(f),
            JobOutcome::RetentionPurge(s) => s.fmt(f),
        }
    }
}

/// Runs `pipeline` once, whatever its kind.
pub async fn execute(
    ws: &Workspace,
    pipeline: &Pipeline,
    opts: &RunOptions,
) -> Result<JobOutcome, RunError> {
    match pipeline.kind {
        JobKind::Crossmatch => run(ws, pipeline, opts)
            .await
            .map(|s| JobOutcome::Crossmatch(Box::new(s))),
        JobKind::QuarterlyReport => with_run(ws, pipeline, opts, |cx| {
            let publish = PublishOptions {
                program_year: None,
                today: cx.opts.today,
            };
            match cx.handle.block_on(publish_quarterly(&cx.ws, &publish)) {
                Ok(QuarterlyOutcome::Published(p)) => Ok(QuarterlySummary {
                    program_year: p.program_year,
                    reporting_quarter: p.reporting_quarter.to_string(),
                    wage_quarter: p.wage_quarter.to_string(),
                    dir: p.dir.display().to_string(),
                    files: p.files.iter().map(|f| f.display().to_string()).collect(),
                }),
                // Not an error: the precondition is checked again at the next firing.
                Ok(QuarterlyOutcome::NotReady { reason }) => Err(RunError::NotReady(reason)),
                Err(e) => Err(e.into()),
            }
        })
        .await
        .map(JobOutcome::QuarterlyReport),
        JobKind::RetentionPurge => with_run(ws, pipeline, opts, |cx| {
            let purge = PurgeOptions {
                dry_run: false,
                today: cx.opts.today,
                actor: format!("xmatch pipeline {} (run {})", cx.pipeline.name, cx.run_id),
                reason: format!("retention policy, {} run {}", cx.opts.trigger, cx.run_id),
            };
            cx.handle
                .block_on(purge_with_store(&cx.ws, &cx.store, &purge))
                .map_err(RunError::from)
        })
        .await
        .map(JobOutcome::RetentionPurge),
    }
}
