//! The daemon (`xmatch serve`) as an operator runs it: a real process on a fast schedule,
//! signals, the store's run history, health and metrics, and webhooks.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use xmatch::store::{RunRow, Store};
use xmatch::workspace::Workspace;

use crate::pipeline::{generated_workspace, run_nightly};
use crate::support::{PgStore, files_under, xmatch_bin};

/// Rewrites the workspace's nightly pipeline: a fast schedule and extra settings.
fn set_nightly(ws: &Workspace, schedule: &str, extra: &str) {
    let path = ws.root().join("pipelines/nightly-crossmatch.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if matches!(
            key,
            "schedule" | "timezone" | "catch_up" | "retries" | "retry_backoff_seconds"
        ) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("description") {
            out.push_str(&format!("schedule = \"{schedule}\"\n{extra}\n"));
        }
    }
    std::fs::write(path, out).unwrap();
    // Only the pipeline under test is scheduled.
    for other in ["quarterly-performance.toml", "retention-purge.toml"] {
        let _ = std::fs::remove_file(ws.root().join("pipelines").join(other));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = ws.root().join(format!("serve-{}.log", free_port()));
        let mut cmd = Command::new(xmatch_bin());
        cmd.args(["-w", ws.root().to_str().unwrap(), "--log", "info", "serve"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// SIGTERM, then the exit status (within `within`).
    fn stop(mut self, within: Duration) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, std::fs::read_to_string(&self.log).unwrap());
            }
            if t.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "the daemon did not stop within {within:?}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- daemon log {} ---\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

async fn history(store: &Store) -> Vec<RunRow> {
    let mut rows = store.runs(None, 1000).await.unwrap();
    rows.reverse();
    rows
}

/// Polls the run history until `done` holds (or panics after `within`).
async fn wait_for(
    store: &Store,
    within: Duration,
    what: &str,
    done: impl Fn(&[RunRow]) -> bool,
) -> Vec<RunRow> {
    let t = Instant::now();
    loop {
        let rows = history(store).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            t.elapsed() < within,
            "waited {within:?} for {what}; history: {:#?}",
            rows.iter()
                .map(|r| (r.id, &r.trigger, r.attempt, &r.status, &r.error))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

fn wait_http(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no listener on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_runs_health_metrics_and_a_clean_stop() {
    let (_dir, ws) = generated_workspace(300, 61).await;
    set_nightly(&ws, "*/3 * * * * *", "");
    let port = free_port();
    let d = Daemon::start(&ws, &["--listen", &format!("127.0.0.1:{port}")], &[]);
    let store = ws.open_store().await.unwrap();
    let rows = wait_for(
        &store,
        Duration::from_secs(90),
        "two scheduled successes",
        |rows| {
            rows.iter()
                .filter(|r| r.trigger == "schedule" && r.status == "succeeded")
                .count()
                >= 2
        },
    )
    .await;
    for r in rows.iter().filter(|r| r.trigger == "schedule") {
        let at = r
            .scheduled_for
            .expect("a scheduled run records its schedule time");
        assert_eq!(at.timestamp() % 3, 0, "fires on the schedule's seconds");
        // Started in the second it was scheduled for (the scheduler polls twice a second).
        let late = (r.started_at - at).num_milliseconds();
        assert!(
            (-1000..3000).contains(&late),
            "run {} started {late} ms off",
            r.id
        );
    }

    wait_http(port);
    assert_eq!(http_get(port, "/healthz"), (200, "ok\n".to_string()));
    let (code, metrics) = http_get(port, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("xmatch_up 1"), "{metrics}");
    assert!(
        metrics.contains("xmatch_runs{pipeline=\"nightly-crossmatch\",status=\"succeeded\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xmatch_last_success_timestamp_seconds{pipeline=\"nightly-crossmatch\"}"),
        "{metrics}"
    );
    let rows_read = metrics
        .lines()
        .find(|l| l.starts_with("xmatch_rows_read_total{pipeline=\"nightly-crossmatch\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("rows read");
    assert!(rows_read > 300, "{metrics}");
    assert_eq!(http_get(port, "/nope").0, 404);

    let (status, log) = d.stop(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    // Nothing left half-done.
    for r in history(&store).await {
        assert!(
            matches!(r.status.as_str(), "succeeded" | "skipped"),
            "run {} is {} ({:?})",
            r.id,
            r.status,
            r.error
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_run_abandons_it_and_keeps_the_published_snapshot() {
    let (_dir, ws) = generated_workspace(300, 62).await;
    let first = run_nightly(&ws).await;
    let current = std::fs::read_link(ws.lake_dir().join("current")).unwrap();
    let published = lake_files(&ws.lake_dir().join("current"));
    assert!(!published.is_empty());

    set_nightly(&ws, "*/2 * * * * *", "");
    let d = Daemon::start(
        &ws,
        &["--grace", "1"],
        &[("XMATCH_FAILPOINT", "run.before_commit=sleep:120")],
    );
    let store = ws.open_store().await.unwrap();
    let rows = wait_for(
        &store,
        Duration::from_secs(90),
        "a scheduled run working",
        |rows| {
            rows.iter()
                .any(|r| r.trigger == "schedule" && r.status == "running")
        },
    )
    .await;
    let stuck = rows.iter().find(|r| r.status == "running").unwrap().id;
    // Let it reach the stall before the commit (all outputs staged).
    let t = Instant::now();
    while !d.log().contains("failpoint reached") {
        assert!(t.elapsed() < Duration::from_secs(90), "{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, log) = d.stop(Duration::from_secs(30));
    assert!(status.success(), "{log}");

    let row = store.run(stuck).await.unwrap().unwrap();
    assert_eq!(row.status, "abandoned", "{row:?}");
    assert!(row.error.unwrap().contains("grace"), "{log}");
    // The published snapshot is the first run's, whole and unchanged.
    assert_eq!(
        std::fs::read_link(ws.lake_dir().join("current")).unwrap(),
        current
    );
    assert_eq!(lake_files(&ws.lake_dir().join("current")), published);
    assert!(first.run_id < stuck);

    // The next run cleans the abandoned run's staging and publishes normally.
    let next = run_nightly(&ws).await;
    assert!(next.run_id > stuck);
    assert!(
        !ws.lake_dir()
            .join(".staging")
            .join(stuck.to_string())
            .exists()
    );
}

/// (relative path, size) of every file under `dir`.
fn lake_files(dir: &Path) -> Vec<(String, u64)> {
    files_under(dir)
        .into_iter()
        .map(|(rel, p)| (rel, std::fs::metadata(&p).unwrap().len()))
        .collect()
}

/// A local HTTP receiver that records request bodies.
fn webhook_receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ =
                            s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
                        let _ = tx.send(body.to_string());
                        break;
                    }
                }
            }
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_is_retried_with_backoff_and_the_webhook_hears_of_it() {
    let (_dir, ws) = generated_workspace(300, 63).await;
    let (hook, bodies) = webhook_receiver();
    // The first try of the first firing fails; its retry comes a second later.
    set_nightly(
        &ws,
        "*/10 * * * * *",
        &format!(
            "retries = 2\nretry_backoff_seconds = 1\n[notify]\nwebhook = \"http://127.0.0.1:{hook}/xmatch\""
        ),
    );
    let d = Daemon::start(&ws, &[], &[("XMATCH_FAILPOINT", "run.start=fail:1")]);
    let store = ws.open_store().await.unwrap();
    let rows = wait_for(
        &store,
        Duration::from_secs(150),
        "a failure and its retry",
        |rows| {
            rows.iter()
                .any(|r| r.trigger == "retry" && r.status == "succeeded")
        },
    )
    .await;
    let failed = rows
        .iter()
        .find(|r| r.status == "failed")
        .expect("the injected failure is recorded");
    assert_eq!((failed.trigger.as_str(), failed.attempt), ("schedule", 1));
    assert!(failed.error.as_deref().unwrap().contains("injected"));
    let retry = rows.iter().find(|r| r.trigger == "retry").unwrap();
    assert_eq!(retry.attempt, 2);
    assert_eq!(
        retry.scheduled_for, failed.scheduled_for,
        "a retry answers the same firing"
    );
    let waited = (retry.started_at - failed.finished_at.unwrap()).num_milliseconds();
    assert!(waited >= 900, "the backoff was respected ({waited} ms)");

    let body = bodies
        .recv_timeout(Duration::from_secs(30))
        .expect("a webhook POST");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["pipeline"], "nightly-crossmatch");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["run_id"], failed.id);
    assert_eq!(v["will_retry"], true);
    drop(d);
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_schedule_times_are_caught_up_once_or_skipped() {
    for (policy, expect) in [("once", "succeeded"), ("skip", "skipped")] {
        let (_dir, ws) = generated_workspace(200, 64).await;
        set_nightly(
            &ws,
            "0 0 2 * * *",
            &format!("timezone = \"America/Chicago\"\ncatch_up = \"{policy}\""),
        );
        let store = ws.open_store().await.unwrap();
        // The daemon last answered the schedule three days ago.
        let mark = Utc::now() - chrono::Duration::days(3);
        store
            .set_schedule_mark("nightly-crossmatch", mark)
            .await
            .unwrap();
        let d = Daemon::start(&ws, &[], &[]);
        wait_for(&store, Duration::from_secs(90), "the catch-up", |rows| {
            rows.iter()
                .any(|r| r.trigger == "catch-up" && r.status == expect)
        })
        .await;
        let _ = d.stop(Duration::from_secs(60));
        let rows = history(&store).await;
        let catch_up: Vec<&RunRow> = rows.iter().filter(|r| r.trigger == "catch-up").collect();
        assert_eq!(
            catch_up.len(),
            1,
            "once, however many were missed: {rows:#?}"
        );
        // It answers the latest missed time: 02:00 Chicago, at most a day ago.
        let at: DateTime<Utc> = catch_up[0].scheduled_for.unwrap();
        let local = at.with_timezone(&chrono_tz::America::Chicago);
        assert_eq!(local.format("%H:%M:%S").to_string(), "02:00:00");
        assert!(Utc::now() - at < chrono::Duration::hours(25));
        if policy == "skip" {
            assert!(catch_up[0].error.as_deref().unwrap().contains("missed"));
        }
        // The mark moved on: a restart does not catch up again.
        assert_eq!(
            store.schedule_mark("nightly-crossmatch").await.unwrap(),
            Some(at)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_and_a_broken_file_keeps_the_old_definition() {
    let (_dir, ws) = generated_workspace(200, 65).await;
    set_nightly(&ws, "*/2 * * * * *", "");
    let d = Daemon::start(&ws, &[], &[]);
    let store = ws.open_store().await.unwrap();
    wait_for(&store, Duration::from_secs(90), "a first run", |rows| {
        rows.iter().any(|r| r.status == "succeeded")
    })
    .await;
    let path = ws.root().join("pipelines/nightly-crossmatch.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, good.replace("*/2 * * * * *", "*/2 * * *")).unwrap();
    d.signal("HUP");
    let t = Instant::now();
    while !d.log().contains("pipeline file refused") {
        assert!(t.elapsed() < Duration::from_secs(30), "{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = d.log();
    let refused = log
        .lines()
        .find(|l| l.contains("pipeline file refused"))
        .unwrap();
    assert!(
        refused.contains("nightly-crossmatch.toml") && refused.contains("schedule"),
        "names the file and the field: {refused}"
    );
    // The old definition keeps running.
    let before = history(&store).await.len();
    wait_for(
        &store,
        Duration::from_secs(60),
        "runs after the reload",
        |rows| rows.len() >= before + 2 && rows.last().unwrap().status != "running",
    )
    .await;
    let (status, log) = d.stop(Duration::from_secs(60));
    assert!(status.success(), "{log}");
}

/// Two daemons, one PostgreSQL store, one schedule: every firing runs once; the other
/// daemon's attempt is recorded as skipped, and no two runs overlap in time.
#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_on_one_postgres_store_never_overlap() {
    let Some(pg) = PgStore::connect("two_daemons").await else {
        return;
    };
    let (_dir, ws) = generated_workspace(300, 66).await;
    set_nightly(&ws, "*/3 * * * * *", "");
    let url = pg.url();
    let env = [("XMATCH_STORE_URL", url.as_str())];
    let a = Daemon::start(&ws, &[], &env);
    let b = Daemon::start(&ws, &[], &env);
    pg.store.migrate().await.unwrap();
    wait_for(
        &pg.store,
        Duration::from_secs(120),
        "several firings",
        |rows| {
            rows.iter().filter(|r| r.status == "succeeded").count() >= 3
                && rows.iter().any(|r| r.status == "skipped")
        },
    )
    .await;
    let (sa, la) = a.stop(Duration::from_secs(60));
    let (sb, lb) = b.stop(Duration::from_secs(60));
    assert!(sa.success() && sb.success(), "{la}\n{lb}");
    let rows = history(&pg.store).await;
    let worked: Vec<&RunRow> = rows.iter().filter(|r| r.status != "skipped").collect();
    for (i, x) in worked.iter().enumerate() {
        for y in &worked[i + 1..] {
            let (xs, xe) = (x.started_at, x.finished_at.unwrap_or(Utc::now()));
            let (ys, ye) = (y.started_at, y.finished_at.unwrap_or(Utc::now()));
            assert!(
                xe <= ys || ye <= xs,
                "runs {} and {} overlap: {xs}..{xe} and {ys}..{ye}",
                x.id,
                y.id
            );
        }
    }
    // Both daemons answered firings; each skip names the run that held the lease.
    for r in rows.iter().filter(|r| r.status == "skipped") {
        assert!(
            r.error.as_deref().unwrap().contains("already running"),
            "{r:?}"
        );
    }
    let holders: std::collections::HashSet<_> =
        worked.iter().filter_map(|r| r.holder.clone()).collect();
    assert!(!holders.is_empty());
    pg.drop().await;
}

/// The max wage quarter the published lake holds, as (year, quarter).
fn max_wage_quarter(ws: &Workspace) -> (i32, u32) {
    std::fs::read_dir(ws.lake_dir().join("current/quarterly_wages"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            let q = name.strip_prefix("year_quarter=")?.to_string();
            let (y, n) = q.split_once('Q')?;
            Some((y.parse().ok()?, n.parse().ok()?))
        })
        .max()
        .expect("wage partitions")
}

/// The first day of the quarter `n` quarters after (year, q).
fn quarter_start_after(year: i32, q: u32, n: i32) -> chrono::NaiveDate {
    let idx = year * 4 + (q as i32 - 1) + n;
    chrono::NaiveDate::from_ymd_opt(idx.div_euclid(4), (idx.rem_euclid(4) * 3 + 1) as u32, 1)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn report_and_purge_pipelines_run_in_the_same_frame_as_a_crossmatch() {
    use xmatch::pipeline::{JobOutcome, Pipeline, RunError, RunOptions, execute};
    let (_dir, ws) = generated_workspace(400, 67).await;
    run_nightly(&ws).await;
    let catalog = xmatch::schema::Catalog::builtin().unwrap();
    let load =
        |n: &str| Pipeline::load(&Pipeline::locate(n, ws.root()).unwrap(), &catalog).unwrap();
    let store = ws.open_store().await.unwrap();
    let (y, q) = max_wage_quarter(&ws);

    // Before the quarter's wage data is in: a skip that says why, nothing written.
    let quarterly = load("quarterly-performance");
    let early = RunOptions {
        today: quarter_start_after(y, q, 4),
        ..RunOptions::default()
    };
    let err = execute(&ws, &quarterly, &early).await.unwrap_err();
    assert!(matches!(err, RunError::NotReady(_)), "{err}");
    let row = store.runs(Some("quarterly-performance"), 1).await.unwrap()[0].clone();
    assert_eq!(row.status, "skipped");
    assert!(row.error.unwrap().contains("not ready"));
    assert!(
        std::fs::read_dir(ws.reports_dir())
            .unwrap()
            .next()
            .is_none()
    );

    // Once it is: the suppressed report files, and a succeeded run.
    let ready = RunOptions {
        today: quarter_start_after(y, q, 3),
        ..RunOptions::default()
    };
    let JobOutcome::QuarterlyReport(s) = execute(&ws, &quarterly, &ready).await.unwrap() else {
        panic!("a quarterly report outcome")
    };
    assert_eq!(s.wage_quarter, format!("{y}Q{q}"));
    assert!(s.files.len() >= 6, "{s:?}");
    for f in &s.files {
        let path = std::path::Path::new(&s.dir).join(f);
        assert!(path.is_file() || std::path::Path::new(f).is_file(), "{f}");
    }
    let row = store.runs(Some("quarterly-performance"), 1).await.unwrap()[0].clone();
    assert_eq!(
        (row.status.as_str(), row.trigger.as_str()),
        ("succeeded", "manual")
    );

    // Retention purge with no closeout configured: nothing goes, the run and the audit
    // row are recorded.
    let purge = load("retention-purge");
    let JobOutcome::RetentionPurge(r) = execute(&ws, &purge, &RunOptions::default()).await.unwrap()
    else {
        panic!("a purge outcome")
    };
    assert_eq!(r.deleted().count(), 0);
    assert!(
        !r.held_program_years().is_empty(),
        "years without a closeout are held"
    );
    let row = store.runs(Some("retention-purge"), 1).await.unwrap()[0].clone();
    assert_eq!(row.status, "succeeded");
    let audit = store.audit_entries(100).await.unwrap();
    assert!(audit.iter().any(|(_, a)| a.action == "purge"), "{audit:?}");

    // The history lists all three pipelines; `runs show` gives one in detail.
    let out = Command::new(xmatch_bin())
        .args(["-w", ws.root().to_str().unwrap(), "runs"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for p in [
        "nightly-crossmatch",
        "quarterly-performance",
        "retention-purge",
    ] {
        assert!(text.contains(p), "{text}");
    }
    let out = Command::new(xmatch_bin())
        .args(["-w", ws.root().to_str().unwrap(), "runs", "show", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "run 1 of nightly-crossmatch",
        "succeeded",
        "stages",
        "output files",
        "participants",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let out = Command::new(xmatch_bin())
        .args(["-w", ws.root().to_str().unwrap(), "runs", "show", "999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 999"));
}

#[test]
fn broken_pipeline_files_are_refused_naming_file_and_field_and_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = xmatch::schema::Catalog::builtin().unwrap();
    let good = xmatch::pipeline::config::SHIPPED
        .iter()
        .find(|(n, _)| *n == "nightly-crossmatch.toml")
        .unwrap()
        .1;
    std::fs::write(dir.path().join("good.toml"), good).unwrap();
    let cases = [
        (
            "bad-cron.toml",
            good.replace("0 0 2 * * *", "0 0 25 * * *"),
            "schedule",
        ),
        (
            "bad-zone.toml",
            good.replace("America/Chicago", "America/Springfield"),
            "timezone",
        ),
        (
            "bad-schema.toml",
            good.replace("schema = \"taa\"", "schema = \"tax\""),
            "sources[3].schema",
        ),
        (
            "no-path.toml",
            good.replace("path = \"incoming/taa.parquet\"", ""),
            "path",
        ),
        (
            "unknown-key.toml",
            good.replace("retries = 2", "retries = 2\nretires = 3"),
            "retires",
        ),
        (
            "bad-webhook.toml",
            good.replace(
                "# [notify]\n# webhook = \"http",
                "[notify]\nwebhook = \"https",
            ),
            "notify.webhook",
        ),
    ];
    for (file, text, _) in &cases {
        let text = text.replace(
            "name = \"nightly-crossmatch\"",
            &format!("name = \"{}\"", file.trim_end_matches(".toml")),
        );
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let (loaded, errors) = xmatch::pipeline::config::load_dir(dir.path(), &catalog);
    assert_eq!(
        loaded.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["nightly-crossmatch"],
        "{errors:?}"
    );
    assert_eq!(errors.len(), cases.len());
    for (file, _, field) in &cases {
        let e = errors
            .iter()
            .map(|e| e.to_string())
            .find(|e| e.contains(file))
            .unwrap_or_else(|| panic!("no error for {file}: {errors:?}"));
        assert!(e.contains(field), "{file}: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

/// A run on another machine stopped renewing its lease: the daemon that notices marks it
/// abandoned and tells the webhook.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_lease_lapsed_elsewhere_is_abandoned_and_notified() {
    use xmatch::store::NewRun;
    let (_dir, ws) = generated_workspace(100, 68).await;
    let (hook, bodies) = webhook_receiver();
    set_nightly(
        &ws,
        "0 0 2 1 1 *",
        &format!("[notify]\nwebhook = \"http://127.0.0.1:{hook}/xmatch\""),
    );
    let store = ws.open_store().await.unwrap();
    let lapsed = store
        .start_run_with(&NewRun {
            pipeline: "nightly-crossmatch",
            trigger: "schedule",
            attempt: 1,
            scheduled_for: None,
            holder: "another-host/4242/99",
            provisional_expiry_ms: Utc::now().timestamp_millis() - 1_000,
        })
        .await
        .unwrap();
    let d = Daemon::start(&ws, &[], &[]);
    let body = bodies
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no webhook POST:\n{}", d.log()));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "abandoned");
    assert_eq!(v["run_id"], lapsed);
    let row = store.run(lapsed).await.unwrap().unwrap();
    assert_eq!(row.status, "abandoned");
    assert!(row.error.unwrap().contains("lease"));
    let (status, log) = d.stop(Duration::from_secs(30));
    assert!(status.success(), "{log}");
}
