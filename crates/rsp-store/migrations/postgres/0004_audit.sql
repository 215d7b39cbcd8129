-- The audit trail: every event the audit consumer received, once (event_id is unique, the bus delivers at
-- least once). `seq` numbers records in the order they were stored, so a cursor stays valid while the
-- trail grows; appends take a lock on the table so that order is also the commit order, and a reader
-- following the trail with `After(seq)` never passes a record that commits later. No foreign key to
-- `tenants`: the trail outlives the tenant, including its deletion event.
CREATE TABLE audit_events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       TEXT   NOT NULL UNIQUE,
    tenant_id      TEXT   NOT NULL,
    kind           TEXT   NOT NULL,
    actor          TEXT   NOT NULL,
    subject        TEXT,
    occurred_at_ms BIGINT NOT NULL,
    request_id     TEXT,
    trace_id       TEXT,
    body           TEXT   NOT NULL
);

-- Pages of one tenant's trail, unfiltered or by one filter, in `seq` order.
CREATE INDEX audit_events_tenant_seq ON audit_events (tenant_id, seq);
CREATE INDEX audit_events_tenant_kind ON audit_events (tenant_id, kind, seq);
CREATE INDEX audit_events_tenant_actor ON audit_events (tenant_id, actor, seq);
CREATE INDEX audit_events_tenant_subject ON audit_events (tenant_id, subject, seq);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at_ms);
