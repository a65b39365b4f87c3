//! The trust domain's SPIFFE X.509 CA: its keys rotate exactly like the WIT keys (`spiffe-ca-<not_before>.pk8` in
//! the shared keys directory, 0600, chosen by not-before, superseded keys published until their SVIDs expire), and
//! each key's self-signed certificate is written once beside it (`spiffe-ca-<not_before>.crt`) so every replica
//! publishes the same certificate bytes in the bundle.

use std::path::Path;

use der::Decode as _;
use x509_cert::Certificate;

use crate::service::keys::{self, KeyError, KeyKind, KeySet, SigningKey};

use super::x509;

/// How long a CA certificate is valid. Rotation, not expiry, retires a CA: the certificate outlives any sensible
/// rotation interval (a CA that is never rotated still works for this long).
pub const CA_VALIDITY_SECS: u64 = 10 * 365 * 86_400;
/// How far before its creation a CA certificate is valid (clock skew between replicas and relying parties).
pub const CA_BACKDATE_SECS: u64 = 300;

/// One CA: its key and its certificate.
#[derive(Debug)]
pub struct CaCert {
    /// DER.
    pub der: Vec<u8>,
    /// The certificate's notAfter (unix seconds): no SVID outlives it.
    pub not_after: u64,
}

/// The CA keys of a keys directory with their certificates, in the keys' order.
#[derive(Debug)]
pub struct SpiffeCa {
    pub keys: KeySet,
    pub certs: Vec<CaCert>,
}

fn bad(path: &Path, detail: impl Into<String>) -> KeyError {
    KeyError::BadKey {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Check that `der` is a certificate for `key` and read its notAfter.
fn check_cert(path: &Path, key: &SigningKey, der: &[u8]) -> Result<CaCert, KeyError> {
    let cert = Certificate::from_der(der).map_err(|e| bad(path, format!("certificate: {e}")))?;
    let want = x509::spki_p256(&key.key.public_key()).map_err(|e| bad(path, e.to_string()))?;
    if cert.tbs_certificate.subject_public_key_info != want {
        return Err(bad(path, "the certificate is not for the CA key beside it"));
    }
    let not_after = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    Ok(CaCert {
        der: der.to_vec(),
        not_after,
    })
}

impl SpiffeCa {
    /// Load the CA keys and certificates of `dir` (no writes). A key without its certificate is an error.
    pub fn load(dir: &Path) -> Result<SpiffeCa, KeyError> {
        let keys = KeySet::load_kind(dir, KeyKind::SpiffeCa)?;
        let mut certs = Vec::with_capacity(keys.all().len());
        for k in keys.all() {
            let path = KeyKind::SpiffeCa
                .companion_path(&k.path)
                .ok_or_else(|| bad(&k.path, "no certificate path"))?;
            let der = keys::read_key_file(&path)?;
            certs.push(check_cert(&path, k, &der)?);
        }
        Ok(SpiffeCa { keys, certs })
    }

    /// Create a CA key when there is none and a certificate for every key that lacks one (valid from `now` less
    /// [`CA_BACKDATE_SECS`] for [`CA_VALIDITY_SECS`]), then load. Replicas doing this together agree on one key and
    /// one certificate per key (the loser of each link reads the winner's).
    pub fn ensure(dir: &Path, trust_domain: &str, now: u64) -> Result<SpiffeCa, KeyError> {
        let keys = KeySet::ensure_kind(dir, KeyKind::SpiffeCa)?;
        for k in keys.all() {
            let Some(path) = KeyKind::SpiffeCa.companion_path(&k.path) else {
                continue;
            };
            if path.exists() {
                continue;
            }
            let not_before = now.saturating_sub(CA_BACKDATE_SECS);
            let der = x509::ca_certificate(
                &k.key,
                trust_domain,
                k.not_before,
                not_before,
                now.saturating_add(CA_VALIDITY_SECS),
            )
            .map_err(|e| bad(&path, e.to_string()))?;
            keys::write_once(&path, &der, true)?;
        }
        SpiffeCa::load(dir)
    }

    /// The CA that signs at `now`, with its certificate.
    pub fn active(&self, now: u64) -> (&SigningKey, &CaCert) {
        let i = self.keys.active_index(now);
        (&self.keys.all()[i], &self.certs[i])
    }

    /// The CAs to publish at `now` (the schedule of [`KeySet::published`]).
    pub fn published(&self, now: u64, retain: std::time::Duration) -> Vec<(&SigningKey, &CaCert)> {
        let live = self.keys.published(now, retain);
        self.keys
            .all()
            .iter()
            .zip(&self.certs)
            .filter(|(k, _)| live.iter().any(|l| l.kid == k.kid))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Duration;

    #[test]
    fn ensure_writes_a_ca_key_and_its_certificate_0600_and_load_reads_the_same() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = SpiffeCa::ensure(dir.path(), "locus.example", 1_800_000_000).expect("ensure");
        assert_eq!(a.certs.len(), 1);
        for name in ["spiffe-ca-0000000000.pk8", "spiffe-ca-0000000000.crt"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let b = SpiffeCa::ensure(dir.path(), "locus.example", 1_800_000_500).expect("again");
        assert_eq!(a.certs[0].der, b.certs[0].der, "written once");
        assert_eq!(
            b.certs[0].not_after,
            1_800_000_000 + CA_VALIDITY_SECS,
            "validity from the first creation"
        );
        let c = SpiffeCa::load(dir.path()).expect("load");
        assert_eq!(c.active(0).1.der, a.certs[0].der);
    }

    #[test]
    fn a_rotation_publishes_both_cas_then_prunes_the_old_key_and_its_certificate() {
        let dir = tempfile::tempdir().expect("tmp");
        SpiffeCa::ensure(dir.path(), "td", 10_000).expect("ensure");
        let retain = Duration::from_secs(1_000);
        let r = KeySet::rotate_kind(
            dir.path(),
            KeyKind::SpiffeCa,
            10_000,
            Duration::from_secs(300),
            retain,
        )
        .expect("rotate");
        // The new key has no certificate until `ensure` writes it: `load` refuses the half-written state.
        assert!(SpiffeCa::load(dir.path()).is_err());
        let ca = SpiffeCa::ensure(dir.path(), "td", 10_000).expect("ensure");
        assert_eq!(ca.published(10_000, retain).len(), 2);
        assert_eq!(ca.active(10_299).0.not_before, 0);
        assert_eq!(ca.active(10_300).0.not_before, r.not_before);
        // Past the overlap a later rotation removes the first key and its certificate.
        let r2 = KeySet::rotate_kind(
            dir.path(),
            KeyKind::SpiffeCa,
            11_300,
            Duration::from_secs(300),
            retain,
        )
        .expect("rotate");
        assert_eq!(
            r2.removed,
            vec![
                dir.path().join("spiffe-ca-0000000000.pk8"),
                dir.path().join("spiffe-ca-0000000000.crt")
            ]
        );
    }

    #[test]
    fn a_certificate_for_another_key_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        SpiffeCa::ensure(dir.path(), "td", 10_000).expect("ensure");
        let other = locus_wimse::Es256SigningKey::generate().expect("key");
        let der = x509::ca_certificate(&other, "td", 0, 0, 100).expect("cert");
        let path = dir.path().join("spiffe-ca-0000000000.crt");
        std::fs::remove_file(&path).expect("rm");
        keys::write_once(&path, &der, false).expect("write");
        assert!(matches!(
            SpiffeCa::load(dir.path()),
            Err(KeyError::BadKey { .. })
        ));
    }
}
