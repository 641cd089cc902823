//! Keeping two runs of one pipeline apart: a lease row per pipeline in the state store,
//! renewed by a heartbeat while the run works, with a fencing token the publish step
//! checks (see `store::runs`).
//!
//! A holder is named `host/pid/start-time`. On the holder's own host, whether its process
//! is still alive is a fact (`/proc`), so a run killed by SIGKILL or a power cut is taken
//! over at once when the same machine starts again; on another host only the lease's
//! expiry tells, after the time to live.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use tracing::warn;

use crate::store::{Lease, LeaseOutcome, Store, StoreError};

/// How long a lease lasts without a heartbeat. The heartbeat renews it three times per
/// period, so a stalled store connection has two chances before the lease lapses.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// This process, as a lease holder.
pub fn this_holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        let pid = std::process::id();
        format!(
            "{}/{pid}/{}",
            hostname(),
            start_time(pid).unwrap_or_default()
        )
    })
}

/// Read once: every liveness check compares against it.
fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .unwrap_or_else(|| "unknown-host".into())
    })
}

/// The process start time in clock ticks since boot (field 22 of `/proc/PID/stat`): with
/// the pid, it names one process even after the pid is reused.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19).map(str::to_string)
}

/// `true` only when `holder` names a process on this host that no longer exists. A holder
/// on another host is never declared dead here: its lease expiry decides.
pub fn is_dead(holder: &str) -> bool {
    let mut parts = holder.split('/');
    let (Some(host), Some(pid), Some(started)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != hostname() || !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    match start_time(pid) {
        None => true,
        Some(now) => now != started,
    }
}

/// Whether a run recorded with `holder` and `expires_ms` is still being worked on.
pub fn is_alive(holder: Option<&str>, expires_ms: Option<i64>, now_ms: i64) -> bool {
    match holder {
        Some(h) if is_dead(h) => false,
        Some(h) if h.starts_with(&format!("{}/", hostname())) => true,
        _ => expires_ms.is_some_and(|e| e >= now_ms),
    }
}

/// Takes `pipeline`'s lease for `run_id`, taking it over from a holder whose process is
/// gone on this host.
pub async fn acquire(
    store: &Store,
    pipeline: &str,
    run_id: i64,
    ttl: Duration,
) -> Result<LeaseOutcome, StoreError> {
    let ttl_ms = ttl.as_millis() as i64;
    let holder = this_holder();
    let first = store
        .acquire_lease(pipeline, run_id, holder, now_ms(), ttl_ms, None)
        .await?;
    match first {
        LeaseOutcome::Held { holder: ref h, .. } if is_dead(h) => {
            store
                .acquire_lease(pipeline, run_id, holder, now_ms(), ttl_ms, Some(h))
                .await
        }
        other => Ok(other),
    }
}

/// Renews a lease in the background until dropped or stopped.
pub struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    pub fn start(store: Store, lease: Lease, run_id: i64, ttl: Duration) -> Heartbeat {
        let task = tokio::spawn(async move {
            let ttl_ms = ttl.as_millis() as i64;
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew_lease(&lease, run_id, now_ms(), ttl_ms).await {
                    Ok(true) => {}
                    Ok(false) => {
                        warn!(
                            run_id,
                            pipeline = %lease.pipeline,
                            "the run lost its lease; it will not publish"
                        );
                        return;
                    }
                    // A passing store outage: keep trying until the lease lapses.
                    Err(e) => warn!(run_id, error = %e, "renewing the run's lease failed"),
                }
            }
        });
        Heartbeat { task }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_gone_one_is_dead() {
        let me = this_holder();
        assert!(!is_dead(me), "{me}");
        assert!(is_alive(Some(me), None, now_ms()));
        let host = me.split('/').next().unwrap();
        // pid 0 never has a /proc entry of its own; a wrong start time is another process.
        assert!(is_dead(&format!("{host}/999999999/1")));
        let pid = std::process::id();
        assert!(is_dead(&format!("{host}/{pid}/0")));
        // Another host: only the expiry counts.
        assert!(!is_dead("elsewhere/1/1"));
        assert!(is_alive(
            Some("elsewhere/1/1"),
            Some(now_ms() + 10_000),
            now_ms()
        ));
        assert!(!is_alive(
            Some("elsewhere/1/1"),
            Some(now_ms() - 1),
            now_ms()
        ));
        assert!(!is_alive(None, None, now_ms()));
    }
}
