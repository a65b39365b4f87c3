//! Trust anchors: the pinned AMD ARKs (and the matching VCEK ASKs) per product, the pinned Intel SGX Root CA, and the
//! opt-in, dangerous trust of simulator roots (docs/architecture.md#appraisal: simulator roots only with `trust.simulator = true`).
//!
//! The AMD ARK/ASK certificates are the PEMs `sev::certs::snp::builtin::{milan,genoa,turin}` ships; the Intel root
//! is the certificate dcap-qvl embeds (`src/TrustedRootCA.der`, which dcap-qvl keeps private), written here as PEM. Each is
//! checked against the SHA-256 pins below when the anchors are built, so a changed upstream
//! file cannot silently change what Locus trusts.

use locus_hw::snp::Product;

use super::x509::{pem_certificates, sha256, ParsedCert};
use crate::error::{ErrorCode, Refusal};

/// SHA-256 of ARK-Milan's DER (as served by AMD KDS).
pub const ARK_MILAN_SHA256: &str =
    "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd";
/// SHA-256 of ARK-Genoa's DER.
pub const ARK_GENOA_SHA256: &str =
    "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1";
/// SHA-256 of ARK-Turin's DER.
pub const ARK_TURIN_SHA256: &str =
    "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a";
/// SHA-256 of the Intel SGX Root CA's DER (as published by Intel).
pub const INTEL_SGX_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// The Intel SGX Root CA (the certificate dcap-qvl 0.7.1 embeds; also at Intel's `IntelSGXRootCA.der`), as PEM.
pub const INTEL_SGX_ROOT_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----
";

/// The Intel SGX Root CA's DER, decoded from [`INTEL_SGX_ROOT_CA_PEM`] (empty only if that constant were broken,
/// which the pin check in [`TrustAnchors::pinned`] and a unit test refuse).
pub fn intel_sgx_root_ca_der() -> Vec<u8> {
    pem_certificates(INTEL_SGX_ROOT_CA_PEM.as_bytes())
        .ok()
        .and_then(|mut certs| certs.pop())
        .unwrap_or_default()
}

/// The pinned SHA-256 of `product`'s ARK.
pub fn pinned_ark_sha256(product: Product) -> &'static str {
    match product {
        Product::Milan => ARK_MILAN_SHA256,
        Product::Genoa => ARK_GENOA_SHA256,
        Product::Turin => ARK_TURIN_SHA256,
    }
}

fn builtin_pems(product: Product) -> (&'static [u8], &'static [u8]) {
    use sev::certs::snp::builtin::{genoa, milan, turin};
    match product {
        Product::Milan => (milan::ARK, milan::ASK),
        Product::Genoa => (genoa::ARK, genoa::ASK),
        Product::Turin => (turin::ARK, turin::ASK),
    }
}

/// A name marker that identifies a certificate made by the Locus simulator, so evidence chained to it is refused
/// with `simulated_evidence_untrusted` (not a generic `chain_untrusted`) when simulator trust is off. It never makes
/// a certificate trusted by itself.
pub fn is_simulator_cert(cert: &ParsedCert) -> bool {
    let subject = cert.subject().to_ascii_lowercase();
    subject.contains("simulat") || subject.contains("locus-sim")
}

/// Which simulator roots are trusted. Anything but `Off` makes every result `simulated: true`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SimulatorTrust {
    Off,
    /// Exactly these root certificates (SHA-256 of DER).
    Roots(Vec<[u8; 32]>),
    /// Any self-signed root whose name marks it as the Locus simulator's (the CLI's `--trust-simulator`, where the
    /// roots come with the evidence).
    AnyMarked,
}

/// The roots appraisal trusts. Built once and shared; cheap to clone.
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    amd: Vec<(Product, ParsedCert, ParsedCert)>,
    intel_root_der: Vec<u8>,
    simulator: SimulatorTrust,
    /// The instance's appraisal memos: made with these anchors, valid only under them, dropped with them (a reload
    /// builds new anchors and so starts empty). Clones share them.
    memos: std::sync::Arc<super::tdx_memo::Memos>,
}

impl TrustAnchors {
    /// The pinned vendor roots only. Fails (`internal`) only if an embedded root does not match its pin.
    pub fn pinned() -> Result<TrustAnchors, Refusal> {
        let mut amd = Vec::new();
        for product in Product::ALL {
            let (ark_pem, ask_pem) = builtin_pems(product);
            let ark_der = single_pem(ark_pem)?;
            let ask_der = single_pem(ask_pem)?;
            if hex::encode(sha256(&ark_der)) != pinned_ark_sha256(product) {
                return Err(Refusal::new(
                    ErrorCode::Internal,
                    format!("built-in ARK-{product} does not match its pinned fingerprint"),
                ));
            }
            let ark = ParsedCert::parse(&ark_der, "ARK")?;
            let ask = ParsedCert::parse(&ask_der, "ASK")?;
            amd.push((product, ark, ask));
        }
        let intel_root_der = intel_sgx_root_ca_der();
        if hex::encode(sha256(&intel_root_der)) != INTEL_SGX_ROOT_CA_SHA256 {
            return Err(Refusal::new(
                ErrorCode::Internal,
                "embedded Intel SGX Root CA does not match its pin",
            ));
        }
        Ok(TrustAnchors {
            amd,
            intel_root_der,
            simulator: SimulatorTrust::Off,
            memos: Default::default(),
        })
    }

    /// The memos of this verifier instance.
    pub(crate) fn memos(&self) -> &super::tdx_memo::Memos {
        &self.memos
    }

    /// This instance's TDX memo activity (tests, benchmarks).
    #[doc(hidden)]
    pub fn memo_stats(&self) -> super::TdxMemoStats {
        self.memos.stats()
    }

    /// The same anchors with empty memos, so every appraisal takes the full path (the benchmarks' cold scenario).
    #[doc(hidden)]
    pub fn with_fresh_memos(&self) -> TrustAnchors {
        TrustAnchors {
            memos: Default::default(),
            ..self.clone()
        }
    }

    /// DANGER: also trust these simulator root certificates (DER: the simulator's AMD ARKs and Intel root). Every
    /// result chained to one of them carries `simulated: true`. Logged at `warn`.
    pub fn danger_trust_simulator_roots(mut self, roots_der: &[Vec<u8>]) -> TrustAnchors {
        tracing::warn!(
            count = roots_der.len(),
            "trusting simulator roots: evidence will be marked simulated"
        );
        self.simulator = SimulatorTrust::Roots(roots_der.iter().map(|d| sha256(d)).collect());
        // Verdicts made under the previous anchors do not carry over.
        self.memos = Default::default();
        self
    }

    /// DANGER: trust any self-signed root whose subject marks it as the Locus simulator's (`--trust-simulator`).
    /// Logged at `warn`.
    pub fn danger_trust_any_simulator_root(mut self) -> TrustAnchors {
        tracing::warn!("trusting any simulator root: evidence will be marked simulated");
        self.simulator = SimulatorTrust::AnyMarked;
        self.memos = Default::default();
        self
    }

    /// Whether any simulator trust is on.
    pub fn trusts_simulator(&self) -> bool {
        self.simulator != SimulatorTrust::Off
    }

    /// The pinned ARK of `product`.
    pub(crate) fn amd_ark(&self, product: Product) -> Option<&ParsedCert> {
        self.amd
            .iter()
            .find(|(p, _, _)| *p == product)
            .map(|(_, ark, _)| ark)
    }

    /// The pinned VCEK ASK of `product`.
    pub(crate) fn amd_ask(&self, product: Product) -> Option<&ParsedCert> {
        self.amd
            .iter()
            .find(|(p, _, _)| *p == product)
            .map(|(_, _, ask)| ask)
    }

    /// The pinned Intel SGX Root CA (DER).
    pub fn intel_root_der(&self) -> &[u8] {
        &self.intel_root_der
    }

    /// Judge a root that is not a pinned vendor root: `Ok(())` if simulator trust covers it (the caller then marks
    /// the result simulated), `simulated_evidence_untrusted` if it is a simulator root without trust, else
    /// `chain_untrusted` with `what` explaining which pin it failed.
    pub(crate) fn judge_unpinned_root(&self, root: &ParsedCert, what: &str) -> Result<(), Refusal> {
        let marked = is_simulator_cert(root) && root.self_issued();
        let trusted = match &self.simulator {
            SimulatorTrust::Off => false,
            SimulatorTrust::Roots(pins) => pins.contains(&root.fingerprint()),
            SimulatorTrust::AnyMarked => marked,
        };
        if trusted {
            return Ok(());
        }
        if self.trusts_simulator() {
            // Simulator trust is on but this is not a trusted simulator root (e.g. a look-alike hierarchy).
            return Err(Refusal::new(
                ErrorCode::ChainUntrusted,
                format!(
                    "{what}: root \"{}\" (sha256 {}) is neither pinned nor a trusted simulator root",
                    root.subject(),
                    hex::encode(root.fingerprint())
                ),
            ));
        }
        if marked {
            return Err(Refusal::new(
                ErrorCode::SimulatedEvidenceUntrusted,
                format!("{what}: the chain ends at a simulator root (\"{}\") and simulator trust is off", root.subject()),
            ));
        }
        Err(Refusal::new(
            ErrorCode::ChainUntrusted,
            format!(
                "{what}: root \"{}\" (sha256 {}) is not pinned",
                root.subject(),
                hex::encode(root.fingerprint())
            ),
        ))
    }
}

fn single_pem(pem: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut certs = pem_certificates(pem).map_err(|e| Refusal::new(ErrorCode::Internal, e))?;
    if certs.len() != 1 {
        return Err(Refusal::new(
            ErrorCode::Internal,
            "built-in PEM must hold one certificate",
        ));
    }
    Ok(certs.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_anchors_build_and_match_the_published_fingerprints() {
        let anchors = TrustAnchors::pinned().expect("pinned anchors");
        for product in Product::ALL {
            let ark = anchors.amd_ark(product).expect("ark");
            assert_eq!(hex::encode(ark.fingerprint()), pinned_ark_sha256(product));
            assert_eq!(
                ark.subject_cn().as_deref(),
                Some(format!("ARK-{product}").as_str())
            );
            let ask = anchors.amd_ask(product).expect("ask");
            ask.verify_signed_by(ark, anchors.memos())
                .expect("built-in ASK is signed by the built-in ARK");
        }
        assert!(!anchors.trusts_simulator());
    }

    #[test]
    fn embedded_intel_root_is_the_pinned_intel_sgx_root_ca() {
        let der = intel_sgx_root_ca_der();
        assert_eq!(hex::encode(sha256(&der)), INTEL_SGX_ROOT_CA_SHA256);
        let root = ParsedCert::parse(&der, "Intel root").expect("parse");
        assert_eq!(root.subject_cn().as_deref(), Some("Intel SGX Root CA"));
    }

    #[test]
    fn a_pinned_vendor_root_is_not_mistaken_for_a_simulator_root() {
        let anchors = TrustAnchors::pinned()
            .expect("pinned")
            .danger_trust_any_simulator_root();
        let ark = anchors.amd_ark(Product::Milan).expect("ark").clone();
        assert!(!is_simulator_cert(&ark));
        let err = anchors
            .judge_unpinned_root(&ark, "test")
            .expect_err("not a simulator root");
        assert_eq!(err.code, ErrorCode::ChainUntrusted);
    }
}
