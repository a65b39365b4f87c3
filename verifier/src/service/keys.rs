//! The verifier's secrets in `keys_dir` (default `<state_dir>/keys`), the only state replicas share (docs/operations.md#replicas-and-shared-keys):
//!
//! - `challenge.key`, `challenge-<not_before>.key`: 32 random bytes each, the challenge MAC keys (§2);
//! - `es256-<not_before>.pk8`: ES256 WIT signing keys (PKCS#8 DER);
//! - `jwt-svid-<not_before>.pk8`: ES256 JWT-SVID signing keys (PKCS#8 DER), published with `use` `jwt-svid`;
//! - `spiffe-ca-<not_before>.pk8` and `spiffe-ca-<not_before>.crt`: the SPIFFE X.509 CA keys (PKCS#8 DER) and their
//!   self-signed certificates (DER, written once beside the key so every replica publishes the same bytes).
//!
//! `<not_before>` is the 10-digit unix second from which the key signs (or makes nonces); `challenge.key` is the
//! first challenge key, active since forever. Files written before keys had a not-before were named by their creation
//! second, which was also when they started signing, so they read the same. Which key is active and which are still
//! published is decided from the not-befores alone ([`super::schedule`]), so replicas sharing the directory switch at
//! the same second without coordination.
//!
//! Every file is written 0600, first to a temporary name and then hard-linked into place, so a replica never reads
//! half a key and two replicas starting together on an empty directory agree on one key (the link fails for the
//! loser, who then reads the winner's). A Kubernetes Secret mounted read-only works the same: nothing is written
//! when the files exist. A key file that group or other may write, or other may read, is refused at load
//! ([`check_mode`]); group read is allowed because Kubernetes adds it to Secret files when the pod sets `fsGroup`.
//!
//! Rotation (`locus-verifier keys rotate`) adds a key whose not-before is [`DEFAULT_ACTIVATE_IN`] ahead: replicas
//! load it and publish it in the JWKS while the previous key still signs, so a relying party's cached JWKS (max-age
//! [`JWKS_MAX_AGE`]) already holds it when the first WIT it signs arrives. The superseded key stays published until
//! `retain` (the longest credential lifetime plus [`RETAIN_SKEW`]) after its successor's not-before, so every WIT it
//! signed can be verified until it expires; a later rotation prunes it. `keys rotate-challenge` does the same for the
//! challenge MAC key, with `retain` = challenge ttl + skew.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use locus_wimse::jwk::{Alg, Jwk, USE_WIT_SVID};

/// `use` of a JWT-SVID signing key in the SPIFFE bundle.
pub const USE_JWT_SVID: &str = "jwt-svid";
/// `use` of an X.509 CA certificate in the SPIFFE bundle.
pub const USE_X509_SVID: &str = "x509-svid";
use locus_wimse::Es256SigningKey;
use ring::rand::{SecureRandom as _, SystemRandom};

use super::schedule;

/// The first challenge MAC key, active since forever.
pub const CHALLENGE_KEY_FILE: &str = "challenge.key";
const CHALLENGE_PREFIX: &str = "challenge-";
const CHALLENGE_SUFFIX: &str = ".key";
const KEY_PREFIX: &str = "es256-";
const KEY_SUFFIX: &str = ".pk8";
const CHALLENGE_KEY_LEN: usize = 32;
/// Clock skew allowed on top of the credential lifetime before an old key leaves the JWKS.
pub const RETAIN_SKEW: Duration = Duration::from_secs(300);
/// How long relying parties may cache `/.well-known/jwks.json` (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(60);
/// Clock skew between replicas (and relying parties) allowed for when a new key starts to sign.
pub const ACTIVATION_SKEW: Duration = Duration::from_secs(30);
/// Default time from `keys rotate` to the new key's not-before: the JWKS cache lifetime, a replica's key rescan
/// (30 s by default), a Kubernetes Secret update reaching the pods (about a minute), and clock skew, with margin.
pub const DEFAULT_ACTIVATE_IN: Duration = Duration::from_secs(300);
/// The shortest `--activate-in` that lets every replica load a new key (within `key_rescan`, when set) and every
/// relying party's cached JWKS expire before the key signs.
pub fn safe_activate_in(key_rescan: Option<Duration>) -> Duration {
    JWKS_MAX_AGE + key_rescan.unwrap_or(Duration::ZERO) + ACTIVATION_SKEW
}

/// Mode bits a key file must not have: group or other write, other read.
pub const FORBIDDEN_MODE_BITS: u32 = 0o026;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a P-256 PKCS#8 key: {detail}")]
    BadKey { path: PathBuf, detail: String },
    #[error("{path}: challenge key must be 32 bytes, got {len}")]
    BadChallengeKey { path: PathBuf, len: usize },
    #[error(
        "{path}: mode {mode:04o} lets group/other write it or other read it; refusing to use the key (chmod 0600 or \
         0400; group read 0440 is allowed)"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("system random source failed")]
    Random,
    #[error("{0}: no signing key")]
    NoKey(PathBuf),
    #[error("{0}: no challenge key")]
    NoChallengeKey(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuse a key file whose permission bits (`mode`, as `st_mode`) let group/other write it or other read it.
pub fn check_mode(path: &Path, mode: u32) -> Result<(), KeyError> {
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Read a key file after checking the permissions of what was opened (following symlinks, as a mounted Kubernetes
/// Secret has them; checked on the open file so a swap between check and read cannot slip past).
pub fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let mut f = fs::File::open(path).map_err(io(path))?;
    let mode = f.metadata().map_err(io(path))?.permissions().mode();
    check_mode(path, mode)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(io(path))?;
    Ok(bytes)
}

/// One kind of key file: `<prefix><10-digit not_before><suffix>`, plus an optional fixed name meaning not-before 0.
struct FileKind {
    prefix: &'static str,
    suffix: &'static str,
    since_forever: Option<&'static str>,
    /// A file that belongs to each key (same stem, this suffix): pruned with it.
    companion: Option<&'static str>,
}

const SIGNING: FileKind = FileKind {
    prefix: KEY_PREFIX,
    suffix: KEY_SUFFIX,
    since_forever: None,
    companion: None,
};

const JWT_SVID: FileKind = FileKind {
    prefix: "jwt-svid-",
    suffix: KEY_SUFFIX,
    since_forever: None,
    companion: None,
};

const SPIFFE_CA: FileKind = FileKind {
    prefix: "spiffe-ca-",
    suffix: KEY_SUFFIX,
    since_forever: None,
    companion: Some(CA_CERT_SUFFIX),
};

/// Suffix of the certificate file beside a SPIFFE CA key.
pub const CA_CERT_SUFFIX: &str = ".crt";

const CHALLENGE: FileKind = FileKind {
    prefix: CHALLENGE_PREFIX,
    suffix: CHALLENGE_SUFFIX,
    since_forever: Some(CHALLENGE_KEY_FILE),
    companion: None,
};

/// The kinds of ES256 signing key in the keys directory; each has its own files and its own rotation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// WIT (and EAR) signing keys, `use` `wit-svid`.
    Wit,
    /// JWT-SVID signing keys, `use` `jwt-svid`.
    JwtSvid,
    /// SPIFFE X.509 CA keys, `use` `x509-svid` (their certificates sit beside them).
    SpiffeCa,
}

impl KeyKind {
    fn files(self) -> &'static FileKind {
        match self {
            KeyKind::Wit => &SIGNING,
            KeyKind::JwtSvid => &JWT_SVID,
            KeyKind::SpiffeCa => &SPIFFE_CA,
        }
    }

    /// The JWK `use` its public keys are published with.
    pub fn key_use(self) -> &'static str {
        match self {
            KeyKind::Wit => USE_WIT_SVID,
            KeyKind::JwtSvid => USE_JWT_SVID,
            KeyKind::SpiffeCa => USE_X509_SVID,
        }
    }

    /// The path of a key file's companion (the CA certificate beside a CA key).
    pub fn companion_path(self, key_path: &Path) -> Option<PathBuf> {
        let suffix = self.files().companion?;
        let name = key_path.file_name()?.to_str()?;
        let stem = name.strip_suffix(self.files().suffix)?;
        Some(key_path.with_file_name(format!("{stem}{suffix}")))
    }
}

impl FileKind {
    fn not_before(&self, name: &str) -> Option<u64> {
        if Some(name) == self.since_forever {
            return Some(0);
        }
        let digits = name.strip_prefix(self.prefix)?.strip_suffix(self.suffix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    fn file_name(&self, not_before: u64) -> String {
        format!("{}{not_before:010}{}", self.prefix, self.suffix)
    }

    /// Whether `name` is this kind's key file or its companion.
    fn owns(&self, name: &str) -> bool {
        if self.not_before(name).is_some() {
            return true;
        }
        match self.companion {
            Some(c) => name
                .strip_prefix(self.prefix)
                .and_then(|rest| rest.strip_suffix(c))
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())),
            None => false,
        }
    }

    /// The files of this kind in `dir` with their not-befores, by (not-before, name).
    fn scan(&self, dir: &Path) -> Result<Vec<(u64, PathBuf)>, KeyError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name();
            let Some(nb) = name.to_str().and_then(|n| self.not_before(n)) else {
                continue;
            };
            out.push((nb, entry.path()));
        }
        out.sort();
        Ok(out)
    }
}

/// One ES256 signing key.
pub struct SigningKey {
    pub kid: String,
    /// Unix second from which it signs (0: since forever).
    pub not_before: u64,
    /// The file it came from (what pruning removes).
    pub path: PathBuf,
    /// The key, `kid` set to its RFC 7638 thumbprint.
    pub key: Arc<Es256SigningKey>,
    /// The public JWK (`alg` ES256, `kid`, `use` of its [`KeyKind`]).
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("not_before", &self.not_before)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pkcs8(
        path: &Path,
        not_before: u64,
        pkcs8: &[u8],
        kind: KeyKind,
    ) -> Result<Self, KeyError> {
        let key = Es256SigningKey::from_pkcs8(pkcs8)
            .map_err(|e| KeyError::BadKey {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?
            .with_thumbprint_kid();
        let bare = Jwk::new(key.public_key());
        let kid = bare.thumbprint_b64();
        let jwk = bare
            .with_alg(Alg::Es256)
            .with_kid(kid.clone())
            .with_use(kind.key_use());
        Ok(SigningKey {
            kid,
            not_before,
            path: path.to_path_buf(),
            key: Arc::new(key),
            jwk,
        })
    }

    /// A fresh copy of the key for an owner that needs one by value (`WitIssuer`).
    pub fn to_owned_key(&self) -> Result<Es256SigningKey, KeyError> {
        Es256SigningKey::from_pkcs8(self.key.to_pkcs8())
            .map(|k| k.with_kid(self.kid.clone()))
            .map_err(|e| KeyError::BadKey {
                path: self.path.clone(),
                detail: e.to_string(),
            })
    }
}

/// The signing keys found in a keys directory, by not-before (never empty).
#[derive(Debug)]
pub struct KeySet {
    pub dir: PathBuf,
    pub kind: KeyKind,
    keys: Vec<SigningKey>,
    /// `keys[i].not_before`, for the schedule.
    not_befores: Vec<u64>,
}

/// What `rotate` / `rotate_challenge` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new signing key's kid (`None` for a challenge key, which has no public identity).
    pub kid: Option<String>,
    /// When the new key starts to sign (or make nonces).
    pub not_before: u64,
    /// Files of superseded keys no longer live at rotation time, deleted.
    pub removed: Vec<PathBuf>,
}

impl KeySet {
    /// Position in [`KeySet::all`] of the key that signs at `now`: the newest whose not-before has passed.
    pub fn active_index(&self, now: u64) -> usize {
        // `load` refuses an empty set, so there is always an active key.
        schedule::active_index(&self.not_befores, now).unwrap_or(0)
    }

    /// The key that signs new credentials at `now`.
    pub fn active(&self, now: u64) -> &SigningKey {
        &self.keys[self.active_index(now)]
    }

    /// Every key, by not-before.
    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Keys to publish at `now`: the active one, every one not yet active (pre-published), and each superseded one
    /// whose successor started signing less than `retain` ago.
    pub fn published(&self, now: u64, retain: Duration) -> Vec<&SigningKey> {
        self.keys
            .iter()
            .enumerate()
            .filter(|(i, _)| schedule::is_live(&self.not_befores, *i, now, retain))
            .map(|(_, k)| k)
            .collect()
    }

    /// Load every WIT signing key in `dir` (no writes), refusing files with loose permissions.
    pub fn load(dir: &Path) -> Result<KeySet, KeyError> {
        KeySet::load_kind(dir, KeyKind::Wit)
    }

    /// Load every key of `kind` in `dir` (no writes), refusing files with loose permissions.
    pub fn load_kind(dir: &Path, kind: KeyKind) -> Result<KeySet, KeyError> {
        let mut keys = Vec::new();
        for (nb, path) in kind.files().scan(dir)? {
            let der = read_key_file(&path)?;
            keys.push(SigningKey::from_pkcs8(&path, nb, &der, kind)?);
        }
        if keys.is_empty() {
            return Err(KeyError::NoKey(dir.to_path_buf()));
        }
        let not_befores = keys.iter().map(|k| k.not_before).collect();
        Ok(KeySet {
            dir: dir.to_path_buf(),
            kind,
            keys,
            not_befores,
        })
    }

    /// First start: create `dir`, a challenge key and a WIT signing key if they are missing; then load.
    pub fn ensure(dir: &Path) -> Result<KeySet, KeyError> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        }
        if CHALLENGE.scan(dir)?.is_empty() {
            let secret = random_challenge_secret()?;
            write_once(&dir.join(CHALLENGE_KEY_FILE), &secret, true)?;
        }
        KeySet::ensure_kind(dir, KeyKind::Wit)
    }

    /// Create a key of `kind` (not-before 0) in `dir` if it has none; then load. Two replicas doing this together
    /// agree on one key (the loser of the link reads the winner's).
    pub fn ensure_kind(dir: &Path, kind: KeyKind) -> Result<KeySet, KeyError> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        }
        match KeySet::load_kind(dir, kind) {
            Err(KeyError::NoKey(_)) => {
                let pkcs8 = generate()?;
                write_once(&dir.join(kind.files().file_name(0)), &pkcs8, true)?;
                KeySet::load_kind(dir, kind)
            }
            other => other,
        }
    }

    /// Add a WIT signing key that starts signing `activate_in` after `now` (and after every existing key), and delete
    /// the keys no longer published at `now`. Until its not-before the new key is only published.
    pub fn rotate(
        dir: &Path,
        now: u64,
        activate_in: Duration,
        retain: Duration,
    ) -> Result<Rotated, KeyError> {
        KeySet::rotate_kind(dir, KeyKind::Wit, now, activate_in, retain)
    }

    /// [`KeySet::rotate`] for keys of `kind`; a pruned key's companion file (a CA certificate) goes with it.
    pub fn rotate_kind(
        dir: &Path,
        kind: KeyKind,
        now: u64,
        activate_in: Duration,
        retain: Duration,
    ) -> Result<Rotated, KeyError> {
        let before = KeySet::load_kind(dir, kind)?;
        let not_before = schedule::next_not_before(&before.not_befores, now, activate_in);
        let pkcs8 = generate()?;
        let path = dir.join(kind.files().file_name(not_before));
        // Strict here: a concurrent rotation that took this name must not leave us reporting a key that is not on disk.
        write_once(&path, &pkcs8, false)?;
        let kid = SigningKey::from_pkcs8(&path, not_before, &pkcs8, kind)?.kid;
        let after = KeySet::load_kind(dir, kind)?;
        let mut removed = Vec::new();
        for (i, k) in after.keys.iter().enumerate() {
            if !schedule::is_live(&after.not_befores, i, now, retain) {
                fs::remove_file(&k.path).map_err(io(&k.path))?;
                removed.push(k.path.clone());
                if let Some(c) = kind.companion_path(&k.path) {
                    match fs::remove_file(&c) {
                        Ok(()) => removed.push(c),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(KeyError::Io { path: c, source: e }),
                    }
                }
            }
        }
        Ok(Rotated {
            kid: Some(kid),
            not_before,
            removed,
        })
    }

    /// The not-befores of the keys, in order (for the bundle sequence number).
    pub fn not_befores(&self) -> &[u64] {
        &self.not_befores
    }
}

/// The landmark's statement key (docs/proximity.md), one per landmark host, never rotated by `keys rotate`: its
/// thumbprint is the landmark id issuers trust.
pub const LANDMARK_KEY_FILE: &str = "landmark.pk8";

/// Load the landmark statement key from `dir`, creating it (0600) first when `create` and it is missing.
pub fn landmark_key(dir: &Path, create: bool) -> Result<Es256SigningKey, KeyError> {
    let path = dir.join(LANDMARK_KEY_FILE);
    if create && !path.exists() {
        write_once(&path, &generate()?, true)?;
    }
    let der = read_key_file(&path)?;
    Es256SigningKey::from_pkcs8(&der).map_err(|e| KeyError::BadKey {
        path: path.clone(),
        detail: e.to_string(),
    })
}

/// The challenge MAC keys in `dir` with their not-befores, by not-before, refusing loose permissions and wrong sizes.
pub fn load_challenge_keys(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>, KeyError> {
    let mut out = Vec::new();
    for (nb, path) in CHALLENGE.scan(dir)? {
        let bytes = read_key_file(&path)?;
        if bytes.len() != CHALLENGE_KEY_LEN {
            return Err(KeyError::BadChallengeKey {
                path,
                len: bytes.len(),
            });
        }
        out.push((nb, bytes));
    }
    if out.is_empty() {
        return Err(KeyError::NoChallengeKey(dir.to_path_buf()));
    }
    Ok(out)
}

/// Add a challenge MAC key that starts making nonces `activate_in` after `now`, and delete the keys whose successor
/// started more than `retain` (challenge ttl + skew, [`super::challenge::retention`]) before `now`.
pub fn rotate_challenge(
    dir: &Path,
    now: u64,
    activate_in: Duration,
    retain: Duration,
) -> Result<Rotated, KeyError> {
    let before: Vec<u64> = load_challenge_keys(dir)?
        .iter()
        .map(|(nb, _)| *nb)
        .collect();
    let not_before = schedule::next_not_before(&before, now, activate_in);
    let secret = random_challenge_secret()?;
    write_once(&dir.join(CHALLENGE.file_name(not_before)), &secret, false)?;
    // Loading again checks what is now on disk (permissions, sizes) before anything is pruned.
    load_challenge_keys(dir)?;
    let files = CHALLENGE.scan(dir)?;
    let not_befores: Vec<u64> = files.iter().map(|(nb, _)| *nb).collect();
    let mut removed = Vec::new();
    for (i, (_, path)) in files.iter().enumerate() {
        if !schedule::is_live(&not_befores, i, now, retain) {
            fs::remove_file(path).map_err(io(path))?;
            removed.push(path.clone());
        }
    }
    Ok(Rotated {
        kid: None,
        not_before,
        removed,
    })
}

fn random_challenge_secret() -> Result<[u8; CHALLENGE_KEY_LEN], KeyError> {
    let mut secret = [0u8; CHALLENGE_KEY_LEN];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| KeyError::Random)?;
    Ok(secret)
}

fn generate() -> Result<Vec<u8>, KeyError> {
    Es256SigningKey::generate()
        .map(|k| k.to_pkcs8().to_vec())
        .map_err(|_| KeyError::Random)
}

/// Write `bytes` to `path` with mode 0600 unless it exists: temp file, fsync, then hard link (atomic, fails if
/// `path` exists — then the existing file wins, which is not an error when `existing_wins`).
pub fn write_once(path: &Path, bytes: &[u8], existing_wins: bool) -> Result<(), KeyError> {
    let mut rnd = [0u8; 8];
    SystemRandom::new()
        .fill(&mut rnd)
        .map_err(|_| KeyError::Random)?;
    let tmp = path.with_extension(format!("tmp-{}", hex::encode(rnd)));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(parent) = path.parent() {
                if let Ok(d) = fs::File::open(parent) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        }
        Err(e) if existing_wins && e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(KeyError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// One key file as the rescan compares it: name, length, modification time, mode.
pub type Fingerprint = (String, u64, Option<std::time::SystemTime>, u32);

/// A cheap fingerprint of the key files (names, sizes, modification times, modes, following symlinks as a mounted
/// Kubernetes Secret has them), to notice a rotation or an updated Secret without re-reading the keys.
pub fn fingerprint(dir: &Path) -> Vec<Fingerprint> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let is_key = CHALLENGE.owns(&name)
                || SIGNING.owns(&name)
                || JWT_SVID.owns(&name)
                || SPIFFE_CA.owns(&name);
            if !is_key {
                continue;
            }
            if let Ok(m) = fs::metadata(e.path()) {
                // The mode too: a chmod changes no modification time, and a key made readable to others must
                // make the reload fail loudly rather than go unnoticed until the next restart.
                out.push((name, m.len(), m.modified().ok(), m.permissions().mode()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETAIN: Duration = Duration::from_secs(3600);
    const AHEAD: Duration = Duration::from_secs(300);

    fn kids(set: &KeySet, now: u64) -> Vec<String> {
        set.published(now, RETAIN)
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn first_start_creates_private_files_and_a_second_start_reuses_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = dir.path().join("keys");
        let a = KeySet::ensure(&keys).expect("ensure");
        let b = KeySet::ensure(&keys).expect("ensure again");
        assert_eq!(a.active(0).kid, b.active(0).kid);
        assert_eq!(a.active(0).not_before, 0);
        let challenge = load_challenge_keys(&keys).expect("mac");
        assert_eq!(challenge.len(), 1);
        assert_eq!(challenge[0].0, 0);
        assert_eq!(challenge[0].1.len(), 32);
        let mut names: Vec<String> = Vec::new();
        for e in fs::read_dir(&keys).expect("dir") {
            let e = e.expect("entry");
            assert_eq!(mode_of(&e.path()), 0o600);
            names.push(e.file_name().to_string_lossy().to_string());
        }
        names.sort();
        assert_eq!(names, ["challenge.key", "es256-0000000000.pk8"]);
        assert_eq!(mode_of(&keys), 0o700);
    }

    #[test]
    fn a_rotated_key_is_published_at_once_but_signs_only_from_its_not_before() {
        let dir = tempfile::tempdir().expect("tmp");
        let old = KeySet::ensure(dir.path())
            .expect("ensure")
            .active(10_000)
            .kid
            .clone();
        let rotated = KeySet::rotate(dir.path(), 10_000, AHEAD, RETAIN).expect("rotate");
        assert_eq!(rotated.not_before, 10_300);
        assert!(rotated.removed.is_empty());
        let new = rotated.kid.expect("kid");
        assert!(dir.path().join("es256-0000010300.pk8").exists());
        assert_eq!(mode_of(&dir.path().join("es256-0000010300.pk8")), 0o600);
        let set = KeySet::load(dir.path()).expect("load");
        // Pre-published: in the JWKS from the moment it exists, while the old key still signs.
        assert_eq!(kids(&set, 10_000), vec![old.clone(), new.clone()]);
        assert_eq!(set.active(10_000).kid, old);
        assert_eq!(set.active(10_299).kid, old);
        assert_eq!(set.active(10_300).kid, new);
        // The old key stays published until its last WIT can have expired: not-before of its successor + retain.
        assert_eq!(kids(&set, 10_300 + 3_599), vec![old.clone(), new.clone()]);
        assert_eq!(kids(&set, 10_300 + 3_600), vec![new.clone()]);
    }

    #[test]
    fn a_later_rotation_prunes_only_keys_no_longer_published() {
        let dir = tempfile::tempdir().expect("tmp");
        KeySet::ensure(dir.path()).expect("ensure");
        let first = KeySet::rotate(dir.path(), 10_000, AHEAD, RETAIN).expect("rotate");
        // Still inside the old key's retention: nothing is removed.
        let second = KeySet::rotate(dir.path(), 11_000, AHEAD, RETAIN).expect("rotate");
        assert!(second.removed.is_empty());
        assert_eq!(KeySet::load(dir.path()).expect("load").all().len(), 3);
        // Past it: the first key (superseded at 10_300) goes; the second's successor activated at 11_300.
        let third = KeySet::rotate(dir.path(), 14_000, AHEAD, RETAIN).expect("rotate");
        assert_eq!(third.removed, vec![dir.path().join("es256-0000000000.pk8")]);
        let set = KeySet::load(dir.path()).expect("load");
        let nbs: Vec<u64> = set.all().iter().map(|k| k.not_before).collect();
        assert_eq!(nbs, vec![10_300, 11_300, 14_300]);
        assert_eq!(set.active(14_000).kid, second.kid.expect("kid"));
        assert_eq!(set.active(14_300).kid, third.kid.expect("kid"));
        assert_eq!(Some(set.all()[0].kid.clone()), first.kid);
    }

    #[test]
    fn two_rotations_within_the_window_activate_in_order() {
        let dir = tempfile::tempdir().expect("tmp");
        KeySet::ensure(dir.path()).expect("ensure");
        let a = KeySet::rotate(dir.path(), 10_000, AHEAD, RETAIN).expect("rotate");
        let b = KeySet::rotate(dir.path(), 10_000, AHEAD, RETAIN).expect("rotate");
        assert_eq!((a.not_before, b.not_before), (10_300, 10_301));
        let set = KeySet::load(dir.path()).expect("load");
        assert_eq!(Some(set.active(10_300).kid.clone()), a.kid);
        assert_eq!(Some(set.active(10_301).kid.clone()), b.kid);
        assert_eq!(kids(&set, 10_000).len(), 3);
    }

    #[test]
    fn key_files_from_before_not_before_existed_keep_their_meaning() {
        // The previous release named keys by creation second and the newest signed at once: created = not-before.
        let dir = tempfile::tempdir().expect("tmp");
        KeySet::ensure(dir.path()).expect("ensure");
        let first = KeySet::load(dir.path())
            .expect("load")
            .active(0)
            .kid
            .clone();
        let second = Es256SigningKey::generate().expect("key");
        write_once(
            &dir.path().join("es256-1767225600.pk8"),
            second.to_pkcs8(),
            false,
        )
        .expect("write");
        let set = KeySet::load(dir.path()).expect("load");
        assert_eq!(set.active(1_767_225_599).kid, first);
        assert_ne!(set.active(1_767_225_600).kid, first);
        // And `challenge.key` alone is a challenge key active since forever.
        assert_eq!(load_challenge_keys(dir.path()).expect("mac")[0].0, 0);
    }

    #[test]
    fn replicas_starting_together_on_an_empty_dir_agree_on_one_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = dir.path().join("keys");
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| KeySet::ensure(&keys).map(|k| k.active(0).kid.clone())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("ensure"))
                .collect()
        });
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
        assert_eq!(KeySet::load(&keys).expect("load").all().len(), 1);
        assert_eq!(load_challenge_keys(&keys).expect("mac").len(), 1);
    }

    #[test]
    fn an_empty_or_corrupt_key_dir_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(matches!(KeySet::load(dir.path()), Err(KeyError::NoKey(_))));
        assert!(matches!(
            load_challenge_keys(dir.path()),
            Err(KeyError::NoChallengeKey(_))
        ));
        let junk = dir.path().join("es256-0000000001.pk8");
        fs::write(&junk, b"junk").expect("write");
        chmod(&junk, 0o600);
        assert!(matches!(
            KeySet::load(dir.path()),
            Err(KeyError::BadKey { .. })
        ));
        let short = dir.path().join("challenge.key");
        fs::write(&short, [0u8; 31]).expect("write");
        chmod(&short, 0o600);
        assert_eq!(
            load_challenge_keys(dir.path())
                .expect_err("short")
                .to_string(),
            format!(
                "{}: challenge key must be 32 bytes, got 31",
                short.display()
            )
        );
    }

    #[test]
    fn names_that_only_look_like_key_files_are_ignored() {
        for name in [
            "es256-.pk8",
            "es256-+1.pk8",
            "es256-1.pk8.tmp-00",
            "es256-0000000001.tmp-0011",
            "challenge-.key",
            "challenge-x.key",
        ] {
            assert_eq!(SIGNING.not_before(name), None, "{name}");
            assert_eq!(CHALLENGE.not_before(name), None, "{name}");
        }
        assert_eq!(SIGNING.not_before("es256-0000000042.pk8"), Some(42));
        assert_eq!(CHALLENGE.not_before("challenge-0000000042.key"), Some(42));
        assert_eq!(CHALLENGE.not_before("challenge.key"), Some(0));
    }

    /// Every file mode that group/other could write or other could read is refused, with the file and the mode.
    #[test]
    fn key_files_writable_by_group_or_other_or_readable_by_other_are_refused_at_load() {
        for mode in [0o644, 0o604, 0o620, 0o602, 0o660, 0o666, 0o622, 0o606] {
            let dir = tempfile::tempdir().expect("tmp");
            KeySet::ensure(dir.path()).expect("ensure");
            let key = dir.path().join("es256-0000000000.pk8");
            chmod(&key, mode);
            let err = KeySet::load(dir.path()).expect_err("loose signing key");
            assert!(matches!(err, KeyError::Permissions { .. }), "{mode:o}");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: mode {mode:04o} lets group/other write it or other read it; refusing to use the key \
                     (chmod 0600 or 0400; group read 0440 is allowed)",
                    key.display()
                )
            );
            // `ensure` (serve's first start) loads what exists, so it refuses too rather than trusting the file.
            assert!(matches!(
                KeySet::ensure(dir.path()),
                Err(KeyError::Permissions { .. })
            ));
            chmod(&key, 0o600);
            let mac = dir.path().join("challenge.key");
            chmod(&mac, mode);
            let err = load_challenge_keys(dir.path()).expect_err("loose challenge key");
            assert!(
                matches!(&err, KeyError::Permissions { path, mode: m } if *path == mac && *m == mode),
                "{err}"
            );
        }
    }

    #[test]
    fn owner_only_and_group_read_modes_are_accepted() {
        for mode in [0o600, 0o400, 0o440, 0o640] {
            let dir = tempfile::tempdir().expect("tmp");
            KeySet::ensure(dir.path()).expect("ensure");
            chmod(&dir.path().join("es256-0000000000.pk8"), mode);
            chmod(&dir.path().join("challenge.key"), mode);
            KeySet::load(dir.path()).unwrap_or_else(|e| panic!("{mode:o}: {e}"));
            load_challenge_keys(dir.path()).unwrap_or_else(|e| panic!("{mode:o}: {e}"));
        }
    }

    #[test]
    fn the_mode_checked_is_the_symlink_target_as_a_kubernetes_secret_mounts_it() {
        // A Secret volume: `keys/es256-….pk8 -> ..data/es256-….pk8`, the link itself 0777.
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("..data");
        KeySet::ensure(&data).expect("ensure");
        let keys = dir.path().join("keys");
        fs::create_dir(&keys).expect("mkdir");
        for name in ["es256-0000000000.pk8", "challenge.key"] {
            std::os::unix::fs::symlink(data.join(name), keys.join(name)).expect("symlink");
            chmod(&data.join(name), 0o440);
        }
        KeySet::load(&keys).expect("0440 behind a symlink loads");
        load_challenge_keys(&keys).expect("0440 behind a symlink loads");
        chmod(&data.join("es256-0000000000.pk8"), 0o444);
        let err = KeySet::load(&keys).expect_err("0444 behind a symlink");
        assert!(
            matches!(&err, KeyError::Permissions { path, mode: 0o444 } if *path == keys.join("es256-0000000000.pk8")),
            "{err}"
        );
    }

    #[test]
    fn check_mode_refuses_exactly_group_other_write_and_other_read() {
        let p = Path::new("k");
        for mode in 0..=0o777u32 {
            let refused = check_mode(p, mode).is_err();
            let loose = mode & 0o020 != 0 || mode & 0o002 != 0 || mode & 0o004 != 0;
            assert_eq!(refused, loose, "{mode:04o}");
        }
        // File-type bits in st_mode do not matter; the message shows the permission bits only.
        let err = check_mode(p, 0o100_644).expect_err("regular file 0644");
        assert!(matches!(err, KeyError::Permissions { mode: 0o644, .. }));
    }

    #[test]
    fn a_challenge_key_rotation_overlaps_and_later_prunes_the_previous_key() {
        let retain = Duration::from_secs(150);
        let dir = tempfile::tempdir().expect("tmp");
        KeySet::ensure(dir.path()).expect("ensure");
        let r = rotate_challenge(dir.path(), 10_000, AHEAD, retain).expect("rotate");
        assert_eq!(r.not_before, 10_300);
        assert_eq!(r.kid, None);
        assert!(r.removed.is_empty());
        let new_file = dir.path().join("challenge-0000010300.key");
        assert_eq!(mode_of(&new_file), 0o600);
        let keys = load_challenge_keys(dir.path()).expect("load");
        let nbs: Vec<u64> = keys.iter().map(|(nb, _)| *nb).collect();
        assert_eq!(nbs, vec![0, 10_300]);
        assert_ne!(keys[0].1, keys[1].1);
        // Within the overlap the previous key stays; after it a rotation removes it.
        let r = rotate_challenge(dir.path(), 10_449, AHEAD, retain).expect("rotate");
        assert!(r.removed.is_empty());
        let r = rotate_challenge(dir.path(), 10_450, AHEAD, retain).expect("rotate");
        assert_eq!(r.removed, vec![dir.path().join(CHALLENGE_KEY_FILE)]);
        // `ensure` does not bring back a `challenge.key` once rotated keys exist.
        KeySet::ensure(dir.path()).expect("ensure");
        assert!(!dir.path().join(CHALLENGE_KEY_FILE).exists());
        assert_eq!(load_challenge_keys(dir.path()).expect("load").len(), 3);
    }
}
