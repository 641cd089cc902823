pub mod config;
pub mod demo;
pub mod job;
pub mod lease;
mod linkage;
mod outputs;
pub mod progress;
pub mod run;
pub mod summary;
pub mod truth;

pub use config::Pipeline;
pub use job::{JobOutcome, execute};
pub use run::{RunError, RunOptions, run};
pub use summary::RunSummary;
