-- The event bus of the embedded deployment, which is also the transactional outbox: a state change and
-- the events describing it are written in one transaction.
CREATE TABLE bus_events (
    seq            BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       TEXT     NOT NULL UNIQUE,
    tenant_id      TEXT     NOT NULL,
    kind           TEXT     NOT NULL,
    priority       SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 4),
    occurred_at_ms BIGINT   NOT NULL,
    body           TEXT     NOT NULL
);

-- Consumer groups, with Redis Streams' semantics. Each group holds one `bus_deliveries` row per event it
-- has not acknowledged: the insert trigger below adds one for every group in the inserting transaction,
-- so the row becomes visible exactly when the event does. (A cursor over `seq` would not do here: identity
-- values are taken at insert and become visible at commit, so a reader could pass an event that commits
-- later.) A group created later starts with a row for every retained event. A row is in one of three states:
--   new      attempt = 0, no consumer;
--   pending  with a consumer, which received it at `at_ms` (its idle time, for reclaiming);
--   waiting  no consumer, attempt > 0: a retry due at `at_ms`.
-- Acknowledging deletes the row; dead-lettering moves the event to `bus_dead_letters`.
CREATE TABLE bus_groups (
    group_name    TEXT   PRIMARY KEY,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE bus_deliveries (
    group_name TEXT     NOT NULL,
    seq        BIGINT   NOT NULL,
    priority   SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 4),
    consumer   TEXT,
    attempt    BIGINT   NOT NULL DEFAULT 0,
    at_ms      BIGINT   NOT NULL DEFAULT 0,
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

-- Fan-out: an event stored by `publish` or by a store transaction (the outbox) is new to every group. A
-- group being created holds a SHARE lock on `bus_events` while it fills itself, so every insert lands
-- either wholly before (the fill copies it) or wholly after (this trigger sees the group). The search path
-- is fixed at creation, so the trigger finds this schema's tables whatever the inserting session's path.
CREATE FUNCTION bus_fan_out() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO bus_deliveries (group_name, seq, priority)
    SELECT g.group_name, i.seq, i.priority FROM inserted i CROSS JOIN bus_groups g
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER bus_events_fan_out AFTER INSERT ON bus_events
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION bus_fan_out();

-- Events a group gave up on, with a copy of the event so trimming `bus_events` never loses one.
CREATE TABLE bus_dead_letters (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_name TEXT   NOT NULL,
    event_id   TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    attempts   BIGINT NOT NULL,
    error      TEXT   NOT NULL,
    dead_at_ms BIGINT NOT NULL
);

CREATE INDEX bus_dead_letters_group ON bus_dead_letters (group_name, id);

-- De-duplication by event id: a claim (handled = false) lapses at `until_ms`; a handled mark is kept until
-- `until_ms` (a day after completion), then trimmed.
CREATE TABLE bus_handled (
    group_name TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    handled    BOOLEAN NOT NULL,
    until_ms   BIGINT  NOT NULL,
    PRIMARY KEY (group_name, event_id)
);

CREATE INDEX bus_handled_until ON bus_handled (until_ms);
