//! Single flight: concurrent callers with one key share one run of the
//! work, which goes on in its own task whoever stays to wait for it.

use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

type Running<T> = Shared<BoxFuture<'static, T>>;

pub struct Flights<T: Clone> {
    map: Arc<Mutex<HashMap<String, Running<T>>>>,
}

impl<T: Clone> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            map: Default::default(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// The result of the run under `key`: the one in progress, or a new
    /// one of `work` (`on_panic` answers for a run that panicked).
    pub async fn run<F>(&self, key: String, work: impl FnOnce() -> F, on_panic: T) -> T
    where
        F: Future<Output = T> + Send + 'static,
    {
        let running = {
            let mut map = self.map.lock().expect("flights");
            match map.get(&key) {
                Some(r) => {
                    // Not kept waiting with the caller: what it holds goes now.
                    drop(work);
                    r.clone()
                }
                None => {
                    let fut = work();
                    let (map_ref, k) = (self.map.clone(), key.clone());
                    // Inserted below before this lock is let go, so the
                    // task's removal always finds its own entry.
                    let task = tokio::spawn(async move {
                        let out = fut.await;
                        map_ref.lock().expect("flights").remove(&k);
                        out
                    });
                    let running = async move { task.await.unwrap_or(on_panic) }
                        .boxed()
                        .shared();
                    map.insert(key, running.clone());
                    running
                }
            }
        };
        running.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts, when dropped, one caller that has joined or started a run.
    struct Joined(Arc<AtomicUsize>);

    impl Drop for Joined {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_run() {
        let flights: Arc<Flights<usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let joined = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut waiters = Vec::new();
        for _ in 0..50 {
            let (f, runs, rx) = (flights.clone(), runs.clone(), rx.clone());
            let guard = Joined(joined.clone());
            waiters.push(tokio::spawn(async move {
                f.run(
                    "k".into(),
                    move || {
                        drop(guard);
                        async move {
                            let mut rx = rx;
                            let _ = rx.wait_for(|go| *go).await;
                            runs.fetch_add(1, Ordering::SeqCst) + 100
                        }
                    },
                    0,
                )
                .await
            }));
        }
        // The run may finish only once every caller has joined it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while joined.load(Ordering::SeqCst) < 50 {
            assert!(std::time::Instant::now() < deadline, "callers did not join");
            tokio::task::yield_now().await;
        }
        tx.send(true).unwrap();
        for w in waiters {
            assert_eq!(w.await.unwrap(), 100);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Done runs are forgotten: the next call runs again.
        let again = flights.run("k".into(), || async { 7 }, 0).await;
        assert_eq!(again, 7);
    }
}
