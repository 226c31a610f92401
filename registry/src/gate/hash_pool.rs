//! Threads of their own for password hash checks: at most `n` run at once
//! (argon2id takes 19 MiB each), they never occupy tokio's blocking pool
//! (where local blob I/O runs), and they are always the same `n` threads,
//! so the allocator keeps at most `n` arenas' worth of hash memory.
//!
//! A check first takes a slot (waiting at most a moment), then runs on a
//! free thread: slots and threads are as many, so a check with a slot never
//! queues behind another.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

pub(super) struct HashPool {
    slots: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl HashPool {
    pub(super) fn new(n: usize) -> HashPool {
        let n = n.max(1);
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        // The pool is gone.
                        Err(_) => return,
                    }
                })
                .expect("start a password check thread");
        }
        HashPool {
            slots: Arc::new(Semaphore::new(n)),
            jobs,
        }
    }

    /// A slot, if one frees up within `wait`.
    pub(super) async fn slot(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Some(slot),
            _ => None,
        }
    }

    /// Run `f` on a pool thread, holding `slot` until it is done (even if
    /// the caller stops waiting). `None` if the pool is gone.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        slot: OwnedSemaphorePermit,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _slot = slot;
            let _ = tx.send(f());
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn at_most_n_run_at_once_and_the_rest_wait_or_give_up() {
        let pool = Arc::new(HashPool::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let slot = pool
                .slot(Duration::from_secs(5))
                .await
                .expect("a free slot");
            let (pool, running, most, release) = (
                pool.clone(),
                running.clone(),
                most.clone(),
                release_rx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                pool.run(slot, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let _ = release.lock().unwrap().recv();
                    running.fetch_sub(1, Ordering::SeqCst);
                    7
                })
                .await
            }));
        }
        // Both slots are held until the jobs finish: a third gives up.
        assert!(pool.slot(Duration::from_millis(50)).await.is_none());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while running.load(Ordering::SeqCst) < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the two jobs never ran together"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release_tx.send(()).unwrap();
        release_tx.send(()).unwrap();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Some(7));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        let slot = pool.slot(Duration::from_secs(5)).await.expect("freed");
        assert_eq!(pool.run(slot, || 1).await, Some(1));
    }
}
