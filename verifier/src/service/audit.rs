//! The audit log: one JSON line per decision (issued or refused), durable *before* the answer is sent (DESIGN §8).
//!
//! Flow: a handler builds an [`AuditRecord`] and awaits [`AuditLog::append`]. A dedicated writer thread drains every
//! record queued so far, writes them, calls `sync_data` once for the batch (group commit: one fsync serves many
//! concurrent requests) and only then completes each caller's future. If the write or sync fails the caller gets an
//! error and answers `internal` instead of a credential: a WIT is never handed out without its record on disk.
//!
//! On open, a torn last line (a crash mid-write of a record whose answer was therefore never sent) is cut off, so the
//! file stays a sequence of complete JSON lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::mpsc;

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
}

struct Job {
    line: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// Handle to the writer thread. Cloning shares the thread.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
}

enum Sink {
    File(File),
    Stdout,
}

impl Sink {
    fn write_batch(&mut self, lines: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(f) => {
                f.write_all(lines)?;
                f.sync_data()
            }
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(lines)?;
                out.flush()
            }
        }
    }
}

impl AuditLog {
    /// Open (create, 0600, append) the log and start its writer thread.
    pub fn open(target: &AuditTarget) -> io::Result<AuditLog> {
        let sink = match target {
            AuditTarget::Stdout => Sink::Stdout,
            AuditTarget::File(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Sink::File(open_append(path)?)
            }
        };
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("locus-audit".into())
            .spawn(move || writer(sink, rx))?;
        Ok(AuditLog { tx })
    }

    /// Append a record; resolves once it is durable (or the write failed).
    pub async fn append(&self, record: &AuditRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { line, done })
            .map_err(|_| io::Error::other("audit writer stopped"))?;
        wait.await
            .map_err(|_| io::Error::other("audit writer stopped"))?
    }
}

fn writer(mut sink: Sink, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut bytes = Vec::with_capacity(batch.iter().map(|j| j.line.len()).sum());
        for j in &batch {
            bytes.extend_from_slice(&j.line);
        }
        let result = sink.write_batch(&bytes);
        for j in batch {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            let _ = j.done.send(r);
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

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            ts: i,
            decision: "issued",
            jti: Some(format!("jti-{i}")),
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_all_land_as_whole_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).expect("open");
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(&record(i)).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("append");
        }
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
