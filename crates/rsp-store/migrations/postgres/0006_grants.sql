-- The PostgreSQL twin of sqlite/0006_grants.sql. The authorization code flow: clients' redirect URIs,
-- grants with their codes, access-token records and rotating refresh tokens, and remembered consents.
-- Codes and refresh tokens are stored only as keyed hashes. Lists are JSON arrays, scopes space-separated
-- text, times Unix seconds.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';

-- One authorization a user gave a client; revoking it revokes everything issued from it.
CREATE TABLE grants (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    subject        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    audience       TEXT NOT NULL,
    nonce          TEXT,
    auth_time      BIGINT NOT NULL,
    amr            TEXT NOT NULL,
    acr            TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    last_issued_at BIGINT,
    revoked_at     BIGINT,
    PRIMARY KEY (tenant_id, grant_id)
);

CREATE INDEX grants_expiry ON grants (expires_at);

CREATE TABLE authorization_codes (
    tenant_id      TEXT NOT NULL,
    code_hash      TEXT NOT NULL,
    grant_id       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT,
    PRIMARY KEY (tenant_id, code_hash),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants(tenant_id, grant_id) ON DELETE CASCADE
);

-- The access tokens each grant issued, so revoking the grant can revoke them by jti.
CREATE TABLE grant_access_tokens (
    tenant_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants(tenant_id, grant_id) ON DELETE CASCADE
);

CREATE INDEX grant_access_tokens_grant ON grant_access_tokens (tenant_id, grant_id);

CREATE TABLE refresh_tokens (
    tenant_id      TEXT NOT NULL,
    token_hash     TEXT NOT NULL,
    grant_id       TEXT NOT NULL,
    generation     BIGINT NOT NULL,
    parent_hash    TEXT,
    status         TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked')),
    scope          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    rotated_at     BIGINT,
    -- The response the rotation of this token produced, sealed under a master-key-derived key, answered
    -- again to a retry within the grace window.
    grace_response BYTEA,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants(tenant_id, grant_id) ON DELETE CASCADE
);

CREATE INDEX refresh_tokens_grant ON refresh_tokens (tenant_id, grant_id);
CREATE INDEX refresh_tokens_parent ON refresh_tokens (tenant_id, parent_hash);

CREATE TABLE consents (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subject, client_id)
);
