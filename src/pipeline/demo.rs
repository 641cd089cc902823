//! `xmatch demo` and `xmatch bench`: a whole state on the embedded default, end to end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::config::Pipeline;
use super::run::{RunError, RunOptions, run};
use super::summary::RunSummary;
use crate::generate::{self, Format, GenerateOptions, NoiseProfile};
use crate::schema::Catalog;
use crate::workspace::{self, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error("generating the synthetic state: {0}")]
    Generate(String),
}

/// What `demo` and `bench` did.
pub struct DemoReport {
    pub workspace: PathBuf,
    pub generated_participants: usize,
    pub generate_seconds: f64,
    pub runs: Vec<RunSummary>,
}

/// Makes (or reuses) a workspace in `dir`, generates `participants` people with the
/// `noise` profile into its incoming folder unless they are already there, and runs the
/// nightly pipeline `runs` times on the same files.
pub async fn demo(
    dir: &Path,
    participants: usize,
    seed: u64,
    noise: NoiseProfile,
    runs: usize,
) -> Result<DemoReport, DemoError> {
    workspace::init(dir).await?;
    let ws = Workspace::open(dir)?;
    let catalog = Catalog::builtin()?;
    let incoming = ws.incoming_dir();
    let t = Instant::now();
    let manifest = incoming.join("manifest.json");
    let same = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
        .is_some_and(|m| {
            m.get("participants").and_then(|v| v.as_u64()) == Some(participants as u64)
                && m.get("seed").and_then(|v| v.as_u64()) == Some(seed)
                // Manifests from before noise profiles are default-noise states.
                && m.get("noise").and_then(|v| v.as_str()).unwrap_or("default")
                    == noise.as_str()
        });
    if !same {
        let opts = GenerateOptions {
            participants,
            seed,
            out: incoming.clone(),
            format: Format::Parquet,
            noise,
        };
        let cat = catalog.clone();
        tokio::task::spawn_blocking(move || generate::generate(&opts, &cat))
            .await
            .map_err(|e| DemoError::Generate(e.to_string()))?
            .map_err(|e| DemoError::Generate(e.to_string()))?;
    }
    let generate_seconds = t.elapsed().as_secs_f64();
    let path = Pipeline::locate("nightly-crossmatch", ws.root())?;
    let pipeline = Pipeline::load(&path, &catalog)?;
    let mut summaries = Vec::new();
    for i in 0..runs {
        reset_peak_rss();
        let opts = RunOptions {
            trigger: if runs > 1 {
                format!("bench-{}", i + 1)
            } else {
                "demo".into()
            },
            progress: true,
            ..RunOptions::default()
        };
        summaries.push(run(&ws, &pipeline, &opts).await?);
    }
    Ok(DemoReport {
        workspace: ws.root().to_path_buf(),
        generated_participants: participants,
        generate_seconds,
        runs: summaries,
    })
}

/// Resets the kernel's peak-RSS counter so each benchmark run reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
