//! `locus-sim serve` answers the AMD KDS paths with the world's certificates, counts requests per path, and injects
//! 429s and delays. The server runs for real on 127.0.0.1:0; requests are plain HTTP/1.1 over a TCP stream.

use std::time::Duration;

use der::Decode;
use locus_hw::snp::Product;
use locus_simulator::{Faults, World};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .expect("code")
        .parse()
        .expect("numeric");
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Answer {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

async fn start(faults: Faults) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(locus_simulator::server::serve(
        listener,
        World::shared(),
        faults,
    ));
    addr
}

fn vcek_path(world: &World, profile: &str) -> String {
    let snp = world
        .profile(profile)
        .expect("profile")
        .snp()
        .expect("snp")
        .clone();
    let t = snp.reported_tcb;
    let fmc = t.fmc.map(|f| format!("fmcSPL={f:02}&")).unwrap_or_default();
    format!(
        "/vcek/v1/{}/{}?{fmc}blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        snp.product.kds_name(),
        hex::encode(snp.hwid()),
        t.bootloader,
        t.tee,
        t.snp,
        t.microcode
    )
}

#[tokio::test]
async fn kds_serves_the_vcek_chain_and_crl_of_known_chips() {
    let world = World::shared();
    let addr = start(Faults::none()).await;
    for profile in ["snp-fra-1", "snp-iad-1", "snp-turin"] {
        let a = get(addr, &vcek_path(&world, profile)).await;
        assert_eq!(a.status, 200, "{profile}");
        assert_eq!(
            a.body,
            world
                .vcek_der(world.profile(profile).expect("p"))
                .expect("vcek")
        );
    }
    for product in Product::ALL {
        let chain = get(addr, &format!("/vcek/v1/{}/cert_chain", product.kds_name())).await;
        assert_eq!(chain.status, 200);
        let text = String::from_utf8(chain.body).expect("PEM text");
        let certs = x509_cert::Certificate::load_pem_chain(text.as_bytes()).expect("two PEM certs");
        use der::Encode;
        assert_eq!(certs.len(), 2);
        assert_eq!(
            certs[0].to_der().expect("der"),
            world.amd_ask_der(product).expect("ask"),
            "ASK first"
        );
        assert_eq!(
            certs[1].to_der().expect("der"),
            world.amd_ark_der(product).expect("ark"),
            "then ARK"
        );
        let vlek_chain = get(addr, &format!("/vlek/v1/{}/cert_chain", product.kds_name())).await;
        assert_eq!(vlek_chain.status, 200);
        let certs = x509_cert::Certificate::load_pem_chain(&vlek_chain.body).expect("PEM");
        assert_eq!(
            certs[0].to_der().expect("der"),
            world.amd_asvk_der(product).expect("asvk"),
            "ASVK first"
        );
        assert_eq!(
            certs[1].to_der().expect("der"),
            world.amd_ark_der(product).expect("ark")
        );
        assert_eq!(
            get(addr, &format!("/vlek/v1/{}/crl", product.kds_name()))
                .await
                .status,
            200
        );
        let crl = get(addr, &format!("/vcek/v1/{}/crl", product.kds_name())).await;
        assert_eq!(crl.status, 200);
        assert!(x509_cert::crl::CertificateList::from_der(&crl.body).is_ok());
        assert_eq!(crl.body, world.amd_crl_der(product).expect("crl"));
    }
}

#[tokio::test]
async fn kds_answers_404_for_unknown_chips_and_400_for_bad_parameters() {
    let world = World::shared();
    let addr = start(Faults::none()).await;
    let unknown = format!(
        "/vcek/v1/Milan/{}?blSPL=04&teeSPL=00&snpSPL=23&ucodeSPL=213",
        "ab".repeat(64)
    );
    assert_eq!(get(addr, &unknown).await.status, 404);
    // A Turin hwID must be 8 bytes: the full 64-byte CHIP_ID is unknown to KDS (AMDSEV#285).
    let turin = world
        .profile("snp-turin")
        .expect("p")
        .snp()
        .expect("snp")
        .clone();
    let long = format!(
        "/vcek/v1/Turin/{}?fmcSPL=01&blSPL=01&teeSPL=00&snpSPL=03&ucodeSPL=74",
        hex::encode(turin.chip_id)
    );
    assert_eq!(get(addr, &long).await.status, 404);
    assert_eq!(get(addr, "/vcek/v1/Venice/cert_chain").await.status, 404);
    let fra = vcek_path(&world, "snp-fra-1");
    let missing = fra.split("&ucodeSPL").next().expect("prefix").to_string();
    assert_eq!(get(addr, &missing).await.status, 400);
    assert_eq!(
        get(addr, &fra.replace("blSPL=", "blSPL=x")).await.status,
        400
    );
    // Turin without fmcSPL.
    let no_fmc = vcek_path(&world, "snp-turin").replace("fmcSPL=01&", "");
    assert_eq!(get(addr, &no_fmc).await.status, 400);
}

#[tokio::test]
async fn kds_429_fault_throttles_the_first_requests_then_answers_and_stats_count_every_request() {
    let world = World::shared();
    let mut faults = Faults::none();
    faults.add("kds-429:2").expect("fault");
    let addr = start(faults).await;
    let path = vcek_path(&world, "snp-iad-1");
    for _ in 0..2 {
        let a = get(addr, &path).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.header("retry-after"), Some("1"));
    }
    let ok = get(addr, &path).await;
    assert_eq!(ok.status, 200);
    let stats = get(addr, "/_sim/stats").await;
    assert_eq!(stats.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
    let path_only = path.split('?').next().expect("path");
    assert_eq!(v["requests"][path_only], 3);
    assert_eq!(v["throttled"], 2);
    assert_eq!(v["total"], 3);
}

#[tokio::test]
async fn slow_fault_delays_answers_without_failing_them() {
    let mut faults = Faults::none();
    faults.add("slow:50").expect("fault");
    let addr = start(faults).await;
    let started = tokio::time::Instant::now();
    let a = get(addr, "/vcek/v1/Genoa/cert_chain").await;
    assert_eq!(a.status, 200);
    // Lower bound only (never an upper bound): the delay happened.
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn pcs_paths_are_mounted_and_counted() {
    let addr = start(Faults::none()).await;
    let fmspc = hex::encode(locus_simulator::intel::profile::SIM_FMSPC);
    let a = get(addr, &format!("/tdx/certification/v4/tcb?fmspc={fmspc}")).await;
    assert_eq!(a.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("JSON");
    assert!(v.get("tcbInfo").is_some());
    let stats: serde_json::Value =
        serde_json::from_slice(&get(addr, "/_sim/stats").await.body).expect("JSON");
    assert_eq!(stats["requests"]["/tdx/certification/v4/tcb"], 1);
}

#[tokio::test]
async fn expired_certificate_fault_makes_kds_serve_an_expired_vcek() {
    let world = World::shared();
    let mut faults = Faults::none();
    faults.add("expired-certificate").expect("fault");
    let addr = start(faults).await;
    let a = get(addr, &vcek_path(&world, "snp-fra-1")).await;
    assert_eq!(a.status, 200);
    let vcek = x509_cert::Certificate::from_der(&a.body).expect("DER");
    let not_after = vcek
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    assert!(not_after < 1_700_000_000, "expired: {not_after}");
}
