//! Policy over verified facts (docs/architecture.md#appraisal "Policy then checks"). Appraisal proves the facts; this decides whether they
//! are acceptable, and derives the SNP `tcb_status` from the TCB the operator declares current.
//!
//! A [`Policy`] holds reference values as bytes (parsed once, when the config or policy file is read). The service
//! builds one per workload ([`crate::config`]); the CLI's `--policy FILE` is [`PolicyFile`] as TOML, where every field
//! is optional and defaults to the strict choice:
//!
//! ```toml
//! allow_debug = false                 # refuse debug guests / TDs (debug_enabled)
//! allow_migration = false             # refuse SNP MIGRATE_MA / TDX MIGRATABLE (migration_enabled)
//! allow_service_td = false            # refuse a TD bound to service TDs: MRSERVICETD ≠ 0, SERVTD_EXT (policy_rejected)
//! require_revocation = true           # SNP: refuse when no valid CRL was checked (collateral_missing)
//! snp_allowed_vmpl = [0]              # SNP VMPLs accepted (vmpl_rejected)
//! snp_allowed_tcb = ["UpToDate"]      # SNP TCB statuses accepted (tcb_status_rejected)
//! tdx_allowed_tcb = ["UpToDate"]      # TDX TCB statuses accepted (tcb_status_rejected)
//! [snp_current_tcb.milan]             # the TCB the operator considers current per product; REPORTED_TCB at or above
//! bootloader = 3                      #   it is UpToDate, below OutOfDate; a product not declared is tcb_not_supported
//! tee = 0
//! snp = 8
//! microcode = 115                     # (turin also takes fmc)
//! [snp_min_tcb]                       # per-component SNP floor over current, committed, reported and launch TCB
//! microcode = 115                     #   (tcb_below_minimum); absent components are not checked
//! [snp_min_tcb_by_product.genoa]      # a floor for one product, used instead of snp_min_tcb for it
//! snp = 21
//! [snp]                               # SNP launch properties
//! min_guest_svn = 0                   #   (tcb_below_minimum)
//! min_policy_abi = "1.51"             #   guest policy ABI MAJOR.MINOR floor (policy_rejected)
//! require_smt_disabled = false        #   PLATFORM_INFO requirements, off by default (policy_rejected)
//! require_tsme = false
//! require_alias_check = false
//! [tdx]
//! td_attributes_mask = "<16 hex>"     #   with td_attributes_value: (TD_ATTRIBUTES & mask) == value (policy_rejected)
//! td_attributes_value = "<16 hex>"
//! pck_sgx_type = [1]                  #   allowed PCK SGX types; pck_dynamic_platform, pck_cached_keys,
//!                                     #   pck_smt_enabled = true|false require a PCK flag value (policy_rejected)
//! [measurements]                      # reference values (measurement_unknown on a miss), hex; an empty or absent
//! snp_measurement = ["<hex>"]         #   list accepts any value
//! snp_host_data = ["<hex>"]           # also snp_id_key_digest, snp_author_key_digest, snp_family_id, snp_image_id
//! tdx_mr_td = ["<hex>"]               # also tdx_mr_config_id, tdx_mr_owner, tdx_mr_owner_config, tdx_xfam,
//! tdx_rtmr0 = ["<hex>"]               #   tdx_rtmr1, tdx_rtmr2, tdx_rtmr3
//! ```

use std::collections::BTreeMap;

use locus_hw::snp::{GuestPolicy, PlatformInfo, Product, TcbVersion};
use locus_hw::tdx::TdAttributes;
use serde::Deserialize;

use super::snp::Revocation;
use super::{Facts, SnpFacts, TdxFacts, Verified};
use crate::error::{ErrorCode, Refusal};

/// Minimum SNP TCB, per component (never compare the packed value: its layout depends on the product).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MinTcb {
    pub fmc: Option<u8>,
    pub bootloader: Option<u8>,
    pub tee: Option<u8>,
    pub snp: Option<u8>,
    pub microcode: Option<u8>,
}

/// The TCB the operator declares current for one SNP product (every component required; `fmc` only on Turin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentTcb {
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

/// `(TD_ATTRIBUTES & mask) == value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributesMask {
    pub mask: u64,
    pub value: u64,
}

/// SEV-SNP rules. Empty reference lists mean "not constrained".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpPolicy {
    pub allowed_vmpl: Vec<u32>,
    /// Per product: REPORTED_TCB ≥ this ⇒ `UpToDate`, else `OutOfDate`; an absent product ⇒ `tcb_not_supported`.
    pub current_tcb: BTreeMap<Product, CurrentTcb>,
    pub allowed_tcb: Vec<String>,
    pub min_tcb: Option<MinTcb>,
    pub min_tcb_by_product: BTreeMap<Product, MinTcb>,
    pub measurement: Vec<[u8; 48]>,
    pub host_data: Vec<[u8; 32]>,
    pub id_key_digest: Vec<[u8; 48]>,
    pub author_key_digest: Vec<[u8; 48]>,
    pub family_id: Vec<[u8; 16]>,
    pub image_id: Vec<[u8; 16]>,
    pub min_guest_svn: Option<u32>,
    /// Minimum guest policy ABI (major, minor).
    pub min_abi: Option<(u8, u8)>,
    pub require_smt_disabled: bool,
    pub require_tsme: bool,
    pub require_alias_check: bool,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        SnpPolicy {
            allowed_vmpl: vec![0],
            current_tcb: BTreeMap::new(),
            allowed_tcb: vec![SNP_UP_TO_DATE.to_string()],
            min_tcb: None,
            min_tcb_by_product: BTreeMap::new(),
            measurement: Vec::new(),
            host_data: Vec::new(),
            id_key_digest: Vec::new(),
            author_key_digest: Vec::new(),
            family_id: Vec::new(),
            image_id: Vec::new(),
            min_guest_svn: None,
            min_abi: None,
            require_smt_disabled: false,
            require_tsme: false,
            require_alias_check: false,
        }
    }
}

/// TDX rules. Empty reference lists mean "not constrained".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxPolicy {
    pub allowed_tcb: Vec<String>,
    pub mr_td: Vec<[u8; 48]>,
    pub rtmr: [Vec<[u8; 48]>; 4],
    pub mr_config_id: Vec<[u8; 48]>,
    pub mr_owner: Vec<[u8; 48]>,
    pub mr_owner_config: Vec<[u8; 48]>,
    pub xfam: Vec<[u8; 8]>,
    pub td_attributes: Option<AttributesMask>,
    pub pck_sgx_type: Vec<u64>,
    pub pck_dynamic_platform: Option<bool>,
    pub pck_cached_keys: Option<bool>,
    pub pck_smt_enabled: Option<bool>,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        TdxPolicy {
            allowed_tcb: vec!["UpToDate".to_string()],
            mr_td: Vec::new(),
            rtmr: Default::default(),
            mr_config_id: Vec::new(),
            mr_owner: Vec::new(),
            mr_owner_config: Vec::new(),
            xfam: Vec::new(),
            td_attributes: None,
            pck_sgx_type: Vec::new(),
            pck_dynamic_platform: None,
            pck_cached_keys: None,
            pck_smt_enabled: None,
        }
    }
}

/// An appraisal policy. `Policy::default()` is the strict one: no debug, no migration, no service TDs, revocation
/// required, VMPL 0, `UpToDate` only (and, with no SNP TCB declared, every SNP report is `tcb_not_supported`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub allow_debug: bool,
    pub allow_migration: bool,
    pub allow_service_td: bool,
    pub require_revocation: bool,
    pub snp: SnpPolicy,
    pub tdx: TdxPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_debug: false,
            allow_migration: false,
            allow_service_td: false,
            require_revocation: true,
            snp: SnpPolicy::default(),
            tdx: TdxPolicy::default(),
        }
    }
}

/// The SNP TCB statuses Locus derives (an SNP report has no vendor status).
pub const SNP_UP_TO_DATE: &str = "UpToDate";
pub const SNP_OUT_OF_DATE: &str = "OutOfDate";
pub const SNP_TCB_STATUSES: [&str; 2] = [SNP_UP_TO_DATE, SNP_OUT_OF_DATE];

/// The TCB status strings Intel defines (PCS TCB info `tcbStatus`); a policy naming anything else is refused when parsed.
pub const TDX_TCB_STATUSES: [&str; 9] = [
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

/// What passing the policy established beyond the facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// SNP: derived from the declared current TCB; TDX: Intel's status.
    pub tcb_status: String,
}

/// Decode `MAJOR.MINOR` (e.g. `"1.51"`).
pub fn parse_abi(text: &str) -> Result<(u8, u8), String> {
    let (a, b) = text
        .split_once('.')
        .ok_or_else(|| format!("{text:?} is not MAJOR.MINOR"))?;
    let major = a
        .parse::<u8>()
        .map_err(|_| format!("{text:?}: major is not 0..=255"))?;
    let minor = b
        .parse::<u8>()
        .map_err(|_| format!("{text:?}: minor is not 0..=255"))?;
    Ok((major, minor))
}

/// Decode exactly `N` bytes of hex (either case).
pub fn hex_array<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(text).map_err(|e| format!("{text:?} is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("expected {N} bytes of hex, got {}", b.len()))
}

fn hex_list<const N: usize>(what: &str, list: &[String]) -> Result<Vec<[u8; N]>, String> {
    list.iter()
        .map(|v| hex_array::<N>(v).map_err(|e| format!("policy: {what}: {e}")))
        .collect()
}

/// The CLI's `--policy` TOML (module docs). Converted once into a [`Policy`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub allow_debug: bool,
    #[serde(default)]
    pub allow_migration: bool,
    #[serde(default)]
    pub allow_service_td: bool,
    pub require_revocation: Option<bool>,
    pub snp_allowed_vmpl: Option<Vec<u32>>,
    pub snp_allowed_tcb: Option<Vec<String>>,
    pub tdx_allowed_tcb: Option<Vec<String>>,
    #[serde(default)]
    pub snp_current_tcb: BTreeMap<String, CurrentTcb>,
    pub snp_min_tcb: Option<MinTcb>,
    #[serde(default)]
    pub snp_min_tcb_by_product: BTreeMap<String, MinTcb>,
    #[serde(default)]
    pub snp: PolicyFileSnp,
    #[serde(default)]
    pub tdx: PolicyFileTdx,
    #[serde(default)]
    pub measurements: PolicyFileMeasurements,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFileSnp {
    pub min_guest_svn: Option<u32>,
    pub min_policy_abi: Option<String>,
    #[serde(default)]
    pub require_smt_disabled: bool,
    #[serde(default)]
    pub require_tsme: bool,
    #[serde(default)]
    pub require_alias_check: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFileTdx {
    pub td_attributes_mask: Option<String>,
    pub td_attributes_value: Option<String>,
    #[serde(default)]
    pub pck_sgx_type: Vec<u64>,
    pub pck_dynamic_platform: Option<bool>,
    pub pck_cached_keys: Option<bool>,
    pub pck_smt_enabled: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFileMeasurements {
    #[serde(default)]
    pub snp_measurement: Vec<String>,
    #[serde(default)]
    pub snp_host_data: Vec<String>,
    #[serde(default)]
    pub snp_id_key_digest: Vec<String>,
    #[serde(default)]
    pub snp_author_key_digest: Vec<String>,
    #[serde(default)]
    pub snp_family_id: Vec<String>,
    #[serde(default)]
    pub snp_image_id: Vec<String>,
    #[serde(default)]
    pub tdx_mr_td: Vec<String>,
    #[serde(default)]
    pub tdx_mr_config_id: Vec<String>,
    #[serde(default)]
    pub tdx_mr_owner: Vec<String>,
    #[serde(default)]
    pub tdx_mr_owner_config: Vec<String>,
    #[serde(default)]
    pub tdx_xfam: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr0: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr1: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr2: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr3: Vec<String>,
}

/// A product name as written in configuration (`milan`, `genoa`, `turin`; KDS spelling accepted too).
pub fn parse_product(name: &str) -> Result<Product, String> {
    Product::ALL
        .into_iter()
        .find(|p| p.kds_name().eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("unknown SEV-SNP product {name:?} (milan, genoa, turin)"))
}

/// Check a `CurrentTcb` against its product's layout: `fmc` exactly on Turin.
pub fn check_current_tcb(product: Product, tcb: &CurrentTcb) -> Result<(), String> {
    match (product == Product::Turin, tcb.fmc.is_some()) {
        (true, false) => Err(format!(
            "{product}: fmc is required (Turin TCB has an FMC SPL)"
        )),
        (false, true) => Err(format!("{product}: fmc exists on Turin only")),
        _ => Ok(()),
    }
}

/// Check a list of status names against the known ones.
pub fn check_statuses(what: &str, list: &[String], known: &[&str]) -> Result<(), String> {
    if list.is_empty() {
        return Err(format!("{what}: must name at least one TCB status"));
    }
    for s in list {
        if !known.contains(&s.as_str()) {
            return Err(format!(
                "{what}: unknown TCB status {s:?} (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

impl PolicyFile {
    /// Validate and convert (hex decoded once).
    pub fn into_policy(self) -> Result<Policy, String> {
        let snp_allowed_tcb = self
            .snp_allowed_tcb
            .unwrap_or_else(|| vec![SNP_UP_TO_DATE.to_string()]);
        check_statuses(
            "policy: snp_allowed_tcb",
            &snp_allowed_tcb,
            &SNP_TCB_STATUSES,
        )?;
        let tdx_allowed_tcb = self
            .tdx_allowed_tcb
            .unwrap_or_else(|| vec!["UpToDate".to_string()]);
        check_statuses(
            "policy: tdx_allowed_tcb",
            &tdx_allowed_tcb,
            &TDX_TCB_STATUSES,
        )?;
        let mut current_tcb = BTreeMap::new();
        for (name, tcb) in self.snp_current_tcb {
            let product = parse_product(&name).map_err(|e| format!("policy: {e}"))?;
            check_current_tcb(product, &tcb).map_err(|e| format!("policy: {e}"))?;
            current_tcb.insert(product, tcb);
        }
        let mut min_tcb_by_product = BTreeMap::new();
        for (name, tcb) in self.snp_min_tcb_by_product {
            let product = parse_product(&name).map_err(|e| format!("policy: {e}"))?;
            min_tcb_by_product.insert(product, tcb);
        }
        let m = &self.measurements;
        let td_attributes = match (&self.tdx.td_attributes_mask, &self.tdx.td_attributes_value) {
            (None, None) => None,
            (Some(mask), Some(value)) => Some(AttributesMask {
                mask: u64::from_be_bytes(hex_array::<8>(mask)?),
                value: u64::from_be_bytes(hex_array::<8>(value)?),
            }),
            _ => {
                return Err(
                    "policy: tdx.td_attributes_mask and td_attributes_value go together".into(),
                )
            }
        };
        Ok(Policy {
            allow_debug: self.allow_debug,
            allow_migration: self.allow_migration,
            allow_service_td: self.allow_service_td,
            require_revocation: self.require_revocation.unwrap_or(true),
            snp: SnpPolicy {
                allowed_vmpl: self.snp_allowed_vmpl.unwrap_or_else(|| vec![0]),
                current_tcb,
                allowed_tcb: snp_allowed_tcb,
                min_tcb: self.snp_min_tcb,
                min_tcb_by_product,
                measurement: hex_list("snp_measurement", &m.snp_measurement)?,
                host_data: hex_list("snp_host_data", &m.snp_host_data)?,
                id_key_digest: hex_list("snp_id_key_digest", &m.snp_id_key_digest)?,
                author_key_digest: hex_list("snp_author_key_digest", &m.snp_author_key_digest)?,
                family_id: hex_list("snp_family_id", &m.snp_family_id)?,
                image_id: hex_list("snp_image_id", &m.snp_image_id)?,
                min_guest_svn: self.snp.min_guest_svn,
                min_abi: self
                    .snp
                    .min_policy_abi
                    .as_deref()
                    .map(parse_abi)
                    .transpose()
                    .map_err(|e| format!("policy: snp.min_policy_abi: {e}"))?,
                require_smt_disabled: self.snp.require_smt_disabled,
                require_tsme: self.snp.require_tsme,
                require_alias_check: self.snp.require_alias_check,
            },
            tdx: TdxPolicy {
                allowed_tcb: tdx_allowed_tcb,
                mr_td: hex_list("tdx_mr_td", &m.tdx_mr_td)?,
                rtmr: [
                    hex_list("tdx_rtmr0", &m.tdx_rtmr0)?,
                    hex_list("tdx_rtmr1", &m.tdx_rtmr1)?,
                    hex_list("tdx_rtmr2", &m.tdx_rtmr2)?,
                    hex_list("tdx_rtmr3", &m.tdx_rtmr3)?,
                ],
                mr_config_id: hex_list("tdx_mr_config_id", &m.tdx_mr_config_id)?,
                mr_owner: hex_list("tdx_mr_owner", &m.tdx_mr_owner)?,
                mr_owner_config: hex_list("tdx_mr_owner_config", &m.tdx_mr_owner_config)?,
                xfam: hex_list("tdx_xfam", &m.tdx_xfam)?,
                td_attributes,
                pck_sgx_type: self.tdx.pck_sgx_type,
                pck_dynamic_platform: self.tdx.pck_dynamic_platform,
                pck_cached_keys: self.tdx.pck_cached_keys,
                pck_smt_enabled: self.tdx.pck_smt_enabled,
            },
        })
    }
}

impl Policy {
    /// Parse the TOML form (module docs). Errors name the problem; the CLI exits 2 on them.
    pub fn from_toml(text: &str) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| format!("policy: {e}"))?;
        file.into_policy()
    }
}

fn in_reference<const N: usize>(
    list: &[[u8; N]],
    value: &[u8; N],
    what: &str,
) -> Result<(), Refusal> {
    if list.is_empty() || list.iter().any(|v| v == value) {
        return Ok(());
    }
    Err(Refusal::new(
        ErrorCode::MeasurementUnknown,
        format!(
            "{what} {} is not among the {} reference value(s)",
            hex::encode(value),
            list.len()
        ),
    ))
}

fn rejected(msg: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::PolicyRejected, msg)
}

/// `UpToDate` when every component of `reported` is at or above `current`, else `OutOfDate`.
pub fn snp_tcb_status(reported: &TcbVersion, current: &CurrentTcb) -> &'static str {
    let fmc_ok = match (reported.fmc, current.fmc) {
        (Some(have), Some(want)) => have >= want,
        _ => true,
    };
    if fmc_ok
        && reported.bootloader >= current.bootloader
        && reported.tee >= current.tee
        && reported.snp >= current.snp
        && reported.microcode >= current.microcode
    {
        SNP_UP_TO_DATE
    } else {
        SNP_OUT_OF_DATE
    }
}

/// SNP reference values only (workload matching).
fn snp_reference_values(f: &SnpFacts, p: &SnpPolicy) -> Result<(), Refusal> {
    in_reference(&p.measurement, &f.measurement, "MEASUREMENT")?;
    in_reference(&p.host_data, &f.host_data, "HOST_DATA")?;
    in_reference(&p.id_key_digest, &f.id_key_digest, "ID_KEY_DIGEST")?;
    if !p.author_key_digest.is_empty() && !f.author_key_en {
        return Err(Refusal::new(
            ErrorCode::MeasurementUnknown,
            "the workload pins an author key but the ID block has none (AUTHOR_KEY_EN = 0)",
        ));
    }
    in_reference(
        &p.author_key_digest,
        &f.author_key_digest,
        "AUTHOR_KEY_DIGEST",
    )?;
    in_reference(&p.family_id, &f.family_id, "FAMILY_ID")?;
    in_reference(&p.image_id, &f.image_id, "IMAGE_ID")
}

fn check_snp(f: &SnpFacts, policy: &Policy) -> Result<PolicyOutcome, Refusal> {
    let p = &policy.snp;
    let guest = GuestPolicy(f.policy_raw);
    if f.policy.debug && !policy.allow_debug {
        return Err(Refusal::new(
            ErrorCode::DebugEnabled,
            "guest policy allows debugging (bit 19)",
        ));
    }
    if guest.migrate_ma() && !policy.allow_migration {
        return Err(Refusal::new(
            ErrorCode::MigrationEnabled,
            "guest policy allows a migration agent (MIGRATE_MA, bit 18)",
        ));
    }
    if !p.allowed_vmpl.contains(&f.vmpl) {
        return Err(Refusal::new(
            ErrorCode::VmplRejected,
            format!(
                "report VMPL {} is not in the allowed set {:?}",
                f.vmpl, p.allowed_vmpl
            ),
        ));
    }
    if policy.require_revocation && f.revocation == Revocation::Unchecked {
        return Err(Refusal::new(
            ErrorCode::CollateralMissing,
            "no valid AMD CRL is at hand: revocation of the ASK/ASVK and VEK cannot be checked",
        ));
    }
    let current = p.current_tcb.get(&f.product).ok_or_else(|| {
        Refusal::new(
            ErrorCode::TcbNotSupported,
            format!(
                "no current TCB is declared for {} ([trust.snp_current_tcb.{}])",
                f.product,
                f.product.kds_name().to_ascii_lowercase()
            ),
        )
    })?;
    let status = snp_tcb_status(&f.reported_tcb, current);
    if !p.allowed_tcb.iter().any(|s| s == status) {
        return Err(Refusal::new(
            ErrorCode::TcbStatusRejected,
            format!(
                "REPORTED_TCB {:?} is {status} against the declared current {current:?}; allowed {:?}",
                f.reported_tcb, p.allowed_tcb
            ),
        ));
    }
    if let Some(min) = p.min_tcb_by_product.get(&f.product).or(p.min_tcb.as_ref()) {
        for (which, tcb) in [
            ("current", &f.current_tcb),
            ("committed", &f.committed_tcb),
            ("reported", &f.reported_tcb),
            ("launch", &f.launch_tcb),
        ] {
            let comps = [
                ("fmc", tcb.fmc, min.fmc),
                ("bootloader", Some(tcb.bootloader), min.bootloader),
                ("tee", Some(tcb.tee), min.tee),
                ("snp", Some(tcb.snp), min.snp),
                ("microcode", Some(tcb.microcode), min.microcode),
            ];
            for (name, have, want) in comps {
                if let (Some(have), Some(want)) = (have, want) {
                    if have < want {
                        return Err(Refusal::new(
                            ErrorCode::TcbBelowMinimum,
                            format!("{which} TCB {name} {have} is below the minimum {want}"),
                        ));
                    }
                }
            }
        }
    }
    if let Some(min) = p.min_guest_svn {
        if f.guest_svn < min {
            return Err(Refusal::new(
                ErrorCode::TcbBelowMinimum,
                format!("GUEST_SVN {} is below the minimum {min}", f.guest_svn),
            ));
        }
    }
    if let Some((major, minor)) = p.min_abi {
        let have = (guest.abi_major(), guest.abi_minor());
        if have < (major, minor) {
            return Err(rejected(format!(
                "guest policy ABI {}.{} is below the minimum {major}.{minor}",
                have.0, have.1
            )));
        }
    }
    let info = PlatformInfo(f.platform_info);
    if p.require_smt_disabled && info.smt_en() {
        return Err(rejected(
            "PLATFORM_INFO.SMT_EN is set and SMT is disallowed",
        ));
    }
    if p.require_tsme && !info.tsme_en() {
        return Err(rejected(
            "PLATFORM_INFO.TSME_EN is clear and TSME is required",
        ));
    }
    if p.require_alias_check && !info.alias_check_complete() {
        return Err(rejected(
            "PLATFORM_INFO.ALIAS_CHECK_COMPLETE is clear and the alias check is required",
        ));
    }
    snp_reference_values(f, p)?;
    Ok(PolicyOutcome {
        tcb_status: status.to_string(),
    })
}

/// TDX reference values only (workload matching).
fn tdx_reference_values(f: &TdxFacts, p: &TdxPolicy) -> Result<(), Refusal> {
    in_reference(&p.mr_td, &f.mr_td, "MRTD")?;
    for (i, list) in p.rtmr.iter().enumerate() {
        in_reference(list, &f.rtmr[i], &format!("RTMR{i}"))?;
    }
    in_reference(&p.mr_config_id, &f.mr_config_id, "MRCONFIGID")?;
    in_reference(&p.mr_owner, &f.mr_owner, "MROWNER")?;
    in_reference(&p.mr_owner_config, &f.mr_owner_config, "MROWNERCONFIG")?;
    in_reference(&p.xfam, &f.xfam, "XFAM")
}

fn check_tdx(f: &TdxFacts, policy: &Policy) -> Result<PolicyOutcome, Refusal> {
    let p = &policy.tdx;
    let attrs = TdAttributes(u64::from_le_bytes(f.td_attributes));
    // TUD bits: DEBUG (bit 0) and the profiling bits 4–6 both mean the TD is under debug (TDX Module ABI).
    let profiling = f.td_attributes[0] & 0x70 != 0;
    if (f.debug || profiling) && !policy.allow_debug {
        return Err(Refusal::new(
            ErrorCode::DebugEnabled,
            format!(
                "TD_ATTRIBUTES TUD bits {:#04x} (debug/profiling) are set",
                f.td_attributes[0]
            ),
        ));
    }
    if attrs.migratable() && !policy.allow_migration {
        return Err(Refusal::new(
            ErrorCode::MigrationEnabled,
            "TD_ATTRIBUTES.MIGRATABLE is set",
        ));
    }
    if !policy.allow_service_td {
        if f.mr_service_td != [0; 48] {
            return Err(rejected(format!(
                "MRSERVICETD {} is not zero: the TD is bound to a service TD",
                hex::encode(f.mr_service_td)
            )));
        }
        if attrs.servtd_ext() {
            return Err(rejected("TD_ATTRIBUTES.SERVTD_EXT is set"));
        }
    }
    if !p.allowed_tcb.contains(&f.tcb_status) {
        return Err(Refusal::new(
            ErrorCode::TcbStatusRejected,
            format!(
                "TCB status {} (advisories {:?}) is not in the allowed set {:?}",
                f.tcb_status, f.advisory_ids, p.allowed_tcb
            ),
        ));
    }
    if let Some(m) = p.td_attributes {
        if attrs.0 & m.mask != m.value {
            return Err(rejected(format!(
                "TD_ATTRIBUTES {:#018x} & mask {:#018x} is not {:#018x}",
                attrs.0, m.mask, m.value
            )));
        }
    }
    if !p.pck_sgx_type.is_empty() && !p.pck_sgx_type.contains(&f.pck.sgx_type) {
        return Err(rejected(format!(
            "PCK SGX type {} is not in the allowed set {:?}",
            f.pck.sgx_type, p.pck_sgx_type
        )));
    }
    for (name, want, have) in [
        (
            "dynamicPlatform",
            p.pck_dynamic_platform,
            f.pck.dynamic_platform,
        ),
        ("cachedKeys", p.pck_cached_keys, f.pck.cached_keys),
        ("SMTEnabled", p.pck_smt_enabled, f.pck.smt_enabled),
    ] {
        if let Some(want) = want {
            if have != Some(want) {
                return Err(rejected(format!(
                    "PCK {name} is {have:?}, the policy requires {want}"
                )));
            }
        }
    }
    tdx_reference_values(f, p)?;
    Ok(PolicyOutcome {
        tcb_status: f.tcb_status.clone(),
    })
}

/// Apply `policy` to verified facts: the first failing check's refusal, or what passing established.
pub fn apply_policy(verified: &Verified<Facts>, policy: &Policy) -> Result<PolicyOutcome, Refusal> {
    match verified.facts() {
        Facts::Snp(f) => check_snp(f, policy),
        Facts::Tdx(f) => check_tdx(f, policy),
    }
}

/// Only the reference values of `policy` (no other rule): which workload the evidence is an image of.
pub fn match_reference_values(verified: &Verified<Facts>, policy: &Policy) -> Result<(), Refusal> {
    match verified.facts() {
        Facts::Snp(f) => snp_reference_values(f, &policy.snp),
        Facts::Tdx(f) => tdx_reference_values(f, &policy.tdx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appraisal::{PckFacts, SnpPolicyFacts, SnpSigner};

    const MILAN_CURRENT: &str =
        "[snp_current_tcb.milan]\nbootloader = 3\ntee = 0\nsnp = 8\nmicrocode = 115\n";

    fn snp_facts() -> SnpFacts {
        let tcb = TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        };
        SnpFacts {
            product: Product::Milan,
            report_version: 2,
            signer: SnpSigner::Vcek,
            measurement: [0xaa; 48],
            report_data: [0; 64],
            host_data: [0; 32],
            chip_id: [1; 64],
            vmpl: 0,
            policy: SnpPolicyFacts {
                debug: false,
                smt: true,
                migrate_ma: false,
            },
            policy_raw: 0x30000,
            guest_svn: 0,
            family_id: [0; 16],
            image_id: [0; 16],
            id_key_digest: [0; 48],
            platform_info: 0,
            reported_tcb: tcb,
            current_tcb: tcb,
            committed_tcb: tcb,
            launch_tcb: tcb,
            csp_id: None,
            author_key_en: false,
            author_key_digest: [0; 48],
            revocation: Revocation::Checked,
        }
    }

    fn tdx_facts() -> TdxFacts {
        TdxFacts {
            quote_version: 4,
            body_type: 2,
            tee_tcb_svn: [0; 16],
            mr_seam: [0; 48],
            mr_signer_seam: [0; 48],
            td_attributes: [0, 0, 0, 0x10, 0, 0, 0, 0],
            xfam: [0; 8],
            mr_td: [0xbb; 48],
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: [[0; 48]; 4],
            report_data: [0; 64],
            debug: false,
            fmspc: [0; 6],
            ppid: vec![],
            tcb_status: "UpToDate".into(),
            advisory_ids: vec![],
            mr_service_td: [0; 48],
            pck: PckFacts {
                pce_id: [0, 0],
                sgx_type: 0,
                dynamic_platform: None,
                cached_keys: None,
                smt_enabled: None,
            },
        }
    }

    fn snp(f: SnpFacts) -> Verified<Facts> {
        Verified::new(Facts::Snp(f), false)
    }

    fn tdx(f: TdxFacts) -> Verified<Facts> {
        Verified::new(Facts::Tdx(f), false)
    }

    fn code(v: &Verified<Facts>, p: &Policy) -> Option<ErrorCode> {
        apply_policy(v, p).err().map(|r| r.code)
    }

    fn milan() -> Policy {
        Policy::from_toml(MILAN_CURRENT).expect("policy")
    }

    #[test]
    fn default_policy_accepts_clean_facts_once_the_product_tcb_is_declared() {
        assert_eq!(
            apply_policy(&snp(snp_facts()), &milan()).map(|o| o.tcb_status),
            Ok("UpToDate".to_string())
        );
        assert_eq!(code(&tdx(tdx_facts()), &Policy::default()), None);
    }

    #[test]
    fn an_snp_product_without_a_declared_tcb_is_tcb_not_supported() {
        assert_eq!(
            code(&snp(snp_facts()), &Policy::default()),
            Some(ErrorCode::TcbNotSupported)
        );
    }

    #[test]
    fn snp_tcb_below_the_declared_current_is_out_of_date_and_refused_unless_allowed() {
        let mut f = snp_facts();
        f.reported_tcb.microcode = 114;
        assert_eq!(
            code(&snp(f.clone()), &milan()),
            Some(ErrorCode::TcbStatusRejected)
        );
        let lax = Policy::from_toml(&format!(
            "snp_allowed_tcb = [\"UpToDate\", \"OutOfDate\"]\n{MILAN_CURRENT}"
        ))
        .expect("policy");
        assert_eq!(
            apply_policy(&snp(f), &lax).map(|o| o.tcb_status),
            Ok("OutOfDate".to_string())
        );
    }

    #[test]
    fn unchecked_revocation_is_collateral_missing_unless_not_required() {
        let mut f = snp_facts();
        f.revocation = Revocation::Unchecked;
        assert_eq!(
            code(&snp(f.clone()), &milan()),
            Some(ErrorCode::CollateralMissing)
        );
        let lax = Policy::from_toml(&format!("require_revocation = false\n{MILAN_CURRENT}"))
            .expect("policy");
        assert_eq!(code(&snp(f), &lax), None);
    }

    #[test]
    fn debug_is_debug_enabled_unless_allowed() {
        let mut s = snp_facts();
        s.policy.debug = true;
        let mut t = tdx_facts();
        t.debug = true;
        let mut profiled = tdx_facts();
        profiled.td_attributes[0] = 0x10;
        assert_eq!(
            code(&tdx(profiled), &Policy::default()),
            Some(ErrorCode::DebugEnabled)
        );
        assert_eq!(
            code(&snp(s.clone()), &milan()),
            Some(ErrorCode::DebugEnabled)
        );
        assert_eq!(
            code(&tdx(t.clone()), &Policy::default()),
            Some(ErrorCode::DebugEnabled)
        );
        let lax = Policy {
            allow_debug: true,
            ..milan()
        };
        assert_eq!(code(&snp(s), &lax), None);
        assert_eq!(code(&tdx(t), &lax), None);
    }

    #[test]
    fn migrate_ma_and_migratable_are_migration_enabled_unless_allowed() {
        let mut s = snp_facts();
        s.policy_raw |= 1 << 18;
        assert_eq!(
            code(&snp(s.clone()), &milan()),
            Some(ErrorCode::MigrationEnabled)
        );
        let lax = Policy {
            allow_migration: true,
            ..milan()
        };
        assert_eq!(code(&snp(s), &lax), None);
        let mut t = tdx_facts();
        t.td_attributes[3] |= 0x20; // bit 29
        assert_eq!(
            code(&tdx(t), &Policy::default()),
            Some(ErrorCode::MigrationEnabled)
        );
    }

    #[test]
    fn service_td_binding_is_policy_rejected_unless_allowed() {
        let mut t = tdx_facts();
        t.mr_service_td = [1; 48];
        assert_eq!(
            code(&tdx(t.clone()), &Policy::default()),
            Some(ErrorCode::PolicyRejected)
        );
        let lax = Policy {
            allow_service_td: true,
            ..Policy::default()
        };
        assert_eq!(code(&tdx(t), &lax), None);
        let mut ext = tdx_facts();
        ext.td_attributes[2] |= 0x02; // bit 17
        assert_eq!(
            code(&tdx(ext), &Policy::default()),
            Some(ErrorCode::PolicyRejected)
        );
    }

    #[test]
    fn vmpl_other_than_allowed_is_vmpl_rejected() {
        let mut s = snp_facts();
        s.vmpl = 1;
        assert_eq!(code(&snp(s), &milan()), Some(ErrorCode::VmplRejected));
    }

    #[test]
    fn tdx_status_outside_the_allowed_set_is_tcb_status_rejected() {
        let mut t = tdx_facts();
        t.tcb_status = "OutOfDate".into();
        let v = tdx(t);
        assert_eq!(
            code(&v, &Policy::default()),
            Some(ErrorCode::TcbStatusRejected)
        );
        let lax = Policy::from_toml("tdx_allowed_tcb = [\"UpToDate\", \"OutOfDate\"]").expect("p");
        assert_eq!(code(&v, &lax), None);
    }

    #[test]
    fn any_component_below_minimum_is_tcb_below_minimum_and_product_floors_replace_the_generic_one()
    {
        let p = Policy::from_toml(&format!("{MILAN_CURRENT}[snp_min_tcb]\nmicrocode = 116\n"))
            .expect("policy");
        assert_eq!(
            code(&snp(snp_facts()), &p),
            Some(ErrorCode::TcbBelowMinimum)
        );
        let p = Policy::from_toml(&format!(
            "{MILAN_CURRENT}[snp_min_tcb]\nmicrocode = 116\n[snp_min_tcb_by_product.milan]\nmicrocode = 115\n"
        ))
        .expect("policy");
        assert_eq!(code(&snp(snp_facts()), &p), None);
        let p =
            Policy::from_toml(&format!("{MILAN_CURRENT}[snp]\nmin_guest_svn = 1\n")).expect("p");
        assert_eq!(
            code(&snp(snp_facts()), &p),
            Some(ErrorCode::TcbBelowMinimum)
        );
    }

    #[test]
    fn policy_abi_and_platform_info_requirements_are_policy_rejected() {
        let p = Policy::from_toml(&format!(
            "{MILAN_CURRENT}[snp]\nmin_policy_abi = \"1.51\"\n"
        ))
        .expect("p");
        assert_eq!(code(&snp(snp_facts()), &p), Some(ErrorCode::PolicyRejected));
        let mut f = snp_facts();
        f.platform_info = 0b1; // SMT_EN, no TSME, no alias check
        for req in [
            "require_smt_disabled",
            "require_tsme",
            "require_alias_check",
        ] {
            let p = Policy::from_toml(&format!("{MILAN_CURRENT}[snp]\n{req} = true\n")).expect("p");
            assert_eq!(
                code(&snp(f.clone()), &p),
                Some(ErrorCode::PolicyRejected),
                "{req}"
            );
        }
        f.platform_info = 0b10_0010; // TSME and alias check, SMT off
        let p = Policy::from_toml(&format!(
            "{MILAN_CURRENT}[snp]\nrequire_smt_disabled = true\nrequire_tsme = true\nrequire_alias_check = true\n"
        ))
        .expect("p");
        assert_eq!(code(&snp(f), &p), None);
    }

    #[test]
    fn reference_values_outside_the_lists_are_measurement_unknown() {
        for (key, toml_value) in [
            ("snp_measurement", "ab".repeat(48)),
            ("snp_host_data", "ab".repeat(32)),
            ("snp_id_key_digest", "ab".repeat(48)),
            ("snp_family_id", "ab".repeat(16)),
            ("snp_image_id", "ab".repeat(16)),
            ("snp_author_key_digest", "00".repeat(48)),
        ] {
            let p = Policy::from_toml(&format!(
                "{MILAN_CURRENT}[measurements]\n{key} = [\"{toml_value}\"]\n"
            ))
            .expect("policy");
            assert_eq!(
                code(&snp(snp_facts()), &p),
                Some(ErrorCode::MeasurementUnknown),
                "{key}"
            );
        }
        let ok = Policy::from_toml(&format!(
            "{MILAN_CURRENT}[measurements]\nsnp_measurement = [\"{}\"]\n",
            "AA".repeat(48)
        ))
        .expect("policy");
        assert_eq!(code(&snp(snp_facts()), &ok), None);
        for key in [
            "tdx_rtmr2",
            "tdx_mr_td",
            "tdx_mr_config_id",
            "tdx_mr_owner",
            "tdx_mr_owner_config",
        ] {
            let p = Policy::from_toml(&format!(
                "[measurements]\n{key} = [\"{}\"]\n",
                "01".repeat(48)
            ))
            .expect("p");
            assert_eq!(
                code(&tdx(tdx_facts()), &p),
                Some(ErrorCode::MeasurementUnknown),
                "{key}"
            );
        }
        let p = Policy::from_toml(&format!(
            "[measurements]\ntdx_xfam = [\"{}\"]\n",
            "01".repeat(8)
        ))
        .expect("p");
        assert_eq!(
            code(&tdx(tdx_facts()), &p),
            Some(ErrorCode::MeasurementUnknown)
        );
    }

    #[test]
    fn tdx_attribute_mask_and_pck_requirements_are_policy_rejected() {
        let p = Policy::from_toml(
            "[tdx]\ntd_attributes_mask = \"0000000010000000\"\ntd_attributes_value = \"0000000000000000\"\n",
        )
        .expect("p");
        assert_eq!(code(&tdx(tdx_facts()), &p), Some(ErrorCode::PolicyRejected));
        let p = Policy::from_toml("[tdx]\npck_sgx_type = [1]\n").expect("p");
        assert_eq!(code(&tdx(tdx_facts()), &p), Some(ErrorCode::PolicyRejected));
        let p = Policy::from_toml("[tdx]\npck_smt_enabled = false\n").expect("p");
        assert_eq!(code(&tdx(tdx_facts()), &p), Some(ErrorCode::PolicyRejected));
    }

    #[test]
    fn bad_policy_files_are_rejected_with_a_reason() {
        assert!(Policy::from_toml("tdx_allowed_tcb = [\"Fine\"]").is_err());
        assert!(Policy::from_toml("snp_allowed_tcb = [\"SWHardeningNeeded\"]").is_err());
        assert!(Policy::from_toml("allow_debugg = true").is_err());
        assert!(Policy::from_toml("[measurements]\ntdx_mr_td = [\"abcd\"]").is_err());
        assert!(Policy::from_toml(
            "[snp_current_tcb.venice]\nbootloader=1\ntee=0\nsnp=1\nmicrocode=1"
        )
        .is_err());
        assert!(Policy::from_toml(
            "[snp_current_tcb.turin]\nbootloader=1\ntee=0\nsnp=1\nmicrocode=1"
        )
        .is_err());
        assert!(Policy::from_toml("[snp]\nmin_policy_abi = \"one\"").is_err());
    }
}
