//! What the collateral layer needs to know about a piece of evidence to fetch its endorsements: the SNP product, chip id
//! and REPORTED_TCB; the TDX PCK leaf's FMSPC and issuing CA. Only the few fields needed to name the collateral are read
//! here; the appraisal core parses and checks everything. All inputs are untrusted: every read is bounds-checked.

use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::Certificate;

use crate::error::{ErrorCode, Refusal};

/// AMD SEV-SNP product line, as named by the AMD KDS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnpProduct {
    Milan,
    Genoa,
    Turin,
}

impl SnpProduct {
    /// The product name in KDS paths.
    pub fn kds_name(self) -> &'static str {
        match self {
            SnpProduct::Milan => "Milan",
            SnpProduct::Genoa => "Genoa",
            SnpProduct::Turin => "Turin",
        }
    }

    /// Product from the CPUID family/model fields of a v3+ report (AMD SEV-SNP ABI, ATTESTATION_REPORT CPUID fields).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(SnpProduct::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(SnpProduct::Genoa),
            (0x1A, 0x00..=0x11) => Some(SnpProduct::Turin),
            _ => None,
        }
    }

    /// Product from a certificate name: `SEV-Milan`, `SEV-VLEK-Genoa`, `ARK-Turin`, `Milan-B0`, `Genoa` ...
    pub fn from_cert_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.contains("milan") {
            Some(SnpProduct::Milan)
        } else if lower.contains("genoa") || lower.contains("siena") || lower.contains("bergamo") {
            Some(SnpProduct::Genoa)
        } else if lower.contains("turin") {
            Some(SnpProduct::Turin)
        } else {
            None
        }
    }

    /// Every product, in the order a v2 report without certificates is tried against the KDS.
    pub const ALL: [SnpProduct; 3] = [SnpProduct::Milan, SnpProduct::Genoa, SnpProduct::Turin];
}

/// REPORTED_TCB decoded for the product (AMD SEV-SNP ABI, TCB_VERSION; the layout differs per product).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SnpTcb {
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl SnpTcb {
    /// Decode a raw TCB_VERSION: Turin is FMC, BL, TEE, SNP at bytes 0..3; Milan/Genoa BL, TEE at 0..1, SNP at 6; all
    /// have microcode at byte 7.
    pub fn from_raw(raw: u64, product: SnpProduct) -> Self {
        let b = raw.to_le_bytes();
        match product {
            SnpProduct::Turin => SnpTcb {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
            SnpProduct::Milan | SnpProduct::Genoa => SnpTcb {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
        }
    }

    /// The KDS query string: `[fmcSPL=NN&]blSPL=NN&teeSPL=NN&snpSPL=NN&ucodeSPL=NN`, decimal zero-padded to 2 digits.
    pub fn kds_query(&self) -> String {
        let mut q = String::new();
        if let Some(fmc) = self.fmc {
            q.push_str(&format!("fmcSPL={fmc:02}&"));
        }
        q.push_str(&format!(
            "blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
            self.bootloader, self.tee, self.snp, self.microcode
        ));
        q
    }
}

/// Which key signed an SNP report (KEY_INFO bits 4:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnpSigner {
    Vcek,
    Vlek,
    Other(u8),
}

/// The fields of an SNP report that name its endorsements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpPlatform {
    pub version: u32,
    /// From CPUID (v3+); `None` for v2 reports.
    pub product: Option<SnpProduct>,
    pub reported_tcb_raw: u64,
    pub chip_id: [u8; 64],
    pub signer: SnpSigner,
}

impl SnpPlatform {
    /// Read the version, CPUID, REPORTED_TCB, CHIP_ID and signing key of a raw 1184-byte report (parsed by
    /// `locus_hw`; format errors keep their stable codes).
    pub fn from_report(raw: &[u8]) -> Result<Self, Refusal> {
        let report = locus_hw::snp::AttestationReport::parse(raw).map_err(Refusal::from)?;
        let signer = match report.signing_key() {
            locus_hw::snp::SigningKey::Vcek => SnpSigner::Vcek,
            locus_hw::snp::SigningKey::Vlek => SnpSigner::Vlek,
            locus_hw::snp::SigningKey::None => SnpSigner::Other(7),
            locus_hw::snp::SigningKey::Reserved(b) => SnpSigner::Other(b),
        };
        let product = match report.cpuid {
            Some(c) => Some(SnpProduct::from_cpuid(c.family, c.model).ok_or_else(|| {
                Refusal::new(
                    ErrorCode::EvidenceMalformed,
                    format!(
                        "SEV-SNP report CPUID family {:#x} model {:#x} is not a known product",
                        c.family, c.model
                    ),
                )
            })?),
            None => None,
        };
        Ok(SnpPlatform {
            version: report.version,
            product,
            reported_tcb_raw: report.reported_tcb,
            chip_id: report.chip_id,
            signer,
        })
    }

    /// The KDS hwID: lowercase hex of CHIP_ID (Turin: its first 8 bytes). `None` when CHIP_ID is masked (all zero).
    pub fn hwid(&self, product: SnpProduct) -> Option<String> {
        let id: &[u8] = match product {
            SnpProduct::Turin => &self.chip_id[..8],
            SnpProduct::Milan | SnpProduct::Genoa => &self.chip_id[..],
        };
        if id.iter().all(|b| *b == 0) {
            None
        } else {
            Some(hex::encode(id))
        }
    }

    pub fn tcb(&self, product: SnpProduct) -> SnpTcb {
        SnpTcb::from_raw(self.reported_tcb_raw, product)
    }
}

/// Which Intel PCK CA issued a PCK certificate (the `ca` parameter of the PCK CRL request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PckCa {
    Platform,
    Processor,
}

impl PckCa {
    pub fn as_str(self) -> &'static str {
        match self {
            PckCa::Platform => "platform",
            PckCa::Processor => "processor",
        }
    }
}

/// The fields of a TDX quote that name its collateral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxPlatform {
    pub fmspc: [u8; 6],
    pub ca: PckCa,
}

impl TdxPlatform {
    /// FMSPC as lowercase hex, as used in PCS queries and cache keys.
    pub fn fmspc_hex(&self) -> String {
        hex::encode(self.fmspc)
    }

    /// Parse a v4/v5 quote (`locus_hw`; bytes after the structure ignored) and read its PCK leaf (certification data
    /// type 6 containing type 5).
    pub fn from_quote(raw: &[u8]) -> Result<Self, Refusal> {
        // Lenient about bytes after the quote structure: only the PCK leaf is needed here, and appraisal judges the
        // trailing bytes with its own code.
        let quote =
            locus_hw::tdx::Quote::parse_ignoring_trailing_bytes(raw).map_err(Refusal::from)?;
        Self::from_parsed_quote(&quote)
    }

    /// [`TdxPlatform::from_quote`] for a quote already parsed.
    pub fn from_parsed_quote(quote: &locus_hw::tdx::Quote) -> Result<Self, Refusal> {
        let ders = quote.pck_chain_der().map_err(Refusal::from)?;
        let leaf = ders.first().ok_or_else(|| {
            Refusal::new(
                ErrorCode::EvidenceMalformed,
                "TDX quote PCK certification data holds no PEM certificate",
            )
        })?;
        Self::from_pck_der(leaf)
    }

    /// Read FMSPC (SGX extension 1.2.840.113741.1.13.1.4) and the issuing CA (issuer CN "... Platform CA" /
    /// "... Processor CA") from a PCK leaf certificate.
    pub fn from_pck_der(der: &[u8]) -> Result<Self, Refusal> {
        let bad = |m: String| Refusal::new(ErrorCode::EvidenceMalformed, m);
        let cert = Certificate::from_der(der)
            .map_err(|e| bad(format!("PCK certificate does not parse: {e}")))?;
        let issuer = cert.tbs_certificate.issuer.to_string();
        let ca = if issuer.contains("Platform") {
            PckCa::Platform
        } else if issuer.contains("Processor") {
            PckCa::Processor
        } else {
            return Err(bad(format!(
                "PCK issuer `{issuer}` is neither the Platform nor the Processor CA"
            )));
        };
        let sgx_ext = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");
        let fmspc_oid = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.4");
        let ext = cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .find(|e| e.extn_id == sgx_ext)
            .ok_or_else(|| {
                bad("PCK certificate has no SGX extension (1.2.840.113741.1.13.1)".into())
            })?;
        let entries: Vec<SgxExtensionEntry> = Vec::from_der(ext.extn_value.as_bytes())
            .map_err(|e| bad(format!("PCK SGX extension does not parse: {e}")))?;
        let fmspc = entries
            .iter()
            .find(|e| e.id == fmspc_oid)
            .ok_or_else(|| bad("PCK SGX extension has no FMSPC".into()))?;
        let bytes = fmspc
            .value
            .decode_as::<der::asn1::OctetStringRef<'_>>()
            .map_err(|e| bad(format!("PCK FMSPC is not an OCTET STRING: {e}")))?;
        let fmspc: [u8; 6] = bytes.as_bytes().try_into().map_err(|_| {
            bad(format!(
                "PCK FMSPC is {} bytes, expected 6",
                bytes.as_bytes().len()
            ))
        })?;
        Ok(TdxPlatform { fmspc, ca })
    }
}

#[derive(der::Sequence)]
struct SgxExtensionEntry {
    id: ObjectIdentifier,
    value: der::Any,
}

/// Every `CERTIFICATE` block of a PEM text, as DER, for collateral whose shape is not yet judged: text that is not
/// well-formed PEM yields nothing (appraisal then reports what is missing). The workspace's one PEM decoder is
/// [`crate::appraisal::x509::pem_blocks`].
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    crate::appraisal::x509::pem_certificates(pem).unwrap_or_default()
}

/// DER bytes of a certificate given as DER or PEM.
pub fn cert_der(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.first() == Some(&0x30) {
        Some(bytes.to_vec())
    } else {
        pem_certificates(bytes).into_iter().next()
    }
}

/// Encode DER certificates as one PEM text.
pub fn pem_encode_certificates(ders: &[Vec<u8>]) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for der in ders {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// Role of an AMD certificate, from its subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmdCertRole {
    Ark,
    Ask,
    Asvk,
    Vcek,
    Vlek,
}

/// Classify an AMD certificate (DER) by subject CN: `ARK-*`, `SEV-VLEK-*` (ASVK), `SEV-*` (ASK), `SEV-VCEK`, `SEV-VLEK`.
/// Returns the product named by the certificate (issuer for leaves) when one is recognisable.
pub fn classify_amd_cert(der: &[u8]) -> Option<(AmdCertRole, Option<SnpProduct>)> {
    let cert = Certificate::from_der(der).ok()?;
    let subject = common_name(&cert.tbs_certificate.subject)?;
    let issuer = common_name(&cert.tbs_certificate.issuer).unwrap_or_default();
    let role = if subject == "SEV-VCEK" {
        AmdCertRole::Vcek
    } else if subject == "SEV-VLEK" {
        AmdCertRole::Vlek
    } else if subject.starts_with("ARK-") {
        AmdCertRole::Ark
    } else if subject.starts_with("SEV-VLEK-") {
        AmdCertRole::Asvk
    } else if subject.starts_with("SEV-") {
        AmdCertRole::Ask
    } else {
        return None;
    };
    let product = match role {
        AmdCertRole::Vcek | AmdCertRole::Vlek => SnpProduct::from_cert_name(&issuer),
        _ => SnpProduct::from_cert_name(&subject),
    };
    Some((role, product))
}

fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    let cn = const_oid::db::rfc4519::CN;
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == cn {
                if let Ok(s) = atv.value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
                    return Some(s.as_str().to_owned());
                }
                if let Ok(s) = atv.value.decode_as::<der::asn1::PrintableStringRef<'_>>() {
                    return Some(s.as_str().to_owned());
                }
                if let Ok(s) = atv.value.decode_as::<der::asn1::Ia5StringRef<'_>>() {
                    return Some(s.as_str().to_owned());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kds_query_is_zero_padded_and_puts_fmc_first_on_turin() {
        let milan = SnpTcb::from_raw(0x7308_0000_0000_0003, SnpProduct::Milan);
        assert_eq!(
            milan.kds_query(),
            "blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
        );
        let turin = SnpTcb::from_raw(0xd900_0000_0104_0201, SnpProduct::Turin);
        assert_eq!(
            turin.kds_query(),
            "fmcSPL=01&blSPL=02&teeSPL=04&snpSPL=01&ucodeSPL=217"
        );
    }

    #[test]
    fn short_report_is_evidence_malformed() {
        let err = SnpPlatform::from_report(&[0u8; 100]).expect_err("must be refused");
        assert_eq!(err.code, ErrorCode::EvidenceMalformed);
    }

    #[test]
    fn report_version_one_is_unsupported_version() {
        let mut raw = vec![0u8; 0x4A0];
        raw[0] = 1;
        let err = SnpPlatform::from_report(&raw).expect_err("must be refused");
        assert_eq!(err.code, ErrorCode::UnsupportedVersion);
    }

    #[test]
    fn masked_chip_id_has_no_hwid_and_turin_uses_eight_bytes() {
        let mut raw = vec![0u8; 0x4A0];
        raw[0] = 3;
        raw[0x188] = 0x1A;
        raw[0x189] = 0x02;
        let p = SnpPlatform::from_report(&raw).expect("parse");
        assert_eq!(p.product, Some(SnpProduct::Turin));
        assert_eq!(p.hwid(SnpProduct::Turin), None);
        raw[0x1A0] = 0xAB;
        raw[0x1A8] = 0xCD; // beyond Turin's 8 bytes
        let p = SnpPlatform::from_report(&raw).expect("parse");
        assert_eq!(
            p.hwid(SnpProduct::Turin).as_deref(),
            Some("ab00000000000000")
        );
    }

    #[test]
    fn truncated_quote_is_evidence_malformed() {
        let mut raw = vec![0u8; 700];
        raw[0] = 4;
        let err = TdxPlatform::from_quote(&raw).expect_err("must be refused");
        assert_eq!(err.code, ErrorCode::EvidenceMalformed);
    }

    #[test]
    fn quote_version_three_is_unsupported_version() {
        let mut raw = vec![0u8; 1200];
        raw[0] = 3;
        let err = TdxPlatform::from_quote(&raw).expect_err("must be refused");
        assert_eq!(err.code, ErrorCode::UnsupportedVersion);
    }
}
