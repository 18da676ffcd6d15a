//! Keeps the `capacity` and `cps` benchmarks from rotting: each runs at a tiny size against the
//! real binary and must produce a report with every call up and none failed. No figure of
//! speed is asserted (the machine may be busy); the benchmarks themselves report those.

use std::time::Duration;

use vaani_testbench::capacity::{CapacityOptions, run_capacity};
use vaani_testbench::cps::{CpsOptions, run_cps};
use vaani_testbench::load::CallerAudio;

#[test]
fn capacity_benchmark_reports_a_tiny_ramp() {
    let options = CapacityOptions {
        steps: vec![4],
        setup_rate: 20,
        settle: Duration::from_millis(500),
        window: Duration::from_secs(2),
        caller_audio: CallerAudio::Silence,
        baseline: true,
        baseline_shards: 2,
        stop_on_failure: false,
    };
    let report = run_capacity(&options).expect("capacity benchmark runs");
    assert_eq!(report.steps.len(), 1);
    let step = &report.steps[0];
    assert_eq!(step.calls_up, 4, "{step:?}");
    assert_eq!(step.sipp_failed, 0, "{step:?}");
    assert_eq!(step.sipp_successful, 4, "{step:?}");
    assert_eq!(step.sipp_exit, 0, "{step:?}");
    // Audio went both ways and vaani counted what it received.
    assert!(step.inbound_sent > 0, "{step:?}");
    assert!(step.inbound_received > 0, "{step:?}");
    assert!(step.window_received > 0, "{step:?}");
    assert!(step.window_stats.received > 0, "{step:?}");
    assert!(step.window_stats.pacing.count() > 0, "{step:?}");
    assert!(step.vaani_cpu_percent > 0.0, "{step:?}");
    assert!(step.vaani_rss > 0, "{step:?}");
    let baseline = step.baseline.as_ref().expect("baseline ran");
    assert!(baseline.sent > 0 && baseline.received > 0, "{baseline:?}");
    let markdown = report.to_markdown();
    assert!(markdown.contains("\n| 4 | 4 |"), "{markdown}");
}

#[test]
fn cps_benchmark_reports_a_tiny_rate() {
    let options = CpsOptions {
        rates: vec![5],
        duration: Duration::from_secs(2),
        hold: Duration::ZERO,
        drain: Duration::ZERO,
        stop_on_failure: false,
    };
    let report = run_cps(&options).expect("cps benchmark runs");
    assert_eq!(report.steps.len(), 1);
    let step = &report.steps[0];
    assert_eq!(step.calls, 10);
    assert_eq!(step.failed, 0, "{step:?}");
    assert_eq!(step.successful, 10, "{step:?}");
    assert_eq!(step.sipp_exit, 0, "{step:?}");
    assert_eq!(step.left_active, 0, "{step:?}");
    assert!(report.to_markdown().contains("| 5 | 10 | 10 | 0 |"));
}
