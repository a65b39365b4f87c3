//! Intel PCS v4 / PCCS client (Intel "PCCS/PCS API v4"; docs/operations.md#collateral-caching-and-offline-mode).
//!
//! | item | request | issuer chain header |
//! |---|---|---|
//! | TCB info | `GET {base}/tdx/certification/v4/tcb?fmspc=<hex>` | `TCB-Info-Issuer-Chain` (or `SGX-TCB-Info-Issuer-Chain`) |
//! | QE identity | `GET {base}/tdx/certification/v4/qe/identity` | `SGX-Enclave-Identity-Issuer-Chain` |
//! | PCK CRL | `GET {base}/sgx/certification/v4/pckcrl?ca=platform\|processor&encoding=der` | `SGX-PCK-CRL-Issuer-Chain` |
//! | root CA CRL | PCCS `GET {base}/sgx/certification/v4/rootcacrl` (hex body); PCS: the root's CRL distribution point (DER) | — |
//!
//! Header values are URL-encoded PEM chains and are percent-decoded. Items are cached until their own `nextUpdate`.

use percent_encoding::percent_decode_str;

use super::cache::{crl_window, json_window, CachedItem};
use super::evidence::{pem_certificates, PckCa};
use super::http::{FetchError, Fetched, HttpClient};

/// The official Intel PCS.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// The Intel SGX Root CA's CRL distribution point (DER).
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

/// Intel PCS or PCCS client.
#[derive(Clone, Debug)]
pub struct PcsClient {
    base: String,
    root_ca_crl_url: String,
    http: HttpClient,
}

impl PcsClient {
    /// `base` is the PCS or PCCS base URL. The root CA CRL comes from `root_ca_crl_url` when given; otherwise from
    /// Intel's distribution point for the official PCS, and from `{base}/sgx/certification/v4/rootcacrl` for any other
    /// base (a PCCS, or the simulator).
    pub fn new(base: &str, root_ca_crl_url: Option<&str>, http: HttpClient) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        let root_ca_crl_url = match root_ca_crl_url {
            Some(u) => u.to_owned(),
            None if base == INTEL_PCS_URL => INTEL_ROOT_CA_CRL_URL.to_owned(),
            None => format!("{base}/sgx/certification/v4/rootcacrl"),
        };
        PcsClient {
            base,
            root_ca_crl_url,
            http,
        }
    }

    /// The PCS / PCCS base URL (no trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn tcb_info_url(&self, fmspc_hex: &str) -> String {
        format!("{}/tdx/certification/v4/tcb?fmspc={fmspc_hex}", self.base)
    }

    pub fn qe_identity_url(&self) -> String {
        format!("{}/tdx/certification/v4/qe/identity", self.base)
    }

    pub fn pck_crl_url(&self, ca: PckCa) -> String {
        format!(
            "{}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
            self.base,
            ca.as_str()
        )
    }

    pub fn root_ca_crl_url(&self) -> &str {
        &self.root_ca_crl_url
    }

    /// TCB info for an FMSPC: the JSON body exactly as served (its signature covers the raw `tcbInfo` text).
    pub async fn tcb_info(&self, fmspc_hex: &str, now: u64) -> Result<CachedItem, FetchError> {
        let url = self.tcb_info_url(fmspc_hex);
        let fetched = self.http.get(&url).await?;
        let chain = issuer_chain(
            &url,
            &fetched,
            &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
        )?;
        let (issued, next) = json_window(&fetched.body, "tcbInfo")
            .map_err(|e| FetchError::Invalid(format!("{url}: {e}")))?;
        Ok(CachedItem {
            body: fetched.body,
            issuer_chain: Some(chain),
            issued_at: Some(issued),
            next_update: Some(next),
            fetched_at: now,
        })
    }

    /// The TDX QE identity JSON as served.
    pub async fn qe_identity(&self, now: u64) -> Result<CachedItem, FetchError> {
        let url = self.qe_identity_url();
        let fetched = self.http.get(&url).await?;
        let chain = issuer_chain(&url, &fetched, &["SGX-Enclave-Identity-Issuer-Chain"])?;
        let (issued, next) = json_window(&fetched.body, "enclaveIdentity")
            .map_err(|e| FetchError::Invalid(format!("{url}: {e}")))?;
        Ok(CachedItem {
            body: fetched.body,
            issuer_chain: Some(chain),
            issued_at: Some(issued),
            next_update: Some(next),
            fetched_at: now,
        })
    }

    /// The PCK CRL of the Platform or Processor CA, DER (a hex body, as some PCCS send, is decoded).
    pub async fn pck_crl(&self, ca: PckCa, now: u64) -> Result<CachedItem, FetchError> {
        let url = self.pck_crl_url(ca);
        let fetched = self.http.get(&url).await?;
        let chain = issuer_chain(&url, &fetched, &["SGX-PCK-CRL-Issuer-Chain"])?;
        let der = der_or_hex(&fetched.body);
        let (this, next) =
            crl_window(&der).map_err(|e| FetchError::Invalid(format!("{url}: {e}")))?;
        Ok(CachedItem {
            body: der,
            issuer_chain: Some(chain),
            issued_at: Some(this),
            next_update: Some(next),
            fetched_at: now,
        })
    }

    /// The Intel SGX Root CA CRL, DER (the PCCS hex body is decoded).
    pub async fn root_ca_crl(&self, now: u64) -> Result<CachedItem, FetchError> {
        let url = self.root_ca_crl_url.clone();
        let fetched = self.http.get(&url).await?;
        let der = der_or_hex(&fetched.body);
        let (this, next) =
            crl_window(&der).map_err(|e| FetchError::Invalid(format!("{url}: {e}")))?;
        Ok(CachedItem {
            body: der,
            issuer_chain: None,
            issued_at: Some(this),
            next_update: Some(next),
            fetched_at: now,
        })
    }
}

/// A DER body as is; an ASCII hex body decoded (PCCS `rootcacrl`).
pub fn der_or_hex(body: &[u8]) -> Vec<u8> {
    if body.first() == Some(&0x30) {
        return body.to_vec();
    }
    let text = String::from_utf8_lossy(body);
    hex::decode(text.trim()).unwrap_or_else(|_| body.to_vec())
}

/// The first present header of `names`, percent-decoded, holding at least one PEM certificate.
fn issuer_chain(url: &str, fetched: &Fetched, names: &[&str]) -> Result<String, FetchError> {
    let raw = names
        .iter()
        .find_map(|n| fetched.headers.get(*n))
        .ok_or_else(|| {
            FetchError::Invalid(format!("{url}: answer has no {} header", names.join(" / ")))
        })?;
    let raw = raw
        .to_str()
        .map_err(|_| FetchError::Invalid(format!("{url}: issuer chain header is not ASCII")))?;
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| FetchError::Invalid(format!("{url}: issuer chain header is not UTF-8")))?
        .into_owned();
    if pem_certificates(decoded.as_bytes()).is_empty() {
        return Err(FetchError::Invalid(format!(
            "{url}: issuer chain header holds no PEM certificate"
        )));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collateral::http::{RetryPolicy, Timeouts};

    fn http() -> HttpClient {
        HttpClient::new(&Timeouts::default(), RetryPolicy::default()).expect("http")
    }

    #[test]
    fn urls_follow_pcs_v4() {
        let pcs = PcsClient::new("http://127.0.0.1:8081/", None, http());
        assert_eq!(
            pcs.tcb_info_url("00806f050000"),
            "http://127.0.0.1:8081/tdx/certification/v4/tcb?fmspc=00806f050000"
        );
        assert_eq!(
            pcs.qe_identity_url(),
            "http://127.0.0.1:8081/tdx/certification/v4/qe/identity"
        );
        assert_eq!(
            pcs.pck_crl_url(PckCa::Processor),
            "http://127.0.0.1:8081/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
        );
        assert_eq!(
            pcs.root_ca_crl_url(),
            "http://127.0.0.1:8081/sgx/certification/v4/rootcacrl"
        );
    }

    #[test]
    fn official_pcs_takes_the_root_crl_from_the_distribution_point() {
        let pcs = PcsClient::new(INTEL_PCS_URL, None, http());
        assert_eq!(pcs.root_ca_crl_url(), INTEL_ROOT_CA_CRL_URL);
        let pcs = PcsClient::new(INTEL_PCS_URL, Some("http://x/crl.der"), http());
        assert_eq!(pcs.root_ca_crl_url(), "http://x/crl.der");
    }

    #[test]
    fn der_or_hex_decodes_hex_bodies_and_keeps_der() {
        assert_eq!(der_or_hex(&[0x30, 0x01, 0x00]), vec![0x30, 0x01, 0x00]);
        assert_eq!(der_or_hex(b"300100\n"), vec![0x30, 0x01, 0x00]);
    }
}
