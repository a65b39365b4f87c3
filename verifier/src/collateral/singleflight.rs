//! Single-flight: concurrent callers asking for the same key share one execution of the work and its result.
//!
//! The first caller for a key starts the work; callers arriving while it runs wait for and clone its result. When the
//! work finishes the key is released, so a later call starts a fresh flight (callers re-check their caches inside the
//! work, so a flight that starts just after another finished finds the stored item and does not fetch again).
//! If the caller running the work is cancelled, one of the waiters takes over (`tokio::sync::OnceCell` semantics);
//! when every waiter has given up (cancelled, timed out) the key is released too, so abandoned flights never pile up.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// A keyed single-flight group.
#[derive(Debug)]
pub struct SingleFlight<T> {
    flights: Mutex<HashMap<String, Flight<T>>>,
}

/// One flight: its result cell and how many callers are waiting on it (counted under the group's lock).
#[derive(Debug)]
struct Flight<T> {
    cell: Arc<OnceCell<T>>,
    waiters: usize,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

/// A caller's place in a flight: leaving (by finishing or by being dropped mid-wait) releases the key once the flight
/// has a result or nobody waits on it any more.
struct Waiting<'a, T> {
    flights: &'a Mutex<HashMap<String, Flight<T>>>,
    key: &'a str,
    cell: Arc<OnceCell<T>>,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        let mut map = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        let Some(flight) = map.get_mut(self.key) else {
            return;
        };
        if !Arc::ptr_eq(&flight.cell, &self.cell) {
            return;
        }
        flight.waiters = flight.waiters.saturating_sub(1);
        if flight.waiters == 0 || self.cell.initialized() {
            map.remove(self.key);
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
        let waiting = {
            let mut map = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            let flight = map.entry(key.to_owned()).or_insert_with(|| Flight {
                cell: Arc::new(OnceCell::new()),
                waiters: 0,
            });
            flight.waiters += 1;
            Waiting {
                flights: &self.flights,
                key,
                cell: flight.cell.clone(),
            }
        };
        let value = waiting.cell.get_or_init(work).await.clone();
        drop(waiting);
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

    #[tokio::test]
    async fn a_flight_whose_only_waiter_gives_up_is_removed() {
        let group = SingleFlight::<u32>::new();
        let gave_up = tokio::time::timeout(
            Duration::from_millis(20),
            group.run("k", std::future::pending::<u32>),
        )
        .await;
        assert!(gave_up.is_err());
        assert_eq!(group.in_flight(), 0);
        // The key is free for a fresh flight.
        assert_eq!(group.run("k", || async { 3 }).await, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flight_is_removed_when_every_waiter_gives_up_and_kept_while_one_waits() {
        let group = Arc::new(SingleFlight::<u32>::new());
        let mut quitters = Vec::new();
        for _ in 0..8 {
            let group = group.clone();
            quitters.push(tokio::spawn(async move {
                tokio::time::timeout(
                    Duration::from_millis(30),
                    group.run("k", std::future::pending::<u32>),
                )
                .await
                .is_err()
            }));
        }
        // A patient waiter joins the same flight; when the others quit it takes the work over and gets a result.
        let patient = {
            let group = group.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                group
                    .run("k", || async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        9
                    })
                    .await
            })
        };
        for q in quitters {
            assert!(q.await.expect("join"), "the quitter should have timed out");
        }
        assert_eq!(
            group.in_flight(),
            1,
            "the patient waiter still holds the flight"
        );
        assert_eq!(patient.await.expect("join"), 9);
        assert_eq!(group.in_flight(), 0);
        for i in 0..100 {
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                group.run(&format!("random-{i}"), std::future::pending::<u32>),
            )
            .await;
        }
        assert_eq!(group.in_flight(), 0, "abandoned flights are never kept");
    }
}
