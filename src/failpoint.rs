//! Named crash points for crash-consistency tests.
//!
//! `hit("publish.mid_rename")` does nothing unless the environment variable
//! `XMATCH_FAILPOINT` names that point; then the process SIGKILLs itself. SIGKILL is the
//! realistic crash (power cut, OOM killer, `kill -9` from an operator): no unwinding, no
//! destructors, no flushing of buffered writers, unlike a panic or `abort()` (SIGABRT can
//! be caught and runs no cleanup either, but is not what the outside world does to us).
//! There is no `libc` dependency, so the signal is sent with the system's `kill` command.
//!
//! Points used by the lake: `lake.mid_write`, `lake.before_publish`, `publish.mid_rename`,
//! `publish.after_rename`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const ENV: &str = "XMATCH_FAILPOINT";

static ARMED: OnceLock<Option<String>> = OnceLock::new();
static FAILED: AtomicU32 = AtomicU32::new(0);

/// What the variable asks of a point: `NAME` kills, `NAME=sleep:SECS` stalls the run there
/// (a slow run, for shutdown tests), `NAME=fail:N` makes the first N hits fail.
enum Action {
    Kill,
    Sleep(Duration),
    Fail(u32),
}

fn armed(name: &str) -> Option<Action> {
    let value = ARMED
        .get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()?;
    let (point, action) = value.split_once('=').unwrap_or((value, ""));
    if point != name {
        return None;
    }
    let (verb, arg) = action.split_once(':').unwrap_or((action, ""));
    match verb {
        "" => Some(Action::Kill),
        "sleep" => Some(Action::Sleep(Duration::from_secs_f64(
            arg.parse().unwrap_or(1.0),
        ))),
        "fail" => Some(Action::Fail(arg.parse().unwrap_or(1))),
        _ => None,
    }
}

/// Kills the process with SIGKILL (or stalls) when `XMATCH_FAILPOINT` names `name`. The
/// variable is read once per process, so a hot loop pays one atomic load per call.
pub fn hit(name: &str) {
    match armed(name) {
        Some(Action::Kill) => kill_self(name),
        Some(Action::Sleep(d)) => {
            tracing::warn!(failpoint = name, "failpoint reached: stalling");
            std::thread::sleep(d)
        }
        _ => {}
    }
}

/// `true` for the first N hits when `XMATCH_FAILPOINT` is `NAME=fail:N`: an injected
/// failure the caller turns into an ordinary error (retry tests).
pub fn fails(name: &str) -> bool {
    match armed(name) {
        Some(Action::Fail(n)) => FAILED.fetch_add(1, Ordering::SeqCst) < n,
        _ => false,
    }
}

fn kill_self(name: &str) -> ! {
    tracing::warn!(
        failpoint = name,
        "failpoint reached: killing the process with SIGKILL"
    );
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // The signal is delivered asynchronously; do no more work until it lands. Should the
    // `kill` command be missing, abort rather than carry on past the crash point.
    for _ in 0..500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::process::abort()
}
