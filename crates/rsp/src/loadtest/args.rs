//! The `rsp loadtest` flags.

use std::fmt;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cli::args::Connection;

/// The endpoint a load test measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// POST /t/{tenant}/oauth2/token: client_credentials with HTTP Basic.
    ClientCredentials,
    /// POST /t/{tenant}/oauth2/introspect of a token minted during set-up.
    Introspect,
    /// POST /t/{tenant}/v1/authorize: one Cedar decision per request.
    Authorize,
    /// POST /t/{tenant}/v1/authorize/batch: --batch-size decisions per request.
    AuthorizeBatch,
    /// The authentication path of a resource server in turn: a token, a decision, an introspection.
    Mixed,
    /// A person's password login, as a browser does it: GET /oauth2/authorize, the login page (for its
    /// CSRF token and pre-session cookie), then POST /oauth2/login. Bound by Argon2, so reported apart.
    Login,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client-credentials",
            Self::Introspect => "introspect",
            Self::Authorize => "authorize",
            Self::AuthorizeBatch => "authorize-batch",
            Self::Mixed => "mixed",
            Self::Login => "login",
        }
    }
}

/// A secret given on the command line; its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Args, Clone)]
pub struct LoadtestArgs {
    /// The endpoint to measure.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Concurrent connections, each with its own HTTP client.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// How long to measure, after the warm-up (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How long to send before measuring; not recorded.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Open loop: requests per second in total, on a fixed schedule, with latency counted from each
    /// request's intended send time. Without it each connection sends back to back (closed loop).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Decisions per request in the authorize-batch scenario (the server takes at most 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Another server's single-decision endpoint to measure with the authorize scenario (e.g.
    /// cedar-agent's `/v1/is_authorized`), sent the workload's request bodies as they are, without
    /// credentials and without set-up: load the same workload into it first.
    #[arg(long, value_name = "URL", conflicts_with = "token_url")]
    pub authorize_url: Option<String>,
    /// A Cedar workload directory written by the peers' `gen_workload.py` (policies.json, data.json,
    /// requests.json) for the decision scenarios, instead of the built-in one; its first 2,000 requests
    /// are sent, as the peer's wrk script does.
    #[arg(long, value_name = "DIR")]
    pub cedar_workload: Option<std::path::PathBuf>,
    /// Login scenario only: post wrong passwords for ever-changing unknown usernames, each connection
    /// moving to a new loopback source address (127.1.0.0 onwards) every few attempts, as a credential
    /// stuffing botnet would; a 401 counts as success, a 429 (throttled) as an error.
    #[arg(long)]
    pub wrong_password: bool,
    /// Speak HTTP/2 without TLS (prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Leave the set-up tenant in place afterwards.
    #[arg(long)]
    pub keep: bool,
    /// An external token endpoint to measure instead of setting up a tenant (client-credentials and
    /// introspect only).
    #[arg(long, value_name = "URL", requires_all = ["client_id", "client_secret"])]
    pub token_url: Option<String>,
    /// The client id for --token-url.
    #[arg(long, value_name = "ID", requires = "token_url")]
    pub client_id: Option<String>,
    /// The client secret for --token-url.
    #[arg(long, value_name = "SECRET", requires = "token_url")]
    pub client_secret: Option<Secret>,
    /// The scope to request from --token-url.
    #[arg(long, requires = "token_url")]
    pub scope: Option<String>,
    /// An RFC 8707 `resource` to send with --token-url token requests (node-oidc-provider issues opaque,
    /// introspectable tokens only for a resource it is configured to).
    #[arg(long, value_name = "URI", requires = "token_url")]
    pub resource: Option<String>,
    /// An external introspection endpoint, for the introspect scenario with --token-url.
    #[arg(long, value_name = "URL", requires = "token_url")]
    pub introspect_url: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

/// Parses `10s`, `500ms`, `1.5m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a duration such as 10s, 500ms or 1m");
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| invalid())?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn a_secret_stays_out_of_debug() {
        assert!(!format!("{:?}", Secret::from("hunter2".to_owned())).contains("hunter2"));
    }
}
