//! Geo-IP with real mmdb files on disk, in both layouts enrich reads
//! (MaxMind GeoIP2/GeoLite2 City and DB-IP City Lite), opened the way
//! `ringpath-enrich run` opens them; and what happens when a file is missing.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ringpath_enrich::geo::{self, GeoInfo, GeoLookup};
use ringpath_enrich::settings::{GeoSource, Settings};
use ringpath_tests::fixtures::*;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rp-geo-{tag}-{}", ringpath_tests::unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An address inside each fixture network (the network address + 1, or itself for /32).
fn inside(net: &str) -> IpAddr {
    let (addr, len) = net.split_once('/').unwrap();
    let ip: IpAddr = addr.parse().unwrap();
    match (ip, len) {
        (IpAddr::V4(v4), "32") => IpAddr::V4(v4),
        (IpAddr::V4(v4), _) => IpAddr::V4((u32::from(v4) + 1).into()),
        (IpAddr::V6(v6), _) => IpAddr::V6((u128::from(v6) + 1).into()),
    }
}

fn check_every_fixture_network(layout: &str, geo: &dyn GeoLookup) {
    for (net, country, eu, city, region, lat, lon) in GEO_NETWORKS {
        let got = geo.lookup(inside(net));
        assert_eq!((got.country.as_str(), got.city.as_str(), got.region.as_str()), (*country, *city, *region), "{layout} {net}");
        assert!((f64::from(got.latitude) - lat).abs() < 0.01 && (f64::from(got.longitude) - lon).abs() < 0.01, "{layout} {net}: {got:?}");
        if layout == "maxmind" {
            assert_eq!(got.in_eu, *eu, "{layout} {net}: the database's own EU flag");
        }
    }
    // Outside every network: nothing, not an error.
    assert_eq!(geo.lookup("192.0.2.1".parse().unwrap()), GeoInfo::default(), "{layout}");
    assert_eq!(geo.lookup("2001:db8::1".parse().unwrap()), GeoInfo::default(), "{layout}");
    // IPv4-mapped IPv6 (what a dual-stack socket reports) finds the IPv4 record.
    assert_eq!(geo.lookup("::ffff:81.2.69.142".parse().unwrap()).city, "London", "{layout}");
}

#[test]
fn a_maxmind_city_file_gives_country_region_city_and_position() {
    let dir = temp_dir("mm");
    let path = dir.join("GeoLite2-City.mmdb");
    std::fs::write(&path, maxmind_city_mmdb()).unwrap();
    let geo = geo::from_settings(&GeoSource::MaxMind(path)).unwrap();
    check_every_fixture_network("maxmind", geo.as_ref());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dbip_city_lite_files_give_country_region_city_and_position() {
    let dir = temp_dir("dbip");
    let (v4, v6) = dbip_city_mmdb();
    let (p4, p6) = (dir.join("dbip-city-ipv4.mmdb"), dir.join("dbip-city-ipv6.mmdb"));
    std::fs::write(&p4, v4).unwrap();
    std::fs::write(&p6, v6).unwrap();
    let geo = geo::from_settings(&GeoSource::DbIp { v4: p4.clone(), v6: p6 }).unwrap();
    check_every_fixture_network("dbip", geo.as_ref());
    // Only the IPv4 file configured: a start-up error (IPv6 visitors would have no country).
    let env = HashMap::from([("RINGPATH_GEOIP_DBIP_V4".to_string(), p4.display().to_string())]);
    let err = Settings::from_env(&env).unwrap_err().to_string();
    assert!(err.contains("RINGPATH_GEOIP_DBIP_V6"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn no_geo_database_configured_is_a_clear_startup_error() {
    let err = Settings::from_env(&Default::default()).unwrap_err().to_string();
    for hint in ["RINGPATH_GEOIP_CITY", "RINGPATH_GEOIP_DBIP_V4", "RINGPATH_GEOIP=off"] {
        assert!(err.contains(hint), "{err}");
    }
}

#[test]
fn a_configured_geo_file_that_is_missing_or_not_an_mmdb_names_the_file() {
    let dir = temp_dir("bad");
    let missing = dir.join("GeoLite2-City.mmdb");
    let err = geo::from_settings(&GeoSource::MaxMind(missing.clone())).err().expect("missing file is an error").to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let garbage = dir.join("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a MaxMind DB").unwrap();
    let err = geo::from_settings(&GeoSource::DbIp { v4: garbage.clone(), v6: garbage.clone() }).err().expect("garbage is an error").to_string();
    assert!(err.contains(&garbage.display().to_string()), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

