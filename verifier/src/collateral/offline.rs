//! Offline collateral from a directory (`trust.collateral_dir`, `--certs`, `--collateral`).
//!
//! SEV-SNP: certificates under `{dir}/snp/{product}/` (any depth ≤ 3, also `{dir}/snp/{product-lowercase}/` and
//! `{dir}` itself): the chain from `cert_chain.pem` or `ask.pem` + `ark.pem` (or any PEM/DER holding an ASK/ASVK and
//! an ARK of the product), `crl.der`, and VCEKs in any `*.der`/`*.pem`/`*.crt` file whose hwID and SPL extensions
//! match the report. This covers the vectors' `snp/<set>/` layout and `locus-sim pki export`'s `snp/<product>/`.
//!
//! TDX: the vectors' collateral layout (`tcb_info.json`, `tcb_info_issuer_chain.pem`, `qe_identity.json`,
//! `qe_identity_issuer_chain.pem`, `pck_crl.der`, `pck_crl_issuer_chain.pem`, `root_ca_crl.der`) in `{dir}`,
//! `{dir}/collateral`, `{dir}/tdx/collateral`, `{dir}/tdx/<name>` or `{dir}/tdx/<name>/collateral`. The TCB info
//! is chosen by its `fmspc`, the PCK CRL by its issuer (Platform or Processor CA).

use std::path::{Path, PathBuf};

use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::Certificate;

use super::cache::{crl_window, json_window, CachedItem};
use super::evidence::{
    classify_amd_cert, pem_certificates, AmdCertRole, PckCa, SnpProduct, SnpTcb,
};
use super::kds::AmdKeyKind;
use super::TdxCollateralItems;
use crate::error::{ErrorCode, Refusal};

/// Largest file read from an offline directory.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// An offline collateral directory.
#[derive(Clone, Debug)]
pub struct OfflineDir {
    root: PathBuf,
}

impl OfflineDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        OfflineDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn snp_dirs(&self, product: SnpProduct) -> Vec<PathBuf> {
        let name = product.kds_name();
        vec![
            self.root.join("snp").join(name),
            self.root.join("snp").join(name.to_ascii_lowercase()),
            self.root.clone(),
        ]
    }

    /// Every certificate (DER) in the SNP directories of `product`, with the file it came from.
    fn snp_certificates(&self, product: SnpProduct) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for (i, dir) in self.snp_dirs(product).iter().enumerate() {
            // The root itself is searched only at depth 0 so one product's files are not taken for another's.
            let depth = if i == 2 { 0 } else { 3 };
            for path in files_under(dir, depth) {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if !matches!(ext, "der" | "pem" | "crt" | "cer") {
                    continue;
                }
                let Some(bytes) = read_small(&path) else {
                    continue;
                };
                if bytes.first() == Some(&0x30) {
                    out.push((path, bytes));
                } else {
                    for der in pem_certificates(&bytes) {
                        out.push((path.clone(), der));
                    }
                }
            }
        }
        out
    }

    /// A VCEK of `product` whose hwID and TCB extensions equal the report's.
    pub fn vcek(
        &self,
        product: SnpProduct,
        hwid: &str,
        tcb: &SnpTcb,
        now: u64,
    ) -> Option<CachedItem> {
        let hwid = hex::decode(hwid).ok()?;
        self.snp_certificates(product)
            .into_iter()
            .find(|(_, der)| {
                matches!(classify_amd_cert(der), Some((AmdCertRole::Vcek, p)) if p.is_none_or(|p| p == product))
                    && vcek_matches(der, &hwid, tcb)
            })
            .map(|(_, der)| forever(der, now))
    }

    /// The ASK (or ASVK) and ARK of `product`, as a PEM chain (ASK first).
    pub fn cert_chain(
        &self,
        kind: AmdKeyKind,
        product: SnpProduct,
        now: u64,
    ) -> Option<CachedItem> {
        let certs = self.snp_certificates(product);
        let want_intermediate = match kind {
            AmdKeyKind::Vcek => AmdCertRole::Ask,
            AmdKeyKind::Vlek => AmdCertRole::Asvk,
        };
        let find = |role: AmdCertRole| {
            certs.iter().find(|(_, der)| {
                matches!(classify_amd_cert(der), Some((r, Some(p))) if r == role && p == product)
            })
        };
        let ask = find(want_intermediate)?;
        let ark = find(AmdCertRole::Ark)?;
        let pem = super::evidence::pem_encode_certificates(&[ask.1.clone(), ark.1.clone()]);
        Some(forever(pem.into_bytes(), now))
    }

    /// The product CRL (`crl.der`, or `crl.pem`-less DER named `*crl*.der`), with its window.
    pub fn crl(&self, kind: AmdKeyKind, product: SnpProduct, now: u64) -> Option<CachedItem> {
        let _ = kind; // AMD signs the VCEK and VLEK CRLs with the same ARK; one file serves both.
        for (i, dir) in self.snp_dirs(product).iter().enumerate() {
            if i == 2 {
                continue;
            }
            let path = dir.join("crl.der");
            if let Some(bytes) = read_small(&path) {
                if let Ok((this, next)) = crl_window(&bytes) {
                    return Some(windowed(bytes, None, this, next, now));
                }
                tracing::warn!(path = %path.display(), "ignoring unparsable offline CRL");
            }
        }
        None
    }

    fn tdx_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![
            self.root.clone(),
            self.root.join("collateral"),
            self.root.join("tdx").join("collateral"),
        ];
        if let Ok(entries) = std::fs::read_dir(self.root.join("tdx")) {
            let mut subdirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.ends_with("collateral"))
                .collect();
            subdirs.sort();
            for d in subdirs {
                dirs.push(d.join("collateral"));
                dirs.push(d);
            }
        }
        dirs.into_iter().filter(|d| d.is_dir()).collect()
    }

    /// TCB info for `fmspc_hex` (compared case-insensitively) with its issuer chain.
    pub fn tcb_info(&self, fmspc_hex: &str, now: u64) -> Option<CachedItem> {
        self.tdx_dirs().into_iter().find_map(|dir| {
            let body = read_small(&dir.join("tcb_info.json"))?;
            let fmspc = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()?
                .get("tcbInfo")?
                .get("fmspc")?
                .as_str()?
                .to_ascii_lowercase();
            if fmspc != fmspc_hex.to_ascii_lowercase() {
                return None;
            }
            let chain = read_chain(&dir.join("tcb_info_issuer_chain.pem"))?;
            let (issued, next) = json_window(&body, "tcbInfo").ok()?;
            Some(windowed(body, Some(chain), issued, next, now))
        })
    }

    /// The QE identity with its issuer chain.
    pub fn qe_identity(&self, now: u64) -> Option<CachedItem> {
        self.tdx_dirs().into_iter().find_map(|dir| {
            let body = read_small(&dir.join("qe_identity.json"))?;
            let chain = read_chain(&dir.join("qe_identity_issuer_chain.pem"))?;
            let (issued, next) = json_window(&body, "enclaveIdentity").ok()?;
            Some(windowed(body, Some(chain), issued, next, now))
        })
    }

    /// The PCK CRL issued by `ca`, with its issuer chain.
    pub fn pck_crl(&self, ca: PckCa, now: u64) -> Option<CachedItem> {
        self.tdx_dirs().into_iter().find_map(|dir| {
            let body = super::pcs::der_or_hex(&read_small(&dir.join("pck_crl.der"))?);
            let crl = x509_cert::crl::CertificateList::from_der(&body).ok()?;
            let issuer = crl.tbs_cert_list.issuer.to_string();
            let matches = match ca {
                PckCa::Platform => issuer.contains("Platform"),
                PckCa::Processor => issuer.contains("Processor"),
            };
            if !matches {
                return None;
            }
            let chain = read_chain(&dir.join("pck_crl_issuer_chain.pem"))?;
            let (this, next) = crl_window(&body).ok()?;
            Some(windowed(body, Some(chain), this, next, now))
        })
    }

    /// The Intel SGX Root CA CRL.
    pub fn root_ca_crl(&self, now: u64) -> Option<CachedItem> {
        self.tdx_dirs().into_iter().find_map(|dir| {
            let body = super::pcs::der_or_hex(&read_small(&dir.join("root_ca_crl.der"))?);
            let (this, next) = crl_window(&body).ok()?;
            Some(windowed(body, None, this, next, now))
        })
    }
}

/// Read a directory in the vectors' TDX collateral layout (`locus-verifier appraise --collateral DIR`, docs/operations.md#appraising-evidence-offline) exactly as stored. No
/// validity judgement: the appraisal checks windows at its own `now`.
pub fn read_tdx_collateral_dir(dir: &Path) -> Result<TdxCollateralItems, Refusal> {
    let text = |name: &str| -> Result<String, Refusal> {
        let bytes = read_small(&dir.join(name)).ok_or_else(|| missing(dir, name))?;
        String::from_utf8(bytes).map_err(|_| {
            Refusal::new(
                ErrorCode::CollateralMissing,
                format!("{} is not UTF-8", dir.join(name).display()),
            )
        })
    };
    let binary = |name: &str| -> Result<Vec<u8>, Refusal> {
        read_small(&dir.join(name))
            .map(|b| super::pcs::der_or_hex(&b))
            .ok_or_else(|| missing(dir, name))
    };
    Ok(TdxCollateralItems {
        tcb_info_json: text("tcb_info.json")?,
        tcb_info_issuer_chain_pem: text("tcb_info_issuer_chain.pem")?,
        qe_identity_json: text("qe_identity.json")?,
        qe_identity_issuer_chain_pem: text("qe_identity_issuer_chain.pem")?,
        pck_crl_der: binary("pck_crl.der")?,
        pck_crl_issuer_chain_pem: text("pck_crl_issuer_chain.pem")?,
        root_ca_crl_der: binary("root_ca_crl.der")?,
    })
}

fn missing(dir: &Path, name: &str) -> Refusal {
    Refusal::new(
        ErrorCode::CollateralMissing,
        format!("{} is missing or unreadable", dir.join(name).display()),
    )
}

fn forever(body: Vec<u8>, now: u64) -> CachedItem {
    CachedItem {
        body,
        issuer_chain: None,
        issued_at: None,
        next_update: None,
        fetched_at: now,
    }
}

fn windowed(body: Vec<u8>, chain: Option<String>, issued: u64, next: u64, now: u64) -> CachedItem {
    CachedItem {
        body,
        issuer_chain: chain,
        issued_at: Some(issued),
        next_update: Some(next),
        fetched_at: now,
    }
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}

fn read_chain(path: &Path) -> Option<String> {
    let text = String::from_utf8(read_small(path)?).ok()?;
    if pem_certificates(text.as_bytes()).is_empty() {
        None
    } else {
        Some(text)
    }
}

/// Regular files under `dir` down to `depth` levels of subdirectories, sorted for determinism.
fn files_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_file() {
            out.push(p);
        } else if p.is_dir() && depth > 0 {
            out.extend(files_under(&p, depth - 1));
        }
    }
    out
}

/// Whether a VCEK's hwID (raw or OCTET STRING-wrapped) equals `hwid` and its SPL extensions equal `tcb`.
pub fn vcek_matches(der_bytes: &[u8], hwid: &[u8], tcb: &SnpTcb) -> bool {
    let Ok(cert) = Certificate::from_der(der_bytes) else {
        return false;
    };
    let exts = cert.tbs_certificate.extensions.as_deref().unwrap_or(&[]);
    let ext = |arc: &str| -> Option<&[u8]> {
        let oid = ObjectIdentifier::new(arc).ok()?;
        exts.iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    };
    let Some(hw) = ext("1.3.6.1.4.1.3704.1.4") else {
        return false;
    };
    let hw_matches =
        hw == hwid || der::asn1::OctetString::from_der(hw).is_ok_and(|o| o.as_bytes() == hwid);
    if !hw_matches {
        return false;
    }
    let spl = |arc: &str| -> Option<u32> { u32::from_der(ext(arc)?).ok() };
    let mut want = vec![
        ("1.3.6.1.4.1.3704.1.3.1", tcb.bootloader),
        ("1.3.6.1.4.1.3704.1.3.2", tcb.tee),
        ("1.3.6.1.4.1.3704.1.3.3", tcb.snp),
        ("1.3.6.1.4.1.3704.1.3.8", tcb.microcode),
    ];
    if let Some(fmc) = tcb.fmc {
        want.push(("1.3.6.1.4.1.3704.1.3.9", fmc));
    }
    want.iter().all(|(arc, v)| spl(arc) == Some(u32::from(*v)))
}
