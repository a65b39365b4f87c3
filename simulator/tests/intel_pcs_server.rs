//! The simulator's Intel PCS routes over real HTTP: what they serve, their errors, their request counters, and an
//! end-to-end check that collateral fetched from them lets dcap-qvl verify a simulated quote.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;
use locus_simulator::intel::profile::TDX_FRA_1;
use locus_simulator::intel::server::{self, PcsState, PCK_CRL_PATH, TCB_INFO_PATH};
use locus_simulator::intel::{CollateralWindow, IntelPki, SIM_VERIFICATION_TIME_UNIX};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const FMSPC_HEX: &str = "5e1d00000000";

fn pki() -> &'static Arc<IntelPki> {
    static PKI: OnceLock<Arc<IntelPki>> = OnceLock::new();
    PKI.get_or_init(|| Arc::new(IntelPki::new(2026)))
}

async fn start(state: Arc<PcsState>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    let app = server::routes::<()>(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no header {name}: {self:?}"))
    }

    fn chain(&self, name: &str) -> String {
        percent_encoding::percent_decode_str(self.header(name))
            .decode_utf8()
            .unwrap_or_else(|e| panic!("{name} is not UTF-8 once decoded: {e}"))
            .into_owned()
    }
}

/// A minimal HTTP/1.1 GET (the simulator's dev-dependencies have no HTTP client).
async fn get(addr: SocketAddr, path_and_query: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let request =
        format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Splits a PCS envelope `{"<key>":<body>,"signature":"<hex>"}` into the signed body text and the signature.
fn split_envelope(json: &str, key: &str) -> (String, Vec<u8>) {
    let prefix = format!("{{\"{key}\":");
    let at = json
        .rfind(",\"signature\":\"")
        .unwrap_or_else(|| panic!("no signature in {json}"));
    assert!(json.starts_with(&prefix) && json.ends_with("\"}"), "{json}");
    let body = json[prefix.len()..at].to_owned();
    let signature = hex::decode(&json[at + 14..json.len() - 2])
        .unwrap_or_else(|e| panic!("signature hex: {e}"));
    (body, signature)
}

#[tokio::test]
async fn tcb_info_is_served_with_its_issuer_chain() {
    let addr = start(Arc::new(PcsState::new(pki(), CollateralWindow::Current))).await;
    let files = pki().collateral(CollateralWindow::Current);
    let answer = get(addr, &format!("{TCB_INFO_PATH}?fmspc={FMSPC_HEX}")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.body, files.tcb_info_json.as_bytes());
    assert_eq!(
        answer.chain("tcb-info-issuer-chain"),
        files.tcb_info_issuer_chain_pem
    );
    // Upper-case hex and the PCS update parameter are accepted too.
    let answer = get(
        addr,
        &format!("{TCB_INFO_PATH}?fmspc=5E1D00000000&update=early"),
    )
    .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn qe_identity_is_served_with_its_issuer_chain() {
    let addr = start(Arc::new(PcsState::new(pki(), CollateralWindow::Current))).await;
    let files = pki().collateral(CollateralWindow::Current);
    let answer = get(addr, "/tdx/certification/v4/qe/identity").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, files.qe_identity_json.as_bytes());
    assert_eq!(
        answer.chain("sgx-enclave-identity-issuer-chain"),
        files.qe_identity_issuer_chain_pem
    );
}

#[tokio::test]
async fn pck_crl_is_served_as_der_or_pem_and_root_crl_as_hex() {
    let addr = start(Arc::new(PcsState::new(pki(), CollateralWindow::Current))).await;
    let der = get(addr, &format!("{PCK_CRL_PATH}?ca=platform&encoding=der")).await;
    assert_eq!(der.status, 200);
    assert_eq!(der.body, pki().pck_crl_der());
    assert_eq!(
        der.chain("sgx-pck-crl-issuer-chain"),
        pki()
            .collateral(CollateralWindow::Current)
            .pck_crl_issuer_chain_pem
    );
    let pem = get(addr, &format!("{PCK_CRL_PATH}?ca=platform")).await;
    assert!(String::from_utf8_lossy(&pem.body).starts_with("-----BEGIN X509 CRL-----\n"));
    let root = get(addr, "/sgx/certification/v4/rootcacrl").await;
    assert_eq!(root.status, 200);
    assert_eq!(
        hex::decode(&root.body).ok().as_deref(),
        Some(pki().root_ca_crl_der())
    );
}

#[tokio::test]
async fn bad_requests_get_400_and_unknown_items_404() {
    let addr = start(Arc::new(PcsState::new(pki(), CollateralWindow::Current))).await;
    let cases = [
        (TCB_INFO_PATH.to_owned(), 400),
        (format!("{TCB_INFO_PATH}?fmspc=zz"), 400),
        (format!("{TCB_INFO_PATH}?fmspc=5e1d"), 400),
        (format!("{TCB_INFO_PATH}?fmspc=00906ed50000"), 404),
        (
            format!("{TCB_INFO_PATH}?fmspc={FMSPC_HEX}&update=late"),
            400,
        ),
        (
            format!("{TCB_INFO_PATH}?fmspc={FMSPC_HEX}&tcbEvaluationDataNumber=17"),
            404,
        ),
        (
            format!("{TCB_INFO_PATH}?fmspc={FMSPC_HEX}&tcbEvaluationDataNumber=18"),
            200,
        ),
        (PCK_CRL_PATH.to_owned(), 400),
        (format!("{PCK_CRL_PATH}?ca=processor&encoding=der"), 404),
        (format!("{PCK_CRL_PATH}?ca=platform&encoding=base64"), 400),
    ];
    for (path, status) in cases {
        assert_eq!(get(addr, &path).await.status, status, "{path}");
    }
}

#[tokio::test]
async fn requests_are_counted_per_path_and_reported_to_the_hook() {
    let seen = Arc::new(AtomicU64::new(0));
    let hook_seen = Arc::clone(&seen);
    let state = Arc::new(
        PcsState::new(pki(), CollateralWindow::Current).with_request_hook(Arc::new(
            move |_path: &str| {
                hook_seen.fetch_add(1, Ordering::SeqCst);
            },
        )),
    );
    let addr = start(Arc::clone(&state)).await;
    for _ in 0..3 {
        get(addr, &format!("{TCB_INFO_PATH}?fmspc={FMSPC_HEX}")).await;
    }
    get(addr, &format!("{PCK_CRL_PATH}?ca=platform&encoding=der")).await;
    let counts = state.request_counts();
    assert_eq!(counts.get(TCB_INFO_PATH), Some(&3));
    assert_eq!(counts.get(PCK_CRL_PATH), Some(&1));
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn stale_state_serves_expired_collateral() {
    let addr = start(Arc::new(PcsState::new(pki(), CollateralWindow::Stale))).await;
    let answer = get(addr, &format!("{TCB_INFO_PATH}?fmspc={FMSPC_HEX}")).await;
    let json = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(
        json.contains("\"nextUpdate\":\"2024-02-01T00:00:00Z\""),
        "{json}"
    );
}

#[tokio::test]
async fn collateral_fetched_over_http_verifies_a_quote_with_dcap_qvl() {
    let addr = start(Arc::new(PcsState::new(pki(), CollateralWindow::Current))).await;
    let tcb = get(addr, &format!("{TCB_INFO_PATH}?fmspc={FMSPC_HEX}")).await;
    let qe = get(addr, "/tdx/certification/v4/qe/identity").await;
    let pck_crl = get(addr, &format!("{PCK_CRL_PATH}?ca=platform&encoding=der")).await;
    let root_crl = get(addr, "/sgx/certification/v4/rootcacrl").await;
    let (tcb_info, tcb_info_signature) =
        split_envelope(&String::from_utf8_lossy(&tcb.body), "tcbInfo");
    let (qe_identity, qe_identity_signature) =
        split_envelope(&String::from_utf8_lossy(&qe.body), "enclaveIdentity");
    let collateral = QuoteCollateralV3 {
        pck_crl_issuer_chain: pck_crl.chain("sgx-pck-crl-issuer-chain"),
        root_ca_crl: hex::decode(&root_crl.body).unwrap_or_else(|e| panic!("root CRL hex: {e}")),
        pck_crl: pck_crl.body.clone(),
        tcb_info_issuer_chain: tcb.chain("tcb-info-issuer-chain"),
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: qe.chain("sgx-enclave-identity-issuer-chain"),
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: None,
    };
    let attester = pki()
        .attester_by_name(TDX_FRA_1)
        .unwrap_or_else(|| panic!("built-in profile"));
    let quote = attester.quote(&[7; 64]);
    let report = QuoteVerifier::new(pki().root_der().to_vec())
        .verify(&quote, &collateral, SIM_VERIFICATION_TIME_UNIX)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(report.status, "UpToDate");
}
