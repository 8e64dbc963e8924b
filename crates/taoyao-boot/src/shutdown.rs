//! One shutdown signal for the whole process, and a tracker to wait for tasks to finish.
//!
//! Cloning a [`Shutdown`] shares the same signal. Long-lived tasks are spawned through
//! [`Shutdown::spawn`] so that [`Shutdown::drained`] can wait for them after the signal.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown: every waiter of [`Shutdown::triggered`] wakes.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the shutdown has started.
    pub async fn triggered(&self) {
        self.token.cancelled().await
    }

    /// The underlying token, for APIs that take one (e.g. a graceful server stop).
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Spawns a task that [`Shutdown::drained`] waits for.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(fut)
    }

    /// Wraps a future that is already being run elsewhere (e.g. by axum's upgrade handler) so
    /// that [`Shutdown::drained`] waits for it too.
    pub fn track<F: Future>(&self, fut: F) -> tokio_util::task::task_tracker::TrackedFuture<F> {
        self.tracker.track_future(fut)
    }

    /// Waits (at most `grace`) for every task spawned through this handle to end.
    /// Returns false if some were still running when the grace period ran out.
    pub async fn drained(&self, grace: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Triggers the shutdown on SIGINT or SIGTERM (Ctrl-C only on non-Unix systems).
    pub fn trigger_on_os_signals(&self) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = os_signal() => {
                    tracing::info!("shutdown signal received");
                    this.trigger();
                }
                _ = this.triggered() => {}
            }
        })
    }
}

#[cfg(unix)]
async fn os_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; only programmatic shutdown works");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn os_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_wakes_waiters_and_drained_waits_for_tasks() {
        let s = Shutdown::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiter = s.clone();
        s.spawn(async move {
            waiter.triggered().await;
            let _ = rx.await;
        });
        assert!(!s.drained(Duration::from_millis(50)).await);
        s.trigger();
        assert!(s.is_triggered());
        tx.send(()).unwrap();
        assert!(s.drained(Duration::from_secs(5)).await);
    }
}
