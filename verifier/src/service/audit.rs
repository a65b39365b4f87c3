//! The audit log: one JSON line per decision (issued or refused), durable *before* the answer is sent (docs/operations.md#audit-log).
//!
//! Flow: a handler builds an [`AuditRecord`] and awaits [`AuditLog::append`]. A dedicated writer thread drains every
//! record queued so far, writes them, calls `sync_data` once for the batch (group commit: one fsync serves many
//! concurrent requests) and only then completes each caller's future. If the write or sync fails the caller gets an
//! error and answers `internal` instead of a credential: a WIT is never handed out without its record on disk.
//!
//! On open, a torn last line (a crash mid-write of a record whose answer was therefore never sent) is cut off, so the
//! file stays a sequence of complete JSON lines.
//!
//! Faults (issue 10):
//! - Records are bounded: every free-text field is cut to a few hundred bytes with the SHA-256 of the whole kept
//!   beside it ([`bounded`]), and a record never exceeds [`MAX_RECORD_BYTES`]; what is recorded comes from the
//!   decision, never from raw request fields (requests refused before the nonce check are not written here at all:
//!   they are counted in metrics and logged at a limited rate).
//! - A failed write truncates the file back to the length it had before the batch, so no torn record is left for the
//!   next one to be glued to.
//! - A failed write or fsync makes the log unhealthy: `/readyz` answers 503 and attestations `503 audit_unavailable`
//!   until a later fsync succeeds (the writer retries every second). Credentials whose records could not be made
//!   durable are never sent; a `withheld` record naming their `jti` is appended once the log works again (as it is
//!   for a credential whose signing failed after its record was written: the record goes to the writer before the
//!   signatures are made, so the two overlap).
//! - Stdout (the Kubernetes default) cannot be fsync'd: it is at-most-once, and a write that does not complete within
//!   [`STDOUT_WRITE_TIMEOUT`] (a stalled pipe) fails the batch instead of hanging every request.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sha2::{Digest, Sha256};

use serde::Serialize;
use tokio::sync::oneshot;

use super::config::AuditTarget;

/// Where a refused or issued platform was found to be.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AuditLocation {
    pub site: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub source: Option<String>,
}

/// One decision.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AuditRecord {
    /// Unix seconds of the decision.
    pub ts: u64,
    /// `issued` or `refused`.
    pub decision: &'static str,
    /// The refusal code (`None` when issued).
    pub code: Option<&'static str>,
    pub message: Option<String>,
    pub tee: Option<&'static str>,
    /// The workload identifier asked for or issued.
    pub workload: Option<String>,
    /// Hex SHA-256 of the platform identity, when the evidence got that far.
    pub platform: Option<String>,
    pub location: Option<AuditLocation>,
    pub simulated: Option<bool>,
    pub measurement: Option<String>,
    /// The issued WIT's `jti`, `kid` and `exp`.
    pub jti: Option<String>,
    pub kid: Option<String>,
    pub exp: Option<u64>,
    /// The agent key's RFC 7638 thumbprint (base64url).
    pub cnf_jkt: Option<String>,
    /// Which replica decided (hostname or config issuer) — useful when N replicas share a log pipeline.
    pub replica: Option<String>,
    /// For `/v1/svid`: the SVID kind (`x509-svid`, `jwt-svid`, `wit-svid`); `jti` then holds the JWT's `jti` or the
    /// certificate's hex serial, `kid` the signing key, `cnf_jkt` the attested key. Absent on `/v1/attest` records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<&'static str>,
    /// For `/v1/svid`: the RFC 7638 thumbprint (base64url) of the per-SVID key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svid_jkt: Option<String>,
}

struct Job {
    line: Vec<u8>,
    /// Told, on the writer's thread, whether the line is durable.
    done: Box<dyn FnOnce(io::Result<()>) + Send>,
}

/// The longest record written; longer ones have their message cut further.
pub const MAX_RECORD_BYTES: usize = 4096;
/// Free text (refusal messages) kept per record before it is cut.
pub const MAX_TEXT_BYTES: usize = 512;
/// How long a write to stdout may take before the batch fails.
pub const STDOUT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// `text` as is when short; otherwise its first bytes (on a character boundary), then `…[<n> bytes, sha256:<hex>]`.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}…[{} bytes, sha256:{}]",
        &text[..cut],
        text.len(),
        hex::encode(Sha256::digest(text.as_bytes()))
    )
}

/// Handle to the writer thread. Cloning shares the thread.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
    counts: Arc<Counts>,
    producers: Arc<Producers>,
}

/// What the writer did: records made durable and the batches (writes + fsyncs) they took. Records per batch is the
/// group commit at work.
#[derive(Debug, Default)]
struct Counts {
    records: AtomicU64,
    batches: AtomicU64,
}

/// Audit writer activity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records written and synced.
    pub records: u64,
    /// Write + fsync batches (one fsync each).
    pub batches: u64,
}

/// A batch for the stdout thread and where to report how its write went.
type StdoutJob = (Vec<u8>, mpsc::SyncSender<io::Result<()>>);

enum Sink {
    File(File),
    /// Writes go through a thread of their own so a stalled pipe cannot block the writer past the timeout.
    Stdout(mpsc::SyncSender<StdoutJob>),
}

impl Sink {
    fn write_batch(&mut self, lines: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(f) => {
                let before = f.metadata()?.len();
                if let Err(e) = f.write_all(lines) {
                    // No torn record for the next batch to be glued to.
                    let _ = f.set_len(before);
                    return Err(e);
                }
                f.sync_data()
            }
            Sink::Stdout(tx) => {
                let (done, wait) = mpsc::sync_channel(1);
                tx.try_send((lines.to_vec(), done))
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "stdout is stalled"))?;
                wait.recv_timeout(STDOUT_WRITE_TIMEOUT).map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "stdout write timed out")
                })?
            }
        }
    }

    /// Retry durability after a failure: a real write of a small `probe` record and its fsync (an fsync of nothing
    /// succeeds on a full disk).
    fn probe(&mut self, now: u64) -> io::Result<()> {
        let mut line = serde_json::to_vec(&AuditRecord {
            ts: now,
            decision: "probe",
            message: Some("audit log durable again".into()),
            ..Default::default()
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        self.write_batch(&line)
    }
}

fn stdout_thread() -> io::Result<mpsc::SyncSender<StdoutJob>> {
    let (tx, rx) = mpsc::sync_channel::<StdoutJob>(1);
    std::thread::Builder::new()
        .name("locus-audit-stdout".into())
        .spawn(move || {
            while let Ok((bytes, done)) = rx.recv() {
                let mut out = io::stdout().lock();
                let r = out.write_all(&bytes).and_then(|()| out.flush());
                let _ = done.send(r);
            }
        })?;
    Ok(tx)
}

impl AuditLog {
    /// Open (create, 0600, append) the log and start its writer thread.
    pub fn open(target: &AuditTarget) -> io::Result<AuditLog> {
        let sink = match target {
            AuditTarget::Stdout => Sink::Stdout(stdout_thread()?),
            AuditTarget::File(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Sink::File(open_append(path)?)
            }
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let healthy = Arc::new(AtomicBool::new(true));
        let counts = Arc::new(Counts::default());
        let producers = Arc::new(Producers::default());
        let (flag, writer_counts, busy) = (healthy.clone(), counts.clone(), producers.clone());
        std::thread::Builder::new()
            .name("locus-audit".into())
            .spawn(move || writer(sink, rx, flag, writer_counts, busy))?;
        Ok(AuditLog {
            producers,
            tx,
            healthy,
            counts,
        })
    }

    /// The work in progress that will append records (the appraisal pool's jobs), which a filling batch waits for.
    pub fn producers(&self) -> Arc<Producers> {
        self.producers.clone()
    }

    /// Records made durable and the batches they took.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            records: self.counts.records.load(Ordering::Relaxed),
            batches: self.counts.batches.load(Ordering::Relaxed),
        }
    }

    /// False after a failed write or fsync, until a later fsync succeeds.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Append a record; resolves once it is durable (or the write failed). The record is bounded first.
    pub async fn append(&self, record: &AuditRecord) -> io::Result<()> {
        let line = encode(record)?;
        let (done, wait) = oneshot::channel();
        self.send(Job {
            line,
            done: Box::new(move |r| {
                let _ = done.send(r);
            }),
        });
        wait.await
            .map_err(|_| io::Error::other("audit writer stopped"))?
    }

    /// Hand `record` to the writer without waiting; `then` gets it back with the outcome once it is durable (or its
    /// write failed), on the writer's thread — or at once, here, when it cannot be queued. The appraisal pool uses
    /// this so that a decision reaches the writer the moment it is made, and its answer reaches the request's task
    /// once, already durable, instead of waking it twice (once for the decision, once for the fsync).
    pub fn submit_then(
        &self,
        record: AuditRecord,
        then: impl FnOnce(AuditRecord, io::Result<()>) + Send + 'static,
    ) {
        match encode(&record) {
            Ok(line) => self.send(Job {
                line,
                done: Box::new(move |r| then(record, r)),
            }),
            Err(e) => then(record, Err(e)),
        }
    }

    /// Queue a job; when the writer is gone, its callback hears so at once.
    fn send(&self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            (job.done)(Err(io::Error::other("audit writer stopped")));
        }
    }
}

/// One bounded JSON line (≤ [`MAX_RECORD_BYTES`] with its newline).
fn encode(record: &AuditRecord) -> io::Result<Vec<u8>> {
    let mut r = record.clone();
    r.message = r.message.as_deref().map(|m| bounded(m, MAX_TEXT_BYTES));
    r.workload = r.workload.as_deref().map(|w| bounded(w, 2048));
    let mut line = serde_json::to_vec(&r).map_err(io::Error::other)?;
    if line.len() + 1 > MAX_RECORD_BYTES {
        r.message = r.message.as_deref().map(|m| bounded(m, 64));
        r.workload = r.workload.as_deref().map(|w| bounded(w, 256));
        line = serde_json::to_vec(&r).map_err(io::Error::other)?;
    }
    line.push(b'\n');
    Ok(line)
}

/// Records queued at once (now or in the previous batch) from which the writer lets a batch fill before its fsync.
pub const GROUP_SIBLINGS: usize = 4;
/// How long a batch may fill under load: at most this is added to an answer's wait for its record.
pub const GROUP_WINDOW: Duration = Duration::from_micros(3000);

/// Work in progress that will append a record when it ends (the appraisal pool's queued and running jobs). A filling
/// batch waits for it only while some of it is still queued behind the running jobs: waiting then costs no core (the
/// pool stays busy), while waiting on the last running jobs would leave the cores idle and, under steady load, line
/// every request up behind one fsync. The job that empties the queue wakes the writer, so the writer sleeps once per
/// batch instead of polling.
#[derive(Debug, Default)]
pub struct Producers {
    count: AtomicUsize,
    /// Jobs that run at once (the pool's threads); 0 until a pool says ([`Producers::served_by`]).
    running_at_once: AtomicUsize,
    writer: std::sync::OnceLock<std::thread::Thread>,
}

impl Producers {
    /// The pool counting its jobs here runs `threads` of them at once.
    pub fn served_by(&self, threads: usize) {
        self.running_at_once.store(threads, Ordering::Relaxed);
    }

    pub fn started(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    pub fn finished(&self) {
        let left = self.count.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        if left == self.running_at_once.load(Ordering::Relaxed) {
            if let Some(writer) = self.writer.get() {
                writer.unpark();
            }
        }
    }

    /// Whether jobs are queued behind the running ones.
    fn backlogged(&self) -> bool {
        self.count.load(Ordering::Acquire) > self.running_at_once.load(Ordering::Relaxed)
    }

    fn watch(&self, writer: std::thread::Thread) {
        let _ = self.writer.set(writer);
    }
}

/// Whether a batch of `queued` records (after one of `last`) waits [`GROUP_WINDOW`] for more before its fsync.
fn fills_before_sync(queued: usize, last: usize) -> bool {
    queued.max(last) >= GROUP_SIBLINGS
}

fn writer(
    mut sink: Sink,
    rx: mpsc::Receiver<Job>,
    healthy: Arc<AtomicBool>,
    counts: Arc<Counts>,
    producers: Arc<Producers>,
) {
    producers.watch(std::thread::current());
    let mut last_batch = 0;
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                if !healthy.load(Ordering::Relaxed) && sink.probe(now).is_ok() {
                    tracing::warn!("audit log durable again: issuance resumes");
                    healthy.store(true, Ordering::Relaxed);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        // Group commit under load: an fsync costs the kernel ~100 µs of CPU whatever it carries. When answers are
        // clearly concurrent (several records queued now or in the last batch), let the batch fill for a moment
        // before paying for it; the producers do not wake a writer that sleeps rather than waits on the queue. A lone
        // answer (one request at a time) never waits.
        if fills_before_sync(batch.len(), last_batch) {
            // Only while decisions are queued behind the running ones: once the pool's queue is empty, waiting for
            // its last jobs would leave the cores idle while the requests held here cannot send their next ones.
            let until = std::time::Instant::now() + GROUP_WINDOW;
            loop {
                let now = std::time::Instant::now();
                if !producers.backlogged() || now >= until {
                    break;
                }
                // Woken early by the job that empties the queue (or spuriously: the loop looks again).
                std::thread::park_timeout(until - now);
            }
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
        }
        last_batch = batch.len();
        let mut bytes = Vec::with_capacity(batch.iter().map(|j| j.line.len()).sum());
        for j in &batch {
            bytes.extend_from_slice(&j.line);
        }
        let result = sink.write_batch(&bytes);
        if result.is_ok() {
            counts.batches.fetch_add(1, Ordering::Relaxed);
            counts
                .records
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        match &result {
            Ok(()) if !healthy.load(Ordering::Relaxed) => {
                tracing::warn!("audit log durable again: issuance resumes");
                healthy.store(true, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, records = batch.len(), "audit write failed: issuance stops until the log is durable again");
                healthy.store(false, Ordering::Relaxed);
            }
        }
        for j in batch {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            // A callback is the service's own code; should one panic, the writer (and every later record) survives.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (j.done)(r)));
        }
    }
}

/// Open for append, cutting a torn last line left by a crash.
fn open_append(path: &Path) -> io::Result<File> {
    // O_APPEND: every batch lands at the end even if another process (a second replica on a shared volume, the
    // example config run twice) appends to the same file.
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let len = f.metadata()?.len();
    if len > 0 {
        // Look back for the last newline; records are small, so scan the tail in chunks.
        let mut end = len;
        let mut keep = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        'scan: while end > 0 {
            let start = end.saturating_sub(buf.len() as u64);
            let n = (end - start) as usize;
            f.seek(SeekFrom::Start(start))?;
            f.read_exact(&mut buf[..n])?;
            if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
                keep = start + i as u64 + 1;
                break 'scan;
            }
            end = start;
        }
        if keep < len {
            tracing::warn!(
                path = %path.display(),
                torn_bytes = len - keep,
                "audit log ended in a torn record (crash mid-write; its answer was never sent); cutting it"
            );
            f.set_len(keep)?;
            f.sync_data()?;
        }
    }
    f.seek(SeekFrom::End(0))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waits_only_while_decisions_are_queued_behind_the_running_ones_and_the_one_emptying_the_queue_wakes_it(
    ) {
        let p = Producers::default();
        p.served_by(2);
        p.watch(std::thread::current());
        for _ in 0..3 {
            p.started();
        }
        // Three jobs on two threads: one is queued, so waiting keeps both cores busy.
        assert!(p.backlogged());
        // The third finishing empties the queue: no more waiting, and the writer is woken (its park returns at once;
        // a minute would fail the test by its length).
        p.finished();
        assert!(!p.backlogged());
        let t = std::time::Instant::now();
        std::thread::park_timeout(Duration::from_secs(60));
        assert!(t.elapsed() < Duration::from_secs(30));
        p.finished();
        p.finished();
        assert!(!p.backlogged());
        // Without a pool (the default), any job in progress counts.
        let lone = Producers::default();
        lone.started();
        assert!(lone.backlogged());
        lone.finished();
        assert!(!lone.backlogged());
    }

    #[test]
    fn only_clearly_concurrent_answers_wait_for_their_batch_to_fill() {
        // One request at a time (and a pair) never waits: their fsync starts as soon as their record is in.
        assert!(!fills_before_sync(1, 0));
        assert!(!fills_before_sync(1, 1));
        assert!(!fills_before_sync(2, 3));
        // Several records queued at once, now or in the batch before: the next batch fills first.
        assert!(fills_before_sync(GROUP_SIBLINGS, 1));
        assert!(fills_before_sync(1, GROUP_SIBLINGS));
    }

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            ts: i,
            decision: "issued",
            jti: Some(format!("jti-{i}")),
            ..Default::default()
        }
    }

    /// `n` records appended by as many tasks at once, each awaited until durable.
    async fn append_at_once(log: &AuditLog, n: u64) {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(&record(i)).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("append");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_all_land_as_whole_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).expect("open");
        append_at_once(&log, 50).await;
        let text = std::fs::read_to_string(&path).expect("read");
        let mut jtis: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["jti"]
                    .as_str()
                    .expect("jti")
                    .to_string()
            })
            .collect();
        jtis.sort();
        assert_eq!(jtis.len(), 50);
        jtis.dedup();
        assert_eq!(jtis.len(), 50);
        assert_eq!(log.stats().records, 50);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_answers_share_fsyncs() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = AuditLog::open(&AuditTarget::File(dir.path().join("audit.jsonl"))).expect("open");
        // 200 answers waiting at once: each one's record is durable before it resolves, and the writer, draining
        // whatever queued during the previous fsync, needs far fewer fsyncs than records.
        append_at_once(&log, 200).await;
        let stats = log.stats();
        assert_eq!(stats.records, 200);
        assert!(
            stats.batches < stats.records / 2,
            "{} fsyncs for {} records",
            stats.batches,
            stats.records
        );
    }

    #[test]
    fn a_submitted_record_comes_back_to_its_callback_once_it_is_on_disk() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).expect("open");
        let (tx, rx) = mpsc::channel();
        let path_in = path.clone();
        log.submit_then(record(7), move |back, durable| {
            // Called on the writer's thread after the fsync: the line is in the file already.
            let on_disk = std::fs::read_to_string(&path_in).expect("read");
            let _ = tx.send((back, durable.is_ok(), on_disk));
        });
        let (back, durable, on_disk) = rx.recv_timeout(Duration::from_secs(10)).expect("callback");
        assert!(durable);
        assert_eq!(back, record(7));
        assert_eq!(on_disk.lines().count(), 1);
        assert!(on_disk.contains("\"ts\":7"), "{on_disk}");
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = AuditLog::open(&AuditTarget::File(dir.path().join("audit.jsonl"))).expect("open");
        log.submit_then(record(1), |_, _| panic!("callback"));
        let (tx, rx) = mpsc::channel();
        log.submit_then(record(2), move |_, durable| {
            let _ = tx.send(durable.is_ok());
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        assert_eq!(log.stats().records, 2);
    }

    #[test]
    fn a_record_submitted_to_a_stopped_writer_comes_back_at_once_with_the_error() {
        let (tx, rx) = mpsc::channel::<Job>();
        drop(rx);
        let log = AuditLog {
            tx,
            healthy: Arc::new(AtomicBool::new(true)),
            counts: Arc::new(Counts::default()),
            producers: Arc::new(Producers::default()),
        };
        let answered = Arc::new(std::sync::Mutex::new(None));
        let seen = answered.clone();
        log.submit_then(record(8), move |back, durable| {
            *seen.lock().expect("lock") = Some((back, durable.is_err()));
        });
        assert_eq!(*answered.lock().expect("lock"), Some((record(8), true)));
    }

    #[test]
    fn long_text_is_bounded_with_the_hash_of_the_whole() {
        let long = "x".repeat(60_000);
        let b = bounded(&long, 512);
        assert!(b.len() < 700, "{}", b.len());
        assert!(b.contains("60000 bytes"), "{b}");
        assert!(b.contains(&hex::encode(Sha256::digest(long.as_bytes()))));
        assert_eq!(bounded("short", 512), "short");
        // Never cuts inside a character.
        let s = "é".repeat(300);
        assert!(bounded(&s, 511).starts_with(&"é".repeat(255)));
    }

    #[test]
    fn a_record_never_exceeds_four_kib() {
        let r = AuditRecord {
            message: Some("m".repeat(100_000)),
            workload: Some("w".repeat(100_000)),
            ..record(1)
        };
        let line = encode(&r).expect("encode");
        assert!(line.len() <= MAX_RECORD_BYTES, "{}", line.len());
        serde_json::from_slice::<serde_json::Value>(&line).expect("still JSON");
    }

    #[tokio::test]
    async fn a_failed_write_makes_the_log_unhealthy() {
        // RLIMIT_FSIZE would kill the process; a file that cannot grow is made with a full tiny filesystem in the
        // cross-process tests. Here: a log on /dev/full fails every write.
        if !Path::new("/dev/full").exists() {
            eprintln!("SKIP: no /dev/full");
            return;
        }
        let log = AuditLog::open(&AuditTarget::File("/dev/full".into())).expect("open /dev/full");
        assert!(log.is_healthy());
        let err = log.append(&record(1)).await.expect_err("no space");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
        assert!(!log.is_healthy());
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, b"{\"ts\":1}\n{\"ts\":2,\"dec").expect("write");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).expect("open");
        log.append(&record(3)).await.expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for l in lines {
            serde_json::from_str::<serde_json::Value>(l).expect("every line parses");
        }
    }
}
