//! An account's time zone (`timezone` in the accounts file, IANA, UTC when
//! unset), checked against the tz database with `jiff`, and bucket starts
//! written as RFC 3339 with that zone's offset at the instant. ClickHouse
//! does the bucketing itself (`toStartOfHour(t, zone)`); this module only
//! names the zone it is handed and prints the answers. No IO beyond jiff's
//! reading of the tz database.

use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// A zone the tz database knows, under its canonical IANA name.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

/// A `timezone` that names no zone of the tz database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not an IANA time zone")]
pub struct UnknownZone {
    pub name: String,
}

impl Zone {
    /// The zone `name` names, or UTC for none. The name is looked up case
    /// insensitively and kept as the database spells it, which is what
    /// ClickHouse (reading files by name) needs.
    pub fn parse(name: Option<&str>) -> Result<Zone, UnknownZone> {
        let Some(name) = name else { return Ok(Zone { name: "UTC".to_owned(), tz: TimeZone::UTC }) };
        let unknown = || UnknownZone { name: name.to_owned() };
        let tz = TimeZone::get(name).map_err(|_| unknown())?;
        let canonical = tz.iana_name().ok_or_else(unknown)?.to_owned();
        Ok(Zone { name: canonical, tz })
    }

    /// The IANA name, as answers show it and ClickHouse is given it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// RFC 3339 of `epoch_s` in this zone (`2026-03-29T00:00:00+01:00`); `Z`
    /// where the offset is zero, as for UTC itself.
    pub fn rfc3339(&self, epoch_s: i64) -> String {
        let Ok(at) = Timestamp::from_second(epoch_s) else { return ringpath_types::time::format_rfc3339_ms(epoch_s.saturating_mul(1000)) };
        let offset = self.tz.to_offset(at);
        if offset == Offset::UTC {
            return at.to_string();
        }
        at.display_with_offset(offset).to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        Zone::parse(Some(name)).unwrap()
    }

    #[test]
    fn bucket_starts_carry_the_zones_offset_at_that_instant() {
        // 2026-03-29: Berlin goes from CET to CEST at 01:00 UTC.
        assert_eq!(zone("Europe/Berlin").rfc3339(1_774_738_800), "2026-03-29T00:00:00+01:00");
        assert_eq!(zone("Europe/Berlin").rfc3339(1_774_738_800 + 86_400 - 3_600), "2026-03-30T00:00:00+02:00");
        assert_eq!(zone("Asia/Kolkata").rfc3339(1_774_744_200), "2026-03-29T06:00:00+05:30");
        assert_eq!(zone("Pacific/Honolulu").rfc3339(1_774_764_000), "2026-03-28T20:00:00-10:00");
        assert_eq!(zone("Asia/Kathmandu").rfc3339(1_774_742_400), "2026-03-29T05:45:00+05:45");
    }

    #[test]
    fn a_zero_offset_is_written_z() {
        assert_eq!(Zone::parse(None).unwrap().rfc3339(1_774_742_400), "2026-03-29T00:00:00Z");
        assert_eq!(zone("UTC").rfc3339(1_774_742_400), "2026-03-29T00:00:00Z");
        // London is on UTC in winter, an hour ahead in summer.
        assert_eq!(zone("Europe/London").rfc3339(1_794_268_800), "2026-11-10T00:00:00Z");
        assert_eq!(zone("Europe/London").rfc3339(1_782_860_400), "2026-07-01T00:00:00+01:00");
    }

    #[test]
    fn zones_are_checked_against_the_tz_database_and_named_as_it_spells_them() {
        assert_eq!(Zone::parse(None).unwrap().name(), "UTC");
        assert_eq!(zone("europe/berlin").name(), "Europe/Berlin");
        for bad in ["Europe/Nowhere", "", "../../etc/passwd", "UTC' OR '1'='1", "+05:30", "Europe/Berlin\n"] {
            assert_eq!(Zone::parse(Some(bad)).unwrap_err(), UnknownZone { name: bad.to_owned() }, "{bad:?}");
        }
    }
}
