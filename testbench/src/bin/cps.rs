//! `cps`: the highest call setup rate vaani sustains with no failed call, driven by sipp
//! (INVITE → 200 → ACK → BYE); prints a markdown report (see `vaani_testbench::cps`). Build
//! the server first:
//!
//! ```text
//! cargo build --bins -p vaani -p vaani-testbench
//! cargo run -p vaani-testbench --bin cps -- [--rates 50,100,200] [--max-rate N]
//!     [--duration SECS] [--drain SECS] [--hold-ms MS] [--keep-going]
//! ```
//!
//! The vaani binary is the one next to this executable (same profile), or `VAANI_BIN`.

use std::process::ExitCode;
use std::time::Duration;

use vaani_testbench::cps::{CpsOptions, run_cps};

const USAGE: &str = "usage: cps [--rates N,N,...] [--max-rate N] [--duration SECS] \
                     [--drain SECS] [--hold-ms MS] [--keep-going]";

fn parse(args: &[String]) -> Result<CpsOptions, String> {
    let mut options = CpsOptions::default();
    let mut max_rate = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        let number = |text: String| -> Result<u64, String> {
            text.parse::<u64>()
                .map_err(|_| format!("{arg}: `{text}` is not a number"))
        };
        match arg.as_str() {
            "--rates" => {
                options.rates = value()?
                    .split(',')
                    .map(|n| number(n.trim().to_string()).map(|n| n as u32))
                    .collect::<Result<_, _>>()?;
            }
            "--max-rate" => max_rate = Some(number(value()?)? as u32),
            "--duration" => options.duration = Duration::from_secs(number(value()?)?),
            "--hold-ms" => options.hold = Duration::from_millis(number(value()?)?),
            "--drain" => options.drain = Duration::from_secs(number(value()?)?),
            "--keep-going" => options.stop_on_failure = false,
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if let Some(max) = max_rate {
        options.rates.retain(|&n| n <= max);
        if options.rates.last() != Some(&max) {
            options.rates.push(max);
        }
    }
    options.rates.retain(|&n| n > 0);
    options.rates.sort_unstable();
    options.rates.dedup();
    if options.rates.is_empty() || options.duration.is_zero() {
        return Err(format!("need at least one rate and a duration\n{USAGE}"));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
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
