//! One integration-test binary: every file directly under `tests/` would link its own
//! copy of DataFusion, so all integration tests live here as modules.

mod breach;
mod crash;
mod evidence;
mod generate;
mod golden;
mod identity;
mod ingest;
mod keys;
mod lake;
mod leaks;
mod linkage;
mod outputs;
mod pipeline;
mod purge;
mod registry;
mod report;
mod report_html;
mod review;
mod rotation;
mod schema;
mod secure;
mod serve;
mod store;
mod support;
mod tokenize;
mod workspace;
