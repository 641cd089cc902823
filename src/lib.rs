//! xmatch: keyed-token cross-matching of WIOA participants with partner-agency records,
//! temporary IDs for people without an SSN, and de-identified datasets for reporting.
//!
//! The data flows `ingest → identity → link → deid → lake`; `report`, `breach` and
//! `schedule` read what the lake and the store hold. Each stage is one module.

pub mod breach;
pub mod cli;
pub mod deid;
pub mod failpoint;
pub mod generate;
pub mod identity;
pub mod ingest;
pub mod keys;
pub mod lake;
pub mod link;
pub mod pipeline;
pub mod purge;
pub mod report;
pub mod review;
pub mod schedule;
pub mod schema;
pub mod secure;
pub mod store;
pub mod tokenize;
pub mod workspace;
