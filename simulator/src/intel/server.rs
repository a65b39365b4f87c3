//! The Intel PCS v4 paths of `locus-sim serve`, answering like Intel PCS (and, for the root CA CRL, like a PCCS):
//!
//! | Request | Answer | Issuer-chain header |
//! |---|---|---|
//! | `GET /tdx/certification/v4/tcb?fmspc=HEX[&update=standard\|early][&tcbEvaluationDataNumber=N]` | TCB info JSON | `TCB-Info-Issuer-Chain` |
//! | `GET /tdx/certification/v4/qe/identity[?update=…]` | QE identity JSON | `SGX-Enclave-Identity-Issuer-Chain` |
//! | `GET /sgx/certification/v4/pckcrl?ca=platform[&encoding=der]` | PCK CRL, DER (PEM without `encoding=der`) | `SGX-PCK-CRL-Issuer-Chain` |
//! | `GET /sgx/certification/v4/rootcacrl` | root CA CRL, hex (PCCS form) | — |
//!
//! Issuer chains are URL-encoded PEM (leaf first, root last), as PCS sends them. Errors: a missing or malformed
//! parameter is `400`; an FMSPC, CA or evaluation number the simulated world does not have is `404`.
//!
//! [`PcsState`] counts requests per path and can call a hook on each one, for the shared stats endpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::asn1;
use super::collateral::{CollateralWindow, TdxCollateralFiles, SIM_TCB_EVALUATION_DATA_NUMBER};
use super::pki::IntelPki;
use super::profile::SIM_FMSPC;

/// Path of the TDX TCB info.
pub const TCB_INFO_PATH: &str = "/tdx/certification/v4/tcb";
/// Path of the TD QE identity.
pub const QE_IDENTITY_PATH: &str = "/tdx/certification/v4/qe/identity";
/// Path of the PCK CRL.
pub const PCK_CRL_PATH: &str = "/sgx/certification/v4/pckcrl";
/// Path of the root CA CRL (PCCS).
pub const ROOT_CA_CRL_PATH: &str = "/sgx/certification/v4/rootcacrl";

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (what PCS does to the PEM chains).
const HEADER_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A hook called with the request path of every PCS request (before it is answered).
pub type RequestHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What the PCS routes serve: the collateral of one world in one validity window, plus request counters.
pub struct PcsState {
    /// Collateral served, computed once (signing is deterministic, so it never changes).
    collateral: TdxCollateralFiles,
    /// Requests per path, for tests of caching and single-flight.
    counts: Mutex<BTreeMap<String, u64>>,
    /// Optional observer of every request (the server's shared stats).
    hook: Option<RequestHook>,
}

impl fmt::Debug for PcsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcsState")
            .field("counts", &self.request_counts())
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl PcsState {
    /// Serves `pki`'s collateral with TCB info and QE identity in `window` (`Stale` for the `stale-collateral`
    /// server fault).
    pub fn new(pki: &IntelPki, window: CollateralWindow) -> Self {
        Self {
            collateral: pki.collateral(window),
            counts: Mutex::new(BTreeMap::new()),
            hook: None,
        }
    }

    /// Calls `hook(path)` on every PCS request.
    pub fn with_request_hook(mut self, hook: RequestHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Requests seen so far, per path.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .map(|counts| counts.clone())
            .unwrap_or_default()
    }

    fn count(&self, path: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(path.to_owned()).or_insert(0) += 1;
        }
        if let Some(hook) = &self.hook {
            hook(path);
        }
    }
}

/// The PCS routes with their state applied; merge the result into any router (`Router<S>` for any state `S`).
pub fn routes<S>(state: Arc<PcsState>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(TCB_INFO_PATH, get(tcb_info))
        .route(QE_IDENTITY_PATH, get(qe_identity))
        .route(PCK_CRL_PATH, get(pck_crl))
        .route(ROOT_CA_CRL_PATH, get(root_ca_crl))
        .with_state(state)
}

type Params = Query<BTreeMap<String, String>>;

/// A refused request: its status and a one-line reason (the body).
#[derive(Debug)]
struct PcsError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for PcsError {
    fn into_response(self) -> Response {
        (self.status, format!("{}\n", self.message)).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> PcsError {
    PcsError {
        status,
        message: message.into(),
    }
}

fn answer(
    content_type: &'static str,
    body: Vec<u8>,
    chain: Option<(&'static str, &str)>,
) -> Result<Response, PcsError> {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some((name, pem)) = chain {
        let encoded = utf8_percent_encode(pem, HEADER_ENCODE_SET).to_string();
        let value = HeaderValue::from_str(&encoded).map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "issuer chain is not a valid header value",
            )
        })?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(response)
}

/// `update` must be `standard` or `early` (the simulated world has one evaluation set for both);
/// `tcbEvaluationDataNumber`, if given, must be the simulated one.
fn check_update_params(params: &BTreeMap<String, String>) -> Result<(), PcsError> {
    if let Some(update) = params.get("update") {
        if update != "standard" && update != "early" {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("update must be standard or early, not {update:?}"),
            ));
        }
    }
    if let Some(number) = params.get("tcbEvaluationDataNumber") {
        let number: u32 = number.parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                format!("tcbEvaluationDataNumber {number:?} is not a number"),
            )
        })?;
        if number != SIM_TCB_EVALUATION_DATA_NUMBER {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("no collateral for tcbEvaluationDataNumber {number}"),
            ));
        }
    }
    Ok(())
}

async fn tcb_info(
    State(state): State<Arc<PcsState>>,
    Query(params): Params,
) -> Result<Response, PcsError> {
    state.count(TCB_INFO_PATH);
    check_update_params(&params)?;
    let fmspc = params
        .get("fmspc")
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "missing fmspc"))?;
    let bytes = hex::decode(fmspc)
        .ok()
        .filter(|bytes| bytes.len() == SIM_FMSPC.len())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!("fmspc {fmspc:?} is not 6 bytes of hex"),
            )
        })?;
    if bytes != SIM_FMSPC {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no TCB info for FMSPC {fmspc}"),
        ));
    }
    let collateral = &state.collateral;
    answer(
        "application/json",
        collateral.tcb_info_json.clone().into_bytes(),
        Some((
            "tcb-info-issuer-chain",
            &collateral.tcb_info_issuer_chain_pem,
        )),
    )
}

async fn qe_identity(
    State(state): State<Arc<PcsState>>,
    Query(params): Params,
) -> Result<Response, PcsError> {
    state.count(QE_IDENTITY_PATH);
    check_update_params(&params)?;
    let collateral = &state.collateral;
    answer(
        "application/json",
        collateral.qe_identity_json.clone().into_bytes(),
        Some((
            "sgx-enclave-identity-issuer-chain",
            &collateral.qe_identity_issuer_chain_pem,
        )),
    )
}

async fn pck_crl(
    State(state): State<Arc<PcsState>>,
    Query(params): Params,
) -> Result<Response, PcsError> {
    state.count(PCK_CRL_PATH);
    match params.get("ca").map(String::as_str) {
        Some("platform") => {}
        Some("processor") => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "the simulated world has no PCK Processor CA",
            ));
        }
        Some(other) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("ca must be platform or processor, not {other:?}"),
            ));
        }
        None => return Err(error(StatusCode::BAD_REQUEST, "missing ca")),
    }
    let collateral = &state.collateral;
    let chain = Some((
        "sgx-pck-crl-issuer-chain",
        collateral.pck_crl_issuer_chain_pem.as_str(),
    ));
    match params.get("encoding").map(String::as_str) {
        Some("der") => answer(
            "application/pkix-crl",
            collateral.pck_crl_der.clone(),
            chain,
        ),
        None | Some("pem") => answer(
            "application/x-pem-file",
            asn1::pem("X509 CRL", &collateral.pck_crl_der).into_bytes(),
            chain,
        ),
        Some(other) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("encoding must be der or pem, not {other:?}"),
        )),
    }
}

async fn root_ca_crl(State(state): State<Arc<PcsState>>) -> Result<Response, PcsError> {
    state.count(ROOT_CA_CRL_PATH);
    answer(
        "text/plain",
        hex::encode(&state.collateral.root_ca_crl_der).into_bytes(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_chains_are_percent_encoded_like_pcs() {
        let pem = "-----BEGIN CERTIFICATE-----\nAB+/=\n-----END CERTIFICATE-----\n";
        let encoded = utf8_percent_encode(pem, HEADER_ENCODE_SET).to_string();
        assert_eq!(
            encoded,
            "-----BEGIN%20CERTIFICATE-----%0AAB%2B%2F%3D%0A-----END%20CERTIFICATE-----%0A"
        );
    }

    #[test]
    fn update_parameters_are_checked() {
        let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(check_update_params(&params(&[])).is_ok());
        assert!(check_update_params(&params(&[("update", "early")])).is_ok());
        let status = |p: &[(&str, &str)]| check_update_params(&params(p)).err().map(|e| e.status);
        assert_eq!(status(&[("update", "late")]), Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            status(&[("tcbEvaluationDataNumber", "x")]),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(&[("tcbEvaluationDataNumber", "17")]),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(status(&[("tcbEvaluationDataNumber", "18")]), None);
    }
}
