-- Membership facts are applied in the order of their events in the PROJECTS stream: each row
-- remembers the stream position of the event it came from, and an older event (a redelivery)
-- never overwrites a newer one. A removal stays as a row with role 0 for the same reason.
ALTER TABLE members ADD COLUMN stream_seq BIGINT NOT NULL DEFAULT 0;
