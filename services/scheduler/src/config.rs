//! The scheduler's own settings: how the firing loop runs and where the `projects` service is
//! (the runtime's settings come from the kit).

use std::time::Duration;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use taskmesh_clients::projects::ProjectsEndpoint;
use taskmesh_mesh::config::ConfigError;

use crate::domain::firing::Lateness;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Scheduler>;

/// How due schedules are found and fired.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Firing {
    /// Longest sleep between two looks for due schedules, in milliseconds; a schedule created or
    /// resumed on this process wakes the loop at once.
    pub poll_ms: u64,
    /// Schedules claimed (and fired) in one transaction.
    pub batch: u32,
    /// An occurrence fired later than this after its time counts as missed and follows the
    /// schedule's misfire policy, in milliseconds.
    pub misfire_threshold_ms: u64,
    /// Most firings of one schedule in one round (FIRE_ALL after a long outage).
    pub max_fires_per_round: usize,
}

impl Default for Firing {
    fn default() -> Self {
        Self {
            poll_ms: 200,
            batch: 100,
            misfire_threshold_ms: 60_000,
            max_fires_per_round: 100,
        }
    }
}

impl Firing {
    /// The poll interval.
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }

    /// Lateness limits, with a schedule's catch-up `window`.
    pub fn lateness(&self, window: TimeDelta) -> Lateness {
        Lateness {
            threshold: TimeDelta::milliseconds(
                i64::try_from(self.misfire_threshold_ms).unwrap_or(i64::MAX),
            ),
            window,
            max_fires: self.max_fires_per_round,
        }
    }
}

/// How much one project may keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Schedules of one project (FAILED_PRECONDITION `SCHEDULE_QUOTA_EXCEEDED` beyond).
    pub max_schedules_per_project: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_schedules_per_project: 1000,
        }
    }
}

/// The tables only the scheduler reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// The firing loop.
    pub firing: Firing,
    /// Per-project limits.
    #[serde(default)]
    pub limits: Limits,
    /// The projects service, which says who may see and change schedules.
    pub projects: ProjectsEndpoint,
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        let firing = &self.firing;
        if firing.poll_ms == 0 || firing.poll_ms > 60_000 {
            return Err(ConfigError::Invalid {
                key: "firing.poll_ms".to_owned(),
                message: "must be 1 to 60000".to_owned(),
            });
        }
        if firing.batch == 0 || firing.batch > 10_000 {
            return Err(ConfigError::Invalid {
                key: "firing.batch".to_owned(),
                message: "must be 1 to 10000".to_owned(),
            });
        }
        if firing.max_fires_per_round == 0 {
            return Err(ConfigError::Invalid {
                key: "firing.max_fires_per_round".to_owned(),
                message: "must be positive".to_owned(),
            });
        }
        if self.limits.max_schedules_per_project < 1 {
            return Err(ConfigError::Invalid {
                key: "limits.max_schedules_per_project".to_owned(),
                message: "must be positive".to_owned(),
            });
        }
        self.projects.validate()
    }
}
