//! `xmatch demo` and `xmatch bench`: a whole state on the embedded default, end to end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::config::Pipeline;
use super::run::{RunError, RunOptions, run};
use super::summary::RunSummary;
use super::truth::{Score, TruthError};
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
    #[error("scoring against the truth: {0}")]
    Truth(#[from] TruthError),
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

/// What `xmatch bench --linkage` measured: one state, run with the exact passes alone and
/// then with the probabilistic pass, each scored against the generator's truth.
pub struct LinkageBench {
    pub workspace: PathBuf,
    pub participants: usize,
    pub noise: NoiseProfile,
    pub exact: Score,
    pub with_probabilistic: Score,
    /// The second run's summary: bands, pair counts and the model's self-report.
    pub summary: RunSummary,
    pub exact_seconds: f64,
    pub probabilistic_seconds: f64,
}

impl LinkageBench {
    /// Per source: the probabilistic pass's links (`with` minus `exact`: the exact
    /// passes decide the same records in both runs) and how many are right, next to the
    /// true pairs the exact passes left.
    pub fn pass_truth(&self, source: &str) -> Option<(u64, u64, u64)> {
        let a = &self.exact.source(source)?.counts;
        let b = &self.with_probabilistic.source(source)?.counts;
        Some((
            b.linked.saturating_sub(a.linked),
            b.correct.saturating_sub(a.correct),
            a.true_pairs.saturating_sub(a.correct),
        ))
    }
}

/// Generates (or reuses) a state in `dir`, runs the nightly pipeline with the
/// probabilistic pass off and then on, and scores both runs against the truth.
pub async fn linkage_bench(
    dir: &Path,
    participants: usize,
    seed: u64,
    noise: NoiseProfile,
) -> Result<LinkageBench, DemoError> {
    let prepared = demo(dir, participants, seed, noise, 0).await?;
    let ws = Workspace::open(&prepared.workspace)?;
    let catalog = Catalog::builtin()?;
    let path = Pipeline::locate("nightly-crossmatch", ws.root())?;
    let mut pipeline = Pipeline::load(&path, &catalog)?;
    let mut scored = Vec::new();
    for enabled in [false, true] {
        pipeline.matching.probabilistic.enabled = enabled;
        let opts = RunOptions {
            trigger: "bench-linkage".into(),
            progress: true,
            ..RunOptions::default()
        };
        let t = Instant::now();
        let summary = run(&ws, &pipeline, &opts).await?;
        let seconds = t.elapsed().as_secs_f64();
        let score = super::truth::score(&ws, summary.run_id)?;
        scored.push((score, summary, seconds));
    }
    let (with_probabilistic, summary, probabilistic_seconds) = scored.pop().expect("two runs");
    let (exact, _, exact_seconds) = scored.pop().expect("two runs");
    Ok(LinkageBench {
        workspace: prepared.workspace,
        participants,
        noise,
        exact,
        with_probabilistic,
        summary,
        exact_seconds,
        probabilistic_seconds,
    })
}

impl std::fmt::Display for LinkageBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "linkage against the generator's truth: {} participants, {} noise, workspace {}\n",
            self.participants,
            self.noise,
            self.workspace.display()
        )?;
        writeln!(
            f,
            "== exact passes alone ({:.1} s)\n{}\n",
            self.exact_seconds, self.exact
        )?;
        writeln!(
            f,
            "== exact passes, then the probabilistic pass ({:.1} s)\n{}\n",
            self.probabilistic_seconds, self.with_probabilistic
        )?;
        writeln!(
            f,
            "== the probabilistic pass: bands, and its self-report beside the truth"
        )?;
        writeln!(
            f,
            "{:<18} {:>9} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "source", "pairs", "link", "review", "non-link", "est prec", "true prec", "est rec"
        )?;
        for (source, r, _) in &self.summary.linkage {
            let (linked, correct, left) = self.pass_truth(source).unwrap_or_default();
            writeln!(
                f,
                "{:<18} {:>9} {:>7} {:>7} {:>9} {:>8.2}% {:>8.2}% {:>8.2}%   true recall of what exact passes left: {:.2}% ({correct} of {left})",
                source,
                r.candidate_pairs,
                r.linked,
                r.review,
                r.non_link,
                100.0 * r.estimated_precision,
                100.0
                    * if linked == 0 {
                        1.0
                    } else {
                        correct as f64 / linked as f64
                    },
                100.0 * r.estimated_recall,
                100.0
                    * if left == 0 {
                        1.0
                    } else {
                        correct as f64 / left as f64
                    },
            )?;
        }
        Ok(())
    }
}
