//! The library pipeline against the floor (performance.md §5), scenario `warm`: the same endorsements / collateral
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
    appraise_snp, appraise_tdx, SnpEndorsements, TdxCollateral, TdxCollateralParts, TrustAnchors,
};
use locus_verifier::cli::{snp_endorsements_from_dir, tdx_collateral_from_dir};
use support::{measure, row, vector_sets, vectors_dir, SnpFloor, TdxFloor, Token};

const REPORT_DATA: [u8; 64] = [0x5a; 64];
/// 2026-01-01T00:00:00Z: inside the simulated AMD certificates' validity.
const SIM_SNP_NOW: u64 = 1_767_225_600;

fn snp_scenario(
    name: &str,
    report: &[u8],
    e: &SnpEndorsements,
    anchors: &TrustAnchors,
    now: u64,
    token: &Token,
) {
    let outcome = appraise_snp(report, e, anchors, now).map(|_| ());
    let floor = SnpFloor::new(report, e.vek_der.as_deref().expect("VEK"));
    let floor = measure(|| (floor.verify(), token.sign()));
    row(&format!("{name}: floor"), floor, None);
    row(
        &format!("{name}: appraise_snp"),
        measure(|| appraise_snp(report, e, anchors, now).is_ok()),
        Some(floor),
    );
    let label = match &outcome {
        Ok(()) => "appraise_snp + sign".to_string(),
        Err(r) => format!("appraise_snp + sign (refused {})", r.code.as_str()),
    };
    row(
        &format!("{name}: {label}"),
        measure(|| (appraise_snp(report, e, anchors, now).is_ok(), token.sign())),
        Some(floor),
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
    let outcome = appraise_tdx(quote, c, anchors, now).map(|_| ());
    let floor = TdxFloor::new(quote);
    let floor = measure(|| (floor.verify(), token.sign()));
    row(&format!("{name}: floor"), floor, None);
    row(
        &format!("{name}: appraise_tdx"),
        measure(|| appraise_tdx(quote, c, anchors, now).is_ok()),
        Some(floor),
    );
    let label = match &outcome {
        Ok(()) => "appraise_tdx + sign".to_string(),
        Err(r) => format!("appraise_tdx + sign (refused {})", r.code.as_str()),
    };
    row(
        &format!("{name}: {label}"),
        measure(|| (appraise_tdx(quote, c, anchors, now).is_ok(), token.sign())),
        Some(floor),
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
        let files = att.collateral();
        let c = TdxCollateral::from_parts(TdxCollateralParts {
            tcb_info_json: &files.tcb_info_json,
            tcb_info_issuer_chain_pem: &files.tcb_info_issuer_chain_pem,
            qe_identity_json: &files.qe_identity_json,
            qe_identity_issuer_chain_pem: &files.qe_identity_issuer_chain_pem,
            pck_crl_der: &files.pck_crl_der,
            pck_crl_issuer_chain_pem: &files.pck_crl_issuer_chain_pem,
            root_ca_crl_der: &files.root_ca_crl_der,
        })
        .expect("simulated collateral");
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
