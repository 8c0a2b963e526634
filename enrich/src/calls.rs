//! The calls of a batch, after its assignments and events are stored:
//! attributed ([`crate::attribute`]), checked against what a first delivery
//! already stored, anonymised when they name an erased visitor, and stored.
//! Also the corrections of calls stored earlier: a late assignment claims a
//! call stored `pending` or `none`, and the periodic pass retries `pending`
//! ones; a corrected call is a new row with a higher version.

use std::collections::HashMap;

use ringpath_store::rows::{AssignmentRow, CallRow};
use ringpath_store::StoreError;
use ringpath_types::time::now_ms;
use ringpath_types::wire::CallMessage;
use tokio::sync::watch;

use crate::attribute::{self, Wait};
use crate::attribution;
use crate::pipeline::Pipeline;
use crate::retry::{self, Error};
use crate::transform;

/// Keys of calls bound inline in one query at most (a query has a size limit, 256 KiB by default).
const KEYS_PER_QUERY: usize = 1000;

impl Pipeline {
    fn wait(&self) -> Wait {
        Wait { wait_ms: self.settings.attribution_wait.as_millis() as i64, now_ms: now_ms() }
    }

    /// Attributes and stores a batch's calls; returns the rows stored.
    pub(crate) async fn store_calls(&self, calls: &[CallMessage], assignments: &[AssignmentRow], shutdown: &mut watch::Receiver<bool>) -> Result<Vec<CallRow>, Error> {
        retry::retry("late attribution", &self.metrics, shutdown, || self.claim_unresolved_calls(assignments)).await?;
        let attributed = retry::retry("attribution", &self.metrics, shutdown, || self.attribute_all(calls)).await?;
        let mut rows = retry::retry("redelivered calls", &self.metrics, shutdown, || self.without_redelivered_unresolved(&attributed)).await?;
        self.anonymise_erased(&mut rows);
        let refused = retry::insert_isolating("calls", &rows, &self.metrics, shutdown, |part| self.store.insert_calls(part)).await?;
        self.send_refused("calls", refused, shutdown).await?;
        Ok(rows)
    }

    /// Attributes a batch's calls, keeping their order.
    async fn attribute_all(&self, calls: &[CallMessage]) -> Result<Vec<CallRow>, StoreError> {
        let mut rows: Vec<(CallRow, i64)> = calls
            .iter()
            .map(|msg| {
                let received = msg.received.received_at;
                let started_ms = transform::plausible_ms(ringpath_types::time::parse_rfc3339_ms(&msg.call.started_at).unwrap_or(received), received, transform::MAX_CALL_AGE_MS);
                (attribution::base_row(msg, started_ms, received.max(0) as u64), received)
            })
            .collect();
        attribute::attribute_rows(&self.store, &self.accounts(), &mut rows, self.wait()).await?;
        Ok(rows.into_iter().map(|(row, _)| row).collect())
    }

    /// An assignment that arrives after its call (out of order, or after
    /// the wait ran out) corrects that call: a new row with a higher version.
    async fn claim_unresolved_calls(&self, assignments: &[AssignmentRow]) -> Result<(), StoreError> {
        let Some(from) = assignments.iter().map(|a| a.assigned_ms).min() else { return Ok(()) };
        let to = assignments.iter().map(|a| a.expires_ms).max().unwrap_or(from);
        let mut keys: Vec<String> = assignments.iter().map(|a| [a.account_id.as_str(), "|", a.number.as_str()].concat()).collect();
        keys.sort_unstable();
        keys.dedup();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let unresolved = self.store.unresolved_calls(chunk, from, to).await?;
            self.correct(unresolved).await?;
        }
        Ok(())
    }

    /// Re-attributes stored calls; rows that now have an answer are written again with a newer version.
    async fn correct(&self, rows: Vec<CallRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let before: Vec<String> = rows.iter().map(|row| row.attribution.clone()).collect();
        let mut redone: Vec<(CallRow, i64)> = rows
            .into_iter()
            .map(|row| {
                let received_ms = i64::from(row.received_at) * 1000;
                (row, received_ms)
            })
            .collect();
        attribute::attribute_rows(&self.store, &self.accounts(), &mut redone, self.wait()).await?;
        // Only calls whose answer changed are written again, with a newer version.
        let mut corrected: Vec<CallRow> = redone
            .into_iter()
            .zip(before)
            .filter(|((row, _), was)| row.attribution != *was)
            .map(|((mut row, _), _)| {
                row.version = (now_ms().max(0) as u64).max(row.version + 1);
                row
            })
            .collect();
        let filtered_at = self.anonymise_erased(&mut corrected);
        self.store.insert_calls(&corrected).await?;
        if !corrected.is_empty() {
            self.erase_late(filtered_at, &[], &[], &corrected).await?;
        }
        self.metrics.rows.with_label_values(&["calls_corrected"]).inc_by(corrected.len() as u64);
        Ok(())
    }

    /// The calls, less those that came out `pending` or `none` and are stored
    /// already with the same or a newer version: a redelivery of a message
    /// stored before (the version is its receive time). Their assignment may
    /// be gone since — deleted with an erased visitor, dropped by the
    /// suppression list on replay — and an equal version would replace the
    /// attribution the call earned (ReplacingMergeTree keeps the last insert).
    async fn without_redelivered_unresolved(&self, calls: &[CallRow]) -> Result<Vec<CallRow>, StoreError> {
        let is_unresolved = |c: &CallRow| c.attribution == "pending" || c.attribution == "none";
        let unresolved: Vec<&CallRow> = calls.iter().filter(|c| is_unresolved(c)).collect();
        let (Some(from), Some(to)) = (unresolved.iter().map(|c| c.started_at).min(), unresolved.iter().map(|c| c.started_at).max()) else {
            return Ok(calls.to_vec());
        };
        let key = |account: &str, call: &str| [account, "|", call].concat();
        let mut keys: Vec<String> = unresolved.iter().map(|c| key(&c.account_id, &c.call_id)).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut stored = HashMap::new();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            for call in self.store.stored_call_versions(chunk, from, to).await? {
                stored.insert(key(&call.account_id, &call.call_id), call.newest);
            }
        }
        let redelivered = |c: &CallRow| is_unresolved(c) && stored.get(&key(&c.account_id, &c.call_id)).is_some_and(|v| *v >= c.version);
        Ok(calls.iter().filter(|c| !redelivered(c)).cloned().collect())
    }

    /// Retries calls stored as `pending`; a found holder or an expired wait
    /// writes a corrected row with a higher version.
    pub(crate) async fn reattribute_pending(&self) -> Result<(), StoreError> {
        let pending = self.store.pending_calls().await?;
        self.correct(pending).await
    }
}
