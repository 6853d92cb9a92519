-- Whether a link's target (a project or a task) is deleted, as its owner's events last said, with
-- the stream position of that event: a redelivered older event never undoes a newer one. A link
-- is broken while its target, or the project of its task, is deleted here.

CREATE TABLE link_targets (
    -- `projects/{project}` or `projects/{project}/tasks/{task}`.
    target TEXT PRIMARY KEY,
    deleted BOOLEAN NOT NULL,
    -- The JetStream stream sequence of the event that said so.
    seq BIGINT NOT NULL
);
