//! Column encodings shared by the adapters: lists are stored as JSON arrays or space-separated text,
//! enums by their protocol names. A value that does not decode is reported, never guessed.

use rsp_core::{ClientKind, GrantType, KeyStatus, SigningAlgorithm, StoreError};

pub fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("stored {what} does not decode"))
}

pub fn kind_to_text(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::Confidential => "confidential",
        ClientKind::Public => "public",
    }
}

pub fn kind_from_text(text: &str) -> Result<ClientKind, StoreError> {
    match text {
        "confidential" => Ok(ClientKind::Confidential),
        "public" => Ok(ClientKind::Public),
        _ => Err(corrupt("client kind")),
    }
}

pub fn grants_to_text(grants: &[GrantType]) -> String {
    grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn grants_from_text(text: &str) -> Result<Vec<GrantType>, StoreError> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant type")))
        .collect()
}

pub fn list_to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

pub fn list_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| corrupt("list"))
}

pub fn alg_from_text(text: &str) -> Result<SigningAlgorithm, StoreError> {
    SigningAlgorithm::parse(text).ok_or_else(|| corrupt("signing algorithm"))
}

pub fn status_from_text(text: &str) -> Result<KeyStatus, StoreError> {
    match text {
        "active" => Ok(KeyStatus::Active),
        "retired" => Ok(KeyStatus::Retired),
        _ => Err(corrupt("key status")),
    }
}
