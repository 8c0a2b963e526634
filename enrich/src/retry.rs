//! What enrich does when ClickHouse fails, decided once by the failure's
//! class (`ringpath_store::ErrorClass`, by ClickHouse's error code):
//! retryable failures (connection, timeout, too many parts) are retried with
//! backoff and hold the batch's offsets — an outage stops progress and loses
//! nothing; permanent ones are never retried. For inserts, the rows a
//! permanent failure is about are found by splitting the batch, sent to the
//! dead-letter topic with the reason, and the rest is stored: one poison row
//! cannot stall its partition.

use std::future::Future;
use std::time::Duration;

use ringpath_store::{ErrorClass, StoreError};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Longest wait for one ClickHouse operation before it counts as failed (and is retried).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Why enrich stopped working on a batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ClickHouse refuses the statement or rows for good.
    #[error("{what}: {source}")]
    Permanent { what: &'static str, source: StoreError },
    /// Stopping while a batch was unwritten: its offsets stay uncommitted, it will be replayed.
    #[error("shutting down with an unwritten batch ({0}): it will be replayed")]
    ShuttingDown(&'static str),
    /// The dead-letter topic could not take a message before shutdown.
    #[error("shutting down before the dead letters were written: {0}")]
    DeadLetters(String),
}

/// One failed attempt, as `retry` sees it.
enum Attempt {
    Failed(StoreError),
    NoAnswer,
}

/// Runs `op` until it succeeds. Retryable failures (and no answer within
/// [`OPERATION_TIMEOUT`]) are retried with doubling backoff up to 5 s;
/// a permanent failure is returned at once; shutdown ends the wait.
pub async fn retry<T, F, Fut>(what: &'static str, metrics: &Metrics, shutdown: &mut watch::Receiver<bool>, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut delay = FIRST_DELAY;
    loop {
        // A hung server is an outage too; a timed-out insert may still have
        // landed, which the replay-safe tables make harmless.
        let attempt = match tokio::time::timeout(OPERATION_TIMEOUT, op()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => Attempt::Failed(e),
            Err(_) => Attempt::NoAnswer,
        };
        metrics.store_errors.with_label_values(&[what]).inc();
        let reason = match attempt {
            Attempt::Failed(e) if e.class() == ErrorClass::Permanent => {
                tracing::error!(error = %e, what, "clickhouse refused for good; not retried");
                return Err(Error::Permanent { what, source: e });
            }
            Attempt::Failed(e) => e.to_string(),
            Attempt::NoAnswer => format!("no answer within {OPERATION_TIMEOUT:?}"),
        };
        tracing::warn!(error = %reason, what, retry_in_ms = delay.as_millis() as u64, "clickhouse failed; holding offsets and retrying");
        if *shutdown.borrow() {
            return Err(Error::ShuttingDown(what));
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {}
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Inserts `rows` with [`retry`]; when ClickHouse refuses them for good,
/// halves them until each refused row is alone, stores the others, and
/// returns the refused rows with the reason.
pub async fn insert_isolating<'a, R, F, Fut>(what: &'static str, rows: &'a [R], metrics: &Metrics, shutdown: &mut watch::Receiver<bool>, insert: F) -> Result<Vec<(R, String)>, Error>
where
    R: Clone,
    F: Fn(&'a [R]) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut refused = Vec::new();
    let mut todo: Vec<&'a [R]> = vec![rows];
    while let Some(part) = todo.pop() {
        if part.is_empty() {
            continue;
        }
        match retry(what, metrics, shutdown, || insert(part)).await {
            Ok(()) => {}
            Err(Error::Permanent { source, .. }) if part.len() == 1 => refused.push((part[0].clone(), source.to_string())),
            Err(Error::Permanent { .. }) => {
                let (first, second) = part.split_at(part.len() / 2);
                todo.push(second);
                todo.push(first);
            }
            Err(other) => return Err(other),
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn refused(code: u32) -> StoreError {
        StoreError(clickhouse::error::Error::BadResponse(format!("Code: {code}. DB::Exception: no")))
    }

    #[tokio::test]
    async fn a_poison_row_is_isolated_and_the_rest_stored() {
        let metrics = Metrics::new();
        let (_tx, mut rx) = watch::channel(false);
        let stored = Mutex::new(Vec::new());
        let rows: Vec<u32> = (0..100).collect();
        let refused_rows = insert_isolating("events", &rows, &metrics, &mut rx, |part: &[u32]| {
            let ok = !part.contains(&37) && !part.contains(&80);
            if ok {
                stored.lock().unwrap().extend_from_slice(part);
            }
            async move { if ok { Ok(()) } else { Err(refused(6)) } }
        })
        .await
        .unwrap();
        assert_eq!(refused_rows.iter().map(|(r, _)| *r).collect::<Vec<_>>(), [37, 80]);
        assert!(refused_rows[0].1.contains("Code: 6"), "{}", refused_rows[0].1);
        let mut stored = stored.into_inner().unwrap();
        stored.sort_unstable();
        assert_eq!(stored, rows.iter().copied().filter(|r| *r != 37 && *r != 80).collect::<Vec<_>>(), "every other row stored once");
    }

    #[tokio::test]
    async fn retryable_failures_are_retried_until_they_pass() {
        let metrics = Metrics::new();
        let (_tx, mut rx) = watch::channel(false);
        let tries = Mutex::new(0);
        let got = retry("events", &metrics, &mut rx, || {
            let n = {
                let mut t = tries.lock().unwrap();
                *t += 1;
                *t
            };
            async move { if n < 3 { Err(refused(252)) } else { Ok(n) } }
        })
        .await
        .unwrap();
        assert_eq!(got, 3, "too many parts twice, then stored");
        assert_eq!(metrics.store_errors.with_label_values(&["events"]).get(), 2);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_not_retried_and_shutdown_ends_a_retry() {
        let metrics = Metrics::new();
        let (tx, mut rx) = watch::channel(false);
        let tries = Mutex::new(0);
        let result: Result<(), Error> = retry("calls", &metrics, &mut rx, || {
            *tries.lock().unwrap() += 1;
            async { Err(refused(53)) }
        })
        .await;
        assert!(matches!(result, Err(Error::Permanent { what: "calls", .. })));
        assert_eq!(*tries.lock().unwrap(), 1);
        tx.send(true).unwrap();
        let result: Result<(), Error> = retry("calls", &metrics, &mut rx, || async { Err(refused(210)) }).await;
        assert!(matches!(result, Err(Error::ShuttingDown("calls"))));
    }
}
