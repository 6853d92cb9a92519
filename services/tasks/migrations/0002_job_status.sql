-- The latest execution of each task's job, fed by the EXECUTION stream. Kept apart from the read
-- model tables so that a read-model rebuild (which replays TASKS only) does not lose it.
CREATE TABLE task_job_status (
    task_id     UUID        PRIMARY KEY,
    status      BYTEA       NOT NULL,
    update_time TIMESTAMPTZ NOT NULL
);
