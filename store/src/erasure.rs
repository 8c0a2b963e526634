//! Erasure (README "Dashboard API": after `DELETE …/visitors/{id}` no row
//! holds that visitor anywhere; aggregate counts may stay): the suppression
//! list's tombstones (table `erasures`: sha256 hashes of the visitor's id and
//! session ids, kept forever), the mutations that delete the visitor's rows
//! and anonymise their calls, and the status of an erasure. The job that
//! runs an erasure's steps in order, resumably, is [`crate::erasure_job`].
//! enrich reads the same tombstones (its suppression cache) so a replay never
//! stores them again, and runs [`erase_ids`] itself on rows stored while an
//! erasure was written.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::rows::CallRow;

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
/// this list. `sessions` and `visitor_events` are filled from events by
/// materialized views (a mutation on events does not reach them), so they
/// are erased with them.
pub const ERASE_TABLES: &[&str] = &["events", "visitor_events", "assignments", "sessions"];

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

/// Writes the tombstones of `visitor` and their `sessions` that the list
/// does not hold yet (a tombstone is kept forever: an erasure resumed or
/// repeated adds no second copy).
pub async fn write_tombstones(client: &Client, account: &str, visitor: &str, sessions: &[String]) -> Result<(), StoreError> {
    let wanted = tombstones(account, visitor, sessions);
    let hashes: Vec<&str> = wanted.iter().map(|t| t.id_hash.as_str()).collect();
    let held: Vec<String> = client.query("SELECT DISTINCT id_hash FROM erasures WHERE account_id = ? AND has(?, id_hash)").bind(account).bind(&hashes).fetch_all::<String>().await?;
    let missing: Vec<&NewErasure> = wanted.iter().filter(|t| !held.contains(&t.id_hash)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<NewErasure>("erasures").await?;
    for tombstone in missing {
        insert.write(tombstone).await?;
    }
    insert.end().await?;
    Ok(())
}

/// How far an erasure is: rows that still name the visitor, unfinished
/// mutations that erase them, and steps of its job still to run. Done when
/// all three are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureStatus {
    pub remaining_rows: u64,
    pub pending_mutations: u64,
    pub steps_remaining: u64,
}

impl ErasureStatus {
    pub fn done(&self) -> bool {
        self.remaining_rows == 0 && self.pending_mutations == 0 && self.steps_remaining == 0
    }
}

/// Tables the status counts a visitor's rows in, each read by its sort key
/// or small: `visitor_events` stands for `events` (its view copies every
/// event that names a visitor; the job's last step checks `events` itself
/// before the job's record goes), and the job's record names the visitor too.
const STATUS_TABLES: [&str; 5] = ["visitor_events", "calls", "assignments", "sessions", "erasure_jobs"];

/// The status of `visitor`'s erasure. Counted as one `count()` over a
/// `UNION ALL`: a sum of scalar subqueries is `Nullable` on current servers.
pub async fn erasure_status(client: &Client, account: &str, visitor: &str) -> Result<ErasureStatus, StoreError> {
    let parts: Vec<String> = STATUS_TABLES.iter().map(|t| format!("SELECT 1 AS one FROM {t} WHERE account_id = ? AND visitor_id = ?")).collect();
    let mut query = client.query(&format!("SELECT count() FROM ({})", parts.join(" UNION ALL ")));
    for _ in STATUS_TABLES {
        query = query.bind(account).bind(visitor);
    }
    let remaining_rows = query.fetch_one::<u64>().await?;
    let pending_mutations = pending_mutations(client, visitor).await?;
    let steps_remaining = crate::erasure_job::steps_remaining(client, account, visitor).await?;
    Ok(ErasureStatus { remaining_rows, pending_mutations, steps_remaining })
}

/// Unfinished mutations that name `visitor`: its id is in every mutation an
/// erasure starts, as a quoted literal (`erase_ids`, the summary tables'
/// deletes, the job record's delete).
pub async fn pending_mutations(client: &Client, visitor: &str) -> Result<u64, StoreError> {
    Ok(client
        .query("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0 AND position(command, ?) > 0")
        .bind(format!("'{visitor}'"))
        .fetch_one::<u64>()
        .await?)
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
