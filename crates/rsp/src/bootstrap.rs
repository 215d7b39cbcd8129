//! First start: the data directory, the master key, the default tenant and the admin client.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rsp_core::{ClientKind, TenantId};
use rsp_oauth::AuthService;
use rsp_oauth::admin::{ClientSettings, NewTenant};
use rsp_oauth::audience::ADMIN_SCOPE;
use rsp_oauth::crypto::MasterKey;
use serde::{Deserialize, Serialize};

pub const ADMIN_CLIENT_FILE: &str = "admin-client.json";
const MASTER_KEY_FILE: &str = "master.key";

/// What `admin-client.json` holds: enough for the CLI (or curl) to get an admin token.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdminCredentials {
    pub issuer: String,
    pub token_endpoint: String,
    pub admin_api: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Creates `dir` (mode 0700 on Unix) if missing.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict permissions of {}", dir.display()))?;
    }
    Ok(())
}

/// Writes `contents` to `path` with mode 0600, atomically (temporary file, then rename).
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The master key from configuration, else from `<data_dir>/master.key`, generated on first start.
pub fn master_key(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<MasterKey> {
    if let Some(text) = configured {
        return MasterKey::parse(text).context("RSP_MASTER_KEY is invalid");
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return MasterKey::parse(&text).with_context(|| format!("{} is invalid", path.display()));
    }
    let key = MasterKey::generate();
    write_private_file(&path, key.to_text().as_bytes())?;
    tracing::info!(path = %path.display(), "generated a master key; back it up: without it, keys at rest cannot be opened");
    Ok(key)
}

/// Creates the default tenant and the admin client when they do not exist yet, and writes the admin
/// client's credentials to `admin-client.json`. Logs the path, never the secret.
pub async fn first_start(auth: &AuthService, data_dir: &Path) -> anyhow::Result<()> {
    let default = TenantId::default_tenant();
    if auth.store().get_tenant(&default).await?.is_none() {
        auth.create_tenant(NewTenant { id: TenantId::DEFAULT.into(), name: "Default".into(), signing_alg: None })
            .await?;
    }
    let path = data_dir.join(ADMIN_CLIENT_FILE);
    if path.exists() || !auth.store().list_clients(&default).await?.is_empty() {
        return Ok(());
    }
    let settings = ClientSettings {
        name: Some("rsp-admin".into()),
        kind: Some(ClientKind::Confidential),
        grant_types: Some(vec!["client_credentials".into()]),
        scope: Some(ADMIN_SCOPE.into()),
        ..ClientSettings::default()
    };
    let (client, secret) = auth.create_client(TenantId::DEFAULT, settings).await?;
    let secret = secret.context("the admin client has no secret")?;
    let issuers = auth.issuers();
    let credentials = AdminCredentials {
        issuer: issuers.issuer(&default),
        token_endpoint: issuers.endpoint(&default, "/oauth2/token"),
        admin_api: format!("{}/admin/v1", issuers.base()),
        client_id: client.client_id.to_string(),
        client_secret: secret.expose().to_owned(),
    };
    write_private_file(&path, serde_json::to_string_pretty(&credentials)?.as_bytes())?;
    tracing::info!(path = %path.display(), "created the admin client; its credentials are in this file");
    Ok(())
}
