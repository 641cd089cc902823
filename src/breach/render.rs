//! The three forms of an answer: a summary for the terminal, and the notification list as
//! CSV or (with the whole impact) JSON for whoever sends the letters.

use std::fmt;

use super::Impact;

/// How many files the terminal summary lists before saying "and N more".
const FILES_LISTED: usize = 20;

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "breach impact: {}", self.query)?;
        writeln!(
            f,
            "  discovered {}; report by {} (24 hours, WIOAPL 15-07.1)",
            time(&self.discovered_at),
            time(&self.report_deadline)
        )?;
        if let Some(fmt) = &self.file_format {
            writeln!(f, "  file read as {fmt}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        if let Some(t) = &self.tokens {
            writeln!(
                f,
                "  identifiers: {} lines ({} SSNs, {} tokens), {} distinct, {} unusable, {} not in the registry",
                t.lines, t.ssn_lines, t.token_lines, t.distinct, t.unusable, t.not_found
            )?;
            if !t.unusable_lines.is_empty() {
                let lines: Vec<String> = t.unusable_lines.iter().map(|l| l.to_string()).collect();
                writeln!(f, "    unusable lines: {}", lines.join(", "))?;
            }
        }
        writeln!(f, "  files: {}", self.files.len())?;
        for file in self.files.iter().take(FILES_LISTED) {
            writeln!(
                f,
                "    run {:>5}  {:<6} {:<28} {} persons  written {}{}  {}",
                file.run_id,
                file.zone.as_str(),
                file.dataset,
                file.person_count,
                time(&file.written_at),
                if file.purged { "  (purged)" } else { "" },
                file.path
            )?;
        }
        if self.files.len() > FILES_LISTED {
            writeln!(f, "    … and {} more", self.files.len() - FILES_LISTED)?;
        }
        writeln!(
            f,
            "  persons affected: {} (merged persons counted once)",
            self.persons
        )?;
        if self.unknown_person_keys > 0 {
            writeln!(
                f,
                "  person keys not in the registry: {}",
                self.unknown_person_keys
            )?;
        }
        writeln!(
            f,
            "  highest sensitivity exposed: {}",
            self.highest_category.as_deref().unwrap_or("none")
        )?;
        if !self.by_category.is_empty() {
            writeln!(f, "  by sensitive category (most severe first):")?;
            for c in &self.by_category {
                writeln!(f, "    {:<20} {:>9} persons", c.category, c.persons)?;
            }
        }
        if !self.pii_classes.is_empty() {
            writeln!(f, "  PII classes exposed:")?;
            for (class, cols) in &self.pii_classes {
                let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
                writeln!(f, "    {:<7} {}", class, cols.join(", "))?;
            }
        }
        for (title, map) in [
            ("by program", &self.by_program),
            ("by local area", &self.by_local_area),
        ] {
            if !map.is_empty() {
                writeln!(f, "  {title}:")?;
                for (k, v) in map {
                    writeln!(f, "    {k:<20} {v:>9}")?;
                }
            }
        }
        write!(
            f,
            "  notification list: {} person keys{}",
            self.notification.len(),
            if self.identified {
                " with temporary and case-management IDs (use recorded in the audit log)"
            } else {
                " (use --format csv|json to write it; --identify --reason adds IDs)"
            }
        )
    }
}

/// The notification list as CSV: `person_key` (and with `identify`, `temp_ids` and
/// `individual_ids`, several values separated by `;`).
pub fn csv(impact: &Impact) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header: &[&str] = if impact.identified {
        &["person_key", "temp_ids", "individual_ids"]
    } else {
        &["person_key"]
    };
    w.write_record(header).expect("writing to memory");
    for n in &impact.notification {
        let mut rec = vec![n.person_key.clone()];
        if impact.identified {
            rec.push(n.temp_ids.as_deref().unwrap_or_default().join(";"));
            rec.push(n.individual_ids.as_deref().unwrap_or_default().join(";"));
        }
        w.write_record(&rec).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("flushing to memory")).expect("CSV of UTF-8 strings")
}

/// The whole impact as pretty JSON.
pub fn json(impact: &Impact) -> String {
    serde_json::to_string_pretty(impact).expect("the impact serializes")
}
