-- The personal organization the registration saga created for the user (projects chooses its id:
-- the username, or the first free `<username>-<n>` when someone else holds that name). Rows from
-- before this column read as `organizations/<id>`. Pending registrations are swept by age.
ALTER TABLE users ADD COLUMN IF NOT EXISTS personal_organization TEXT;
CREATE INDEX IF NOT EXISTS users_pending_by_age ON users (create_time) WHERE state = 1;
