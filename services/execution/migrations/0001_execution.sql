-- Executions of task jobs. A worker owns a running execution through a lease (owner + expiry)
-- that it renews while it works; an expired lease lets another worker take over, so no
-- execution runs forever and none runs twice at once.
CREATE TABLE executions (
    id               UUID        PRIMARY KEY,
    name             TEXT        NOT NULL UNIQUE,
    project_id       TEXT        NOT NULL,
    task             TEXT        NOT NULL,
    task_id          UUID        NOT NULL,
    task_version     BIGINT      NOT NULL,
    job              BYTEA       NOT NULL,
    state            SMALLINT    NOT NULL,
    progress_percent INTEGER     NOT NULL DEFAULT 0,
    progress_message TEXT        NOT NULL DEFAULT '',
    result           BYTEA,
    error            TEXT        NOT NULL DEFAULT '',
    attempts_made    INTEGER     NOT NULL DEFAULT 0,
    budget_start     INTEGER     NOT NULL DEFAULT 0,
    max_attempts     INTEGER     NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    create_time      TIMESTAMPTZ NOT NULL,
    start_time       TIMESTAMPTZ,
    end_time         TIMESTAMPTZ,
    update_time      TIMESTAMPTZ NOT NULL,
    version          BIGINT      NOT NULL DEFAULT 1,
    -- One execution per task version that set a job: redelivered events create nothing new.
    UNIQUE (task_id, task_version)
);
CREATE INDEX executions_due ON executions (next_attempt_at) WHERE state = 1;
CREATE INDEX executions_leased ON executions (lease_until) WHERE state = 2;
CREATE INDEX executions_task ON executions (task_id, create_time DESC);

CREATE TABLE attempts (
    execution_id UUID        NOT NULL REFERENCES executions (id),
    number       INTEGER     NOT NULL,
    worker       TEXT        NOT NULL,
    start_time   TIMESTAMPTZ NOT NULL,
    end_time     TIMESTAMPTZ,
    error        TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (execution_id, number)
);
