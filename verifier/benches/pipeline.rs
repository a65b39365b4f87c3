//! The library pipeline against the floor (`benches/floor.rs`), scenario `warm`: the same endorsements / collateral
//! every call, so per-platform and per-refresh work already done is whatever the appraisal core memoises (the x509
//! RSA-PSS link memo for SNP; nothing for TDX: dcap-qvl re-verifies its collateral on every call). One call =
//! `appraise_*` + the ES256 signature of a WIT-sized claim set, so R = T_pipeline / T_floor compares like with like;
//! the appraisal alone is printed too. Real vectors at each set's verification time (skipped with a message when
//! absent) and simulator evidence (locus-simulator's AMD and Intel worlds).
//! Run: `cargo bench -p locus-verifier --bench pipeline`.

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
use support::{measure, row, vector_sets, SnpFloor, TdxFloor, Token};

const REPORT_DATA: [u8; 64] = [0x5a; 64];
/// 2026-01-01T00:00:00Z: inside the simulated AMD certificates' validity.
const SIM_SNP_NOW: u64 = 1_767_225_600;

/// One scenario: the floor (the evidence's own signature check + token), the appraisal alone and the appraisal +
/// token, the last with R against the floor.
fn scenario(
    name: &str,
    what: &str,
    floor_check: impl Fn() -> bool,
    appraise: impl Fn() -> Result<(), Refusal>,
    token: &Token,
) {
    let floor = measure(|| (floor_check(), token.sign()));
    row(&format!("{name}: floor"), floor, None);
    // The appraisal alone, for reference (no R: the floor includes the token signature).
    row(
        &format!("{name}: {what}"),
        measure(|| appraise().is_ok()),
        None,
    );
    let label = match appraise() {
        Ok(()) => format!("{what} + sign"),
        Err(r) => format!("{what} + sign (refused {})", r.code.as_str()),
    };
    row(
        &format!("{name}: {label}"),
        measure(|| (appraise().is_ok(), token.sign())),
        Some(floor),
    );
}

fn snp_scenario(
    name: &str,
    report: &[u8],
    e: &SnpEndorsements,
    anchors: &TrustAnchors,
    now: u64,
    token: &Token,
) {
    let floor = SnpFloor::new(report, e.vek_der.as_deref().expect("VEK"));
    scenario(
        name,
        "appraise_snp",
        || floor.verify(),
        || appraise_snp(report, e, anchors, now).map(|_| ()),
        token,
    );
}

fn tdx_scenario(
    name: &str,
    quote: &[u8],
    c: &TdxCollateral,
    anchors: &TrustAnchors,
    now: u64,
    token: &Token,
) {
    let floor = TdxFloor::new(quote);
    scenario(
        name,
        "appraise_tdx",
        || floor.verify(),
        || appraise_tdx(quote, c, anchors, now).map(|_| ()),
        token,
    );
}

fn main() {
    println!("# pipeline (warm) vs floor, one thread; R = median(pipeline) / median(floor)");
    let token = Token::new();

    if let Some(root) = vectors_dir() {
        let anchors = TrustAnchors::pinned().expect("anchors");
        for (name, dir, now) in vector_sets(&root, "snp") {
            let report = std::fs::read(dir.join("report.bin")).expect("report.bin");
            let e = snp_endorsements_from_dir(&dir, &report)
                .map_err(|e| e.0)
                .expect("endorsements");
            snp_scenario(&name, &report, &e, &anchors, now, &token);
        }
        for (name, dir, now) in vector_sets(&root, "tdx") {
            let quote = std::fs::read(dir.join("quote.bin")).expect("quote.bin");
            let c = tdx_collateral_from_dir(&dir.join("collateral"))
                .map_err(|e| e.0)
                .expect("collateral dir")
                .expect("collateral");
            tdx_scenario(&name, &quote, &c, &anchors, now, &token);
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
            &token,
        );
    }

    let pki = Arc::new(IntelPki::new(0x10c5));
    let anchors = TrustAnchors::pinned()
        .expect("anchors")
        .danger_trust_simulator_roots(&[pki.root_der().to_vec()]);
    for profile in ["tdx-fra-1", "tdx-iad-1"] {
        let att = pki.attester_by_name(profile).expect("profile");
        let quote = att.quote(&REPORT_DATA);
        let c = sim_tdx_collateral(&att.collateral());
        tdx_scenario(
            &format!("sim/{profile}"),
            &quote,
            &c,
            &anchors,
            SIM_VERIFICATION_TIME_UNIX,
            &token,
        );
    }
}
