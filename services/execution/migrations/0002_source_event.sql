-- The task event that created each execution, kept so that a job that fails for good can be
-- dead-lettered as that event and replayed from the dead-letter stream.
ALTER TABLE executions
    ADD COLUMN source_subject    TEXT  NOT NULL DEFAULT '',
    ADD COLUMN source_event_type TEXT  NOT NULL DEFAULT '',
    ADD COLUMN source_event_id   TEXT  NOT NULL DEFAULT '',
    ADD COLUMN source_payload    BYTEA NOT NULL DEFAULT '\x';
