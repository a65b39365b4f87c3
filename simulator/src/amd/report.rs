//! SEV-SNP ATTESTATION_REPORT encoding (SEV-SNP Firmware ABI, publication 56860), written field by field at the spec's offsets, independently
//! of `locus_hw`'s serializer so the two cross-check each other, then signed over raw[0x000..0x2A0] with the VCEK.

use locus_hw::snp::{Product, TcbVersion};
use signature::Signer as _;

use crate::error::SimError;

/// Size of a report.
pub const REPORT_SIZE: usize = 0x4A0;
/// End of the signed range.
pub const SIGNED_LEN: usize = 0x2A0;

/// Everything that goes into a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFields {
    /// Product (selects the TCB layout and the CPUID bytes).
    pub product: Product,
    /// VERSION (3 or 5 in the built-in profiles; 2..=5 accepted).
    pub version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// POLICY.
    pub policy: u64,
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// VMPL.
    pub vmpl: u32,
    /// CURRENT_TCB.
    pub current_tcb: TcbVersion,
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// KEY_INFO (0 = VCEK-signed, author key off, chip key not masked).
    pub key_info: u32,
    /// REPORT_DATA.
    pub report_data: [u8; 64],
    /// MEASUREMENT.
    pub measurement: [u8; 48],
    /// HOST_DATA.
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST.
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST.
    pub author_key_digest: [u8; 48],
    /// REPORT_ID.
    pub report_id: [u8; 32],
    /// REPORT_ID_MA.
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB (the VCEK's TCB).
    pub reported_tcb: TcbVersion,
    /// CHIP_ID (Turin: first 8 bytes, rest zero).
    pub chip_id: [u8; 64],
    /// COMMITTED_TCB.
    pub committed_tcb: TcbVersion,
    /// CURRENT firmware version (major, minor, build).
    pub current_version: (u8, u8, u8),
    /// COMMITTED firmware version.
    pub committed_version: (u8, u8, u8),
    /// LAUNCH_TCB.
    pub launch_tcb: TcbVersion,
    /// LAUNCH_MIT_VECTOR (v5 only).
    pub launch_mit_vector: u64,
    /// CURRENT_MIT_VECTOR (v5 only).
    pub current_mit_vector: u64,
}

/// CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP written by a v3+ report on each product (the vectors' values).
pub fn cpuid(product: Product) -> (u8, u8, u8) {
    match product {
        Product::Milan => (0x19, 0x01, 0x01),
        Product::Genoa => (0x19, 0x11, 0x01),
        Product::Turin => (0x1A, 0x02, 0x01),
    }
}

/// Pack a TCB_VERSION for `product` (its layout depends on the product).
pub fn tcb_raw(tcb: &TcbVersion, product: Product) -> u64 {
    let mut b = [0u8; 8];
    if product == Product::Turin {
        b[0] = tcb.fmc.unwrap_or(0);
        b[1] = tcb.bootloader;
        b[2] = tcb.tee;
        b[3] = tcb.snp;
    } else {
        b[0] = tcb.bootloader;
        b[1] = tcb.tee;
        b[6] = tcb.snp;
    }
    b[7] = tcb.microcode;
    u64::from_le_bytes(b)
}

fn put(raw: &mut [u8], offset: usize, bytes: &[u8]) {
    raw[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// Encode the report with a zero signature.
pub fn encode_unsigned(f: &ReportFields) -> Result<[u8; REPORT_SIZE], SimError> {
    if !(2..=5).contains(&f.version) {
        return Err(SimError::Invalid(format!(
            "SNP report version {} is not in 2..=5",
            f.version
        )));
    }
    let p = f.product;
    let mut raw = [0u8; REPORT_SIZE];
    put(&mut raw, 0x000, &f.version.to_le_bytes());
    put(&mut raw, 0x004, &f.guest_svn.to_le_bytes());
    put(&mut raw, 0x008, &f.policy.to_le_bytes());
    put(&mut raw, 0x010, &f.family_id);
    put(&mut raw, 0x020, &f.image_id);
    put(&mut raw, 0x030, &f.vmpl.to_le_bytes());
    put(&mut raw, 0x034, &1u32.to_le_bytes()); // SIGNATURE_ALGO: ECDSA P-384 with SHA-384
    put(&mut raw, 0x038, &tcb_raw(&f.current_tcb, p).to_le_bytes());
    put(&mut raw, 0x040, &f.platform_info.to_le_bytes());
    put(&mut raw, 0x048, &f.key_info.to_le_bytes());
    put(&mut raw, 0x050, &f.report_data);
    put(&mut raw, 0x090, &f.measurement);
    put(&mut raw, 0x0C0, &f.host_data);
    put(&mut raw, 0x0E0, &f.id_key_digest);
    put(&mut raw, 0x110, &f.author_key_digest);
    put(&mut raw, 0x140, &f.report_id);
    put(&mut raw, 0x160, &f.report_id_ma);
    put(&mut raw, 0x180, &tcb_raw(&f.reported_tcb, p).to_le_bytes());
    if f.version >= 3 {
        let (fam, model, step) = cpuid(p);
        put(&mut raw, 0x188, &[fam, model, step]);
    }
    put(&mut raw, 0x1A0, &f.chip_id);
    put(&mut raw, 0x1E0, &tcb_raw(&f.committed_tcb, p).to_le_bytes());
    let (maj, min, build) = f.current_version;
    put(&mut raw, 0x1E8, &[build, min, maj, 0]);
    let (maj, min, build) = f.committed_version;
    put(&mut raw, 0x1EC, &[build, min, maj, 0]);
    put(&mut raw, 0x1F0, &tcb_raw(&f.launch_tcb, p).to_le_bytes());
    if f.version >= 5 {
        put(&mut raw, 0x1F8, &f.launch_mit_vector.to_le_bytes());
        put(&mut raw, 0x200, &f.current_mit_vector.to_le_bytes());
    }
    Ok(raw)
}

/// Sign raw[0..0x2A0] with `key` (ECDSA P-384, SHA-384, RFC 6979) and write r and s little-endian, zero-padded to
/// 72 bytes, at 0x2A0 and 0x2E8.
pub fn sign(raw: &mut [u8; REPORT_SIZE], key: &p384::ecdsa::SigningKey) -> Result<(), SimError> {
    let sig: p384::ecdsa::Signature = key
        .try_sign(&raw[..SIGNED_LEN])
        .map_err(|e| SimError::Invalid(format!("ECDSA: {e}")))?;
    let (r, s) = sig.split_bytes();
    let mut r_le = [0u8; 72];
    let mut s_le = [0u8; 72];
    for i in 0..48 {
        r_le[i] = r[47 - i];
        s_le[i] = s[47 - i];
    }
    put(raw, 0x2A0, &r_le);
    put(raw, 0x2E8, &s_le);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcb_raw_matches_the_vectors_examples() {
        let milan = TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        };
        assert_eq!(tcb_raw(&milan, Product::Milan), 0x7308000000000003);
        let turin = TcbVersion {
            fmc: Some(0),
            bootloader: 1,
            tee: 0,
            snp: 2,
            microcode: 71,
        };
        assert_eq!(tcb_raw(&turin, Product::Turin), 0x4700000002000100);
    }

    fn fields(version: u32, product: Product) -> ReportFields {
        ReportFields {
            product,
            version,
            guest_svn: 0,
            policy: 0x30000,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: 0,
            current_tcb: TcbVersion::default(),
            platform_info: 0,
            key_info: 0,
            report_data: [0; 64],
            measurement: [0; 48],
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id: [0; 32],
            report_id_ma: [0xff; 32],
            reported_tcb: TcbVersion::default(),
            chip_id: [0; 64],
            committed_tcb: TcbVersion::default(),
            current_version: (1, 55, 0),
            committed_version: (1, 55, 0),
            launch_tcb: TcbVersion::default(),
            launch_mit_vector: 0x1122,
            current_mit_vector: 0x3344,
        }
    }

    #[test]
    fn version_outside_allow_list_is_refused() {
        for v in [0, 1, 6] {
            assert!(matches!(
                encode_unsigned(&fields(v, Product::Milan)),
                Err(SimError::Invalid(_))
            ));
        }
    }

    #[test]
    fn cpuid_only_from_v3_and_mitigation_vectors_only_in_v5() {
        let v2 = encode_unsigned(&fields(2, Product::Milan)).expect("v2");
        assert_eq!(&v2[0x188..0x18B], &[0, 0, 0]);
        let v3 = encode_unsigned(&fields(3, Product::Genoa)).expect("v3");
        assert_eq!(&v3[0x188..0x18B], &[0x19, 0x11, 0x01]);
        assert_eq!(&v3[0x1F8..0x208], &[0u8; 16]);
        let v5 = encode_unsigned(&fields(5, Product::Turin)).expect("v5");
        assert_eq!(&v5[0x188..0x18B], &[0x1A, 0x02, 0x01]);
        assert_eq!(
            u64::from_le_bytes(v5[0x1F8..0x200].try_into().expect("8")),
            0x1122
        );
        assert_eq!(
            u64::from_le_bytes(v5[0x200..0x208].try_into().expect("8")),
            0x3344
        );
        assert_eq!(
            &v5[0x1E8..0x1EC],
            &[0, 55, 1, 0],
            "build, minor, major, reserved"
        );
        assert_eq!(
            u32::from_le_bytes(v5[0x34..0x38].try_into().expect("4")),
            1,
            "ECDSA P-384"
        );
    }

    #[test]
    fn signature_is_little_endian_zero_padded_and_verifies() {
        use signature::Verifier;
        let key = crate::keys::p384_key(3, "report-test");
        let mut raw = encode_unsigned(&fields(3, Product::Milan)).expect("encode");
        sign(&mut raw, &key).expect("sign");
        assert!(raw[0x2D0..0x2E8].iter().all(|b| *b == 0), "r padding");
        assert!(raw[0x318..0x330].iter().all(|b| *b == 0), "s padding");
        let mut rs = [0u8; 96];
        for i in 0..48 {
            rs[i] = raw[0x2A0 + 47 - i];
            rs[48 + i] = raw[0x2E8 + 47 - i];
        }
        let sig = p384::ecdsa::Signature::from_slice(&rs).expect("r||s");
        assert!(key.verifying_key().verify(&raw[..SIGNED_LEN], &sig).is_ok());
    }
}
