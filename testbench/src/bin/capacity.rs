//! `capacity`: ramps concurrent G.711 calls against vaani's echo tenant and prints a markdown
//! report (see `vaani_testbench::capacity`). Build the server first:
//!
//! ```text
//! cargo build --bins -p vaani -p vaani-testbench
//! cargo run -p vaani-testbench --bin capacity -- --help
//! ```
//!
//! The vaani binary is the one next to this executable (same profile), or `VAANI_BIN`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vaani_testbench::capacity::{CapacityOptions, run_capacity};
use vaani_testbench::load::CallerAudio;

/// Ramps concurrent G.711 calls against vaani and reports CPU, RSS, loss and pacing per step.
#[derive(Debug, Parser)]
#[command(name = "capacity")]
struct Args {
    /// Concurrent calls per step (default 50,100,200,400,800,1200,1600,2000).
    #[arg(long, value_delimiter = ',')]
    steps: Option<Vec<usize>>,
    /// Drop steps above N and end the ramp at N.
    #[arg(long, value_name = "N")]
    max_calls: Option<usize>,
    /// Calls sipp starts per second while ramping up a step.
    #[arg(long, value_name = "CPS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    setup_rate: u32,
    /// Seconds between the last call being up and the measuring window.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    settle: u64,
    /// Seconds of the measuring window.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// What the simulated callers send: digital `silence` (a listening caller) or `noise` at
    /// −30 dBFS (a caller whose audio runs the VAD network, as when talking).
    #[arg(long, value_name = "AUDIO", default_value = "silence", value_parser = parse_audio)]
    caller_audio: CallerAudio,
    /// Skip the UDP echo baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Run every step even after one saturated.
    #[arg(long)]
    keep_going: bool,
}

fn parse_audio(text: &str) -> Result<CallerAudio, String> {
    match text {
        "silence" => Ok(CallerAudio::Silence),
        "noise" => Ok(CallerAudio::Noise),
        other => Err(format!("`{other}`: expected silence or noise")),
    }
}

impl Args {
    fn into_options(self) -> Result<CapacityOptions, String> {
        let mut options = CapacityOptions::default();
        if let Some(steps) = self.steps {
            options.steps = steps;
        }
        if let Some(max) = self.max_calls {
            options.steps.retain(|&n| n <= max);
            options.steps.push(max);
        }
        options.steps.retain(|&n| n > 0);
        options.steps.sort_unstable();
        options.steps.dedup();
        if options.steps.is_empty() {
            return Err("need at least one step above 0 calls".to_string());
        }
        options.setup_rate = self.setup_rate;
        options.settle = Duration::from_secs(self.settle);
        options.window = Duration::from_secs(self.window);
        options.caller_audio = self.caller_audio;
        options.baseline = !self.no_baseline;
        options.stop_on_failure = !self.keep_going;
        Ok(options)
    }
}

fn main() -> ExitCode {
    let options = match Args::parse().into_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("capacity: {message}");
            return ExitCode::from(2);
        }
    };
    eprintln!("capacity: {options:?}");
    match run_capacity(&options) {
        Ok(report) => {
            println!("{}", report.to_markdown());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("capacity benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}
