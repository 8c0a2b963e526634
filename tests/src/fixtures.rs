//! Known accounts, tokens and geo databases for the end-to-end tests.
//! The geo fixtures are real mmdb files written here, in both layouts ringpath
//! reads: MaxMind GeoIP2 City and DB-IP City Lite.

use std::net::IpAddr;
use std::str::FromStr;

use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use ringpath_enrich::geo::{DbIpCity, MaxMindCity};
use ringpath_types::accounts::AccountsFile;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const DEMO_ACCOUNT: &str = "acc_demo";
pub const DEMO_TOKEN: &str = "demo-token-please-change";
/// The demo account's call-webhook token (`/v1/calls`), never its API token.
pub const DEMO_CALLS_TOKEN: &str = "demo-calls-token-please-change";
pub const OTHER_ACCOUNT: &str = "acc_other";
pub const OTHER_TOKEN: &str = "other-token";
pub const OTHER_CALLS_TOKEN: &str = "other-calls-token";
pub const ALWAYS_ACCOUNT: &str = "acc_always";
pub const ALWAYS_TOKEN: &str = "always-token";
pub const AGENCY: &str = "agc_demo";
pub const AGENCY_TOKEN: &str = "agency-token";

pub const SITE_NUMBER: &str = "+15550100000";
pub const POOL_NUMBERS: [&str; 3] = ["+15550109001", "+15550109002", "+15550109003"];
pub const SOCIAL_NUMBER: &str = "+15550108001";

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The accounts file every end-to-end test runs with.
pub fn accounts_toml() -> String {
    format!(
        r#"
[[account]]
id = "{DEMO_ACCOUNT}"
agency = "{AGENCY}"
token_sha256 = "{demo}"
calls_token_sha256 = "{demo_calls}"
allowed_origins = []
ip_policy = "eu_and_opted_out"
retention_days = 395

[account.dni]
site_numbers = ["{SITE_NUMBER}"]
hold_minutes = 30

[[account.dni.pool]]
id = "paid_search"
when = {{ medium = "cpc" }}
numbers = ["{p0}", "{p1}", "{p2}"]

[[account.dni.source]]
when = {{ channel = "organic_social" }}
number = "{SOCIAL_NUMBER}"

[[account]]
id = "{OTHER_ACCOUNT}"
token_sha256 = "{other}"
calls_token_sha256 = "{other_calls}"
allowed_origins = ["https://other.example"]

[account.dni]
site_numbers = ["+442071838750"]

[[account]]
id = "{ALWAYS_ACCOUNT}"
agency = "{AGENCY}"
token_sha256 = "{always}"
ip_policy = "always"

[[agency]]
id = "{AGENCY}"
token_sha256 = "{agency}"
"#,
        demo = sha256_hex(DEMO_TOKEN),
        demo_calls = sha256_hex(DEMO_CALLS_TOKEN),
        other = sha256_hex(OTHER_TOKEN),
        other_calls = sha256_hex(OTHER_CALLS_TOKEN),
        always = sha256_hex(ALWAYS_TOKEN),
        agency = sha256_hex(AGENCY_TOKEN),
        p0 = POOL_NUMBERS[0],
        p1 = POOL_NUMBERS[1],
        p2 = POOL_NUMBERS[2],
    )
}

pub fn accounts() -> AccountsFile {
    AccountsFile::parse(&accounts_toml()).expect("fixture accounts parse")
}

/// (network, country, EU flag, city, region, lat, long)
pub const GEO_NETWORKS: &[(&str, &str, bool, &str, &str, f64, f64)] = &[
    ("81.2.69.0/24", "GB", false, "London", "England", 51.51, -0.09),
    ("5.9.0.0/16", "DE", true, "Falkenstein", "Saxony", 50.48, 12.37),
    ("178.197.0.0/16", "CH", false, "Zurich", "Zurich", 47.37, 8.54),
    ("89.160.20.0/24", "SE", true, "Linköping", "Östergötland", 58.41, 15.62),
    ("8.8.8.0/24", "US", false, "Mountain View", "California", 37.39, -122.08),
    ("203.0.113.0/24", "US", false, "Austin", "Texas", 30.27, -97.74),
    ("2a01:4f8::/32", "DE", true, "Nuremberg", "Bavaria", 49.45, 11.07),
    ("2001:4860::/32", "US", false, "Mountain View", "California", 37.39, -122.08),
    // Networks smaller than the truncation prefix: only the full address finds
    // them, so a stored country proves the lookup ran before truncation.
    ("198.51.100.77/32", "FR", true, "Paris", "Île-de-France", 48.86, 2.35),
    ("2a02:8070:aaaa:bbbb::/64", "NL", true, "Amsterdam", "North Holland", 52.37, 4.9),
];

fn v6_path(net: &str) -> IpAddrWithMask {
    let (addr, len) = net.split_once('/').expect("cidr");
    let len: u8 = len.parse().expect("prefix");
    match IpAddr::from_str(addr).expect("ip") {
        // IPv4 lives under ::/96 in an IPv6 tree.
        IpAddr::V4(v4) => IpAddrWithMask::new(IpAddr::V6(v4.to_ipv6_compatible()), 96 + len),
        v6 => IpAddrWithMask::new(v6, len),
    }
}

/// A GeoIP2-City-layout database (IPv6 tree) with the fixture networks.
pub fn maxmind_city_mmdb() -> Vec<u8> {
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.database_type = "GeoIP2-City".into();
    db.metadata.languages = vec!["en".into()];
    db.metadata.binary_format_major_version = 2;
    db.metadata.build_epoch = 1_764_374_400;
    for (net, country, eu, city, region, lat, lon) in GEO_NETWORKS {
        let record = json!({
            "country": {"iso_code": country, "is_in_european_union": eu, "names": {"en": country}},
            "city": {"names": {"en": city}},
            "subdivisions": [{"names": {"en": region}}],
            "location": {"latitude": lat, "longitude": lon},
        });
        let data = db.insert_value(record).expect("record serialises");
        db.insert_node(v6_path(net), data);
    }
    db.write_to(Vec::new()).expect("mmdb writes")
}

#[derive(serde::Serialize)]
struct DbIpRecord {
    country_code: &'static str,
    state1: &'static str,
    city: &'static str,
    latitude: f32,
    longitude: f32,
}

/// DB-IP City Lite layout: flat records, separate IPv4 and IPv6 files.
pub fn dbip_city_mmdb() -> (Vec<u8>, Vec<u8>) {
    let build = |v6: bool| {
        let mut db = Database::default();
        db.metadata.ip_version = if v6 { IpVersion::V6 } else { IpVersion::V4 };
        db.metadata.database_type = "DBIP-City-Lite".into();
        db.metadata.binary_format_major_version = 2;
        db.metadata.build_epoch = 1_764_374_400;
        for (net, country, _eu, city, region, lat, lon) in GEO_NETWORKS {
            if net.contains(':') != v6 {
                continue;
            }
            // Coordinates as 32-bit floats, like DB-IP's own files (json! would write doubles).
            let record = DbIpRecord { country_code: country, state1: region, city, latitude: *lat as f32, longitude: *lon as f32 };
            let data = db.insert_value(record).expect("record serialises");
            db.insert_node(IpAddrWithMask::from_str(net).expect("cidr"), data);
        }
        db.write_to(Vec::new()).expect("mmdb writes")
    };
    (build(false), build(true))
}

pub fn fixture_geo() -> MaxMindCity {
    MaxMindCity::from_bytes(maxmind_city_mmdb()).expect("fixture mmdb opens")
}

pub fn fixture_dbip() -> DbIpCity {
    let (v4, v6) = dbip_city_mmdb();
    DbIpCity::from_bytes(v4, v6).expect("fixture dbip opens")
}
