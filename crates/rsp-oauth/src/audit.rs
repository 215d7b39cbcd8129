//! Reading the audit trail. Records are written by the audit consumer of the event bus; this is the
//! admin API's view of them.

use rsp_core::TenantId;
use rsp_core::ports::{AuditQuery, AuditRecord};

use crate::{AdminError, AuthService};

/// The largest page the admin API returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

impl AuthService {
    /// A page of `tenant`'s audit trail. Tenant lifecycle events (created, updated, deleted) belong to
    /// the default tenant, whose administrators perform them, so they stay readable after a deletion.
    pub async fn audit_page(&self, tenant: &str, query: &AuditQuery) -> Result<Vec<AuditRecord>, AdminError> {
        let tenant = TenantId::parse(tenant).map_err(|_| AdminError::NotFound("tenant"))?;
        if self.store.get_tenant(&tenant).await?.is_none() {
            return Err(AdminError::NotFound("tenant"));
        }
        if !(1..=MAX_AUDIT_PAGE).contains(&query.limit) {
            return Err(AdminError::Invalid(format!("limit must be between 1 and {MAX_AUDIT_PAGE}")));
        }
        Ok(self.store.query_audit(&tenant, query).await?)
    }
}
