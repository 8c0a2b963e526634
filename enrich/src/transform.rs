//! From a collector message to a stored row: geo lookup on the full IP, then
//! IP truncation, traffic classification and user-agent reading. Pure apart
//! from the `GeoLookup` it is handed; nothing here writes anywhere.

use std::net::IpAddr;

use ringpath_store::rows::{AssignmentRow, EventRow};
use ringpath_types::accounts::{Account, AccountsFile, IpPolicy};
use ringpath_types::ip::{is_truncation_country, truncate};
use ringpath_types::wire::{AssignmentMessage, CallMessage, Consent, EventMessage};
use ringpath_types::{classify, url, VisitSource};

use crate::geo::{GeoInfo, GeoLookup};

/// The stored form of a client IP and the geo found for the full address.
pub struct Located {
    pub ip: String,
    pub truncated: bool,
    pub geo: GeoInfo,
}

/// README "ClickHouse tables": truncate when the policy says always, the visitor has not
/// granted consent, or geo places them in the EU/EEA, UK or Switzerland.
pub fn locate(raw_ip: &str, consent: Consent, policy: IpPolicy, geo: &dyn GeoLookup) -> Located {
    let Ok(ip) = raw_ip.parse::<IpAddr>() else {
        // Not an address: store nothing rather than something unparseable.
        return Located { ip: String::new(), truncated: true, geo: GeoInfo::default() };
    };
    let info = geo.lookup(ip);
    // Fails closed: a country the database does not know (no geo, a miss, a
    // private address) may be an EU one, so it is truncated too.
    let must_truncate =
        policy == IpPolicy::Always || consent != Consent::Granted || info.in_eu || info.country.is_empty() || is_truncation_country(&info.country);
    let stored = if must_truncate { truncate(ip) } else { ringpath_types::ip::canonical(ip) };
    Located { ip: stored.to_string(), truncated: must_truncate, geo: info }
}

/// How far a client or provider timestamp may sit from the collector's clock
/// before it is replaced by `received_at`. Ingest already rejects wilder
/// values; this guards against any other producer, because one batch spanning
/// more than 100 months would make ClickHouse refuse the insert for good.
pub const MAX_EVENT_SKEW_MS: i64 = 31 * 24 * 3600 * 1000;
pub const MAX_CALL_AGE_MS: i64 = 400 * 24 * 3600 * 1000;
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;

/// `ts` if it lies within [received - max_past, received + MAX_FUTURE_MS], else `received`.
pub fn plausible_ms(ts: i64, received: i64, max_past: i64) -> i64 {
    if ts < received.saturating_sub(max_past) || ts > received.saturating_add(MAX_FUTURE_MS) {
        received
    } else {
        ts
    }
}

/// Truncates every IP address found in free text (dead letters): IPv4 to /24,
/// IPv6 to /48, `ip:port` included. Anything that is not an address is kept.
pub fn scrub_ips(text: &str) -> String {
    let is_ip_char = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_ip_char) {
        out.push_str(&rest[..start]);
        let run_len = rest[start..].find(|c: char| !is_ip_char(c)).unwrap_or(rest.len() - start);
        let run = &rest[start..start + run_len];
        if run.contains(['.', ':']) {
            match run.parse::<IpAddr>() {
                Ok(ip) => out.push_str(&truncate(ip).to_string()),
                // `1.2.3.4:8080` and other glued forms: truncate each IPv4 piece.
                Err(_) => {
                    let pieces: Vec<String> = run
                        .split(':')
                        .map(|piece| piece.parse::<std::net::Ipv4Addr>().map(|v4| truncate(IpAddr::V4(v4)).to_string()).unwrap_or_else(|_| piece.to_owned()))
                        .collect();
                    out.push_str(&pieces.join(":"));
                }
            }
        } else {
            out.push_str(run);
        }
        rest = &rest[start + run_len..];
    }
    out.push_str(rest);
    out
}

fn secs(ms: i64) -> u32 {
    (ms.max(0) / 1000).min(u32::MAX as i64) as u32
}

fn click(vs: &VisitSource, p: &str) -> String {
    vs.click_id(p).unwrap_or("").to_owned()
}

/// First click id of a visit as (type, value), for the calls table.
pub fn first_click(vs: &VisitSource) -> (String, String) {
    vs.click_ids.first().map(|(p, v)| ((*p).to_owned(), v.clone())).unwrap_or_default()
}

pub fn event_row(msg: &EventMessage, account: &Account, geo: &dyn GeoLookup) -> EventRow {
    let loc = locate(&msg.received.ip, msg.consent, account.ip_policy, geo);
    let e = &msg.event;
    let ts = plausible_ms(e.ts, msg.received.received_at, MAX_EVENT_SKEW_MS);
    let referrer = e.referrer.clone().unwrap_or_default();
    // None: a same-site referrer, which continues the session's source.
    let visit = classify(&e.url, &referrer);
    let vs = visit.clone().unwrap_or_default();
    let ua = ringpath_types::ua::parse(&msg.received.user_agent);
    EventRow {
        account_id: msg.account.clone(),
        event_id: e.id.clone(),
        event_type: e.kind.clone(),
        ts: secs(ts),
        ts_ms: ts.max(0) as u64,
        received_at: secs(msg.received.received_at),
        visitor_id: msg.visitor_id.clone().unwrap_or_default(),
        session_id: msg.session_id.clone().unwrap_or_default(),
        page_id: msg.page_id.clone().unwrap_or_default(),
        consent: msg.consent.as_str().to_owned(),
        ip: loc.ip,
        ip_truncated: u8::from(loc.truncated),
        country: loc.geo.country,
        region: loc.geo.region,
        city: loc.geo.city,
        latitude: loc.geo.latitude,
        longitude: loc.geo.longitude,
        url: e.url.clone(),
        path: url::split(&e.url).map(|p| p.path.to_owned()).unwrap_or_default(),
        referrer,
        referrer_host: vs.referrer_host.clone(),
        title: e.title.clone().unwrap_or_default(),
        channel: visit.as_ref().map(|v| v.channel().as_str().to_owned()).unwrap_or_default(),
        source: vs.source.clone(),
        medium: vs.medium.clone(),
        campaign: vs.campaign.clone(),
        term: vs.term.clone(),
        content: vs.content.clone(),
        gclid: click(&vs, "gclid"),
        gbraid: click(&vs, "gbraid"),
        wbraid: click(&vs, "wbraid"),
        fbclid: click(&vs, "fbclid"),
        msclkid: click(&vs, "msclkid"),
        ttclid: click(&vs, "ttclid"),
        li_fat_id: click(&vs, "li_fat_id"),
        number: e.number.clone().unwrap_or_default(),
        props: serde_json::to_string(&e.props).unwrap_or_else(|_| "{}".into()),
        user_agent: msg.received.user_agent.clone(),
        browser: ua.browser.to_owned(),
        os: ua.os.to_owned(),
        device: ua.device.to_owned(),
        is_bot: u8::from(ua.is_bot),
        screen: msg.screen.clone().unwrap_or_default(),
        lang: msg.lang.clone().unwrap_or_default(),
        tz: msg.tz.clone().unwrap_or_default(),
        version: msg.received.received_at.max(0) as u64,
    }
}

pub fn assignment_row(msg: &AssignmentMessage, account: &Account, geo: &dyn GeoLookup) -> AssignmentRow {
    // Assignments exist only with consent (session-level numbers).
    let loc = locate(&msg.received.ip, Consent::Granted, account.ip_policy, geo);
    let referrer = msg.referrer.clone().unwrap_or_default();
    let vs = classify(&msg.url, &referrer).unwrap_or_default();
    let (click_id_type, click_id) = first_click(&vs);
    AssignmentRow {
        account_id: msg.account.clone(),
        number: msg.number.clone(),
        kind: match msg.kind {
            ringpath_types::wire::NumberKind::Session => "session",
            ringpath_types::wire::NumberKind::Source => "source",
            ringpath_types::wire::NumberKind::Site => "site",
        }
        .to_owned(),
        pool_id: msg.pool_id.clone().unwrap_or_default(),
        session_id: msg.session_id.clone(),
        visitor_id: msg.visitor_id.clone().unwrap_or_default(),
        assigned_at: secs(msg.assigned_at),
        assigned_ms: msg.assigned_at.max(0) as u64,
        expires_ms: msg.expires_at.max(0) as u64,
        shared: u8::from(msg.shared),
        ip: loc.ip,
        ip_truncated: u8::from(loc.truncated),
        country: loc.geo.country,
        url: msg.url.clone(),
        referrer,
        referrer_host: vs.referrer_host.clone(),
        channel: if vs.channel.is_some() { vs.channel().as_str().to_owned() } else { String::new() },
        source: vs.source.clone(),
        medium: vs.medium.clone(),
        campaign: vs.campaign.clone(),
        term: vs.term.clone(),
        content: vs.content.clone(),
        click_id_type,
        click_id,
        version: msg.received.received_at.max(0) as u64,
    }
}

/// The topic a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Events,
    Assignments,
    Calls,
}

/// A collector message, decoded: a row to store, a call to attribute, or a
/// dead letter (stage, reason, account) for a message that can never be stored.
#[derive(Debug)]
pub enum Decoded {
    Event(Box<EventRow>),
    Assignment(Box<AssignmentRow>),
    Call(Box<CallMessage>),
    Dead { stage: &'static str, reason: String, account: Option<String> },
}

/// Decodes one message of `topic` against the accounts file.
pub fn decode(topic: Topic, payload: &[u8], accounts: &AccountsFile, geo: &dyn GeoLookup) -> Decoded {
    let dead = |stage, reason: String, account: Option<&str>| Decoded::Dead { stage, reason, account: account.map(str::to_owned) };
    match topic {
        Topic::Events => match serde_json::from_slice::<EventMessage>(payload) {
            Ok(msg) => match accounts.account(&msg.account) {
                Some(acc) => Decoded::Event(Box::new(event_row(&msg, acc, geo))),
                None => dead("enrich:events", format!("unknown account {}", msg.account), Some(&msg.account)),
            },
            Err(e) => dead("enrich:events", format!("unparseable event message: {e}"), None),
        },
        Topic::Assignments => match serde_json::from_slice::<AssignmentMessage>(payload) {
            Ok(msg) => match accounts.account(&msg.account) {
                Some(acc) => Decoded::Assignment(Box::new(assignment_row(&msg, acc, geo))),
                None => dead("enrich:assignments", format!("unknown account {}", msg.account), Some(&msg.account)),
            },
            Err(e) => dead("enrich:assignments", format!("unparseable assignment message: {e}"), None),
        },
        Topic::Calls => match serde_json::from_slice::<CallMessage>(payload) {
            Ok(msg) if accounts.account(&msg.account).is_some() => Decoded::Call(Box::new(msg)),
            Ok(msg) => dead("enrich:calls", format!("unknown account {}", msg.account), Some(&msg.account)),
            Err(e) => dead("enrich:calls", format!("unparseable call message: {e}"), None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::NoGeo;

    struct FixedGeo(&'static str);
    impl GeoLookup for FixedGeo {
        fn lookup(&self, _ip: IpAddr) -> GeoInfo {
            GeoInfo { country: self.0.into(), ..GeoInfo::default() }
        }
    }

    #[test]
    fn undecodable_and_unknown_account_messages_become_dead_letters_with_a_reason() {
        let accounts = AccountsFile::parse(&format!("[[account]]\nid = \"acc_demo\"\ntoken_sha256 = \"{}\"\n", "0".repeat(64))).unwrap();
        let reason = |topic, payload: &[u8]| match decode(topic, payload, &accounts, &NoGeo) {
            Decoded::Dead { stage, reason, account } => (stage, reason, account),
            other => panic!("{other:?}"),
        };
        let (stage, why, account) = reason(Topic::Events, b"\x00 not json");
        assert_eq!((stage, account), ("enrich:events", None));
        assert!(why.starts_with("unparseable event message: expected value"), "{why}");
        assert!(reason(Topic::Assignments, b"[]").1.starts_with("unparseable assignment message: invalid type"));
        let call = br#"{"account":"acc_nope","call":{"call_id":"C","to":"+15550100000","from":"+15557654321","started_at":"2026-11-29T10:00:00Z","duration_s":1,"status":"completed"},"received_at":1,"ip":"","user_agent":""}"#;
        assert_eq!(reason(Topic::Calls, call), ("enrich:calls", "unknown account acc_nope".to_owned(), Some("acc_nope".to_owned())));
        let known = String::from_utf8_lossy(call).replace("acc_nope", "acc_demo");
        assert!(matches!(decode(Topic::Calls, known.as_bytes(), &accounts, &NoGeo), Decoded::Call(_)));
    }

    #[test]
    fn us_visitor_with_consent_keeps_full_ip() {
        let l = locate("8.8.8.8", Consent::Granted, IpPolicy::EuAndOptedOut, &FixedGeo("US"));
        assert_eq!((l.ip.as_str(), l.truncated), ("8.8.8.8", false));
    }

    #[test]
    fn eu_uk_swiss_visitors_are_truncated_after_geo() {
        for c in ["DE", "GB", "CH", "NO"] {
            let l = locate("81.2.69.142", Consent::Granted, IpPolicy::EuAndOptedOut, &FixedGeo(c));
            assert_eq!(l.ip, "81.2.69.0", "{c}");
            assert_eq!(l.geo.country, c, "geo used the full IP");
        }
    }

    #[test]
    fn an_unknown_country_is_truncated_fail_closed() {
        // No geo at all, a database miss, a private address: any of them may be an EU visitor.
        for ip in ["8.8.8.8", "10.1.2.3", "2001:db8:1:2::5"] {
            let l = locate(ip, Consent::Granted, IpPolicy::EuAndOptedOut, &NoGeo);
            assert!(l.truncated, "{ip}");
            assert_eq!(l.ip, truncate(ip.parse().unwrap()).to_string(), "{ip}");
        }
        assert_eq!(locate("8.8.8.8", Consent::Granted, IpPolicy::EuAndOptedOut, &FixedGeo("")).ip, "8.8.8.0");
    }

    #[test]
    fn no_consent_or_always_policy_truncates_everyone() {
        assert_eq!(locate("8.8.8.8", Consent::Pending, IpPolicy::EuAndOptedOut, &FixedGeo("US")).ip, "8.8.8.0");
        assert_eq!(locate("8.8.8.8", Consent::Denied, IpPolicy::EuAndOptedOut, &NoGeo).ip, "8.8.8.0");
        assert_eq!(locate("2001:db8:1:2::5", Consent::Granted, IpPolicy::Always, &FixedGeo("US")).ip, "2001:db8:1::");
    }

    #[test]
    fn dead_letters_keep_no_whole_ip() {
        let raw = r#"{"account":"x","ip":"81.2.69.142","via":"5.9.10.11:8080","v6":"2a01:4f8:1:2::5","mapped":"::ffff:89.160.20.7","ua":"Chrome/131.0.6778.86 Safari/537.36","t":1764374400000}"#;
        let clean = scrub_ips(raw);
        for whole in ["81.2.69.142", "5.9.10.11", "2a01:4f8:1:2::5", "89.160.20.7"] {
            assert!(!clean.contains(whole), "{whole} left in {clean}");
        }
        assert!(clean.contains(r#""ip":"81.2.69.0""#), "{clean}");
        assert!(clean.contains(r#""via":"5.9.10.0:8080""#), "{clean}");
        assert!(clean.contains("2a01:4f8:1::"), "{clean}");
        assert!(clean.contains("Chrome/131.0.6778.86 Safari/537.36") && clean.contains("1764374400000"), "non-addresses kept: {clean}");
        assert_eq!(scrub_ips("not json at all: deadbeef"), "not json at all: deadbeef");
    }

    #[test]
    fn implausible_timestamps_fall_back_to_the_collectors_clock() {
        let received = 1_764_374_400_000;
        assert_eq!(plausible_ms(received - 3_600_000, received, MAX_EVENT_SKEW_MS), received - 3_600_000);
        assert_eq!(plausible_ms(0, received, MAX_EVENT_SKEW_MS), received);
        assert_eq!(plausible_ms(received + 400 * 86_400_000, received, MAX_EVENT_SKEW_MS), received);
        assert_eq!(plausible_ms(received - 200 * 86_400_000, received, MAX_CALL_AGE_MS), received - 200 * 86_400_000);
    }

    #[test]
    fn garbage_ip_is_not_stored() {
        let l = locate("not-an-ip", Consent::Granted, IpPolicy::EuAndOptedOut, &NoGeo);
        assert_eq!(l.ip, "");
    }
}
