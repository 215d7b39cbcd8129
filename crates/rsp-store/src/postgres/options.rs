//! How to reach PostgreSQL: URLs, pool sizes, timeouts and the schema, parsed into driver options once.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rsp_core::StoreError;
use sqlx::postgres::PgConnectOptions;

/// Connection settings of a [`super::PostgresStore`].
#[derive(Clone)]
pub struct PostgresOptions {
    /// The primary, which takes every write and the reads that must not be stale.
    pub url: String,
    /// Read replicas for reads that may lag (see [`super::PostgresStore`]); empty means "primary only".
    pub replica_urls: Vec<String>,
    /// Upper bound of each pool (the primary's and every replica's).
    pub max_connections: u32,
    /// Connections each pool keeps open while idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// Server-side limit on one statement, so a stuck query cannot hold a connection forever.
    pub statement_timeout: Duration,
    /// The schema every connection works in (`search_path`), created by the migrations when missing.
    /// `None` keeps the server's default (`public`). A URL that sets its own `search_path` (in its
    /// `options`) keeps it.
    pub schema: Option<String>,
    /// Whether [`super::PostgresStore::connect`] applies pending migrations.
    pub run_migrations: bool,
}

impl PostgresOptions {
    /// Options for `url` with the defaults: no replicas, 16 connections, 5 s to acquire, 30 s per
    /// statement, the default schema, migrations on connect.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            replica_urls: Vec::new(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            schema: None,
            run_migrations: true,
        }
    }

    /// Driver options for `url` with this store's session settings.
    pub(super) fn connect_options(&self, url: &str) -> Result<PgConnectOptions, PostgresError> {
        // The driver takes any scheme; a URL meant for another engine is a configuration mistake.
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PostgresError::Url("the scheme must be postgres:// or postgresql://".into()));
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| PostgresError::Url(e.to_string()))?;
        let millis = self.statement_timeout.as_millis();
        let mut options = options.options([("statement_timeout", format!("{millis}ms"))]);
        let url_sets_path = options.get_options().is_some_and(|o| o.contains("search_path="));
        if let (Some(schema), false) = (self.schema.as_deref(), url_sets_path) {
            options = options.options([("search_path", quoted_schema(schema)?)]);
        }
        Ok(options)
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact(&self.url))
            .field("replica_urls", &self.replica_urls.iter().map(|u| redact(u)).collect::<Vec<_>>())
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("schema", &self.schema)
            .field("run_migrations", &self.run_migrations)
            .finish()
    }
}

/// Why a [`super::PostgresStore`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("invalid database url: {0}")]
    Url(String),
    #[error("invalid schema name {0:?}: use 1 to 63 ASCII letters, digits or underscores, not starting with a digit")]
    Schema(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<PostgresError> for StoreError {
    fn from(error: PostgresError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// The schema as a quoted SQL identifier, after checking it is a plain one: the name reaches SQL text
/// (`CREATE SCHEMA`, `search_path`), so nothing that could need escaping is accepted.
pub(super) fn quoted_schema(schema: &str) -> Result<String, PostgresError> {
    let mut chars = schema.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && schema.len() <= 63;
    if plain { Ok(format!("\"{schema}\"")) } else { Err(PostgresError::Schema(schema.to_owned())) }
}

/// The URL with its password (in the authority or a `password` parameter) replaced, for logs and `Debug`.
/// A URL that does not parse is not shown at all, since where its password sits is unknown.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable url>".to_owned();
    };
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have a password, and this one has one.
        let _ = parsed.set_password(Some("redacted"));
    }
    if parsed.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" { "redacted".to_owned() } else { value.into_owned() };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_passwords() {
        let mut options = PostgresOptions::new("postgres://app:s3cr3t@db:5432/rsp");
        options.replica_urls = vec!["postgres://app@replica/rsp?password=hunter2&sslmode=require".into()];
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:redacted@db:5432") && shown.contains("sslmode=require"), "{shown}");
        assert_eq!(redact("not a url s3cr3t"), "<unparsable url>");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert_eq!(quoted_schema("rsp_test_1").unwrap(), "\"rsp_test_1\"");
        for bad in ["", "1abc", "a-b", "a\"b", "a b", "x;drop", &"a".repeat(64)] {
            assert!(matches!(quoted_schema(bad), Err(PostgresError::Schema(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_url_that_sets_its_search_path_keeps_it() {
        let mut options = PostgresOptions::new("postgres://h/db");
        options.schema = Some("tenant_data".into());
        let own = options.connect_options("postgres://h/db?options[search_path]=replica_copy").unwrap();
        let own = own.get_options().unwrap_or_default().to_owned();
        assert!(own.contains("replica_copy") && !own.contains("tenant_data"), "{own}");
        let default = options.connect_options("postgres://h/db").unwrap();
        assert!(default.get_options().unwrap_or_default().contains("tenant_data"));
        for bad in ["mysql://h/db", "postgres://h:port/db", "h/db"] {
            assert!(matches!(options.connect_options(bad), Err(PostgresError::Url(_))), "{bad}");
        }
    }
}
