//! What the service decides without I/O: which notification each event makes for whom
//! ([`rules`]), which channels carry it ([`Preferences`]), when quiet hours end and the agenda is
//! due ([`clock`]), what an email and a webhook payload say ([`render`]) and how a webhook
//! request is signed ([`signing`]).

pub mod clock;
pub mod render;
pub mod rules;
pub mod signing;

use std::collections::BTreeMap;

use taskmesh_contracts::notifications_v1::{Channel, ChannelSetting, NotificationKind};

/// Every kind a user can be told of, in contract order.
pub const KINDS: [NotificationKind; 19] = [
    NotificationKind::TaskAssigned,
    NotificationKind::CommentAdded,
    NotificationKind::TaskCompleted,
    NotificationKind::TaskMoved,
    NotificationKind::TaskDeleted,
    NotificationKind::MemberAdded,
    NotificationKind::MemberRemoved,
    NotificationKind::MemberRoleChanged,
    NotificationKind::JobFailed,
    NotificationKind::JobSucceeded,
    NotificationKind::ReminderDue,
    NotificationKind::TaskOverdue,
    NotificationKind::DailyAgenda,
    NotificationKind::WebhookDisabled,
    NotificationKind::BookingRequested,
    NotificationKind::BookingConfirmed,
    NotificationKind::BookingCancelled,
    NotificationKind::BookingRescheduled,
    NotificationKind::ReviewRequested,
];

/// Every channel.
pub const CHANNELS: [Channel; 3] = [Channel::InApp, Channel::Email, Channel::Webhook];

/// A kind's short name, as filters and webhook payloads write it (`TASK_ASSIGNED`).
pub fn kind_name(kind: NotificationKind) -> &'static str {
    kind.as_str_name()
        .strip_prefix("NOTIFICATION_KIND_")
        .unwrap_or("UNSPECIFIED")
}

/// A channel's short name (`EMAIL`).
pub fn channel_name(channel: Channel) -> &'static str {
    channel
        .as_str_name()
        .strip_prefix("CHANNEL_")
        .unwrap_or("UNSPECIFIED")
}

/// Kinds by short name, numbered as stored (for the filter grammar).
pub const KIND_NAMES: &[(&str, i32)] = &[
    ("TASK_ASSIGNED", 1),
    ("COMMENT_ADDED", 2),
    ("TASK_COMPLETED", 3),
    ("TASK_MOVED", 4),
    ("TASK_DELETED", 5),
    ("MEMBER_ADDED", 6),
    ("MEMBER_REMOVED", 7),
    ("MEMBER_ROLE_CHANGED", 8),
    ("JOB_FAILED", 9),
    ("JOB_SUCCEEDED", 10),
    ("REMINDER_DUE", 11),
    ("TASK_OVERDUE", 12),
    ("DAILY_AGENDA", 13),
    ("WEBHOOK_DISABLED", 14),
    ("BOOKING_REQUESTED", 15),
    ("BOOKING_CONFIRMED", 16),
    ("BOOKING_CANCELLED", 17),
    ("BOOKING_RESCHEDULED", 18),
    ("REVIEW_REQUESTED", 19),
];

/// Whether `kind` goes out on `channel` for a user who changed nothing: everything in the app
/// but a job's success; email for what asks the user to act (assignments, comments, membership,
/// failed jobs, reminders, overdue tasks, disabled webhooks, every step of a booking and a review
/// asked for), not for the rest, and the agenda by email only when asked; every project
/// notification to the project's webhooks (bookings belong to no project).
pub fn default_enabled(kind: NotificationKind, channel: Channel) -> bool {
    use NotificationKind as K;
    match channel {
        Channel::InApp => kind != K::JobSucceeded,
        Channel::Email => matches!(
            kind,
            K::TaskAssigned
                | K::CommentAdded
                | K::MemberAdded
                | K::MemberRemoved
                | K::JobFailed
                | K::ReminderDue
                | K::TaskOverdue
                | K::WebhookDisabled
                | K::BookingRequested
                | K::BookingConfirmed
                | K::BookingCancelled
                | K::BookingRescheduled
                | K::ReviewRequested
        ),
        Channel::Webhook => !matches!(kind, K::DailyAgenda | K::WebhookDisabled),
        Channel::Unspecified => false,
    }
}

/// A user's channel choices: the defaults with their overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// `KIND/CHANNEL` -> on/off, as stored.
    overrides: BTreeMap<String, bool>,
}

fn key(kind: NotificationKind, channel: Channel) -> String {
    format!("{}/{}", kind_name(kind), channel_name(channel))
}

impl Preferences {
    /// From the stored overrides (a JSON object of booleans); anything else in it is ignored.
    pub fn from_json(value: &serde_json::Value) -> Self {
        let overrides = value
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| v.as_bool().map(|b| (k.clone(), b)))
                    .collect()
            })
            .unwrap_or_default();
        Self { overrides }
    }

    /// As stored.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.overrides
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::Bool(*v)))
                .collect(),
        )
    }

    /// Whether `kind` goes out on `channel`.
    pub fn enabled(&self, kind: NotificationKind, channel: Channel) -> bool {
        self.overrides
            .get(&key(kind, channel))
            .copied()
            .unwrap_or_else(|| default_enabled(kind, channel))
    }

    /// Sets the pairs in `settings`; a pair set back to its default is forgotten.
    pub fn apply(&mut self, settings: &[ChannelSetting]) {
        for setting in settings {
            let (kind, channel) = (setting.kind(), setting.channel());
            if kind == NotificationKind::Unspecified || channel == Channel::Unspecified {
                continue;
            }
            if setting.enabled == default_enabled(kind, channel) {
                self.overrides.remove(&key(kind, channel));
            } else {
                self.overrides.insert(key(kind, channel), setting.enabled);
            }
        }
    }

    /// Every kind on every channel, as the API shows them.
    pub fn matrix(&self) -> Vec<ChannelSetting> {
        KINDS
            .iter()
            .flat_map(|kind| {
                CHANNELS.iter().map(move |channel| ChannelSetting {
                    kind: *kind as i32,
                    channel: *channel as i32,
                    enabled: self.enabled(*kind, *channel),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_the_contract() {
        for (name, number) in KIND_NAMES {
            let kind = NotificationKind::try_from(*number).expect("a kind");
            assert_eq!(kind_name(kind), *name);
        }
        assert_eq!(KIND_NAMES.len(), KINDS.len());
    }

    #[test]
    fn overrides_change_only_their_pair_and_a_default_is_forgotten() {
        let mut preferences = Preferences::default();
        assert!(preferences.enabled(NotificationKind::TaskAssigned, Channel::Email));
        assert!(!preferences.enabled(NotificationKind::JobSucceeded, Channel::InApp));
        preferences.apply(&[
            ChannelSetting {
                kind: NotificationKind::TaskAssigned as i32,
                channel: Channel::Email as i32,
                enabled: false,
            },
            ChannelSetting {
                kind: NotificationKind::JobSucceeded as i32,
                channel: Channel::InApp as i32,
                enabled: true,
            },
        ]);
        assert!(!preferences.enabled(NotificationKind::TaskAssigned, Channel::Email));
        assert!(preferences.enabled(NotificationKind::TaskAssigned, Channel::InApp));
        assert!(preferences.enabled(NotificationKind::JobSucceeded, Channel::InApp));
        let stored = Preferences::from_json(&preferences.to_json());
        assert_eq!(stored, preferences);
        preferences.apply(&[ChannelSetting {
            kind: NotificationKind::TaskAssigned as i32,
            channel: Channel::Email as i32,
            enabled: true,
        }]);
        assert_eq!(
            preferences.to_json(),
            serde_json::json!({"JOB_SUCCEEDED/IN_APP": true})
        );
        assert_eq!(preferences.matrix().len(), KINDS.len() * CHANNELS.len());
    }
}
