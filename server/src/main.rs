//! `vaani`: the SIP/RTP media server for AI phone agents.
//!
//! `vaani serve --config PATH` runs the server; `vaani check-config --config PATH` validates a
//! configuration and reports every error with its key path. `vaani compile-plugin` (hidden) is
//! the resource-limited child that compiles uploaded plugins (see `plugin_compile`).

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
mod limits;
mod logging;
mod metrics;
mod node;
mod outbound;
// The parent side has no caller until `POST /api/v1/plugins` (issue 6, step 14).
mod plugin_compile;
mod recording;
mod registry;
mod registry_loader;
mod routing;
mod tenant_kv;
mod turn_timing;
mod turns;
mod webhooks;

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
    /// Compile an uploaded plugin and write the artifact to standard output.
    /// Run by the server as a resource-limited child (see plugin_compile.rs),
    /// not by people.
    #[command(hide = true)]
    CompilePlugin {
        /// The component; standard input when absent.
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CompilePlugin { wasm } => plugin_compile::run_child(wasm.as_deref()),
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
            app::init_tracing(loaded.log.format);
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
