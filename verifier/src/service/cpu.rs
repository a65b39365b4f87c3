//! The appraisal pool: a fixed set of threads (`server.max_blocking`) for CPU-bound work (signature checks, the
//! decision, signing), fed by one queue.
//!
//! Why not `spawn_blocking` behind a semaphore: there, a finishing appraisal releases its permit, which wakes the next
//! request's task on an async worker, which only then hands its work to a parked blocking thread — three thread wakes
//! in a row while the core sits idle. Here a request's work is queued the moment its collateral is in hand, and a
//! thread that finishes one job takes the next without parking, so under load the pool's threads never sleep and the
//! only wake per job is its caller's. Idle threads wait on one condition variable, and a queued job wakes one of them
//! (a receiver shared behind a mutex would wake a second thread per job: the one waiting for the lock).
//!
//! The queue holds at most what admission control lets in (`server.max_concurrency` requests in flight on `/v1/*`),
//! so it is bounded by construction. Work whose caller has gone (the request deadline passed) is dropped unrun, and a
//! panicking job is reported to its caller as an error while its thread goes on with the next.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuError {
    /// The pool's threads are gone (shutdown).
    Closed,
    /// The work panicked; the thread survived.
    Panicked,
}

/// Handle to the pool; its threads end once it is dropped and the jobs queued before have run.
#[derive(Debug)]
pub struct CpuPool {
    queue: Arc<Queue>,
    /// Jobs queued or running (the audit writer's [`super::audit::AuditLog::producers`]).
    pending: Arc<super::audit::Producers>,
}

/// The jobs not yet taken and whether the pool is closed; idle threads wait on `ready`.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Queue {
    /// The lock; a poisoned one cannot happen (jobs run outside it) but would not stop the pool.
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next job, waiting while there is none; `None` once the pool is closed and drained.
    fn next(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl CpuPool {
    /// Start `threads` (at least one) workers named `locus-cpu-<i>`; `pending` counts the jobs queued or running.
    pub fn new(threads: usize, pending: Arc<super::audit::Producers>) -> std::io::Result<CpuPool> {
        let threads = threads.max(1);
        pending.served_by(threads);
        let queue = Arc::new(Queue::default());
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("locus-cpu-{i}"))
                .spawn(move || {
                    while let Some(job) = queue.next() {
                        job();
                    }
                })?;
        }
        Ok(CpuPool { queue, pending })
    }

    /// Run `work` on the pool and wait for its result without blocking the async worker.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CpuError> {
        let (done, result) = oneshot::channel();
        self.spawn(move || {
            // The caller gave up (its deadline passed): nobody would read the result.
            if done.is_closed() {
                return;
            }
            let _ = done.send(work());
        })?;
        result.await.map_err(|_| CpuError::Panicked)
    }

    /// Queue `job`, which reports its own result (the attest path hands it to the audit writer, which answers the
    /// request once the record is durable). A panic is caught; whatever the job held is dropped, which its waiter
    /// sees as a closed channel.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> Result<(), CpuError> {
        let pending = self.pending.clone();
        pending.started();
        let job: Job = Box::new(move || {
            let _ = catch_unwind(AssertUnwindSafe(job));
            pending.finished();
        });
        let mut state = self.queue.lock();
        if state.closed {
            drop(state);
            self.pending.finished();
            return Err(CpuError::Closed);
        }
        state.jobs.push_back(job);
        drop(state);
        self.queue.ready.notify_one();
        Ok(())
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn work_runs_on_the_pool_threads_and_returns_its_result() {
        let pool = CpuPool::new(2, Default::default()).expect("pool");
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .expect("job");
        assert!(name.is_some_and(|n| n.starts_with("locus-cpu-")));
        assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_pool_goes_on() {
        let pool = CpuPool::new(1, Default::default()).expect("pool");
        let r: Result<(), _> = pool.run(|| panic!("boom")).await;
        assert_eq!(r, Err(CpuError::Panicked));
        assert_eq!(pool.run(|| 1).await, Ok(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_the_pool_has_threads() {
        let pool = Arc::new(CpuPool::new(2, Default::default()).expect("pool"));
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("job");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn jobs_queued_before_the_pool_is_dropped_still_run() {
        let pool = CpuPool::new(1, Default::default()).expect("pool");
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let ran = ran.clone();
            pool.spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("queued");
        }
        drop(pool);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ran.load(Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_whose_caller_gave_up_is_not_run() {
        let pool = Arc::new(CpuPool::new(1, Default::default()).expect("pool"));
        let ran = Arc::new(AtomicUsize::new(0));
        // Occupy the one thread, then queue a job whose caller times out before the thread is free.
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(|| std::thread::sleep(Duration::from_millis(200)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let counted = ran.clone();
        let gave_up = tokio::time::timeout(
            Duration::from_millis(10),
            pool.run(move || counted.fetch_add(1, Ordering::SeqCst)),
        )
        .await;
        assert!(gave_up.is_err());
        busy.await.expect("task").expect("job");
        // The queue is FIFO: once this job has run, the abandoned one has been taken (and dropped).
        pool.run(|| ()).await.expect("job");
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
