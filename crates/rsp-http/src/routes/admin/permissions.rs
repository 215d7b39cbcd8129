//! The admin API's permissions as Cedar: every admin call is an action `Rsp::Action::"<name>"` by
//! `Rsp::Client::"<client id>"` on `Rsp::Tenant::"<tenant>"` (or `Rsp::Platform::"admin"` for the tenant
//! collection), decided by the default tenant's policies once they name that action.

use axum::http::Method;

/// The Cedar action name of an admin call, from its method and route template.
pub fn action_name(method: &Method, route: &str) -> Option<&'static str> {
    let suffix = route.strip_prefix("/admin/v1")?;
    let name = match (method.as_str(), suffix) {
        ("GET", "/tenants") => "tenant.list",
        ("POST", "/tenants") => "tenant.create",
        ("GET", "/tenants/{tenant}") => "tenant.read",
        ("PATCH", "/tenants/{tenant}") => "tenant.update",
        ("DELETE", "/tenants/{tenant}") => "tenant.delete",
        ("GET", "/tenants/{tenant}/clients") => "client.list",
        ("POST", "/tenants/{tenant}/clients") => "client.create",
        ("GET", "/tenants/{tenant}/clients/{client_id}") => "client.read",
        ("PATCH", "/tenants/{tenant}/clients/{client_id}") => "client.update",
        ("DELETE", "/tenants/{tenant}/clients/{client_id}") => "client.delete",
        ("POST", "/tenants/{tenant}/clients/{client_id}/secret") => "client.rotate_secret",
        ("GET", "/tenants/{tenant}/users" | "/tenants/{tenant}/users/{user_id}") => "user.read",
        ("POST", "/tenants/{tenant}/users" | "/tenants/{tenant}/users/{user_id}/password")
        | ("PATCH" | "DELETE", "/tenants/{tenant}/users/{user_id}")
        | ("DELETE", "/tenants/{tenant}/users/{user_id}/totp") => "user.write",
        ("GET", "/tenants/{tenant}/keys") => "key.list",
        ("POST", "/tenants/{tenant}/keys/rotate") => "key.rotate",
        ("GET", "/tenants/{tenant}/policies" | "/tenants/{tenant}/policies/versions") => "policy.read",
        ("PUT", "/tenants/{tenant}/policies") | ("POST", "/tenants/{tenant}/policies/rollback") => "policy.write",
        ("POST", "/tenants/{tenant}/policies/validate") => "policy.validate",
        ("GET", "/tenants/{tenant}/entities") => "entity.read",
        ("PUT" | "DELETE", "/tenants/{tenant}/entities") => "entity.write",
        ("GET", "/tenants/{tenant}/audit") => "audit.read",
        _ => return None,
    };
    Some(name)
}

/// Calls Cedar never governs, so an administrator can always repair the default tenant's policies
/// after writing ones that lock everybody out.
pub fn is_break_glass(action: &str, tenant: Option<&str>) -> bool {
    matches!(action, "policy.read" | "policy.write" | "policy.validate") && tenant == Some(rsp_core::TenantId::DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_admin_operation_has_a_cedar_action() {
        let doc: serde_json::Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys().filter(|m| *m != "parameters") {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                if path == "/admin/v1/openapi.json" {
                    continue;
                }
                assert!(action_name(&method, path).is_some(), "{method} {path} has no Cedar action");
            }
        }
    }
}
