//! Prints the jitter-buffer metrics table for every standard network scenario
//! (`vaani_media::netsim::scenarios`), as recorded in `docs/benchmarks.md`.
//!
//! `cargo run -p vaani-media --release --example jitter_report [min_delay_ms]`
//!
//! The optional argument overrides `JitterConfig::min_delay_ms` (the deadline floor) to compare
//! tunings.
//!
//! Deterministic: the same table on every run and machine (simulated clock, seeded scenarios).

use std::time::Instant;

use vaani_media::netsim;

fn main() {
    let mut config = netsim::default_config();
    if let Some(arg) = std::env::args().nth(1) {
        config.min_delay_ms = arg.parse().expect("min_delay_ms: a whole number of ms");
        config.initial_delay_ms = config.initial_delay_ms.max(config.min_delay_ms);
    }
    let started = Instant::now();
    let metrics: Vec<_> = netsim::scenarios()
        .iter()
        .map(|p| netsim::run(p, config))
        .collect();
    let elapsed = started.elapsed();
    print!("{}", netsim::table(&metrics));
    println!();
    println!(
        "{} scenarios × 60 s of 20 ms G.711 simulated in {:.0} ms (JitterConfig: min_delay_ms {}, \
         otherwise default).",
        metrics.len(),
        elapsed.as_secs_f64() * 1000.0,
        config.min_delay_ms
    );
    println!(
        "Columns: lost = sent packets never played (network + late); late = arrived but after \
         their deadline; reord/dup = harness counts; jitter = RFC 3550 interarrival; added = \
         playout time − arrival time of played packets; conceal = concealed / (played + \
         concealed) samples; gap = DTX silence filled; target = buffer's final loss deadline; \
         recovery = packets after an SSRC change / timestamp jump before the first one played."
    );
    let broken: Vec<_> = metrics
        .iter()
        .filter(|m| m.played_twice > 0 || m.out_of_order > 0 || m.stalls > 0 || m.left_buffered > 0)
        .map(|m| m.name)
        .collect();
    if !broken.is_empty() {
        println!("INVARIANT VIOLATIONS (played twice / out of order / stall / stuck): {broken:?}");
    }
}
