//! `locus-verifier measure` (docs/operations.md#reference-values-from-the-image): the I/O edge of [`crate::measure`]. It reads the image (and kernel, initrd)
//! files, calls the pure computations and formats the answer: lowercase hex, one JSON object (`--json`) or a
//! `[[workload]]` block (`--as-workload ID`). Bad input is a [`UsageError`] (exit 2, message on stderr).

use std::path::{Path, PathBuf};

use crate::cli::{read, UsageError};

/// Arguments of `locus-verifier measure`.
#[derive(Clone, Debug, clap::Args)]
pub struct MeasureArgs {
    /// Which TEE's launch value to compute.
    #[command(subcommand)]
    pub tee: MeasureTee,
}

/// `measure snp` | `measure tdx`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum MeasureTee {
    /// The SEV-SNP launch digest (report MEASUREMENT), as `sev-snp-measure --mode snp` computes it.
    Snp(MeasureSnpArgs),
    /// The TDX MRTD from the TDVF metadata, as upstream QEMU loads the image.
    Tdx(MeasureTdxArgs),
}

/// Arguments of `locus-verifier measure snp`.
#[derive(Clone, Debug, clap::Args)]
pub struct MeasureSnpArgs {
    /// The OVMF image (a build with SEV metadata, e.g. Debian's 2 MB `OVMF.fd` or `OVMF_CODE.fd`).
    #[arg(long, value_name = "FILE")]
    pub ovmf: PathBuf,
    /// Number of vCPUs.
    #[arg(long, value_name = "N")]
    pub vcpus: u32,
    /// QEMU vCPU model (EPYC, EPYC-v4, EPYC-Milan, EPYC-Genoa, EPYC-Turin, …); required with --vmm-type qemu.
    #[arg(long = "vcpu-type", value_name = "TYPE")]
    pub vcpu_type: Option<String>,
    /// The VMM that launches the guest.
    #[arg(long = "vmm-type", value_enum, default_value = "qemu")]
    pub vmm_type: crate::measure::VmmType,
    /// Measured direct boot: the kernel QEMU is given with -kernel (the image needs an SNP kernel-hashes section).
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// The initrd (-initrd); needs --kernel.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// The kernel command line (-append); needs --kernel.
    #[arg(long, value_name = "CMDLINE")]
    pub append: Option<String>,
    /// SEV_FEATURES of the VMSAs, hex with or without 0x.
    #[arg(long = "guest-features", value_name = "HEX", default_value = "0x1")]
    pub guest_features: String,
    /// Print one JSON object instead of the hex digest.
    #[arg(long, conflicts_with = "as_workload")]
    pub json: bool,
    /// Print a `[[workload]]` block for verifier.toml pinning the digest, with this workload id.
    #[arg(long = "as-workload", value_name = "ID")]
    pub as_workload: Option<String>,
}

/// Arguments of `locus-verifier measure tdx`.
#[derive(Clone, Debug, clap::Args)]
pub struct MeasureTdxArgs {
    /// The unified OVMF/TDVF image QEMU is given with -bios (it needs TDVF metadata).
    #[arg(long, value_name = "FILE")]
    pub ovmf: PathBuf,
    /// The VMM adds all pages of a section before extending any (Canonical's TDX QEMU 8.2, older Intel QEMU/KVM).
    #[arg(long = "two-pass-add-pages")]
    pub two_pass_add_pages: bool,
    /// Print one JSON object instead of the hex MRTD.
    #[arg(long, conflicts_with = "as_workload")]
    pub json: bool,
    /// Print a `[[workload]]` block for verifier.toml pinning mr_td (measurement_scope = "firmware").
    #[arg(long = "as-workload", value_name = "ID")]
    pub as_workload: Option<String>,
}

/// Run `measure`: print the value on stdout and return the exit code (0, or 2 with a message on stderr).
pub fn run_measure(args: &MeasureArgs) -> u8 {
    match measure_output(args) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(UsageError(msg)) => {
            eprintln!("locus-verifier measure: {msg}");
            2
        }
    }
}

/// What `measure` prints (with its final newline), or the usage error.
pub fn measure_output(args: &MeasureArgs) -> Result<String, UsageError> {
    use crate::measure::{self, workload, KernelHashes, PageAddOrder, SnpLaunch, VcpuType};
    let bad = |e: measure::MeasureError| UsageError(e.to_string());
    let workload_id = |id: &Option<String>| -> Result<(), UsageError> {
        match id {
            Some(id) => locus_wimse::WorkloadId::parse(id).map(drop).map_err(|e| {
                UsageError(format!(
                    "--as-workload {id:?} is not a workload identifier: {e}"
                ))
            }),
            None => Ok(()),
        }
    };
    let image_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    match &args.tee {
        MeasureTee::Snp(a) => {
            workload_id(&a.as_workload)?;
            if a.kernel.is_none() && (a.initrd.is_some() || a.append.is_some()) {
                return Err(UsageError("--initrd and --append need --kernel".into()));
            }
            let features = a.guest_features.trim();
            let digits = features
                .strip_prefix("0x")
                .or_else(|| features.strip_prefix("0X"))
                .unwrap_or(features);
            let guest_features = u64::from_str_radix(digits, 16).map_err(|_| {
                UsageError(format!("--guest-features {features:?} is not a hex number"))
            })?;
            let vcpu_type = a
                .vcpu_type
                .as_deref()
                .map(VcpuType::parse)
                .transpose()
                .map_err(bad)?;
            let hashes = match &a.kernel {
                Some(k) => {
                    let initrd = a.initrd.as_deref().map(read).transpose()?;
                    Some(KernelHashes::new(
                        &read(k)?,
                        initrd.as_deref(),
                        a.append.as_deref(),
                    ))
                }
                None => None,
            };
            let launch = SnpLaunch::new(a.vcpus, vcpu_type, a.vmm_type, guest_features, hashes)
                .map_err(bad)?;
            let image = read(&a.ovmf)?;
            let digest = measure::snp_launch_digest(&image, &launch).map_err(bad)?;
            let vcpu_name = vcpu_type.map(|t| t.name());
            if let Some(id) = &a.as_workload {
                let mut provenance = format!(
                    "SEV-SNP launch digest of {} ({} vCPUs, {}, {}, guest features {:#x}{})",
                    image_name(&a.ovmf),
                    a.vcpus,
                    vcpu_name.unwrap_or("no vCPU type"),
                    a.vmm_type.as_str(),
                    guest_features,
                    if a.kernel.is_some() {
                        ", measured direct boot"
                    } else {
                        ""
                    },
                );
                provenance.push_str(", from `locus-verifier measure snp`");
                Ok(workload::snp_workload_block(id, &digest, &provenance))
            } else if a.json {
                let v = serde_json::json!({
                    "measurement": hex::encode(digest),
                    "vcpus": a.vcpus,
                    "vcpu_type": vcpu_name,
                    "vmm_type": a.vmm_type.as_str(),
                    "guest_features": format!("{guest_features:#x}"),
                });
                Ok(format!("{v}\n"))
            } else {
                Ok(format!("{}\n", hex::encode(digest)))
            }
        }
        MeasureTee::Tdx(a) => {
            workload_id(&a.as_workload)?;
            let order = if a.two_pass_add_pages {
                PageAddOrder::TwoPass
            } else {
                PageAddOrder::SinglePass
            };
            let order_name = match order {
                PageAddOrder::SinglePass => "single-pass",
                PageAddOrder::TwoPass => "two-pass",
            };
            let image = read(&a.ovmf)?;
            let mr_td = measure::tdx_mrtd(&image, order).map_err(bad)?;
            if let Some(id) = &a.as_workload {
                let provenance = format!(
                    "TDX MRTD of {} as QEMU loads it ({order_name} page add), from `locus-verifier measure tdx`",
                    image_name(&a.ovmf)
                );
                Ok(workload::tdx_workload_block(id, &mr_td, &provenance))
            } else if a.json {
                let v = serde_json::json!({
                    "mr_td": hex::encode(mr_td),
                    "page_add_order": order_name,
                });
                Ok(format!("{v}\n"))
            } else {
                Ok(format!("{}\n", hex::encode(mr_td)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::ovmf::{synthetic_image, SEV_ES_RESET_BLOCK_GUID};

    fn snp_args(ovmf: &Path) -> MeasureSnpArgs {
        MeasureSnpArgs {
            ovmf: ovmf.to_path_buf(),
            vcpus: 1,
            vcpu_type: Some("EPYC-v4".into()),
            vmm_type: crate::measure::VmmType::Qemu,
            kernel: None,
            initrd: None,
            append: None,
            guest_features: "0x1".into(),
            json: false,
            as_workload: None,
        }
    }

    fn tdx_args(ovmf: &Path) -> MeasureTdxArgs {
        MeasureTdxArgs {
            ovmf: ovmf.to_path_buf(),
            two_pass_add_pages: false,
            json: false,
            as_workload: None,
        }
    }

    fn error(args: MeasureTee) -> String {
        match measure_output(&MeasureArgs { tee: args }) {
            Ok(out) => panic!("expected a usage error, got {out}"),
            Err(UsageError(m)) => m,
        }
    }

    /// An image with a GUIDed table but neither SEV nor TDVF metadata.
    fn plain_image(dir: &Path) -> PathBuf {
        let path = dir.join("plain.fd");
        let image = synthetic_image(2, &[(SEV_ES_RESET_BLOCK_GUID, vec![0; 4])], &[]);
        std::fs::write(&path, image).expect("write image");
        path
    }

    #[test]
    fn snp_on_an_image_without_sev_metadata_names_what_is_missing_and_exits_2() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = MeasureArgs {
            tee: MeasureTee::Snp(snp_args(&plain_image(dir.path()))),
        };
        assert_eq!(run_measure(&args), 2);
        assert_eq!(
            error(args.tee),
            "the image has no SEV metadata (OVMF table entry dc886566-984a-4798-a75e-5585a7bf67cc): it cannot launch as an SEV-SNP guest"
        );
    }

    #[test]
    fn tdx_on_an_image_without_tdvf_metadata_names_what_is_missing_and_exits_2() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = MeasureArgs {
            tee: MeasureTee::Tdx(tdx_args(&plain_image(dir.path()))),
        };
        assert_eq!(run_measure(&args), 2);
        assert_eq!(
            error(args.tee),
            "the image has no TDVF metadata (OVMF table entry e47a6535-984a-4798-865e-4685a7bf8ec2): it cannot launch as a TDX guest"
        );
    }

    #[test]
    fn a_file_that_is_not_an_ovmf_image_is_refused_for_both_tees() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zeros.bin");
        std::fs::write(&path, vec![0u8; 8192]).expect("write");
        let want = "the image has no OVMF GUIDed table (footer GUID 96b582de-1fb2-45f7-baea-a366c55a082d 32 bytes before its end): it is not an OVMF build for confidential guests";
        assert_eq!(error(MeasureTee::Snp(snp_args(&path))), want);
        assert_eq!(error(MeasureTee::Tdx(tdx_args(&path))), want);
    }

    #[test]
    fn an_unknown_vcpu_type_is_a_usage_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = snp_args(&plain_image(dir.path()));
        a.vcpu_type = Some("Opteron".into());
        let m = error(MeasureTee::Snp(a));
        assert!(
            m.starts_with("unknown vCPU type \"Opteron\": expected one of EPYC, "),
            "{m}"
        );
    }

    #[test]
    fn qemu_without_a_vcpu_type_is_a_usage_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = snp_args(&plain_image(dir.path()));
        a.vcpu_type = None;
        assert_eq!(
            error(MeasureTee::Snp(a)),
            "--vcpu-type is required with --vmm-type qemu (QEMU puts the vCPU's CPUID signature in each VMSA)"
        );
    }

    #[test]
    fn initrd_or_append_without_kernel_is_a_usage_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = snp_args(&plain_image(dir.path()));
        a.append = Some("quiet".into());
        assert_eq!(
            error(MeasureTee::Snp(a)),
            "--initrd and --append need --kernel"
        );
    }

    #[test]
    fn a_kernel_on_an_image_without_a_hashes_section_is_a_usage_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        // SEV metadata with one secure-memory section and no kernel-hashes section.
        let mut meta = b"ASEV".to_vec();
        for v in [28u32, 1, 1, 0x80_0000, 0x1000, 1] {
            meta.extend_from_slice(&v.to_le_bytes());
        }
        let image = synthetic_image(
            2,
            &[
                (
                    SEV_ES_RESET_BLOCK_GUID,
                    0x0080_b004u32.to_le_bytes().to_vec(),
                ),
                (
                    crate::measure::ovmf::SEV_METADATA_GUID,
                    (8192u32 - 0x100).to_le_bytes().to_vec(),
                ),
            ],
            &[(0x100, meta)],
        );
        let ovmf = dir.path().join("snp.fd");
        std::fs::write(&ovmf, image).expect("write");
        let kernel = dir.path().join("vmlinuz");
        std::fs::write(&kernel, b"kernel").expect("write");
        let mut a = snp_args(&ovmf);
        // Without a kernel it measures.
        assert!(measure_output(&MeasureArgs {
            tee: MeasureTee::Snp(a.clone())
        })
        .is_ok());
        a.kernel = Some(kernel);
        assert_eq!(
            error(MeasureTee::Snp(a)),
            "--kernel needs an image with an SNP kernel-hashes section (SEV metadata section type 0x10); this image has none, so QEMU cannot measure a kernel, initrd or command line into it"
        );
    }

    #[test]
    fn guest_features_must_be_hex() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = snp_args(&plain_image(dir.path()));
        a.guest_features = "0xzz".into();
        assert_eq!(
            error(MeasureTee::Snp(a)),
            "--guest-features \"0xzz\" is not a hex number"
        );
    }

    #[test]
    fn as_workload_needs_a_workload_identifier() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = tdx_args(&plain_image(dir.path()));
        a.as_workload = Some("not an id".into());
        let m = error(MeasureTee::Tdx(a));
        assert!(
            m.starts_with("--as-workload \"not an id\" is not a workload identifier: "),
            "{m}"
        );
    }

    #[test]
    fn a_missing_file_is_a_usage_error_naming_it() {
        let m = error(MeasureTee::Tdx(tdx_args(Path::new("/nonexistent/OVMF.fd"))));
        assert!(m.starts_with("cannot read /nonexistent/OVMF.fd: "), "{m}");
    }
}
