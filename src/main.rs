//! The `xmatch` binary: everything it does is in the library; errors become one line on
//! stderr and a non-zero exit.

use clap::Parser;

/// mimalloc instead of the system allocator: a run makes tens of millions of small,
/// short-lived allocations (one per parsed cell and normalized name), and with glibc's
/// allocator those cost about a tenth of a 1M-participant run's CPU time. The
/// `system-alloc` feature keeps glibc's, for heap profilers that hook malloc.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = xmatch::cli::Cli::parse();
    xmatch::cli::init_logging(cli.log.as_deref());
    match xmatch::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line: the chain of causes, outermost first.
            let msg = err
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("xmatch: error: {msg}");
            std::process::ExitCode::from(2)
        }
    }
}
