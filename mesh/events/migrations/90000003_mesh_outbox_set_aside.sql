-- A row that keeps failing while the rows around it publish is set aside (taskmesh_events relay):
-- it no longer holds up the rows behind it, and stays for an operator to look at.
ALTER TABLE mesh_outbox ADD COLUMN IF NOT EXISTS set_aside_at TIMESTAMPTZ;
