//! AMD Key Distribution Service client (AMD "VCEK Certificate and KDS Interface Specification"; docs/architecture.md#appraisal).
//!
//! - VCEK: `GET {base}/vcek/v1/{product}/{hwid}?[fmcSPL=NN&]blSPL=NN&teeSPL=NN&snpSPL=NN&ucodeSPL=NN` → DER.
//! - Chain: `GET {base}/{vcek|vlek}/v1/{product}/cert_chain` → PEM, ASK (or ASVK) then ARK.
//! - CRL: `GET {base}/{vcek|vlek}/v1/{product}/crl` → DER.

use super::cache::{crl_window, CachedItem};
use super::evidence::{cert_der, pem_certificates, SnpProduct, SnpTcb};
use super::http::{FetchError, HttpClient};

/// The official AMD KDS.
pub const AMD_KDS_URL: &str = "https://kdsintf.amd.com";

/// Which AMD key family: VCEK (ASK chain) or VLEK (ASVK chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AmdKeyKind {
    Vcek,
    Vlek,
}

impl AmdKeyKind {
    pub fn path(self) -> &'static str {
        match self {
            AmdKeyKind::Vcek => "vcek",
            AmdKeyKind::Vlek => "vlek",
        }
    }
}

/// AMD KDS client.
#[derive(Clone, Debug)]
pub struct KdsClient {
    base: String,
    http: HttpClient,
}

impl KdsClient {
    pub fn new(base: &str, http: HttpClient) -> Self {
        KdsClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The base URL (no trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn vcek_url(&self, product: SnpProduct, hwid: &str, tcb: &SnpTcb) -> String {
        format!(
            "{}/vcek/v1/{}/{}?{}",
            self.base,
            product.kds_name(),
            hwid,
            tcb.kds_query()
        )
    }

    pub fn cert_chain_url(&self, kind: AmdKeyKind, product: SnpProduct) -> String {
        format!(
            "{}/{}/v1/{}/cert_chain",
            self.base,
            kind.path(),
            product.kds_name()
        )
    }

    pub fn crl_url(&self, kind: AmdKeyKind, product: SnpProduct) -> String {
        format!(
            "{}/{}/v1/{}/crl",
            self.base,
            kind.path(),
            product.kds_name()
        )
    }

    /// Fetch a VCEK. The body must be one certificate (DER; a PEM answer is converted). Never expires in the cache.
    pub async fn vcek(
        &self,
        product: SnpProduct,
        hwid: &str,
        tcb: &SnpTcb,
        now: u64,
    ) -> Result<CachedItem, FetchError> {
        let url = self.vcek_url(product, hwid, tcb);
        let fetched = self.http.get(&url).await?;
        let der = cert_der(&fetched.body)
            .filter(|d| x509_parses(d))
            .ok_or_else(|| FetchError::Invalid(format!("{url}: answer is not a certificate")))?;
        Ok(CachedItem {
            body: der,
            issuer_chain: None,
            issued_at: None,
            next_update: None,
            fetched_at: now,
        })
    }

    /// Fetch the ASK/ASVK + ARK chain (PEM kept as served). Never expires in the cache: the appraisal re-checks it.
    pub async fn cert_chain(
        &self,
        kind: AmdKeyKind,
        product: SnpProduct,
        now: u64,
    ) -> Result<CachedItem, FetchError> {
        let url = self.cert_chain_url(kind, product);
        let fetched = self.http.get(&url).await?;
        let certs = pem_certificates(&fetched.body);
        if certs.len() != 2 || !certs.iter().all(|c| x509_parses(c)) {
            return Err(FetchError::Invalid(format!(
                "{url}: expected a PEM chain of 2 certificates (ASK, ARK), got {}",
                certs.len()
            )));
        }
        Ok(CachedItem {
            body: fetched.body,
            issuer_chain: None,
            issued_at: None,
            next_update: None,
            fetched_at: now,
        })
    }

    /// Fetch the product CRL (DER), cached until its `nextUpdate`.
    pub async fn crl(
        &self,
        kind: AmdKeyKind,
        product: SnpProduct,
        now: u64,
    ) -> Result<CachedItem, FetchError> {
        let url = self.crl_url(kind, product);
        let fetched = self.http.get(&url).await?;
        let (this, next) =
            crl_window(&fetched.body).map_err(|e| FetchError::Invalid(format!("{url}: {e}")))?;
        Ok(CachedItem {
            body: fetched.body,
            issuer_chain: None,
            issued_at: Some(this),
            next_update: Some(next),
            fetched_at: now,
        })
    }
}

pub(crate) fn x509_parses(der_bytes: &[u8]) -> bool {
    use der::Decode;
    x509_cert::Certificate::from_der(der_bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collateral::http::{RetryPolicy, Timeouts};

    fn client(base: &str) -> KdsClient {
        KdsClient::new(
            base,
            HttpClient::new(&Timeouts::default(), RetryPolicy::default()).expect("http"),
        )
    }

    #[test]
    fn urls_follow_the_kds_interface() {
        let kds = client("https://kdsintf.amd.com/");
        let tcb = SnpTcb::from_raw(0x7308_0000_0000_0003, SnpProduct::Milan);
        assert_eq!(
            kds.vcek_url(SnpProduct::Milan, "abcd", &tcb),
            "https://kdsintf.amd.com/vcek/v1/Milan/abcd?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
        );
        assert_eq!(
            kds.cert_chain_url(AmdKeyKind::Vlek, SnpProduct::Genoa),
            "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain"
        );
        assert_eq!(
            kds.crl_url(AmdKeyKind::Vcek, SnpProduct::Turin),
            "https://kdsintf.amd.com/vcek/v1/Turin/crl"
        );
    }
}
