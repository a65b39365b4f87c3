//! SEV-SNP appraisal: the checklist of docs/architecture.md#appraisal over a raw 1184-byte report, its endorsements (VCEK or
//! VLEK, ASK or ASVK, ARK, optional CRL), the trust anchors and `now`.

use std::sync::Arc;

use locus_hw::snp::{Product, SignedReport, SigningKey, TcbVersion};

use super::roots::TrustAnchors;
use super::tdx_memo::Window;
use super::x509::{amd_oid, verify_p384_fixed, ParsedCert, ParsedCrl};
use super::Verified;
use crate::error::{ErrorCode, Refusal};

/// The certificates that endorse an SNP report, as DER. Missing ASK/ARK come from the pinned set (VCEK only: AMD
/// publishes no built-in ASVK, so a VLEK needs its ASVK supplied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnpEndorsements {
    /// The VCEK or VLEK that signed the report.
    pub vek_der: Option<Vec<u8>>,
    /// The ASK (VCEK) or ASVK (VLEK).
    pub ask_der: Option<Vec<u8>>,
    /// The ARK.
    pub ark_der: Option<Vec<u8>>,
    /// The verifier's own ARK-signed CRL (fetched, cached or from the offline directory): authoritative.
    pub crl_der: Option<Vec<u8>>,
    /// A CRL the client sent with the evidence: used only when it verifies and is newer than the verifier's (an older
    /// CRL still inside its window could hide a revocation).
    pub client_crl_der: Option<Vec<u8>>,
}

/// Whether the chain was checked against a valid CRL (docs/architecture.md#appraisal: revocation fails closed; policy refuses
/// `Unchecked` with `collateral_missing`, the offline CLI without `--policy` reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Revocation {
    Checked,
    Unchecked,
}

/// Which key signed the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SnpSigner {
    Vcek,
    Vlek,
}

/// Guest policy bits reported by the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SnpPolicyFacts {
    pub debug: bool,
    pub smt: bool,
    pub migrate_ma: bool,
}

/// What a verified SNP report says. Only [`appraise_snp`] produces it wrapped in [`Verified`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpFacts {
    pub product: Product,
    pub report_version: u32,
    pub signer: SnpSigner,
    pub measurement: [u8; 48],
    pub report_data: [u8; 64],
    pub host_data: [u8; 32],
    pub chip_id: [u8; 64],
    pub vmpl: u32,
    pub policy: SnpPolicyFacts,
    /// The full guest policy word.
    pub policy_raw: u64,
    pub guest_svn: u32,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub id_key_digest: [u8; 48],
    pub platform_info: u64,
    pub reported_tcb: TcbVersion,
    pub current_tcb: TcbVersion,
    pub committed_tcb: TcbVersion,
    pub launch_tcb: TcbVersion,
    /// VLEK only: the cloud provider named by the cspID extension (the platform identity input, docs/architecture.md#residency-and-the-geo-fence).
    pub csp_id: Option<String>,
    /// KEY_INFO.AUTHOR_KEY_EN: the ID block was signed by an author key too.
    pub author_key_en: bool,
    /// SHA-384 of the author key (zero unless `author_key_en`).
    pub author_key_digest: [u8; 48],
    /// Whether a valid CRL was consulted for the ASK/ASVK and the VEK.
    pub revocation: Revocation,
}

impl SnpFacts {
    /// The bytes that identify the platform for residency (docs/architecture.md#residency-and-the-geo-fence): CHIP_ID for a VCEK, the cspID for a VLEK.
    pub fn platform_identity(&self) -> Vec<u8> {
        match (&self.signer, &self.csp_id) {
            (SnpSigner::Vlek, Some(csp)) => csp.as_bytes().to_vec(),
            _ => self.chip_id.to_vec(),
        }
    }
}

fn refuse(code: ErrorCode, msg: impl Into<String>) -> Refusal {
    Refusal::new(code, msg)
}

/// Bytes of the chip id a VCEK's hwID carries: Turin's 8, the others' 64.
fn hw_id_len(product: Product) -> usize {
    if product == Product::Turin {
        8
    } else {
        64
    }
}

/// What the chain steps established for one set of endorsements, kept by the memo ([`super::tdx_memo`]) while
/// every window they checked holds: the VEK's facts the report is compared with, read once. Extension reads keep
/// their own result, so a hit refuses exactly where (and with what) the full path would.
#[derive(Clone, Debug)]
pub(crate) struct SnpChain {
    /// The product named by the VEK's issuer (or productName extension).
    cert_product: Product,
    simulated: bool,
    revocation: Revocation,
    /// blSPL, teeSPL, snpSPL, ucodeSPL, fmcSPL as [`ParsedCert::extension_u32`] read them.
    spl: [Result<Option<u32>, Refusal>; 5],
    /// The hwID extension at the product's length (VCEK).
    hw_id: Option<Vec<u8>>,
    /// The cspID extension (VLEK).
    csp_id: Result<Option<String>, Refusal>,
    /// The VEK's P-384 public key (SEC1).
    key: Result<Vec<u8>, Refusal>,
    /// The endorsements the chain steps read, byte for byte: a memo hit must match them exactly.
    source: Arc<ChainSource>,
}

/// The VEK, ASK, ARK and CRL bytes a chain verdict was reached on.
#[derive(Debug, PartialEq, Eq)]
struct ChainSource([Option<Vec<u8>>; 4]);

impl ChainSource {
    fn of(e: &SnpEndorsements) -> ChainSource {
        ChainSource(chain_items(e).map(Option::clone))
    }

    /// Whether `e` carries exactly these bytes.
    fn matches(&self, e: &SnpEndorsements) -> bool {
        self.0
            .iter()
            .zip(chain_items(e))
            .all(|(kept, now)| kept == now)
    }
}

/// What the chain steps read, in the memo key's order.
fn chain_items(e: &SnpEndorsements) -> [&Option<Vec<u8>>; 4] {
    [&e.vek_der, &e.ask_der, &e.ark_der, &e.crl_der]
}

/// The memo key of a set of endorsements ([`crate::lru::ends_key`]): the signer, the simulator mode, and the ends of
/// each endorsement. A hit must also match every byte ([`ChainSource::matches`]). `None` (never memoised) when the
/// client sent a CRL: client bytes that appraisal may ignore must not mint keys.
fn chain_key(signer: SnpSigner, e: &SnpEndorsements, anchors: &TrustAnchors) -> Option<[u8; 32]> {
    if e.client_crl_der.is_some() {
        return None;
    }
    let domain = [
        b"locus/snp-chain/v2".as_slice(),
        &[
            u8::from(signer == SnpSigner::Vlek),
            u8::from(anchors.trusts_simulator()),
        ],
    ]
    .concat();
    Some(crate::lru::ends_key(
        &domain,
        chain_items(e).map(|item| item.as_deref()),
    ))
}

/// Appraise a raw SEV-SNP report. See the module docs for the flow; every failing step has its own code.
///
/// The chain steps' verdict is memoised per set of endorsements (successes only): a later report with the same
/// endorsements, inside every window the chain steps checked, has only its own fields checked against the
/// remembered VEK facts and its signature verified, in the full path's order.
pub fn appraise_snp(
    raw: &[u8],
    endorsements: &SnpEndorsements,
    anchors: &TrustAnchors,
    now_unix: u64,
) -> Result<Verified<SnpFacts>, Refusal> {
    let (signed, signer) = parse_report(raw)?;
    let key = chain_key(signer, endorsements, anchors);
    if let Some(chain) = key.as_ref().and_then(|k| {
        anchors
            .memos()
            .snp_lookup(k, now_unix, |c| c.source.matches(endorsements))
    }) {
        let product = check_product(signed.report(), signer, chain.cert_product)?;
        check_reserved_tcb_bits(signed.report(), product)?;
        return finish(&signed, signer, product, &chain);
    }
    let (chain, product, window) = verify_chain(&signed, signer, endorsements, anchors, now_unix)?;
    if let Some(key) = key {
        anchors.memos().snp_store(key, window, chain.clone());
    }
    finish(&signed, signer, product, &chain)
}

/// Step 1: parse (size 1184, version in {2,3,4,5}), reserved bytes zero, SIGNATURE_ALGO 1, SIGNING_KEY VCEK or
/// VLEK, MASK_CHIP_KEY 0.
fn parse_report(raw: &[u8]) -> Result<(SignedReport, SnpSigner), Refusal> {
    let signed = SignedReport::parse(raw).map_err(Refusal::from)?;
    let report = signed.report();
    let reserved = report.reserved_nonzero();
    if !reserved.is_empty() {
        return Err(refuse(
            ErrorCode::EvidenceMalformed,
            format!(
                "reserved report bytes are not zero: {}",
                reserved.join(", ")
            ),
        ));
    }
    if report.signature_algo != 1 {
        return Err(refuse(
            ErrorCode::EvidenceMalformed,
            format!(
                "SIGNATURE_ALGO {} is not 1 (ECDSA P-384 SHA-384)",
                report.signature_algo
            ),
        ));
    }
    let signer = match report.signing_key() {
        SigningKey::Vcek => SnpSigner::Vcek,
        SigningKey::Vlek => SnpSigner::Vlek,
        SigningKey::None => {
            return Err(refuse(
                ErrorCode::SignatureInvalid,
                "SIGNING_KEY is 7: the report is unsigned",
            ));
        }
        SigningKey::Reserved(b) => {
            return Err(refuse(
                ErrorCode::EvidenceMalformed,
                format!("SIGNING_KEY {b} is reserved"),
            ));
        }
    };
    if report.mask_chip_key() {
        return Err(refuse(
            ErrorCode::SignatureInvalid,
            "MASK_CHIP_KEY is set: the report carries no signature",
        ));
    }
    Ok((signed, signer))
}

fn role(signer: SnpSigner) -> &'static str {
    match signer {
        SnpSigner::Vcek => "VCEK",
        SnpSigner::Vlek => "VLEK",
    }
}

/// The report's CPUID (v3+) must name the product the VEK is issued for.
fn check_product(
    report: &locus_hw::snp::AttestationReport,
    signer: SnpSigner,
    cert_product: Product,
) -> Result<Product, Refusal> {
    let Some(cpuid) = report.cpuid else {
        return Ok(cert_product);
    };
    let cpuid_product = report.product_from_cpuid().ok_or_else(|| {
        refuse(
            ErrorCode::ChainUntrusted,
            format!(
                "CPUID family {:#x} model {:#x} is not a product with a pinned ARK",
                cpuid.family, cpuid.model
            ),
        )
    })?;
    if cpuid_product != cert_product {
        return Err(refuse(
            ErrorCode::ChainUntrusted,
            format!(
                "report CPUID says {cpuid_product} but the {} is issued for {cert_product}",
                role(signer)
            ),
        ));
    }
    Ok(cpuid_product)
}

/// Reserved bits the spec fixes (SEV-SNP Firmware ABI, publication 56860): guest policy bits 63:26 zero and bit 17
/// one; the reserved bytes of the four TCB_VERSION fields in this product's layout zero. The firmware never produces
/// anything else.
fn check_reserved_tcb_bits(
    report: &locus_hw::snp::AttestationReport,
    product: Product,
) -> Result<(), Refusal> {
    if report.policy.reserved_bits() != 0 || !report.policy.reserved_one() {
        return Err(refuse(
            ErrorCode::EvidenceMalformed,
            format!(
                "guest policy {:#x} has reserved bits wrong (63:26 must be 0, 17 must be 1)",
                report.policy.0
            ),
        ));
    }
    for (name, raw) in [
        ("CURRENT_TCB", report.current_tcb),
        ("REPORTED_TCB", report.reported_tcb),
        ("COMMITTED_TCB", report.committed_tcb),
        ("LAUNCH_TCB", report.launch_tcb),
    ] {
        let bits = TcbVersion::reserved_bits(raw, product);
        if bits != 0 {
            return Err(refuse(
                ErrorCode::EvidenceMalformed,
                format!("{name} {raw:#018x} has reserved bits {bits:#x} set for {product}"),
            ));
        }
    }
    Ok(())
}

/// Step 2: product, then the chain VEK -> ASK/ASVK -> ARK (RSA-PSS SHA-384, names linked, validity at now), the
/// ARK pinned for the product (or a trusted simulator root), the optional CRL. The report's own product and reserved
/// bits are checked where the full checklist has them. Returns the chain's facts, the product and the intersection
/// of every window checked (certificates, CRL).
fn verify_chain(
    signed: &SignedReport,
    signer: SnpSigner,
    endorsements: &SnpEndorsements,
    anchors: &TrustAnchors,
    now_unix: u64,
) -> Result<(SnpChain, Product, Window), Refusal> {
    let report = signed.report();
    let vek_der = endorsements.vek_der.as_deref().ok_or_else(|| {
        refuse(
            ErrorCode::CollateralMissing,
            "no VCEK/VLEK certificate: supply it or let the verifier fetch it",
        )
    })?;
    let vek_role = role(signer);
    let vek = ParsedCert::parse(vek_der, vek_role)?;
    let expected_cn = match signer {
        SnpSigner::Vcek => "SEV-VCEK",
        SnpSigner::Vlek => "SEV-VLEK",
    };
    if vek.subject_cn().as_deref() != Some(expected_cn) {
        return Err(refuse(
            ErrorCode::ChainUntrusted,
            format!(
                "SIGNING_KEY says {vek_role} but the key certificate's subject CN is {:?}",
                vek.subject_cn().unwrap_or_default()
            ),
        ));
    }
    let cert_product = vek
        .issuer_cn()
        .as_deref()
        .and_then(Product::from_cert_name)
        .or_else(|| {
            vek.extension_ia5(amd_oid::PRODUCT_NAME)
                .ok()
                .flatten()
                .as_deref()
                .and_then(Product::from_cert_name)
        })
        .ok_or_else(|| {
            refuse(
                ErrorCode::ChainUntrusted,
                format!(
                    "{vek_role} issuer \"{}\" names no known product",
                    vek.issuer()
                ),
            )
        })?;
    let product = check_product(report, signer, cert_product)?;
    check_reserved_tcb_bits(report, product)?;

    let ask = match &endorsements.ask_der {
        Some(der) => ParsedCert::parse(
            der,
            if signer == SnpSigner::Vlek {
                "ASVK"
            } else {
                "ASK"
            },
        )?,
        None if signer == SnpSigner::Vcek => {
            anchors.amd_ask(product).cloned().ok_or_else(|| {
                refuse(
                    ErrorCode::CollateralMissing,
                    format!("no built-in ASK for {product}"),
                )
            })?
        }
        None => {
            return Err(refuse(
                ErrorCode::CollateralMissing,
                "a VLEK needs its ASVK (no built-in ASVK exists)",
            ));
        }
    };
    let ark = match &endorsements.ark_der {
        Some(der) => ParsedCert::parse(der, "ARK")?,
        None => anchors.amd_ark(product).cloned().ok_or_else(|| {
            refuse(
                ErrorCode::CollateralMissing,
                format!("no pinned ARK for {product}"),
            )
        })?,
    };
    let pinned = anchors.amd_ark(product).ok_or_else(|| {
        refuse(
            ErrorCode::ChainUntrusted,
            format!("no pinned ARK for {product}"),
        )
    })?;
    let simulated = if ark.der == pinned.der {
        false
    } else {
        anchors.judge_unpinned_root(&ark, &format!("ARK is not the pinned ARK-{product}"))?;
        true
    };
    ark.verify_signed_by(&ark, anchors.memos())?;
    ask.verify_signed_by(&ark, anchors.memos())?;
    vek.verify_signed_by(&ask, anchors.memos())?;
    let mut window = Window::ALL;
    for cert in [&vek, &ask, &ark] {
        cert.check_validity(now_unix)?;
        let (not_before, not_after) = cert.validity();
        window = window.and(not_before, not_after);
    }
    let (revocation, crl_window) = check_revocation(endorsements, &ark, &[&ask, &vek], now_unix)?;
    if let Some((this_update, last_second)) = crl_window {
        window = window.and(this_update, last_second);
    }

    // The VEK facts step 3 and 4 compare the report with.
    let hw_len = hw_id_len(product);
    let chain = SnpChain {
        cert_product,
        simulated,
        revocation,
        spl: [
            vek.extension_u32(amd_oid::BL_SPL),
            vek.extension_u32(amd_oid::TEE_SPL),
            vek.extension_u32(amd_oid::SNP_SPL),
            vek.extension_u32(amd_oid::UCODE_SPL),
            vek.extension_u32(amd_oid::FMC_SPL),
        ],
        hw_id: vek.hw_id(hw_len),
        csp_id: match signer {
            SnpSigner::Vcek => Ok(None),
            SnpSigner::Vlek => vek.extension_ia5(amd_oid::CSP_ID),
        },
        key: vek.p384_public_key().map(<[u8]>::to_vec),
        source: Arc::new(ChainSource::of(endorsements)),
    };
    Ok((chain, product, window))
}

/// Steps 3–5 over a verified chain: the VEK's SPL extensions equal REPORTED_TCB, the VCEK's hwID equals CHIP_ID
/// (Turin: first 8 bytes), the report signature by the VEK, then the facts.
fn finish(
    signed: &SignedReport,
    signer: SnpSigner,
    product: Product,
    chain: &SnpChain,
) -> Result<Verified<SnpFacts>, Refusal> {
    let report = signed.report();
    let vek_role = role(signer);
    // Step 3: a hwID mismatch (a VCEK of another chip) is `tcb_mismatch`: the certificate endorses a different
    // platform.
    let reported = report.reported_tcb_version(product);
    let [bl, tee, snp, ucode, fmc] = &chain.spl;
    let mut spl = vec![
        ("blSPL", bl, reported.bootloader),
        ("teeSPL", tee, reported.tee),
        ("snpSPL", snp, reported.snp),
        ("ucodeSPL", ucode, reported.microcode),
    ];
    if let Some(f) = reported.fmc {
        spl.push(("fmcSPL", fmc, f));
    }
    for (name, got, want) in spl {
        match got.clone()? {
            Some(got) if got == u32::from(want) => {}
            Some(got) => {
                return Err(refuse(
                    ErrorCode::TcbMismatch,
                    format!("{vek_role} {name} is {got} but REPORTED_TCB has {want}"),
                ));
            }
            None => {
                return Err(refuse(
                    ErrorCode::TcbMismatch,
                    format!("{vek_role} has no {name} extension"),
                ));
            }
        }
    }
    let csp_id = match signer {
        SnpSigner::Vcek => {
            let len = hw_id_len(product);
            let hw_id = chain
                .hw_id
                .as_ref()
                .ok_or_else(|| refuse(ErrorCode::TcbMismatch, "VCEK has no hwID extension"))?;
            if hw_id.len() != len || hw_id[..] != report.chip_id[..len] {
                return Err(refuse(
                    ErrorCode::TcbMismatch,
                    format!(
                        "VCEK hwID {} is not the report's CHIP_ID {}",
                        hex::encode(hw_id),
                        hex::encode(&report.chip_id[..len])
                    ),
                ));
            }
            None
        }
        SnpSigner::Vlek => chain.csp_id.clone()?,
    };

    // Step 4: the report signature by the VEK (ECDSA P-384 SHA-384) over the received bytes 0x000..0x2A0.
    let sig = signed.signature_p384_fixed().map_err(Refusal::from)?;
    let key = chain.key.as_ref().map_err(Clone::clone)?;
    if !verify_p384_fixed(key, signed.signed_bytes(), &sig) {
        return Err(refuse(
            ErrorCode::SignatureInvalid,
            format!("report signature does not verify under the {vek_role} key"),
        ));
    }

    // Step 5: facts out.
    let facts = SnpFacts {
        product,
        report_version: report.version,
        signer,
        measurement: report.measurement,
        report_data: report.report_data,
        host_data: report.host_data,
        chip_id: report.chip_id,
        vmpl: report.vmpl,
        policy: SnpPolicyFacts {
            debug: report.policy.debug(),
            smt: report.policy.smt(),
            migrate_ma: report.policy.migrate_ma(),
        },
        policy_raw: report.policy.0,
        guest_svn: report.guest_svn,
        family_id: report.family_id,
        image_id: report.image_id,
        id_key_digest: report.id_key_digest,
        platform_info: report.platform_info.0,
        reported_tcb: reported,
        current_tcb: report.current_tcb_version(product),
        committed_tcb: report.committed_tcb_version(product),
        launch_tcb: report.launch_tcb_version(product),
        csp_id,
        author_key_en: report.author_key_en(),
        author_key_digest: report.author_key_digest,
        revocation: chain.revocation,
    };
    Ok(Verified::new(facts, chain.simulated))
}

/// Choose the CRL to trust and check `certs` against it (docs/architecture.md#appraisal "Revocation fails closed").
///
/// The verifier's CRL must verify (ARK signature, window, nextUpdate) or the appraisal is refused with its code. A
/// client CRL that does not verify is ignored: client input can add a newer revocation list, never take one away. Of
/// the CRLs that verify, the newest is used (CRL number, else thisUpdate; the verifier's wins a tie). None at all →
/// [`Revocation::Unchecked`], for policy to refuse.
///
/// Also returns the chosen CRL's window (`thisUpdate ..= nextUpdate - 1`), for the memo.
fn check_revocation(
    endorsements: &SnpEndorsements,
    ark: &ParsedCert,
    certs: &[&ParsedCert],
    now: u64,
) -> Result<(Revocation, Option<(u64, u64)>), Refusal> {
    let own = match &endorsements.crl_der {
        Some(der) => {
            let crl = ParsedCrl::parse(der)?;
            crl.verify(ark, now)?;
            Some(crl)
        }
        None => None,
    };
    let client = endorsements.client_crl_der.as_deref().and_then(|der| {
        let crl = ParsedCrl::parse(der).ok()?;
        crl.verify(ark, now).ok()?;
        Some(crl)
    });
    let chosen = match (own, client) {
        (Some(own), Some(client)) if client.is_newer_than(&own) => Some(client),
        (Some(own), _) => Some(own),
        (None, client) => client,
    };
    let Some(crl) = chosen else {
        return Ok((Revocation::Unchecked, None));
    };
    for cert in certs {
        if crl.lists(cert) {
            return Err(refuse(
                ErrorCode::Revoked,
                format!(
                    "{} (serial {}) is listed in the ARK's CRL",
                    cert.role, cert.cert.tbs_certificate.serial_number
                ),
            ));
        }
    }
    let window = crl
        .next_update()
        .and_then(|next| next.checked_sub(1))
        .map(|last| (crl.this_update(), last));
    Ok((Revocation::Checked, window))
}
