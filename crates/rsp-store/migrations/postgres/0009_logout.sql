-- The PostgreSQL twin of sqlite/0009_logout.sql: where each client may send users after logout (a JSON
-- array, like redirect_uris), and an index to revoke every grant of one user when the password changes.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

CREATE INDEX grants_subject ON grants (tenant_id, subject);
