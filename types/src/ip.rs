//! IP truncation (README "ClickHouse tables"): IPv4 to /24, IPv6 to /48, and the list of
//! countries whose visitors are always truncated (EU/EEA, UK, Switzerland).

use std::net::IpAddr;

/// EU member states, the other EEA states (IS, LI, NO), the UK and Switzerland.
/// `GB` and `UK` both appear: DB-IP and MaxMind write `GB`.
pub const TRUNCATE_COUNTRIES: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL",
    "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "GB", "UK", "CH",
];

pub fn is_truncation_country(country_code: &str) -> bool {
    TRUNCATE_COUNTRIES.iter().any(|c| c.eq_ignore_ascii_case(country_code))
}

/// Zeroes the host part: the last octet of IPv4, all but the first 48 bits of
/// IPv6. IPv4-mapped IPv6 addresses are treated as IPv4.
pub fn truncate(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

/// The client an address stands for, for per-client limits (rate, number
/// holds): an IPv4 address itself, an IPv6 address by its /64 (one
/// subscriber's prefix: hosts in it pick new addresses at will).
pub fn client(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let c = |s: &str| client(s.parse().unwrap()).to_string();
        assert_eq!(c("203.0.113.9"), "203.0.113.9");
        assert_eq!(c("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(c("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(c("2001:db8:1:2::1"), c("2001:db8:1:2:ffff::9"), "one /64, one client");
        assert_ne!(c("2001:db8:1:2::1"), c("2001:db8:1:3::1"));
    }

    fn t(s: &str) -> String {
        truncate(s.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv4_keeps_24_bits() {
        assert_eq!(t("81.2.69.142"), "81.2.69.0");
    }

    #[test]
    fn ipv6_keeps_48_bits() {
        assert_eq!(t("2a02:1234:5678:9abc::1"), "2a02:1234:5678::");
    }

    #[test]
    fn mapped_ipv4_is_truncated_as_ipv4() {
        assert_eq!(t("::ffff:81.2.69.142"), "81.2.69.0");
    }

    #[test]
    fn eu_uk_and_swiss_visitors_are_truncated() {
        for c in ["DE", "fr", "GB", "CH", "NO"] {
            assert!(is_truncation_country(c), "{c}");
        }
        for c in ["US", "CA", "", "RU"] {
            assert!(!is_truncation_country(c), "{c}");
        }
    }
}
