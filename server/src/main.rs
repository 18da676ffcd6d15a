//! `vaani`: the SIP/RTP media server for AI phone agents.
//!
//! `vaani serve --config PATH` runs the server; `vaani check-config --config PATH` validates a
//! configuration and reports every error with its key path.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod app;
mod bridge;
mod call;
mod call_media;
mod call_meter;
mod conversation;
mod cost;
mod egress;
mod generation;
mod http;
mod inbound_auth;
mod metrics;
mod outbound;
mod recording;
mod routing;
mod tenant_kv;
mod turn_timing;
mod turns;

#[derive(Debug, Parser)]
#[command(
    name = "vaani",
    version,
    about = "SIP/RTP media server for AI phone agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file (TOML); `VAANI_<SECTION>__<KEY>` variables override its keys.
        #[arg(long, default_value = "config/vaani.toml")]
        config: PathBuf,
    },
    /// Validate a configuration and report every error with its key path.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, default_value = "config/vaani.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match vaani_config::Config::load(&config) {
            Ok(loaded) => {
                println!(
                    "{}: OK ({} tenants, {} trunks)",
                    config.display(),
                    loaded.tenants.len(),
                    loaded.trunks.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{}: invalid configuration", config.display());
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config } => {
            let loaded = match vaani_config::Config::load(&config) {
                Ok(loaded) => loaded,
                Err(errors) => {
                    eprintln!("{}: invalid configuration", config.display());
                    eprintln!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            app::init_tracing();
            match app::serve(loaded) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("vaani stopped: {error:#}");
                    eprintln!("vaani: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
