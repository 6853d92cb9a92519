//! Conversions between protobuf timestamps and `chrono` times, used by every store and handler.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// A protobuf timestamp of `time`.
pub fn to_timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    to_timestamp(Utc::now())
}

/// The time of a protobuf timestamp, if it is set and in range.
pub fn from_timestamp(timestamp: Option<Timestamp>) -> Option<DateTime<Utc>> {
    timestamp.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("time");
        assert_eq!(from_timestamp(Some(to_timestamp(time))), Some(time));
        assert_eq!(from_timestamp(None), None);
        assert_eq!(
            from_timestamp(Some(Timestamp {
                seconds: 0,
                nanos: -1
            })),
            None
        );
    }
}
