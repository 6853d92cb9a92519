-- The kit's inbox: which events each consumer has handled (taskmesh_events::inbox), so a redelivered
-- or replayed event takes effect once.
CREATE TABLE IF NOT EXISTS mesh_inbox (
    consumer   TEXT        NOT NULL,
    event_id   TEXT        NOT NULL,
    handled_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
