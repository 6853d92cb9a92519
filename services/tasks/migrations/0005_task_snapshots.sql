-- Each task's state after its latest append, kept with the head in the same transaction: loading a
-- task (GetTask, every command) reads one row instead of folding all its events. Rows from before
-- have none (snapshot_version 0) and are folded from their events as before.
ALTER TABLE task_heads
    ADD COLUMN snapshot BYTEA,
    ADD COLUMN snapshot_version BIGINT NOT NULL DEFAULT 0;
