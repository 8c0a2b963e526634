//! Where a test stops an erasure job: the first time the job reaches a
//! point (`ringpath_store::erasure_job::JobPoint`) it waits there, until the
//! test releases it or for good, and the test is told; so a kill lands
//! exactly at that point however fast the machine is. Every point the job
//! passes is recorded too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ringpath_store::erasure_job::{JobHook, JobPoint};
use tokio::sync::watch;

pub struct JobPause {
    pub hook: JobHook,
    passed: watch::Receiver<Vec<JobPoint>>,
    release: watch::Sender<bool>,
    point: JobPoint,
}

impl JobPause {
    pub fn at(point: JobPoint) -> JobPause {
        let (passed_tx, passed) = watch::channel(Vec::new());
        let (release, released) = watch::channel(false);
        let seen = Arc::new(AtomicBool::new(false));
        let hook: JobHook = Arc::new(move |at| {
            let park = at == point && !seen.swap(true, Ordering::SeqCst);
            passed_tx.send_modify(|points| points.push(at));
            let mut released = released.clone();
            Box::pin(async move {
                if park {
                    let _ = released.wait_for(|r| *r).await;
                }
            })
        });
        JobPause { hook, passed, release, point }
    }

    /// Waits until the job is parked at the point (or fails after `limit`).
    pub async fn parked(&mut self, limit: Duration) -> anyhow::Result<()> {
        let point = self.point;
        self.passed(point, limit).await
    }

    /// Waits until the job has reached `point` (or fails after `limit`).
    pub async fn passed(&mut self, point: JobPoint, limit: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(limit, self.passed.wait_for(|points| points.contains(&point))).await.with_context(|| format!("the erasure job never reached {point:?}"))?.context("hook dropped")?;
        Ok(())
    }

    /// Lets the parked job go on.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

/// Dashboard options whose erasure jobs stop at `pause`.
pub fn options_pausing(pause: &JobPause) -> ringpath_dashboard_api::Options {
    let mut options = ringpath_dashboard_api::Options::default();
    options.erasure.hook = Some(pause.hook.clone());
    options
}
