-- Files attached to notes: a description row and the bytes in ordered chunks (bytea), so neither
-- an upload nor a download holds a whole file. Both go with their note when it is purged.

CREATE TABLE attachments (
    attachment_id UUID PRIMARY KEY,
    note_id TEXT NOT NULL REFERENCES notes ON DELETE CASCADE,
    -- The name as uploaded, without a path.
    filename TEXT NOT NULL,
    -- Sniffed from the bytes.
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    -- SHA-256 of the bytes, lowercase hex.
    sha256 TEXT NOT NULL,
    -- `users/{user}`.
    creator TEXT NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- An upload's idempotency key, with its caller.
    request_id UUID,
    UNIQUE (creator, request_id)
);
CREATE INDEX attachments_of_note ON attachments (note_id, create_time);

CREATE TABLE attachment_chunks (
    attachment_id UUID NOT NULL REFERENCES attachments ON DELETE CASCADE,
    seq INT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (attachment_id, seq)
);
-- Chunks are already compressed or small enough; out-of-line storage without compression keeps
-- writes cheap.
ALTER TABLE attachment_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
