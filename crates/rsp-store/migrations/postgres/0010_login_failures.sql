-- The login throttle's failure counters, shared by every replica (see rsp-oauth's users/throttle.rs).
-- `throttle_key` names the counter within the tenant: an account, a source address, or the pair.
CREATE TABLE login_failures (
    tenant_id       TEXT NOT NULL,
    throttle_key    TEXT NOT NULL,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, throttle_key)
);

CREATE INDEX login_failures_last ON login_failures (last_failure_at);
