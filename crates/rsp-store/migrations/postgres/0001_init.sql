-- One schema for every engine: tenants own everything; deleting a tenant deletes what it owns.
-- The PostgreSQL twin of sqlite/0001_init.sql: same tables, columns, constraints and indexes. Times are
-- BIGINT Unix seconds, as in SQLite, so both engines decode into the same records.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    signing_alg TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
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
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE signing_keys (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kid                TEXT NOT NULL,
    alg                TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at         BIGINT NOT NULL,
    retired_at         BIGINT,
    publish_until      BIGINT,
    max_token_ttl_secs BIGINT NOT NULL,
    public_jwk         TEXT NOT NULL,
    sealed_private_key BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, kid)
);

-- At most one signing key per tenant is active.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE status = 'active';

CREATE TABLE revoked_tokens (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);

CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
