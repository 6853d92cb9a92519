-- The tasks with due times each user is assigned, learned from the tasks service's events, for
-- the user's calendar feed. `version` is the task's own (its events are numbered gap-free), so an
-- older event never undoes a newer one.
CREATE TABLE user_tasks (
    task     TEXT PRIMARY KEY,                 -- projects/{project}/tasks/{task}
    title    TEXT        NOT NULL DEFAULT '',
    assignee TEXT        NOT NULL DEFAULT '',  -- users/{user} or empty
    due_time TIMESTAMPTZ,
    done     BOOLEAN     NOT NULL DEFAULT false,
    deleted  BOOLEAN     NOT NULL DEFAULT false,
    version  BIGINT      NOT NULL
);
CREATE INDEX user_tasks_due ON user_tasks (assignee, due_time)
    WHERE due_time IS NOT NULL AND NOT deleted;
