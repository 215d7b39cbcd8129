-- TOTP second factor (RFC 6238). One enrolment per user: pending until its first code confirms it,
-- never used for login before. `last_used_step` only grows (compare-and-set), so a code is accepted once;
-- `failed_attempts` drives the per-account back-off on wrong codes. The secret is stored only sealed.
-- (`users.totp_secret_sealed` from 0005 predated this table; 0011 drops it.)
CREATE TABLE user_totp (
    tenant_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    secret_sealed   BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    last_used_step  BIGINT,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    last_failure_at BIGINT,
    -- The new recovery codes, sealed, until the page after the confirmation has shown them once.
    recovery_display_sealed BYTEA,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);

-- Single-use recovery codes, stored as keyed hashes; spending one deletes its row.
CREATE TABLE user_recovery_codes (
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);

-- A login whose password passed and whose second factor is due, keyed by a hash of the pre-session cookie.
CREATE TABLE mfa_challenges (
    tenant_id      TEXT NOT NULL,
    challenge_hash TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, challenge_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);

CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);
