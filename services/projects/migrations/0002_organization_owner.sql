-- Organizations get an owner (`users/{user}`): the user who created it, who alone manages it.
-- Rows from before authentication existed have no owner and are reachable by nobody.
ALTER TABLE organizations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX organizations_owner ON organizations (owner);
