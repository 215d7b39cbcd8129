//! Issuer identifiers and endpoint URLs. Every URL the server emits for a tenant is built here, so the
//! `issuer` in metadata, the `iss` in tokens and the endpoint URLs can never drift apart (RFC 8414 §3.3).

use rsp_core::TenantId;

/// The platform's public base URL (no trailing slash), from which each tenant's issuer derives.
#[derive(Debug, Clone)]
pub struct Issuers {
    base: String,
}

impl Issuers {
    /// `base` must already be validated (absolute http(s) URL, no query or fragment).
    pub fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<public-url>/t/<tenant>`.
    pub fn issuer(&self, tenant: &TenantId) -> String {
        format!("{}/t/{}", self.base, tenant)
    }

    /// Whether `iss` is `tenant`'s issuer, without building it (checked on every cached bearer token).
    pub fn is_issuer(&self, tenant: &TenantId, iss: &str) -> bool {
        iss.strip_prefix(self.base.as_str()).and_then(|rest| rest.strip_prefix("/t/")) == Some(tenant.as_str())
    }

    pub fn endpoint(&self, tenant: &TenantId, path: &str) -> String {
        format!("{}/t/{}{}", self.base, tenant, path)
    }

    /// The audience of tokens for a tenant's policy decision API (`/t/<tenant>/v1/authorize…`).
    pub fn decision_audience(&self, tenant: &TenantId) -> String {
        format!("{}/v1", self.issuer(tenant))
    }

    /// The audience of admin-API tokens: a resource of its own, so a token for an application's API can
    /// never act on the admin API and the reverse.
    pub fn admin_audience(&self) -> String {
        format!("{}/admin", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_is_recognised_only_as_its_own_tenants() {
        let issuers = Issuers::new("https://id.example/");
        let (acme, ac) = (TenantId::parse("acme").unwrap(), TenantId::parse("ac").unwrap());
        assert!(issuers.is_issuer(&acme, &issuers.issuer(&acme)));
        assert!(!issuers.is_issuer(&ac, &issuers.issuer(&acme)), "a prefix of the tenant id is another tenant");
        assert!(!issuers.is_issuer(&acme, "https://id.example/t/acme/"));
        assert!(!issuers.is_issuer(&acme, "https://other.example/t/acme"));
    }
}
