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
    /// Permit an `http` public URL on a non-loopback host (never in production: RFC 6749 §10.9).
    pub allow_insecure_http: bool,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `rsp=debug,info`.
    pub log_level: String,
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
            allow_insecure_http: false,
            shutdown_grace_secs: 30,
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

const ENV_KEYS: [&str; 10] = [
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
        if let Some(url) = &self.public_url {
            validate_public_url(url, self.allow_insecure_http)?;
        }
        Ok(())
    }

    /// The config as TOML with secrets replaced, for `rsp check-config`.
    pub fn redacted_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        if shown.master_key.is_some() {
            shown.master_key = Some("[redacted]".into());
        }
        toml_text(&shown)
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
}
