//! The Cedar workload of the decision scenarios: the synthetic one built in (`rsp-policy/tests/fixtures`,
//! 100 policies, ~1,000 entities, 500 requests), or one written by the peers' `gen_workload.py` into a
//! directory (`--cedar-workload`), of which the first [`PEER_CYCLE`] requests are sent, as the peer's wrk
//! script does, so both sides see the same mix and the same number of distinct requests.

use std::path::Path;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::admin::AdminClient;

const POLICIES: &str = include_str!("../../../rsp-policy/tests/fixtures/policies.json");
const ENTITIES: &str = include_str!("../../../rsp-policy/tests/fixtures/data.json");
const REQUESTS: &str = include_str!("../../../rsp-policy/tests/fixtures/requests.json");

/// How many requests of a generated workload the peer's wrk script (`requests.lua`) cycles through.
const PEER_CYCLE: usize = 2000;

/// Policies, entities and the decision requests to send.
pub(super) struct CedarWorkload {
    /// One Cedar text, each policy under its `@id`, as the admin API stores a policy set.
    policies: String,
    entities: Value,
    pub requests: Vec<Value>,
}

impl CedarWorkload {
    /// The workload in `dir`, or the built-in one.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let (policies, entities, requests, cycle) = match dir {
            None => (POLICIES.to_owned(), ENTITIES.to_owned(), REQUESTS.to_owned(), usize::MAX),
            Some(dir) => {
                let read = |name: &str| {
                    let path = dir.join(name);
                    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
                };
                (read("policies.json")?, read("data.json")?, read("requests.json")?, PEER_CYCLE)
            }
        };
        let policies: Vec<Value> = serde_json::from_str(&policies).context("policies.json is not JSON")?;
        let mut requests: Vec<Value> = serde_json::from_str(&requests).context("requests.json is not JSON")?;
        requests.truncate(cycle);
        if requests.is_empty() {
            bail!("the workload has no requests");
        }
        Ok(Self {
            policies: policy_text(&policies)?,
            entities: serde_json::from_str(&entities).context("data.json is not JSON")?,
            requests,
        })
    }

    /// Stores the policies and entities in the tenant at `tenant_api` (an admin API path).
    pub async fn install(&self, admin: &AdminClient, tenant_api: &str) -> anyhow::Result<()> {
        let policies = json!({"policies": self.policies});
        admin.call(Method::PUT, &format!("{tenant_api}/policies"), Some(policies)).await?;
        admin.call(Method::PUT, &format!("{tenant_api}/entities"), Some(self.entities.clone())).await?;
        Ok(())
    }
}

/// The policies as one Cedar text, each under its `@id`.
fn policy_text(policies: &[Value]) -> anyhow::Result<String> {
    policies
        .iter()
        .map(|policy| {
            let text = |name: &str| {
                policy.get(name).and_then(Value::as_str).with_context(|| format!("a workload policy lacks {name}"))
            };
            Ok(format!("@id(\"{}\")\n{}\n", text("id")?, text("content")?))
        })
        .collect()
}
