//! Clerical review (`xmatch review`): the probable links the probabilistic pass put in
//! its review band (`L…` items) and the identifier conflicts identity resolution found
//! (`R…` items), listed masked, decided one at a time or from a CSV, and persons
//! unmerged. Every decision is one store transaction with its `audit_log` row; later
//! runs honour accepted and rejected links (see `pipeline::linkage`).
//!
//! What a listing shows is what a reviewer needs and nothing more: person keys, masked
//! SSNs (last four), the score and the field-by-field weights. Names and birth dates stay
//! in the secure zone's source files, found through the record reference.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::store::{DecisionOutcome, ReviewFilter, ReviewId, ReviewItem};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{0}` is not a review item id: use the L… or R… id `xmatch review list` shows")]
    BadId(String),
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, row {row}: {problem}")]
    Csv {
        path: PathBuf,
        row: u64,
        problem: String,
    },
    #[error("a reason is required: say why with --reason (it goes to the audit log)")]
    NoReason,
}

/// Pending (or all, or decided) items as a table.
pub async fn list(store: &Store, filter: ReviewFilter, limit: i64) -> Result<String, ReviewError> {
    let items = store.review_items(filter, limit).await?;
    Ok(render(&items))
}

fn render(items: &[ReviewItem]) -> String {
    let mut out = String::new();
    if items.is_empty() {
        out.push_str("no review items\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<7} {:<24} {:<9} {:<18} {:<16} {:<16} {:>7} {:>6}  field weights",
        "id", "kind", "status", "source", "person", "other/record", "weight", "p"
    );
    for i in items {
        let other = i
            .other_person_key
            .clone()
            .or_else(|| i.record_ssn.clone())
            .unwrap_or_else(|| "-".into());
        let fields = i
            .fields
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| {
                        Some(format!(
                            "{}={}({:+.1})",
                            f.get("field")?.as_str()?,
                            f.get("level")?.as_str()?,
                            f.get("weight")?.as_f64()?
                        ))
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<7} {:<24} {:<9} {:<18} {:<16} {:<16} {:>7} {:>6}  {}",
            i.id,
            i.kind,
            i.status,
            i.source.as_deref().unwrap_or("-"),
            i.person_key,
            other,
            i.weight
                .map(|w| format!("{w:.1}"))
                .unwrap_or_else(|| "-".into()),
            i.probability
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "-".into()),
            fields
        );
    }
    out
}

/// Accepts or rejects items; each line of the result says what happened to one.
pub async fn decide(
    store: &Store,
    ids: &[String],
    accept: bool,
    actor: &str,
    reason: &str,
) -> Result<String, ReviewError> {
    if reason.trim().is_empty() {
        return Err(ReviewError::NoReason);
    }
    let parsed: Vec<ReviewId> = ids
        .iter()
        .map(|s| ReviewId::parse(s).ok_or_else(|| ReviewError::BadId(s.clone())))
        .collect::<Result<_, _>>()?;
    let mut out = String::new();
    for id in parsed {
        let outcome = store.decide_review(id, accept, actor, Some(reason)).await?;
        let _ = writeln!(out, "{}", outcome_line(id, accept, &outcome));
    }
    Ok(out)
}

fn outcome_line(id: ReviewId, accept: bool, outcome: &DecisionOutcome) -> String {
    match outcome {
        DecisionOutcome::Decided => {
            format!("{id} {}", if accept { "accepted" } else { "rejected" })
        }
        DecisionOutcome::AlreadyDecided(s) => format!("{id} was already {s}: unchanged"),
        DecisionOutcome::NotFound => format!("{id} not found"),
    }
}

/// Decisions from a CSV with a header `id,decision,reason` (`decision` is `accept` or
/// `reject`). The whole file is checked before anything is decided, so a bad row
/// changes nothing.
pub async fn decide_csv(store: &Store, path: &Path, actor: &str) -> Result<String, ReviewError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReviewError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let rows = parse_csv(path, &text)?;
    let mut out = String::new();
    for (id, accept, reason) in rows {
        let outcome = store
            .decide_review(id, accept, actor, Some(&reason))
            .await?;
        let _ = writeln!(out, "{}", outcome_line(id, accept, &outcome));
    }
    Ok(out)
}

fn parse_csv(path: &Path, text: &str) -> Result<Vec<(ReviewId, bool, String)>, ReviewError> {
    let err = |row: u64, problem: String| ReviewError::Csv {
        path: path.to_path_buf(),
        row,
        problem,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(ic), Some(dc), Some(rc)) = (col("id"), col("decision"), col("reason")) else {
        return Err(err(
            1,
            "the header must name id, decision and reason".into(),
        ));
    };
    let mut rows = Vec::new();
    for (n, rec) in reader.records().enumerate() {
        let row = n as u64 + 2;
        let rec = rec.map_err(|e| err(row, e.to_string()))?;
        let id_text = rec.get(ic).unwrap_or("");
        let id = ReviewId::parse(id_text)
            .ok_or_else(|| err(row, format!("id `{id_text}` is not an L… or R… id")))?;
        let accept = match rec.get(dc).unwrap_or("").to_ascii_lowercase().as_str() {
            "accept" | "accepted" => true,
            "reject" | "rejected" => false,
            other => {
                return Err(err(
                    row,
                    format!("decision `{other}` is not accept or reject"),
                ));
            }
        };
        let reason = rec.get(rc).unwrap_or("").to_string();
        if reason.is_empty() {
            return Err(err(row, "reason is empty".into()));
        }
        rows.push((id, accept, reason));
    }
    Ok(rows)
}

/// Undoes the merge of one person; the next run publishes the two persons apart.
pub async fn unmerge(
    store: &Store,
    person_key: &str,
    actor: &str,
    reason: &str,
) -> Result<String, ReviewError> {
    if reason.trim().is_empty() {
        return Err(ReviewError::NoReason);
    }
    Ok(match store.unmerge(person_key, actor, reason).await? {
        Some(_) => format!(
            "{person_key} unmerged: the next run publishes it as a person of its own, and \
             the two are never merged again\n"
        ),
        None => format!("{person_key} is not a merged person: nothing changed\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_checked_and_named() {
        let p = Path::new("decisions.csv");
        let ok = parse_csv(
            p,
            "id,decision,reason\nL1,accept,same person\nR2,reject,twins\n",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].0, ReviewId::Link(1));
        assert!(ok[0].1 && !ok[1].1);
        let bad = parse_csv(p, "id,decision,reason\nL1,accept,x\nL2,maybe,y\n").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "decisions.csv, row 3: decision `maybe` is not accept or reject"
        );
        assert!(parse_csv(p, "id,decision\nL1,accept\n").is_err());
        assert!(parse_csv(p, "id,decision,reason\nX1,accept,z\n").is_err());
    }
}
