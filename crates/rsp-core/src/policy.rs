//! Policy records as stored: Cedar text and JSON kept verbatim, so the engine (in `rsp-policy`) stays the
//! only code that interprets them.

use serde::{Deserialize, Serialize};

use crate::{TenantId, UnixTime};

/// The syntax a schema is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaFormat {
    Cedar,
    Json,
}

impl SchemaFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaFormat::Cedar => "cedar",
            SchemaFormat::Json => "json",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "cedar" => Some(SchemaFormat::Cedar),
            "json" => Some(SchemaFormat::Json),
            _ => None,
        }
    }
}

/// The content of one policy-set version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySetContent {
    /// All policies and templates as one Cedar text.
    pub policies: String,
    pub schema: Option<(SchemaFormat, String)>,
    /// Template links as a JSON array of `{template_id, new_id, values}`.
    pub template_links: String,
}

/// A stored, immutable policy-set version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySetVersion {
    pub tenant_id: TenantId,
    pub version: u64,
    pub content: PolicySetContent,
    pub created_at: UnixTime,
    /// Who wrote it (the admin client id).
    pub created_by: String,
}

/// A stored entity: its Cedar type and id, and its Cedar JSON (`{"uid", "attrs", "parents"}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntity {
    pub entity_type: String,
    pub entity_id: String,
    pub json: String,
}
