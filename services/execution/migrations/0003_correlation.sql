-- The correlation id of the task event that asked for the work, carried by every execution event.
ALTER TABLE executions ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
