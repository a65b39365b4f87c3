//! RSA-4096 TEST KEYS of the default seed, committed under `simulator/keys/seed-2026/` because generating eleven
//! of them from the seed takes a long time. They are exactly what [`crate::keys::rsa_key`] derives for the default seed
//! and are regenerated with `locus-sim pki gen-keys --seed 2026 --out simulator/keys/seed-2026`. Other seeds
//! generate their keys on first use. These keys protect nothing: they sign simulated evidence only.

use crate::amd::pki::Hierarchy;
use crate::error::SimError;
use locus_hw::snp::Product;

/// The seed whose keys are committed.
pub const EMBEDDED_SEED: u64 = 2026;

/// (label, PKCS#8 PEM) of every committed key.
const KEYS: [(&str, &str); 11] = [
    (
        "amd:milan:ark",
        include_str!("../../keys/seed-2026/amd-milan-ark.pem"),
    ),
    (
        "amd:milan:ask",
        include_str!("../../keys/seed-2026/amd-milan-ask.pem"),
    ),
    (
        "amd:milan:asvk",
        include_str!("../../keys/seed-2026/amd-milan-asvk.pem"),
    ),
    (
        "amd:genoa:ark",
        include_str!("../../keys/seed-2026/amd-genoa-ark.pem"),
    ),
    (
        "amd:genoa:ask",
        include_str!("../../keys/seed-2026/amd-genoa-ask.pem"),
    ),
    (
        "amd:genoa:asvk",
        include_str!("../../keys/seed-2026/amd-genoa-asvk.pem"),
    ),
    (
        "amd:turin:ark",
        include_str!("../../keys/seed-2026/amd-turin-ark.pem"),
    ),
    (
        "amd:turin:ask",
        include_str!("../../keys/seed-2026/amd-turin-ask.pem"),
    ),
    (
        "amd:turin:asvk",
        include_str!("../../keys/seed-2026/amd-turin-asvk.pem"),
    ),
    (
        "amd:foreign:ark",
        include_str!("../../keys/seed-2026/amd-foreign-ark.pem"),
    ),
    (
        "amd:foreign:ask",
        include_str!("../../keys/seed-2026/amd-foreign-ask.pem"),
    ),
];

/// Every RSA key label of a world.
pub fn all_labels() -> Vec<String> {
    let mut out = Vec::new();
    for p in Product::ALL {
        for role in ["ark", "ask", "asvk"] {
            out.push(crate::amd::pki::rsa_label(p, Hierarchy::Genuine, role));
        }
    }
    for role in ["ark", "ask"] {
        out.push(crate::amd::pki::rsa_label(
            Product::Milan,
            Hierarchy::Foreign,
            role,
        ));
    }
    out
}

/// File name of a key label (`amd:milan:ark` → `amd-milan-ark.pem`).
pub fn file_name(label: &str) -> String {
    format!("{}.pem", label.replace(':', "-"))
}

/// The RSA key for `label` under `seed`: the committed one for the default seed, otherwise generated (slow).
pub fn rsa_key(seed: u64, label: &str) -> Result<rsa::RsaPrivateKey, SimError> {
    if seed == EMBEDDED_SEED {
        if let Some((_, pem)) = KEYS.iter().find(|(l, _)| *l == label) {
            use rsa::pkcs8::DecodePrivateKey;
            return rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| SimError::Pkcs8(format!("{label}: {e}")));
        }
    }
    Ok(crate::keys::rsa_key(seed, label, crate::keys::RSA_BITS)?)
}

/// Generate every RSA key of `seed` into `dir` as PKCS#8 PEM (what `locus-sim pki gen-keys` runs).
pub fn write_keys(seed: u64, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, SimError> {
    use rsa::pkcs8::EncodePrivateKey;
    std::fs::create_dir_all(dir).map_err(|e| SimError::io(dir, e))?;
    let mut written = Vec::new();
    for label in all_labels() {
        let key = crate::keys::rsa_key(seed, &label, crate::keys::RSA_BITS)?;
        let pem = key
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| SimError::Pkcs8(e.to_string()))?;
        let path = dir.join(file_name(&label));
        std::fs::write(&path, pem.as_bytes()).map_err(|e| SimError::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_a_committed_key() {
        for label in all_labels() {
            assert!(KEYS.iter().any(|(l, _)| *l == label), "{label} missing");
            let k = rsa_key(EMBEDDED_SEED, &label).expect("parse");
            assert_eq!(
                rsa::traits::PublicKeyParts::size(&k),
                512,
                "{label} is RSA-4096"
            );
        }
    }
}
