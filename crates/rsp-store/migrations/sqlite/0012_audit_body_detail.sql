-- An audit row's body keeps only what has no column of its own: the priority and the kind's data (absent
-- when the event has none). Bodies written before held the whole event, repeating every column; this
-- rewrites them in place. Running it on a body already in the new form leaves it unchanged.
UPDATE audit_events
SET body = CASE
    WHEN body ->> '$.data' IS NULL
        THEN json_object('priority', body ->> '$.priority')
    ELSE json_object('priority', body ->> '$.priority', 'data', json(body -> '$.data'))
END;
