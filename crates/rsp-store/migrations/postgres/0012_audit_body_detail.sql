-- An audit row's body keeps only what has no column of its own: the priority and the kind's data (absent
-- when the event has none). Bodies written before held the whole event, repeating every column; this
-- rewrites them in place. Running it on a body already in the new form leaves it unchanged.
UPDATE audit_events
SET body = CASE
    WHEN body::jsonb -> 'data' IS NULL OR jsonb_typeof(body::jsonb -> 'data') = 'null'
        THEN jsonb_build_object('priority', body::jsonb ->> 'priority')::text
    ELSE jsonb_build_object('priority', body::jsonb ->> 'priority', 'data', body::jsonb -> 'data')::text
END;
