//! Pure rules: prices as decimals, a search request read into a [`search::SearchQuery`], time
//! zones.

pub mod price;
pub mod search;

/// Whether `zone` is an IANA time zone name the platform knows (`Europe/Berlin`, `UTC`).
pub fn known_time_zone(zone: &str) -> bool {
    zone.parse::<chrono_tz::Tz>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_are_iana_names() {
        assert!(known_time_zone("Europe/Berlin"));
        assert!(known_time_zone("America/Argentina/Buenos_Aires"));
        assert!(known_time_zone("UTC"));
        assert!(!known_time_zone("Mars/Olympus"));
        assert!(!known_time_zone(""));
    }
}
