-- The marketplace: providers, the category tree, listings with their search columns, reviews, and
-- the completed bookings (learned from the bookings service's events) that allow a review.

CREATE TABLE providers (
    provider_id  TEXT PRIMARY KEY,                 -- the user's id
    display_name TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    time_zone    TEXT        NOT NULL,
    public       BOOLEAN     NOT NULL DEFAULT false,
    -- The rating projection over every review of the provider's listings, changed in the
    -- transaction of each review write (the row lock makes concurrent reviews add up exactly).
    rating_count BIGINT      NOT NULL DEFAULT 0,
    rating_sum   BIGINT      NOT NULL DEFAULT 0,
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    version      BIGINT      NOT NULL DEFAULT 1
);
CREATE INDEX providers_public ON providers ((rating_sum::float8 / greatest(rating_count, 1)) DESC)
    WHERE public;

CREATE TABLE categories (
    category_id  TEXT PRIMARY KEY,
    display_name TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    parent_id    TEXT REFERENCES categories (category_id),
    -- The ids from the top down to this one; fixed, since a category never moves.
    path         TEXT[]      NOT NULL,
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX categories_parent ON categories (parent_id);

CREATE TABLE listings (
    provider_id     TEXT        NOT NULL REFERENCES providers (provider_id),
    listing_id      TEXT        NOT NULL,
    title           TEXT        NOT NULL,
    description     TEXT        NOT NULL DEFAULT '',
    category_id     TEXT        NOT NULL REFERENCES categories (category_id),
    -- The category's path: a search in a category finds its sub-categories' listings too.
    category_path   TEXT[]      NOT NULL,
    currency_code   TEXT        NOT NULL,
    price_units     BIGINT      NOT NULL,
    price_nanos     INTEGER     NOT NULL,
    price           NUMERIC     GENERATED ALWAYS AS (price_units + price_nanos / 1000000000.0) STORED,
    duration_seconds INTEGER    NOT NULL,
    remote          BOOLEAN     NOT NULL DEFAULT false,
    location        TEXT        NOT NULL DEFAULT '',
    state           SMALLINT    NOT NULL,
    -- The provider's `public`, copied in the provider's own updates so that search needs no join.
    provider_public BOOLEAN     NOT NULL,
    rating_count    BIGINT      NOT NULL DEFAULT 0,
    rating_sum      BIGINT      NOT NULL DEFAULT 0,
    rating_average  DOUBLE PRECISION GENERATED ALWAYS AS
        (CASE WHEN rating_count = 0 THEN 0 ELSE rating_sum::float8 / rating_count END) STORED,
    searchable      TSVECTOR    GENERATED ALWAYS AS
        (setweight(to_tsvector('english', title), 'A') ||
         setweight(to_tsvector('english', description), 'B')) STORED,
    create_time     TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time     TIMESTAMPTZ NOT NULL DEFAULT now(),
    delete_time     TIMESTAMPTZ,
    version         BIGINT      NOT NULL DEFAULT 1,
    -- Found by search: published, not deleted, of a public provider.
    listed          BOOLEAN     GENERATED ALWAYS AS
        (state = 2 AND delete_time IS NULL AND provider_public) STORED,
    PRIMARY KEY (provider_id, listing_id)
);
CREATE INDEX listings_text ON listings USING gin (searchable) WHERE listed;
CREATE INDEX listings_category ON listings USING gin (category_path) WHERE listed;
CREATE INDEX listings_newest ON listings (create_time DESC, provider_id, listing_id) WHERE listed;
CREATE INDEX listings_price ON listings (currency_code, price) WHERE listed;
CREATE INDEX listings_rating ON listings (rating_average DESC) WHERE listed;
CREATE INDEX listings_of_category ON listings (category_id);

CREATE TABLE completed_bookings (
    booking       TEXT PRIMARY KEY,                -- providers/{provider}/bookings/{booking}
    listing       TEXT        NOT NULL,            -- providers/{provider}/listings/{listing}
    customer      TEXT        NOT NULL,            -- users/{user}
    complete_time TIMESTAMPTZ NOT NULL
);

CREATE TABLE reviews (
    provider_id   TEXT        NOT NULL,
    listing_id    TEXT        NOT NULL,
    review_id     TEXT        NOT NULL,
    -- One review per booking, enforced here.
    booking       TEXT        NOT NULL UNIQUE REFERENCES completed_bookings (booking),
    author        TEXT        NOT NULL,
    rating        SMALLINT    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment       TEXT        NOT NULL DEFAULT '',
    create_time   TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time   TIMESTAMPTZ NOT NULL DEFAULT now(),
    edit_deadline TIMESTAMPTZ NOT NULL,
    version       BIGINT      NOT NULL DEFAULT 1,
    PRIMARY KEY (provider_id, listing_id, review_id),
    FOREIGN KEY (provider_id, listing_id) REFERENCES listings (provider_id, listing_id)
);
CREATE INDEX reviews_newest ON reviews (provider_id, listing_id, create_time DESC);

-- Idempotent creates: a caller's request id maps to the resource its first call created.
CREATE TABLE request_ids (
    method      TEXT        NOT NULL,
    caller      TEXT        NOT NULL,
    request_id  UUID        NOT NULL,
    resource    TEXT        NOT NULL,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (method, caller, request_id)
);
