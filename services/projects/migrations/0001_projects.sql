-- The projects service's own schema. Resource ids are the last segment of resource names; `uid`
-- never changes. `version` counts changes and is the etag. Soft-deleted rows keep `delete_time`.

CREATE TABLE organizations (
    uid          UUID        PRIMARY KEY,
    id           TEXT        NOT NULL UNIQUE,
    display_name TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    create_time  TIMESTAMPTZ NOT NULL,
    update_time  TIMESTAMPTZ NOT NULL,
    delete_time  TIMESTAMPTZ,
    version      BIGINT      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX organizations_live_display_name
    ON organizations (lower(display_name)) WHERE delete_time IS NULL;

CREATE TABLE projects (
    uid             UUID        PRIMARY KEY,
    id              TEXT        NOT NULL UNIQUE,
    organization_id TEXT        REFERENCES organizations (id),
    display_name    TEXT        NOT NULL,
    description     TEXT        NOT NULL DEFAULT '',
    creator         TEXT        NOT NULL,
    create_time     TIMESTAMPTZ NOT NULL,
    update_time     TIMESTAMPTZ NOT NULL,
    delete_time     TIMESTAMPTZ,
    version         BIGINT      NOT NULL DEFAULT 1
);
-- Names are unique within their organization; personal projects within their creator's.
CREATE UNIQUE INDEX projects_live_display_name
    ON projects (coalesce(organization_id, 'creator:' || creator), lower(display_name))
    WHERE delete_time IS NULL;
CREATE INDEX projects_organization ON projects (organization_id) WHERE delete_time IS NULL;

CREATE TABLE boards (
    uid          UUID        PRIMARY KEY,
    project_id   TEXT        NOT NULL REFERENCES projects (id),
    id           TEXT        NOT NULL,
    display_name TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    create_time  TIMESTAMPTZ NOT NULL,
    update_time  TIMESTAMPTZ NOT NULL,
    delete_time  TIMESTAMPTZ,
    version      BIGINT      NOT NULL DEFAULT 1,
    UNIQUE (project_id, id)
);
CREATE UNIQUE INDEX boards_live_display_name
    ON boards (project_id, lower(display_name)) WHERE delete_time IS NULL;

CREATE TABLE columns (
    uid          UUID        PRIMARY KEY,
    project_id   TEXT        NOT NULL,
    board_id     TEXT        NOT NULL,
    id           TEXT        NOT NULL,
    display_name TEXT        NOT NULL,
    kind         SMALLINT    NOT NULL,
    position     INTEGER     NOT NULL,
    create_time  TIMESTAMPTZ NOT NULL,
    update_time  TIMESTAMPTZ NOT NULL,
    version      BIGINT      NOT NULL DEFAULT 1,
    UNIQUE (project_id, board_id, id),
    FOREIGN KEY (project_id, board_id) REFERENCES boards (project_id, id)
);
CREATE UNIQUE INDEX columns_display_name ON columns (project_id, board_id, lower(display_name));

CREATE TABLE members (
    project_id  TEXT        NOT NULL REFERENCES projects (id),
    user_id     TEXT        NOT NULL,
    role        SMALLINT    NOT NULL,
    create_time TIMESTAMPTZ NOT NULL,
    update_time TIMESTAMPTZ NOT NULL,
    version     BIGINT      NOT NULL DEFAULT 1,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

-- Idempotent creates: a request id maps to the resource its first call created.
CREATE TABLE request_ids (
    method      TEXT        NOT NULL,
    request_id  UUID        NOT NULL,
    resource    TEXT        NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (method, request_id)
);
