//! `cps`: the highest call setup rate vaani sustains with no failed call, driven by sipp
//! (INVITE → 200 → ACK → BYE); prints a markdown report (see `vaani_testbench::cps`). Build
//! the server first:
//!
//! ```text
//! cargo build --bins -p vaani -p vaani-testbench
//! cargo run -p vaani-testbench --bin cps -- --help
//! ```
//!
//! The vaani binary is the one next to this executable (same profile), or `VAANI_BIN`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vaani_testbench::cps::{CpsOptions, run_cps};

/// Finds the highest call setup rate vaani sustains with no failed call.
#[derive(Debug, Parser)]
#[command(name = "cps")]
struct Args {
    /// Calls per second to try (default 100,200,300,400,500,600).
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<u32>>,
    /// Drop rates above N and end at N.
    #[arg(long, value_name = "N")]
    max_rate: Option<u32>,
    /// Seconds each rate runs.
    #[arg(long, value_name = "SECS", default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Milliseconds each call stays up between ACK and BYE.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    hold_ms: u64,
    /// Seconds to wait before each rate after the first (ended calls leave vaani's SIP call
    /// table after 32 s over UDP).
    #[arg(long, value_name = "SECS", default_value_t = 33)]
    drain: u64,
    /// Try every rate even after one was not sustained.
    #[arg(long)]
    keep_going: bool,
}

impl Args {
    fn into_options(self) -> Result<CpsOptions, String> {
        let mut options = CpsOptions::default();
        if let Some(rates) = self.rates {
            options.rates = rates;
        }
        if let Some(max) = self.max_rate {
            options.rates.retain(|&n| n <= max);
            options.rates.push(max);
        }
        options.rates.retain(|&n| n > 0);
        options.rates.sort_unstable();
        options.rates.dedup();
        if options.rates.is_empty() {
            return Err("need at least one rate above 0".to_string());
        }
        options.duration = Duration::from_secs(self.duration);
        options.hold = Duration::from_millis(self.hold_ms);
        options.drain = Duration::from_secs(self.drain);
        options.stop_on_failure = !self.keep_going;
        Ok(options)
    }
}

fn main() -> ExitCode {
    let options = match Args::parse().into_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("cps: {message}");
            return ExitCode::from(2);
        }
    };
    eprintln!("cps: {options:?}");
    match run_cps(&options) {
        Ok(report) => {
            println!("{}", report.to_markdown());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cps benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}
