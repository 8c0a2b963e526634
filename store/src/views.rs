//! The materialized views on `events`, each SELECT written once: the
//! migrations create the views and backfill their tables from it, and an
//! erasure rebuilds the hours it emptied with it. Extra conditions (the
//! rebuild's account, hours and "not this visitor") are ANDed into the view's
//! own filter, so the rebuilt rows are exactly what the view would have made.

/// A view: `SELECT {columns} FROM {source} [{array_join}] [WHERE {filter}] [GROUP BY {group_by}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The view's name (`{name}` in the database).
    pub name: &'static str,
    /// The table the view writes to.
    pub target: &'static str,
    pub columns: &'static str,
    pub array_join: Option<&'static str>,
    pub filter: Option<&'static str>,
    pub group_by: Option<&'static str>,
}

impl View {
    /// The SELECT over `source` (a table name, `{db}.events` in migrations),
    /// with `extra` (SQL, may hold `?` markers) ANDed to the view's filter.
    pub fn select(&self, source: &str, extra: Option<&str>) -> String {
        let mut sql = format!("SELECT {} FROM {source}", self.columns);
        if let Some(join) = self.array_join {
            sql.push(' ');
            sql.push_str(join);
        }
        match (self.filter, extra) {
            (Some(f), Some(e)) => sql.push_str(&format!(" WHERE ({f}) AND ({e})")),
            (Some(f), None) => sql.push_str(&format!(" WHERE {f}")),
            (None, Some(e)) => sql.push_str(&format!(" WHERE {e}")),
            (None, None) => {}
        }
        if let Some(g) = self.group_by {
            sql.push_str(" GROUP BY ");
            sql.push_str(g);
        }
        sql
    }

    /// `CREATE MATERIALIZED VIEW` in database `db`.
    pub fn create_sql(&self, db: &str) -> String {
        format!("CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{} TO {db}.{} AS {}", self.name, self.target, self.select(&format!("{db}.events"), None))
    }

    /// Fills the view's table from the events stored before it existed (an
    /// upgrade). Aggregate states are sets and `sessions` keeps one row per
    /// session, so events the view also saw meanwhile are not counted twice.
    pub fn backfill_sql(&self, db: &str) -> String {
        format!("INSERT INTO {db}.{} {}", self.target, self.select(&format!("{db}.events"), None))
    }
}

// The aggregate expressions, as literals so each view's columns and the
// reports that read ragged range ends from `events` share one text.
macro_rules! sessions_state {
    () => {
        "uniqIfState(if(session_id != '', session_id, page_id), channel != '')"
    };
}
macro_rules! visitors_state {
    () => {
        "uniqIfState(visitor_id, channel != '' AND visitor_id != '')"
    };
}
macro_rules! pageviews_state {
    () => {
        "uniqIfState(event_id, event_type = 'pageview')"
    };
}
macro_rules! sessions_sketch {
    () => {
        "uniqHLL12State(if(session_id != '', session_id, page_id))"
    };
}
macro_rules! visitors_sketch {
    () => {
        "uniqHLL12IfState(visitor_id, visitor_id != '')"
    };
}

/// `event_stats.sessions`, `.visitors`, `.pageviews` computed from events
/// (the same states, so the two merge in one query).
pub const SESSIONS_STATE: &str = sessions_state!();
pub const VISITORS_STATE: &str = visitors_state!();
pub const PAGEVIEWS_STATE: &str = pageviews_state!();
/// `attribution_stats.sessions` and `.visitors` (and `attribution_daily`'s) from events.
pub const SESSIONS_SKETCH: &str = sessions_sketch!();
pub const VISITORS_SKETCH: &str = visitors_sketch!();

/// Hourly session, visitor and page-view states per source combination, for
/// the timeseries (table `event_stats`, migration 0004). A landing event
/// (channel set) counts its session and visitor under its source; internal
/// pages (channel empty) only count as page views.
pub const EVENT_STATS: View = View {
    name: "event_stats_mv",
    target: "event_stats",
    columns: concat!(
        "account_id, toStartOfHour(ts) AS hour, is_bot, channel, source, medium, campaign, if(channel != '', path, '') AS landing_page, referrer_host, ",
        sessions_state!(),
        " AS sessions, ",
        visitors_state!(),
        " AS visitors, ",
        pageviews_state!(),
        " AS pageviews"
    ),
    array_join: None,
    filter: None,
    group_by: Some("account_id, hour, is_bot, channel, source, medium, campaign, landing_page, referrer_host"),
};

/// The attribution dimensions, as `ARRAY JOIN` pairs of (dimension, value).
const DIMENSIONS_JOIN: &str = "ARRAY JOIN [('channel', channel), ('source', source), ('medium', medium), ('campaign', campaign), ('landing_page', path), ('referrer_host', referrer_host)] AS dim";
const ATTRIBUTION_GROUP_BY: &str = "account_id, hour, is_bot, dimension, key";

/// Hourly session and visitor sketches per dimension value (table
/// `attribution_stats`, migration 0007): each landing event counts its session
/// and visitor once under each dimension's value.
pub const ATTRIBUTION_STATS: View = View {
    name: "attribution_stats_mv",
    target: "attribution_stats",
    columns: concat!("account_id, toStartOfHour(ts) AS hour, is_bot, dim.1 AS dimension, dim.2 AS key, ", sessions_sketch!(), " AS sessions, ", visitors_sketch!(), " AS visitors"),
    array_join: Some(DIMENSIONS_JOIN),
    filter: Some("channel != ''"),
    group_by: Some(ATTRIBUTION_GROUP_BY),
};

/// The same sketches per whole UTC day (table `attribution_daily`, migration 0010).
pub const ATTRIBUTION_DAILY: View = View {
    name: "attribution_daily_mv",
    target: "attribution_daily",
    columns: concat!("account_id, toStartOfDay(ts, 'UTC') AS hour, is_bot, dim.1 AS dimension, dim.2 AS key, ", sessions_sketch!(), " AS sessions, ", visitors_sketch!(), " AS visitors"),
    array_join: Some(DIMENSIONS_JOIN),
    filter: Some("channel != ''"),
    group_by: Some(ATTRIBUTION_GROUP_BY),
};

/// Each landing of a session, by visitor (table `sessions`, migration 0014),
/// for call attribution's look-ups; the table keeps the earliest (highest
/// `rank`). No aggregation here: an alias such as `argMin(channel, ts_ms) AS
/// channel` would shadow the column on ClickHouse 18.16, and a subquery in a
/// view's SELECT fails there while pushing the block.
pub const SESSIONS: View = View {
    name: "sessions_mv",
    target: "sessions",
    columns: "account_id, visitor_id, session_id, ts AS started_at, ts_ms AS started_ms, channel, source, medium, campaign, path AS landing_page, referrer_host, bitNot(ts_ms) AS rank",
    array_join: None,
    filter: Some("channel != '' AND session_id != ''"),
    group_by: None,
};

/// Every column of `events`, in its order (`rows::EventRow`'s fields).
pub const EVENT_COLUMNS: &str = "account_id, event_id, event_type, ts, ts_ms, received_at, visitor_id, session_id, page_id, consent, ip, ip_truncated, country, region, city, \
latitude, longitude, url, path, referrer, referrer_host, title, channel, source, medium, campaign, term, content, gclid, gbraid, wbraid, fbclid, msclkid, ttclid, li_fat_id, \
number, props, user_agent, browser, os, device, is_bot, screen, lang, tz, version";

/// Every event that names a visitor, whole, sorted by visitor (table
/// `visitor_events`, migration 0017): the journey, the export and erasure
/// read one visitor's range instead of the account's events. The columns are
/// named, not `*`, so a column added to `events` later does not break inserts
/// into it before `visitor_events` has it too.
pub const VISITOR_EVENTS: View = View { name: "visitor_events_mv", target: "visitor_events", columns: EVENT_COLUMNS, array_join: None, filter: Some("visitor_id != ''"), group_by: None };

/// The views an erasure rebuilds for the periods a visitor was active, with
/// the period each row is keyed by (`hour`): aggregate states hold hashes of
/// the visitor's ids. (`sessions` holds the ids themselves: it is erased, not rebuilt.)
pub const REBUILT_ON_ERASURE: [(&View, Period); 3] = [(&EVENT_STATS, Period::Hour), (&ATTRIBUTION_STATS, Period::Hour), (&ATTRIBUTION_DAILY, Period::Day)];

/// The granularity of a summary table's `hour` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    /// The expression giving an event's period start.
    pub fn of_ts(self) -> &'static str {
        match self {
            Period::Hour => "toStartOfHour(ts)",
            Period::Day => "toStartOfDay(ts, 'UTC')",
        }
    }

    pub fn seconds(self) -> u32 {
        match self {
            Period::Hour => 3600,
            Period::Day => 86_400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_creates_backfills_and_rebuilds_from_one_select() {
        let create = ATTRIBUTION_STATS.create_sql("rp");
        assert!(create.starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS rp.attribution_stats_mv TO rp.attribution_stats AS SELECT account_id, toStartOfHour(ts) AS hour"));
        assert!(create.ends_with("FROM rp.events ARRAY JOIN [('channel', channel), ('source', source), ('medium', medium), ('campaign', campaign), ('landing_page', path), ('referrer_host', referrer_host)] AS dim WHERE channel != '' GROUP BY account_id, hour, is_bot, dimension, key"));
        assert_eq!(ATTRIBUTION_STATS.backfill_sql("rp"), format!("INSERT INTO rp.attribution_stats {}", ATTRIBUTION_STATS.select("rp.events", None)));
        let rebuild = ATTRIBUTION_STATS.select("events", Some("account_id = ?"));
        assert!(rebuild.contains("WHERE (channel != '') AND (account_id = ?) GROUP BY"), "{rebuild}");
        assert!(EVENT_STATS.select("events", Some("account_id = ?")).contains("FROM events WHERE account_id = ? GROUP BY account_id, hour"));
        assert!(!SESSIONS.select("events", None).contains("GROUP BY"));
        assert_eq!(VISITOR_EVENTS.backfill_sql("rp"), format!("INSERT INTO rp.visitor_events SELECT {EVENT_COLUMNS} FROM rp.events WHERE visitor_id != ''"));
    }

    #[test]
    fn the_visitor_copy_names_every_column_of_events_in_order() {
        use clickhouse::Row;
        let names: Vec<&str> = EVENT_COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(names, <crate::rows::EventRow as Row>::COLUMN_NAMES);
        let table = include_str!("../migrations/0017_visitor_events.sql");
        let events = include_str!("../migrations/0001_events.sql");
        let body = |sql: &'static str| sql[sql.find("(\n").unwrap()..sql.find("ENGINE").unwrap()].to_owned();
        assert_eq!(body(table), body(events), "visitor_events has exactly the columns of events");
    }

    #[test]
    fn the_daily_view_differs_from_the_hourly_one_only_in_its_period() {
        assert_eq!(ATTRIBUTION_STATS.columns.replace("toStartOfHour(ts)", "toStartOfDay(ts, 'UTC')"), ATTRIBUTION_DAILY.columns);
        assert_eq!((ATTRIBUTION_STATS.array_join, ATTRIBUTION_STATS.filter, ATTRIBUTION_STATS.group_by), (ATTRIBUTION_DAILY.array_join, ATTRIBUTION_DAILY.filter, ATTRIBUTION_DAILY.group_by));
        for (view, period) in REBUILT_ON_ERASURE {
            assert!(view.columns.contains(&format!("{} AS hour", period.of_ts())), "{}", view.name);
        }
    }
}
