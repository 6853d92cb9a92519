-- An append is one statement (taskmesh_tasks::store::event_store): the board's count row carries
-- the quota it was last raised against, so that a task over the quota is refused by this CHECK
-- inside that statement rather than by a read and a write under a transaction. Landing on a board
-- sets its quota; leaving one lifts it, so that taking a task off a board never fails.
ALTER TABLE board_live_tasks ADD COLUMN quota BIGINT NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE board_live_tasks
    ADD CONSTRAINT board_live_tasks_within_quota CHECK (live <= quota);
