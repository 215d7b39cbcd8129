//! `rsp loadtest`: measures the server's OAuth and decision endpoints with the same yardstick every time.
//!
//! A run sets up a throw-away tenant through the admin API (a client, and for the decision scenarios
//! a Cedar workload, built in or from `--cedar-workload`, for the login scenario an account), drives
//! load for a warm-up and then a measured window, deletes the tenant and reports throughput and latency
//! percentiles from an HdrHistogram. A login is three requests (see `login`) and counts as one. With
//! `--token-url` it measures another server's token and introspection endpoints instead, without set-up. It only ever talks to the configured server or the URLs given.

mod args;
mod cedar;
mod connection;
mod driver;
mod login;
mod report;
mod target;

use std::sync::Arc;

pub use args::{LoadtestArgs, Scenario, Secret, parse_duration};
pub use report::{Latency, Report};

/// Runs a load test to its end and returns the summary; progress goes to stderr once a second.
pub async fn run(args: LoadtestArgs) -> anyhow::Result<Report> {
    let (workload, fixture) = target::prepare(&args).await?;
    let workload = Arc::new(workload);
    let plan = driver::Plan {
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        rate: args.rate,
        http2: args.http2,
    };
    let outcome = driver::drive(workload.clone(), plan).await;
    if let Some(fixture) = fixture {
        if args.keep {
            eprintln!("kept tenant {}", fixture.tenant);
        } else {
            fixture.remove().await?;
        }
    }
    let outcome = outcome?;
    let secs = args.duration.as_secs_f64();
    let per_sec = |count: u64| if secs > 0.0 { count as f64 / secs } else { 0.0 };
    let successes = outcome.requests - outcome.errors;
    let batch = (args.scenario == Scenario::AuthorizeBatch).then_some(workload.decisions_per_request);
    Ok(Report {
        scenario: args.scenario.name(),
        target: workload.url.clone(),
        mode: if args.rate.is_some() { "open-loop" } else { "closed-loop" },
        connections: args.connections,
        rate: args.rate,
        http2: args.http2,
        warmup_secs: args.warmup.as_secs_f64(),
        duration_secs: secs,
        requests: outcome.requests,
        errors: outcome.errors,
        requests_per_sec: per_sec(successes),
        batch_size: batch,
        decisions_per_sec: batch.map(|size| per_sec(successes * size)),
        latency_ms: Latency::from_micros(&outcome.histogram),
    })
}
