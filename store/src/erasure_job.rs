//! The erasure job: what `DELETE …/visitors/{id}` records before its 202
//! ([`request_erasure`]: the job's record in `erasure_jobs`, then the
//! visitor's tombstone), and the steps that run after the answer, in order,
//! each recorded once done so that a job cut off anywhere (a crash, a
//! restart, a ClickHouse outage) is resumed from its record ([`run_step`]).
//! Every step is idempotent, so a step run twice, or a job run by two
//! dashboard-api replicas at once, changes nothing. Which jobs to run, when,
//! and by whom is the caller's (dashboard-api's erasure worker); this module
//! has no clock of its own beyond `now_ms` and never sleeps.
//!
//! The summary tables (`event_stats`, `attribution_*`) are never left
//! without other visitors' rows by a finished job, whatever was cut off: a
//! period's rows are deleted (a mutation) and then rebuilt from the other
//! visitors' events; a job cut off between the two has not recorded the
//! step, so its resumption deletes and rebuilds again; and the last step
//! inserts every rebuild once more after all mutations have run (states are
//! sets: a second copy changes no count), which restores rows a second
//! runner's delete removed after the first runner's rebuild (store/README.md
//! "Erasure jobs").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use clickhouse::Client;

use crate::erasure::{erase_ids, pending_mutations, write_tombstones};
use crate::error::StoreError;
use crate::rows::ErasureJobRow;
use crate::views::{Period, View, REBUILT_ON_ERASURE};

/// One step of an erasure job. `erasure_jobs.step` counts the steps done,
/// in the order of [`JOB_STEPS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStep {
    /// The visitor's session ids (from `visitor_events`, `assignments`,
    /// `calls`) and the hours they had events in (`visitor_events`) are
    /// found and recorded, and the sessions' tombstones written.
    Find,
    /// The periods of one summary table (`REBUILT_ON_ERASURE[i]`) the visitor
    /// was active in: their rows deleted, then rebuilt from the other
    /// visitors' events.
    Rebuild(usize),
    /// Their calls anonymised, their rows deleted ([`erase_ids`]).
    Erase,
    /// Every mutation naming the visitor has run and no row names them (else
    /// [`JobStep::Erase`] again); then the summary rebuilds are inserted once
    /// more (see the module's note).
    Verify,
}

/// The steps, in order.
pub const JOB_STEPS: [JobStep; 6] = [JobStep::Find, JobStep::Rebuild(0), JobStep::Rebuild(1), JobStep::Rebuild(2), JobStep::Erase, JobStep::Verify];

/// `erasure_jobs.step` of a job whose steps all ran: only the delete of its
/// own record is left.
pub const FINISHED: u8 = JOB_STEPS.len() as u8;

/// Where a job is, for a [`JobHook`] (tests stop a job at an exact point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPoint {
    /// A step is about to run.
    Before(JobStep),
    /// A summary table's periods' delete is submitted and its rebuild not yet
    /// inserted: the point where a crash once lost every visitor's rows.
    PeriodsDeleted(&'static str),
    /// Every step ran; the delete of the job's record is submitted.
    Finished,
}

/// Awaited at every [`JobPoint`].
pub type JobHook = Arc<dyn Fn(JobPoint) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What one call of [`run_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// This step ran and is recorded; call again for the next.
    Stepped(JobStep),
    /// Mutations naming the visitor are still running: call again later.
    Waiting,
    /// Every step ran and the job's record is being deleted.
    Finished,
}

/// Records an erasure of `visitor` of `account`: the job's record first, so
/// a crash after it leaves a job that the next start resumes, then the
/// visitor's tombstone, from which on enrich stores nothing naming them. The
/// 202 is sent after both; everything else runs in [`run_step`].
pub async fn request_erasure(client: &Client, account: &str, visitor: &str, owner: &str) -> Result<ErasureJobRow, StoreError> {
    let now = now_ms();
    let job = ErasureJobRow { account_id: account.to_owned(), visitor_id: visitor.to_owned(), requested_ms: now, owner: owner.to_owned(), updated_ms: now, ..ErasureJobRow::default() };
    insert_job_row(client, &job).await?;
    write_tombstones(client, account, visitor, &[]).await?;
    Ok(job)
}

/// Every job with a record, unfinished or with its record's delete not yet
/// run, oldest request first: `step` is the furthest any runner recorded (a
/// recorded step was done), `sessions` and `hours` everything any runner
/// found, `owner` and `updated_ms` those of its newest row.
pub async fn pending_jobs(client: &Client) -> Result<Vec<ErasureJobRow>, StoreError> {
    // Aliases differ from column names (18.16 substitutes an alias inside the other expressions).
    Ok(client
        .query(
            "SELECT account_id, visitor_id, requested_ms, max(step) AS j_step, groupUniqArrayArray(sessions) AS j_sessions, groupUniqArrayArray(hours) AS j_hours, \
             argMax(owner, updated_ms) AS j_owner, max(updated_ms) AS j_updated FROM erasure_jobs GROUP BY account_id, visitor_id, requested_ms ORDER BY requested_ms",
        )
        .fetch_all::<ErasureJobRow>()
        .await?)
}

/// Steps still to run of `visitor`'s unfinished jobs (the most of any).
pub async fn steps_remaining(client: &Client, account: &str, visitor: &str) -> Result<u64, StoreError> {
    let done: Vec<u8> =
        client.query("SELECT max(step) FROM erasure_jobs WHERE account_id = ? AND visitor_id = ? GROUP BY requested_ms").bind(account).bind(visitor).fetch_all::<u8>().await?;
    Ok(done.iter().map(|d| u64::from(FINISHED.saturating_sub(*d))).max().unwrap_or(0))
}

/// Runs the next step of `job` (as [`pending_jobs`] or [`request_erasure`]
/// gave it) and records it, as `owner`; `job` is updated to match.
pub async fn run_step(client: &Client, job: &mut ErasureJobRow, owner: &str, hook: Option<&JobHook>) -> Result<Progress, StoreError> {
    let Some(step) = JOB_STEPS.get(usize::from(job.step)).copied() else {
        return finish(client, job, hook).await;
    };
    if let Some(hook) = hook {
        hook(JobPoint::Before(step)).await;
    }
    match step {
        JobStep::Find => find(client, job).await?,
        JobStep::Rebuild(i) => {
            let (view, period) = REBUILT_ON_ERASURE[i];
            delete_periods(client, job, view, period).await?;
            if let Some(hook) = hook {
                hook(JobPoint::PeriodsDeleted(view.target)).await;
            }
            insert_rebuild(client, job, view, period).await?;
        }
        JobStep::Erase => erase_ids(client, &job.account_id, &[&job.visitor_id], &session_refs(job)).await?,
        JobStep::Verify => {
            if !verified(client, job).await? {
                return Ok(Progress::Waiting);
            }
            for (view, period) in REBUILT_ON_ERASURE {
                insert_rebuild(client, job, view, period).await?;
            }
        }
    }
    job.step += 1;
    job.owner = owner.to_owned();
    job.updated_ms = now_ms().max(job.updated_ms + 1);
    insert_job_row(client, job).await?;
    if job.step == FINISHED {
        return finish(client, job, hook).await;
    }
    Ok(Progress::Stepped(step))
}

async fn finish(client: &Client, job: &ErasureJobRow, hook: Option<&JobHook>) -> Result<Progress, StoreError> {
    delete_job(client, job).await?;
    if let Some(hook) = hook {
        hook(JobPoint::Finished).await;
    }
    Ok(Progress::Finished)
}

fn now_ms() -> u64 {
    ringpath_types::time::now_ms().max(0) as u64
}

async fn insert_job_row(client: &Client, job: &ErasureJobRow) -> Result<(), StoreError> {
    let mut insert = client.insert::<ErasureJobRow>("erasure_jobs").await?;
    insert.write(job).await?;
    insert.end().await?;
    Ok(())
}

/// The job's record goes (the raw ids in it with it); a request made since
/// (a later `requested_ms`) keeps its own.
async fn delete_job(client: &Client, job: &ErasureJobRow) -> Result<(), StoreError> {
    client
        .query("ALTER TABLE erasure_jobs DELETE WHERE account_id = ? AND visitor_id = ? AND requested_ms <= ?")
        .bind(&job.account_id)
        .bind(&job.visitor_id)
        .bind(job.requested_ms)
        .execute()
        .await?;
    Ok(())
}

/// The job's session ids, never empty (an empty array literal has no element
/// type on old servers) and "!" is never an id.
fn session_refs(job: &ErasureJobRow) -> Vec<&str> {
    job.sessions.iter().map(String::as_str).chain(["!"]).collect()
}

/// The visitor's sessions and active hours, read by visitor (`visitor_events`
/// by its sort key, the small `assignments` and `calls` columns), merged into
/// what the job already holds; then the sessions' tombstones. An event names
/// a session only with its visitor (the tracker sends both or neither), so
/// the visitor's hours are the hours of their own events.
async fn find(client: &Client, job: &mut ErasureJobRow) -> Result<(), StoreError> {
    let (account, visitor) = (job.account_id.as_str(), job.visitor_id.as_str());
    let sessions: Vec<String> = client
        .query(
            "SELECT DISTINCT session_id FROM visitor_events WHERE account_id = ? AND visitor_id = ? AND session_id != '' \
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
    let hours: Vec<u32> =
        client.query("SELECT DISTINCT toUInt32(toStartOfHour(ts)) FROM visitor_events WHERE account_id = ? AND visitor_id = ?").bind(account).bind(visitor).fetch_all::<u32>().await?;
    job.sessions.extend(sessions);
    job.sessions.sort();
    job.sessions.dedup();
    job.hours.extend(hours);
    job.hours.sort_unstable();
    job.hours.dedup();
    write_tombstones(client, account, visitor, &job.sessions).await
}

/// The starts of the `period`s holding `hours`, sorted, each once.
pub fn periods_of(hours: &[u32], period: Period) -> Vec<u32> {
    let mut periods: Vec<u32> = hours.iter().map(|h| h / period.seconds() * period.seconds()).collect();
    periods.sort_unstable();
    periods.dedup();
    periods
}

/// Deletes the rows of `view`'s table for the periods the visitor was active in.
async fn delete_periods(client: &Client, job: &ErasureJobRow, view: &View, period: Period) -> Result<(), StoreError> {
    let periods = periods_of(&job.hours, period);
    if periods.is_empty() {
        return Ok(());
    }
    // `? != ''` carries the visitor id into the mutation's text, where the status looks for it.
    client
        .query(&format!("ALTER TABLE {} DELETE WHERE account_id = ? AND has(?, toUInt32(hour)) AND ? != ''", view.target))
        .bind(&job.account_id)
        .bind(&periods)
        .bind(&job.visitor_id)
        .execute()
        .await?;
    Ok(())
}

/// The events a rebuild of `period`s counts: the account's, on the days
/// holding those periods (the `IN` subquery lets the sort key of `events`,
/// `(account_id, toDate(ts), …)`, skip the other days; a period's first and
/// last second name its days in the server's zone), in those periods, and
/// neither of this visitor nor of any visitor whose erasure is unfinished
/// (their jobs' records hold their ids), so that two erasures in the same
/// hours cannot put each other back.
fn rebuild_filter(period: Period) -> String {
    format!(
        "account_id = ? AND toDate(ts) IN (SELECT arrayJoin(arrayMap(t -> toDate(toDateTime(t)), ?))) AND has(?, toUInt32({})) \
         AND NOT (visitor_id = ? OR has(?, session_id) \
         OR visitor_id IN (SELECT visitor_id FROM erasure_jobs WHERE account_id = ?) \
         OR session_id IN (SELECT arrayJoin(sessions) FROM erasure_jobs WHERE account_id = ?))",
        period.of_ts()
    )
}

/// Inserts `view`'s rows for the visitor's periods, computed from the other
/// visitors' events by the view's own SELECT. Inserted after the delete was
/// submitted, they stay: a mutation only touches parts older than itself.
/// Inserted twice, they change nothing: the columns are uniq states and
/// sketches, which merge as set unions.
async fn insert_rebuild(client: &Client, job: &ErasureJobRow, view: &View, period: Period) -> Result<(), StoreError> {
    let periods = periods_of(&job.hours, period);
    if periods.is_empty() {
        return Ok(());
    }
    let edges: Vec<u32> = periods.iter().flat_map(|p| [*p, p + (period.seconds() - 1)]).collect();
    client
        .query(&format!("INSERT INTO {} {}", view.target, view.select("events", Some(&rebuild_filter(period)))))
        .bind(&job.account_id)
        .bind(&edges)
        .bind(&periods)
        .bind(&job.visitor_id)
        .bind(session_refs(job))
        .bind(&job.account_id)
        .bind(&job.account_id)
        .execute()
        .await?;
    Ok(())
}

/// Whether every mutation naming the visitor has run and no row names the
/// visitor or their sessions any more, `events` included (read whole: this
/// runs once per job). Rows found then were stored after the mutations were
/// created (enrich erases such rows itself; this is the net under it): they
/// are erased again and the job waits for that.
async fn verified(client: &Client, job: &ErasureJobRow) -> Result<bool, StoreError> {
    if pending_mutations(client, &job.visitor_id).await? > 0 {
        return Ok(false);
    }
    let sessions = session_refs(job);
    let tables = ["events", "visitor_events", "sessions", "assignments", "calls"];
    let parts: Vec<String> = tables.iter().map(|t| format!("SELECT 1 AS one FROM {t} WHERE account_id = ? AND (visitor_id = ? OR has(?, session_id))")).collect();
    let mut query = client.query(&format!("SELECT count() FROM ({})", parts.join(" UNION ALL ")));
    for _ in tables {
        query = query.bind(&job.account_id).bind(&job.visitor_id).bind(&sessions);
    }
    let remaining = query.fetch_one::<u64>().await?;
    if remaining == 0 {
        return Ok(true);
    }
    tracing::warn!(account = %job.account_id, remaining, "rows naming an erased visitor were stored after their erasure's mutations; erasing them again");
    erase_ids(client, &job.account_id, &[&job.visitor_id], &sessions).await?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_rebuilds_every_summary_table_between_finding_and_erasing() {
        let rebuilds: Vec<usize> = JOB_STEPS.iter().filter_map(|s| if let JobStep::Rebuild(i) = s { Some(*i) } else { None }).collect();
        assert_eq!(rebuilds, (0..REBUILT_ON_ERASURE.len()).collect::<Vec<_>>());
        assert_eq!((JOB_STEPS.first(), JOB_STEPS.last()), (Some(&JobStep::Find), Some(&JobStep::Verify)));
        let erase = JOB_STEPS.iter().position(|s| *s == JobStep::Erase).unwrap();
        assert!(JOB_STEPS[..erase].iter().all(|s| *s != JobStep::Verify) && erase == JOB_STEPS.len() - 2);
    }

    #[test]
    fn periods_are_the_hours_or_days_the_visitor_was_active_in() {
        let (h, d) = (3600u32, 86_400u32);
        let hours = [10 * d + 5 * h, 10 * d + 5 * h, 10 * d + 9 * h, 12 * d];
        assert_eq!(periods_of(&hours, Period::Hour), [10 * d + 5 * h, 10 * d + 9 * h, 12 * d]);
        assert_eq!(periods_of(&hours, Period::Day), [10 * d, 12 * d]);
        assert!(periods_of(&[], Period::Day).is_empty());
    }

    #[test]
    fn a_rebuild_reads_the_periods_days_by_the_sort_key_and_leaves_out_every_erasure_in_progress() {
        let sql = REBUILT_ON_ERASURE[2].0.select("events", Some(&rebuild_filter(Period::Day)));
        assert!(sql.contains("WHERE (channel != '') AND (account_id = ? AND toDate(ts) IN (SELECT"), "{sql}");
        assert!(sql.contains("has(?, toUInt32(toStartOfDay(ts, 'UTC')))"), "{sql}");
        assert!(sql.contains("visitor_id IN (SELECT visitor_id FROM erasure_jobs WHERE account_id = ?)"), "{sql}");
        assert_eq!(sql.matches('?').count(), 7, "the binds of insert_rebuild: {sql}");
        assert!(sql.ends_with("GROUP BY account_id, hour, is_bot, dimension, key"));
    }

    #[test]
    fn a_job_counts_its_remaining_steps_down_to_finished() {
        assert_eq!(usize::from(FINISHED), JOB_STEPS.len());
        assert!(JOB_STEPS.get(usize::from(FINISHED)).is_none(), "a finished job runs no step, only its record's delete");
    }
}
