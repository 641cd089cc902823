pub mod config;
pub mod demo;
mod outputs;
pub mod progress;
pub mod run;
pub mod summary;

pub use config::Pipeline;
pub use run::{RunError, RunOptions, run};
pub use summary::RunSummary;
