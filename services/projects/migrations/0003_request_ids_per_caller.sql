-- A request id belongs to its caller: another caller's use of the same id neither replays the first
-- caller's resource nor blocks the first caller.
ALTER TABLE request_ids ADD COLUMN caller TEXT NOT NULL DEFAULT '';
ALTER TABLE request_ids DROP CONSTRAINT request_ids_pkey;
ALTER TABLE request_ids ADD PRIMARY KEY (method, caller, request_id);
