//! Decisions per second of the engine in process, for the Cedar side by side (`bench/cedar.sh`): the
//! yardstick the HTTP decision endpoint is measured against.
//!
//! ```sh
//! cargo run --release -p rsp-policy --example cedar_throughput -- DIR [--threads 2] [--duration 10] [--requests 2000]
//! ```
//!
//! `DIR` holds a workload written by `../shared/peers/cedar-workload/gen_workload.py`: `policies.json`
//! (joined into one Cedar text under their `@id`s, as the admin API stores them), `data.json` and
//! `requests.json` (the first `--requests` are cycled, as the peer's wrk script does). Each thread decides
//! them in turn through the code the server runs for a decision with the decision cache off
//! (`DecisionCache` of capacity 0 over an installed `Snapshot`), minus HTTP, authentication and JSON:
//! requests are parsed before the clock starts. Prints one JSON object.
//!
//! With `--verify` it measures nothing: it decides every request of `requests.json` through the engine
//! (which evaluates only the policies whose scope matches) and through Cedar's `Authorizer` over the whole
//! policy set built with Cedar's own API, and fails on the first difference in decision, determining
//! policies or errors.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rsp_core::TenantId;
use rsp_policy::{DecisionCache, DecisionRequest, EntityStore, PolicyDocument, PolicyEngine, Snapshot, validate};
use serde_json::{Value, json};

/// The command line.
struct Options {
    dir: PathBuf,
    threads: usize,
    duration: Duration,
    requests: usize,
    verify: bool,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut options =
        Options { dir: PathBuf::new(), threads: 2, duration: Duration::from_secs(10), requests: 2000, verify: false };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--threads" => options.threads = value()?.parse()?,
            "--duration" => options.duration = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--requests" => options.requests = value()?.parse()?,
            "--verify" => options.verify = true,
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}").into()),
            dir => options.dir = PathBuf::from(dir),
        }
    }
    if options.dir.as_os_str().is_empty() || options.threads == 0 || options.requests == 0 {
        return Err("usage: cedar_throughput DIR [--threads N] [--duration SECS] [--requests N] [--verify]".into());
    }
    Ok(options)
}

fn read_json(dir: &Path, name: &str) -> Result<Value, Box<dyn Error>> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The workload's policies under their `@id`s, as `rsp loadtest` and `bench/cedar.sh` load them.
fn policy_text(policies: &Value) -> Result<String, Box<dyn Error>> {
    let list = policies.as_array().ok_or("policies.json is not an array")?;
    list.iter()
        .map(|policy| {
            let field = |name: &str| policy.get(name).and_then(Value::as_str).ok_or(format!("a policy lacks {name}"));
            Ok(format!("@id(\"{}\")\n{}\n", field("id")?, field("content")?))
        })
        .collect()
}

fn snapshot(dir: &Path) -> Result<Arc<Snapshot>, Box<dyn Error>> {
    let tenant = TenantId::default_tenant();
    let engine = PolicyEngine::new();
    let document = PolicyDocument { policies: policy_text(&read_json(dir, "policies.json")?)?, ..Default::default() };
    engine.install_policies(&tenant, validate(&document).map_err(|e| format!("{e:?}"))?, 1)?;
    engine.install_entities(&tenant, EntityStore::from_json(read_json(dir, "data.json")?, None)?, 1)?;
    Ok(engine.snapshot(&tenant).ok_or("the workload was not installed")?)
}

/// One thread's loop: decides requests in turn, starting at `offset`, until `stop`; returns how many.
fn decide(snapshot: &Snapshot, requests: &[DecisionRequest], offset: usize, stop: &AtomicBool) -> u64 {
    let cache = DecisionCache::new(0);
    let mut done = 0;
    for request in requests.iter().cycle().skip(offset) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // An invalid request is an answer too (the HTTP endpoint returns it as an error); count it.
        let _ = std::hint::black_box(cache.authorize(snapshot, request));
        done += 1;
    }
    done
}

/// What is compared: allowed, the determining policies and the errors, as sets.
type Outcome = (bool, BTreeSet<String>, BTreeSet<String>);

/// Every request of the workload through the engine and through Cedar alone over the whole set.
fn verify(dir: &Path, snapshot: &Snapshot, items: &[Value]) -> Result<(), Box<dyn Error>> {
    use cedar_policy::{Authorizer, Context, Entities, EntityUid, Policy, PolicyId, PolicySet, Request};
    let mut whole = PolicySet::new();
    for policy in read_json(dir, "policies.json")?.as_array().ok_or("policies.json is not an array")? {
        let field = |name: &str| policy.get(name).and_then(Value::as_str).ok_or(format!("a policy lacks {name}"));
        whole.add(Policy::parse(Some(PolicyId::new(field("id")?)), field("content")?)?)?;
    }
    let entities = Entities::from_json_value(read_json(dir, "data.json")?, None)?;
    let authorizer = Authorizer::new();
    let uid = |body: &Value, name: &str| -> Result<EntityUid, Box<dyn Error>> {
        let text = body.get(name).and_then(Value::as_str).ok_or(format!("a request's {name} is not a string"))?;
        Ok(EntityUid::from_str(text)?)
    };
    for (index, body) in items.iter().enumerate() {
        let context = Context::from_json_value(body.get("context").cloned().unwrap_or(json!({})), None)?;
        let request =
            Request::new(uid(body, "principal")?, uid(body, "action")?, uid(body, "resource")?, context, None)?;
        let response = authorizer.is_authorized(&request, &whole, &entities);
        let expected: Outcome = (
            response.decision() == cedar_policy::Decision::Allow,
            response.diagnostics().reason().map(ToString::to_string).collect(),
            response.diagnostics().errors().map(ToString::to_string).collect(),
        );
        let decision = rsp_policy::authorize(snapshot, &DecisionRequest::from_json(body.clone())?)?;
        let got: Outcome =
            (decision.allowed, decision.reasons.into_iter().collect(), decision.errors.into_iter().collect());
        if got != expected {
            return Err(format!("request {index} {body}: engine {got:?}, Cedar over the whole set {expected:?}").into());
        }
    }
    println!("{}", json!({"verified": items.len(), "mismatches": 0}));
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let options = options()?;
    let snapshot = snapshot(&options.dir)?;
    let Value::Array(items) = read_json(&options.dir, "requests.json")? else {
        return Err("requests.json is not an array".into());
    };
    if options.verify {
        return verify(&options.dir, &snapshot, &items);
    }
    let requests = items
        .into_iter()
        .take(options.requests)
        .map(DecisionRequest::from_json)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a request is invalid: {e}"))?;
    if requests.is_empty() {
        return Err("requests.json is empty".into());
    }
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let decisions: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..options.threads)
            .map(|thread| {
                let (snapshot, requests, stop) = (&snapshot, &requests, &stop);
                scope.spawn(move || decide(snapshot, requests, thread * requests.len() / options.threads, stop))
            })
            .collect();
        std::thread::sleep(options.duration);
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().map(|worker| worker.join().unwrap_or_default()).sum()
    });
    let secs = started.elapsed().as_secs_f64();
    let report = json!({
        "threads": options.threads,
        "distinct_requests": requests.len(),
        "decisions": decisions,
        "seconds": secs,
        "decisions_per_sec": decisions as f64 / secs,
        "micros_per_decision_per_thread": secs * 1e6 * options.threads as f64 / decisions.max(1) as f64,
    });
    println!("{report}");
    Ok(())
}
