//! The tamper matrix (issue 9, "every claim in the credential is proven"): named attacks on evidence bytes,
//! certificates and chains, CRLs, TDX collateral, the nonce, the binding, the confirmation key, every policy selector,
//! TCB baselines, residency, the geo-fence, endorsements, workload selection, tokens and identifiers. Each attack
//! expects its exact error code.
//!
//! Flow: one [`Fixture`] per test binary holds the simulator's SEV-SNP and TDX worlds, trust anchors built the way the
//! service builds them (pinned vendor roots plus the self-signed roots of `examples/sim-pki`), one configuration with a
//! workload per policy selector under attack, a challenge key, a WIT issuer and the real verifier service
//! (`service::run`, serving `examples/verifier.toml` on `127.0.0.1:0`). An [`Attempt`] is what an agent sends (nonce,
//! key, evidence, requested workload) plus what the verifier holds (collateral, endorsements); its verdict runs the
//! service's steps in-process — nonce MAC and age (`service::challenge`), appraisal (`appraise_snp` /
//! `appraise_tdx`), endorsement verification, the pure decision (`decide`) — at a fixed `now` inside every simulated
//! validity window. Token attacks go through `locus_wimse::RelyingParty` with a WIT signed by the verifier's own
//! issuing code; identifier attacks through `WorkloadId::parse`; the HTTP attacks through the running service.
//!
//! Every selector workload differs from a control workload (`snp-all`, `tdx-all`) in the one selector attacked, and
//! `untampered_requests_are_issued` proves the controls issue, so each refusal is the tamper's doing.
//!
//! `cargo test -p locus-tests --test tamper_matrix -- --nocapture` prints `TAMPER <name> -> <code>` per attack.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use locus_hw::snp::Product;
use locus_simulator::amd::pki::Hierarchy;
use locus_simulator::amd::report::{self, ReportFields};
use locus_simulator::intel::{
    CrlIssuer, IntelPki, PckVariant, SimTdxAttester, TdxCollateralFiles, TdxFault,
    SIM_VERIFICATION_TIME_UNIX,
};
use locus_simulator::profile::{current_tcb, low_tcb};
use locus_simulator::world::VcekValidity;
use locus_simulator::{Fault, World};
use locus_verifier::appraisal::x509::ParsedCert;
use locus_verifier::appraisal::{
    appraise_snp, appraise_tdx, Facts, SnpEndorsements, TdxCollateral, TdxCollateralParts,
    TrustAnchors, Verified,
};
use locus_verifier::config::{self, Config, EarFormat};
use locus_verifier::decision::{self, binding, decide, Inputs};
use locus_verifier::endorsement::{self, Endorsement, EndorsementClaims};
use locus_verifier::service::challenge::ChallengeKey;
use locus_verifier::service::issue::{self, IssueRequest};
use locus_verifier::service::state::simulator_roots;
use locus_verifier::Refusal;
use locus_wimse::jws::sign_compact;
use locus_wimse::wpt::WptRequest;
use locus_wimse::{
    b64, create_wpt, Ed25519SigningKey, Es256SigningKey, Jwk, Jwks, JwsSigner, PublicKey,
    RelyingParty, RpConfig, TrustDomain, TrustStore, WitIssuer, WitPolicy, WorkloadId,
};
use serde_json::{json, Value};

/// 2026-01-01T00:00:00Z: inside the simulated VCEK (2025..2032), CRL and TDX collateral (2025..2049) windows.
const NOW: u64 = SIM_VERIFICATION_TIME_UNIX;
/// When the relying party checks the tokens.
const RP_NOW: u64 = NOW + 5;
const TRUST_DOMAIN: &str = "locus.example";
/// The relying party's own origin (WPT `aud` = this + the request path).
const AUTHORITY: &str = "https://orders.locus.example";
const TARGET: &str = "/v1/orders";
const WIT_HEADER: &str = "Workload-Identity-Token";
const WPT_HEADER: &str = "Workload-Proof-Token";
const DAY: u64 = 86_400;

/// An attack's result: `Ok(what was issued or accepted)` or `Err(error code)`.
type Verdict = Result<String, String>;

/// One named attack and the code it must be refused with.
struct Attack {
    name: &'static str,
    want: &'static str,
    run: fn(&Fixture) -> Verdict,
}

fn code(r: Refusal) -> String {
    r.code.as_str().to_string()
}

fn wid(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/{name}")
}

fn examples_dir() -> std::path::PathBuf {
    locus_tests::paths::examples_dir()
}

/// Trust anchors as the service builds them for `trust.simulator = true`.
fn anchors_for(sim_pki: &std::path::Path) -> TrustAnchors {
    let roots = simulator_roots(sim_pki);
    assert!(
        !roots.is_empty(),
        "no simulator roots in {}",
        sim_pki.display()
    );
    TrustAnchors::pinned()
        .expect("pinned anchors")
        .danger_trust_simulator_roots(&roots)
}

/// The serial number of a certificate as the simulator's CRL builder takes it.
fn serial_of(der: &[u8]) -> u64 {
    let cert = ParsedCert::parse(der, "certificate").expect("certificate parses");
    cert.cert
        .tbs_certificate
        .serial_number
        .as_bytes()
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

// ---------------------------------------------------------------------------------------------------------------
// The fixture.

/// The real service serving `examples/verifier.toml` on loopback, in this process.
struct HttpService {
    rt: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
    _state: tempfile::TempDir,
}

impl HttpService {
    fn start() -> HttpService {
        let state = tempfile::tempdir().expect("tempdir");
        let text = locus_tests::paths::example_config_for(&state.path().join("state"), None)
            .expect("example config");
        let cfg = config::parse(&text, &examples_dir()).expect("example config validates");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        rt.spawn(async move {
            if let Err(e) =
                locus_verifier::service::run(listener, cfg, std::future::pending::<()>()).await
            {
                eprintln!("verifier service stopped: {e}");
            }
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        HttpService {
            rt,
            base: format!("http://{addr}"),
            client,
            _state: state,
        }
    }

    /// POST raw bytes; the status and the JSON body.
    fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.rt.block_on(async {
            let resp = self
                .client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST");
            let status = resp.status().as_u16();
            let text = resp.text().await.expect("body");
            let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, v)
        })
    }

    fn challenge(&self) -> Vec<u8> {
        let (status, v) = self.post("/v1/challenge", b"{}".to_vec());
        assert_eq!(status, 200, "challenge: {v}");
        b64::decode(v["nonce"].as_str().expect("nonce")).expect("nonce is base64url")
    }

    /// The service's answer as a verdict: the problem's code, or what it issued.
    fn attest(&self, body: Vec<u8>) -> Verdict {
        let (status, v) = self.post("/v1/attest", body);
        match v["code"].as_str() {
            Some(c) => Err(c.to_string()),
            None if status == 200 && v["wit"].is_string() => Ok("issued a WIT".into()),
            None => Err(format!("HTTP {status} without a code: {v}")),
        }
    }
}

struct Fixture {
    world: Arc<World>,
    intel: Arc<IntelPki>,
    anchors: TrustAnchors,
    /// The attack configuration as text (variants are derived from it) and validated.
    config_text: String,
    config: Arc<Config>,
    challenge: ChallengeKey,
    /// The data-centre operator whose location endorsements the configuration trusts.
    endorser: Es256SigningKey,
    /// Signs WITs with kid `k1`, as the verifier's active key.
    issuer: WitIssuer,
    http: HttpService,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::new)
}

impl Fixture {
    fn new() -> Fixture {
        let world = World::shared();
        let intel = world.intel();
        let sim_pki = examples_dir().join("sim-pki");
        let endorser = Es256SigningKey::generate().expect("endorser key");
        let config_text = attack_config(&world, &intel, &sim_pki, &endorser);
        let config = Arc::new(parse_config(&config_text));
        Fixture {
            anchors: anchors_for(&sim_pki),
            world,
            intel,
            config_text,
            config,
            challenge: ChallengeKey::new(&[7u8; 32]).expect("challenge key"),
            endorser,
            issuer: WitIssuer::new(
                Es256SigningKey::generate().expect("key").with_kid("k1"),
                Some("https://verifier.locus.example".into()),
            )
            .expect("issuer"),
            http: HttpService::start(),
        }
    }

    /// A variant of the attack configuration.
    fn config_variant(&self, from: &str, to: &str) -> Arc<Config> {
        let text = self.config_text.replace(from, to);
        assert_ne!(text, self.config_text, "variant {from:?} not applied");
        Arc::new(parse_config(&text))
    }

    fn tdx_attester(&self, profile: &str) -> SimTdxAttester {
        self.intel
            .attester_by_name(profile)
            .unwrap_or_else(|| panic!("TDX profile {profile}"))
    }

    /// A custom TDX platform: `profile` edited and renamed (it gets its own PCK and keys).
    fn custom_tdx(
        &self,
        profile: &str,
        name: &str,
        edit: impl FnOnce(&mut locus_simulator::intel::TdxProfile),
    ) -> SimTdxAttester {
        let mut p = self
            .intel
            .profile(profile)
            .unwrap_or_else(|| panic!("TDX profile {profile}"))
            .clone();
        p.name = name.to_string();
        edit(&mut p);
        self.intel.attester(&p)
    }

    fn platform_id(&self, profile: &str) -> Vec<u8> {
        self.world
            .profile(profile)
            .unwrap_or_else(|| panic!("profile {profile}"))
            .platform_id()
    }

    /// A COSE_Sign1 location endorsement.
    fn endorse(
        &self,
        key: &Es256SigningKey,
        platform: &[u8],
        (country, region, site): (&str, &str, &str),
        (not_before, not_after): (u64, u64),
    ) -> Vec<u8> {
        let claims = EndorsementClaims {
            platform,
            site,
            country,
            region: Some(region),
            not_before,
            not_after,
        };
        endorsement::encode(&claims, "dc-operator", |tbs| key.sign(tbs)).expect("endorsement")
    }

    fn relying_party(&self) -> RelyingParty {
        let trust = TrustStore::new().with_keys(
            TrustDomain::parse(TRUST_DOMAIN).expect("trust domain"),
            Jwks::new(vec![self.issuer.public_jwk()]),
        );
        let mut cfg = RpConfig::new(trust, vec![AUTHORITY.into()]);
        cfg.wit_policy = WitPolicy::wit_svid();
        RelyingParty::new(cfg).expect("relying party")
    }
}

fn parse_config(text: &str) -> Config {
    config::parse(text, std::path::Path::new("/"))
        .unwrap_or_else(|e| panic!("attack configuration: {e}\n{text}"))
}

// ---------------------------------------------------------------------------------------------------------------
// The attack configuration: one control workload per TEE pinning every genuine value, and one workload per selector
// that differs from its control in that selector only.

fn hex_list(bytes: &[u8]) -> String {
    format!("[\"{}\"]", hex::encode(bytes))
}

type Keys = Vec<(&'static str, String)>;

/// `base` with the entries of `over` replaced or added.
fn merged(base: &Keys, over: Keys) -> Keys {
    let mut out = base.clone();
    for (k, v) in over {
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

fn workload_toml(name: &str, tee: &str, top: &Keys, table: &str, selectors: &Keys) -> String {
    let mut s = format!(
        "\n[[workload]]\nid = \"{}\"\ntee = [\"{tee}\"]\n",
        wid(name)
    );
    for (k, v) in top {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s.push_str(&format!("[workload.{table}]\n"));
    for (k, v) in selectors {
        s.push_str(&format!("{k} = {v}\n"));
    }
    s
}

const GENOA_CURRENT: &str =
    "[trust.snp_current_tcb.genoa]\nbootloader = 9\ntee = 0\nsnp = 23\nmicrocode = 72\n";

fn attack_config(
    world: &World,
    intel: &IntelPki,
    sim_pki: &std::path::Path,
    endorser: &Es256SigningKey,
) -> String {
    let snp = world
        .profile("snp-fra-1")
        .and_then(|p| p.snp())
        .expect("snp-fra-1");
    let tdx = intel.profile("tdx-fra-1").expect("tdx-fra-1");
    let pid = |name: &str| hex::encode(world.profile(name).expect("profile").platform_id());
    let mut text = format!(
        r#"[server]
issuer = "https://verifier.locus.example"
state_dir = "/nonexistent/locus-tamper-matrix"

[credentials]
trust_domain = "{TRUST_DOMAIN}"

[trust]
simulator = true
simulator_pki = {sim_pki:?}
snp_allowed_tcb = ["UpToDate"]
tdx_allowed_tcb = ["UpToDate"]

[trust.snp_current_tcb.milan]
bootloader = 4
tee = 0
snp = 23
microcode = 213

{GENOA_CURRENT}
[trust.snp_current_tcb.turin]
fmc = 1
bootloader = 1
tee = 0
snp = 3
microcode = 74

[[site]]
name = "fra-1"
country = "DE"
region = "DE-HE"

[[site]]
name = "iad-1"
country = "US"
region = "US-VA"

[[zone]]
name = "eu"
countries = ["DE", "FR", "NL"]

[[platform]]
tee = "sev-snp"
id = "{snp_fra}"
site = "fra-1"

[[platform]]
tee = "sev-snp"
id = "{snp_iad}"
site = "iad-1"

[[platform]]
tee = "tdx"
id = "{tdx_fra}"
site = "fra-1"

[[platform]]
tee = "tdx"
id = "{tdx_iad}"
site = "iad-1"

[[endorser]]
name = "dc-operator"
public_key = '{endorser_jwk}'
"#,
        sim_pki = sim_pki.display().to_string(),
        snp_fra = pid("snp-fra-1"),
        snp_iad = pid("snp-iad-1"),
        tdx_fra = pid("tdx-fra-1"),
        tdx_iad = pid("tdx-iad-1"),
        endorser_jwk = endorser.public_jwk().to_value(),
    );

    let optional: Keys = vec![("residency", "\"optional\"".into())];
    let snp_base: Keys = vec![
        ("measurement", hex_list(&snp.measurement)),
        ("host_data", hex_list(&snp.host_data)),
        ("id_key_digest", hex_list(&snp.id_key_digest)),
        ("family_id", hex_list(&snp.family_id)),
        ("image_id", hex_list(&snp.image_id)),
        ("min_guest_svn", snp.guest_svn.to_string()),
        ("vmpl", "[0]".into()),
    ];
    let snp_workloads: Vec<(&str, Keys, Keys)> = vec![
        ("snp-all", optional.clone(), vec![]),
        (
            "snp-measurement",
            optional.clone(),
            vec![("measurement", hex_list(&[0xee; 48]))],
        ),
        (
            "snp-host-data",
            optional.clone(),
            vec![("host_data", hex_list(&[0xee; 32]))],
        ),
        (
            "snp-id-key",
            optional.clone(),
            vec![("id_key_digest", hex_list(&[0xee; 48]))],
        ),
        (
            "snp-author-key",
            optional.clone(),
            vec![("author_key_digest", hex_list(&[0xee; 48]))],
        ),
        (
            "snp-family",
            optional.clone(),
            vec![("family_id", hex_list(&[0xee; 16]))],
        ),
        (
            "snp-image",
            optional.clone(),
            vec![("image_id", hex_list(&[0xee; 16]))],
        ),
        (
            "snp-guest-svn",
            optional.clone(),
            vec![("min_guest_svn", (snp.guest_svn + 1).to_string())],
        ),
        (
            "snp-abi",
            optional.clone(),
            vec![("min_policy_abi", "\"1.51\"".into())],
        ),
        (
            "snp-no-smt",
            optional.clone(),
            vec![("require_smt_disabled", "true".into())],
        ),
        (
            "snp-tsme",
            optional.clone(),
            vec![("require_tsme", "true".into())],
        ),
        (
            "snp-alias-check",
            optional.clone(),
            vec![("require_alias_check", "true".into())],
        ),
        ("snp-vmpl1", optional.clone(), vec![("vmpl", "[1]".into())]),
        (
            "snp-min-tcb",
            merged(
                &optional,
                vec![(
                    "min_tcb",
                    "{ bootloader = 4, tee = 0, snp = 23, microcode = 214 }".into(),
                )],
            ),
            vec![],
        ),
        (
            "snp-min-tcb-milan",
            merged(
                &optional,
                vec![("min_tcb_by_product", "{ milan = { snp = 24 } }".into())],
            ),
            vec![],
        ),
        (
            "snp-outofdate-floor",
            merged(
                &optional,
                vec![
                    ("snp_allowed_tcb", "[\"UpToDate\", \"OutOfDate\"]".into()),
                    (
                        "min_tcb",
                        "{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }".into(),
                    ),
                ],
            ),
            vec![],
        ),
        ("snp-resident", vec![], vec![]),
        (
            "snp-eu",
            vec![("geofence", "{ zones = [\"eu\"] }".into())],
            vec![],
        ),
        (
            "snp-us",
            vec![("geofence", "{ countries = [\"US\"] }".into())],
            vec![],
        ),
    ];
    for (name, top, over) in snp_workloads {
        text.push_str(&workload_toml(
            name,
            "sev-snp",
            &top,
            "sev-snp",
            &merged(&snp_base, over),
        ));
    }

    let td_attributes = u64::from_le_bytes(tdx.td_attributes);
    let tdx_base: Keys = vec![
        ("mr_td", hex_list(&tdx.mr_td)),
        ("rtmr0", hex_list(&tdx.rtmr[0])),
        ("rtmr1", hex_list(&tdx.rtmr[1])),
        ("rtmr2", hex_list(&tdx.rtmr[2])),
        ("rtmr3", hex_list(&tdx.rtmr[3])),
        ("mr_config_id", hex_list(&tdx.mr_config_id)),
        ("mr_owner", hex_list(&tdx.mr_owner)),
        ("mr_owner_config", hex_list(&tdx.mr_owner_config)),
        ("xfam", hex_list(&tdx.xfam)),
        ("td_attributes_mask", "\"ffffffffffffffff\"".into()),
        ("td_attributes_value", format!("\"{td_attributes:016x}\"")),
        ("pck_sgx_type", "[1]".into()),
        ("pck_dynamic_platform", "false".into()),
    ];
    let other48 = hex_list(&[0xee; 48]);
    let tdx_workloads: Vec<(&str, Keys, Keys)> = vec![
        ("tdx-all", optional.clone(), vec![]),
        (
            "tdx-mr-td",
            optional.clone(),
            vec![("mr_td", other48.clone())],
        ),
        (
            "tdx-rtmr0",
            optional.clone(),
            vec![("rtmr0", other48.clone())],
        ),
        (
            "tdx-rtmr1",
            optional.clone(),
            vec![("rtmr1", other48.clone())],
        ),
        (
            "tdx-rtmr2",
            optional.clone(),
            vec![("rtmr2", other48.clone())],
        ),
        (
            "tdx-rtmr3",
            optional.clone(),
            vec![("rtmr3", other48.clone())],
        ),
        (
            "tdx-mr-config-id",
            optional.clone(),
            vec![("mr_config_id", other48.clone())],
        ),
        (
            "tdx-mr-owner",
            optional.clone(),
            vec![("mr_owner", other48.clone())],
        ),
        (
            "tdx-mr-owner-config",
            optional.clone(),
            vec![("mr_owner_config", other48.clone())],
        ),
        (
            "tdx-xfam",
            optional.clone(),
            vec![("xfam", hex_list(&[0xee; 8]))],
        ),
        (
            // SEPT_VE_DISABLE (bit 28) required clear: the simulated TDs set it.
            "tdx-attributes",
            optional.clone(),
            vec![
                ("td_attributes_mask", "\"0000000010000000\"".into()),
                ("td_attributes_value", "\"0000000000000000\"".into()),
            ],
        ),
        (
            "tdx-sgx-type",
            optional.clone(),
            vec![("pck_sgx_type", "[0]".into())],
        ),
        (
            "tdx-dynamic-platform",
            optional.clone(),
            vec![("pck_dynamic_platform", "true".into())],
        ),
        (
            "tdx-allow-outofdate",
            merged(
                &optional,
                vec![("tdx_allowed_tcb", "[\"UpToDate\", \"OutOfDate\"]".into())],
            ),
            vec![],
        ),
        (
            "tdx-eu",
            vec![("geofence", "{ zones = [\"eu\"] }".into())],
            vec![],
        ),
    ];
    for (name, top, over) in tdx_workloads {
        text.push_str(&workload_toml(
            name,
            "tdx",
            &top,
            "tdx",
            &merged(&tdx_base, over),
        ));
    }
    text
}

// ---------------------------------------------------------------------------------------------------------------
// An attempt: what an agent sends and what the verifier holds, judged the way the service judges it.

enum Evidence {
    None,
    Snp {
        report: Vec<u8>,
        endorsements: SnpEndorsements,
    },
    Tdx {
        quote: Vec<u8>,
        collateral: Box<TdxCollateralFiles>,
    },
}

struct Attempt {
    config: Arc<Config>,
    anchors: TrustAnchors,
    nonce: Vec<u8>,
    agent: Es256SigningKey,
    jwk: Jwk,
    workload: Option<String>,
    evidence: Evidence,
    /// COSE_Sign1 endorsements in the verifier's endorsements directory.
    endorsements: Vec<Vec<u8>>,
    now: u64,
}

impl Attempt {
    /// A fresh challenge and agent key, requesting `workload` (a short name, or `None`).
    fn new(fx: &Fixture, workload: Option<&str>) -> Attempt {
        let nonce = fx.challenge.issue(NOW).expect("nonce").to_vec();
        Attempt::with_nonce(fx, nonce, workload)
    }

    fn with_nonce(fx: &Fixture, nonce: Vec<u8>, workload: Option<&str>) -> Attempt {
        let agent = Es256SigningKey::generate().expect("agent key");
        let jwk = Jwk::new(agent.public_key());
        Attempt {
            config: fx.config.clone(),
            anchors: fx.anchors.clone(),
            nonce,
            agent,
            jwk,
            workload: workload.map(wid),
            evidence: Evidence::None,
            endorsements: Vec::new(),
            now: NOW,
        }
    }

    /// Bind the evidence made next to this key instead.
    fn key(mut self, jwk: Jwk) -> Attempt {
        self.jwk = jwk;
        self
    }

    fn report_data(&self) -> [u8; 64] {
        binding::report_data(&self.nonce, &self.jwk.thumbprint_sha256())
    }

    /// SEV-SNP evidence of `profile` (with `faults`) bound to this attempt, with the VCEK/ASK/ARK it ships and the
    /// verifier's ARK-signed CRL.
    fn snp(mut self, fx: &Fixture, profile: &str, faults: &[Fault]) -> Attempt {
        let mut att = fx.world.snp_attester(profile).expect("SNP profile");
        for f in faults {
            att = att.with_fault(*f);
        }
        let ev = att.report(&self.report_data()).expect("SNP report");
        let product = att.effective_profile().product;
        self.evidence = Evidence::Snp {
            report: ev.report,
            endorsements: SnpEndorsements {
                vek_der: Some(ev.vcek_der),
                ask_der: Some(ev.ask_der),
                ark_der: Some(ev.ark_der),
                crl_der: Some(fx.world.amd_crl_der(product).expect("CRL")),
                client_crl_der: None,
            },
        };
        self
    }

    /// Genuinely signed SEV-SNP evidence of `profile` with report fields edited before signing: what a platform in
    /// that state (another VMPL, policy, PLATFORM_INFO, image) would produce.
    fn snp_resigned(mut self, fx: &Fixture, profile: &str, edit: fn(&mut ReportFields)) -> Attempt {
        self = self.snp(fx, profile, &[]);
        let att = fx.world.snp_attester(profile).expect("SNP profile");
        let mut fields = att.report_fields(&self.report_data());
        edit(&mut fields);
        let p = att.effective_profile();
        let pki = fx
            .world
            .amd_pki(p.product, Hierarchy::Genuine)
            .expect("AMD PKI");
        let mut raw = report::encode_unsigned(&fields).expect("encode report");
        report::sign(&mut raw, &pki.vcek_key(&p.chip_id, &p.reported_tcb)).expect("sign report");
        *self.snp_report() = raw.to_vec();
        self
    }

    fn tdx(mut self, att: &SimTdxAttester) -> Attempt {
        self.evidence = Evidence::Tdx {
            quote: att.quote(&self.report_data()),
            collateral: Box::new(att.collateral()),
        };
        self
    }

    fn snp_report(&mut self) -> &mut Vec<u8> {
        match &mut self.evidence {
            Evidence::Snp { report, .. } => report,
            _ => panic!("not SEV-SNP evidence"),
        }
    }

    fn snp_endorsements(&mut self) -> &mut SnpEndorsements {
        match &mut self.evidence {
            Evidence::Snp { endorsements, .. } => endorsements,
            _ => panic!("not SEV-SNP evidence"),
        }
    }

    fn tdx_quote(&mut self) -> &mut Vec<u8> {
        match &mut self.evidence {
            Evidence::Tdx { quote, .. } => quote,
            _ => panic!("not TDX evidence"),
        }
    }

    fn tdx_collateral(&mut self) -> &mut TdxCollateralFiles {
        match &mut self.evidence {
            Evidence::Tdx { collateral, .. } => collateral,
            _ => panic!("not TDX evidence"),
        }
    }

    fn appraise(&self) -> Result<Verified<Facts>, Refusal> {
        match &self.evidence {
            Evidence::None => panic!("attempt without evidence"),
            Evidence::Snp {
                report,
                endorsements,
            } => appraise_snp(report, endorsements, &self.anchors, self.now).map(Verified::from),
            Evidence::Tdx { quote, collateral } => {
                let collateral = TdxCollateral::from_parts(TdxCollateralParts {
                    tcb_info_json: &collateral.tcb_info_json,
                    tcb_info_issuer_chain_pem: &collateral.tcb_info_issuer_chain_pem,
                    qe_identity_json: &collateral.qe_identity_json,
                    qe_identity_issuer_chain_pem: &collateral.qe_identity_issuer_chain_pem,
                    pck_crl_der: &collateral.pck_crl_der,
                    pck_crl_issuer_chain_pem: &collateral.pck_crl_issuer_chain_pem,
                    root_ca_crl_der: &collateral.root_ca_crl_der,
                })?;
                appraise_tdx(quote, &collateral, &self.anchors, self.now).map(Verified::from)
            }
        }
    }

    /// The service's steps: nonce, appraisal, endorsements, decision; `f` sees the claims to issue.
    fn decide<R>(
        &self,
        fx: &Fixture,
        f: impl FnOnce(&decision::Claims<'_>) -> R,
    ) -> Result<R, String> {
        fx.challenge
            .check(&self.nonce, self.now, self.config.server.challenge_ttl)
            .map_err(code)?;
        let verified = self.appraise().map_err(code)?;
        let endorsements: Vec<Endorsement> = self
            .endorsements
            .iter()
            .filter_map(|b| Endorsement::parse_and_verify(b, &self.config.endorsers).ok())
            .collect();
        let d = decide(&Inputs {
            config: &self.config,
            endorsements: &endorsements,
            verified: &verified,
            request: decision::Request {
                nonce: &self.nonce,
                jwk: &self.jwk,
                workload: self.workload.as_deref(),
                proximity: &[],
            },
            now: self.now,
        });
        d.outcome.map(|claims| f(&claims)).map_err(code)
    }

    fn verdict(&self, fx: &Fixture) -> Verdict {
        self.decide(fx, |c| {
            format!(
                "issued {} (tcb_status {})",
                c.workload.id.as_str(),
                c.tee.tcb_status
            )
        })
    }
}

fn snp(fx: &Fixture, profile: &str, workload: &str) -> Attempt {
    Attempt::new(fx, Some(workload)).snp(fx, profile, &[])
}

fn snp_fault(fx: &Fixture, profile: &str, workload: &str, fault: Fault) -> Attempt {
    Attempt::new(fx, Some(workload)).snp(fx, profile, &[fault])
}

fn tdx(fx: &Fixture, profile: &str, workload: &str) -> Attempt {
    Attempt::new(fx, Some(workload)).tdx(&fx.tdx_attester(profile))
}

fn tdx_fault(fx: &Fixture, profile: &str, workload: &str, fault: TdxFault) -> Attempt {
    Attempt::new(fx, Some(workload)).tdx(&fx.tdx_attester(profile).with_fault(fault))
}

/// `snp-unregistered` requesting `workload`, with these endorsements in the verifier's directory.
fn unregistered_with(fx: &Fixture, workload: &str, endorsements: Vec<Vec<u8>>) -> Verdict {
    let mut a = snp(fx, "snp-unregistered", workload);
    a.endorsements = endorsements;
    a.verdict(fx)
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens: a WIT the verifier's issuing code signed, presented with a WPT to a relying party.

struct Credential {
    wit: String,
    agent: Es256SigningKey,
    rp: RelyingParty,
}

fn credential(fx: &Fixture) -> Credential {
    let a = snp(fx, "snp-fra-1", "snp-all");
    let wit = a
        .decide(fx, |claims| {
            issue::issue(
                &fx.issuer,
                fx.issuer.key(),
                &IssueRequest {
                    claims,
                    cnf: &a.jwk,
                    nonce: &a.nonce,
                    now: NOW,
                    with_ear: false,
                    ear_format: EarFormat::Jwt,
                },
            )
        })
        .unwrap_or_else(|c| panic!("the control credential is refused: {c}"))
        .unwrap_or_else(|r| panic!("the control credential is not signed: {r}"))
        .wit;
    Credential {
        wit,
        agent: a.agent,
        rp: fx.relying_party(),
    }
}

impl Credential {
    fn wpt(&self, signer: &dyn JwsSigner, aud: &str, exp: u64) -> String {
        create_wpt(signer, &WptRequest::new(aud, &self.wit, exp)).expect("WPT")
    }

    fn own_wpt(&self) -> String {
        self.wpt(&self.agent, &format!("{AUTHORITY}{TARGET}"), RP_NOW + 60)
    }

    fn present(&self, headers: &[(&str, &str)], now: u64) -> Verdict {
        self.rp
            .verify_request(headers.iter().copied(), TARGET, now)
            .map(|a| format!("authenticated {}", a.id.as_str()))
            .map_err(|e| e.code().to_string())
    }

    fn present_pair(&self, wit: &str, wpt: &str) -> Verdict {
        self.present(&[(WIT_HEADER, wit), (WPT_HEADER, wpt)], RP_NOW)
    }
}

fn jws_parts(token: &str) -> [String; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    [parts[0].into(), parts[1].into(), parts[2].into()]
}

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&b64::decode(part).expect("base64url")).expect("JSON")
}

/// Rewrite the claims of a JWS, keeping its header and signature.
fn rewrite_claims(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let [h, c, s] = jws_parts(token);
    let mut claims = b64_json(&c);
    edit(&mut claims);
    format!("{h}.{}.{s}", b64::encode(claims.to_string()))
}

/// Re-sign the (edited) header and claims of a JWS with another key.
fn resign(token: &str, signer: &dyn JwsSigner, edit_header: impl FnOnce(&mut Value)) -> String {
    let [h, c, _] = jws_parts(token);
    let mut header = b64_json(&h);
    edit_header(&mut header);
    sign_compact(signer, &header, &b64_json(&c)).expect("sign")
}

fn flip_signature(token: &str) -> String {
    let [h, c, s] = jws_parts(token);
    let mut sig = b64::decode(&s).expect("signature");
    sig[10] ^= 0x01;
    format!("{h}.{c}.{}", b64::encode(sig))
}

fn parse_id(text: &str) -> Verdict {
    WorkloadId::parse(text)
        .map(|id| format!("parsed {}", id.as_str()))
        .map_err(|e| e.code().to_string())
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP bodies.

fn attest_body(nonce: &[u8], ev: &locus_hw::attester::Evidence, jwk: &Value, tee: &str) -> Value {
    json!({
        "nonce": b64::encode(nonce),
        "tee": tee,
        "evidence": b64::encode(&ev.raw),
        "certs": ev.certs.iter().map(b64::encode).collect::<Vec<_>>(),
        "jwk": jwk,
        "workload": wid("model-server"),
    })
}

fn sim_evidence(
    fx: &Fixture,
    profile: &str,
    report_data: &[u8; 64],
) -> locus_hw::attester::Evidence {
    use locus_hw::attester::Attester as _;
    if profile.starts_with("snp") {
        fx.world
            .snp_attester(profile)
            .expect("SNP profile")
            .attest(report_data)
            .expect("attest")
    } else {
        fx.world
            .tdx_attester(profile)
            .expect("TDX profile")
            .attest(report_data)
            .expect("attest")
    }
}

/// A genuine request to the running service for `profile`, bound to a fresh challenge and key; `edit` tampers with it.
fn http_attest(fx: &Fixture, profile: &str, tee: &str, edit: fn(&mut Value)) -> Verdict {
    let nonce = fx.http.challenge();
    let agent = Es256SigningKey::generate().expect("agent key");
    let jwk = Jwk::new(agent.public_key());
    let ev = sim_evidence(
        fx,
        profile,
        &binding::report_data(&nonce, &jwk.thumbprint_sha256()),
    );
    let mut body = attest_body(&nonce, &ev, &jwk.to_value(), tee);
    edit(&mut body);
    fx.http.attest(body.to_string().into_bytes())
}

// ---------------------------------------------------------------------------------------------------------------
// The matrix.

macro_rules! attacks {
    ($($name:ident => $want:literal, $run:expr;)*) => {
        vec![$(Attack { name: stringify!($name), want: $want, run: $run }),*]
    };
}

fn matrix() -> Vec<Attack> {
    attacks! {
        // Evidence bytes: SEV-SNP.
        snp_measurement_byte_flipped => "signature_invalid", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_report()[0x90] ^= 0x01;
            a.verdict(fx)
        };
        snp_report_data_rewritten_to_bind_the_attackers_key => "signature_invalid", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let attacker = Jwk::new(Es256SigningKey::generate().expect("key").public_key());
            let rd = binding::report_data(&a.nonce, &attacker.thumbprint_sha256());
            a.snp_report()[0x50..0x90].copy_from_slice(&rd);
            a.key(attacker).verdict(fx)
        };
        snp_signature_bit_flipped => "signature_invalid", |fx| {
            snp_fault(fx, "snp-fra-1", "snp-all", Fault::BadSignature).verdict(fx)
        };
        snp_report_truncated => "evidence_malformed", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_report().truncate(1000);
            a.verdict(fx)
        };
        snp_report_version_1 => "unsupported_version", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_report()[0..4].copy_from_slice(&1u32.to_le_bytes());
            a.verdict(fx)
        };
        snp_policy_reserved_bit_17_cleared_and_resigned => "evidence_malformed", |fx| {
            Attempt::new(fx, Some("snp-all"))
                .snp_resigned(fx, "snp-fra-1", |f| f.policy &= !(1 << 17))
                .verdict(fx)
        };
        snp_nonzero_reserved_byte_after_the_signature => "evidence_malformed", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_report()[0x330] = 0x01;
            a.verdict(fx)
        };
        snp_signature_algo_changed => "evidence_malformed", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_report()[0x34] = 2;
            a.verdict(fx)
        };
        snp_mask_chip_key_set => "signature_invalid", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_report()[0x48] |= 0b10;
            a.verdict(fx)
        };
        snp_chip_id_rewritten_to_a_registered_chip => "tcb_mismatch", |fx| {
            let mut a = snp(fx, "snp-unregistered", "snp-eu");
            let fra = fx.platform_id("snp-fra-1");
            a.snp_report()[0x1A0..0x1E0].copy_from_slice(&fra);
            a.verdict(fx)
        };
        snp_low_reported_tcb_rewritten_to_current => "tcb_mismatch", |fx| {
            let mut a = snp_fault(fx, "snp-fra-1", "snp-all", Fault::LowTcb);
            let raw = report::tcb_raw(&current_tcb(Product::Milan), Product::Milan);
            a.snp_report()[0x180..0x188].copy_from_slice(&raw.to_le_bytes());
            a.verdict(fx)
        };
        snp_cpuid_rewritten_to_another_product => "chain_untrusted", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let (fam, model, step) = report::cpuid(Product::Genoa);
            a.snp_report()[0x188..0x18B].copy_from_slice(&[fam, model, step]);
            a.verdict(fx)
        };
        // Evidence bytes: TDX.
        tdx_mr_td_byte_flipped => "signature_invalid", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            a.tdx_quote()[48 + 136] ^= 0x01;
            a.verdict(fx)
        };
        tdx_report_data_rewritten_to_bind_the_attackers_key => "signature_invalid", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            let attacker = Jwk::new(Es256SigningKey::generate().expect("key").public_key());
            let rd = binding::report_data(&a.nonce, &attacker.thumbprint_sha256());
            a.tdx_quote()[48 + 520..48 + 584].copy_from_slice(&rd);
            a.key(attacker).verdict(fx)
        };
        tdx_qe_report_data_tail_not_zero => "signature_invalid", |fx| {
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::QeReportDataTail).verdict(fx)
        };
        tdx_signature_bit_flipped => "signature_invalid", |fx| {
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::BadSignature).verdict(fx)
        };
        tdx_nonzero_trailing_bytes => "evidence_malformed", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            a.tdx_quote().extend_from_slice(&[0, 0, 0x01]);
            a.verdict(fx)
        };
        tdx_quote_truncated => "evidence_malformed", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            a.tdx_quote().truncate(700);
            a.verdict(fx)
        };
        tdx_quote_version_3 => "unsupported_version", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            a.tdx_quote()[0..2].copy_from_slice(&3u16.to_le_bytes());
            a.verdict(fx)
        };
        // Certificates and chains.
        snp_vcek_of_another_chip => "tcb_mismatch", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let mut chip = [0u8; 64];
            chip.copy_from_slice(&fx.platform_id("snp-iad-1"));
            let vcek = fx.world.vcek_der_for(Hierarchy::Genuine, Product::Milan, &chip,
                &current_tcb(Product::Milan), VcekValidity::Current).expect("VCEK");
            a.snp_endorsements().vek_der = Some(vcek.as_ref().clone());
            a.verdict(fx)
        };
        snp_vcek_of_this_chip_at_another_tcb => "tcb_mismatch", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let mut chip = [0u8; 64];
            chip.copy_from_slice(&fx.platform_id("snp-fra-1"));
            let vcek = fx.world.vcek_der_for(Hierarchy::Genuine, Product::Milan, &chip,
                &low_tcb(Product::Milan), VcekValidity::Current).expect("VCEK");
            a.snp_endorsements().vek_der = Some(vcek.as_ref().clone());
            a.verdict(fx)
        };
        snp_look_alike_foreign_chain => "chain_untrusted", |fx| {
            snp_fault(fx, "snp-fra-1", "snp-all", Fault::ForeignChain).verdict(fx)
        };
        snp_expired_vcek => "certificate_expired", |fx| {
            snp_fault(fx, "snp-fra-1", "snp-all", Fault::ExpiredCertificate).verdict(fx)
        };
        snp_simulator_root_without_simulator_trust => "simulated_evidence_untrusted", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.anchors = TrustAnchors::pinned().expect("pinned");
            a.verdict(fx)
        };
        snp_simulated_facts_under_a_config_that_distrusts_the_simulator => "simulated_evidence_untrusted", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.config = fx.config_variant("simulator = true", "simulator = false");
            a.verdict(fx)
        };
        snp_vcek_missing => "collateral_missing", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_endorsements().vek_der = None;
            a.verdict(fx)
        };
        snp_ask_of_another_product => "chain_untrusted", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_endorsements().ask_der = Some(fx.world.amd_ask_der(Product::Genoa).expect("ASK"));
            a.verdict(fx)
        };
        snp_ark_of_another_product => "chain_untrusted", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_endorsements().ark_der = Some(fx.world.amd_ark_der(Product::Genoa).expect("ARK"));
            a.verdict(fx)
        };
        snp_vlek_report_without_its_asvk => "collateral_missing", |fx| {
            let mut a = snp(fx, "snp-vlek", "snp-all");
            a.snp_endorsements().ask_der = None;
            a.verdict(fx)
        };
        snp_vlek_report_presented_with_a_vcek => "chain_untrusted", |fx| {
            let mut a = snp(fx, "snp-vlek", "snp-all");
            let mut chip = [0u8; 64];
            chip.copy_from_slice(&fx.platform_id("snp-fra-1"));
            let vcek = fx.world.vcek_der_for(Hierarchy::Genuine, Product::Milan, &chip,
                &current_tcb(Product::Milan), VcekValidity::Current).expect("VCEK");
            a.snp_endorsements().vek_der = Some(vcek.as_ref().clone());
            a.snp_endorsements().ask_der = Some(fx.world.amd_ask_der(Product::Milan).expect("ASK"));
            a.verdict(fx)
        };
        tdx_look_alike_foreign_chain => "chain_untrusted", |fx| {
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::ForeignChain).verdict(fx)
        };
        tdx_expired_pck => "certificate_expired", |fx| {
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::ExpiredPck).verdict(fx)
        };
        tdx_simulator_root_without_simulator_trust => "simulated_evidence_untrusted", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            a.anchors = TrustAnchors::pinned().expect("pinned");
            a.verdict(fx)
        };
        // CRLs.
        snp_ask_revoked_in_the_verifiers_crl => "revoked", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let serial = serial_of(a.snp_endorsements().ask_der.as_deref().expect("ASK"));
            let pki = fx.world.amd_pki(Product::Milan, Hierarchy::Genuine).expect("PKI");
            a.snp_endorsements().crl_der = Some(pki.crl_revoking(&[serial], NOW - DAY, NOW + DAY).expect("CRL"));
            a.verdict(fx)
        };
        snp_vcek_revoked_in_the_verifiers_crl => "revoked", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let serial = serial_of(a.snp_endorsements().vek_der.as_deref().expect("VCEK"));
            let pki = fx.world.amd_pki(Product::Milan, Hierarchy::Genuine).expect("PKI");
            a.snp_endorsements().crl_der = Some(pki.crl_revoking(&[serial], NOW - DAY, NOW + DAY).expect("CRL"));
            a.verdict(fx)
        };
        snp_no_crl_at_all => "collateral_missing", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_endorsements().crl_der = None;
            a.verdict(fx)
        };
        snp_older_client_crl_hiding_a_revocation => "revoked", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let serial = serial_of(a.snp_endorsements().ask_der.as_deref().expect("ASK"));
            let pki = fx.world.amd_pki(Product::Milan, Hierarchy::Genuine).expect("PKI");
            let e = a.snp_endorsements();
            e.crl_der = Some(pki.crl_revoking(&[serial], NOW - DAY, NOW + DAY).expect("CRL"));
            e.client_crl_der = Some(pki.crl_revoking(&[], NOW - 2 * DAY, NOW + DAY).expect("CRL"));
            a.verdict(fx)
        };
        snp_newer_client_crl_revoking => "revoked", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let serial = serial_of(a.snp_endorsements().ask_der.as_deref().expect("ASK"));
            let pki = fx.world.amd_pki(Product::Milan, Hierarchy::Genuine).expect("PKI");
            let e = a.snp_endorsements();
            e.crl_der = Some(pki.crl_revoking(&[], NOW - 2 * DAY, NOW + DAY).expect("CRL"));
            e.client_crl_der = Some(pki.crl_revoking(&[serial], NOW - DAY, NOW + DAY).expect("CRL"));
            a.verdict(fx)
        };
        snp_verifiers_crl_signed_by_another_ark => "chain_untrusted", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.snp_endorsements().crl_der = Some(fx.world.amd_crl_der(Product::Genoa).expect("CRL"));
            a.verdict(fx)
        };
        snp_verifiers_crl_expired => "collateral_expired", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let pki = fx.world.amd_pki(Product::Milan, Hierarchy::Genuine).expect("PKI");
            a.snp_endorsements().crl_der = Some(pki.crl_revoking(&[], NOW - 2 * DAY, NOW - DAY).expect("CRL"));
            a.verdict(fx)
        };
        snp_verifiers_crl_at_exactly_its_next_update => "collateral_expired", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let pki = fx.world.amd_pki(Product::Milan, Hierarchy::Genuine).expect("PKI");
            a.snp_endorsements().crl_der = Some(pki.crl_revoking(&[], NOW - DAY, NOW).expect("CRL"));
            a.verdict(fx)
        };
        snp_verifiers_crl_not_yet_valid => "collateral_expired", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let pki = fx.world.amd_pki(Product::Milan, Hierarchy::Genuine).expect("PKI");
            a.snp_endorsements().crl_der = Some(pki.crl_revoking(&[], NOW + DAY, NOW + 2 * DAY).expect("CRL"));
            a.verdict(fx)
        };
        snp_only_a_client_crl_of_another_ark => "collateral_missing", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            let e = a.snp_endorsements();
            e.crl_der = None;
            e.client_crl_der = Some(fx.world.amd_crl_der(Product::Genoa).expect("CRL"));
            a.verdict(fx)
        };
        tdx_pck_crl_revoking_the_genuine_pck => "revoked", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            let profile = fx.intel.profile("tdx-fra-1").expect("profile");
            let serial = fx.intel.pck_serial(profile, PckVariant::Genuine);
            a.tdx_collateral().pck_crl_der =
                fx.intel.issue_crl(CrlIssuer::PlatformCa, NOW - DAY, NOW + 30 * DAY, &[serial]);
            a.verdict(fx)
        };
        tdx_pck_crl_expired => "collateral_expired", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            a.tdx_collateral().pck_crl_der =
                fx.intel.issue_crl(CrlIssuer::PlatformCa, NOW - 2 * DAY, NOW - DAY, &[]);
            a.verdict(fx)
        };
        tdx_revoked_pck => "revoked", |fx| {
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::RevokedPck).verdict(fx)
        };
        // TDX collateral.
        tdx_stale_tcb_info_and_qe_identity => "collateral_expired", |fx| {
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::StaleCollateral).verdict(fx)
        };
        tdx_collateral_for_another_fmspc => "collateral_missing", |fx| {
            let att = fx.custom_tdx("tdx-fra-1", "tdx-other-fmspc", |p| p.fmspc[5] ^= 0x01);
            Attempt::new(fx, Some("tdx-all")).tdx(&att).verdict(fx)
        };
        tdx_collateral_for_another_pce_id => "collateral_missing", |fx| {
            let att = fx.custom_tdx("tdx-fra-1", "tdx-other-pce", |p| p.pce_id = [0x00, 0x01]);
            Attempt::new(fx, Some("tdx-all")).tdx(&att).verdict(fx)
        };
        tdx_platform_below_every_tcb_level => "tcb_not_supported", |fx| {
            tdx(fx, "tdx-tcb-not-supported", "tdx-all").verdict(fx)
        };
        tdx_out_of_date_platform => "tcb_status_rejected", |fx| {
            tdx(fx, "tdx-outofdate", "tdx-all").verdict(fx)
        };
        tdx_out_of_date_module => "tcb_status_rejected", |fx| {
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::LowTcb).verdict(fx)
        };
        tdx_tcb_info_rewritten_to_up_to_date => "signature_invalid", |fx| {
            let mut a = tdx(fx, "tdx-outofdate", "tdx-allow-outofdate");
            let c = a.tdx_collateral();
            let rewritten = c.tcb_info_json.replace("\"OutOfDate\"", "\"UpToDate\"");
            assert_ne!(rewritten, c.tcb_info_json, "no OutOfDate level to rewrite");
            c.tcb_info_json = rewritten;
            a.workload = Some(wid("tdx-all"));
            a.verdict(fx)
        };
        tdx_qe_identity_rewritten_to_accept_older_qes => "signature_invalid", |fx| {
            let mut a = tdx(fx, "tdx-fra-1", "tdx-all");
            let c = a.tdx_collateral();
            let rewritten = c.qe_identity_json.replace("\"isvsvn\":4", "\"isvsvn\":0");
            assert_ne!(rewritten, c.qe_identity_json, "no isvsvn to rewrite");
            c.qe_identity_json = rewritten;
            a.verdict(fx)
        };
        // The nonce (the service's challenge check).
        nonce_garbage => "nonce_invalid", |fx| {
            Attempt::with_nonce(fx, vec![0x42; 40], Some("snp-all")).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        nonce_truncated => "nonce_invalid", |fx| {
            let n = fx.challenge.issue(NOW).expect("nonce");
            Attempt::with_nonce(fx, n[..39].to_vec(), Some("snp-all")).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        nonce_issued_by_another_verifier => "nonce_invalid", |fx| {
            let n = ChallengeKey::new(&[8u8; 32]).expect("key").issue(NOW).expect("nonce");
            Attempt::with_nonce(fx, n.to_vec(), Some("snp-all")).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        nonce_issue_time_rewritten_to_extend_it => "nonce_invalid", |fx| {
            let mut n = fx.challenge.issue(NOW - 100).expect("nonce");
            n[..8].copy_from_slice(&NOW.to_be_bytes());
            Attempt::with_nonce(fx, n.to_vec(), Some("snp-all")).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        nonce_expired => "nonce_expired", |fx| {
            let n = fx.challenge.issue(NOW - 121).expect("nonce");
            Attempt::with_nonce(fx, n.to_vec(), Some("snp-all")).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        nonce_from_the_future => "nonce_invalid", |fx| {
            let n = fx.challenge.issue(NOW + 3600).expect("nonce");
            Attempt::with_nonce(fx, n.to_vec(), Some("snp-all")).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        // The binding.
        snp_evidence_for_another_nonce => "report_data_mismatch", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.nonce = fx.challenge.issue(NOW).expect("nonce").to_vec();
            a.verdict(fx)
        };
        snp_evidence_for_another_key => "report_data_mismatch", |fx| {
            let a = snp(fx, "snp-fra-1", "snp-all");
            let other = Jwk::new(Es256SigningKey::generate().expect("key").public_key());
            a.key(other).verdict(fx)
        };
        tdx_evidence_for_another_key => "report_data_mismatch", |fx| {
            let a = tdx(fx, "tdx-fra-1", "tdx-all");
            let other = Jwk::new(Es256SigningKey::generate().expect("key").public_key());
            a.key(other).verdict(fx)
        };
        // The confirmation key.
        ed25519_key_for_a_spiffe_workload => "key_unsupported", |fx| {
            let jwk = Ed25519SigningKey::generate().expect("key").public_jwk();
            Attempt::new(fx, Some("snp-all")).key(jwk).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        es384_alg_on_a_p256_key => "key_unsupported", |fx| {
            let mut jwk = Jwk::new(Es256SigningKey::generate().expect("key").public_key());
            jwk.alg = Some("ES384".into());
            Attempt::new(fx, Some("snp-all")).key(jwk).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        p384_key_for_an_es256_workload => "key_unsupported", |fx| {
            let key = locus_simulator::keys::p384_key(1, "tamper-matrix/agent");
            let point = key.verifying_key().to_encoded_point(false);
            let bytes = point.as_bytes();
            let mut x = [0u8; 48];
            let mut y = [0u8; 48];
            x.copy_from_slice(&bytes[1..49]);
            y.copy_from_slice(&bytes[49..97]);
            let jwk = Jwk::new(PublicKey::P384 { x, y });
            Attempt::new(fx, Some("snp-all")).key(jwk).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        // Policy selectors: SEV-SNP (one workload each).
        snp_measurement_not_in_the_reference_values => "measurement_unknown", |fx| {
            snp(fx, "snp-fra-1", "snp-measurement").verdict(fx)
        };
        snp_host_data_not_in_the_reference_values => "measurement_unknown", |fx| {
            snp(fx, "snp-fra-1", "snp-host-data").verdict(fx)
        };
        snp_id_key_digest_not_in_the_reference_values => "measurement_unknown", |fx| {
            snp(fx, "snp-fra-1", "snp-id-key").verdict(fx)
        };
        snp_author_key_pinned_but_absent => "measurement_unknown", |fx| {
            snp(fx, "snp-fra-1", "snp-author-key").verdict(fx)
        };
        snp_family_id_not_in_the_reference_values => "measurement_unknown", |fx| {
            snp(fx, "snp-fra-1", "snp-family").verdict(fx)
        };
        snp_image_id_not_in_the_reference_values => "measurement_unknown", |fx| {
            snp(fx, "snp-fra-1", "snp-image").verdict(fx)
        };
        snp_guest_svn_below_the_minimum => "tcb_below_minimum", |fx| {
            snp(fx, "snp-fra-1", "snp-guest-svn").verdict(fx)
        };
        snp_policy_abi_below_the_minimum => "policy_rejected", |fx| {
            snp(fx, "snp-fra-1", "snp-abi").verdict(fx)
        };
        snp_smt_enabled_where_disallowed => "policy_rejected", |fx| {
            snp(fx, "snp-fra-1", "snp-no-smt").verdict(fx)
        };
        snp_tsme_off_where_required => "policy_rejected", |fx| {
            snp(fx, "snp-fra-1", "snp-tsme").verdict(fx)
        };
        snp_alias_check_incomplete_where_required => "policy_rejected", |fx| {
            Attempt::new(fx, Some("snp-alias-check"))
                .snp_resigned(fx, "snp-fra-1", |f| f.platform_info &= !(1 << 5))
                .verdict(fx)
        };
        snp_vmpl_0_report_for_a_vmpl_1_workload => "vmpl_rejected", |fx| {
            snp(fx, "snp-fra-1", "snp-vmpl1").verdict(fx)
        };
        snp_report_requested_at_vmpl_2 => "vmpl_rejected", |fx| {
            Attempt::new(fx, Some("snp-all"))
                .snp_resigned(fx, "snp-fra-1", |f| f.vmpl = 2)
                .verdict(fx)
        };
        snp_debug_guest => "debug_enabled", |fx| {
            snp(fx, "snp-debug", "snp-all").verdict(fx)
        };
        snp_migration_agent_allowed => "migration_enabled", |fx| {
            Attempt::new(fx, Some("snp-all"))
                .snp_resigned(fx, "snp-fra-1", |f| f.policy |= 1 << 18)
                .verdict(fx)
        };
        snp_image_unknown_to_every_workload => "measurement_unknown", |fx| {
            Attempt::new(fx, None)
                .snp_resigned(fx, "snp-fra-1", |f| f.measurement = [0xdd; 48])
                .verdict(fx)
        };
        // TCB baselines.
        snp_lowtcb_profile => "tcb_status_rejected", |fx| {
            snp(fx, "snp-lowtcb", "snp-all").verdict(fx)
        };
        snp_low_tcb_fault => "tcb_status_rejected", |fx| {
            snp_fault(fx, "snp-fra-1", "snp-all", Fault::LowTcb).verdict(fx)
        };
        snp_tcb_below_the_workloads_min_tcb => "tcb_below_minimum", |fx| {
            snp(fx, "snp-fra-1", "snp-min-tcb").verdict(fx)
        };
        snp_tcb_below_the_workloads_milan_floor => "tcb_below_minimum", |fx| {
            snp(fx, "snp-fra-1", "snp-min-tcb-milan").verdict(fx)
        };
        snp_out_of_date_allowed_but_below_the_floor => "tcb_below_minimum", |fx| {
            snp(fx, "snp-lowtcb", "snp-outofdate-floor").verdict(fx)
        };
        snp_product_without_a_declared_current_tcb => "tcb_not_supported", |fx| {
            let mut a = snp(fx, "snp-iad-1", "snp-all");
            a.config = fx.config_variant(GENOA_CURRENT, "");
            a.verdict(fx)
        };
        // Policy selectors: TDX (one workload each).
        tdx_mr_td_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-mr-td").verdict(fx)
        };
        tdx_rtmr0_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-rtmr0").verdict(fx)
        };
        tdx_rtmr1_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-rtmr1").verdict(fx)
        };
        tdx_rtmr2_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-rtmr2").verdict(fx)
        };
        tdx_rtmr3_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-rtmr3").verdict(fx)
        };
        tdx_mr_config_id_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-mr-config-id").verdict(fx)
        };
        tdx_mr_owner_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-mr-owner").verdict(fx)
        };
        tdx_mr_owner_config_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-mr-owner-config").verdict(fx)
        };
        tdx_xfam_not_in_the_reference_values => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-xfam").verdict(fx)
        };
        tdx_td_attributes_outside_the_mask => "policy_rejected", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-attributes").verdict(fx)
        };
        tdx_pck_sgx_type_not_allowed => "policy_rejected", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-sgx-type").verdict(fx)
        };
        tdx_pck_dynamic_platform_flag_wrong => "policy_rejected", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-dynamic-platform").verdict(fx)
        };
        tdx_debug_td => "debug_enabled", |fx| {
            tdx(fx, "tdx-debug", "tdx-all").verdict(fx)
        };
        tdx_migratable_td => "migration_enabled", |fx| {
            let att = fx.custom_tdx("tdx-fra-1", "tdx-migratable", |p| {
                p.td_attributes = (u64::from_le_bytes(p.td_attributes) | 1 << 29).to_le_bytes();
            });
            Attempt::new(fx, Some("tdx-all")).tdx(&att).verdict(fx)
        };
        tdx_bound_to_a_service_td => "policy_rejected", |fx| {
            let att = fx.custom_tdx("tdx-iad-1", "tdx-service-td", |p| p.mr_service_td = [0x5e; 48]);
            Attempt::new(fx, Some("tdx-all")).tdx(&att).verdict(fx)
        };
        // Residency and the geo-fence.
        unregistered_platform_where_residency_is_required => "location_unknown", |fx| {
            snp(fx, "snp-unregistered", "snp-resident").verdict(fx)
        };
        snp_iad_1_for_the_eu_fence => "geofence_denied", |fx| {
            snp(fx, "snp-iad-1", "snp-eu").verdict(fx)
        };
        snp_fra_1_for_a_us_country_fence => "geofence_denied", |fx| {
            snp(fx, "snp-fra-1", "snp-us").verdict(fx)
        };
        tdx_iad_1_for_the_eu_fence => "geofence_denied", |fx| {
            tdx(fx, "tdx-iad-1", "tdx-eu").verdict(fx)
        };
        tdx_unregistered_platform_for_the_eu_fence => "location_unknown", |fx| {
            tdx(fx, "tdx-unregistered", "tdx-eu").verdict(fx)
        };
        // Location endorsements.
        endorsement_by_an_untrusted_key => "location_unknown", |fx| {
            let rogue = Es256SigningKey::generate().expect("key");
            let e = fx.endorse(&rogue, &fx.platform_id("snp-unregistered"), ("FR", "FR-IDF", "par-1"), (NOW - 60, NOW + 3600));
            unregistered_with(fx, "snp-eu", vec![e])
        };
        endorsement_expired => "location_unknown", |fx| {
            let e = fx.endorse(&fx.endorser, &fx.platform_id("snp-unregistered"), ("FR", "FR-IDF", "par-1"), (NOW - 7200, NOW - 3600));
            unregistered_with(fx, "snp-eu", vec![e])
        };
        endorsement_not_yet_valid => "location_unknown", |fx| {
            let e = fx.endorse(&fx.endorser, &fx.platform_id("snp-unregistered"), ("FR", "FR-IDF", "par-1"), (NOW + 3600, NOW + 7200));
            unregistered_with(fx, "snp-eu", vec![e])
        };
        endorsement_for_another_platform => "location_unknown", |fx| {
            let e = fx.endorse(&fx.endorser, &fx.platform_id("snp-turin"), ("FR", "FR-IDF", "par-1"), (NOW - 60, NOW + 3600));
            unregistered_with(fx, "snp-eu", vec![e])
        };
        endorsement_payload_rewritten_after_signing => "location_unknown", |fx| {
            let mut e = fx.endorse(&fx.endorser, &fx.platform_id("snp-unregistered"), ("US", "US-VA", "iad-9"), (NOW - 60, NOW + 3600));
            let at = e.windows(2).position(|w| w == b"US").expect("country in the payload");
            e[at..at + 2].copy_from_slice(b"FR");
            unregistered_with(fx, "snp-eu", vec![e])
        };
        endorsements_disagreeing_on_the_country => "location_unknown", |fx| {
            let id = fx.platform_id("snp-unregistered");
            let fr = fx.endorse(&fx.endorser, &id, ("FR", "FR-IDF", "par-1"), (NOW - 60, NOW + 3600));
            let us = fx.endorse(&fx.endorser, &id, ("US", "US-VA", "iad-9"), (NOW - 60, NOW + 3600));
            unregistered_with(fx, "snp-eu", vec![fr, us])
        };
        endorsement_placing_the_platform_outside_the_fence => "geofence_denied", |fx| {
            let e = fx.endorse(&fx.endorser, &fx.platform_id("snp-unregistered"), ("US", "US-VA", "iad-9"), (NOW - 60, NOW + 3600));
            unregistered_with(fx, "snp-eu", vec![e])
        };
        endorsement_contradicting_the_registry => "geofence_denied", |fx| {
            let e = fx.endorse(&fx.endorser, &fx.platform_id("snp-iad-1"), ("DE", "DE-HE", "fra-1"), (NOW - 60, NOW + 3600));
            let mut a = snp(fx, "snp-iad-1", "snp-eu");
            a.endorsements = vec![e];
            a.verdict(fx)
        };
        // Workload selection.
        workload_not_configured => "workload_unknown", |fx| {
            snp(fx, "snp-fra-1", "nope").verdict(fx)
        };
        workload_in_another_scheme => "workload_unknown", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.workload = Some(format!("wimse://{TRUST_DOMAIN}/snp-all"));
            a.verdict(fx)
        };
        workload_outside_the_trust_domain => "identifier_invalid", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.workload = Some("spiffe://other.example/snp-all".into());
            a.verdict(fx)
        };
        workload_id_with_a_trailing_slash => "identifier_invalid", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.workload = Some(format!("{}/", wid("snp-all")));
            a.verdict(fx)
        };
        workload_id_percent_encoded => "identifier_invalid", |fx| {
            let mut a = snp(fx, "snp-fra-1", "snp-all");
            a.workload = Some(wid("snp%2Dall"));
            a.verdict(fx)
        };
        workload_ambiguous_without_a_default => "workload_ambiguous", |fx| {
            Attempt::new(fx, None).snp(fx, "snp-fra-1", &[]).verdict(fx)
        };
        tdx_evidence_for_an_snp_only_workload => "measurement_unknown", |fx| {
            tdx(fx, "tdx-fra-1", "snp-all").verdict(fx)
        };
        snp_evidence_for_a_tdx_only_workload => "measurement_unknown", |fx| {
            snp(fx, "snp-fra-1", "tdx-all").verdict(fx)
        };
        // Tokens at the relying party (locus-wimse).
        wit_signature_flipped => "signature_invalid", |fx| {
            let c = credential(fx);
            c.present_pair(&flip_signature(&c.wit), &c.own_wpt())
        };
        wit_resigned_by_another_key_under_the_same_kid => "signature_invalid", |fx| {
            let c = credential(fx);
            let rogue = Es256SigningKey::generate().expect("key").with_kid("k1");
            let wit = resign(&c.wit, &rogue, |_| {});
            let wpt = create_wpt(&c.agent, &WptRequest::new(format!("{AUTHORITY}{TARGET}"), &wit, RP_NOW + 60)).expect("WPT");
            c.present_pair(&wit, &wpt)
        };
        wit_signed_under_an_unknown_kid => "kid_unknown", |fx| {
            let c = credential(fx);
            let rogue = Es256SigningKey::generate().expect("key").with_kid("k2");
            let wit = resign(&c.wit, &rogue, |h| h["kid"] = json!("k2"));
            let wpt = create_wpt(&c.agent, &WptRequest::new(format!("{AUTHORITY}{TARGET}"), &wit, RP_NOW + 60)).expect("WPT");
            c.present_pair(&wit, &wpt)
        };
        wit_with_alg_none => "alg_not_allowed", |fx| {
            let c = credential(fx);
            let [_, claims, _] = jws_parts(&c.wit);
            let header = b64::encode(json!({"alg": "none", "kid": "k1", "typ": "wit+jwt"}).to_string());
            c.present_pair(&format!("{header}.{claims}."), &c.own_wpt())
        };
        wit_expired => "token_expired", |fx| {
            let c = credential(fx);
            let late = NOW + 3600 + 61;
            let wpt = c.wpt(&c.agent, &format!("{AUTHORITY}{TARGET}"), late + 60);
            c.present(&[(WIT_HEADER, c.wit.as_str()), (WPT_HEADER, wpt.as_str())], late)
        };
        wit_sub_rewritten_to_another_workload => "signature_invalid", |fx| {
            let c = credential(fx);
            let wit = rewrite_claims(&c.wit, |v| v["sub"] = json!(wid("snp-eu")));
            c.present_pair(&wit, &c.wpt(&c.agent, &format!("{AUTHORITY}{TARGET}"), RP_NOW + 60))
        };
        wit_sub_moved_to_another_trust_domain => "trust_domain_unknown", |fx| {
            let c = credential(fx);
            let wit = rewrite_claims(&c.wit, |v| v["sub"] = json!("spiffe://other.example/snp-all"));
            c.present_pair(&wit, &c.own_wpt())
        };
        wit_locus_tee_rewritten_to_not_simulated => "signature_invalid", |fx| {
            let c = credential(fx);
            let wit = rewrite_claims(&c.wit, |v| v["locus_tee"]["simulated"] = json!(false));
            c.present_pair(&wit, &c.own_wpt())
        };
        wit_locus_residency_rewritten => "signature_invalid", |fx| {
            let c = credential(fx);
            let wit = rewrite_claims(&c.wit, |v| v["locus_residency"] = json!({"country": "DE", "site": "fra-1", "zones": ["eu"]}));
            c.present_pair(&wit, &c.own_wpt())
        };
        wit_cnf_swapped_to_the_attackers_key => "signature_invalid", |fx| {
            let c = credential(fx);
            let attacker = Es256SigningKey::generate().expect("key");
            let wit = rewrite_claims(&c.wit, |v| v["cnf"]["jwk"] = attacker.public_jwk().to_value());
            let wpt = create_wpt(&attacker, &WptRequest::new(format!("{AUTHORITY}{TARGET}"), &wit, RP_NOW + 60)).expect("WPT");
            c.present_pair(&wit, &wpt)
        };
        wpt_for_another_audience => "aud_mismatch", |fx| {
            let c = credential(fx);
            c.present_pair(&c.wit, &c.wpt(&c.agent, &format!("https://evil.locus.example{TARGET}"), RP_NOW + 60))
        };
        wpt_replayed => "replayed", |fx| {
            let c = credential(fx);
            let wpt = c.own_wpt();
            c.present_pair(&c.wit, &wpt).map_err(|e| format!("first use refused: {e}"))?;
            c.present_pair(&c.wit, &wpt)
        };
        wpt_signed_by_another_key => "signature_invalid", |fx| {
            let c = credential(fx);
            let rogue = Es256SigningKey::generate().expect("key");
            c.present_pair(&c.wit, &c.wpt(&rogue, &format!("{AUTHORITY}{TARGET}"), RP_NOW + 60))
        };
        wpt_made_for_another_wit => "wth_mismatch", |fx| {
            let c = credential(fx);
            let other = credential(fx);
            let wpt = create_wpt(&c.agent, &WptRequest::new(format!("{AUTHORITY}{TARGET}"), &other.wit, RP_NOW + 60)).expect("WPT");
            c.present_pair(&c.wit, &wpt)
        };
        wpt_expired => "token_expired", |fx| {
            let c = credential(fx);
            c.present_pair(&c.wit, &c.wpt(&c.agent, &format!("{AUTHORITY}{TARGET}"), RP_NOW - 120))
        };
        wpt_valid_for_too_long => "exp_too_far", |fx| {
            let c = credential(fx);
            c.present_pair(&c.wit, &c.wpt(&c.agent, &format!("{AUTHORITY}{TARGET}"), RP_NOW + 3600))
        };
        wpt_signed_with_eddsa_for_an_es256_cnf => "alg_not_allowed", |fx| {
            let c = credential(fx);
            let ed = Ed25519SigningKey::generate().expect("key");
            c.present_pair(&c.wit, &c.wpt(&ed, &format!("{AUTHORITY}{TARGET}"), RP_NOW + 60))
        };
        wit_header_missing => "header_missing", |fx| {
            let c = credential(fx);
            c.present(&[(WPT_HEADER, c.own_wpt().as_str())], RP_NOW)
        };
        wit_header_repeated => "header_repeated", |fx| {
            let c = credential(fx);
            let wpt = c.own_wpt();
            c.present(&[(WIT_HEADER, c.wit.as_str()), (WIT_HEADER, c.wit.as_str()), (WPT_HEADER, wpt.as_str())], RP_NOW)
        };
        access_token_not_covered_by_the_wpt => "ath_missing", |fx| {
            let c = credential(fx);
            let wpt = c.own_wpt();
            c.present(&[(WIT_HEADER, c.wit.as_str()), (WPT_HEADER, wpt.as_str()), ("Authorization", "Bearer stolen")], RP_NOW)
        };
        // Identifiers (WorkloadId::parse, docs/architecture.md#identifiers).
        id_trailing_slash => "identifier_invalid", |_| parse_id("spiffe://locus.example/a/");
        id_percent_encoding => "identifier_invalid", |_| parse_id("spiffe://locus.example/a%2Fb");
        id_uppercase_trust_domain => "identifier_invalid", |_| parse_id("spiffe://Locus.example/a");
        id_port => "identifier_invalid", |_| parse_id("spiffe://locus.example:443/a");
        id_query => "identifier_invalid", |_| parse_id("spiffe://locus.example/a?b=c");
        id_fragment => "identifier_invalid", |_| parse_id("spiffe://locus.example/a#b");
        id_userinfo => "identifier_invalid", |_| parse_id("spiffe://admin@locus.example/a");
        id_dot_segment => "identifier_invalid", |_| parse_id("spiffe://locus.example/a/../b");
        id_empty_segment => "identifier_invalid", |_| parse_id("spiffe://locus.example/a//b");
        id_https_scheme => "identifier_invalid", |_| parse_id("https://locus.example/a");
        id_over_2048_bytes => "identifier_invalid", |_| parse_id(&format!("spiffe://locus.example/{}", "a".repeat(2100)));
        // Through the running service (examples/verifier.toml).
        http_body_not_json => "request_invalid", |fx| fx.http.attest(b"{\"nonce\": ".to_vec());
        http_unknown_tee => "request_invalid", |fx| http_attest(fx, "snp-fra-1", "sev-snp", |b| b["tee"] = json!("sgx"));
        http_garbage_nonce => "nonce_invalid", |fx| http_attest(fx, "snp-fra-1", "sev-snp", |b| b["nonce"] = json!("AAAA"));
        http_nonce_of_another_verifier => "nonce_invalid", |fx| {
            let now = locus_tests::unix_now();
            let n = ChallengeKey::new(&[8u8; 32]).expect("key").issue(now).expect("nonce");
            http_attest_with_nonce(fx, &n)
        };
        http_evidence_replayed_with_another_key => "report_data_mismatch", |fx| {
            http_attest(fx, "snp-fra-1", "sev-snp", |b| {
                let attacker = Es256SigningKey::generate().expect("key");
                b["jwk"] = Jwk::new(attacker.public_key()).to_value();
            })
        };
        http_private_jwk => "request_invalid", |fx| http_attest(fx, "snp-fra-1", "sev-snp", |b| b["jwk"]["d"] = json!("AAAA"));
        http_evidence_not_base64url => "request_invalid", |fx| http_attest(fx, "snp-fra-1", "sev-snp", |b| b["evidence"] = json!("***"));
        http_tdx_quote_sent_as_sev_snp => "evidence_malformed", |fx| http_attest(fx, "tdx-fra-1", "sev-snp", |_| {});
        http_body_too_large => "request_too_large", |fx| fx.http.attest(vec![b' '; 70_000]);
        http_look_alike_chain_shipped_with_the_evidence => "chain_untrusted", |fx| {
            http_attest_faulted(fx, "snp-fra-1", Fault::ForeignChain, "sev-snp")
        };
        // The report's VERSION (3, little-endian) is read as the quote header's version: 3 is not 4 or 5.
        http_snp_report_sent_as_tdx => "unsupported_version", |fx| http_attest(fx, "snp-fra-1", "tdx", |_| {});
        http_challenge_body_not_an_object => "request_invalid", |fx| {
            let (status, v) = fx.http.post("/v1/challenge", b"[1, 2]".to_vec());
            match v["code"].as_str() {
                Some(c) => Err(c.to_string()),
                None => Ok(format!("HTTP {status}: {v}")),
            }
        };
        // The TDX memo (a later quote of a platform already appraised is re-checked, never waved through).
        tdx_signature_flipped_after_a_memoized_success => "signature_invalid", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-all").verdict(fx).map_err(|c| format!("warm-up refused: {c}"))?;
            tdx_fault(fx, "tdx-fra-1", "tdx-all", TdxFault::BadSignature).verdict(fx)
        };
        tdx_memoized_platform_after_the_collateral_next_update => "collateral_expired", |fx| {
            tdx(fx, "tdx-fra-1", "tdx-all").verdict(fx).map_err(|c| format!("warm-up refused: {c}"))?;
            let late = locus_simulator::intel::collateral::COLLATERAL_NEXT_UPDATE_UNIX + 1;
            let nonce = fx.challenge.issue(late).expect("nonce").to_vec();
            let mut a = Attempt::with_nonce(fx, nonce, Some("tdx-all")).tdx(&fx.tdx_attester("tdx-fra-1"));
            a.now = late;
            a.verdict(fx)
        };
    }
}

/// A request to the running service carrying evidence made with `fault`, bound to a fresh challenge and key.
fn http_attest_faulted(fx: &Fixture, profile: &str, fault: Fault, tee: &str) -> Verdict {
    use locus_hw::attester::Attester as _;
    let nonce = fx.http.challenge();
    let agent = Es256SigningKey::generate().expect("agent key");
    let jwk = Jwk::new(agent.public_key());
    let ev = fx
        .world
        .snp_attester(profile)
        .expect("SNP profile")
        .with_fault(fault)
        .attest(&binding::report_data(&nonce, &jwk.thumbprint_sha256()))
        .expect("attest");
    fx.http.attest(
        attest_body(&nonce, &ev, &jwk.to_value(), tee)
            .to_string()
            .into_bytes(),
    )
}

/// The running service with a nonce it did not issue (evidence bound to it, so only the nonce is wrong).
fn http_attest_with_nonce(fx: &Fixture, nonce: &[u8]) -> Verdict {
    let agent = Es256SigningKey::generate().expect("agent key");
    let jwk = Jwk::new(agent.public_key());
    let ev = sim_evidence(
        fx,
        "snp-fra-1",
        &binding::report_data(nonce, &jwk.thumbprint_sha256()),
    );
    fx.http.attest(
        attest_body(nonce, &ev, &jwk.to_value(), "sev-snp")
            .to_string()
            .into_bytes(),
    )
}

#[test]
fn every_attack_in_the_tamper_matrix_is_refused_with_its_exact_code() {
    let fx = fixture();
    let attacks = matrix();
    let mut names = std::collections::BTreeSet::new();
    let mut mismatches = Vec::new();
    for attack in &attacks {
        assert!(
            names.insert(attack.name),
            "duplicate attack {}",
            attack.name
        );
        let got = match (attack.run)(fx) {
            Ok(issued) => format!("ACCEPTED ({issued})"),
            Err(code) => code,
        };
        println!("TAMPER {} -> {got}", attack.name);
        if got != attack.want {
            mismatches.push(format!(
                "{}: expected {}, got {got}",
                attack.name, attack.want
            ));
        }
    }
    println!(
        "TAMPER SUMMARY {} attacks, {} refused with the expected code, {} mismatched",
        attacks.len(),
        attacks.len() - mismatches.len(),
        mismatches.len()
    );
    assert!(attacks.len() >= 60, "only {} attacks", attacks.len());
    assert!(
        mismatches.is_empty(),
        "{} of {} attacks did not get their code:\n  {}",
        mismatches.len(),
        attacks.len(),
        mismatches.join("\n  ")
    );
}

/// The controls: the untampered counterpart of every attack is issued (or accepted), so each refusal above is caused
/// by its tamper and not by the harness.
#[test]
fn untampered_requests_are_issued() {
    let fx = fixture();
    let mut failures = Vec::new();
    let mut check = |what: &str, v: Verdict| match v {
        Ok(_) => {}
        Err(code) => failures.push(format!("{what}: refused {code}")),
    };
    for workload in [
        "snp-all",
        "snp-outofdate-floor",
        "snp-alias-check",
        "snp-resident",
        "snp-eu",
    ] {
        check(workload, snp(fx, "snp-fra-1", workload).verdict(fx));
    }
    check(
        "snp-us on iad-1",
        snp(fx, "snp-iad-1", "snp-us").verdict(fx),
    );
    check(
        "snp-all on turin",
        snp(fx, "snp-turin", "snp-all").verdict(fx),
    );
    check(
        "snp-all on vlek",
        snp(fx, "snp-vlek", "snp-all").verdict(fx),
    );
    check(
        "re-signed untouched report",
        Attempt::new(fx, Some("snp-all"))
            .snp_resigned(fx, "snp-fra-1", |_| {})
            .verdict(fx),
    );
    for workload in ["tdx-all", "tdx-eu"] {
        check(workload, tdx(fx, "tdx-fra-1", workload).verdict(fx));
    }
    check(
        "tdx-all on iad-1",
        tdx(fx, "tdx-iad-1", "tdx-all").verdict(fx),
    );
    check(
        "tdx custom profile",
        Attempt::new(fx, Some("tdx-all"))
            .tdx(&fx.custom_tdx("tdx-fra-1", "tdx-custom", |_| {}))
            .verdict(fx),
    );
    check(
        "tdx-outofdate where allowed",
        tdx(fx, "tdx-outofdate", "tdx-allow-outofdate").verdict(fx),
    );
    let mut padded = tdx(fx, "tdx-fra-1", "tdx-all");
    padded.tdx_quote().extend_from_slice(&[0; 3]);
    check("tdx zero padding", padded.verdict(fx));
    let mut fresh_crl = snp(fx, "snp-fra-1", "snp-all");
    let pki = fx
        .world
        .amd_pki(Product::Milan, Hierarchy::Genuine)
        .expect("PKI");
    fresh_crl.snp_endorsements().client_crl_der =
        Some(pki.crl_revoking(&[1], NOW - DAY, NOW + DAY).expect("CRL"));
    check(
        "newer client CRL revoking another serial",
        fresh_crl.verdict(fx),
    );
    let placed = fx.endorse(
        &fx.endorser,
        &fx.platform_id("snp-unregistered"),
        ("FR", "FR-IDF", "par-1"),
        (NOW - 60, NOW + 3600),
    );
    check(
        "trusted endorsement inside the fence",
        unregistered_with(fx, "snp-eu", vec![placed]),
    );
    let agreeing = fx.endorse(
        &fx.endorser,
        &fx.platform_id("snp-fra-1"),
        ("DE", "DE-HE", "fra-1"),
        (NOW - 60, NOW + 3600),
    );
    let mut a = snp(fx, "snp-fra-1", "snp-eu");
    a.endorsements = vec![agreeing];
    check("endorsement agreeing with the registry", a.verdict(fx));
    let mut with_default = Attempt::new(fx, None).snp(fx, "snp-fra-1", &[]);
    with_default.config = fx.config_variant(
        &format!("id = \"{}\"\n", wid("snp-all")),
        &format!("id = \"{}\"\ndefault = true\n", wid("snp-all")),
    );
    check("unnamed workload with a default", with_default.verdict(fx));
    let c = credential(fx);
    check(
        "WIT + WPT at the relying party",
        c.present_pair(&c.wit, &c.own_wpt()),
    );
    let nonce = fx.http.challenge();
    let agent = Es256SigningKey::generate().expect("agent key");
    let jwk = Jwk::new(agent.public_key());
    let ev = sim_evidence(
        fx,
        "snp-fra-1",
        &binding::report_data(&nonce, &jwk.thumbprint_sha256()),
    );
    check(
        "HTTP attest on fra-1",
        fx.http.attest(
            attest_body(&nonce, &ev, &jwk.to_value(), "sev-snp")
                .to_string()
                .into_bytes(),
        ),
    );
    check(
        "wimse id",
        parse_id("wimse://locus.example/a/b").map(|s| s.to_string()),
    );
    assert!(
        failures.is_empty(),
        "controls refused:\n  {}",
        failures.join("\n  ")
    );
}

/// `locus-sim --fault low-tcb` SEV-SNP evidence is never issued as `UpToDate` for any workload of
/// `examples/verifier.toml`, whichever workload the request names (or none), on every simulated SEV-SNP platform.
#[test]
fn low_tcb_snp_evidence_is_never_issued_up_to_date_under_the_example_config() {
    let fx = fixture();
    let cfg = Arc::new(
        config::load(&locus_tests::paths::example_config_path()).expect("examples/verifier.toml"),
    );
    let anchors = anchors_for(
        cfg.trust
            .simulator_pki
            .as_deref()
            .expect("the example trusts the simulator"),
    );
    let mut requests: Vec<Option<String>> = cfg
        .workloads
        .iter()
        .map(|w| Some(w.id.as_str().to_string()))
        .collect();
    requests.push(None);
    let profiles: Vec<String> = fx
        .world
        .profiles()
        .iter()
        .filter(|p| p.snp().is_some())
        .map(|p| p.name.clone())
        .collect();
    assert!(profiles.len() >= 5, "{profiles:?}");
    let mut outcomes = Vec::new();
    for profile in &profiles {
        for faults in [&[][..], &[Fault::LowTcb][..]] {
            for workload in &requests {
                let mut a = Attempt::new(fx, None).snp(fx, profile, faults);
                a.config = cfg.clone();
                a.anchors = anchors.clone();
                a.workload = workload.clone();
                let status = a.decide(fx, |c| c.tee.tcb_status.clone());
                outcomes.push((
                    profile.clone(),
                    !faults.is_empty(),
                    workload.clone(),
                    status,
                ));
            }
        }
    }
    for (profile, low, workload, status) in &outcomes {
        println!(
            "LOW-TCB {profile}{} {} -> {status:?}",
            if *low { " --fault low-tcb" } else { "" },
            workload.as_deref().unwrap_or("(none)")
        );
    }
    let low_up_to_date: Vec<_> = outcomes
        .iter()
        .filter(|(_, low, _, s)| *low && s.as_deref() == Ok("UpToDate"))
        .collect();
    assert!(
        low_up_to_date.is_empty(),
        "low-TCB evidence issued UpToDate: {low_up_to_date:?}"
    );
    // The harness issues the same platform's current evidence UpToDate, so the refusals above are the low TCB's doing.
    assert!(
        outcomes.iter().any(|(p, low, w, s)| p == "snp-fra-1"
            && !low
            && w.as_deref() == Some("spiffe://locus.example/model-server")
            && s.as_deref() == Ok("UpToDate")),
        "current snp-fra-1 evidence is not issued UpToDate for the model server"
    );
}
