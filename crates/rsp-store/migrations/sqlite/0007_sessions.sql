-- The sign-in pages' state: browser sessions and authorization requests waiting for a login or consent.
-- Only keyed hashes of the cookie and id values are stored. Times are Unix seconds.
CREATE TABLE browser_sessions (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    session_hash TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    auth_time    INTEGER NOT NULL,
    amr          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, session_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);

CREATE INDEX browser_sessions_user ON browser_sessions (tenant_id, user_id);
CREATE INDEX browser_sessions_expiry ON browser_sessions (expires_at);

CREATE TABLE pending_authorizations (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    pending_hash TEXT NOT NULL,
    params       TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, pending_hash)
);

CREATE INDEX pending_authorizations_expiry ON pending_authorizations (expires_at);
