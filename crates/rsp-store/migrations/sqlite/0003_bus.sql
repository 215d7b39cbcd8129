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

-- Consumer groups, with Redis Streams' semantics. Each group holds one `bus_deliveries` row per event it
-- has not acknowledged: the insert trigger below adds one for every group as the event is stored, so the
-- row exists exactly when the event does, and a group created later starts with a row for every retained
-- event. A row is in one of three states:
--   new      attempt = 0, no consumer;
--   pending  with a consumer, which received it at `at_ms` (its idle time, for reclaiming);
--   waiting  no consumer, attempt > 0: a retry due at `at_ms`.
-- Acknowledging deletes the row; dead-lettering moves the event to `bus_dead_letters`.
CREATE TABLE bus_groups (
    group_name    TEXT    PRIMARY KEY,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE bus_deliveries (
    group_name TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    priority   INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 4),
    consumer   TEXT,
    attempt    INTEGER NOT NULL DEFAULT 0,
    at_ms      INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (group_name, seq)
);

-- One index per state, ordered the way `receive` takes rows: higher priority first, then stream order
-- (new) or time (pending, waiting). A receive reads only the rows it returns.
CREATE INDEX bus_deliveries_new ON bus_deliveries (group_name, priority, seq) WHERE attempt = 0;
CREATE INDEX bus_deliveries_pending ON bus_deliveries (group_name, priority, at_ms) WHERE consumer IS NOT NULL;
CREATE INDEX bus_deliveries_waiting ON bus_deliveries (group_name, priority, at_ms)
    WHERE consumer IS NULL AND attempt > 0;
-- Trimming asks "does any group still hold this event?".
CREATE INDEX bus_deliveries_seq ON bus_deliveries (seq);
CREATE INDEX bus_events_occurred ON bus_events (occurred_at_ms);

-- Fan-out: an event stored by `publish` or by a store transaction (the outbox) is new to every group.
-- SQLite has one writer, so a group is created and filled either wholly before or wholly after any insert.
CREATE TRIGGER bus_events_fan_out AFTER INSERT ON bus_events
BEGIN
    INSERT INTO bus_deliveries (group_name, seq, priority) SELECT group_name, NEW.seq, NEW.priority FROM bus_groups;
END;

-- Events a group gave up on, with a copy of the event so trimming `bus_events` never loses one.
CREATE TABLE bus_dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT    NOT NULL,
    dead_at_ms INTEGER NOT NULL
);

CREATE INDEX bus_dead_letters_group ON bus_dead_letters (group_name, id);

-- De-duplication by event id: a claim (handled = 0) lapses at `until_ms`; a handled mark is kept until
-- `until_ms` (a day after completion), then trimmed.
CREATE TABLE bus_handled (
    group_name TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    handled    INTEGER NOT NULL CHECK (handled IN (0, 1)),
    until_ms   INTEGER NOT NULL,
    PRIMARY KEY (group_name, event_id)
);

CREATE INDEX bus_handled_until ON bus_handled (until_ms);
