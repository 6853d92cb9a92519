CREATE TABLE pings (
    id      BIGSERIAL PRIMARY KEY,
    caller  TEXT        NOT NULL,
    message TEXT        NOT NULL,
    at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
