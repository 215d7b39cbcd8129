//! Registered clients kept in memory for a short time, so authenticating a client on the token,
//! introspection and revocation endpoints does not read the database on every request.
//!
//! Changes made through this instance (update, secret rotation, deletion) drop the entry at once; a change
//! made by another replica is seen within `TTL_SECS`, the same bound as signing keys.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rsp_core::{Client, ClientId, TenantId, UnixTime};

const TTL_SECS: i64 = 30;
const CAPACITY: usize = 100_000;

/// A client and the instant its entry expires.
type Entry = (Arc<Client>, UnixTime);

#[derive(Debug, Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<(TenantId, ClientId), Entry>>,
}

impl ClientCache {
    pub fn get(&self, tenant: &TenantId, id: &ClientId, now: UnixTime) -> Option<Arc<Client>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(&(tenant.clone(), id.clone())).filter(|(_, until)| now < *until).map(|(client, _)| client.clone())
    }

    pub fn insert(&self, client: Arc<Client>, now: UnixTime) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        let key = (client.tenant_id.clone(), client.client_id.clone());
        entries.insert(key, (client, now.plus_secs(TTL_SECS)));
    }

    pub fn forget(&self, tenant: &TenantId, id: &ClientId) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(&(tenant.clone(), id.clone()));
    }

    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).retain(|(t, _), _| t != tenant);
    }
}
