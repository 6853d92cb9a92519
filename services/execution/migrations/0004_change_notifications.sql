-- Every change of an execution is announced on the `execution_changed` channel (payload: its
-- name), so watch streams wait for a notification instead of polling. Lease renewals, which leave
-- the version as it is and change nothing a watcher sees, are not announced.
CREATE OR REPLACE FUNCTION executions_announce() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('execution_changed', NEW.name);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS executions_created ON executions;
CREATE TRIGGER executions_created AFTER INSERT ON executions
    FOR EACH ROW EXECUTE FUNCTION executions_announce();
DROP TRIGGER IF EXISTS executions_changed ON executions;
CREATE TRIGGER executions_changed AFTER UPDATE ON executions
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION executions_announce();
