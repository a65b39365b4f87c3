//! Collateral cache: an in-memory map in front of an on-disk store (`state_dir/cache`).
//!
//! Each item is one JSON file holding the body (base64), its issuer chain when the source sends one, and its validity
//! window. Items without `next_update` (a VCEK per product/hwID/TCB, an AMD cert chain) never expire; the others are
//! valid while `now < next_update` and due for a refresh when less than a tenth of their window (at most 24 h) is left.
//! Writes are atomic (temporary file, then rename). Validity decisions take `now` as a parameter.
//!
//! Both layers are bounded and evict per entry, least recently used first: the memory layer by count
//! ([`MAX_MEMORY_ITEMS`]), the disk by the total size of its files (`max_disk_bytes`, [`DEFAULT_MAX_DISK_BYTES`]).
//! The disk index is built from the directory at start (oldest modification first) and kept in step with every
//! read, write and eviction. The caller keys items by their source (see `collateral::Inner::cache_key`), so copies
//! from two sources never stand in for each other.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use der::Decode;
use serde::{Deserialize, Serialize};

use crate::lru::Lru;

/// One piece of collateral as fetched, with its validity window (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedItem {
    #[serde(with = "b64")]
    pub body: Vec<u8>,
    /// URL-decoded PEM issuer chain sent beside the body (Intel PCS headers), if any.
    pub issuer_chain: Option<String>,
    /// `issueDate` / CRL `thisUpdate`, when the item has one.
    pub issued_at: Option<u64>,
    /// `nextUpdate`; `None` means the item never expires.
    pub next_update: Option<u64>,
    /// When this copy was fetched (the `now` of the fetch).
    pub fetched_at: u64,
}

/// Most items held in the memory layer (each is a few KiB at most; evicted items stay on disk).
pub const MAX_MEMORY_ITEMS: usize = 16_384;

/// Default bound on the on-disk cache: 256 MiB (a VCEK file is about 2 KiB, a TCB info file about 10 KiB).
pub const DEFAULT_MAX_DISK_BYTES: u64 = 256 * 1024 * 1024;

/// Directory depth scanned for cache files at start (keys are `source/tee/kind/…`, at most 6 segments).
const MAX_SCAN_DEPTH: usize = 8;

/// The most a refresh is brought forward: 24 hours.
pub const MAX_REFRESH_LEAD_SECS: u64 = 24 * 3600;

impl CachedItem {
    /// Whether the item may be served at `now`.
    pub fn is_valid(&self, now: u64) -> bool {
        self.next_update.is_none_or(|next| now < next)
    }

    /// Whether a refresh should be started at `now`: less than min(window / 10, 24 h) is left before `next_update`.
    pub fn refresh_due(&self, now: u64) -> bool {
        let Some(next) = self.next_update else {
            return false;
        };
        let start = self.issued_at.unwrap_or(self.fetched_at).min(next);
        let lead = ((next - start) / 10).min(MAX_REFRESH_LEAD_SECS);
        now.saturating_add(lead) >= next
    }
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// The validity window of an Intel signed JSON collateral document: `{"<field>": {"issueDate", "nextUpdate", ...}}`.
pub fn json_window(body: &[u8], field: &str) -> Result<(u64, u64), String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("{field} JSON does not parse: {e}"))?;
    let inner = value
        .get(field)
        .ok_or_else(|| format!("JSON has no `{field}` object"))?;
    let date = |name: &str| -> Result<u64, String> {
        let s = inner
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{field} has no `{name}`"))?;
        parse_rfc3339(s).ok_or_else(|| format!("{field}.{name} `{s}` is not an RFC 3339 date"))
    };
    Ok((date("issueDate")?, date("nextUpdate")?))
}

/// Parse an RFC 3339 / ISO 8601 UTC date to unix seconds (before 1970 is refused).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// The validity window of a DER CRL: (`thisUpdate`, `nextUpdate`). A CRL without `nextUpdate` is refused: Locus
/// caches CRLs only until their next update and would otherwise keep one forever.
pub fn crl_window(der_bytes: &[u8]) -> Result<(u64, u64), String> {
    let crl = x509_cert::crl::CertificateList::from_der(der_bytes)
        .map_err(|e| format!("CRL does not parse as DER: {e}"))?;
    let this = crl.tbs_cert_list.this_update.to_unix_duration().as_secs();
    let next = crl
        .tbs_cert_list
        .next_update
        .ok_or_else(|| "CRL has no nextUpdate".to_string())?
        .to_unix_duration()
        .as_secs();
    Ok((this, next))
}

/// The on-disk store plus the in-memory layer in front of it.
#[derive(Debug)]
pub struct Cache {
    dir: Option<PathBuf>,
    memory: Mutex<Lru<String, Arc<CachedItem>>>,
    disk: Mutex<DiskIndex>,
    tmp_counter: AtomicU64,
}

/// The cache files on disk, least recently used first, with their sizes.
#[derive(Debug)]
struct DiskIndex {
    files: Lru<PathBuf, u64>,
    bytes: u64,
    max_bytes: u64,
}

impl DiskIndex {
    /// Record `path` (of `size` bytes) as just used; returns the files to delete to get back within the bound.
    fn used(&mut self, path: PathBuf, size: u64) -> Vec<PathBuf> {
        if let Some(old) = self.files.peek(&path) {
            self.bytes -= old;
        }
        self.files.insert(path.clone(), size);
        self.bytes += size;
        self.evict()
    }

    fn touch(&mut self, path: &Path) {
        self.files.get(path);
    }

    fn forget(&mut self, path: &Path) {
        if let Some(size) = self.files.remove(path) {
            self.bytes -= size;
        }
    }

    fn evict(&mut self) -> Vec<PathBuf> {
        let mut victims = Vec::new();
        while self.bytes > self.max_bytes {
            let Some((path, size)) = self.files.pop_lru() else {
                break;
            };
            self.bytes -= size;
            victims.push(path);
        }
        victims
    }
}

/// Every `*.json` file under `dir` (bounded depth) with its size and modification time; temporary files are skipped.
fn scan(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else {
                continue;
            };
            let path = e.path();
            if meta.is_dir() {
                if depth < MAX_SCAN_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else if meta.is_file() && path.extension().is_some_and(|x| x == "json") {
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                out.push((path, meta.len(), modified));
            }
        }
    }
    out
}

impl Cache {
    /// A cache persisting under `dir` (created on first write) with the default disk bound; `None` keeps items in
    /// memory only.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self::with_max_disk_bytes(dir, DEFAULT_MAX_DISK_BYTES)
    }

    /// A cache whose files under `dir` total at most `max_disk_bytes`. The files already there are indexed (oldest
    /// modification = least recently used) and, if they exceed the bound, the oldest are deleted.
    pub fn with_max_disk_bytes(dir: Option<PathBuf>, max_disk_bytes: u64) -> Self {
        let mut index = DiskIndex {
            files: Lru::new(usize::MAX),
            bytes: 0,
            max_bytes: max_disk_bytes,
        };
        if let Some(d) = &dir {
            let mut found = scan(d);
            found.sort_by_key(|(_, _, modified)| *modified);
            for (path, size, _) in found {
                index.files.insert(path, size);
                index.bytes += size;
            }
            for victim in index.evict() {
                let _ = std::fs::remove_file(&victim);
            }
        }
        Cache {
            dir,
            memory: Mutex::new(Lru::new(MAX_MEMORY_ITEMS)),
            disk: Mutex::new(index),
            tmp_counter: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Lru<String, Arc<CachedItem>>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn disk(&self) -> std::sync::MutexGuard<'_, DiskIndex> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The in-memory copy of `key`, if any (valid or not).
    pub fn memory_get(&self, key: &str) -> Option<Arc<CachedItem>> {
        self.memory().get(key).cloned()
    }

    pub(crate) fn memory_put(&self, key: &str, item: Arc<CachedItem>) {
        // A full memory layer drops its least recently used item (it stays on disk and is reloaded on its next use).
        self.memory().insert(key.to_owned(), item);
    }

    /// Number of items in the memory layer.
    pub fn memory_len(&self) -> usize {
        self.memory().len()
    }

    /// Total size of the cache files on disk, as indexed.
    pub fn disk_bytes(&self) -> u64 {
        self.disk().bytes
    }

    /// Drop the in-memory layer (the disk copies stay); used by tests and on reload.
    pub fn clear_memory(&self) {
        self.memory().clear();
    }

    /// Whether `key` has a copy in memory or on disk (valid or not), without loading it.
    pub fn contains(&self, key: &str) -> bool {
        self.memory().contains(key)
            || self
                .path_for(key)
                .is_some_and(|p| self.disk().files.contains(&p))
    }

    /// The copy of `key` from memory, else from disk (loading it into memory). A corrupt file counts as a miss.
    pub async fn get(&self, key: &str) -> Option<Arc<CachedItem>> {
        if let Some(item) = self.memory_get(key) {
            return Some(item);
        }
        let path = self.path_for(key)?;
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(_) => {
                // Deleted behind our back (or never there): keep the index honest.
                self.disk().forget(&path);
                return None;
            }
        };
        match serde_json::from_slice::<CachedItem>(&bytes) {
            Ok(item) => {
                let item = Arc::new(item);
                self.disk().touch(&path);
                self.memory_put(key, item.clone());
                Some(item)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring corrupt collateral cache file");
                None
            }
        }
    }

    /// Store `item` in memory and, when a directory is configured, atomically on disk, then delete the least
    /// recently used files beyond the disk bound. A disk error is logged and the item still served from memory.
    pub async fn put(&self, key: &str, item: Arc<CachedItem>) {
        self.memory_put(key, item.clone());
        let Some(path) = self.path_for(key) else {
            return;
        };
        match self.write_atomic(&path, &item).await {
            Ok(size) => {
                let victims = self.disk().used(path, size);
                for victim in victims {
                    if let Err(e) = tokio::fs::remove_file(&victim).await {
                        tracing::debug!(path = %victim.display(), error = %e, "evicted cache file already gone");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not persist collateral cache entry");
            }
        }
    }

    /// Write `item` to `path` atomically; returns the size written.
    async fn write_atomic(&self, path: &Path, item: &CachedItem) -> std::io::Result<u64> {
        let json = serde_json::to_vec_pretty(item).map_err(std::io::Error::other)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}.{n}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let written = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut f, &json).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written.map(|()| json.len() as u64)
    }

    /// The file for `key`: each `/`-separated segment sanitised to `[A-Za-z0-9._=&-]`, `.`/`..` refused.
    pub fn path_for(&self, key: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut path = dir.clone();
        for segment in key.split('/') {
            let clean: String = segment
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '=' | '&' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean.is_empty() || clean == "." || clean == ".." {
                return None;
            }
            path.push(clean);
        }
        let mut os = path.into_os_string();
        os.push(".json");
        Some(PathBuf::from(os))
    }
}

/// Base64 helper shared with tests.
pub fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(next: Option<u64>, issued: Option<u64>) -> CachedItem {
        CachedItem {
            body: vec![1, 2, 3],
            issuer_chain: Some("chain".into()),
            issued_at: issued,
            next_update: next,
            fetched_at: 1_000,
        }
    }

    #[test]
    fn item_without_next_update_never_expires_nor_refreshes() {
        let i = item(None, None);
        assert!(i.is_valid(u64::MAX - 1));
        assert!(!i.refresh_due(u64::MAX - 1));
    }

    #[test]
    fn item_is_valid_until_next_update_exclusive() {
        let i = item(Some(2_000), Some(1_000));
        assert!(i.is_valid(1_999));
        assert!(!i.is_valid(2_000));
    }

    #[test]
    fn refresh_is_due_in_the_last_tenth_of_the_window_capped_at_a_day() {
        // 1000 s window: lead 100 s.
        let i = item(Some(2_000), Some(1_000));
        assert!(!i.refresh_due(1_899));
        assert!(i.refresh_due(1_900));
        // 30 day window: lead capped at 24 h.
        let day = 86_400;
        let i = item(Some(30 * day), Some(0));
        assert!(!i.refresh_due(29 * day - 1));
        assert!(i.refresh_due(29 * day));
    }

    #[test]
    fn json_window_reads_issue_date_and_next_update() {
        let body = br#"{"tcbInfo":{"issueDate":"2025-06-19T10:32:27Z","nextUpdate":"2025-07-19T10:00:35Z"},"signature":"00"}"#;
        let (issued, next) = json_window(body, "tcbInfo").expect("window");
        assert_eq!(issued, 1_750_329_147);
        assert_eq!(next, 1_752_919_235);
        assert!(json_window(body, "enclaveIdentity").is_err());
        assert!(json_window(b"not json", "tcbInfo").is_err());
    }

    #[test]
    fn path_for_sanitises_segments_and_refuses_dot_dot() {
        let cache = Cache::new(Some(PathBuf::from("/c")));
        assert_eq!(
            cache.path_for("snp/vcek/Milan/ab?c"),
            Some(PathBuf::from("/c/snp/vcek/Milan/ab_c.json"))
        );
        assert_eq!(cache.path_for("snp/../x"), None);
        assert_eq!(Cache::new(None).path_for("a"), None);
    }

    #[tokio::test]
    async fn put_then_get_round_trips_through_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let it = Arc::new(item(Some(5), Some(1)));
        cache.put("tdx/tcb/00806f050000", it.clone()).await;
        let fresh = Cache::new(Some(dir.path().to_path_buf()));
        assert_eq!(
            fresh.get("tdx/tcb/00806f050000").await.as_deref(),
            Some(&*it)
        );
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("tdx/tcb"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("00806f050000.json")]);
    }

    #[tokio::test]
    async fn memory_layer_is_bounded() {
        let cache = Cache::new(None);
        let it = Arc::new(item(None, None));
        for i in 0..MAX_MEMORY_ITEMS + 10 {
            cache.put(&format!("k{i}"), it.clone()).await;
        }
        assert_eq!(cache.memory_len(), MAX_MEMORY_ITEMS);
        // The newest entry is always kept.
        assert!(cache
            .memory_get(&format!("k{}", MAX_MEMORY_ITEMS + 9))
            .is_some());
    }

    #[tokio::test]
    async fn corrupt_cache_file_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("k.json"), b"{broken").expect("write");
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        assert!(cache.get("k").await.is_none());
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = scan(dir).into_iter().map(|(p, _, _)| p).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn the_disk_layer_is_bounded_in_bytes_and_evicts_the_least_recently_used_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let it = Arc::new(item(None, None));
        let size = serde_json::to_vec_pretty(&*it).expect("json").len() as u64;
        // Room for exactly three files.
        let cache = Cache::with_max_disk_bytes(Some(dir.path().to_path_buf()), 3 * size);
        for k in ["src/a", "src/b", "src/c"] {
            cache.put(k, it.clone()).await;
        }
        assert_eq!(cache.disk_bytes(), 3 * size);
        // Read `a` from disk (not memory), so `b` becomes the least recently used file.
        cache.clear_memory();
        assert!(cache.get("src/a").await.is_some());
        cache.put("src/d", it.clone()).await;
        assert_eq!(cache.disk_bytes(), 3 * size);
        let names: Vec<String> = files_under(dir.path())
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json", "c.json", "d.json"]);
        // Evicted from disk means gone for a fresh process too; the others survive.
        let fresh = Cache::with_max_disk_bytes(Some(dir.path().to_path_buf()), 3 * size);
        assert!(fresh.get("src/b").await.is_none());
        assert!(fresh.get("src/c").await.is_some());
        assert!(!fresh.contains("src/b") && fresh.contains("src/d"));
    }

    #[tokio::test]
    async fn a_cache_directory_over_its_bound_at_start_is_pruned_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let it = Arc::new(item(None, None));
        let size = serde_json::to_vec_pretty(&*it).expect("json").len() as u64;
        {
            let big = Cache::with_max_disk_bytes(Some(dir.path().to_path_buf()), 100 * size);
            for i in 0..10 {
                big.put(&format!("src/k{i}"), it.clone()).await;
                // Distinct modification times, oldest first.
                let path = big.path_for(&format!("src/k{i}")).expect("path");
                let f = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .expect("open");
                f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i))
                    .expect("set mtime");
            }
        }
        let small = Cache::with_max_disk_bytes(Some(dir.path().to_path_buf()), 4 * size);
        assert_eq!(small.disk_bytes(), 4 * size);
        let names: Vec<String> = files_under(dir.path())
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["k6.json", "k7.json", "k8.json", "k9.json"]);
    }
}
