//! Call attribution (pure): which session, source or nothing a call is
//! credited to, from the number dialled and who held it at the time.
//!
//! - pool number → the session holding it at the call's start; one holder is
//!   `exclusive`, several (an exhausted pool) `shared` — the most recently
//!   active holder wins, with lower confidence;
//! - no holder yet but the call is fresh → `pending` (the assignment may still
//!   be on its way); the re-attribution pass retries until the wait runs out;
//! - source-level number → the source its rule names, no session;
//! - site number → `site` (known, unattributable); unknown number → `none`.
//!
//! First touch and linear (equal credit across the visitor's sessions in a
//! 30-day lookback) are stored beside last touch.

use ringpath_types::accounts::Account;
use ringpath_types::wire::CallMessage;

use ringpath_store::rows::{AssignmentRow, CallRow, SessionTouch};

pub const LINEAR_LOOKBACK_MS: u64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Pool(String),
    Source { source: String, medium: String, campaign: String, channel: String, referrer_host: String },
    Site,
    Unknown,
}

/// What kind of number was dialled.
pub fn target(account: &Account, number: &str) -> Target {
    if let Some(pool) = account.dni.pool.iter().find(|p| p.numbers.iter().any(|n| n == number)) {
        return Target::Pool(pool.id.clone());
    }
    if let Some(s) = account.dni.source.iter().find(|s| s.number == number) {
        let w = &s.when;
        let get = |v: &Option<String>| v.clone().unwrap_or_default();
        return Target::Source {
            source: get(&w.source),
            medium: get(&w.medium),
            campaign: get(&w.campaign),
            channel: get(&w.channel),
            referrer_host: get(&w.referrer_host),
        };
    }
    if account.dni.site_numbers.iter().any(|n| n == number) {
        return Target::Site;
    }
    Target::Unknown
}

/// The session credited with a call at `at_ms` among assignment rows covering
/// that time, and whether the number was shared then.
pub fn pick_holder(rows: &[AssignmentRow], at_ms: u64) -> Option<(&AssignmentRow, bool)> {
    let covering: Vec<&AssignmentRow> = rows.iter().filter(|r| r.assigned_ms <= at_ms && r.expires_ms >= at_ms).collect();
    let latest = covering.iter().max_by_key(|r| (r.assigned_ms, r.session_id.as_str()))?;
    let mut sessions: Vec<&str> = covering.iter().map(|r| r.session_id.as_str()).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let shared = sessions.len() > 1 || covering.iter().any(|r| r.shared == 1 && r.session_id == latest.session_id);
    Some((latest, shared))
}

/// The call row with everything but attribution filled in.
pub fn base_row(msg: &CallMessage, started_ms: i64, version: u64) -> CallRow {
    let c = &msg.call;
    CallRow {
        account_id: msg.account.clone(),
        call_id: c.call_id.clone(),
        started_at: (started_ms.max(0) / 1000) as u32,
        started_ms: started_ms.max(0) as u64,
        received_at: (msg.received.received_at.max(0) / 1000) as u32,
        duration_s: c.duration_s,
        status: c.status.as_str().to_owned(),
        to_number: c.to.clone(),
        from_number: c.from.clone(),
        caller_name: c.caller_name.clone().unwrap_or_default(),
        caller_city: c.caller_city.clone().unwrap_or_default(),
        attribution: "none".into(),
        confidence: "none".into(),
        version,
        ..CallRow::default()
    }
}

/// What the store knows about the session a pool number was held by.
pub struct SessionEvidence<'a> {
    /// The assignment row covering the call (possibly a renewal).
    pub holder: &'a AssignmentRow,
    /// Several sessions held the number at the time (exhausted pool).
    pub shared: bool,
    /// The assignment that first gave this session the number (landing URL, referrer, click id).
    pub origin: Option<&'a AssignmentRow>,
    /// The session as its own events saw it (landing page and source).
    pub session: Option<&'a SessionTouch>,
    /// The visitor's first known session (first touch).
    pub first: Option<&'a SessionTouch>,
    /// The visitor's sessions in the linear lookback, oldest first.
    pub lookback: &'a [SessionTouch],
}

/// Credits the call to a session (last touch) and fills first touch and linear.
pub fn credit_session(row: &mut CallRow, ev: &SessionEvidence<'_>) {
    let holder = ev.holder;
    // Renewals carry only the page that kept the hold alive; the landing is in the origin.
    let landing = ev.origin.unwrap_or(holder);
    row.attribution = "session".into();
    row.confidence = if ev.shared { "shared" } else { "exclusive" }.into();
    row.pool_id = holder.pool_id.clone();
    row.session_id = holder.session_id.clone();
    row.visitor_id = if holder.visitor_id.is_empty() { landing.visitor_id.clone() } else { holder.visitor_id.clone() };
    row.ip = holder.ip.clone();
    row.country = holder.country.clone();
    row.click_id_type = landing.click_id_type.clone();
    row.click_id = landing.click_id.clone();
    row.referrer = landing.referrer.clone();
    row.term = landing.term.clone();
    row.content = landing.content.clone();
    // The session's own landing (events) wins over the page that asked for the number.
    match ev.session {
        Some(s) => {
            row.source = s.source.clone();
            row.medium = s.medium.clone();
            row.campaign = s.campaign.clone();
            row.channel = s.channel.clone();
            row.landing_page = s.landing_page.clone();
            row.referrer_host = s.referrer_host.clone();
        }
        None => {
            row.source = landing.source.clone();
            row.medium = landing.medium.clone();
            row.campaign = landing.campaign.clone();
            row.channel = landing.channel.clone();
            row.landing_page = ringpath_types::url::split(&landing.url).map(|p| p.path.to_owned()).unwrap_or_default();
            row.referrer_host = landing.referrer_host.clone();
        }
    }
    let last = SessionTouch {
        session_id: row.session_id.clone(),
        started_ms: ev.session.map(|s| s.started_ms).unwrap_or(landing.assigned_ms),
        channel: row.channel.clone(),
        source: row.source.clone(),
        medium: row.medium.clone(),
        campaign: row.campaign.clone(),
        landing_page: row.landing_page.clone(),
        referrer_host: row.referrer_host.clone(),
    };
    credit_touches(row, &last, ev.lookback, ev.first);
}

/// First touch and linear credit: `last` (the credited session) joins the
/// visitor's `lookback` sessions; first touch is the earliest of them, or
/// `first_known` when the visitor's history reaches further back.
pub fn credit_touches(row: &mut CallRow, last: &SessionTouch, lookback: &[SessionTouch], first_known: Option<&SessionTouch>) {
    // Without a visitor history (or consent), the session itself is every touch.
    let mut touches: Vec<SessionTouch> = lookback.to_vec();
    if !touches.iter().any(|t| t.session_id == last.session_id) {
        touches.push(last.clone());
    }
    touches.sort_by_key(|t| t.started_ms);
    let first = match first_known {
        Some(f) if f.started_ms <= touches[0].started_ms => f,
        _ => &touches[0],
    };
    row.first_touch_session = first.session_id.clone();
    row.first_touch_source = first.source.clone();
    row.first_touch_medium = first.medium.clone();
    row.first_touch_campaign = first.campaign.clone();
    row.first_touch_channel = first.channel.clone();
    row.first_touch_landing_page = first.landing_page.clone();
    row.first_touch_referrer_host = first.referrer_host.clone();
    row.linear_session = touches.iter().map(|t| t.session_id.clone()).collect();
    row.linear_source = touches.iter().map(|t| t.source.clone()).collect();
    row.linear_medium = touches.iter().map(|t| t.medium.clone()).collect();
    row.linear_campaign = touches.iter().map(|t| t.campaign.clone()).collect();
    row.linear_channel = touches.iter().map(|t| t.channel.clone()).collect();
    row.linear_landing_page = touches.iter().map(|t| t.landing_page.clone()).collect();
    row.linear_referrer_host = touches.iter().map(|t| t.referrer_host.clone()).collect();
}

/// Marks a call to one of the site's own numbers: known, but not attributable.
pub fn mark_site(row: &mut CallRow) {
    row.attribution = "site".into();
    row.confidence = "none".into();
}

/// Credits the call to a source-level number's source (no session, no visitor).
pub fn credit_source(row: &mut CallRow, target: &Target) {
    if let Target::Source { source, medium, campaign, channel, referrer_host } = target {
        row.attribution = "source".into();
        row.confidence = "source".into();
        row.source = source.clone();
        row.medium = medium.clone();
        row.campaign = campaign.clone();
        row.channel = channel.clone();
        row.referrer_host = referrer_host.clone();
        let one = |v: &String| vec![v.clone()];
        row.first_touch_source = source.clone();
        row.first_touch_medium = medium.clone();
        row.first_touch_campaign = campaign.clone();
        row.first_touch_channel = channel.clone();
        row.first_touch_referrer_host = referrer_host.clone();
        row.linear_session = vec![String::new()];
        row.linear_source = one(source);
        row.linear_medium = one(medium);
        row.linear_campaign = one(campaign);
        row.linear_channel = one(channel);
        row.linear_landing_page = vec![String::new()];
        row.linear_referrer_host = one(referrer_host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(session: &str, from: u64, to: u64, shared: bool) -> AssignmentRow {
        AssignmentRow { session_id: session.into(), assigned_ms: from, expires_ms: to, shared: u8::from(shared), ..AssignmentRow::default() }
    }

    #[test]
    fn exclusive_holder_gets_the_call() {
        let rows = [hold("s1", 0, 100, false)];
        let (h, shared) = pick_holder(&rows, 50).unwrap();
        assert_eq!((h.session_id.as_str(), shared), ("s1", false));
    }

    #[test]
    fn expired_hold_gets_nothing() {
        assert!(pick_holder(&[hold("s1", 0, 100, false)], 101).is_none());
    }

    #[test]
    fn renewals_of_one_session_are_not_sharing() {
        let rows = [hold("s1", 0, 100, false), hold("s1", 60, 160, false)];
        let (h, shared) = pick_holder(&rows, 80).unwrap();
        assert_eq!((h.session_id.as_str(), shared), ("s1", false));
    }

    #[test]
    fn shared_number_goes_to_the_latest_holder_with_lower_confidence() {
        let rows = [hold("s1", 0, 100, false), hold("s2", 40, 140, true)];
        let (h, shared) = pick_holder(&rows, 50).unwrap();
        assert_eq!((h.session_id.as_str(), shared), ("s2", true));
    }

    #[test]
    fn first_touch_and_linear_cover_the_visitors_sessions() {
        let mut row = CallRow::default();
        let holder = AssignmentRow { session_id: "s2".into(), assigned_ms: 200, channel: "paid_search".into(), ..AssignmentRow::default() };
        let sessions = [
            SessionTouch { session_id: "s1".into(), started_ms: 100, channel: "organic_social".into(), ..SessionTouch::default() },
            SessionTouch { session_id: "s2".into(), started_ms: 190, channel: "paid_search".into(), ..SessionTouch::default() },
        ];
        let ev = SessionEvidence { holder: &holder, shared: false, origin: None, session: Some(&sessions[1]), first: None, lookback: &sessions };
        credit_session(&mut row, &ev);
        assert_eq!(row.channel, "paid_search");
        assert_eq!(row.first_touch_channel, "organic_social");
        assert_eq!(row.linear_channel, vec!["organic_social", "paid_search"]);
        assert_eq!(row.confidence, "exclusive");
    }

    #[test]
    fn a_renewal_holder_keeps_the_landing_click_id_of_the_sessions_first_assignment() {
        let origin = AssignmentRow {
            session_id: "s1".into(),
            assigned_ms: 100,
            url: "https://d.example/landing?gclid=G1".into(),
            click_id_type: "gclid".into(),
            click_id: "G1".into(),
            channel: "paid_search".into(),
            ..AssignmentRow::default()
        };
        let renewal = AssignmentRow { session_id: "s1".into(), assigned_ms: 900, url: "https://d.example/contact".into(), channel: "direct".into(), ..AssignmentRow::default() };
        let mut row = CallRow::default();
        credit_session(&mut row, &SessionEvidence { holder: &renewal, shared: false, origin: Some(&origin), session: None, first: None, lookback: &[] });
        assert_eq!((row.click_id_type.as_str(), row.click_id.as_str()), ("gclid", "G1"));
        assert_eq!((row.channel.as_str(), row.landing_page.as_str()), ("paid_search", "/landing"));
        assert_eq!(row.linear_session, ["s1"]);
    }

    #[test]
    fn first_touch_may_come_from_before_the_linear_lookback() {
        let holder = AssignmentRow { session_id: "s3".into(), assigned_ms: 5_000, ..AssignmentRow::default() };
        let old = SessionTouch { session_id: "s0".into(), started_ms: 10, channel: "email".into(), ..SessionTouch::default() };
        let recent = [SessionTouch { session_id: "s3".into(), started_ms: 4_900, channel: "paid_search".into(), ..SessionTouch::default() }];
        let mut row = CallRow::default();
        credit_session(&mut row, &SessionEvidence { holder: &holder, shared: true, origin: None, session: Some(&recent[0]), first: Some(&old), lookback: &recent });
        assert_eq!((row.first_touch_session.as_str(), row.first_touch_channel.as_str()), ("s0", "email"));
        assert_eq!(row.linear_channel, ["paid_search"]);
        assert_eq!(row.confidence, "shared");
    }

    #[test]
    fn numbers_are_told_apart_by_the_accounts_dni_config() {
        let file = ringpath_types::accounts::AccountsFile::parse(&format!(
            "[[account]]\nid = \"acc_x\"\ntoken_sha256 = \"{}\"\n[account.dni]\nsite_numbers = [\"+15550100000\"]\n\
             [[account.dni.pool]]\nid = \"ppc\"\nnumbers = [\"+15550109001\"]\n\
             [[account.dni.source]]\nwhen = {{ channel = \"email\" }}\nnumber = \"+15550108001\"\n",
            "0".repeat(64)
        ))
        .unwrap();
        let acc = &file.account[0];
        assert_eq!(target(acc, "+15550109001"), Target::Pool("ppc".into()));
        assert!(matches!(target(acc, "+15550108001"), Target::Source { ref channel, .. } if channel == "email"));
        assert_eq!(target(acc, "+15550100000"), Target::Site);
        assert_eq!(target(acc, "+19999999999"), Target::Unknown);
        let mut row = CallRow::default();
        mark_site(&mut row);
        assert_eq!((row.attribution.as_str(), row.confidence.as_str()), ("site", "none"));
    }
}
