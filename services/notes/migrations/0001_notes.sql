-- Notes, whom they are shared with, what they link to, and who belongs to which project (a read
-- model of the projects service's events: who may read a project's notes).

CREATE TABLE notes (
    note_id TEXT PRIMARY KEY,
    -- `users/{user}` or `projects/{project}`.
    parent TEXT NOT NULL,
    -- The project of a project note, '' for a personal one.
    project_id TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    color SMALLINT NOT NULL DEFAULT 0,
    pinned BOOLEAN NOT NULL DEFAULT false,
    archived BOOLEAN NOT NULL DEFAULT false,
    labels TEXT[] NOT NULL DEFAULT '{}',
    -- `users/{user}`.
    creator TEXT NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    delete_time TIMESTAMPTZ,
    purge_time TIMESTAMPTZ,
    version BIGINT NOT NULL DEFAULT 1,
    -- A create's idempotency key, with its caller.
    request_id UUID,
    -- The title weighs most in ranking.
    search TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    ) STORED,
    UNIQUE (creator, request_id)
);
CREATE INDEX notes_search ON notes USING GIN (search);
CREATE INDEX notes_of_parent ON notes (parent, pinned DESC, update_time DESC);
CREATE INDEX notes_of_project ON notes (project_id) WHERE project_id <> '';
CREATE INDEX notes_labels ON notes USING GIN (labels);
CREATE INDEX notes_to_purge ON notes (purge_time) WHERE purge_time IS NOT NULL;

CREATE TABLE note_shares (
    note_id TEXT NOT NULL REFERENCES notes ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    -- taskmesh.notes.v1.ShareRole: 1 viewer, 2 editor.
    role SMALLINT NOT NULL CHECK (role IN (1, 2)),
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (note_id, user_id)
);
CREATE INDEX note_shares_of_user ON note_shares (user_id);

CREATE TABLE note_links (
    note_id TEXT NOT NULL REFERENCES notes ON DELETE CASCADE,
    -- `projects/{project}` or `projects/{project}/tasks/{task}`.
    target TEXT NOT NULL,
    position INT NOT NULL,
    broken_time TIMESTAMPTZ,
    PRIMARY KEY (note_id, target)
);
CREATE INDEX note_links_to_target ON note_links (target);

CREATE TABLE members (
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- taskmesh.projects.v1.Role.
    role SMALLINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_of_user ON members (user_id);
