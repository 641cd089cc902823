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

/// mimalloc's option number for `purge_delay` (`mi_option_purge_delay` in `mimalloc.h`;
/// the enum keeps its deprecated slots so that numbers stay put across versions), and
/// its default in mimalloc 3, which the option must hold before it is changed: a later
/// mimalloc that numbered it otherwise is left alone rather than mis-set.
#[cfg(not(feature = "system-alloc"))]
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
#[cfg(not(feature = "system-alloc"))]
const MI_PURGE_DELAY_DEFAULT: std::ffi::c_long = 1_000;

#[cfg(not(feature = "system-alloc"))]
unsafe extern "C" {
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// How long mimalloc keeps freed memory before returning it to the OS, in milliseconds
/// (its default is 1,000). A run frees and takes back gigabytes stage by stage (9 GiB
/// returned over a first run at a million participants), and memory taken back from the
/// OS is zeroed page by page by the kernel: on the benchmark machine the largest single
/// item in a profile. At 3,000 ms (6.8 GiB returned), steady-state runs at a million
/// participants took 6 % less time, paired over three rounds, and first runs about the
/// same at a peak 0.08 GiB higher (the README's benchmarks). Longer delays keep more at
/// the peak (10,000 ms: 3.60 GiB on a first run). `MIMALLOC_PURGE_DELAY` in the
/// environment still decides when set.
#[cfg(not(feature = "system-alloc"))]
fn keep_freed_memory_longer() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: reads and sets one of mimalloc's integer options (it reads this one when it
    // next schedules a purge); no memory is touched.
    unsafe {
        if mi_option_get(MI_OPTION_PURGE_DELAY) == MI_PURGE_DELAY_DEFAULT {
            mi_option_set(MI_OPTION_PURGE_DELAY, 3_000);
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    #[cfg(not(feature = "system-alloc"))]
    keep_freed_memory_longer();
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
