//! Running pipelines without anyone at the keyboard: `xmatch serve`.
//!
//! - [`cron`]: when a pipeline fires (local wall-clock time, correct across daylight-saving
//!   changes);
//! - [`daemon`]: the long-running process: tokio-cron-scheduler one-shot jobs re-armed after
//!   every firing, runs under the store's per-pipeline lease, retries with backoff,
//!   catch-up of missed times, SIGHUP reload, graceful SIGTERM;
//! - [`http`]: `/healthz` and `/metrics`;
//! - [`webhook`]: notifying a failed or abandoned run.
//!
//! The run history itself lives in the store (`store::runs`); `xmatch runs` reads it.

pub mod cron;
pub mod daemon;
pub mod history;
pub mod http;
pub mod webhook;

pub use daemon::{ServeError, ServeOptions, serve};
