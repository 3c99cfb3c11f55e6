//! `tollgate-gateway`: parse options, set up logging, run the gateway until a shutdown
//! signal. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let config = match tollgate_gateway::Cli::parse().into_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tollgate-gateway: {error}");
            return ExitCode::from(2);
        }
    };
    tollgate_gateway::init_tracing(config.log_format);
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
    match runtime.block_on(tollgate_gateway::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tollgate-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}
