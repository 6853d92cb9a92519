-- Which user an organization is the personal organization of. Its id is the username when free,
-- else the first free `<username>-<n>`: a name someone else took first cannot block a
-- registration. Earlier personal organizations are the ones whose id is their owner's username.
ALTER TABLE organizations ADD COLUMN IF NOT EXISTS personal_of TEXT;
UPDATE organizations SET personal_of = id WHERE personal_of IS NULL AND owner = 'users/' || id;
CREATE UNIQUE INDEX IF NOT EXISTS organizations_personal_of ON organizations (personal_of);
