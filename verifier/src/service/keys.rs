//! The verifier's secrets in `keys_dir` (default `<state_dir>/keys`), the only state replicas share (DESIGN §13):
//!
//! - `challenge.key`: 32 random bytes, the challenge MAC key (§2);
//! - `es256-<created>.pk8`: ES256 WIT signing keys (PKCS#8 DER), `<created>` the 10-digit unix second of creation.
//!
//! Every file is written 0600, first to a temporary name and then hard-linked into place, so a replica never reads
//! half a key and two replicas starting together on an empty directory agree on one key (the link fails for the
//! loser, who then reads the winner's). A Kubernetes Secret mounted read-only works the same: nothing is written
//! when the files exist.
//!
//! Rotation (`locus-verifier keys rotate`) adds a newer key, which becomes active (the newest signs). An older key
//! stays published in the JWKS until its successor has existed for `retain` (the longest credential lifetime plus
//! skew), so every WIT it signed can still be verified until it expires.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use locus_wimse::jwk::{Alg, Jwk, USE_WIT_SVID};
use locus_wimse::Es256SigningKey;
use ring::rand::{SecureRandom as _, SystemRandom};

pub const CHALLENGE_KEY_FILE: &str = "challenge.key";
const KEY_PREFIX: &str = "es256-";
const KEY_SUFFIX: &str = ".pk8";
/// Clock skew allowed on top of the credential lifetime before an old key leaves the JWKS.
pub const RETAIN_SKEW: Duration = Duration::from_secs(300);

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
    #[error("system random source failed")]
    Random,
    #[error("{0}: no signing key")]
    NoKey(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One ES256 signing key.
pub struct SigningKey {
    pub kid: String,
    /// Unix seconds of creation (0 for the first key made on first start).
    pub created: u64,
    /// The key, `kid` set to its RFC 7638 thumbprint.
    pub key: Arc<Es256SigningKey>,
    /// The public JWK (`alg` ES256, `kid`, `use` wit-svid).
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pkcs8(path: &Path, created: u64, pkcs8: &[u8]) -> Result<Self, KeyError> {
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
            .with_use(USE_WIT_SVID);
        Ok(SigningKey {
            kid,
            created,
            key: Arc::new(key),
            jwk,
        })
    }

    /// A fresh copy of the key for an owner that needs one by value (`WitIssuer`).
    pub fn to_owned_key(&self) -> Result<Es256SigningKey, KeyError> {
        Es256SigningKey::from_pkcs8(self.key.to_pkcs8())
            .map(|k| k.with_kid(self.kid.clone()))
            .map_err(|e| KeyError::BadKey {
                path: PathBuf::from(&self.kid),
                detail: e.to_string(),
            })
    }
}

/// The signing keys found in a keys directory, oldest first.
#[derive(Debug)]
pub struct KeySet {
    pub dir: PathBuf,
    keys: Vec<SigningKey>,
}

impl KeySet {
    /// The key that signs new credentials: the newest.
    pub fn active(&self) -> &SigningKey {
        // `load` refuses an empty set, so there is always a last key.
        &self.keys[self.keys.len() - 1]
    }

    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Keys to publish at `now`: the active one, and each older one whose successor is younger than `retain`.
    pub fn published(&self, now: u64, retain: Duration) -> Vec<&SigningKey> {
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            match self.keys.get(i + 1) {
                None => out.push(k),
                Some(next) if next.created.saturating_add(retain.as_secs()) > now => out.push(k),
                Some(_) => {}
            }
        }
        out
    }

    /// Load every key in `dir` (no writes).
    pub fn load(dir: &Path) -> Result<KeySet, KeyError> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(created) = name
                .strip_prefix(KEY_PREFIX)
                .and_then(|r| r.strip_suffix(KEY_SUFFIX))
                .and_then(|c| c.parse::<u64>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let der = fs::read(&path).map_err(io(&path))?;
            keys.push(SigningKey::from_pkcs8(&path, created, &der)?);
        }
        if keys.is_empty() {
            return Err(KeyError::NoKey(dir.to_path_buf()));
        }
        keys.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.kid.cmp(&b.kid)));
        Ok(KeySet {
            dir: dir.to_path_buf(),
            keys,
        })
    }

    /// First start: create `dir`, a challenge key and a signing key if they are missing; then load.
    pub fn ensure(dir: &Path) -> Result<KeySet, KeyError> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        }
        let challenge = dir.join(CHALLENGE_KEY_FILE);
        if !challenge.exists() {
            let mut secret = [0u8; 32];
            SystemRandom::new()
                .fill(&mut secret)
                .map_err(|_| KeyError::Random)?;
            write_once(&challenge, &secret, true)?;
        }
        match KeySet::load(dir) {
            Err(KeyError::NoKey(_)) => {
                let pkcs8 = generate()?;
                write_once(&dir.join(key_file_name(0)), &pkcs8, true)?;
                KeySet::load(dir)
            }
            other => other,
        }
    }

    /// Add a new signing key created at `now` (it becomes active) and delete keys no longer published at `now`.
    /// Returns the new key's kid and the removed files.
    pub fn rotate(
        dir: &Path,
        now: u64,
        retain: Duration,
    ) -> Result<(String, Vec<PathBuf>), KeyError> {
        let before = KeySet::load(dir)?;
        let created = now.max(before.active().created + 1);
        let pkcs8 = generate()?;
        let path = dir.join(key_file_name(created));
        // Strict here: a concurrent rotation that took this name must not leave us reporting a key that is not on disk.
        write_once(&path, &pkcs8, false)?;
        let after = KeySet::load(dir)?;
        let kid = SigningKey::from_pkcs8(&path, created, &pkcs8)?.kid;
        let keep: Vec<String> = after
            .published(now, retain)
            .iter()
            .map(|k| k.kid.clone())
            .collect();
        let mut removed = Vec::new();
        for k in after.all() {
            if !keep.contains(&k.kid) {
                let p = dir.join(key_file_name(k.created));
                fs::remove_file(&p).map_err(io(&p))?;
                removed.push(p);
            }
        }
        Ok((kid, removed))
    }
}

fn key_file_name(created: u64) -> String {
    format!("{KEY_PREFIX}{created:010}{KEY_SUFFIX}")
}

fn generate() -> Result<Vec<u8>, KeyError> {
    Es256SigningKey::generate()
        .map(|k| k.to_pkcs8().to_vec())
        .map_err(|_| KeyError::Random)
}

/// Write `bytes` to `path` with mode 0600 unless it exists: temp file, fsync, then hard link (atomic, fails if
/// `path` exists — then the existing file wins, which is not an error when `existing_wins`).
fn write_once(path: &Path, bytes: &[u8], existing_wins: bool) -> Result<(), KeyError> {
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

/// A cheap fingerprint of the key files (names, sizes, modification times, following symlinks as a mounted
/// Kubernetes Secret has them), to notice a rotation or an updated Secret without re-reading the keys.
pub fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let is_key = name == CHALLENGE_KEY_FILE
                || (name.starts_with(KEY_PREFIX) && name.ends_with(KEY_SUFFIX));
            if !is_key {
                continue;
            }
            if let Ok(m) = fs::metadata(e.path()) {
                out.push((name, m.len(), m.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Read the 32-byte challenge MAC key.
pub fn read_challenge_key(dir: &Path) -> Result<Vec<u8>, KeyError> {
    let path = dir.join(CHALLENGE_KEY_FILE);
    let bytes = fs::read(&path).map_err(io(&path))?;
    if bytes.len() != 32 {
        return Err(KeyError::BadChallengeKey {
            path,
            len: bytes.len(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETAIN: Duration = Duration::from_secs(3600);

    #[test]
    fn first_start_creates_private_files_and_a_second_start_reuses_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = dir.path().join("keys");
        let a = KeySet::ensure(&keys).expect("ensure");
        let b = KeySet::ensure(&keys).expect("ensure again");
        assert_eq!(a.active().kid, b.active().kid);
        assert_eq!(read_challenge_key(&keys).expect("mac").len(), 32);
        for e in fs::read_dir(&keys).expect("dir") {
            let mode = e
                .expect("entry")
                .metadata()
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(
            fs::metadata(&keys).expect("meta").permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn rotation_activates_the_new_key_and_publishes_the_old_until_retained_long_enough() {
        let dir = tempfile::tempdir().expect("tmp");
        let old = KeySet::ensure(dir.path())
            .expect("ensure")
            .active()
            .kid
            .clone();
        let (new, removed) = KeySet::rotate(dir.path(), 10_000, RETAIN).expect("rotate");
        assert!(removed.is_empty());
        let set = KeySet::load(dir.path()).expect("load");
        assert_eq!(set.active().kid, new);
        let kids = |now| {
            set.published(now, RETAIN)
                .iter()
                .map(|k| k.kid.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(10_001), vec![old.clone(), new.clone()]);
        assert_eq!(kids(10_000 + 3600), vec![new.clone()]);
        // A later rotation prunes the key that is no longer published.
        let (newer, removed) = KeySet::rotate(dir.path(), 20_000, RETAIN).expect("rotate");
        assert_eq!(removed.len(), 1);
        let set = KeySet::load(dir.path()).expect("load");
        assert_eq!(set.all().len(), 2);
        assert_eq!(set.active().kid, newer);
    }

    #[test]
    fn replicas_starting_together_on_an_empty_dir_agree_on_one_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = dir.path().join("keys");
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| KeySet::ensure(&keys).map(|k| k.active().kid.clone())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("ensure"))
                .collect()
        });
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
        assert_eq!(KeySet::load(&keys).expect("load").all().len(), 1);
        let macs: Vec<_> = (0..2)
            .map(|_| read_challenge_key(&keys).expect("mac"))
            .collect();
        assert_eq!(macs[0], macs[1]);
    }

    #[test]
    fn an_empty_or_corrupt_key_dir_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(matches!(KeySet::load(dir.path()), Err(KeyError::NoKey(_))));
        fs::write(dir.path().join("es256-0000000001.pk8"), b"junk").expect("write");
        assert!(matches!(
            KeySet::load(dir.path()),
            Err(KeyError::BadKey { .. })
        ));
    }
}
