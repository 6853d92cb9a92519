-- Write model: the append-only event store. A task is the fold of its events; (task_id, version)
-- is unique, so of two writers that read the same version only one can append the next.
CREATE TABLE task_events (
    task_id     UUID        NOT NULL,
    version     BIGINT      NOT NULL,
    event_id    UUID        NOT NULL UNIQUE,
    event_type  TEXT        NOT NULL,
    payload     BYTEA       NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (task_id, version)
);

-- Write-model bookkeeping kept in the same transaction as each append: the current version (the
-- optimistic-concurrency guard), the project, the board (for the per-board quota), deletion.
CREATE TABLE task_heads (
    task_id    UUID    PRIMARY KEY,
    project_id TEXT    NOT NULL,
    board      TEXT    NOT NULL,
    version    BIGINT  NOT NULL,
    deleted    BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX task_heads_board ON task_heads (board) WHERE NOT deleted;

-- Idempotent creates.
CREATE TABLE request_ids (
    method      TEXT        NOT NULL,
    request_id  UUID        NOT NULL,
    resource    TEXT        NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (method, request_id)
);

-- Read model, filled by the projector from the TASKS stream. `task` is the encoded Task message;
-- the other columns exist for filtering and ordering. `version` is the last event applied.
CREATE TABLE task_view (
    task_id       UUID        PRIMARY KEY,
    project_id    TEXT        NOT NULL,
    version       BIGINT      NOT NULL,
    task          BYTEA       NOT NULL,
    title         TEXT        NOT NULL,
    column_name   TEXT        NOT NULL,
    status        SMALLINT    NOT NULL,
    priority      SMALLINT    NOT NULL,
    assignee      TEXT        NOT NULL,
    labels        TEXT[]      NOT NULL,
    due_time      TIMESTAMPTZ,
    position      INTEGER     NOT NULL,
    create_time   TIMESTAMPTZ NOT NULL,
    update_time   TIMESTAMPTZ NOT NULL,
    complete_time TIMESTAMPTZ,
    delete_time   TIMESTAMPTZ
);
CREATE INDEX task_view_project ON task_view (project_id, create_time);

CREATE TABLE task_activity (
    task_id    UUID        NOT NULL,
    version    BIGINT      NOT NULL,
    event_type TEXT        NOT NULL,
    summary    TEXT        NOT NULL,
    actor      TEXT        NOT NULL,
    time       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (task_id, version)
);
