//! Who is told what: each rule turns one event, and what the service knows of the task or project
//! it touches, into drafts of notifications, one per recipient. The actor is never told of what
//! they did themselves, and nobody is told twice of one event by one rule.

use taskmesh_contracts::notifications_v1::NotificationKind;

/// What the rules need to know of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFacts {
    /// `projects/{project}/tasks/{task}`.
    pub task: String,
    /// `projects/{project}`.
    pub project: String,
    /// Its title.
    pub title: String,
    /// Who created it, `users/{user}`.
    pub creator: String,
    /// Who has it, `users/{user}` or empty.
    pub assignee: String,
    /// Who last set its job, `users/{user}` or empty.
    pub job_owner: String,
}

impl TaskFacts {
    /// Creator and assignee: the people a task "of mine" belongs to.
    fn stakeholders(&self) -> Vec<&str> {
        let mut people = vec![self.creator.as_str()];
        if self.assignee != self.creator {
            people.push(self.assignee.as_str());
        }
        people.retain(|p| !p.is_empty());
        people
    }
}

/// Someone who did something: `users/{user}` and the name to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// `users/{user}`; empty for the platform.
    pub name: String,
    /// Display name, or the user id when unknown.
    pub display_name: String,
}

/// A notification to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// `users/{user}`.
    pub recipient: String,
    /// What happened.
    pub kind: NotificationKind,
    /// One line.
    pub title: String,
    /// More.
    pub body: String,
    /// What it is about.
    pub resource: String,
    /// Who did it (empty for the platform).
    pub actor: Person,
    /// `projects/{project}` or empty.
    pub project: String,
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChange {
    /// Created (with its assignee, if any).
    Created,
    /// Its assignee changed.
    Reassigned,
    /// Moved to the Done column, or completed.
    Completed,
    /// Moved to another column (not Done).
    Moved {
        /// The new column's resource name.
        column: String,
    },
    /// Deleted.
    Deleted,
    /// Commented on.
    Commented {
        /// The comment's resource name.
        comment: String,
        /// Its text.
        text: String,
    },
}

/// Longest body carried (a comment is cut, with an ellipsis).
const MAX_BODY_CHARS: usize = 1000;

fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_BODY_CHARS {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(MAX_BODY_CHARS - 1).collect();
    clipped.push('…');
    clipped
}

/// The drafts a change of a task makes. `task` is the task after the change, except for
/// deletion, where it is the task as it was.
pub fn task_changed(change: &TaskChange, task: &TaskFacts, actor: &Person) -> Vec<Draft> {
    let who = &actor.display_name;
    let title = &task.title;
    let draft = |recipient: &str, kind, line: String, body: String, resource: &str| Draft {
        recipient: recipient.to_owned(),
        kind,
        title: line,
        body,
        resource: resource.to_owned(),
        actor: actor.clone(),
        project: task.project.clone(),
    };
    let to_stakeholders = |kind, line: String, body: String, resource: &str| -> Vec<Draft> {
        task.stakeholders()
            .into_iter()
            .filter(|p| *p != actor.name)
            .map(|p| draft(p, kind, line.clone(), body.clone(), resource))
            .collect()
    };
    match change {
        TaskChange::Created | TaskChange::Reassigned => {
            if task.assignee.is_empty() || task.assignee == actor.name {
                return Vec::new();
            }
            vec![draft(
                &task.assignee,
                NotificationKind::TaskAssigned,
                format!("{who} assigned you “{title}”"),
                String::new(),
                &task.task,
            )]
        }
        TaskChange::Completed => to_stakeholders(
            NotificationKind::TaskCompleted,
            format!("{who} completed “{title}”"),
            String::new(),
            &task.task,
        ),
        TaskChange::Moved { column } => to_stakeholders(
            NotificationKind::TaskMoved,
            format!("{who} moved “{title}”"),
            format!("Now in {column}"),
            &task.task,
        ),
        TaskChange::Deleted => to_stakeholders(
            NotificationKind::TaskDeleted,
            format!("{who} deleted “{title}”"),
            String::new(),
            &task.task,
        ),
        TaskChange::Commented { comment, text } => {
            let mut drafts = to_stakeholders(
                NotificationKind::CommentAdded,
                format!("{who} commented on “{title}”"),
                clip(text),
                &task.task,
            );
            for d in &mut drafts {
                d.resource.clone_from(comment);
            }
            drafts
        }
    }
}

/// What happened to a membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Added with this role.
    Added(String),
    /// Removed.
    Removed,
    /// The role changed to this one.
    RoleChanged(String),
}

/// The draft a membership change makes for the member, unless they made it themselves.
pub fn membership_changed(
    change: &MembershipChange,
    member: &str,
    project: &str,
    project_title: &str,
    actor: &Person,
) -> Option<Draft> {
    if member.is_empty() || member == actor.name {
        return None;
    }
    let who = &actor.display_name;
    let (kind, title) = match change {
        MembershipChange::Added(role) => (
            NotificationKind::MemberAdded,
            format!("{who} added you to {project_title} as {role}"),
        ),
        MembershipChange::Removed => (
            NotificationKind::MemberRemoved,
            format!("{who} removed you from {project_title}"),
        ),
        MembershipChange::RoleChanged(role) => (
            NotificationKind::MemberRoleChanged,
            format!("{who} made you {role} of {project_title}"),
        ),
    };
    Some(Draft {
        recipient: member.to_owned(),
        kind,
        title,
        body: String::new(),
        resource: project.to_owned(),
        actor: actor.clone(),
        project: project.to_owned(),
    })
}

/// How a job's execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The last attempt failed, with this error.
    Failed(String),
    /// It succeeded.
    Succeeded,
}

/// The draft an ended execution makes for whoever set the job (the task's creator when unknown).
pub fn job_ended(outcome: &JobOutcome, execution: &str, task: &TaskFacts) -> Option<Draft> {
    let recipient = if task.job_owner.is_empty() {
        &task.creator
    } else {
        &task.job_owner
    };
    if recipient.is_empty() {
        return None;
    }
    let (kind, title, body) = match outcome {
        JobOutcome::Failed(error) => (
            NotificationKind::JobFailed,
            format!("The job of “{}” failed", task.title),
            clip(error),
        ),
        JobOutcome::Succeeded => (
            NotificationKind::JobSucceeded,
            format!("The job of “{}” succeeded", task.title),
            String::new(),
        ),
    };
    Some(Draft {
        recipient: recipient.clone(),
        kind,
        title,
        body,
        resource: execution.to_owned(),
        actor: Person::default(),
        project: task.project.clone(),
    })
}

/// The draft of a due reminder.
pub fn reminder_due(recipient: &str, task: &str, project: &str, title: &str, due: &str) -> Draft {
    Draft {
        recipient: recipient.to_owned(),
        kind: NotificationKind::ReminderDue,
        title: format!("Reminder: “{title}” is due {due}"),
        body: String::new(),
        resource: task.to_owned(),
        actor: Person::default(),
        project: project.to_owned(),
    }
}

/// The draft of an overdue task, for its assignee or, unassigned, its creator.
pub fn task_overdue(task: &TaskFacts, assignee: &str, due: &str) -> Option<Draft> {
    let recipient = if assignee.is_empty() {
        &task.creator
    } else {
        assignee
    };
    if recipient.is_empty() {
        return None;
    }
    Some(Draft {
        recipient: recipient.to_owned(),
        kind: NotificationKind::TaskOverdue,
        title: format!("“{}” is overdue (due {due})", task.title),
        body: String::new(),
        resource: task.task.clone(),
        actor: Person::default(),
        project: task.project.clone(),
    })
}

/// A task on an agenda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgendaItem {
    /// `projects/{project}/tasks/{task}`.
    pub task: String,
    /// Its title.
    pub title: String,
    /// Its due time, on the user's clock (`2026-12-02 17:00`).
    pub due: String,
    /// Whether it is past due.
    pub overdue: bool,
}

/// The daily agenda of `recipient` for `date`; `None` when nothing is due or overdue.
pub fn daily_agenda(recipient: &str, date: &str, items: &[AgendaItem]) -> Option<Draft> {
    if items.is_empty() {
        return None;
    }
    let overdue = items.iter().filter(|i| i.overdue).count();
    let today = items.len() - overdue;
    let mut body = String::new();
    for (heading, late) in [("Overdue", true), ("Due today", false)] {
        let listed: Vec<&AgendaItem> = items.iter().filter(|i| i.overdue == late).collect();
        if listed.is_empty() {
            continue;
        }
        body.push_str(heading);
        body.push_str(":\n");
        for item in listed {
            body.push_str(&format!(
                "- {} (due {}) {}\n",
                item.title, item.due, item.task
            ));
        }
    }
    Some(Draft {
        recipient: recipient.to_owned(),
        kind: NotificationKind::DailyAgenda,
        title: format!("Your agenda for {date}: {today} due today, {overdue} overdue"),
        body: clip(body.trim_end()),
        resource: format!("{recipient}/notifications"),
        actor: Person::default(),
        project: String::new(),
    })
}

/// The draft telling a webhook's creator that it was turned off.
pub fn webhook_disabled(creator: &str, webhook: &str, url: &str, failures: i32) -> Draft {
    Draft {
        recipient: creator.to_owned(),
        kind: NotificationKind::WebhookDisabled,
        title: format!("Webhook {url} was turned off after {failures} failed deliveries in a row"),
        body: "Fix the endpoint, then set the webhook active again.".to_owned(),
        resource: webhook.to_owned(),
        actor: Person::default(),
        project: webhook
            .split("/webhooks/")
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str) -> Person {
        Person {
            name: format!("users/{id}"),
            display_name: id.to_uppercase(),
        }
    }

    fn task() -> TaskFacts {
        TaskFacts {
            task: "projects/p/tasks/t".to_owned(),
            project: "projects/p".to_owned(),
            title: "Fix login".to_owned(),
            creator: "users/ann".to_owned(),
            assignee: "users/bob".to_owned(),
            job_owner: String::new(),
        }
    }

    fn recipients(drafts: &[Draft]) -> Vec<&str> {
        drafts.iter().map(|d| d.recipient.as_str()).collect()
    }

    #[test]
    fn an_assignment_tells_the_assignee_unless_they_assigned_themselves() {
        let drafts = task_changed(&TaskChange::Reassigned, &task(), &person("ann"));
        assert_eq!(recipients(&drafts), ["users/bob"]);
        assert_eq!(drafts[0].title, "ANN assigned you “Fix login”");
        assert!(task_changed(&TaskChange::Reassigned, &task(), &person("bob")).is_empty());
    }

    #[test]
    fn changes_tell_creator_and_assignee_but_never_the_actor() {
        let change = TaskChange::Commented {
            comment: "projects/p/tasks/t/comments/c".to_owned(),
            text: "looks good".to_owned(),
        };
        assert_eq!(
            recipients(&task_changed(&change, &task(), &person("cat"))),
            ["users/ann", "users/bob"]
        );
        assert_eq!(
            recipients(&task_changed(&change, &task(), &person("bob"))),
            ["users/ann"]
        );
        let mine = TaskFacts {
            assignee: "users/ann".to_owned(),
            ..task()
        };
        assert_eq!(
            recipients(&task_changed(&TaskChange::Completed, &mine, &person("cat"))),
            ["users/ann"]
        );
        assert!(task_changed(&TaskChange::Deleted, &mine, &person("ann")).is_empty());
    }

    #[test]
    fn a_member_is_not_told_of_what_they_did_themselves() {
        let added = MembershipChange::Added("EDITOR".to_owned());
        assert!(
            membership_changed(&added, "users/bob", "projects/p", "P", &person("ann")).is_some()
        );
        assert!(
            membership_changed(&added, "users/ann", "projects/p", "P", &person("ann")).is_none()
        );
    }

    #[test]
    fn the_agenda_lists_overdue_first_and_is_skipped_when_empty() {
        assert!(daily_agenda("users/ann", "2026-12-02", &[]).is_none());
        let items = [
            AgendaItem {
                task: "projects/p/tasks/a".to_owned(),
                title: "Today".to_owned(),
                due: "2026-12-02 17:00".to_owned(),
                overdue: false,
            },
            AgendaItem {
                task: "projects/p/tasks/b".to_owned(),
                title: "Late".to_owned(),
                due: "2026-12-01 17:00".to_owned(),
                overdue: true,
            },
        ];
        let agenda = daily_agenda("users/ann", "2026-12-02", &items).expect("an agenda");
        assert_eq!(
            agenda.title,
            "Your agenda for 2026-12-02: 1 due today, 1 overdue"
        );
        assert!(agenda.body.starts_with("Overdue:\n- Late"));
    }
}

/// A step in a booking's life, as the bookings service publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookingStep {
    /// A customer took a slot.
    Requested,
    /// The provider accepted it.
    Confirmed,
    /// Called off, with the reason given.
    Cancelled {
        /// Why.
        reason: String,
        /// Who, `users/{user}`.
        by: String,
    },
    /// Moved; the new start is the booking's.
    Rescheduled,
    /// Took place.
    Completed,
}

/// What the bookings rules know of a booking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingFacts {
    /// `providers/{provider}/bookings/{booking}`.
    pub booking: String,
    /// `providers/{provider}/listings/{listing}`.
    pub listing: String,
    /// The provider's user, `users/{provider}`.
    pub provider: String,
    /// The customer, `users/{user}`.
    pub customer: String,
    /// When, written for people (`2026-12-07 09:00 UTC`).
    pub when: String,
}

/// The notifications of a booking's `step`: both sides of a request, a cancellation and a
/// reschedule; the customer of a confirmation; on completion, the customer is asked for a review
/// of the listing.
pub fn booking(facts: &BookingFacts, step: &BookingStep) -> Vec<Draft> {
    let draft = |recipient: &str, kind: NotificationKind, title: String, resource: &str| Draft {
        recipient: recipient.to_owned(),
        kind,
        title,
        body: String::new(),
        resource: resource.to_owned(),
        actor: Person::default(),
        project: String::new(),
    };
    let when = &facts.when;
    let booking = facts.booking.as_str();
    match step {
        BookingStep::Requested => vec![
            draft(
                &facts.provider,
                NotificationKind::BookingRequested,
                format!("New booking request for {when} from {}", facts.customer),
                booking,
            ),
            draft(
                &facts.customer,
                NotificationKind::BookingRequested,
                format!("Your booking for {when} is requested; the provider will confirm it"),
                booking,
            ),
        ],
        BookingStep::Confirmed => vec![draft(
            &facts.customer,
            NotificationKind::BookingConfirmed,
            format!("Your booking for {when} is confirmed"),
            booking,
        )],
        BookingStep::Cancelled { reason, by } => {
            let because = if reason.is_empty() {
                String::new()
            } else {
                format!(": “{reason}”")
            };
            [&facts.provider, &facts.customer]
                .into_iter()
                .map(|recipient| {
                    let who = if recipient == by { "You" } else { by.as_str() };
                    draft(
                        recipient,
                        NotificationKind::BookingCancelled,
                        format!("{who} cancelled the booking for {when}{because}"),
                        booking,
                    )
                })
                .collect()
        }
        BookingStep::Rescheduled => [&facts.provider, &facts.customer]
            .into_iter()
            .map(|recipient| {
                draft(
                    recipient,
                    NotificationKind::BookingRescheduled,
                    format!("The booking moved to {when}"),
                    booking,
                )
            })
            .collect(),
        BookingStep::Completed => vec![draft(
            &facts.customer,
            NotificationKind::ReviewRequested,
            "How was it? Review the service you booked".to_owned(),
            &facts.listing,
        )],
    }
}
