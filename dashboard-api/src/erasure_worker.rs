//! The erasure worker (README "Erasure"): runs the erasure jobs that
//! `DELETE …/visitors/{id}` recorded, after its 202 and outside the report
//! timeout, one task per job, step by step
//! (`ringpath_store::erasure_job::run_step`, which records each step).
//! It takes a job when the handler hands it over, and from the job table: at
//! start every unfinished job this replica owned (a crash or a restart cut it
//! off), and at every sweep any job whose last record is older than the
//! lease (its replica is gone). A job run twice is harmless, every step
//! being idempotent. What a step does is the store crate's; this module only
//! decides when and retries.

use std::collections::HashSet;
use std::time::Duration;

use clickhouse::Client;
use ringpath_store::erasure_job::{pending_jobs, run_step, JobHook, Progress};
use ringpath_store::rows::ErasureJobRow;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How the worker finds and retries jobs.
#[derive(Clone)]
pub struct WorkerOptions {
    /// This replica's name in the job records (`RINGPATH_DASHBOARD_REPLICA`,
    /// default the host name): a restarted replica resumes its own jobs at once.
    pub owner: String,
    /// How often the job table is read for jobs nobody works on
    /// (`RINGPATH_DASHBOARD_ERASURE_SWEEP_S`, default 30).
    pub sweep: Duration,
    /// A job whose newest record is older than this belongs to whoever takes
    /// it (4 sweeps).
    pub lease: Duration,
    /// Awaited at every point of a job (tests stop a job there).
    pub hook: Option<JobHook>,
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions").field("owner", &self.owner).field("sweep", &self.sweep).field("lease", &self.lease).field("hook", &self.hook.is_some()).finish()
    }
}

pub const DEFAULT_SWEEP: Duration = Duration::from_secs(30);

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { owner: host_name(), sweep: DEFAULT_SWEEP, lease: DEFAULT_SWEEP * 4, hook: None }
    }
}

impl WorkerOptions {
    pub fn from_env(env: &std::collections::HashMap<String, String>) -> anyhow::Result<WorkerOptions> {
        let mut options = WorkerOptions::default();
        if let Some(owner) = env.get("RINGPATH_DASHBOARD_REPLICA").filter(|o| !o.trim().is_empty()) {
            owner.trim().clone_into(&mut options.owner);
        }
        if let Some(v) = env.get("RINGPATH_DASHBOARD_ERASURE_SWEEP_S") {
            let seconds = v.trim().parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| anyhow::anyhow!("RINGPATH_DASHBOARD_ERASURE_SWEEP_S must be a positive number of seconds"))?;
            options.sweep = Duration::from_secs(seconds);
            options.lease = options.sweep * 4;
        }
        Ok(options)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).unwrap_or_else(|| "dashboard-api".to_owned())
}

/// A job, as the worker tells jobs apart.
type JobKey = (String, String, u64);

fn key(job: &ErasureJobRow) -> JobKey {
    (job.account_id.clone(), job.visitor_id.clone(), job.requested_ms)
}

/// Hands jobs to the worker (the `erase` handler).
#[derive(Clone)]
pub struct Jobs {
    tx: mpsc::UnboundedSender<ErasureJobRow>,
    /// This replica's name, for the job's first record.
    pub owner: String,
}

impl Jobs {
    /// Runs `job` now. If the worker is gone (shutting down) the job stays
    /// recorded and the next start, or another replica, runs it.
    pub fn submit(&self, job: ErasureJobRow) {
        let _ = self.tx.send(job);
    }
}

/// The running worker.
pub struct Worker {
    task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

/// How long a stopping worker waits for its jobs to finish the step they are in.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

impl Worker {
    /// Lets each job finish the step it is in (the next start resumes it).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_DEADLINE, self.task).await.is_err() {
            abort.abort();
        }
    }

    /// Stops everything where it is, as a crash would (tests).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Starts the worker on `client` (the writer).
pub fn spawn(client: Client, options: WorkerOptions) -> (Jobs, Worker) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (shutdown, stopping) = watch::channel(false);
    let jobs = Jobs { tx, owner: options.owner.clone() };
    let task = tokio::spawn(run(client, options, rx, stopping));
    (jobs, Worker { task, shutdown })
}

async fn run(client: Client, options: WorkerOptions, mut handed: mpsc::UnboundedReceiver<ErasureJobRow>, mut stopping: watch::Receiver<bool>) {
    let mut running: JoinSet<JobKey> = JoinSet::new();
    let mut in_flight: HashSet<JobKey> = HashSet::new();
    let mut next_sweep = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stopping.changed() => break,
            Some(job) = handed.recv() => {
                if in_flight.insert(key(&job)) {
                    running.spawn(work(client.clone(), job, options.clone(), stopping.clone()));
                }
            }
            Some(done) = running.join_next() => {
                if let Ok(done) = done {
                    in_flight.remove(&done);
                }
            }
            _ = tokio::time::sleep_until(next_sweep) => {
                next_sweep = tokio::time::Instant::now() + options.sweep;
                match pending_jobs(&client).await {
                    Ok(jobs) => {
                        let now = ringpath_types::time::now_ms().max(0) as u64;
                        for job in jobs.into_iter().filter(|j| takes(&options, j, now)) {
                            if in_flight.insert(key(&job)) {
                                tracing::info!(account = %job.account_id, step = job.step, owner = %job.owner, "resuming an erasure");
                                running.spawn(work(client.clone(), job, options.clone(), stopping.clone()));
                            }
                        }
                    }
                    // Soon again: at start this is the resumption of cut-off jobs.
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the erasure jobs; trying again");
                        next_sweep = tokio::time::Instant::now() + options.sweep.min(Duration::from_secs(2));
                    }
                }
            }
        }
    }
    // Each job stops after the step it is in.
    while running.join_next().await.is_some() {}
}

/// Whether this replica takes a job found in the table: its own (cut off by
/// a crash or restart), or one nobody has recorded anything for within the lease.
fn takes(options: &WorkerOptions, job: &ErasureJobRow, now_ms: u64) -> bool {
    job.owner == options.owner || job.updated_ms.saturating_add(options.lease.as_millis() as u64) < now_ms
}

/// Runs one job to its end, retrying failed steps with backoff, until done
/// or the worker stops (between steps).
async fn work(client: Client, mut job: ErasureJobRow, options: WorkerOptions, mut stopping: watch::Receiver<bool>) -> JobKey {
    let id = key(&job);
    let started = std::time::Instant::now();
    let mut retry = Duration::from_millis(200);
    let mut poll = Duration::from_millis(100);
    loop {
        if *stopping.borrow() {
            break;
        }
        let wait = match run_step(&client, &mut job, &options.owner, options.hook.as_ref()).await {
            Ok(Progress::Stepped(step)) => {
                tracing::debug!(account = %job.account_id, ?step, "erasure step done");
                retry = Duration::from_millis(200);
                continue;
            }
            Ok(Progress::Finished) => {
                tracing::info!(account = %job.account_id, ms = started.elapsed().as_millis() as u64, "erasure finished");
                break;
            }
            // Mutations still running: look again soon, less often as it drags on.
            Ok(Progress::Waiting) => {
                let wait = poll;
                poll = (poll * 2).min(Duration::from_secs(1));
                wait
            }
            Err(e) => {
                tracing::warn!(account = %job.account_id, step = job.step, error = %e, "erasure step failed; retrying");
                let wait = retry;
                retry = (retry * 2).min(Duration::from_secs(30));
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopping.changed() => break,
        }
    }
    id
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_replica_takes_its_own_jobs_at_once_and_others_after_the_lease() {
        let options = WorkerOptions { owner: "a".into(), sweep: Duration::from_secs(30), lease: Duration::from_secs(120), hook: None };
        let job = |owner: &str, updated_ms| ErasureJobRow { owner: owner.into(), updated_ms, ..ErasureJobRow::default() };
        let now = 1_000_000_000;
        assert!(takes(&options, &job("a", now), now));
        assert!(!takes(&options, &job("b", now - 119_000), now));
        assert!(takes(&options, &job("b", now - 121_000), now));
    }

    #[test]
    fn the_sweep_and_replica_come_from_the_environment() {
        let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<std::collections::HashMap<_, _>>();
        let o = WorkerOptions::from_env(&env(&[("RINGPATH_DASHBOARD_REPLICA", "api-2"), ("RINGPATH_DASHBOARD_ERASURE_SWEEP_S", "5")])).unwrap();
        assert_eq!((o.owner.as_str(), o.sweep, o.lease), ("api-2", Duration::from_secs(5), Duration::from_secs(20)));
        assert!(WorkerOptions::from_env(&env(&[("RINGPATH_DASHBOARD_ERASURE_SWEEP_S", "0")])).is_err());
        assert!(!WorkerOptions::from_env(&env(&[])).unwrap().owner.is_empty());
    }
}
