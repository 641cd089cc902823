//! Progress of a run: a self-updating line on a terminal, plain structured lines
//! otherwise (cron, systemd and CI logs want one line per event, not carriage returns).

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    terminal: bool,
    enabled: bool,
    started: Instant,
    last_draw: Instant,
}

impl Progress {
    /// `enabled = false` keeps a run quiet (tests, library callers).
    pub fn new(enabled: bool) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            enabled,
            started: Instant::now(),
            last_draw: Instant::now(),
        }
    }

    /// Rows read so far from a source; drawn at most ten times a second.
    pub fn rows(&mut self, source: &str, rows: u64) {
        if !self.enabled || !self.terminal || self.last_draw.elapsed().as_millis() < 100 {
            return;
        }
        self.last_draw = Instant::now();
        let spin = ['|', '/', '-', '\\'][(self.started.elapsed().as_millis() / 100 % 4) as usize];
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[2K{spin} {:>6.1}s  reading {source}: {rows} rows",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// A finished step, with counts as `key=value` pairs.
    pub fn done(&mut self, step: &str, fields: &[(&str, String)]) {
        if !self.enabled {
            return;
        }
        let kv: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = writeln!(
                err,
                "\r\x1b[2K✓ {:>6.1}s  {step}  {}",
                self.started.elapsed().as_secs_f64(),
                kv.join(" ")
            );
        } else {
            let _ = writeln!(
                err,
                "xmatch: step={step} elapsed={:.2}s {}",
                self.started.elapsed().as_secs_f64(),
                kv.join(" ")
            );
        }
    }
}
