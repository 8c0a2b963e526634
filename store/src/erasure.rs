//! Erasure (README "Dashboard API": after `DELETE …/visitors/{id}` no row
//! holds that visitor anywhere; aggregate counts may stay). The suppression
//! list's tombstones (table `erasures`: sha256 hashes of the visitor's id and
//! session ids, kept forever), the mutations that delete the visitor's rows
//! and anonymise their calls, the rebuild of the summary tables for the hours
//! they were active, and the status of an erasure. enrich reads the same
//! tombstones (its suppression cache) so a replay never stores them again, and
//! runs [`erase_ids`] itself on rows stored while an erasure was written.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::rows::CallRow;
use crate::views::REBUILT_ON_ERASURE;

/// `erasures.kind` of an erased visitor id.
pub const VISITOR: &str = "visitor";
/// `erasures.kind` of a session id of an erased visitor.
pub const SESSION: &str = "session";

/// A tombstone as dashboard-api writes it; `erased_at` is left to the
/// server's `now()` (the column default), so every writer shares one clock.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize)]
pub struct NewErasure {
    pub account_id: String,
    pub kind: String,
    pub id_hash: String,
}

/// A tombstone as enrich reads it (`erased_at` in seconds).
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct Erasure {
    pub account_id: String,
    pub kind: String,
    pub id_hash: String,
    pub erased_at: u32,
}

/// Columns of `calls` that erasure empties (`linear_session` entry by entry,
/// so the linear_* arrays stay parallel); everything else — time, duration,
/// number dialled, the source and campaign credited — stays.
pub const ERASED_CALL_COLUMNS: &[&str] =
    &["visitor_id", "session_id", "ip", "from_number", "caller_name", "caller_city", "click_id", "referrer", "first_touch_session", "linear_session"];

/// The `SET` list of an `ALTER TABLE calls UPDATE` that anonymises calls the
/// way [`anonymise_call`] does (for dashboard-api's erasure and enrich's
/// clean-up of rows stored while an erasure was being written).
pub fn call_erasure_set_sql() -> String {
    ERASED_CALL_COLUMNS
        .iter()
        .map(|c| if *c == "linear_session" { "linear_session = arrayMap(x -> '', linear_session)".to_owned() } else { format!("{c} = ''") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Empties the [`ERASED_CALL_COLUMNS`] of a call.
pub fn anonymise_call(row: &mut CallRow) {
    for field in [
        &mut row.visitor_id,
        &mut row.session_id,
        &mut row.ip,
        &mut row.from_number,
        &mut row.caller_name,
        &mut row.caller_city,
        &mut row.click_id,
        &mut row.referrer,
        &mut row.first_touch_session,
    ] {
        field.clear();
    }
    row.linear_session.iter_mut().for_each(String::clear);
}

/// The sha256 of an id (what a tombstone holds, in hex).
pub fn id_digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The sha256 hex of an id, as `erasures.id_hash` holds it.
pub fn id_hash_hex(id: &str) -> String {
    hex::encode(id_digest(id))
}

/// A tombstone's `id_hash` back to bytes; `None` when malformed.
pub fn parse_id_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The tombstones for erasing `visitor` of `account` and the sessions found for them.
pub fn tombstones(account: &str, visitor: &str, sessions: &[String]) -> Vec<NewErasure> {
    let one = |kind: &str, id: &str| NewErasure { account_id: account.to_owned(), kind: kind.to_owned(), id_hash: id_hash_hex(id) };
    let mut out = vec![one(VISITOR, visitor)];
    out.extend(sessions.iter().filter(|s| !s.is_empty()).map(|s| one(SESSION, s)));
    out
}

/// Tables whose rows naming an erased visitor or one of their sessions are
/// deleted outright (calls stay counted and are anonymised instead): the
/// erasure's mutations (dashboard-api) and enrich's late clean-up both use
/// this list. `sessions` is filled from events by a materialized view, so it
/// must be erased with them.
pub const ERASE_TABLES: &[&str] = &["events", "assignments", "sessions"];

/// The mutations that erase `visitors` and `sessions` of `account`: their
/// calls anonymised ([`call_erasure_set_sql`]), their rows in
/// [`ERASE_TABLES`] deleted. The one statement set behind dashboard-api's
/// erasure and enrich's late clean-up. Each id is in the mutation's text as a
/// quoted literal (dashboard-api's erasure status looks for it there).
pub async fn erase_ids(client: &Client, account: &str, visitors: &[&str], sessions: &[&str]) -> Result<(), StoreError> {
    // Never empty (an empty array literal has no element type on old
    // servers), and "!" is never an id.
    let visitors: Vec<&str> = visitors.iter().copied().chain(["!"]).collect();
    let sessions: Vec<&str> = sessions.iter().copied().chain(["!"]).collect();
    client
        .query(&format!(
            "ALTER TABLE calls UPDATE {} WHERE account_id = ? AND (has(?, visitor_id) OR has(?, session_id) OR has(?, first_touch_session) OR hasAny(?, linear_session))",
            call_erasure_set_sql()
        ))
        .bind(account)
        .bind(&visitors)
        .bind(&sessions)
        .bind(&sessions)
        .bind(&sessions)
        .execute()
        .await?;
    for table in ERASE_TABLES {
        client
            .query(&format!("ALTER TABLE {table} DELETE WHERE account_id = ? AND (has(?, visitor_id) OR has(?, session_id))"))
            .bind(account)
            .bind(&visitors)
            .bind(&sessions)
            .execute()
            .await?;
    }
    Ok(())
}

/// Tombstones with `erased_at` at or after `since_s` (0: all of them).
pub async fn erasures_since(client: &Client, since_s: u32) -> Result<Vec<Erasure>, StoreError> {
    Ok(client.query("SELECT ?fields FROM erasures WHERE erased_at >= toDateTime(?)").bind(since_s).fetch_all::<Erasure>().await?)
}

/// The visitor's session ids, from every table that names both.
async fn visitor_sessions(client: &Client, account: &str, visitor: &str) -> Result<Vec<String>, StoreError> {
    let mut sessions: Vec<String> = client
        .query(
            "SELECT DISTINCT session_id FROM events WHERE account_id = ? AND visitor_id = ? AND session_id != '' \
             UNION ALL SELECT DISTINCT session_id FROM assignments WHERE account_id = ? AND visitor_id = ? AND session_id != '' \
             UNION ALL SELECT DISTINCT session_id FROM calls WHERE account_id = ? AND visitor_id = ? AND session_id != ''",
        )
        .bind(account)
        .bind(visitor)
        .bind(account)
        .bind(visitor)
        .bind(account)
        .bind(visitor)
        .fetch_all::<String>()
        .await?;
    sessions.sort();
    sessions.dedup();
    Ok(sessions)
}

/// Writes the tombstones of `visitor` and their `sessions`.
pub async fn write_tombstones(client: &Client, account: &str, visitor: &str, sessions: &[String]) -> Result<(), StoreError> {
    let mut insert = client.insert::<NewErasure>("erasures").await?;
    for tombstone in tombstones(account, visitor, sessions) {
        insert.write(&tombstone).await?;
    }
    insert.end().await?;
    Ok(())
}

/// Starts erasing `visitor` of `account`: tombstones, then the summary
/// tables' periods rebuilt without them, then their rows deleted and their
/// calls anonymised. ClickHouse runs the deletes as asynchronous mutations;
/// [`erasure_status`] says when they are done.
pub async fn erase_visitor(client: &Client, account: &str, visitor: &str) -> Result<(), StoreError> {
    let mut sessions = visitor_sessions(client, account, visitor).await?;
    // Tombstones first, before any mutation: Kafka still holds the visitor's
    // messages (a replay, a redelivery, events in flight), and a mutation
    // only touches the parts that exist when it is created. Once these are
    // in, enrich drops rows naming the ids before storing them; a row it
    // stored on an older copy of the list is covered by the mutations below
    // if it landed before them, and erased by enrich itself otherwise (it
    // reads the list again after every insert). In the other order, rows
    // stored between the mutations and the tombstones would stay.
    write_tombstones(client, account, visitor, &sessions).await?;
    // Never empty (an empty array literal has no element type on old servers),
    // and "!" can never be a session id.
    sessions.push("!".to_owned());
    // The summary tables hold hashes of the visitor's ids in the periods they
    // were active: drop those periods' rows and rebuild them from the other
    // visitors' events. The rebuild is inserted after the DELETE is
    // submitted, and a mutation only touches parts older than itself, so the
    // rebuild stays; events arriving meanwhile are in both, and uniq states are sets.
    let hours: Vec<u32> = client
        .query("SELECT DISTINCT toUInt32(toStartOfHour(ts)) FROM events WHERE account_id = ? AND (visitor_id = ? OR has(?, session_id))")
        .bind(account)
        .bind(visitor)
        .bind(&sessions)
        .fetch_all::<u32>()
        .await?;
    for (view, period) in REBUILT_ON_ERASURE {
        let mut periods: Vec<u32> = hours.iter().map(|h| h / period.seconds() * period.seconds()).collect();
        periods.sort_unstable();
        periods.dedup();
        // The bounds let the sort key skip the days the visitor was not there.
        let first = periods.first().copied().unwrap_or(0);
        let after_last = periods.last().copied().unwrap_or(0).saturating_add(period.seconds());
        periods.push(0);
        // `? != ''` carries the visitor id into the mutation's text, where erasure_status looks for it.
        client
            .query(&format!("ALTER TABLE {} DELETE WHERE account_id = ? AND has(?, toUInt32(hour)) AND ? != ''", view.target))
            .bind(account)
            .bind(&periods)
            .bind(visitor)
            .execute()
            .await?;
        let others = format!(
            "account_id = ? AND ts >= toDateTime(?) AND ts < toDateTime(?) AND has(?, toUInt32({})) AND NOT (visitor_id = ? OR has(?, session_id))",
            period.of_ts()
        );
        client
            .query(&format!("INSERT INTO {} {}", view.target, view.select("events", Some(&others))))
            .bind(account)
            .bind(first)
            .bind(after_last)
            .bind(&periods)
            .bind(visitor)
            .bind(&sessions)
            .execute()
            .await?;
    }
    // Calls anonymised, rows deleted: the statements enrich's late clean-up issues too.
    let session_ids: Vec<&str> = sessions.iter().map(String::as_str).collect();
    erase_ids(client, account, &[visitor], &session_ids).await?;
    Ok(())
}

/// How far an erasure is: rows that still name the visitor, and unfinished
/// mutations that erase them. Done when both are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureStatus {
    pub remaining_rows: u64,
    pub pending_mutations: u64,
}

impl ErasureStatus {
    pub fn done(&self) -> bool {
        self.remaining_rows == 0 && self.pending_mutations == 0
    }
}

/// The status of `visitor`'s erasure. Counted as one `count()` over a
/// `UNION ALL`: a sum of scalar subqueries is `Nullable` on current servers.
pub async fn erasure_status(client: &Client, account: &str, visitor: &str) -> Result<ErasureStatus, StoreError> {
    let tables = ["events", "calls", "assignments", "sessions"];
    let parts: Vec<String> = tables.iter().map(|t| format!("SELECT 1 AS one FROM {t} WHERE account_id = ? AND visitor_id = ?")).collect();
    let mut query = client.query(&format!("SELECT count() FROM ({})", parts.join(" UNION ALL ")));
    for _ in tables {
        query = query.bind(account).bind(visitor);
    }
    let remaining_rows = query.fetch_one::<u64>().await?;
    // The visitor id is in every mutation erase_visitor() starts (as a quoted literal).
    let pending_mutations = client
        .query("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0 AND position(command, ?) > 0")
        .bind(format!("'{visitor}'"))
        .fetch_one::<u64>()
        .await?;
    Ok(ErasureStatus { remaining_rows, pending_mutations })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_call() -> CallRow {
        CallRow { visitor_id: "v".into(), session_id: "s".into(), ip: "1.2.3.4".into(), from_number: "+1".into(), caller_name: "n".into(), caller_city: "c".into(),
                  click_id: "g".into(), referrer: "r".into(), first_touch_session: "s0".into(), linear_session: vec!["s0".into(), "s".into()], channel: "email".into(), ..CallRow::default() }
    }

    #[test]
    fn an_id_hash_is_the_sha256_hex_of_the_id() {
        assert_eq!(id_hash_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(parse_id_hash(&id_hash_hex("abc")), Some(id_digest("abc")));
        assert_eq!(parse_id_hash("zz"), None);
        assert_eq!(parse_id_hash(&"g".repeat(64)), None);
    }

    #[test]
    fn tombstones_name_the_visitor_and_each_session_by_hash_only() {
        let t = tombstones("acc_a", "visitor-1", &["s1".into(), String::new(), "s2".into()]);
        let kinds: Vec<(&str, &str)> = t.iter().map(|e| (e.kind.as_str(), e.id_hash.as_str())).collect();
        assert_eq!(kinds, [(VISITOR, id_hash_hex("visitor-1").as_str()), (SESSION, id_hash_hex("s1").as_str()), (SESSION, id_hash_hex("s2").as_str())]);
        assert!(t.iter().all(|e| e.account_id == "acc_a" && !e.id_hash.contains("visitor") && e.id_hash.len() == 64));
    }

    #[test]
    fn the_update_sql_sets_every_erased_column() {
        let sql = call_erasure_set_sql();
        for column in ERASED_CALL_COLUMNS {
            assert!(sql.contains(&format!("{column} = ")), "{column} in {sql}");
        }
        assert!(sql.ends_with("linear_session = arrayMap(x -> '', linear_session)"));
    }

    #[test]
    fn anonymising_a_call_empties_exactly_the_erased_columns() {
        let mut call = full_call();
        anonymise_call(&mut call);
        assert_eq!(call, CallRow { linear_session: vec![String::new(), String::new()], channel: "email".into(), ..CallRow::default() });
    }
}
