//! configfs-tsm (`/sys/kernel/config/tsm/report`, Linux ≥ 6.7) for SEV-SNP (`sev_guest`) and TDX (`tdx_guest`).
//!
//! One request, following the race protocol of the Linux configfs-tsm report interface:
//! 1. `mkdir` a private, uniquely named entry (removed again on every path by a drop guard);
//! 2. read `provider` and check it is the TEE we expect, before trusting the blob format;
//! 3. read `generation`;
//! 4. write `privlevel` (SNP only) and `inblob` (exactly 64 bytes) — each write advances `generation` by one;
//! 5. read `outblob` and, for SNP, `auxblob` (the host's certificate table, parsed bounds-checked);
//! 6. re-read `generation`: anything but the value our own writes explain means another writer raced us and the blobs
//!    may carry *its* report data, so they are discarded and the request is retried (bounded).
//!
//! `EBUSY` from any step is retried the same way. The file-system is behind [`TsmFs`] so tests drive the protocol
//! against [`fake::FakeTsm`], a model of the kernel (generation counter, provider, EBUSY, concurrent writers).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::attester::{AttestError, Attester, Evidence};
use crate::snp::cert_table::{self, CertKind};
use crate::TeeType;

/// Where the kernel mounts the report interface.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// `TSM_INBLOB_MAX`: the report data written to `inblob`.
pub const INBLOB_SIZE: usize = 64;

/// How the backend reaches the configfs-tsm tree. Entry and attribute names are plain names (no `/`).
pub trait TsmFs: Send + Sync + fmt::Debug {
    /// Human-readable location, for messages.
    fn location(&self) -> String;
    /// `Ok` when the report root exists (the interface is there at all).
    fn root_present(&self) -> io::Result<()>;
    /// `mkdir <root>/<entry>`.
    fn create_entry(&self, entry: &str) -> io::Result<()>;
    /// `rmdir <root>/<entry>`.
    fn remove_entry(&self, entry: &str) -> io::Result<()>;
    /// Read a whole attribute.
    fn read_attr(&self, entry: &str, attr: &str) -> io::Result<Vec<u8>>;
    /// Write an attribute in one `write` and close it (configfs commits binary attributes on close).
    fn write_attr(&self, entry: &str, attr: &str, data: &[u8]) -> io::Result<()>;
}

/// The real configfs tree under a root directory (default [`DEFAULT_ROOT`]; configurable for tests).
#[derive(Debug, Clone)]
pub struct RealTsmFs {
    root: PathBuf,
}

impl RealTsmFs {
    /// A tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Default for RealTsmFs {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT)
    }
}

impl TsmFs for RealTsmFs {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn root_present(&self) -> io::Result<()> {
        let meta = std::fs::metadata(&self.root)?;
        if meta.is_dir() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"))
        }
    }

    fn create_entry(&self, entry: &str) -> io::Result<()> {
        std::fs::create_dir(self.root.join(entry))
    }

    fn remove_entry(&self, entry: &str) -> io::Result<()> {
        std::fs::remove_dir(self.root.join(entry))
    }

    fn read_attr(&self, entry: &str, attr: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.root.join(entry).join(attr))
    }

    fn write_attr(&self, entry: &str, attr: &str, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        // No create, no truncate: configfs attributes exist once the entry does.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.root.join(entry).join(attr))?;
        f.write_all(data)?;
        // Dropping closes the file, which commits a binary attribute.
        Ok(())
    }
}

/// The `provider` value of each TEE.
pub fn provider_tee(provider: &str) -> Option<TeeType> {
    match provider {
        "sev_guest" => Some(TeeType::SevSnp),
        "tdx_guest" => Some(TeeType::Tdx),
        _ => None,
    }
}

fn expected_provider(tee: TeeType) -> &'static str {
    match tee {
        TeeType::SevSnp => "sev_guest",
        TeeType::Tdx => "tdx_guest",
    }
}

/// Tuning of one attester.
#[derive(Debug, Clone)]
pub struct TsmOptions {
    /// The TEE expected behind the interface; `None` accepts whichever provider is registered (`auto`).
    pub expect: Option<TeeType>,
    /// SNP VMPL written to `privlevel` (0 unless the guest runs under an SVSM with a higher floor).
    pub privlevel: u32,
    /// Attempts per request (EBUSY and raced generations each consume one).
    pub max_attempts: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl Default for TsmOptions {
    fn default() -> Self {
        Self {
            expect: None,
            privlevel: 0,
            max_attempts: 4,
            retry_backoff: Duration::from_millis(20),
        }
    }
}

/// The configfs-tsm attester. Construct with [`ConfigfsTsmAttester::open`], which probes the provider once.
#[derive(Debug)]
pub struct ConfigfsTsmAttester {
    fs: Arc<dyn TsmFs>,
    tee: TeeType,
    opts: TsmOptions,
}

static ENTRY_COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_entry_name(purpose: &str) -> String {
    let n = ENTRY_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("locus-{purpose}-{}-{n}-{nanos:08x}", std::process::id())
}

/// A created entry, removed on drop (on every path, including errors and panics in between).
struct EntryGuard<'a> {
    fs: &'a dyn TsmFs,
    name: String,
}

impl<'a> EntryGuard<'a> {
    fn create(fs: &'a dyn TsmFs, purpose: &str) -> Result<Self, io::Error> {
        // A name collision (another process picked the same name) is retried with a fresh name.
        let mut last = None;
        for _ in 0..8 {
            let name = unique_entry_name(purpose);
            match fs.create_entry(&name) {
                Ok(()) => return Ok(Self { fs, name }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::AlreadyExists, "entry name collision")
        }))
    }
}

impl Drop for EntryGuard<'_> {
    fn drop(&mut self) {
        // Nothing useful to do if removal fails (the kernel frees the entry's report with the directory).
        let _ = self.fs.remove_entry(&self.name);
    }
}

fn is_busy(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ResourceBusy || e.raw_os_error() == Some(16)
}

/// Why one attempt did not produce evidence.
enum AttemptError {
    /// EBUSY or a raced generation: try again.
    Retry(String),
    /// Anything else: give up now.
    Fatal(AttestError),
}

fn io_step(loc: &str, step: &str, e: io::Error) -> AttemptError {
    if is_busy(&e) {
        AttemptError::Retry(format!("{step}: device busy (EBUSY)"))
    } else {
        AttemptError::Fatal(AttestError::Failed(format!(
            "configfs-tsm {loc}: {step}: {e}"
        )))
    }
}

fn parse_generation(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

fn read_provider(fs: &dyn TsmFs, entry: &str) -> io::Result<String> {
    let raw = fs.read_attr(entry, "provider")?;
    Ok(String::from_utf8_lossy(&raw).trim().to_string())
}

impl ConfigfsTsmAttester {
    /// Probe the interface: the root must exist and a private entry must report a provider we know (and the one
    /// in `opts.expect`, if set). The probe entry is removed again.
    pub fn open(fs: Arc<dyn TsmFs>, opts: TsmOptions) -> Result<Self, AttestError> {
        let loc = fs.location();
        fs.root_present()
            .map_err(|e| AttestError::Unavailable(format!("configfs-tsm {loc}: {e}")))?;
        let entry = EntryGuard::create(fs.as_ref(), "probe").map_err(|e| {
            AttestError::Unavailable(format!("configfs-tsm {loc}: cannot create an entry: {e}"))
        })?;
        let provider = read_provider(fs.as_ref(), &entry.name).map_err(|e| {
            AttestError::Unavailable(format!("configfs-tsm {loc}: no provider registered: {e}"))
        })?;
        drop(entry);
        let tee = provider_tee(&provider).ok_or_else(|| {
            AttestError::Unavailable(format!(
                "configfs-tsm {loc}: provider {provider:?} is neither sev_guest nor tdx_guest"
            ))
        })?;
        if let Some(want) = opts.expect {
            if want != tee {
                return Err(AttestError::Unavailable(format!(
                    "configfs-tsm {loc}: provider is {provider:?}, not {:?}",
                    expected_provider(want)
                )));
            }
        }
        Ok(Self { fs, tee, opts })
    }

    fn attempt(&self, report_data: &[u8; 64]) -> Result<Evidence, AttemptError> {
        let fs = self.fs.as_ref();
        let loc = fs.location();
        let entry = EntryGuard::create(fs, "report").map_err(|e| io_step(&loc, "mkdir", e))?;
        let name = entry.name.as_str();

        // Step 2: the provider decides the blob format.
        let provider = read_provider(fs, name).map_err(|e| io_step(&loc, "read provider", e))?;
        if provider_tee(&provider) != Some(self.tee) {
            return Err(AttemptError::Fatal(AttestError::Unavailable(format!(
                "configfs-tsm {loc}: provider changed to {provider:?}, expected {:?}",
                expected_provider(self.tee)
            ))));
        }

        // Step 3.
        let before = fs
            .read_attr(name, "generation")
            .map_err(|e| io_step(&loc, "read generation", e))?;
        let before = parse_generation(&before).ok_or_else(|| {
            AttemptError::Fatal(AttestError::Failed(format!(
                "configfs-tsm {loc}: generation is not a number"
            )))
        })?;

        // Step 4: every write advances the generation by one.
        let mut writes = 0u64;
        if self.tee == TeeType::SevSnp {
            if let Ok(floor) = fs.read_attr(name, "privlevel_floor") {
                if let Some(floor) = parse_generation(&floor) {
                    if floor > u64::from(self.opts.privlevel) {
                        return Err(AttemptError::Fatal(AttestError::Unavailable(format!(
                            "configfs-tsm {loc}: privlevel_floor {floor} is above the requested privlevel {}",
                            self.opts.privlevel
                        ))));
                    }
                }
            }
            fs.write_attr(
                name,
                "privlevel",
                self.opts.privlevel.to_string().as_bytes(),
            )
            .map_err(|e| io_step(&loc, "write privlevel", e))?;
            writes += 1;
        }
        fs.write_attr(name, "inblob", report_data)
            .map_err(|e| io_step(&loc, "write inblob", e))?;
        writes += 1;

        // Step 5.
        let outblob = fs
            .read_attr(name, "outblob")
            .map_err(|e| io_step(&loc, "read outblob", e))?;
        let auxblob = if self.tee == TeeType::SevSnp {
            match fs.read_attr(name, "auxblob") {
                Ok(aux) => Some(aux),
                // Hosts may supply no certificate table at all (trustee#456).
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_step(&loc, "read auxblob", e)),
            }
        } else {
            None
        };

        // Step 6: the race check.
        let after = fs
            .read_attr(name, "generation")
            .map_err(|e| io_step(&loc, "re-read generation", e))?;
        let after = parse_generation(&after).ok_or_else(|| {
            AttemptError::Fatal(AttestError::Failed(format!(
                "configfs-tsm {loc}: generation is not a number"
            )))
        })?;
        let expected = before.saturating_add(writes);
        if after != expected {
            return Err(AttemptError::Retry(format!(
                "generation raced: expected {expected} after our {writes} write(s), found {after}"
            )));
        }
        drop(entry);

        if TeeType::detect(&outblob) != Some(self.tee) {
            return Err(AttemptError::Fatal(AttestError::Failed(format!(
                "configfs-tsm {loc}: outblob ({} bytes) is not {}",
                outblob.len(),
                match self.tee {
                    TeeType::SevSnp => "an SEV-SNP report",
                    TeeType::Tdx => "a TDX quote",
                }
            ))));
        }
        let certs = auxblob
            .as_deref()
            .map(certs_from_auxblob)
            .unwrap_or_default();
        Ok(Evidence {
            tee: self.tee,
            raw: outblob,
            certs,
        })
    }
}

/// The endorsement certificates of an SNP `auxblob`, VEK first, then ASK, then ARK; CRLs and unknown GUIDs dropped.
///
/// The table is the host's and is only a hint: the verifier chain-checks whatever it receives and can fetch the VCEK
/// itself, so an empty or malformed table yields no certificates rather than failing the attestation.
pub fn certs_from_auxblob(aux: &[u8]) -> Vec<Vec<u8>> {
    if aux.iter().all(|b| *b == 0) {
        return Vec::new();
    }
    let Ok(entries) = cert_table::parse(aux) else {
        return Vec::new();
    };
    let rank = |k: CertKind| match k {
        CertKind::Vcek | CertKind::Vlek => Some(0),
        CertKind::Ask => Some(1),
        CertKind::Ark => Some(2),
        CertKind::Crl | CertKind::Other(_) => None,
    };
    let mut ranked: Vec<(u8, Vec<u8>)> = entries
        .into_iter()
        .filter_map(|e| rank(e.kind).map(|r| (r, e.data)))
        .collect();
    ranked.sort_by_key(|(r, _)| *r);
    ranked.into_iter().map(|(_, d)| d).collect()
}

impl Attester for ConfigfsTsmAttester {
    fn name(&self) -> &str {
        "configfs-tsm"
    }

    fn tee(&self) -> TeeType {
        self.tee
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let attempts = self.opts.max_attempts.max(1);
        let mut reasons = Vec::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                let factor = 1u32 << (attempt - 1).min(10);
                std::thread::sleep(self.opts.retry_backoff.saturating_mul(factor));
            }
            match self.attempt(report_data) {
                Ok(evidence) => return Ok(evidence),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry(why)) => reasons.push(why),
            }
        }
        Err(AttestError::Busy(format!(
            "configfs-tsm {}: gave up after {attempts} attempt(s): {}",
            self.fs.location(),
            reasons.join("; ")
        )))
    }
}

pub mod fake {
    //! A model of the kernel's configfs-tsm for tests (after go-configfs-tsm `configfs/faketsm`): entries with a
    //! generation counter advanced by every write, a `provider`, `privlevel`/`privlevel_floor`, an `outblob` and
    //! `auxblob` produced from the written `inblob` by a pluggable "firmware", and injectable faults: `EBUSY` on
    //! the next writes, and a concurrent writer that changes the entry between our write and our read.

    use std::collections::HashMap;
    use std::io;
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::TsmFs;

    /// Produces `(outblob, auxblob)` from the 64-byte report data and the privlevel written to the entry.
    pub type Firmware =
        dyn Fn(&[u8; 64], u32) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> + Send + Sync;

    #[derive(Debug, Default)]
    struct Entry {
        generation: u64,
        inblob: Option<[u8; 64]>,
        privlevel: u32,
    }

    #[derive(Debug, Default)]
    struct State {
        entries: HashMap<String, Entry>,
        created: u64,
        removed: u64,
        busy_writes: u32,
        races: u32,
        raced: u64,
        firmware_calls: u64,
    }

    /// The fake kernel interface. Cheap to clone (shared state).
    #[derive(Clone)]
    pub struct FakeTsm {
        provider: Option<String>,
        privlevel_floor: Option<u32>,
        firmware: Arc<Firmware>,
        state: Arc<Mutex<State>>,
    }

    impl std::fmt::Debug for FakeTsm {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("FakeTsm")
                .field("provider", &self.provider)
                .finish_non_exhaustive()
        }
    }

    fn errno(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    const ENOENT: i32 = 2;
    const EBUSY: i32 = 16;
    const EEXIST: i32 = 17;
    const EINVAL: i32 = 22;
    const ENXIO: i32 = 6;

    impl FakeTsm {
        /// A tree whose provider is `provider` (`"sev_guest"`, `"tdx_guest"`; `None`: no provider registered, as on
        /// a machine without a TEE) and whose reports come from `firmware`.
        pub fn new(
            provider: Option<&str>,
            firmware: impl Fn(&[u8; 64], u32) -> io::Result<(Vec<u8>, Option<Vec<u8>>)>
                + Send
                + Sync
                + 'static,
        ) -> Self {
            Self {
                provider: provider.map(str::to_string),
                privlevel_floor: None,
                firmware: Arc::new(firmware),
                state: Arc::new(Mutex::new(State::default())),
            }
        }

        /// Expose `privlevel_floor` with this value (SVSM guests).
        pub fn with_privlevel_floor(mut self, floor: u32) -> Self {
            self.privlevel_floor = Some(floor);
            self
        }

        fn state(&self) -> MutexGuard<'_, State> {
            // A panicking test thread must not hide the state from the others.
            self.state.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// The next `n` attribute writes fail with `EBUSY`.
        pub fn fail_next_writes_busy(&self, n: u32) {
            self.state().busy_writes = n;
        }

        /// The next `n` reads of `outblob` are preceded by another process writing the entry's `inblob` (different
        /// report data, generation +1) — the race the generation check exists for.
        pub fn race_next_reads(&self, n: u32) {
            self.state().races = n;
        }

        /// Entries created so far.
        pub fn created(&self) -> u64 {
            self.state().created
        }

        /// Entries removed so far.
        pub fn removed(&self) -> u64 {
            self.state().removed
        }

        /// Entries still present.
        pub fn live_entries(&self) -> usize {
            self.state().entries.len()
        }

        /// Concurrent writes injected so far.
        pub fn raced(&self) -> u64 {
            self.state().raced
        }

        /// Reports produced by the firmware so far.
        pub fn firmware_calls(&self) -> u64 {
            self.state().firmware_calls
        }
    }

    impl TsmFs for FakeTsm {
        fn location(&self) -> String {
            "fake-tsm".to_string()
        }

        fn root_present(&self) -> io::Result<()> {
            Ok(())
        }

        fn create_entry(&self, entry: &str) -> io::Result<()> {
            let mut st = self.state();
            if st.entries.contains_key(entry) {
                return Err(errno(EEXIST));
            }
            st.entries.insert(entry.to_string(), Entry::default());
            st.created += 1;
            Ok(())
        }

        fn remove_entry(&self, entry: &str) -> io::Result<()> {
            let mut st = self.state();
            st.entries.remove(entry).ok_or_else(|| errno(ENOENT))?;
            st.removed += 1;
            Ok(())
        }

        fn read_attr(&self, entry: &str, attr: &str) -> io::Result<Vec<u8>> {
            let mut st = self.state();
            let st = &mut *st;
            let e = st.entries.get_mut(entry).ok_or_else(|| errno(ENOENT))?;
            match attr {
                "provider" => match &self.provider {
                    Some(p) => Ok(format!("{p}\n").into_bytes()),
                    None => Err(errno(ENXIO)),
                },
                "generation" => Ok(format!("{}\n", e.generation).into_bytes()),
                "privlevel_floor" => match self.privlevel_floor {
                    Some(f) => Ok(format!("{f}\n").into_bytes()),
                    None => Err(errno(ENOENT)),
                },
                "outblob" | "auxblob" => {
                    if attr == "outblob" && st.races > 0 {
                        st.races -= 1;
                        st.raced += 1;
                        e.inblob = Some([0xEE; 64]);
                        e.generation += 1;
                    }
                    let inblob = e.inblob.ok_or_else(|| errno(EINVAL))?;
                    st.firmware_calls += 1;
                    let (out, aux) = (self.firmware)(&inblob, e.privlevel)?;
                    if attr == "outblob" {
                        Ok(out)
                    } else {
                        aux.ok_or_else(|| errno(ENOENT))
                    }
                }
                "inblob" | "privlevel" => Err(errno(EINVAL)),
                _ => Err(errno(ENOENT)),
            }
        }

        fn write_attr(&self, entry: &str, attr: &str, data: &[u8]) -> io::Result<()> {
            let mut st = self.state();
            if !st.entries.contains_key(entry) {
                return Err(errno(ENOENT));
            }
            if st.busy_writes > 0 {
                st.busy_writes -= 1;
                return Err(errno(EBUSY));
            }
            let floor = self.privlevel_floor.unwrap_or(0);
            let e = st.entries.get_mut(entry).ok_or_else(|| errno(ENOENT))?;
            match attr {
                "inblob" => {
                    if data.len() > 64 {
                        return Err(errno(EINVAL));
                    }
                    // The kernel zero-fills a short write.
                    let mut blob = [0u8; 64];
                    blob[..data.len()].copy_from_slice(data);
                    e.inblob = Some(blob);
                }
                "privlevel" => {
                    let text = std::str::from_utf8(data).map_err(|_| errno(EINVAL))?;
                    let level: u32 = text.trim().parse().map_err(|_| errno(EINVAL))?;
                    if level > 3 || level < floor {
                        return Err(errno(EINVAL));
                    }
                    e.privlevel = level;
                }
                "provider" | "generation" | "outblob" | "auxblob" | "privlevel_floor" => {
                    return Err(errno(EINVAL))
                }
                _ => return Err(errno(ENOENT)),
            }
            e.generation += 1;
            Ok(())
        }
    }
}
