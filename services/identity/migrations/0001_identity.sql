-- The identity service's schema. Passwords are argon2id PHC strings; refresh tokens and API key
-- secrets are random 256-bit values stored only as SHA-256 digests.

CREATE TABLE users (
    id            TEXT        PRIMARY KEY,
    uid           UUID        NOT NULL UNIQUE,
    email         TEXT        NOT NULL,
    email_key     TEXT        NOT NULL UNIQUE,
    display_name  TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    state         SMALLINT    NOT NULL,
    create_time   TIMESTAMPTZ NOT NULL,
    update_time   TIMESTAMPTZ NOT NULL,
    version       BIGINT      NOT NULL DEFAULT 1
);

-- One row per refresh token; tokens of one login share a family. A token is used once: presenting
-- it again revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash  BYTEA       PRIMARY KEY,
    family      UUID        NOT NULL,
    user_id     TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    create_time TIMESTAMPTZ NOT NULL,
    expire_time TIMESTAMPTZ NOT NULL,
    used_time   TIMESTAMPTZ,
    revoke_time TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id           UUID        PRIMARY KEY,
    user_id      TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    display_name TEXT        NOT NULL,
    scope        SMALLINT    NOT NULL,
    prefix       TEXT        NOT NULL,
    secret_hash  BYTEA       NOT NULL UNIQUE,
    create_time  TIMESTAMPTZ NOT NULL,
    expire_time  TIMESTAMPTZ,
    revoke_time  TIMESTAMPTZ
);
CREATE INDEX api_keys_user ON api_keys (user_id, id DESC);
