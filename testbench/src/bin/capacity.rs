//! `capacity`: ramps concurrent G.711 calls against vaani's echo tenant and prints a markdown
//! report (see `vaani_testbench::capacity`). Build the server first:
//!
//! ```text
//! cargo build --bins -p vaani -p vaani-testbench
//! cargo run -p vaani-testbench --bin capacity -- [--steps 50,100,200] [--max-calls N]
//!     [--setup-rate CPS] [--settle SECS] [--window SECS] [--no-baseline] [--keep-going]
//! ```
//!
//! The vaani binary is the one next to this executable (same profile), or `VAANI_BIN`.

use std::process::ExitCode;
use std::time::Duration;

use vaani_testbench::capacity::{CapacityOptions, run_capacity};

const USAGE: &str = "usage: capacity [--steps N,N,...] [--max-calls N] [--setup-rate CPS] \
                     [--settle SECS] [--window SECS] [--no-baseline] [--keep-going]";

fn parse(args: &[String]) -> Result<CapacityOptions, String> {
    let mut options = CapacityOptions::default();
    let mut max_calls = None;
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
            "--steps" => {
                options.steps = value()?
                    .split(',')
                    .map(|n| number(n.trim().to_string()).map(|n| n as usize))
                    .collect::<Result<_, _>>()?;
            }
            "--max-calls" => max_calls = Some(number(value()?)? as usize),
            "--setup-rate" => options.setup_rate = number(value()?)? as u32,
            "--settle" => options.settle = Duration::from_secs(number(value()?)?),
            "--window" => options.window = Duration::from_secs(number(value()?)?),
            "--no-baseline" => options.baseline = false,
            "--keep-going" => options.stop_on_failure = false,
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if let Some(max) = max_calls {
        options.steps.retain(|&n| n <= max);
        if options.steps.last() != Some(&max) {
            options.steps.push(max);
        }
    }
    options.steps.retain(|&n| n > 0);
    options.steps.sort_unstable();
    options.steps.dedup();
    if options.steps.is_empty() || options.setup_rate == 0 || options.window.is_zero() {
        return Err(format!(
            "need at least one step, a setup rate and a window\n{USAGE}"
        ));
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
