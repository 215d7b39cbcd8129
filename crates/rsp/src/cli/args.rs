//! Argument definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::loadtest::LoadtestArgs;

#[derive(Debug, Parser)]
#[command(name = "rsp", version, about = "Rust Security Platform: OAuth 2.0 / OpenID Connect and Cedar authorization")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform (with no configuration: SQLite under ./rsp-data, http://127.0.0.1:8080).
    Serve(ServeArgs),
    /// Validate the configuration and print the effective values, secrets redacted.
    CheckConfig(ServeArgs),
    /// Manage tenants through the admin API.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage OAuth clients through the admin API.
    #[command(subcommand)]
    Client(ClientCommand),
    /// List and rotate signing keys through the admin API.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage a tenant's Cedar policies through the admin API.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage a tenant's Cedar entities through the admin API.
    #[command(subcommand)]
    Entities(EntitiesCommand),
    /// Measure throughput and latency of the token, introspection and decision endpoints.
    Loadtest(LoadtestArgs),
    /// Apply pending database migrations and exit (safe to run from many replicas at once).
    Migrate(ServeArgs),
    /// Read a tenant's audit trail through the admin API.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage a tenant's end users through the admin API.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// A TOML config file; environment variables (RSP_*) and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [env: RSP_DATA_DIR] [default: ./rsp-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Public listener address [env: RSP_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Public URL; tenant issuers are <URL>/t/<tenant> [env: RSP_PUBLIC_URL]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Operations listener (metrics, health) [env: RSP_OPS_LISTEN] [default: 127.0.0.1:9090]
    #[arg(long, value_name = "ADDR")]
    pub ops_listen: Option<std::net::SocketAddr>,
    /// What this process runs [env: RSP_ROLE] [default: all]
    #[arg(long, value_enum)]
    pub role: Option<crate::config::Role>,
}

/// How the admin commands reach and authenticate to the server.
#[derive(Debug, Args, Clone)]
pub struct Connection {
    /// The server's public URL; defaults to the one recorded in admin-client.json.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// The credentials file written on first start.
    #[arg(long, global = true, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Data directory holding admin-client.json [env: RSP_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR", env = "RSP_DATA_DIR", default_value = "./rsp-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// ES256 (default), EdDSA or RS256.
        #[arg(long)]
        signing_alg: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one tenant.
    Get {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Change a tenant's name or signing algorithm (used from the next key rotation).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        signing_alg: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a tenant and everything it owns.
    Delete {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Args, Clone)]
pub struct ClientFields {
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Grant type (repeatable): client_credentials, authorization_code, refresh_token.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Redirect URI for the authorization code flow (repeatable), matched exactly.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards (repeatable), matched exactly.
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Space-separated scopes the client may be granted.
    #[arg(long)]
    pub scope: Option<String>,
    /// Resource indicator the client may request tokens for (repeatable); the first is its default.
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// Audience whose tokens the client may introspect as their resource server (repeatable).
    #[arg(long = "introspect-audience")]
    pub introspect_audiences: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its client_id and client_secret (shown only once).
    Create {
        #[arg(long)]
        tenant: String,
        /// confidential (default) or public.
        #[arg(long)]
        kind: Option<String>,
        #[command(flatten)]
        fields: ClientFields,
        #[command(flatten)]
        connection: Connection,
    },
    /// List a tenant's clients.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one client.
    Get {
        #[arg(long)]
        tenant: String,
        client_id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Change a client's registration; flags not given keep their values.
    Update {
        #[arg(long)]
        tenant: String,
        client_id: String,
        #[command(flatten)]
        fields: ClientFields,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a client.
    Delete {
        #[arg(long)]
        tenant: String,
        client_id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Replace a client's secret; prints the new one.
    RotateSecret {
        #[arg(long)]
        tenant: String,
        client_id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List a tenant's published signing keys.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Add a new signing key; the previous one stays published until its tokens expire.
    Rotate {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// A policy set on disk: Cedar policies and an optional schema.
#[derive(Debug, Args, Clone)]
pub struct PolicyFiles {
    /// A file of Cedar policies and templates.
    pub policies: PathBuf,
    /// A schema file: Cedar schema syntax, or JSON when the name ends in `.json`.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// A JSON file with template links: `[{"template_id", "new_id", "values": {"?principal": …}}]`.
    #[arg(long)]
    pub links: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace the tenant's policy set (validated first; nothing changes if it is invalid).
    Push {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        files: PolicyFiles,
        #[command(flatten)]
        connection: Connection,
    },
    /// Check a policy set against the server without storing it; prints every diagnostic.
    Validate {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        files: PolicyFiles,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show the live policy set.
    Get {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the stored versions of the policy set.
    Versions {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Make an earlier version live again (as a new version).
    Rollback {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        version: u64,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum EntitiesCommand {
    /// Upsert entities from a file in the Cedar JSON entity format.
    Push {
        #[arg(long)]
        tenant: String,
        /// A JSON array of `{"uid", "attrs", "parents"}` entities.
        file: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show the stored entities.
    Get {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete entities by uid, e.g. 'User::"alice"'.
    Delete {
        #[arg(long)]
        tenant: String,
        #[arg(required = true)]
        uids: Vec<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show a page of the trail, newest first.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        filter: AuditFilter,
        /// Records stored before this position (the `next_cursor` of the previous page).
        #[arg(long)]
        before: Option<u64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        connection: Connection,
    },
    /// Follow the trail live, one JSON record per line, oldest first.
    Tail {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        filter: AuditFilter,
        /// Start after this position instead of at the newest record.
        #[arg(long)]
        after: Option<u64>,
        /// Stop after printing this many records (default: follow until interrupted).
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an end user; prints it (never its password).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        /// Read the first password from the first line of standard input (never from the command line,
        /// where `ps` and shell history would show it). Without it the user cannot sign in yet.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List a tenant's users, a page at a time.
    List {
        #[arg(long)]
        tenant: String,
        /// The `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        connection: Connection,
    },
    /// Stop a user from signing in (the user and its id are kept).
    Disable {
        #[arg(long)]
        tenant: String,
        user_id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Let a disabled user sign in again.
    Enable {
        #[arg(long)]
        tenant: String,
        user_id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Remove a user's TOTP and recovery codes (a lost device); the next login needs the password only.
    ResetTotp {
        #[arg(long)]
        tenant: String,
        user_id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Set a user's password, read from the first line of standard input.
    SetPassword {
        #[arg(long)]
        tenant: String,
        user_id: String,
        /// Accepted for symmetry with `create`; the password is always read from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Filters shared by the audit commands; all given ones must match.
#[derive(Debug, Args, Clone, Default)]
pub struct AuditFilter {
    /// An event kind such as `token.revoked`.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub subject: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn check(command: &clap::Command, path: &str) {
        assert!(command.get_about().is_some(), "{path} has no help text");
        for sub in command.get_subcommands() {
            check(sub, &format!("{path} {}", sub.get_name()));
        }
    }

    #[test]
    fn every_subcommand_documents_itself() {
        Cli::command().debug_assert();
        check(&Cli::command(), "rsp");
    }
}
