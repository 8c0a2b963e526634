//! Synthetic data for demos and benchmarks: visitors with a realistic mix of
//! channels, pool and source-level numbers, consent states, EU and non-EU
//! visitors, bots, and calls attributed the way enrich attributes them.
//! Rows are made by enrich's own `transform` and `attribution` code, so they
//! look exactly like what the pipeline stores. Pure and seeded: the same
//! options give the same rows. Loading (ClickHouse or the collector) is the
//! caller's job.

use std::net::{IpAddr, Ipv4Addr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringpath_enrich::attribution::{self, SessionEvidence, Target};
use ringpath_enrich::geo::{GeoInfo, GeoLookup};
use ringpath_enrich::transform;
use ringpath_store::rows::{AssignmentRow, CallRow, EventRow, SessionTouch};
use ringpath_types::accounts::Account;
use ringpath_types::wire::{AssignmentMessage, CallMessage, CallRecord, CallStatus, Consent, Event, EventMessage, NumberKind, Received};
use serde_json::{json, Map};

#[derive(Debug, Clone)]
pub struct Options {
    pub account: Account,
    /// Stop after about this many events (the last visitor is finished).
    pub events: u64,
    /// Exactly this many calls.
    pub calls: u64,
    /// Sessions start in the `days` before `end_ms`.
    pub days: u32,
    pub end_ms: i64,
    pub seed: u64,
    /// The site's origin, e.g. `https://demo.example`.
    pub site: String,
    /// Also build collector batches (`Rows::batches`), for loading through ingest.
    pub collector_batches: bool,
}

/// Rows for one or more visitors, ready to insert.
#[derive(Debug, Default)]
pub struct Rows {
    pub events: Vec<EventRow>,
    pub assignments: Vec<AssignmentRow>,
    pub calls: Vec<CallRow>,
    /// The same visits as the collector would receive them (for `--ingest`).
    pub batches: Vec<serde_json::Value>,
}

/// (country, share %, first octet of its made-up addresses)
const COUNTRIES: &[(&str, u32, u8)] = &[
    ("US", 44, 23),
    ("CA", 5, 24),
    ("GB", 10, 81),
    ("DE", 12, 85),
    ("FR", 7, 86),
    ("NL", 4, 87),
    ("SE", 3, 89),
    ("CH", 3, 178),
    ("AU", 5, 101),
    ("IN", 7, 103),
];

const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
];

const BOT_UAS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "python-requests/2.32.3",
];

const LANDINGS: &[&str] = &["/", "/", "/", "/pricing", "/services/plumbing", "/services/drain-cleaning", "/emergency", "/blog/fix-a-leaking-tap", "/locations/austin", "/contact"];
const INNER: &[&str] = &["/pricing", "/contact", "/about", "/services/plumbing", "/services/water-heaters", "/reviews", "/book", "/faq"];
const CAMPAIGNS: &[&str] = &["Brand", "Plumbing_Generic", "Emergency_24h", "Water_Heaters"];
const REFERRALS: &[&str] = &["https://www.yelp.com/biz/demo", "https://www.angi.com/companylist/demo.htm", "https://localnews.example/best-plumbers", "https://www.bbb.org/us/tx/austin/demo"];
const FIRST_NAMES: &[&str] = &["ALEX SMITH", "J GARCIA", "WIRELESS CALLER", "M JOHNSON", "P NGUYEN", ""];
const CITIES: &[&str] = &["AUSTIN TX", "ROUND ROCK TX", "DALLAS TX", "", "SAN MARCOS TX"];

/// Geo for the generator's made-up addresses: the first octet names the country.
pub struct SynthGeo;

impl GeoLookup for SynthGeo {
    fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let IpAddr::V4(v4) = ip else { return GeoInfo::default() };
        let octet = v4.octets()[0];
        match COUNTRIES.iter().find(|c| c.2 == octet) {
            Some((country, _, _)) => GeoInfo { country: (*country).to_owned(), ..GeoInfo::default() },
            None => GeoInfo::default(),
        }
    }
}

pub struct Generator {
    opts: Options,
    rng: StdRng,
    events_made: u64,
    session_calls_made: u64,
    other_calls_made: u64,
    pool_sessions_seen: u64,
    serial: u64,
}

/// One session as the generator planned it.
struct Visit {
    touch: SessionTouch,
    assignment: Option<AssignmentRow>,
    end_ms: i64,
}

impl Generator {
    pub fn new(opts: Options) -> Generator {
        let rng = StdRng::seed_from_u64(opts.seed);
        Generator { opts, rng, events_made: 0, session_calls_made: 0, other_calls_made: 0, pool_sessions_seen: 0, serial: 0 }
    }

    pub fn events_made(&self) -> u64 {
        self.events_made
    }

    /// Calls credited to sessions: about 55% of all calls.
    fn session_call_target(&self) -> u64 {
        self.opts.calls * 55 / 100
    }

    fn id(&mut self, prefix: &str, len: usize) -> String {
        self.serial += 1;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut s = String::with_capacity(prefix.len() + len);
        s.push_str(prefix);
        for _ in 0..len {
            s.push(ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char);
        }
        s
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// A session start in the window, busier in the local daytime.
    fn start_time(&mut self) -> i64 {
        let span = i64::from(self.opts.days.max(1)) * 86_400_000;
        loop {
            let t = self.opts.end_ms - span + self.rng.random_range(0..span - 3_600_000);
            let hour = (t / 3_600_000).rem_euclid(24);
            // UTC 13-03h is US daytime; nights are quieter but not empty.
            let weight = if (13..=23).contains(&hour) || hour <= 3 { 1.0 } else { 0.35 };
            if self.chance(weight) {
                return t;
            }
        }
    }

    /// (landing url, referrer) for a new session of a given kind.
    fn source(&mut self, landing: &str) -> (String, String) {
        let site = self.opts.site.clone();
        let roll = self.rng.random_range(0..100);
        match roll {
            0..=17 => {
                let campaign = self.pick(CAMPAIGNS);
                let gclid = self.id("Cj0K", 20);
                (format!("{site}{landing}?utm_source=google&utm_medium=cpc&utm_campaign={campaign}&gclid={gclid}"), "https://www.google.com/".into())
            }
            18..=21 => {
                let campaign = self.pick(CAMPAIGNS);
                let msclkid = self.id("", 32);
                (format!("{site}{landing}?utm_source=bing&utm_medium=cpc&utm_campaign={campaign}&msclkid={msclkid}"), "https://www.bing.com/".into())
            }
            22..=45 => {
                let engine = self.pick(&["https://www.google.com/", "https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"]);
                (format!("{site}{landing}"), engine.into())
            }
            46..=65 => (format!("{site}{landing}"), String::new()),
            66..=74 => {
                let network = self.pick(&["https://www.facebook.com/", "https://t.co/abc", "https://www.linkedin.com/", "https://www.instagram.com/"]);
                (format!("{site}{landing}"), network.into())
            }
            75..=78 => {
                let fbclid = self.id("IwAR", 24);
                (format!("{site}{landing}?utm_source=facebook&utm_medium=paid_social&utm_campaign=Winter_Promo&fbclid={fbclid}"), "https://m.facebook.com/".into())
            }
            79..=85 => (format!("{site}{landing}?utm_source=newsletter&utm_medium=email&utm_campaign=Nov_Newsletter"), String::new()),
            _ => {
                let r = self.pick(REFERRALS);
                (format!("{site}{landing}"), r.into())
            }
        }
    }

    fn visit_source(url: &str, referrer: &str) -> ringpath_types::VisitSource {
        ringpath_types::classify(url, referrer).unwrap_or_default()
    }

    /// Rows for the next visitor; `None` once the event budget is spent.
    pub fn next_visitor(&mut self) -> Option<Rows> {
        if self.events_made >= self.opts.events {
            return None;
        }
        let mut out = Rows::default();
        let account = self.opts.account.clone();
        let country_roll = self.rng.random_range(0..100);
        let mut acc = 0;
        let mut octet = COUNTRIES[0].2;
        let mut country = COUNTRIES[0].0;
        for (c, share, o) in COUNTRIES {
            acc += share;
            if country_roll < acc {
                octet = *o;
                country = c;
                break;
            }
        }
        let eu = ringpath_types::ip::is_truncation_country(country);
        let ip = Ipv4Addr::new(octet, self.rng.random_range(0..=255), self.rng.random_range(0..=255), self.rng.random_range(1..=254)).to_string();
        let bot = self.chance(0.03);
        let consent = if bot {
            Consent::Pending
        } else {
            let r: f64 = self.rng.random();
            let (g, p) = if eu { (0.5, 0.3) } else { (0.7, 0.2) };
            if r < g {
                Consent::Granted
            } else if r < g + p {
                Consent::Pending
            } else {
                Consent::Denied
            }
        };
        let user_agent = if bot { self.pick(BOT_UAS) } else { self.pick(UAS) }.to_owned();
        let granted = consent == Consent::Granted;
        let visitor_id = if granted { Some(self.id("v", 21)) } else { None };
        let sessions = if bot || !granted {
            1
        } else {
            match self.rng.random_range(0..100) {
                0..=64 => 1,
                65..=84 => 2,
                85..=94 => 3,
                _ => self.rng.random_range(4..=6),
            }
        };
        let lang = if eu { "de-DE" } else { "en-US" };
        let mut visits: Vec<Visit> = Vec::new();
        let mut t = self.start_time();
        for _ in 0..sessions {
            if t >= self.opts.end_ms - 60_000 {
                break;
            }
            let visit = self.session(&account, &mut out, &visitor_id, consent, &ip, &user_agent, bot, lang, t);
            let ended = visit.end_ms;
            visits.push(visit);
            t = ended + self.rng.random_range(3_600_000..7 * 86_400_000);
        }
        // Calls from this visitor's pool sessions (last touch), with first touch and linear over the visitor's sessions.
        for i in 0..visits.len() {
            let Some(holder) = visits[i].assignment.clone() else { continue };
            self.pool_sessions_seen += 1;
            if !self.wants_session_call() {
                continue;
            }
            let started = (visits[i].touch.started_ms as i64 + self.rng.random_range(60_000..25 * 60_000)).min(self.opts.end_ms - 1);
            let lookback_from = (started as u64).saturating_sub(attribution::LINEAR_LOOKBACK_MS);
            let history: Vec<SessionTouch> = visits[..=i].iter().map(|v| v.touch.clone()).filter(|s| s.started_ms >= lookback_from && !s.channel.is_empty()).collect();
            let mut row = self.call_base(&account, &holder.number, started);
            credit_session(&mut row, &holder, &visits[i].touch, &history);
            self.session_calls_made += 1;
            out.calls.push(row);
        }
        Some(out)
    }

    /// Keeps session-credited calls on course for their share of `calls`.
    fn wants_session_call(&mut self) -> bool {
        let target = self.session_call_target();
        if self.session_calls_made >= target {
            return false;
        }
        // Pool sessions seen per event so far predicts how many are still to come.
        let rate = if self.events_made > 2_000 { self.pool_sessions_seen as f64 / self.events_made as f64 } else { 0.04 };
        let remaining_sessions = (self.opts.events.saturating_sub(self.events_made) as f64 * rate).max(1.0);
        let p = (target - self.session_calls_made) as f64 / remaining_sessions;
        self.chance(p)
    }

    #[allow(clippy::too_many_arguments)]
    fn session(&mut self, account: &Account, out: &mut Rows, visitor_id: &Option<String>, consent: Consent, ip: &str, ua: &str, bot: bool, lang: &str, start: i64) -> Visit {
        let granted = consent == Consent::Granted;
        let session_id = if granted { Some(self.id("s", 21)) } else { None };
        let landing = self.pick(LANDINGS);
        let (url, referrer) = if bot { (format!("{}{landing}", self.opts.site), String::new()) } else { self.source(landing) };
        let vs = Self::visit_source(&url, &referrer);
        // The number this visit sees: a pool number (consent only), a source-level number, else the site's.
        let pool = if granted { account.dni.pool_for(&vs) } else { None };
        let mut assignment = None;
        let number = if let Some(pool) = pool {
            let number = pool.numbers[self.rng.random_range(0..pool.numbers.len())].clone();
            let hold = i64::from(account.dni.hold_minutes) * 60_000;
            let msg = AssignmentMessage {
                account: account.id.clone(),
                number: number.clone(),
                kind: NumberKind::Session,
                pool_id: Some(pool.id.clone()),
                session_id: session_id.clone().unwrap_or_default(),
                visitor_id: visitor_id.clone(),
                assigned_at: start + 300,
                expires_at: start + 300 + hold + 30 * 60_000,
                shared: false,
                url: url.clone(),
                referrer: Some(referrer.clone()).filter(|r| !r.is_empty()),
                received: Received { received_at: start + 400, ip: ip.to_owned(), user_agent: ua.to_owned() },
            };
            let row = transform::assignment_row(&msg, account, &SynthGeo);
            out.assignments.push(row.clone());
            assignment = Some(row);
            number
        } else if let Some(n) = account.dni.source_number_for(&vs) {
            n.to_owned()
        } else {
            account.dni.site_numbers.first().cloned().unwrap_or_default()
        };
        let pages = if bot {
            self.rng.random_range(1..=3)
        } else {
            match self.rng.random_range(0..100) {
                0..=34 => 1,
                35..=59 => 2,
                60..=77 => 3,
                78..=89 => 4,
                _ => self.rng.random_range(5..=9),
            }
        };
        let mut t = start;
        let mut page_url = url.clone();
        let mut page_ref = referrer.clone();
        let mut events: Vec<Event> = Vec::new();
        let mut page_ids: Vec<String> = Vec::new();
        for p in 0..pages {
            if p > 0 {
                page_ref = page_url.clone();
                let inner = self.pick(INNER);
                page_url = format!("{}{inner}", self.opts.site);
                t += self.rng.random_range(5_000..240_000);
            }
            let page_id = self.id("p", 16);
            let title = page_url.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("Home").split('?').next().unwrap_or("Home").to_owned();
            events.push(Event {
                id: self.id("e", 22),
                kind: "pageview".into(),
                ts: t,
                url: page_url.clone(),
                referrer: Some(page_ref.clone()).filter(|r| !r.is_empty()),
                title: Some(title),
                number: Some(number.clone()),
                props: Map::new(),
            });
            page_ids.push(page_id.clone());
            // Like the tracker, every event of a page carries that page's referrer.
            if !bot && self.chance(0.35) {
                let mut props = Map::new();
                props.insert("visible_ms".into(), json!(self.rng.random_range(2_000..180_000)));
                events.push(Event { id: self.id("e", 22), kind: "engagement".into(), ts: t + 4_000, url: page_url.clone(), referrer: Some(page_ref.clone()).filter(|r| !r.is_empty()), title: None, number: None, props });
                page_ids.push(page_id.clone());
            }
            if !bot && self.chance(0.06) {
                events.push(Event { id: self.id("e", 22), kind: "call_click".into(), ts: t + 6_000, url: page_url.clone(), referrer: Some(page_ref.clone()).filter(|r| !r.is_empty()), title: None, number: Some(number.clone()), props: Map::new() });
                page_ids.push(page_id.clone());
            }
            if !bot && self.chance(0.02) {
                let mut props = Map::new();
                props.insert("form".into(), json!("quote"));
                events.push(Event { id: self.id("e", 22), kind: "form_submit".into(), ts: t + 8_000, url: page_url.clone(), referrer: Some(page_ref.clone()).filter(|r| !r.is_empty()), title: None, number: None, props });
                page_ids.push(page_id.clone());
            }
        }
        let mut rows: Vec<EventRow> = Vec::with_capacity(events.len());
        for (event, page_id) in events.iter().zip(page_ids.iter()) {
            let msg = EventMessage {
                account: account.id.clone(),
                consent,
                visitor_id: visitor_id.clone(),
                session_id: session_id.clone(),
                page_id: Some(page_id.clone()),
                sent_at: event.ts + 50,
                screen: Some("1920x1080".into()),
                lang: Some(lang.into()),
                tz: Some(if lang == "de-DE" { "Europe/Berlin" } else { "America/Chicago" }.into()),
                event: event.clone(),
                received: Received { received_at: event.ts + 120, ip: ip.to_owned(), user_agent: ua.to_owned() },
            };
            rows.push(transform::event_row(&msg, account, &SynthGeo));
        }
        self.events_made += rows.len() as u64;
        if self.opts.collector_batches {
            out.batches.push(collector_batch(account, consent, visitor_id, &session_id, &page_ids, &events, lang, ip, ua));
        }
        let first = &rows[0];
        let touch = SessionTouch {
            session_id: session_id.unwrap_or_default(),
            started_ms: first.ts_ms,
            channel: first.channel.clone(),
            source: first.source.clone(),
            medium: first.medium.clone(),
            campaign: first.campaign.clone(),
            landing_page: first.path.clone(),
            referrer_host: first.referrer_host.clone(),
        };
        out.events.extend(rows);
        Visit { touch, assignment, end_ms: t + 10_000 }
    }

    fn call_base(&mut self, account: &Account, to: &str, started_ms: i64) -> CallRow {
        let status = match self.rng.random_range(0..100) {
            0..=77 => CallStatus::Completed,
            78..=87 => CallStatus::NoAnswer,
            88..=93 => CallStatus::Busy,
            94..=97 => CallStatus::Canceled,
            _ => CallStatus::Failed,
        };
        let duration_s = if status == CallStatus::Completed { self.rng.random_range(15..900) } else { 0 };
        let from = format!("+1512{:07}", self.rng.random_range(0..10_000_000));
        let call_id = self.id("CA", 32);
        let caller_name = self.pick(FIRST_NAMES).to_owned();
        let caller_city = self.pick(CITIES).to_owned();
        let msg = CallMessage {
            account: account.id.clone(),
            call: CallRecord {
                call_id,
                to: to.to_owned(),
                from,
                started_at: ringpath_types::time::format_rfc3339_ms(started_ms),
                duration_s,
                status,
                caller_name: Some(caller_name).filter(|s| !s.is_empty()),
                caller_city: Some(caller_city).filter(|s| !s.is_empty()),
            },
            received: Received { received_at: started_ms + i64::from(duration_s) * 1000 + 2_000, ip: "203.0.113.10".into(), user_agent: "TwilioProxy/1.1".into() },
        };
        attribution::base_row(&msg, started_ms, (started_ms + 5_000) as u64)
    }

    /// The calls that bring the total to exactly `calls`: source-level numbers
    /// (credited to their source) and the site's own number (unattributed).
    pub fn remaining_calls(&mut self, max: usize) -> Vec<CallRow> {
        let account = self.opts.account.clone();
        let sources: Vec<String> = account.dni.source.iter().map(|s| s.number.clone()).collect();
        let site = account.dni.site_numbers.first().cloned().unwrap_or_else(|| "+15550100000".into());
        let mut out = Vec::new();
        while self.session_calls_made + self.other_calls_made < self.opts.calls && out.len() < max {
            let started = self.start_time();
            let to_source = !sources.is_empty() && self.chance(0.45);
            let to = if to_source { sources[self.rng.random_range(0..sources.len())].clone() } else { site.clone() };
            let mut row = self.call_base(&account, &to, started);
            let target = attribution::target(&account, &to);
            if matches!(target, Target::Source { .. }) {
                attribution::credit_source(&mut row, &target);
            } else {
                row.attribution = "site".into();
            }
            self.other_calls_made += 1;
            out.push(row);
        }
        out
    }
}

/// Last touch from the session that held the number; first touch and linear
/// (equal credit) over the visitor's sessions in the lookback — enrich's own
/// rule for a call to a pool number held by one session.
fn credit_session(row: &mut CallRow, holder: &AssignmentRow, session: &SessionTouch, history: &[SessionTouch]) {
    let ev = SessionEvidence { holder, shared: false, origin: None, session: Some(session), first: None, lookback: history };
    attribution::credit_session(row, &ev);
}

/// The collector's view of one session: a `POST /v1/collect` body.
#[allow(clippy::too_many_arguments)]
fn collector_batch(account: &Account, consent: Consent, visitor: &Option<String>, session: &Option<String>, pages: &[String], events: &[Event], lang: &str, ip: &str, ua: &str) -> serde_json::Value {
    let sent_at = events.last().map(|e| e.ts + 50).unwrap_or(0);
    json!({
        "v": 1, "account": account.id, "sent_at": sent_at, "consent": consent.as_str(),
        "visitor_id": visitor, "session_id": session, "page_id": pages.first(),
        "screen": "1920x1080", "lang": lang, "events": events,
        "_ip": ip, "_ua": ua,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn account() -> Account {
        let text = format!(
            "[[account]]\nid = \"acc_demo\"\ntoken_sha256 = \"{}\"\n[account.dni]\nsite_numbers = [\"+15550100000\"]\n[[account.dni.pool]]\nid = \"paid_search\"\nwhen = {{ medium = \"cpc\" }}\nnumbers = [\"+15550109001\", \"+15550109002\"]\n[[account.dni.source]]\nwhen = {{ channel = \"organic_social\" }}\nnumber = \"+15550108001\"\n",
            "0".repeat(64)
        );
        ringpath_types::accounts::AccountsFile::parse(&text).unwrap().account.remove(0)
    }

    fn run(events: u64, calls: u64, seed: u64) -> Rows {
        let mut g = Generator::new(Options { account: account(), events, calls, days: 30, end_ms: 1_795_946_400_000, seed, site: "https://demo.example".into(), collector_batches: false });
        let mut all = Rows::default();
        while let Some(r) = g.next_visitor() {
            all.events.extend(r.events);
            all.assignments.extend(r.assignments);
            all.calls.extend(r.calls);
        }
        all.calls.extend(g.remaining_calls(usize::MAX));
        all
    }

    #[test]
    fn makes_the_volumes_asked_for_with_a_realistic_mix() {
        let rows = run(20_000, 300, 7);
        assert!(rows.events.len() >= 20_000 && rows.events.len() < 20_020, "{}", rows.events.len());
        assert_eq!(rows.calls.len(), 300);
        let share = |f: &dyn Fn(&EventRow) -> bool| rows.events.iter().filter(|e| f(e)).count() as f64 / rows.events.len() as f64;
        for channel in ["paid_search", "organic_search", "direct", "organic_social", "email", "referral", "paid_social"] {
            assert!(share(&|e| e.channel == channel) > 0.01, "{channel}");
        }
        assert!(share(&|e| e.is_bot == 1) > 0.005);
        assert!(share(&|e| e.consent == "granted") > 0.4 && share(&|e| e.consent == "denied") > 0.05);
        // EU visitors and visitors without consent have truncated IPs; consenting US visitors do not.
        assert!(rows.events.iter().filter(|e| e.country == "DE").all(|e| e.ip.ends_with(".0") && e.ip_truncated == 1));
        assert!(rows.events.iter().any(|e| e.country == "US" && e.consent == "granted" && e.ip_truncated == 0));
        let session_calls = rows.calls.iter().filter(|c| c.attribution == "session").count();
        assert!(session_calls > 100, "{session_calls}");
        assert!(rows.calls.iter().any(|c| c.attribution == "source") && rows.calls.iter().any(|c| c.attribution == "site"));
        // Every session-credited call points at a stored session and assignment.
        for c in rows.calls.iter().filter(|c| c.attribution == "session") {
            assert!(rows.assignments.iter().any(|a| a.session_id == c.session_id && a.number == c.to_number));
            assert!(rows.events.iter().any(|e| e.session_id == c.session_id && e.visitor_id == c.visitor_id));
            assert!(!c.linear_channel.is_empty() && c.linear_channel.contains(&c.channel));
        }
    }

    #[test]
    fn same_seed_same_rows() {
        let a = run(2_000, 20, 1);
        let b = run(2_000, 20, 1);
        assert_eq!(a.events, b.events);
        assert_eq!(a.calls, b.calls);
    }
}

/// What a load wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    pub events: u64,
    pub assignments: u64,
    pub calls: u64,
}

async fn insert<T: clickhouse::RowWrite>(client: &clickhouse::Client, table: &str, rows: &[T::Value<'_>]) -> Result<(), clickhouse::error::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<T>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

/// Generates on a blocking thread and inserts straight into ClickHouse in
/// batches of about `batch` events, one insert per table per batch.
pub async fn load_clickhouse(client: &clickhouse::Client, mut generator: Generator, batch: usize, progress: impl Fn(Loaded)) -> Result<Loaded, clickhouse::error::Error> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Rows>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut chunk = Rows::default();
        while let Some(rows) = generator.next_visitor() {
            chunk.events.extend(rows.events);
            chunk.assignments.extend(rows.assignments);
            chunk.calls.extend(rows.calls);
            if chunk.events.len() >= batch && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return;
            }
        }
        loop {
            let calls = generator.remaining_calls(batch);
            if calls.is_empty() {
                break;
            }
            chunk.calls.extend(calls);
            if tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(chunk);
    });
    let mut loaded = Loaded::default();
    while let Some(rows) = rx.recv().await {
        insert::<EventRow>(client, "events", &rows.events).await?;
        insert::<AssignmentRow>(client, "assignments", &rows.assignments).await?;
        insert::<CallRow>(client, "calls", &rows.calls).await?;
        loaded.events += rows.events.len() as u64;
        loaded.assignments += rows.assignments.len() as u64;
        loaded.calls += rows.calls.len() as u64;
        progress(loaded);
    }
    let _ = producer.await;
    Ok(loaded)
}

/// What a load through the collector sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    pub batches: u64,
    pub events: u64,
    pub calls: u64,
}

/// Posts the generated visits to a running collector (`/v1/collect`), asks
/// `/v1/numbers` for the pool sessions that call, and posts their calls to
/// `/v1/calls` — so enrich does the attribution. Visits keep their generated
/// times (end them at now); calls of pool sessions are placed at now, while
/// the collector holds the number it just handed out.
pub async fn load_ingest(base: &str, token: &str, mut generator: Generator) -> anyhow::Result<Sent> {
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
    let base = base.trim_end_matches('/');
    let account = generator.opts.account.id.clone();
    let mut sent = Sent::default();
    let check = |what: &str, resp: reqwest::Response| -> anyhow::Result<()> {
        if !resp.status().is_success() {
            anyhow::bail!("{what}: HTTP {}", resp.status());
        }
        Ok(())
    };
    // The collector rate-limits per client: wait as told on 429/503, then send again.
    async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        for _ in 0..100 {
            let attempt = req.try_clone().ok_or_else(|| anyhow::anyhow!("request cannot be retried"))?;
            let resp = attempt.send().await?;
            if resp.status() != reqwest::StatusCode::TOO_MANY_REQUESTS && resp.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                return Ok(resp);
            }
            let wait = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
            tokio::time::sleep(std::time::Duration::from_millis(wait.clamp(1, 5) * 1000)).await;
        }
        anyhow::bail!("the collector kept refusing (429/503)")
    }
    let mut post_call = |call: &CallRow, to: &str, started_ms: i64| {
        sent.calls += 1;
        json!({"call_id": call.call_id, "to": to, "from": call.from_number, "started_at": ringpath_types::time::format_rfc3339_ms(started_ms),
               "duration_s": call.duration_s, "status": call.status, "caller_name": call.caller_name, "caller_city": call.caller_city})
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    while let Some(rows) = generator.next_visitor() {
        for mut batch in rows.batches {
            let ip = batch["_ip"].as_str().unwrap_or("").to_owned();
            let ua = batch["_ua"].as_str().unwrap_or("").to_owned();
            if let Some(o) = batch.as_object_mut() {
                o.remove("_ip");
                o.remove("_ua");
            }
            sent.events += batch["events"].as_array().map_or(0, |a| a.len() as u64);
            sent.batches += 1;
            let resp = send(http.post(format!("{base}/v1/collect")).header("User-Agent", ua).header("X-Forwarded-For", ip).json(&batch)).await?;
            check("/v1/collect", resp)?;
        }
        for call in rows.calls {
            let Some(held) = rows.assignments.iter().find(|a| a.session_id == call.session_id) else { continue };
            let ask = json!({"account": account, "session_id": held.session_id, "visitor_id": held.visitor_id, "url": held.url, "referrer": held.referrer});
            // A browser asks for numbers (an empty User-Agent is a bot, which gets none).
            let resp = send(http.post(format!("{base}/v1/numbers")).header("User-Agent", UAS[0]).json(&ask)).await?;
            if !resp.status().is_success() {
                anyhow::bail!("/v1/numbers: HTTP {}", resp.status());
            }
            let number: serde_json::Value = resp.json().await?;
            let to = number["number"].as_str().unwrap_or(&call.to_number).to_owned();
            let body = post_call(&call, &to, now());
            let resp = send(http.post(format!("{base}/v1/calls")).basic_auth(&account, Some(token)).json(&body)).await?;
            check("/v1/calls", resp)?;
        }
    }
    loop {
        let calls = generator.remaining_calls(1000);
        if calls.is_empty() {
            break;
        }
        for call in calls {
            let body = post_call(&call, &call.to_number, call.started_ms as i64);
            let resp = send(http.post(format!("{base}/v1/calls")).basic_auth(&account, Some(token)).json(&body)).await?;
            check("/v1/calls", resp)?;
        }
    }
    Ok(sent)
}
