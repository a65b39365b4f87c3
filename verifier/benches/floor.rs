//! The crypto floor on this machine: the one per-request signature check of each TEE plus the
//! ES256 signature of a WIT-sized claim set. Floor_SNP = SHA-384 + P-384 verify of a real report with its VCEK +
//! ES256 sign; Floor_TDX = P-256 verify of a real quote's signed range with its attestation key + ES256 sign.
//! Run: `cargo bench -p locus-verifier --bench floor`.

mod support;

use support::shared::vectors_dir;
use support::{measure, row, vector_sets, SnpFloor, TdxFloor, Token};

/// The check alone, then the floor (check + token signature).
fn floor_rows(name: &str, verify: impl Fn() -> bool, token: &Token) {
    row(name, measure(&verify), None);
    row(
        &format!("{name} + ES256 sign = floor"),
        measure(|| (verify(), token.sign())),
        None,
    );
}

fn main() {
    println!("# floor: ring ECDSA + ES256 WIT signature, one thread");
    let token = Token::new();
    let sign = measure(|| token.sign());
    row("ES256 sign of a WIT-sized claim set", sign, None);
    let Some(root) = vectors_dir() else { return };

    for (name, dir, _) in vector_sets(&root, "snp") {
        let report = std::fs::read(dir.join("report.bin")).expect("report.bin");
        let endorsements = locus_verifier::cli::snp_endorsements_from_dir(&dir, &report)
            .map_err(|e| e.0)
            .expect("endorsements");
        let floor = SnpFloor::new(&report, endorsements.vek_der.as_deref().expect("VEK"));
        floor_rows(&format!("{name}: P-384 verify"), || floor.verify(), &token);
    }

    for (name, dir, _) in vector_sets(&root, "tdx") {
        let quote = std::fs::read(dir.join("quote.bin")).expect("quote.bin");
        let floor = TdxFloor::new(&quote);
        floor_rows(&format!("{name}: P-256 verify"), || floor.verify(), &token);
    }
}
