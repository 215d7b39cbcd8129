-- The event bus of the embedded deployment, which is also the transactional outbox: a state change and
-- the events describing it are written in one transaction.
CREATE TABLE bus_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL UNIQUE,
    tenant_id      TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    priority       INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 4),
    occurred_at_ms INTEGER NOT NULL,
    body           TEXT    NOT NULL
);
