-- Schedules: a trigger and an action each, with the next occurrence to fire. The firing loop
-- claims due rows through `schedules_due` (FOR UPDATE SKIP LOCKED), so it never scans every
-- schedule and no two replicas fire the same occurrence.
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    display_name TEXT NOT NULL,
    -- Encoded taskmesh.scheduler.v1.Trigger, defaults filled in (an interval's start).
    trigger BYTEA NOT NULL,
    -- Encoded taskmesh.scheduler.v1.Action.
    action BYTEA NOT NULL,
    -- For a task template: its column, and the taskmesh.tasks.v1.Status the column's kind gives
    -- (kept current from the projects service's events).
    template_column TEXT NOT NULL DEFAULT '',
    task_status SMALLINT NOT NULL DEFAULT 0,
    misfire_policy SMALLINT NOT NULL,
    catch_up_window_ms BIGINT NOT NULL,
    -- taskmesh.scheduler.v1.State: 1 active, 2 paused, 3 completed.
    state SMALLINT NOT NULL,
    -- Kept while paused: on resume, what passed meanwhile follows the misfire policy.
    next_fire_time TIMESTAMPTZ,
    last_fire_time TIMESTAMPTZ,
    fire_count BIGINT NOT NULL DEFAULT 0,
    owner TEXT NOT NULL,
    pause_reason TEXT NOT NULL DEFAULT '',
    create_time TIMESTAMPTZ NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE INDEX schedules_due ON schedules (next_fire_time) WHERE state = 1;
CREATE INDEX schedules_of_project ON schedules (project, create_time, name);
CREATE INDEX schedules_of_column ON schedules (template_column) WHERE template_column <> '';

CREATE TABLE request_ids (
    method TEXT NOT NULL,
    caller TEXT NOT NULL,
    request_id UUID NOT NULL,
    resource TEXT NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (method, caller, request_id)
);
