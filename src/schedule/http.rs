//! `GET /healthz` and `GET /metrics` (Prometheus text format) for `xmatch serve --listen`.
//!
//! A handful of GET requests from a load balancer and a Prometheus scraper: a small
//! HTTP/1.1 responder on the tokio socket is enough, and keeps a web framework out of a
//! tool that handles PII. Nothing here can return data about people.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::store::{LinkQualityRow, Store};

/// What the daemon knows that the store does not.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    pub pipelines: usize,
    pub config_errors: usize,
    pub running: usize,
    pub next_fire: BTreeMap<String, DateTime<Utc>>,
}

pub async fn serve(listener: TcpListener, store: Store, gauges: Arc<Mutex<Gauges>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (store, gauges) = (store.clone(), gauges.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &store, &gauges).await {
                debug!(error = %e, "health/metrics request failed");
            }
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    store: &Store,
    gauges: &Mutex<Gauges>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    // The request line is all that is needed; refuse to buffer more than a few KiB.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/metrics") => match metrics(store, gauges).await {
            Ok(text) => ("200 OK", "text/plain; version=0.0.4", text),
            Err(e) => (
                "503 Service Unavailable",
                "text/plain",
                format!("the state store did not answer: {e}\n"),
            ),
        },
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Label values are pipeline names and statuses; escape them as the format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn metrics(
    store: &Store,
    gauges: &Mutex<Gauges>,
) -> Result<String, crate::store::StoreError> {
    let m = store.run_metrics().await?;
    let quality = store.latest_link_quality().await?;
    let g = gauges.lock().expect("gauges").clone();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP xmatch_up The daemon is running.\n# TYPE xmatch_up gauge\nxmatch_up 1"
    );
    let _ = writeln!(
        out,
        "# HELP xmatch_pipelines Pipelines loaded.\n# TYPE xmatch_pipelines gauge\nxmatch_pipelines {}",
        g.pipelines
    );
    let _ = writeln!(
        out,
        "# HELP xmatch_pipeline_config_errors Pipeline files refused at the last load.\n# TYPE xmatch_pipeline_config_errors gauge\nxmatch_pipeline_config_errors {}",
        g.config_errors
    );
    let _ = writeln!(
        out,
        "# HELP xmatch_runs_in_progress Runs this daemon is working on.\n# TYPE xmatch_runs_in_progress gauge\nxmatch_runs_in_progress {}",
        g.running
    );
    let _ = writeln!(
        out,
        "# HELP xmatch_runs Runs in the history, by pipeline and status.\n# TYPE xmatch_runs gauge"
    );
    for (p, status, n) in &m.by_status {
        let _ = writeln!(
            out,
            "xmatch_runs{{pipeline=\"{}\",status=\"{}\"}} {n}",
            label(p),
            label(status)
        );
    }
    let _ = writeln!(
        out,
        "# HELP xmatch_last_success_timestamp_seconds When each pipeline last succeeded.\n# TYPE xmatch_last_success_timestamp_seconds gauge"
    );
    for (p, t) in &m.last_success {
        let _ = writeln!(
            out,
            "xmatch_last_success_timestamp_seconds{{pipeline=\"{}\"}} {}",
            label(p),
            t.timestamp()
        );
    }
    let _ = writeln!(
        out,
        "# HELP xmatch_rows_read_total Source rows read by succeeded runs.\n# TYPE xmatch_rows_read_total counter"
    );
    for (p, n) in &m.rows_read {
        let _ = writeln!(
            out,
            "xmatch_rows_read_total{{pipeline=\"{}\"}} {n}",
            label(p)
        );
    }
    let gauge =
        |out: &mut String, name: &str, help: &str, value: &dyn Fn(&LinkQualityRow) -> f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for q in &quality {
                let _ = writeln!(
                    out,
                    "{name}{{pipeline=\"{}\",source=\"{}\"}} {}",
                    label(&q.pipeline),
                    label(&q.source),
                    value(q)
                );
            }
        };
    gauge(
        &mut out,
        "xmatch_link_estimated_precision",
        "The probabilistic pass's own estimate of the precision of its link band (latest succeeded run).",
        &|q| q.estimated_precision,
    );
    gauge(
        &mut out,
        "xmatch_link_estimated_recall",
        "The probabilistic pass's own estimate of its recall among records with candidates (latest succeeded run).",
        &|q| q.estimated_recall,
    );
    gauge(
        &mut out,
        "xmatch_link_band_link_records",
        "Records the probabilistic pass linked (latest succeeded run).",
        &|q| q.linked as f64,
    );
    gauge(
        &mut out,
        "xmatch_link_band_review_records",
        "Records the probabilistic pass sent to clerical review (latest succeeded run).",
        &|q| q.review as f64,
    );
    gauge(
        &mut out,
        "xmatch_link_held_records",
        "Records whose band an earlier run's decision held against this run's model (latest succeeded run).",
        &|q| q.held as f64,
    );
    gauge(
        &mut out,
        "xmatch_link_band_non_link_records",
        "Records with candidates the probabilistic pass left unlinked (latest succeeded run).",
        &|q| q.non_link as f64,
    );
    let _ = writeln!(
        out,
        "# HELP xmatch_next_fire_timestamp_seconds The next schedule time of each pipeline.\n# TYPE xmatch_next_fire_timestamp_seconds gauge"
    );
    for (p, t) in &g.next_fire {
        let _ = writeln!(
            out,
            "xmatch_next_fire_timestamp_seconds{{pipeline=\"{}\"}} {}",
            label(p),
            t.timestamp()
        );
    }
    Ok(out)
}
