//! The library pipeline against the crypto floor and against the peers, in one process, on real vectors (at each
//! set's verification time; skipped with a message when absent) and simulator evidence (locus-simulator's AMD and
//! Intel worlds).
//!
//! Per scenario, one thread:
//! - `floor`: the evidence's own signature check with the production backend + the ES256 signature of a WIT-sized
//!   claim set (what no memo can spare); `ring floor`: the same two operations with ring.
//! - `warm`: `appraise_*` + the token signature, the same endorsements / collateral every call (the verifier's
//!   steady state: the memos answer for the chain and collateral, a refusal the collateral decides included).
//! - `cold`: the same with empty memos every call (the first request of a platform or after a refresh).
//! - the peer as a user calls it, keeping nothing between calls: `sev` (certificates and report parsed, chain and
//!   report verified) for SEV-SNP, `dcap-qvl`'s `verify` for TDX, on the same evidence and collateral.
//!
//! Each scenario ends with `RATIO tee=<sev-snp|tdx> set=<name> R=<warm/floor> P=<warm/peer>` (`P=-` when the peer
//! refuses the set), and SEV-SNP scenarios with `RING tee=sev-snp set=<name> W=<warm/ring floor>`.
//! Run: `cargo bench -p locus-verifier --bench pipeline` (`LOCUS_BENCH_ONLY=tdx` for the scenarios whose
//! "<tee> <set>" contains it).

mod support;

use std::sync::Arc;

use locus_hw::snp::Product;
use locus_simulator::intel::{IntelPki, SIM_VERIFICATION_TIME_UNIX};
use locus_simulator::World;
use locus_verifier::appraisal::{
    appraise_snp, appraise_tdx, SnpEndorsements, TdxCollateral, TrustAnchors,
};
use locus_verifier::cli::{snp_endorsements_from_dir, tdx_collateral_from_dir};
use locus_verifier::Refusal;
use support::shared::{sim_tdx_collateral, vectors_dir};
use support::{measure, row, vector_sets, RingToken, SnpFloor, Stats, TdxFloor, Token};

const REPORT_DATA: [u8; 64] = [0x5a; 64];
/// 2026-01-01T00:00:00Z: inside the simulated AMD certificates' validity.
const SIM_SNP_NOW: u64 = 1_767_225_600;

/// The signing keys of the floor and of the ring floor.
struct Tokens {
    prod: Token,
    ring: RingToken,
}

/// A peer's verdict on the set: `Ok` if it accepts it, else its error text.
type PeerCall<'a> = Box<dyn Fn() -> Result<(), String> + 'a>;

fn label(result: &Result<(), Refusal>) -> String {
    match result {
        Ok(()) => "accepted".into(),
        Err(r) => format!("refused {}", r.code.as_str()),
    }
}

/// One scenario's rows and its RATIO line.
#[allow(clippy::too_many_arguments)]
fn scenario(
    tee: &str,
    name: &str,
    floor_check: impl Fn() -> bool,
    ring_check: impl Fn() -> bool,
    appraise: impl Fn() -> Result<(), Refusal>,
    appraise_cold: impl Fn() -> Result<(), Refusal>,
    peer_name: &str,
    peer: PeerCall<'_>,
    tokens: &Tokens,
) {
    // `LOCUS_BENCH_ONLY=<substring>` runs the matching scenarios only.
    if let Ok(only) = std::env::var("LOCUS_BENCH_ONLY") {
        if !format!("{tee} {name}").contains(&only) {
            return;
        }
    }
    let outcome = label(&appraise());
    println!("## {tee} {name}: {outcome}");
    let floor = measure(|| (floor_check(), tokens.prod.sign()));
    row(&format!("{name}: floor"), floor, None);
    let ring_floor = measure(|| (ring_check(), tokens.ring.sign()));
    row(&format!("{name}: ring floor"), ring_floor, Some(floor));
    let warm = measure(|| (appraise().is_ok(), tokens.prod.sign()));
    row(&format!("{name}: warm appraisal + sign"), warm, Some(floor));
    let cold = measure(|| (appraise_cold().is_ok(), tokens.prod.sign()));
    row(&format!("{name}: cold appraisal + sign"), cold, Some(floor));
    let p = match peer() {
        Ok(()) => {
            let peer_stats: Stats = measure(|| peer().is_ok());
            row(
                &format!("{name}: peer {peer_name}"),
                peer_stats,
                Some(floor),
            );
            format!("{:.3}", warm.median_us / peer_stats.median_us)
        }
        Err(e) => {
            println!("{name}: peer {peer_name} refuses the set: {e}");
            "-".into()
        }
    };
    println!(
        "RATIO tee={tee} set={name} R={:.2} P={p}",
        warm.median_us / floor.median_us
    );
    if tee == "sev-snp" {
        println!(
            "RING tee={tee} set={name} W={:.2}",
            warm.median_us / ring_floor.median_us
        );
    }
}

/// `sev` as a user calls it: parse the three certificates and the report, verify the chain and the report.
fn sev_verify(report: &[u8], e: &SnpEndorsements) -> Result<(), String> {
    use sev::certs::snp::{ca, Certificate, Chain, Verifiable};
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;
    let cert = |der: &Option<Vec<u8>>, what: &str| {
        Certificate::from_der(der.as_deref().ok_or(format!("no {what}"))?)
            .map_err(|e| format!("{what}: {e}"))
    };
    let chain = Chain {
        ca: ca::Chain {
            ark: cert(&e.ark_der, "ARK")?,
            ask: cert(&e.ask_der, "ASK")?,
        },
        vek: cert(&e.vek_der, "VEK")?,
    };
    let report = AttestationReport::from_bytes(report).map_err(|e| format!("report: {e}"))?;
    (&chain, &report).verify().map_err(|e| e.to_string())
}

fn snp_scenario(
    name: &str,
    report: &[u8],
    e: &SnpEndorsements,
    anchors: &TrustAnchors,
    now: u64,
    tokens: &Tokens,
) {
    let floor = SnpFloor::new(report, e.vek_der.as_deref().expect("VEK"));
    scenario(
        "sev-snp",
        name,
        || floor.verify(),
        || floor.verify_ring(),
        || appraise_snp(report, e, anchors, now).map(|_| ()),
        || appraise_snp(report, e, &anchors.with_fresh_memos(), now).map(|_| ()),
        "sev",
        Box::new(|| sev_verify(report, e)),
        tokens,
    );
}

#[allow(clippy::too_many_arguments)]
fn tdx_scenario(
    name: &str,
    quote: &[u8],
    c: &TdxCollateral,
    anchors: &TrustAnchors,
    now: u64,
    peer: PeerCall<'_>,
    tokens: &Tokens,
) {
    let floor = TdxFloor::new(quote);
    scenario(
        "tdx",
        name,
        || floor.verify(),
        || floor.verify_ring(),
        || appraise_tdx(quote, c, anchors, now).map(|_| ()),
        || appraise_tdx(quote, c, &anchors.with_fresh_memos(), now).map(|_| ()),
        "dcap-qvl",
        peer,
        tokens,
    );
}

fn main() {
    println!("# pipeline vs floor vs peer, one thread; R = median(warm) / median(floor), P = median(warm) / median(peer)");
    let tokens = Tokens {
        prod: Token::new(),
        ring: RingToken::new(),
    };

    if let Some(root) = vectors_dir() {
        let anchors = TrustAnchors::pinned().expect("anchors");
        for (name, dir, now) in vector_sets(&root, "snp") {
            let report = std::fs::read(dir.join("report.bin")).expect("report.bin");
            let e = snp_endorsements_from_dir(&dir, &report)
                .map_err(|e| e.0)
                .expect("endorsements");
            snp_scenario(&name, &report, &e, &anchors, now, &tokens);
        }
        for (name, dir, now) in vector_sets(&root, "tdx") {
            let quote = std::fs::read(dir.join("quote.bin")).expect("quote.bin");
            let c = tdx_collateral_from_dir(&dir.join("collateral"))
                .map_err(|e| e.0)
                .expect("collateral dir")
                .expect("collateral");
            let (q, collateral) = (quote.clone(), c.as_dcap_qvl().clone());
            let peer: PeerCall<'_> = Box::new(move || {
                dcap_qvl::verify::verify(&q, &collateral, now)
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}"))
            });
            tdx_scenario(&name, &quote, &c, &anchors, now, peer, &tokens);
        }
    }

    let world = World::shared();
    let roots: Vec<Vec<u8>> = Product::ALL
        .iter()
        .map(|p| world.amd_ark_der(*p).expect("simulated ARK"))
        .collect();
    let anchors = TrustAnchors::pinned()
        .expect("anchors")
        .danger_trust_simulator_roots(&roots);
    for profile in ["snp-fra-1", "snp-iad-1", "snp-turin"] {
        let ev = world
            .snp_attester(profile)
            .expect("profile")
            .report(&REPORT_DATA)
            .expect("report");
        let e = SnpEndorsements {
            vek_der: Some(ev.vcek_der.clone()),
            ask_der: Some(ev.ask_der.clone()),
            ark_der: Some(ev.ark_der.clone()),
            crl_der: None,
            client_crl_der: None,
        };
        snp_scenario(
            &format!("sim/{profile}"),
            &ev.report,
            &e,
            &anchors,
            SIM_SNP_NOW,
            &tokens,
        );
    }

    let pki = Arc::new(IntelPki::new(0x10c5));
    let root_der = pki.root_der().to_vec();
    let anchors = TrustAnchors::pinned()
        .expect("anchors")
        .danger_trust_simulator_roots(std::slice::from_ref(&root_der));
    for profile in ["tdx-fra-1", "tdx-iad-1"] {
        let att = pki.attester_by_name(profile).expect("profile");
        let quote = att.quote(&REPORT_DATA);
        let c = sim_tdx_collateral(&att.collateral());
        let (q, collateral, root) = (quote.clone(), c.as_dcap_qvl().clone(), root_der.clone());
        // The simulator's root is not Intel's: the peer is given it the way its API takes a root.
        let peer: PeerCall<'_> = Box::new(move || {
            dcap_qvl::verify::QuoteVerifier::new(root.clone())
                .verify(&q, &collateral, SIM_VERIFICATION_TIME_UNIX)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        });
        tdx_scenario(
            &format!("sim/{profile}"),
            &quote,
            &c,
            &anchors,
            SIM_VERIFICATION_TIME_UNIX,
            peer,
            &tokens,
        );
    }
}
