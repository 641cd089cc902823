//! `xmatch runs`: the run history, as operators read it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::store::{LineageFile, LinkQualityRow, RunRow, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no run {0} in the history (see `xmatch runs`)")]
    NoSuchRun(i64),
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn took(r: &RunRow) -> String {
    match r.finished_at {
        Some(f) => {
            let s = (f - r.started_at).num_milliseconds() as f64 / 1000.0;
            format!("{s:.1} s")
        }
        None => "-".into(),
    }
}

/// The last `last` runs, newest first, as a table.
pub async fn list(
    store: &Store,
    pipeline: Option<&str>,
    last: u32,
) -> Result<String, HistoryError> {
    let rows = store.runs(pipeline, last).await?;
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("no runs recorded yet\n");
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:>6}  {:<24} {:<9} {:>3}  {:<10} {:<23} {:>9}  error",
        "run", "pipeline", "trigger", "try", "status", "started", "took"
    );
    for r in &rows {
        let error = r.error.as_deref().unwrap_or("");
        let error: String = if error.chars().count() > 80 {
            error.chars().take(79).chain(['…']).collect()
        } else {
            error.to_string()
        };
        let _ = writeln!(
            out,
            "{:>6}  {:<24} {:<9} {:>3}  {:<10} {:<23} {:>9}  {}",
            r.id,
            r.pipeline,
            r.trigger,
            r.attempt,
            r.status,
            when(&r.started_at),
            took(r),
            error
        );
    }
    Ok(out)
}

/// One run: its row, the stage timings and counts from its summary, and its output files.
pub async fn show(store: &Store, id: i64) -> Result<String, HistoryError> {
    let r = store.run(id).await?.ok_or(HistoryError::NoSuchRun(id))?;
    let files = store.lineage_by_run(id).await?;
    let quality = store.link_quality(id).await?;
    Ok(render_show(&r, &files, &quality))
}

fn render_show(r: &RunRow, files: &[LineageFile], quality: &[LinkQualityRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run {} of {}", r.id, r.pipeline);
    let _ = writeln!(out, "  status     {}", r.status);
    let _ = writeln!(out, "  trigger    {} (attempt {})", r.trigger, r.attempt);
    if let Some(s) = &r.scheduled_for {
        let _ = writeln!(out, "  scheduled  {}", when(s));
    }
    let _ = writeln!(out, "  started    {}", when(&r.started_at));
    if let Some(f) = &r.finished_at {
        let _ = writeln!(out, "  finished   {} (took {})", when(f), took(r));
    }
    if let Some(h) = &r.holder {
        let _ = writeln!(out, "  host       {h}");
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  error      {e}");
    }
    let summary: Option<serde_json::Value> = r
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    if let Some(summary) = &summary {
        if let Some(sources) = summary.get("sources").and_then(|v| v.as_array())
            && !sources.is_empty()
        {
            let _ = writeln!(
                out,
                "\nsources                        read   accepted   rejected"
            );
            for s in sources {
                let n = |k: &str| s.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                let _ = writeln!(
                    out,
                    "  {:<22} {:>10} {:>10} {:>10}",
                    s.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
                    n("read"),
                    n("accepted"),
                    n("rejected")
                );
            }
        }
        if let Some(stages) = summary.get("stages").and_then(|v| v.as_array())
            && !stages.is_empty()
        {
            let _ = writeln!(out, "\nstages");
            for st in stages {
                if let (Some(name), Some(secs)) = (
                    st.get(0).and_then(|v| v.as_str()),
                    st.get(1).and_then(|v| v.as_f64()),
                ) {
                    let _ = writeln!(out, "  {name:<28} {secs:>8.2} s");
                }
            }
        }
    }
    if !quality.is_empty() {
        let _ = writeln!(
            out,
            "\nprobabilistic linkage (the model's own estimate)\n  {:<20} {:>9} {:>8} {:>8} {:>9} {:>6} {:>9} {:>9} {:>8}",
            "source",
            "pairs",
            "linked",
            "review",
            "non-link",
            "held",
            "accepted",
            "est prec",
            "est rec"
        );
        for q in quality {
            let _ = writeln!(
                out,
                "  {:<20} {:>9} {:>8} {:>8} {:>9} {:>6} {:>9} {:>8.2}% {:>7.2}%{}",
                q.source,
                q.candidate_pairs,
                q.linked,
                q.review,
                q.non_link,
                q.held,
                q.review_accepted,
                100.0 * q.estimated_precision,
                100.0 * q.estimated_recall,
                if q.em_converged {
                    ""
                } else {
                    "  (EM did not converge)"
                }
            );
        }
    }
    if files.is_empty() {
        let _ = writeln!(out, "\nno output files recorded");
    } else {
        let _ = writeln!(out, "\noutput files ({})", files.len());
        for f in files {
            let _ = writeln!(
                out,
                "  {:<6} {:<22} {:>9} rows {:>8} persons  {}{}",
                f.zone.as_str(),
                f.dataset,
                f.rows,
                f.person_count,
                f.path.display(),
                if f.purged_at.is_some() {
                    "  (purged)"
                } else {
                    ""
                }
            );
        }
    }
    out
}
