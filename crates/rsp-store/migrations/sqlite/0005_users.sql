-- End users of a tenant (the PostgreSQL twin is postgres/0005_users.sql). `username_folded` is the
-- case-folded name that makes two usernames the same; the login looks users up by it. The password is
-- stored only as an Argon2id PHC string; the TOTP secret (later) only sealed, as base64url text.
CREATE TABLE users (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id             TEXT NOT NULL,
    username            TEXT NOT NULL,
    username_folded     TEXT NOT NULL,
    password_hash       TEXT,
    totp_secret_sealed  TEXT,
    disabled_at         INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    password_changed_at INTEGER,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE UNIQUE INDEX users_username ON users (tenant_id, username_folded);
