-- The kit's outbox: events written in the transaction of the state change they describe, published
-- by the relay (taskmesh_events::OutboxRelay). IF NOT EXISTS adopts the table that earlier versions
-- created at run time.
CREATE TABLE IF NOT EXISTS mesh_outbox (
    seq            BIGSERIAL PRIMARY KEY,
    event_id       UUID        NOT NULL UNIQUE,
    subject        TEXT        NOT NULL,
    event_type     TEXT        NOT NULL,
    resource       TEXT        NOT NULL,
    payload        BYTEA       NOT NULL,
    correlation_id TEXT        NOT NULL,
    traceparent    TEXT,
    tracestate     TEXT,
    occurred_at    TIMESTAMPTZ NOT NULL,
    published_at   TIMESTAMPTZ,
    attempts       INTEGER     NOT NULL DEFAULT 0,
    last_error     TEXT
);
CREATE INDEX IF NOT EXISTS mesh_outbox_pending ON mesh_outbox (seq) WHERE published_at IS NULL;
ALTER TABLE mesh_outbox ADD COLUMN IF NOT EXISTS extra_headers JSONB;
