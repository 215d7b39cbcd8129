-- Cedar policy sets: every write appends an immutable version; the newest version is the live one, so a
-- rollback appends a copy of an older version and version numbers never repeat (they key decision caches).
-- The PostgreSQL twin of sqlite/0002_policies.sql.
CREATE TABLE policy_sets (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version        BIGINT NOT NULL,
    policies       TEXT NOT NULL,
    schema_text    TEXT,
    schema_format  TEXT CHECK (schema_format IN ('cedar', 'json')),
    template_links TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- Cedar entities in the Cedar JSON entity format, one row each.
CREATE TABLE policy_entities (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, entity_type, entity_id)
);

-- The entity store's version per tenant, bumped by every entity write.
CREATE TABLE policy_entity_versions (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    version   BIGINT NOT NULL
);
