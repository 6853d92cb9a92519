-- Bookings: each provider's availability, the bookings with the time each holds (its own plus the
-- buffer after it), and each user's calendar feed token. Overlapping bookings of one provider are
-- refused by PostgreSQL itself: an exclusion constraint over the held ranges of the bookings that
-- are not cancelled (btree_gist lets `=` on the provider sit beside `&&` on the range).

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE availabilities (
    provider_id            TEXT PRIMARY KEY,
    weekly_hours           JSONB       NOT NULL DEFAULT '[]',   -- [{"day": 1, "start": "09:00", "end": "17:00"}]
    exceptions             JSONB       NOT NULL DEFAULT '[]',   -- [{"date": "2026-12-24", "closed": true, "extra": [...]}]
    buffer_seconds         INTEGER     NOT NULL DEFAULT 0,
    horizon_days           INTEGER     NOT NULL DEFAULT 60,
    minimum_notice_seconds INTEGER     NOT NULL DEFAULT 0,
    update_time            TIMESTAMPTZ NOT NULL DEFAULT now(),
    version                BIGINT      NOT NULL DEFAULT 1
);

CREATE TABLE bookings (
    provider_id   TEXT        NOT NULL,
    booking_id    TEXT        NOT NULL,
    listing       TEXT        NOT NULL,               -- providers/{provider}/listings/{listing}
    listing_title TEXT        NOT NULL,
    customer      TEXT        NOT NULL,               -- users/{user}
    start_time    TIMESTAMPTZ NOT NULL,
    end_time      TIMESTAMPTZ NOT NULL,
    -- start_time up to end_time plus the provider's buffer when booked (or rescheduled).
    held          TSTZRANGE   NOT NULL,
    state         SMALLINT    NOT NULL,
    sequence      INTEGER     NOT NULL DEFAULT 0,
    note          TEXT        NOT NULL DEFAULT '',
    cancel_reason TEXT        NOT NULL DEFAULT '',
    cancelled_by  TEXT        NOT NULL DEFAULT '',
    create_time   TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time   TIMESTAMPTZ NOT NULL DEFAULT now(),
    version       BIGINT      NOT NULL DEFAULT 1,
    PRIMARY KEY (provider_id, booking_id),
    CHECK (start_time < end_time AND lower(held) = start_time AND upper(held) >= end_time),
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (provider_id WITH =, held WITH &&)
        WHERE (state <> 3)
);
CREATE INDEX bookings_of_customer ON bookings (customer, start_time);
CREATE INDEX bookings_of_provider ON bookings (provider_id, start_time);

CREATE TABLE calendar_feeds (
    user_id     TEXT PRIMARY KEY,
    token       TEXT        NOT NULL UNIQUE,
    rotate_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Idempotent creates: a caller's request id maps to the resource its first call created.
CREATE TABLE request_ids (
    method      TEXT        NOT NULL,
    caller      TEXT        NOT NULL,
    request_id  UUID        NOT NULL,
    resource    TEXT        NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (method, caller, request_id)
);
