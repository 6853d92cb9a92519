-- What the notifications service knows and keeps. It owns the inboxes, the settings, the webhooks
-- and what is still to be delivered; the rest is a read model of other services' events (users,
-- projects, tasks), kept only as far as the rules need it.

-- Users: address and name from the identity service's events, settings from the user, and the
-- counter that numbers each inbox (the cursor of SubscribeNotifications). Taking the next number
-- locks the row, so one user's notifications commit in the order of their numbers.
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    email TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    -- Overrides of the default channel matrix: {"TASK_ASSIGNED/EMAIL": false, ...}.
    channels JSONB NOT NULL DEFAULT '{}',
    -- Quiet hours as minutes of the day on the user's clock; both NULL for none.
    quiet_start SMALLINT,
    quiet_end SMALLINT,
    daily_agenda BOOLEAN NOT NULL DEFAULT TRUE,
    -- When the next daily agenda is due (08:00 on the user's clock), claimed by the agenda loop.
    next_agenda_time TIMESTAMPTZ,
    inbox_seq BIGINT NOT NULL DEFAULT 0,
    settings_version BIGINT NOT NULL DEFAULT 0,
    settings_update_time TIMESTAMPTZ,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
CREATE INDEX users_agenda_due ON users (next_agenda_time) WHERE daily_agenda;

CREATE TABLE projects (
    project_id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT ''
);

-- Tasks as far as the rules need them: who created it, who has it, who set its job, when it is due.
CREATE TABLE tasks (
    task TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    title TEXT NOT NULL,
    creator TEXT NOT NULL,
    assignee TEXT NOT NULL DEFAULT '',
    job_owner TEXT NOT NULL DEFAULT '',
    due_time TIMESTAMPTZ,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL
);
CREATE INDEX tasks_open_by_assignee ON tasks (assignee, due_time)
    WHERE NOT done AND NOT deleted AND due_time IS NOT NULL;

-- Inboxes. `source` names what caused the notification (an event and a rule), so a redelivered
-- event makes no second one; `in_app` false keeps it out of the inbox while email or webhooks
-- still carry it.
CREATE TABLE notifications (
    user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    resource TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    actor_display_name TEXT NOT NULL DEFAULT '',
    link TEXT NOT NULL DEFAULT '',
    project_id TEXT NOT NULL DEFAULT '',
    in_app BOOLEAN NOT NULL,
    read_time TIMESTAMPTZ,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, seq),
    UNIQUE (user_id, source)
);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE in_app AND read_time IS NULL;
CREATE INDEX notifications_newest ON notifications (user_id, create_time DESC) WHERE in_app;

-- Emails to send: written with the notification, sent by the mail loop, which leases a row by
-- moving `next_attempt_time` ahead before it talks to the SMTP server. `message_id` is fixed
-- here, so a resend after a crash carries the same Message-ID.
CREATE TABLE emails (
    notification_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    message_id TEXT NOT NULL,
    -- 1 pending, 2 sent, 3 failed (given up).
    state SMALLINT NOT NULL DEFAULT 1,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_time TIMESTAMPTZ NOT NULL,
    sent_time TIMESTAMPTZ,
    last_error TEXT NOT NULL DEFAULT '',
    create_time TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX emails_due ON emails (next_attempt_time) WHERE state = 1;

CREATE TABLE webhooks (
    project_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    url TEXT NOT NULL,
    filter TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL,
    -- The signing secret, sealed with the service's key (bound to the webhook's name).
    secret TEXT NOT NULL,
    consecutive_failures INT NOT NULL DEFAULT 0,
    disabled_reason TEXT NOT NULL DEFAULT '',
    creator TEXT NOT NULL,
    request_id UUID,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    version BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (project_id, webhook_id),
    UNIQUE (project_id, request_id)
);

-- One notification to one webhook. The payload is fixed when queued: every attempt sends the
-- same bytes with the same `webhook-id`; the webhook loop leases rows like the mail loop.
CREATE TABLE deliveries (
    project_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    message_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- taskmesh.notifications.v1.WebhookDelivery.State: 1 pending, 2 succeeded, 3 failed.
    state SMALLINT NOT NULL DEFAULT 1,
    attempt_count INT NOT NULL DEFAULT 0,
    -- [{number, time, status_code, latency_ms, error}, ...]
    attempts JSONB NOT NULL DEFAULT '[]',
    next_attempt_time TIMESTAMPTZ,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, webhook_id, delivery_id),
    UNIQUE (project_id, webhook_id, notification_id),
    FOREIGN KEY (project_id, webhook_id) REFERENCES webhooks ON DELETE CASCADE
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_time) WHERE state = 1;
