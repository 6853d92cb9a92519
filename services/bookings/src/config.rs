//! The bookings service's own settings (the runtime's come from the kit).

use serde::{Deserialize, Serialize};
use taskmesh_clients::MarketplaceEndpoint;
use taskmesh_mesh::config::ConfigError;

/// The service's configuration: the runtime's settings plus [`Settings`].
pub type Config = taskmesh_service::Config<crate::Bookings>;

/// What the bookings service is told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The marketplace service: listings (duration, published) and providers (time zone).
    pub marketplace: MarketplaceEndpoint,
    /// Minutes between the starts of offered slots.
    pub slot_step_minutes: i64,
    /// The longest range ListSlots answers, in days.
    pub max_slot_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            marketplace: MarketplaceEndpoint::default(),
            slot_step_minutes: 15,
            max_slot_days: 31,
        }
    }
}

impl taskmesh_service::Settings for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=240).contains(&self.slot_step_minutes) {
            return Err(ConfigError::Invalid {
                key: "slot_step_minutes".to_owned(),
                message: "must be between 5 and 240".to_owned(),
            });
        }
        if !(1..=366).contains(&self.max_slot_days) {
            return Err(ConfigError::Invalid {
                key: "max_slot_days".to_owned(),
                message: "must be between 1 and 366".to_owned(),
            });
        }
        self.marketplace.validate()
    }
}
