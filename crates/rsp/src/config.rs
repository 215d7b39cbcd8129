//! Configuration, layered: built-in defaults, then the TOML file (`--config`), then `RSP_*` environment
//! variables, then command-line flags. `rsp check-config` prints the result with secrets redacted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Which parts of the platform this process runs. Every role is a stateless replica over the shared
/// database (and Redis, when configured); run any number of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Both services and the background consumers in one process (the no-configuration default).
    #[default]
    All,
    /// The OAuth/OIDC server and the admin API; scope decisions go to `policy_url` over HTTP.
    Auth,
    /// The policy decision point and the admin API.
    Policy,
    /// The event-bus consumers (audit trail, outbox relay) and nothing public.
    Worker,
}

impl Role {
    pub fn serves_auth(self) -> bool {
        matches!(self, Self::All | Self::Auth)
    }

    pub fn serves_policy(self) -> bool {
        matches!(self, Self::All | Self::Policy)
    }

    pub fn runs_consumers(self) -> bool {
        matches!(self, Self::All | Self::Worker)
    }
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, the generated master key and `admin-client.json` live.
    pub data_dir: PathBuf,
    /// The public listener: OAuth endpoints and the admin API.
    pub listen: SocketAddr,
    /// The URL clients reach the public listener at; tenant issuers are `<public_url>/t/<tenant>`.
    /// Unset means `http://<listen>` (with the port actually bound).
    pub public_url: Option<String>,
    /// The operations listener: `/metrics`, `/health/live`, `/health/ready`.
    pub ops_listen: SocketAddr,
    /// Base64 of 32 bytes. Unset means a key generated once into `<data_dir>/master.key` (mode 0600).
    pub master_key: Option<String>,
    /// Lifetime of access tokens in seconds (60 to 86400).
    pub access_token_ttl_secs: i64,
    /// Lifetime of authorization codes in seconds (1 to 600): as long as a redirect takes.
    pub authorization_code_ttl_secs: i64,
    /// A refresh token unused for this many seconds is dead; each rotation starts the count anew.
    pub refresh_token_idle_secs: i64,
    /// No refresh token of a grant outlives this many seconds after the user's consent.
    pub grant_lifetime_secs: i64,
    /// A refresh retried within this many seconds of its rotation gets the same answer (0 to 60; 0 is off).
    pub refresh_grace_secs: i64,
    /// How long a browser stays signed in after a login, in seconds.
    pub session_lifetime_secs: i64,
    /// Comma-separated addresses or CIDR networks of the proxies in front of the server, whose
    /// `X-Forwarded-For` names the client (the login throttle keys on it). Unset trusts no header.
    pub trusted_proxies: Option<String>,
    /// Permit an `http` public URL on a non-loopback host (never in production: RFC 6749 §10.9).
    pub allow_insecure_http: bool,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `rsp=debug,info`.
    pub log_level: String,
    pub role: Role,
    /// Share of token introspections recorded in the audit trail (0 to 1; they are frequent).
    pub audit_introspection_sample_rate: f64,
    /// Share of denied decisions of the decision API recorded in the audit trail (0 to 1).
    pub audit_denied_decision_sample_rate: f64,
    /// `postgres://…` selects PostgreSQL; unset means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Comma-separated PostgreSQL read replicas for reads that may be slightly stale.
    pub database_replica_urls: Option<String>,
    /// The PostgreSQL schema the platform's tables live in (created when missing); unset means the server's
    /// default (`public`). Lets deployments share one database.
    pub database_schema: Option<String>,
    pub database_max_connections: u32,
    /// How long a request waits for a free database connection before failing.
    pub database_acquire_timeout_secs: u64,
    /// `redis://…` enables the shared L2 cache, cross-replica invalidation and the Redis Streams bus;
    /// unset means an in-process cache and the database-backed bus.
    pub redis_url: Option<String>,
    /// First part of every Redis key, stream and channel the platform uses, so deployments share one Redis.
    pub redis_prefix: String,
    /// With `role = "auth"`: the base URL of the policy service (e.g. `http://rsp-policy:8080`).
    pub policy_url: Option<String>,
    /// Remember decisions by (tenant, policy version, entity version, request); never stale, since a
    /// write changes a version. Off evaluates every request, e.g. to measure the engine itself.
    pub policy_decision_cache: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./rsp-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            master_key: None,
            access_token_ttl_secs: 600,
            authorization_code_ttl_secs: 60,
            refresh_token_idle_secs: 14 * 86_400,
            grant_lifetime_secs: 90 * 86_400,
            refresh_grace_secs: 10,
            session_lifetime_secs: 8 * 3600,
            trusted_proxies: None,
            allow_insecure_http: false,
            shutdown_grace_secs: 30,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            role: Role::All,
            audit_introspection_sample_rate: 0.1,
            audit_denied_decision_sample_rate: 1.0,
            database_url: None,
            database_replica_urls: None,
            database_schema: None,
            database_max_connections: 16,
            database_acquire_timeout_secs: 5,
            redis_url: None,
            redis_prefix: "rsp".into(),
            policy_url: None,
            policy_decision_cache: true,
        }
    }
}

const ENV_KEYS: [&str; 28] = [
    "authorization_code_ttl_secs",
    "refresh_token_idle_secs",
    "grant_lifetime_secs",
    "refresh_grace_secs",
    "session_lifetime_secs",
    "trusted_proxies",
    "policy_decision_cache",
    "role",
    "audit_introspection_sample_rate",
    "audit_denied_decision_sample_rate",
    "database_url",
    "database_replica_urls",
    "database_schema",
    "redis_prefix",
    "database_max_connections",
    "database_acquire_timeout_secs",
    "redis_url",
    "policy_url",
    "data_dir",
    "listen",
    "public_url",
    "ops_listen",
    "master_key",
    "access_token_ttl_secs",
    "allow_insecure_http",
    "shutdown_grace_secs",
    "log_format",
    "log_level",
];

/// Values given on the command line, which win over everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl Config {
    /// Loads and validates the layered configuration.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("RSP_").only(&ENV_KEYS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(60..=86_400).contains(&self.access_token_ttl_secs) {
            bail!("access_token_ttl_secs must be between 60 and 86400");
        }
        if !(60..=30 * 86_400).contains(&self.session_lifetime_secs) {
            bail!("session_lifetime_secs must be between 60 and 2592000 (30 days)");
        }
        if let Some(list) = &self.trusted_proxies {
            rsp_http::client_address::TrustedProxies::parse(list)?;
        }
        if let Some(url) = &self.public_url {
            validate_public_url(url, self.allow_insecure_http)?;
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            bail!("database_url must be a postgres:// URL (leave it unset for SQLite)");
        }
        if self.database_replica_urls.is_some() && self.database_url.is_none() {
            bail!("database_replica_urls needs database_url (replicas are PostgreSQL only)");
        }
        for (name, rate) in [
            ("audit_introspection_sample_rate", self.audit_introspection_sample_rate),
            ("audit_denied_decision_sample_rate", self.audit_denied_decision_sample_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                bail!("{name} must be between 0 and 1");
            }
        }
        if self.database_schema.is_some() && self.database_url.is_none() {
            bail!("database_schema needs database_url (schemas are PostgreSQL only)");
        }
        let prefix = &self.redis_prefix;
        if prefix.is_empty()
            || prefix.len() > 32
            || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            bail!("redis_prefix must be 1 to 32 ASCII letters, digits, '-', '_' or '.'");
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            bail!("database_max_connections must be between 1 and 1000");
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            bail!("redis_url must be a redis:// or rediss:// URL");
        }
        match (self.role, &self.policy_url) {
            (Role::Auth, None) => bail!("role auth needs policy_url, the policy service's base URL"),
            (_, Some(url)) => {
                url::Url::parse(url).with_context(|| format!("policy_url {url:?} is not a URL"))?;
            }
            _ => {}
        }
        if self.role != Role::All && self.database_url.is_none() {
            bail!("role {:?} runs beside other replicas, which need a shared database: set database_url", self.role);
        }
        Ok(())
    }

    /// The config as TOML with secrets replaced, for `rsp check-config`.
    pub fn redacted_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        if shown.master_key.is_some() {
            shown.master_key = Some("[redacted]".into());
        }
        shown.database_url = shown.database_url.as_deref().map(redact_url);
        shown.database_replica_urls = shown
            .database_replica_urls
            .as_deref()
            .map(|urls| urls.split(',').map(redact_url).collect::<Vec<_>>().join(","));
        shown.redis_url = shown.redis_url.as_deref().map(redact_url);
        toml_text(&shown)
    }
}

impl Config {
    /// The replica URLs, split and trimmed.
    pub fn replica_urls(&self) -> Vec<String> {
        self.database_replica_urls
            .as_deref()
            .map(|urls| urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// A connection URL with its password (and a user name that may be a token) replaced.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            parsed.to_string()
        }
        Err(_) => "[redacted: not a URL]".into(),
    }
}

fn toml_text(config: &Config) -> anyhow::Result<String> {
    let value = serde_json::to_value(config)?;
    let mut out = String::new();
    if let Some(object) = value.as_object() {
        for (key, value) in object {
            if !value.is_null() {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
    }
    Ok(out)
}

/// The public URL is the issuer's base: an absolute http(s) URL without query, fragment or credentials.
/// Plain http is accepted only for loopback hosts (local development) unless explicitly allowed.
pub fn validate_public_url(url: &str, allow_insecure_http: bool) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("public_url {url:?} is not a URL"))?;
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        bail!("public_url must not have a query, fragment or credentials");
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(host)) => host == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback || allow_insecure_http {
                Ok(())
            } else {
                bail!("public_url must use https outside local development (set allow_insecure_http to override)")
            }
        }
        _ => bail!("public_url must be an http or https URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_issuers_are_refused_unless_loopback() {
        assert!(validate_public_url("https://id.example.com", false).is_ok());
        assert!(validate_public_url("http://127.0.0.1:8080", false).is_ok());
        assert!(validate_public_url("http://localhost:8080", false).is_ok());
        assert!(validate_public_url("http://id.example.com", false).is_err());
        assert!(validate_public_url("http://id.example.com", true).is_ok());
        assert!(validate_public_url("https://id.example.com/?a=b", false).is_err());
        assert!(validate_public_url("ftp://id.example.com", false).is_err());
    }

    #[test]
    fn redaction_hides_the_master_key() {
        let config = Config { master_key: Some("super-secret-key".into()), ..Config::default() };
        let text = config.redacted_toml().unwrap();
        assert!(!text.contains("super-secret-key"));
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn redaction_hides_database_and_redis_passwords() {
        let config = Config {
            database_url: Some("postgres://rsp:pg-secret@db:5432/rsp".into()),
            database_replica_urls: Some("postgres://rsp:replica-secret@r1/rsp, postgres://r2/rsp".into()),
            redis_url: Some("redis://:redis-secret@cache:6379".into()),
            ..Config::default()
        };
        let text = config.redacted_toml().unwrap();
        for secret in ["pg-secret", "replica-secret", "redis-secret"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("postgres://rsp:redacted@db:5432/rsp"));
        assert_eq!(config.replica_urls().len(), 2);
    }

    #[test]
    fn the_decision_cache_is_on_unless_switched_off() {
        assert!(Config::default().policy_decision_cache);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rsp.toml");
        std::fs::write(&file, "policy_decision_cache = false\n").unwrap();
        assert!(!Config::load(Some(&file), &Overrides::default()).unwrap().policy_decision_cache);
    }

    #[test]
    fn lifetimes_and_proxies_are_checked_at_start() {
        assert!(Config { session_lifetime_secs: 30, ..Config::default() }.validate().is_err());
        assert!(
            Config { trusted_proxies: Some("10.0.0.0/8, ingress".into()), ..Config::default() }.validate().is_err()
        );
        assert!(Config { trusted_proxies: Some("10.0.0.0/8, ::1".into()), ..Config::default() }.validate().is_ok());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rsp.toml");
        std::fs::write(&file, "authorization_code_ttl_secs = 30\nrefresh_grace_secs = 0\n").unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!((config.authorization_code_ttl_secs, config.refresh_grace_secs), (30, 0));
    }

    #[test]
    fn roles_apart_need_what_they_share() {
        let auth_without_policy =
            Config { role: Role::Auth, database_url: Some("postgres://db/rsp".into()), ..Config::default() };
        assert!(auth_without_policy.validate().is_err());
        let policy_on_sqlite = Config { role: Role::Policy, ..Config::default() };
        assert!(policy_on_sqlite.validate().is_err());
        let auth = Config { policy_url: Some("http://rsp-policy:8080".into()), ..auth_without_policy };
        assert!(auth.validate().is_ok());
        let bad_db = Config { database_url: Some("mysql://db".into()), ..Config::default() };
        assert!(bad_db.validate().is_err());
    }
}
