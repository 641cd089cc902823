//! One entry point for every kind of pipeline, as the daemon and `xmatch run` call it.

use serde::Serialize;

use super::config::{JobKind, Pipeline};
use super::run::{RunError, RunOptions, run};
use super::summary::RunSummary;
use crate::workspace::Workspace;

/// What a run produced, by pipeline kind.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum JobOutcome {
    Crossmatch(RunSummary),
}

impl std::fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobOutcome::Crossmatch(s) => s.fmt(f),
        }
    }
}

/// Runs `pipeline` once, whatever its kind, under the run frame (history, lease,
/// heartbeat) of [`super::run::with_run`].
pub async fn execute(
    ws: &Workspace,
    pipeline: &Pipeline,
    opts: &RunOptions,
) -> Result<JobOutcome, RunError> {
    match pipeline.kind {
        JobKind::Crossmatch => run(ws, pipeline, opts).await.map(JobOutcome::Crossmatch),
        JobKind::QuarterlyReport | JobKind::RetentionPurge => Err(RunError::Join(format!(
            "{} pipelines arrive with the report and purge modules",
            pipeline.kind.as_str()
        ))),
    }
}
