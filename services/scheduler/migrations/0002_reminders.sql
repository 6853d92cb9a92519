-- What the scheduler knows of each task, from the TASKS events (never from the tasks database):
-- enough to time its reminders and to tell when it is overdue.
CREATE TABLE task_due (
    task TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    assignee TEXT NOT NULL DEFAULT '',
    due_time TIMESTAMPTZ,
    done BOOLEAN NOT NULL DEFAULT false,
    deleted BOOLEAN NOT NULL DEFAULT false,
    -- The task version of the last event applied.
    version BIGINT NOT NULL
);
CREATE INDEX task_due_of_assignee ON task_due (assignee) WHERE assignee <> '';

-- Reminders users set on tasks (encoded taskmesh.scheduler.v1.ReminderRule).
CREATE TABLE reminders (
    name TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    recipient TEXT NOT NULL,
    rule BYTEA NOT NULL,
    create_time TIMESTAMPTZ NOT NULL
);
CREATE INDEX reminders_of_task ON reminders (task, create_time);

-- Each user's default reminders (encoded repeated ReminderRule, as ReminderSettings).
CREATE TABLE reminder_settings (
    owner TEXT PRIMARY KEY,
    settings BYTEA NOT NULL,
    update_time TIMESTAMPTZ NOT NULL
);

-- The moments a task's reminders and its overdue check fire, one row per source and due time:
-- a fired row stays, so the same reminder never fires twice for one due time, and a moved due
-- time is a new row. Unfired rows of a task are replaced whenever its due time, assignee, state or
-- reminders change.
CREATE TABLE alarms (
    task TEXT NOT NULL,
    -- A reminder's name, `users/{user}/reminderSettings#{n}` for a default one, or `overdue`.
    source TEXT NOT NULL,
    due_time TIMESTAMPTZ NOT NULL,
    fire_time TIMESTAMPTZ NOT NULL,
    recipient TEXT NOT NULL DEFAULT '',
    fired BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (task, source, due_time)
);
CREATE INDEX alarms_due ON alarms (fire_time) WHERE NOT fired;
