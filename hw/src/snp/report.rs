//! ATTESTATION_REPORT (AMD SEV-SNP Firmware ABI, publication 56860): 1184 bytes, little-endian.
//!
//! The struct mirrors the ABI's ATTESTATION_REPORT table field by field. Reserved bytes are kept (in [`ReportReserved`]) so
//! that [`AttestationReport::to_bytes`] reproduces the parsed input exactly; the parser does not refuse non-zero
//! reserved bytes (real vectors must parse) — the verifier asks [`AttestationReport::reserved_nonzero`] instead.

use super::{Product, TcbVersion};
use crate::bytes::{Reader, Writer};
use crate::FormatError;
use serde::{Deserialize, Serialize};

/// Size of an attestation report.
pub const REPORT_SIZE: usize = 0x4A0;
/// Length of the signed prefix `raw[0..0x2A0]`.
pub const SIGNED_LEN: usize = 0x2A0;
/// Offset of SIGNATURE.R.
pub const SIGNATURE_OFFSET: usize = 0x2A0;
/// Size of each of the little-endian, zero-padded r and s components.
pub const SIGNATURE_COMPONENT_LEN: usize = 72;
/// The report versions Locus accepts (explicit allow-list).
pub const SUPPORTED_VERSIONS: [u32; 4] = [2, 3, 4, 5];

const CPUID_OFFSET: usize = 0x188;
const MIT_VECTOR_OFFSET: usize = 0x1F8;
const SIGNATURE_TAIL_OFFSET: usize = 0x330;
const _: () = assert!(SIGNATURE_OFFSET == SIGNED_LEN);
const _: () = assert!(SIGNATURE_OFFSET + 2 * SIGNATURE_COMPONENT_LEN == SIGNATURE_TAIL_OFFSET);
const _: () = assert!(SIGNATURE_TAIL_OFFSET + 368 == REPORT_SIZE);
const _: () = assert!(MIT_VECTOR_OFFSET + 16 + 152 == SIGNED_LEN);
const _: () = assert!(CPUID_OFFSET + 3 + 21 == 0x1A0);

/// CPUID_FAM_ID / CPUID_MOD_ID / CPUID_STEP (0x188..0x18B, report v3+).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cpuid {
    /// Extended family + family, e.g. 0x19 (Milan, Genoa), 0x1A (Turin).
    pub family: u8,
    /// Extended model + model.
    pub model: u8,
    pub stepping: u8,
}

/// A firmware version (CURRENT_* at 0x1E8, COMMITTED_* at 0x1EC), stored build, minor, major.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct FirmwareVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u8,
}

impl std::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// SIGNATURE (0x2A0, 144 bytes): ECDSA P-384 r and s, each 72 bytes little-endian with zero padding above byte 48.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportSignature {
    /// 0x2A0, 72 bytes.
    pub r: [u8; 72],
    /// 0x2E8, 72 bytes.
    pub s: [u8; 72],
}

/// KEY_INFO.SIGNING_KEY (bits 4:2): which key signed the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningKey {
    /// 0: the chip-unique VCEK.
    Vcek,
    /// 1: the CSP-provisioned VLEK.
    Vlek,
    /// 7: the report is not signed.
    None,
    /// 2–6: reserved encodings.
    Reserved(u8),
}

impl SigningKey {
    fn from_bits(bits: u8) -> SigningKey {
        match bits {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other),
        }
    }

    /// The 3-bit field value.
    pub fn bits(self) -> u8 {
        match self {
            SigningKey::Vcek => 0,
            SigningKey::Vlek => 1,
            SigningKey::None => 7,
            SigningKey::Reserved(b) => b & 0x7,
        }
    }
}

/// The reserved regions of the report, kept verbatim so serialization mirrors parsing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportReserved {
    /// 0x04C, 4 bytes.
    pub after_key_info: [u8; 4],
    /// 0x188, 3 bytes: reserved in v2 (kept here when `cpuid` is `None`); the CPUID bytes in v3+.
    pub cpuid_area: [u8; 3],
    /// 0x18B, 21 bytes.
    pub after_cpuid: [u8; 21],
    /// 0x1EB, 1 byte after CURRENT_MAJOR.
    pub after_current_version: u8,
    /// 0x1EF, 1 byte after COMMITTED_MAJOR.
    pub after_committed_version: u8,
    /// 0x1F8, 16 bytes: reserved in v2–v4 (kept here when the mitigation vectors are `None`); the vectors in v5.
    pub mit_vector_area: [u8; 16],
    /// 0x208, 152 bytes up to the signature.
    pub before_signature: [u8; 152],
    /// 0x330, 368 bytes after the signature, to the end of the report.
    pub after_signature: [u8; 368],
}

impl Default for ReportReserved {
    fn default() -> Self {
        ReportReserved {
            after_key_info: [0; 4],
            cpuid_area: [0; 3],
            after_cpuid: [0; 21],
            after_current_version: 0,
            after_committed_version: 0,
            mit_vector_area: [0; 16],
            before_signature: [0; 152],
            after_signature: [0; 368],
        }
    }
}

/// An SEV-SNP ATTESTATION_REPORT, versions 2–5. TCB fields stay raw u64: decode them with
/// [`TcbVersion::from_raw`] once the product is known ([`AttestationReport::product_from_cpuid`] or the certificate).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttestationReport {
    /// 0x000, 4 bytes: VERSION, one of [`SUPPORTED_VERSIONS`].
    pub version: u32,
    /// 0x004, 4 bytes: GUEST_SVN.
    pub guest_svn: u32,
    /// 0x008, 8 bytes: POLICY.
    pub policy: super::GuestPolicy,
    /// 0x010, 16 bytes: FAMILY_ID from the ID block.
    pub family_id: [u8; 16],
    /// 0x020, 16 bytes: IMAGE_ID from the ID block.
    pub image_id: [u8; 16],
    /// 0x030, 4 bytes: VMPL the report was requested for.
    pub vmpl: u32,
    /// 0x034, 4 bytes: SIGNATURE_ALGO (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// 0x038, 8 bytes: CURRENT_TCB (raw TCB_VERSION).
    pub current_tcb: u64,
    /// 0x040, 8 bytes: PLATFORM_INFO.
    pub platform_info: super::PlatformInfo,
    /// 0x048, 4 bytes: KEY_INFO flags (AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY).
    pub key_info: u32,
    /// 0x050, 64 bytes: REPORT_DATA supplied by the guest.
    pub report_data: [u8; 64],
    /// 0x090, 48 bytes: MEASUREMENT, the launch digest.
    pub measurement: [u8; 48],
    /// 0x0C0, 32 bytes: HOST_DATA.
    pub host_data: [u8; 32],
    /// 0x0E0, 48 bytes: ID_KEY_DIGEST.
    pub id_key_digest: [u8; 48],
    /// 0x110, 48 bytes: AUTHOR_KEY_DIGEST.
    pub author_key_digest: [u8; 48],
    /// 0x140, 32 bytes: REPORT_ID.
    pub report_id: [u8; 32],
    /// 0x160, 32 bytes: REPORT_ID_MA (all 0xFF when there is no migration agent).
    pub report_id_ma: [u8; 32],
    /// 0x180, 8 bytes: REPORTED_TCB, the TCB the VCEK was derived from.
    pub reported_tcb: u64,
    /// 0x188, 3 bytes: CPUID family/model/stepping (v3+; `None` for v2).
    pub cpuid: Option<Cpuid>,
    /// 0x1A0, 64 bytes: CHIP_ID (zero when masked; Turin uses the first 8 bytes).
    pub chip_id: [u8; 64],
    /// 0x1E0, 8 bytes: COMMITTED_TCB.
    pub committed_tcb: u64,
    /// 0x1E8, 3 bytes: CURRENT_BUILD, CURRENT_MINOR, CURRENT_MAJOR.
    pub current_version: FirmwareVersion,
    /// 0x1EC, 3 bytes: COMMITTED_BUILD, COMMITTED_MINOR, COMMITTED_MAJOR.
    pub committed_version: FirmwareVersion,
    /// 0x1F0, 8 bytes: LAUNCH_TCB.
    pub launch_tcb: u64,
    /// 0x1F8, 8 bytes: LAUNCH_MIT_VECTOR (v5 only).
    pub launch_mit_vector: Option<u64>,
    /// 0x200, 8 bytes: CURRENT_MIT_VECTOR (v5 only).
    pub current_mit_vector: Option<u64>,
    /// 0x2A0, 144 bytes: SIGNATURE (not part of the signed range).
    pub signature: ReportSignature,
    /// Every reserved region, verbatim.
    pub reserved: ReportReserved,
}

/// Names of the reserved regions, as reported by [`AttestationReport::reserved_nonzero`].
pub mod reserved_region {
    pub const AFTER_KEY_INFO: &str = "reserved 0x04C";
    pub const KEY_INFO_BITS: &str = "KEY_INFO bits 31:5";
    pub const CPUID_AREA_V2: &str = "reserved 0x188 (v2 CPUID area)";
    pub const AFTER_CPUID: &str = "reserved 0x18B";
    pub const AFTER_CURRENT_VERSION: &str = "reserved 0x1EB";
    pub const AFTER_COMMITTED_VERSION: &str = "reserved 0x1EF";
    pub const MIT_VECTOR_AREA: &str = "reserved 0x1F8 (pre-v5 mitigation vector area)";
    pub const BEFORE_SIGNATURE: &str = "reserved 0x208";
    pub const SIGNATURE_R_PADDING: &str = "SIGNATURE.R padding 0x2D0";
    pub const SIGNATURE_S_PADDING: &str = "SIGNATURE.S padding 0x318";
    pub const AFTER_SIGNATURE: &str = "reserved 0x330";
}

fn nonzero(b: &[u8]) -> bool {
    b.iter().any(|&x| x != 0)
}

impl AttestationReport {
    /// Parses exactly [`REPORT_SIZE`] bytes. Wrong size → `evidence_malformed`; a version outside
    /// [`SUPPORTED_VERSIONS`] → `unsupported_version`. Reserved bytes are kept, not checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() != REPORT_SIZE {
            return Err(FormatError::WrongSize {
                what: "SEV-SNP attestation report",
                expected: REPORT_SIZE,
                actual: bytes.len(),
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u32("VERSION")?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(FormatError::UnsupportedVersion {
                what: "SEV-SNP report version",
                version,
            });
        }
        let mut reserved = ReportReserved::default();
        let guest_svn = r.u32("GUEST_SVN")?;
        let policy = super::GuestPolicy(r.u64("POLICY")?);
        let family_id = r.array("FAMILY_ID")?;
        let image_id = r.array("IMAGE_ID")?;
        let vmpl = r.u32("VMPL")?;
        let signature_algo = r.u32("SIGNATURE_ALGO")?;
        let current_tcb = r.u64("CURRENT_TCB")?;
        let platform_info = super::PlatformInfo(r.u64("PLATFORM_INFO")?);
        let key_info = r.u32("KEY_INFO")?;
        reserved.after_key_info = r.array("reserved 0x04C")?;
        let report_data = r.array("REPORT_DATA")?;
        let measurement = r.array("MEASUREMENT")?;
        let host_data = r.array("HOST_DATA")?;
        let id_key_digest = r.array("ID_KEY_DIGEST")?;
        let author_key_digest = r.array("AUTHOR_KEY_DIGEST")?;
        let report_id = r.array("REPORT_ID")?;
        let report_id_ma = r.array("REPORT_ID_MA")?;
        let reported_tcb = r.u64("REPORTED_TCB")?;
        let cpuid_bytes: [u8; 3] = r.array("CPUID")?;
        let cpuid = if version >= 3 {
            Some(Cpuid {
                family: cpuid_bytes[0],
                model: cpuid_bytes[1],
                stepping: cpuid_bytes[2],
            })
        } else {
            reserved.cpuid_area = cpuid_bytes;
            None
        };
        reserved.after_cpuid = r.array("reserved 0x18B")?;
        let chip_id = r.array("CHIP_ID")?;
        let committed_tcb = r.u64("COMMITTED_TCB")?;
        let current_version = read_version(&mut r, "CURRENT_VERSION")?;
        reserved.after_current_version = r.u8("reserved 0x1EB")?;
        let committed_version = read_version(&mut r, "COMMITTED_VERSION")?;
        reserved.after_committed_version = r.u8("reserved 0x1EF")?;
        let launch_tcb = r.u64("LAUNCH_TCB")?;
        let mit: [u8; 16] = r.array("MIT_VECTORS")?;
        let (launch_mit_vector, current_mit_vector) = if version >= 5 {
            let (l, c) = mit.split_at(8);
            (Some(le_u64(l)), Some(le_u64(c)))
        } else {
            reserved.mit_vector_area = mit;
            (None, None)
        };
        reserved.before_signature = r.array("reserved 0x208")?;
        let signature = ReportSignature {
            r: r.array("SIGNATURE.R")?,
            s: r.array("SIGNATURE.S")?,
        };
        reserved.after_signature = r.array("reserved 0x330")?;
        debug_assert_eq!(r.pos(), REPORT_SIZE);
        Ok(AttestationReport {
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            signature_algo,
            current_tcb,
            platform_info,
            key_info,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid,
            chip_id,
            committed_tcb,
            current_version,
            committed_version,
            launch_tcb,
            launch_mit_vector,
            current_mit_vector,
            signature,
            reserved,
        })
    }

    /// Serializes to [`REPORT_SIZE`] bytes, the mirror image of [`AttestationReport::parse`]. `cpuid` and the
    /// mitigation vectors, when `None`, take their bytes from the reserved areas.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(REPORT_SIZE);
        w.u32(self.version)
            .u32(self.guest_svn)
            .u64(self.policy.0)
            .bytes(&self.family_id)
            .bytes(&self.image_id)
            .u32(self.vmpl)
            .u32(self.signature_algo)
            .u64(self.current_tcb)
            .u64(self.platform_info.0)
            .u32(self.key_info)
            .bytes(&self.reserved.after_key_info)
            .bytes(&self.report_data)
            .bytes(&self.measurement)
            .bytes(&self.host_data)
            .bytes(&self.id_key_digest)
            .bytes(&self.author_key_digest)
            .bytes(&self.report_id)
            .bytes(&self.report_id_ma)
            .u64(self.reported_tcb);
        match self.cpuid {
            Some(c) => w.bytes(&[c.family, c.model, c.stepping]),
            None => w.bytes(&self.reserved.cpuid_area),
        };
        w.bytes(&self.reserved.after_cpuid)
            .bytes(&self.chip_id)
            .u64(self.committed_tcb);
        write_version(&mut w, self.current_version);
        w.u8(self.reserved.after_current_version);
        write_version(&mut w, self.committed_version);
        w.u8(self.reserved.after_committed_version)
            .u64(self.launch_tcb);
        let (area_launch, area_current) = self.reserved.mit_vector_area.split_at(8);
        match self.launch_mit_vector {
            Some(v) => w.u64(v),
            None => w.bytes(area_launch),
        };
        match self.current_mit_vector {
            Some(v) => w.u64(v),
            None => w.bytes(area_current),
        };
        w.bytes(&self.reserved.before_signature)
            .bytes(&self.signature.r)
            .bytes(&self.signature.s)
            .bytes(&self.reserved.after_signature);
        debug_assert_eq!(w.len(), REPORT_SIZE);
        w.into_vec()
    }

    /// KEY_INFO.SIGNING_KEY (bits 4:2).
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bits(((self.key_info >> 2) & 0x7) as u8)
    }

    /// KEY_INFO.MASK_CHIP_KEY (bit 1): the firmware wrote zeros instead of a signature.
    pub fn mask_chip_key(&self) -> bool {
        self.key_info & 0b10 != 0
    }

    /// KEY_INFO.AUTHOR_KEY_EN (bit 0): AUTHOR_KEY_DIGEST is meaningful.
    pub fn author_key_en(&self) -> bool {
        self.key_info & 0b1 != 0
    }

    /// The product from the CPUID fields (v3+). `None` for v2 reports (take it from the certificate instead) and for
    /// CPUIDs of products without a pinned ARK.
    pub fn product_from_cpuid(&self) -> Option<Product> {
        self.cpuid
            .and_then(|c| Product::from_cpuid(c.family, c.model))
    }

    /// REPORTED_TCB decoded for `product`.
    pub fn reported_tcb_version(&self, product: Product) -> TcbVersion {
        TcbVersion::from_raw(self.reported_tcb, product)
    }

    /// CURRENT_TCB decoded for `product`.
    pub fn current_tcb_version(&self, product: Product) -> TcbVersion {
        TcbVersion::from_raw(self.current_tcb, product)
    }

    /// COMMITTED_TCB decoded for `product`.
    pub fn committed_tcb_version(&self, product: Product) -> TcbVersion {
        TcbVersion::from_raw(self.committed_tcb, product)
    }

    /// LAUNCH_TCB decoded for `product`.
    pub fn launch_tcb_version(&self, product: Product) -> TcbVersion {
        TcbVersion::from_raw(self.launch_tcb, product)
    }

    /// Whether CHIP_ID is all zero (masked): no VCEK can be fetched from KDS for it.
    pub fn chip_id_masked(&self) -> bool {
        !nonzero(&self.chip_id)
    }

    /// The reserved regions (and reserved KEY_INFO bits) that hold non-zero bytes, by name
    /// ([`reserved_region`]). Empty for a well-formed report; the verifier decides whether to refuse.
    pub fn reserved_nonzero(&self) -> Vec<&'static str> {
        use reserved_region as n;
        let rz = &self.reserved;
        let pad = |c: &[u8; 72]| nonzero(&c[48..]);
        [
            (nonzero(&rz.after_key_info), n::AFTER_KEY_INFO),
            (self.key_info >> 5 != 0, n::KEY_INFO_BITS),
            (
                self.cpuid.is_none() && nonzero(&rz.cpuid_area),
                n::CPUID_AREA_V2,
            ),
            (nonzero(&rz.after_cpuid), n::AFTER_CPUID),
            (rz.after_current_version != 0, n::AFTER_CURRENT_VERSION),
            (rz.after_committed_version != 0, n::AFTER_COMMITTED_VERSION),
            (
                (self.launch_mit_vector.is_none() && nonzero(&rz.mit_vector_area[..8]))
                    || (self.current_mit_vector.is_none() && nonzero(&rz.mit_vector_area[8..])),
                n::MIT_VECTOR_AREA,
            ),
            (nonzero(&rz.before_signature), n::BEFORE_SIGNATURE),
            (pad(&self.signature.r), n::SIGNATURE_R_PADDING),
            (pad(&self.signature.s), n::SIGNATURE_S_PADDING),
            (nonzero(&rz.after_signature), n::AFTER_SIGNATURE),
        ]
        .into_iter()
        .filter_map(|(bad, name)| bad.then_some(name))
        .collect()
    }
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

fn read_version(r: &mut Reader<'_>, field: &'static str) -> Result<FirmwareVersion, FormatError> {
    let [build, minor, major] = r.array::<3>(field)?;
    Ok(FirmwareVersion {
        major,
        minor,
        build,
    })
}

fn write_version(w: &mut Writer, v: FirmwareVersion) {
    w.u8(v.build).u8(v.minor).u8(v.major);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A well-formed v3 Milan report with distinct bytes in every field.
    pub(crate) fn sample_report_bytes(version: u32) -> Vec<u8> {
        let mut b: Vec<u8> = (0..REPORT_SIZE).map(|i| (i % 251) as u8).collect();
        b[..4].copy_from_slice(&version.to_le_bytes());
        b
    }

    #[test]
    fn parses_each_supported_version_and_mirrors_the_bytes() {
        for v in SUPPORTED_VERSIONS {
            let raw = sample_report_bytes(v);
            let rep = AttestationReport::parse(&raw).map_err(|e| e.to_string());
            let rep = rep.as_ref().map_err(String::as_str);
            assert!(rep.is_ok(), "v{v}: {rep:?}");
            let Ok(rep) = rep else { return };
            assert_eq!(rep.version, v);
            assert_eq!(rep.to_bytes(), raw, "v{v} must re-serialize byte for byte");
            assert_eq!(rep.cpuid.is_some(), v >= 3);
            assert_eq!(rep.launch_mit_vector.is_some(), v >= 5);
        }
    }

    #[test]
    fn fields_come_from_their_offsets() {
        let mut raw = vec![0u8; REPORT_SIZE];
        raw[0] = 5;
        raw[0x08..0x10].copy_from_slice(&0xb0000u64.to_le_bytes());
        raw[0x30] = 1;
        raw[0x34] = 1;
        raw[0x48] = 0b0000_0111; // AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY = 1 (VLEK)
        raw[0x50] = 0xD1;
        raw[0x90] = 0x3E;
        raw[0xC0] = 0x40;
        raw[0x180..0x188].copy_from_slice(&0x7308000000000003u64.to_le_bytes());
        raw[0x188..0x18B].copy_from_slice(&[0x19, 0x11, 0x01]);
        raw[0x1A0] = 0xC1;
        raw[0x1E8..0x1EB].copy_from_slice(&[0x3d, 0x37, 0x01]);
        raw[0x1F8] = 0x0A;
        raw[0x200] = 0x0B;
        raw[0x2A0] = 0xAA;
        raw[0x2E8] = 0xBB;
        let rep = AttestationReport::parse(&raw).ok();
        let Some(rep) = rep else { panic!("must parse") };
        assert!(rep.policy.debug());
        assert_eq!(rep.vmpl, 1);
        assert_eq!(rep.signature_algo, 1);
        assert!(rep.author_key_en() && rep.mask_chip_key());
        assert_eq!(rep.signing_key(), SigningKey::Vlek);
        assert_eq!(rep.report_data[0], 0xD1);
        assert_eq!(rep.measurement[0], 0x3E);
        assert_eq!(rep.host_data[0], 0x40);
        assert_eq!(rep.reported_tcb_version(Product::Milan).snp, 8);
        assert_eq!(rep.product_from_cpuid(), Some(Product::Genoa));
        assert_eq!(rep.chip_id[0], 0xC1);
        assert_eq!(rep.current_version.to_string(), "1.55.61");
        assert_eq!(rep.launch_mit_vector, Some(0x0A));
        assert_eq!(rep.current_mit_vector, Some(0x0B));
        assert_eq!(rep.signature.r[0], 0xAA);
        assert_eq!(rep.signature.s[0], 0xBB);
        assert!(rep.reserved_nonzero().is_empty());
    }

    #[test]
    fn short_and_long_buffers_are_evidence_malformed() {
        let raw = sample_report_bytes(2);
        for len in [0, 4, REPORT_SIZE - 1] {
            let err = AttestationReport::parse(&raw[..len]).err();
            assert_eq!(
                err.map(|e| e.code()),
                Some("evidence_malformed"),
                "len {len}"
            );
        }
        let mut long = raw.clone();
        long.push(0);
        let err = AttestationReport::parse(&long).err();
        assert_eq!(err.map(|e| e.code()), Some("evidence_malformed"));
    }

    #[test]
    fn versions_outside_the_allow_list_are_unsupported_version() {
        for v in [0, 1, 6, 7, 0x0102, u32::MAX] {
            let err = AttestationReport::parse(&sample_report_bytes(v)).err();
            assert_eq!(
                err.map(|e| e.code()),
                Some("unsupported_version"),
                "version {v}"
            );
        }
    }

    #[test]
    fn signing_key_encodings() {
        let mut rep = AttestationReport::parse(&sample_report_bytes(3)).ok();
        let Some(rep) = rep.as_mut() else {
            panic!("must parse")
        };
        for (bits, key) in [
            (0u32, SigningKey::Vcek),
            (1, SigningKey::Vlek),
            (7, SigningKey::None),
            (3, SigningKey::Reserved(3)),
        ] {
            rep.key_info = bits << 2;
            assert_eq!(rep.signing_key(), key);
            assert_eq!(key.bits() as u32, bits);
        }
    }

    #[test]
    fn reserved_nonzero_names_each_region() {
        let mut raw = vec![0u8; REPORT_SIZE];
        raw[0] = 2;
        let clean = AttestationReport::parse(&raw).ok();
        assert_eq!(clean.map(|r| r.reserved_nonzero()), Some(vec![]));
        for (offset, name) in [
            (0x04C, reserved_region::AFTER_KEY_INFO),
            (0x048, reserved_region::KEY_INFO_BITS),
            (0x188, reserved_region::CPUID_AREA_V2),
            (0x19F, reserved_region::AFTER_CPUID),
            (0x1EB, reserved_region::AFTER_CURRENT_VERSION),
            (0x1EF, reserved_region::AFTER_COMMITTED_VERSION),
            (0x200, reserved_region::MIT_VECTOR_AREA),
            (0x29F, reserved_region::BEFORE_SIGNATURE),
            (0x2D0, reserved_region::SIGNATURE_R_PADDING),
            (0x32F, reserved_region::SIGNATURE_S_PADDING),
            (0x49F, reserved_region::AFTER_SIGNATURE),
        ] {
            let mut dirty = raw.clone();
            dirty[offset] = if offset == 0x048 { 0x20 } else { 1 };
            let rep = AttestationReport::parse(&dirty).ok();
            assert_eq!(
                rep.map(|r| r.reserved_nonzero()),
                Some(vec![name]),
                "{offset:#x}"
            );
        }
    }

    #[test]
    fn cpuid_and_mit_vectors_are_not_reserved_in_later_versions() {
        let mut raw = vec![0u8; REPORT_SIZE];
        raw[0] = 5;
        raw[0x188] = 0x1A;
        raw[0x1F8] = 1;
        raw[0x200] = 1;
        let rep = AttestationReport::parse(&raw).ok();
        assert_eq!(rep.map(|r| r.reserved_nonzero()), Some(vec![]));
    }
}
