//! The crypto floor on this machine: the one per-request signature check of each TEE plus the
//! ES256 signature of a WIT-sized claim set, with the production backend (aws-lc-rs, through the verifier's own
//! functions) and with ring for comparison. Floor_SNP = SHA-384 + P-384 verify of a real report with its VCEK +
//! ES256 sign; Floor_TDX = P-256 verify of a real quote's signed range with its attestation key + ES256 sign.
//! Run: `cargo bench -p locus-verifier --bench floor`.

mod support;

use support::shared::vectors_dir;
use support::{measure, row, vector_sets, RingToken, SnpFloor, TdxFloor, Token};

/// The check alone, then the floor (check + token signature), each with the production backend and with ring.
fn floor_rows(
    name: &str,
    verify: impl Fn() -> bool,
    verify_ring: impl Fn() -> bool,
    token: &Token,
    ring_token: &RingToken,
) {
    let check = measure(&verify);
    row(name, check, None);
    row(
        &format!("{name} (ring)"),
        measure(&verify_ring),
        Some(check),
    );
    let floor = measure(|| (verify(), token.sign()));
    row(&format!("{name} + ES256 sign = floor"), floor, None);
    row(
        &format!("{name} + ES256 sign = floor (ring)"),
        measure(|| (verify_ring(), ring_token.sign())),
        Some(floor),
    );
}

fn main() {
    println!(
        "# floor: ECDSA check + ES256 WIT signature, one thread; R = ring / production backend"
    );
    let token = Token::new();
    let ring_token = RingToken::new();
    let sign = measure(|| token.sign());
    row("ES256 sign of a WIT-sized claim set", sign, None);
    row(
        "ES256 sign of a WIT-sized claim set (ring)",
        measure(|| ring_token.sign()),
        Some(sign),
    );
    let Some(root) = vectors_dir() else { return };

    for (name, dir, _) in vector_sets(&root, "snp") {
        let report = std::fs::read(dir.join("report.bin")).expect("report.bin");
        let endorsements = locus_verifier::cli::snp_endorsements_from_dir(&dir, &report)
            .map_err(|e| e.0)
            .expect("endorsements");
        let floor = SnpFloor::new(&report, endorsements.vek_der.as_deref().expect("VEK"));
        floor_rows(
            &format!("{name}: P-384 verify"),
            || floor.verify(),
            || floor.verify_ring(),
            &token,
            &ring_token,
        );
    }

    for (name, dir, _) in vector_sets(&root, "tdx") {
        let quote = std::fs::read(dir.join("quote.bin")).expect("quote.bin");
        let floor = TdxFloor::new(&quote);
        floor_rows(
            &format!("{name}: P-256 verify"),
            || floor.verify(),
            || floor.verify_ring(),
            &token,
            &ring_token,
        );
    }
}
