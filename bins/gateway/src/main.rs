//! `tollgate-gateway`: parse options, set up logging, run the gateway until a shutdown
//! signal. Everything else lives in `tollgate-server` and the crates below it.

mod config;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc (feature `mimalloc`, on by default) instead of glibc's malloc: under load,
/// glibc's malloc was about a quarter of the gateway's CPU profile and its resident set
/// followed the usage queue. Huge pages are off (`no_thp`), which keeps the resident set
/// close to what is in use. docs/PERFORMANCE.md has the side-by-side numbers.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (config, log_format) = match config::Cli::parse().into_config() {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("tollgate-gateway: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tollgate-gateway: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tollgate_server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tollgate-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}
