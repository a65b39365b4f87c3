//! Single-flight: concurrent callers asking for the same key share one execution of the work and its result.
//!
//! The first caller for a key starts the work; callers arriving while it runs wait for and clone its result. When the
//! work finishes the key is released, so a later call starts a fresh flight (callers re-check their caches inside the
//! work, so a flight that starts just after another finished finds the stored item and does not fetch again).
//! If the caller running the work is cancelled, one of the waiters takes over (`tokio::sync::OnceCell` semantics).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// A keyed single-flight group.
#[derive(Debug)]
pub struct SingleFlight<T> {
    flights: Mutex<HashMap<String, Arc<OnceCell<T>>>>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> SingleFlight<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `work` for `key` unless a flight for `key` is already running, in which case wait for its result.
    pub async fn run<F, Fut>(&self, key: &str, work: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = {
            let mut map = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let value = cell.get_or_init(work).await.clone();
        let mut map = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, &cell))
        {
            map.remove(key);
        }
        value
    }

    /// Number of keys with a flight in progress (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_execution() {
        let group = Arc::new(SingleFlight::<u32>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let group = group.clone();
            let runs = runs.clone();
            tasks.push(tokio::spawn(async move {
                group
                    .run("k", || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        7
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("join"), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(group.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_finished_flight_releases_its_key() {
        let group = SingleFlight::<u32>::new();
        assert_eq!(group.run("k", || async { 1 }).await, 1);
        assert_eq!(group.run("k", || async { 2 }).await, 2);
        assert_eq!(group.in_flight(), 0);
    }

    #[tokio::test]
    async fn different_keys_do_not_share() {
        let group = SingleFlight::<&'static str>::new();
        assert_eq!(group.run("a", || async { "a" }).await, "a");
        assert_eq!(group.run("b", || async { "b" }).await, "b");
    }
}
