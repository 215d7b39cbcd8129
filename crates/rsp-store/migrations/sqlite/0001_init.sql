-- One schema for every engine: tenants own everything; deleting a tenant deletes what it owns.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    signing_alg TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE clients (
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    client_id            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    secret_hash          TEXT,
    grant_types          TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    audiences            TEXT NOT NULL,
    introspect_audiences TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE signing_keys (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kid                TEXT NOT NULL,
    alg                TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER,
    publish_until      INTEGER,
    max_token_ttl_secs INTEGER NOT NULL,
    public_jwk         TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    PRIMARY KEY (tenant_id, kid)
);

-- At most one signing key per tenant is active.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE status = 'active';

CREATE TABLE revoked_tokens (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);

CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
