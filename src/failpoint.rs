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

pub const ENV: &str = "XMATCH_FAILPOINT";

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Kills the process with SIGKILL when `XMATCH_FAILPOINT` equals `name`. The variable is
/// read once per process, so a hot loop pays one atomic load per call.
pub fn hit(name: &str) {
    let armed = ARMED.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if armed.as_deref() == Some(name) {
        kill_self(name);
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
