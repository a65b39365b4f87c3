//! Platform profiles: a named simulated machine (TEE, product, chip id or PPID, TCB, measurements, debug, site) and
//! the TCB status its collateral is expected to yield. The built-in names are a contract (docs/architecture.md#the-simulator): the example
//! verifier configuration registers their platform identities.
//!
//! SEV-SNP specifics live in [`SnpProfile`]; TDX specifics in [`crate::intel::profile::TdxProfile`].
//!
//! | profile | product | site | report | signer | notes |
//! |---|---|---|---|---|---|
//! | `snp-fra-1` | Milan | fra-1, DE | v3 | VCEK | |
//! | `snp-iad-1` | Genoa | iad-1, US | v3 | VCEK | |
//! | `snp-unregistered` | Milan | — | v3 | VCEK | in no registry |
//! | `snp-turin` | Turin | — | v5 | VCEK | 8-byte hwID, fmcSPL |
//! | `snp-debug` | Milan | — | v3 | VCEK | policy bit 19 |
//! | `snp-vlek` | Milan | — | v3 | VLEK | cspID `locus-sim-cloud` is the platform identity |
//! | `snp-lowtcb` | Milan | — | v3 | VCEK | TCB below the current one (`OutOfDate`) |
//!
//! Chip ids derive from the seed and the name; measurements, host data and ids of the guest image do not depend on
//! the seed, so reference values can be pinned in configuration.

use locus_hw::snp::{Product, TcbVersion};
use locus_hw::TeeType;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha384};

use crate::keys::derive_bytes;

/// Where a built-in platform stands (what `examples/verifier.toml` registers for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    /// Site name, e.g. `fra-1`.
    pub site: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// ISO 3166-2 region.
    pub region: String,
}

impl Site {
    /// Frankfurt: `fra-1`, DE, DE-HE.
    pub fn fra_1() -> Site {
        Site {
            site: "fra-1".into(),
            country: "DE".into(),
            region: "DE-HE".into(),
        }
    }

    /// Ashburn: `iad-1`, US, US-VA.
    pub fn iad_1() -> Site {
        Site {
            site: "iad-1".into(),
            country: "US".into(),
            region: "US-VA".into(),
        }
    }
}

/// What makes a simulated SEV-SNP platform and its guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpProfile {
    /// Product generation.
    pub product: Product,
    /// CHIP_ID (Turin: first 8 bytes meaningful, rest zero).
    pub chip_id: [u8; 64],
    /// REPORTED_TCB (also CURRENT, COMMITTED and LAUNCH TCB of the report).
    pub reported_tcb: TcbVersion,
    /// Launch MEASUREMENT of the guest.
    pub measurement: [u8; 48],
    /// HOST_DATA set by the host.
    pub host_data: [u8; 32],
    /// Guest POLICY (debug = bit 19).
    pub policy: u64,
    /// Report VERSION (3 on Milan/Genoa, 5 on Turin).
    pub report_version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// ID_KEY_DIGEST.
    pub id_key_digest: [u8; 48],
    /// REPORT_ID of the guest.
    pub report_id: [u8; 32],
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// Firmware version (major, minor, build) written as CURRENT and COMMITTED.
    pub firmware: (u8, u8, u8),
    /// `Some(cspID)`: the guest's reports are signed by the cloud provider's VLEK (KEY_INFO.SIGNING_KEY = 1)
    /// instead of the chip's VCEK, and the platform identity is the CSP id (docs/architecture.md#residency-and-the-geo-fence).
    pub vlek_csp_id: Option<String>,
}

/// The cspID of the simulator's cloud provider (`snp-vlek`).
pub const SIM_CSP_ID: &str = "locus-sim-cloud";

/// POLICY debug bit (bit 19).
pub const POLICY_DEBUG: u64 = 1 << 19;
/// Default guest policy: SMT allowed, reserved bit 17 set (0x30000, as the vectors).
pub const POLICY_DEFAULT: u64 = 0x30000;

impl SnpProfile {
    /// The debug bit of the policy.
    pub fn debug(&self) -> bool {
        self.policy & POLICY_DEBUG != 0
    }

    /// The hwID the KDS knows this chip by (Turin: first 8 bytes).
    pub fn hwid(&self) -> &[u8] {
        &self.chip_id[..crate::amd::pki::hwid_len(self.product)]
    }

    /// A profile for `product` with every identity value derived from `seed` and `name`; the TCB is the product's
    /// current one ([`current_tcb`]).
    pub fn derived(seed: u64, name: &str, product: Product) -> SnpProfile {
        let mut chip_id = derive_bytes(seed, &format!("amd:chip-id:{name}"));
        if product == Product::Turin {
            chip_id[8..].fill(0);
        }
        let report_id: [u8; 32] =
            Sha256::digest(derive_bytes(seed, &format!("amd:report-id:{name}"))).into();
        let mut family_id = [0u8; 16];
        family_id.copy_from_slice(&Sha256::digest(b"locus-sim/snp/family-id/v1")[..16]);
        let mut image_id = [0u8; 16];
        image_id.copy_from_slice(&Sha256::digest(b"locus-sim/snp/image-id/v1")[..16]);
        SnpProfile {
            product,
            chip_id,
            reported_tcb: current_tcb(product),
            measurement: demo_measurement(),
            host_data: Sha256::digest(b"locus-sim/snp/host-data/v1").into(),
            policy: POLICY_DEFAULT,
            report_version: if product == Product::Turin { 5 } else { 3 },
            guest_svn: 1,
            family_id,
            image_id,
            id_key_digest: Sha384::digest(b"locus-sim/snp/id-key/v1").into(),
            report_id,
            platform_info: match product {
                Product::Milan => 0x21,
                Product::Genoa | Product::Turin => 0x25,
            },
            vlek_csp_id: None,
            firmware: match product {
                Product::Milan => (1, 55, 62),
                Product::Genoa => (1, 55, 40),
                Product::Turin => (1, 55, 30),
            },
        }
    }
}

/// The launch measurement of the simulator's demo workload image on SEV-SNP: shared by every built-in SNP profile
/// and independent of the seed, so one reference value in configuration admits the image on every simulated
/// platform of every world.
pub fn demo_measurement() -> [u8; 48] {
    Sha384::digest(b"locus-sim/snp/measurement/locus-workload-v1").into()
}

/// The product's up-to-date TCB in the simulated world.
pub fn current_tcb(product: Product) -> TcbVersion {
    match product {
        Product::Milan => TcbVersion {
            fmc: None,
            bootloader: 4,
            tee: 0,
            snp: 23,
            microcode: 213,
        },
        Product::Genoa => TcbVersion {
            fmc: None,
            bootloader: 9,
            tee: 0,
            snp: 23,
            microcode: 72,
        },
        Product::Turin => TcbVersion {
            fmc: Some(1),
            bootloader: 1,
            tee: 0,
            snp: 3,
            microcode: 74,
        },
    }
}

/// An old TCB of the product (below [`current_tcb`] in every component that is non-zero there): what `snp-lowtcb`
/// and the `LowTcb` fault report.
pub fn low_tcb(product: Product) -> TcbVersion {
    match product {
        Product::Milan => TcbVersion {
            fmc: None,
            bootloader: 2,
            tee: 0,
            snp: 6,
            microcode: 93,
        },
        Product::Genoa => TcbVersion {
            fmc: None,
            bootloader: 7,
            tee: 0,
            snp: 14,
            microcode: 62,
        },
        Product::Turin => TcbVersion {
            fmc: Some(0),
            bootloader: 0,
            tee: 0,
            snp: 1,
            microcode: 50,
        },
    }
}

/// The TEE-specific part of a profile.
// A handful of profiles exist per world; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum TeeProfile {
    /// A SEV-SNP platform.
    Snp(SnpProfile),
    /// A TDX platform (defined by the Intel side).
    Tdx(crate::intel::profile::TdxProfile),
}

/// A named simulated platform.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Contract name, e.g. `snp-fra-1`.
    pub name: String,
    /// Where the platform is registered; `None` for the `*-unregistered` profiles and the test-only ones.
    pub site: Option<Site>,
    /// Human description for `locus-sim profiles`.
    pub description: String,
    /// The TCB status a verifier is expected to derive (`UpToDate`, `OutOfDate`, … for TDX; SNP: `UpToDate` when
    /// the TCB is the product's current one, `OutOfDate` when it is older).
    pub expected_tcb_status: String,
    /// TEE-specific data.
    pub tee_profile: TeeProfile,
}

impl Profile {
    /// Which TEE.
    pub fn tee(&self) -> TeeType {
        match &self.tee_profile {
            TeeProfile::Snp(_) => TeeType::SevSnp,
            TeeProfile::Tdx(_) => TeeType::Tdx,
        }
    }

    /// SEV-SNP data, if this is an SNP profile.
    pub fn snp(&self) -> Option<&SnpProfile> {
        match &self.tee_profile {
            TeeProfile::Snp(s) => Some(s),
            TeeProfile::Tdx(_) => None,
        }
    }

    /// TDX data, if this is a TDX profile.
    pub fn tdx(&self) -> Option<&crate::intel::profile::TdxProfile> {
        match &self.tee_profile {
            TeeProfile::Tdx(t) => Some(t),
            TeeProfile::Snp(_) => None,
        }
    }

    /// Debug enabled (SNP policy bit 19 / TDX TD attribute bit 0).
    pub fn debug(&self) -> bool {
        match &self.tee_profile {
            TeeProfile::Snp(s) => s.debug(),
            TeeProfile::Tdx(t) => t.debug(),
        }
    }

    /// The platform identity a verifier registry keys on (docs/architecture.md#residency-and-the-geo-fence): the SNP CHIP_ID (64 bytes as in the report),
    /// the VLEK cspID (UTF-8 bytes) for VLEK-signed profiles, or the TDX PPID.
    pub fn platform_id(&self) -> Vec<u8> {
        match &self.tee_profile {
            TeeProfile::Snp(s) => match &s.vlek_csp_id {
                Some(csp) => csp.as_bytes().to_vec(),
                None => s.chip_id.to_vec(),
            },
            TeeProfile::Tdx(t) => t.ppid.to_vec(),
        }
    }

    /// Lowercase hex of [`Profile::platform_id`].
    pub fn platform_id_hex(&self) -> String {
        hex::encode(self.platform_id())
    }

    /// The JSON object `locus-sim profiles --json` prints for this profile.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "name": self.name,
            "tee": self.tee().as_str(),
            "description": self.description,
            "site": self.site.as_ref().map(|s| s.site.clone()),
            "country": self.site.as_ref().map(|s| s.country.clone()),
            "region": self.site.as_ref().map(|s| s.region.clone()),
            "debug": self.debug(),
            "expected_tcb_status": self.expected_tcb_status,
            "platform_id": self.platform_id_hex(),
        });
        if let (Some(obj), Some(extra)) = (v.as_object_mut(), self.tee_json().as_object()) {
            for (k, val) in extra {
                obj.insert(k.clone(), val.clone());
            }
        }
        v
    }

    fn tee_json(&self) -> serde_json::Value {
        match &self.tee_profile {
            TeeProfile::Snp(s) => {
                let (maj, min, build) = s.firmware;
                serde_json::json!({
                    "product": s.product.kds_name(),
                    "chip_id": hex::encode(s.chip_id),
                    "hwid": hex::encode(s.hwid()),
                    "report_version": s.report_version,
                    "reported_tcb": {
                        "fmc": s.reported_tcb.fmc,
                        "bootloader": s.reported_tcb.bootloader,
                        "tee": s.reported_tcb.tee,
                        "snp": s.reported_tcb.snp,
                        "microcode": s.reported_tcb.microcode,
                    },
                    "measurement": hex::encode(s.measurement),
                    "host_data": hex::encode(s.host_data),
                    "policy": format!("{:#x}", s.policy),
                    "firmware": format!("{maj}.{min}.{build}"),
                    "signer": if s.vlek_csp_id.is_some() { "vlek" } else { "vcek" },
                    "csp_id": s.vlek_csp_id,
                })
            }
            TeeProfile::Tdx(t) => tdx_json(t),
        }
    }
}

fn tdx_json(t: &crate::intel::profile::TdxProfile) -> serde_json::Value {
    use crate::intel::profile::TdxTcbExpectation;
    let (status, advisories) = match &t.expected {
        TdxTcbExpectation::Status {
            status,
            advisory_ids,
        } => (Some(status.clone()), advisory_ids.clone()),
        TdxTcbExpectation::NoMatchingLevel => (None, Vec::new()),
    };
    serde_json::json!({
        "quote_version": t.quote_version,
        "ppid": hex::encode(t.ppid),
        "fmspc": hex::encode(t.fmspc),
        "mr_td": hex::encode(t.mr_td),
        "rtmr": t.rtmr.iter().map(hex::encode).collect::<Vec<_>>(),
        "mr_seam": hex::encode(t.mr_seam),
        "td_attributes": hex::encode(t.td_attributes),
        "tee_tcb_svn": hex::encode(t.tee_tcb_svn),
        "cpu_svn": hex::encode(t.cpu_svn),
        "pce_svn": t.pce_svn,
        "tcb_status": status,
        "advisory_ids": advisories,
    })
}

/// The TDX built-ins as profiles, with the sites of the contract names.
pub fn builtin_tdx_profiles(seed: u64) -> Vec<Profile> {
    use crate::intel::profile::{TdxProfile, TdxTcbExpectation};
    TdxProfile::builtins(seed)
        .into_iter()
        .map(|t| {
            let site = match t.name.as_str() {
                "tdx-fra-1" => Some(Site::fra_1()),
                "tdx-iad-1" => Some(Site::iad_1()),
                _ => None,
            };
            let expected_tcb_status = match &t.expected {
                TdxTcbExpectation::Status { status, .. } => status.clone(),
                TdxTcbExpectation::NoMatchingLevel => "TcbNotSupported".to_string(),
            };
            let description = match t.name.as_str() {
                "tdx-fra-1" => "TDX host at site fra-1 (DE), quote v4".to_string(),
                "tdx-iad-1" => "TDX host at site iad-1 (US), quote v5 (TD 1.5)".to_string(),
                "tdx-unregistered" => "TDX host in no registry (location unknown)".to_string(),
                "tdx-outofdate" => "TDX host whose platform TCB is OutOfDate".to_string(),
                "tdx-tcb-not-supported" => {
                    "TDX host below every TCB level of the collateral".to_string()
                }
                "tdx-debug" => "TDX debug TD (TD_ATTRIBUTES.DEBUG)".to_string(),
                other => format!("TDX host {other}"),
            };
            Profile {
                name: t.name.clone(),
                site,
                description,
                expected_tcb_status,
                tee_profile: TeeProfile::Tdx(t),
            }
        })
        .collect()
}

/// The built-in SNP profiles of a world.
pub fn builtin_snp_profiles(seed: u64) -> Vec<Profile> {
    let snp = |name: &str, product: Product, site: Option<Site>, desc: &str| -> Profile {
        Profile {
            name: name.to_string(),
            site,
            description: desc.to_string(),
            expected_tcb_status: "UpToDate".to_string(),
            tee_profile: TeeProfile::Snp(SnpProfile::derived(seed, name, product)),
        }
    };
    let mut out = vec![
        snp(
            "snp-fra-1",
            Product::Milan,
            Some(Site::fra_1()),
            "SEV-SNP Milan host at site fra-1 (DE)",
        ),
        snp(
            "snp-iad-1",
            Product::Genoa,
            Some(Site::iad_1()),
            "SEV-SNP Genoa host at site iad-1 (US)",
        ),
        snp(
            "snp-unregistered",
            Product::Milan,
            None,
            "SEV-SNP Milan host in no registry (location unknown)",
        ),
        snp(
            "snp-turin",
            Product::Turin,
            None,
            "SEV-SNP Turin host (report v5, 8-byte hwID)",
        ),
    ];
    let mut debug = snp(
        "snp-debug",
        Product::Milan,
        None,
        "SEV-SNP Milan guest with debug allowed (policy bit 19)",
    );
    if let TeeProfile::Snp(s) = &mut debug.tee_profile {
        s.policy |= POLICY_DEBUG;
    }
    out.push(debug);
    let mut vlek = snp(
        "snp-vlek",
        Product::Milan,
        None,
        "SEV-SNP Milan guest whose reports a cloud provider's VLEK signs (cspID locus-sim-cloud)",
    );
    if let TeeProfile::Snp(s) = &mut vlek.tee_profile {
        s.vlek_csp_id = Some(SIM_CSP_ID.to_string());
    }
    out.push(vlek);
    let mut low = snp(
        "snp-lowtcb",
        Product::Milan,
        None,
        "SEV-SNP Milan host with an old TCB (below the minimum)",
    );
    if let TeeProfile::Snp(s) = &mut low.tee_profile {
        s.reported_tcb = low_tcb(Product::Milan);
    }
    low.expected_tcb_status = "OutOfDate".to_string();
    out.push(low);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turin_chip_id_has_only_eight_significant_bytes() {
        let p = SnpProfile::derived(1, "x", Product::Turin);
        assert!(p.chip_id[8..].iter().all(|b| *b == 0));
        assert_eq!(p.hwid().len(), 8);
        assert_eq!(p.report_version, 5);
    }

    #[test]
    fn chip_ids_differ_per_name_and_seed() {
        let a = SnpProfile::derived(1, "a", Product::Milan).chip_id;
        assert_ne!(a, SnpProfile::derived(1, "b", Product::Milan).chip_id);
        assert_ne!(a, SnpProfile::derived(2, "a", Product::Milan).chip_id);
        assert_eq!(a, SnpProfile::derived(1, "a", Product::Milan).chip_id);
    }

    #[test]
    fn low_tcb_is_below_current_tcb() {
        for p in Product::ALL {
            assert!(current_tcb(p).meets(&low_tcb(p)));
            assert!(!low_tcb(p).meets(&current_tcb(p)));
        }
    }
}
