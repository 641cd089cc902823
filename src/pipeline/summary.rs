//! The run summary: what `xmatch run` prints and what the run history keeps (as JSON).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::identity::registry::ResolveStats;
use crate::link::LinkStats;
use crate::link::prob::PassReport;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceSummary {
    pub name: String,
    pub files: usize,
    pub read: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Row rejects by reason code.
    pub rejects: BTreeMap<String, u64>,
    /// Identity fields that were unusable (the row is kept, the token is null), by reason.
    pub identity_issues: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceSummary {
    pub rows: u64,
    pub sufficient: u64,
    pub by_verdict: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OutputSummary {
    pub dataset: String,
    pub zone: String,
    pub files: usize,
    pub rows: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub run_id: i64,
    pub pipeline: String,
    pub sources: Vec<SourceSummary>,
    pub identity: ResolveStats,
    pub links: Vec<(String, LinkStats)>,
    /// The probabilistic pass per source: its report (bands, the model and its estimated
    /// precision and recall) and the records linked by accepted review decisions.
    #[serde(default)]
    pub linkage: Vec<(String, PassReport, u64)>,
    pub evidence: EvidenceSummary,
    pub wage_rows_linked: u64,
    pub wage_quarters: Vec<String>,
    /// Participant periods and wage records of program years past retention (see
    /// `purge`): read and resolved, but not published again once purged.
    pub withheld_past_retention: u64,
    pub outputs: Vec<OutputSummary>,
    /// Stage name and seconds.
    pub stages: Vec<(String, f64)>,
    /// Peak resident memory at the end of each stage (same order as `stages`): where the
    /// memory goes is the first question when sizing hardware for a larger state.
    #[serde(default)]
    pub stage_peak_rss_bytes: Vec<u64>,
    /// Peak resident memory of the process, in bytes, where the OS reports it.
    pub peak_rss_bytes: Option<u64>,
    /// During a key rotation: the key id moved to, and what this run added under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationSummary>,
}

/// What a run during a key rotation did under the new key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RotationSummary {
    pub next_key_id: String,
    /// Registry tokens under the new key this run added (every participant's, once).
    pub tokens_added: u64,
    /// Review items and held decisions whose record's key under the new key this run
    /// recorded (one per record key).
    pub reviews_rekeyed: u64,
    /// Agency rows of partner files tokenized under the new key: linked on their tokens,
    /// without the probabilistic pass (their encodings are under the other key).
    pub rows_under_next_key: u64,
}

impl RunSummary {
    pub fn stage(&mut self, name: &str, took: Duration) {
        self.stages.push((name.to_string(), took.as_secs_f64()));
        self.stage_peak_rss_bytes
            .push(peak_rss_bytes().unwrap_or_default());
    }

    pub fn total_seconds(&self) -> f64 {
        self.stages.iter().map(|(_, s)| s).sum()
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {} of {}", self.run_id, self.pipeline)?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<20} {:>6} {:>12} {:>12} {:>10}",
            "source", "files", "read", "accepted", "rejected"
        )?;
        for s in &self.sources {
            writeln!(
                f,
                "{:<20} {:>6} {:>12} {:>12} {:>10}",
                s.name, s.files, s.read, s.accepted, s.rejected
            )?;
            for (reason, n) in &s.rejects {
                writeln!(f, "{:<20}   rejected {reason}: {n}", "")?;
            }
        }
        let i = &self.identity;
        writeln!(f)?;
        writeln!(
            f,
            "persons {}  new {}  new temporary IDs {}  SSNs linked to temporary IDs {}  merges {}  new review items {}",
            i.persons, i.new_persons, i.new_temp_ids, i.ssn_linked, i.merges, i.reviews
        )?;
        if let Some(r) = &self.rotation {
            writeln!(
                f,
                "key rotation to {}: {} new-key registry tokens added, {} review and held record keys re-keyed, {} partner rows under the new key (tokens only)",
                r.next_key_id, r.tokens_added, r.reviews_rekeyed, r.rows_under_next_key
            )?;
        }
        writeln!(f)?;
        for (source, l) in &self.links {
            let passes: Vec<String> = l
                .linked_by_pass
                .iter()
                .map(|(p, n)| format!("{p} {n}"))
                .collect();
            writeln!(
                f,
                "{:<20} linked {:>10} ({})  ambiguous {}  unlinked {}  in review {}",
                source,
                l.linked(),
                passes.join(", "),
                l.ambiguous,
                l.unlinked,
                l.review
            )?;
        }
        for (source, r, accepted) in &self.linkage {
            writeln!(
                f,
                "{:<20} probabilistic: {} unlinked records, {} with candidates, {} pairs; \
                 link {}  review {} ({} ambiguous)  non-link {}  held from earlier runs {}  \
                 accepted in review {}  estimated precision {:.4}  recall {:.4}",
                source,
                r.records,
                r.records_with_candidates,
                r.candidate_pairs,
                r.linked,
                r.review,
                r.ambiguous,
                r.non_link,
                r.held,
                accepted,
                r.estimated_precision,
                r.estimated_recall
            )?;
        }
        let e = &self.evidence;
        let verdicts: Vec<String> = e
            .by_verdict
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        writeln!(
            f,
            "evidence rows {}  sufficient {}  ({})",
            e.rows,
            e.sufficient,
            verdicts.join(", ")
        )?;
        writeln!(
            f,
            "wage rows linked {}  quarters loaded {}",
            self.wage_rows_linked,
            match (self.wage_quarters.first(), self.wage_quarters.last()) {
                (Some(a), Some(b)) => format!("{a}..{b}"),
                _ => "none".to_string(),
            }
        )?;
        if self.withheld_past_retention > 0 {
            writeln!(
                f,
                "withheld past retention {} (program years the retention policy has purged)",
                self.withheld_past_retention
            )?;
        }
        writeln!(f)?;
        for o in &self.outputs {
            writeln!(
                f,
                "{:<7} {:<28} {:>5} files {:>12} rows",
                o.zone, o.dataset, o.files, o.rows
            )?;
        }
        writeln!(f)?;
        let stages: Vec<String> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, (s, t))| match self.stage_peak_rss_bytes.get(i) {
                Some(&rss) if rss > 0 => format!("{s} {t:.2}s [{}]", mib(rss)),
                _ => format!("{s} {t:.2}s"),
            })
            .collect();
        write!(
            f,
            "stages: {}  (total {:.2}s",
            stages.join(", "),
            self.total_seconds()
        )?;
        if let Some(rss) = self.peak_rss_bytes {
            write!(f, ", peak memory {}", mib(rss))?;
        }
        write!(f, ")")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Peak resident set size of this process (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
