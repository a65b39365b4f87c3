//! `locus-verifier measure` on real firmware: Debian's `ovmf` package builds, with AMD's `sev-snp-measure` 0.0.13
//! (PyPI) run as the independent oracle for SEV-SNP, and the refusals of images that cannot launch.
//!
//! Needs `/usr/share/ovmf/OVMF.fd` and `/usr/share/OVMF/OVMF_CODE.fd` (Debian `ovmf`) and `sev-snp-measure` on the
//! PATH; `.ci/run` installs both. Missing: a loud `SKIP:` line, or a failure when `CI` or `LOCUS_REQUIRE_VECTORS=1`
//! is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use locus_verifier::measure::{
    snp_launch_digest, tdx_mrtd, PageAddOrder, SnpLaunch, VcpuType, VmmType,
};

/// The 2 MB Debian builds, which carry SEV and TDVF metadata.
const OVMF_FD: &str = "/usr/share/ovmf/OVMF.fd";
const OVMF_CODE_FD: &str = "/usr/share/OVMF/OVMF_CODE.fd";
/// The 4 MB build, which carries neither.
const OVMF_CODE_4M_FD: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1")
}

/// `paths` if all exist; otherwise a loud skip, or a failure in CI.
fn debian_ovmf(test: &str, paths: &[&str]) -> Option<Vec<PathBuf>> {
    let missing: Vec<&&str> = paths.iter().filter(|p| !Path::new(p).is_file()).collect();
    if missing.is_empty() {
        return Some(paths.iter().map(PathBuf::from).collect());
    }
    assert!(
        !required(),
        "{test}: {missing:?} missing; the Debian `ovmf` package is required when CI or LOCUS_REQUIRE_VECTORS=1 is set (.ci/run installs it)"
    );
    eprintln!("SKIP: {test}: {missing:?} missing (apt-get install ovmf)");
    None
}

/// `sev-snp-measure`, run as its module so that the pip scripts directory need not be on the PATH.
fn sev_snp_measure() -> Command {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "sevsnpmeasure.cli"]);
    cmd
}

/// Whether `sev-snp-measure` 0.0.13 runs; loud skip or CI failure otherwise.
fn oracle(test: &str) -> bool {
    let version = sev_snp_measure().arg("--version").output();
    let ok = matches!(&version, Ok(o) if o.status.success()
        && String::from_utf8_lossy(&o.stdout).contains("0.0.13"));
    if !ok {
        assert!(
            !required(),
            "{test}: sev-snp-measure 0.0.13 is required when CI or LOCUS_REQUIRE_VECTORS=1 is set (pip install -r .ci/requirements.txt); got {version:?}"
        );
        eprintln!("SKIP: {test}: python3 -m sevsnpmeasure.cli 0.0.13 not available (pip install sev-snp-measure==0.0.13)");
    }
    ok
}

/// `sev-snp-measure --mode snp` with `args`: its hex digest.
fn oracle_digest(args: &[&str]) -> String {
    let out = sev_snp_measure()
        .args(["--mode", "snp"])
        .args(args)
        .output()
        .expect("run sev-snp-measure");
    assert!(
        out.status.success(),
        "sev-snp-measure {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn verifier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .arg("measure")
        .args(args)
        .output()
        .expect("run locus-verifier measure")
}

/// (vCPUs, vCPU type, VMM, guest features): every VMM, several CPU generations and vCPU counts, the optional type
/// left out where `sev-snp-measure` allows it.
const LAUNCHES: &[(u32, Option<&str>, VmmType, u64)] = &[
    (1, Some("EPYC-v4"), VmmType::Qemu, 0x1),
    (2, Some("EPYC-Milan"), VmmType::Qemu, 0x1),
    (4, Some("EPYC-Genoa"), VmmType::Qemu, 0x1),
    (8, Some("EPYC-Turin"), VmmType::Qemu, 0x1),
    (3, Some("EPYC-Rome-v2"), VmmType::Qemu, 0x21),
    (2, None, VmmType::Ec2, 0x1),
    (4, Some("EPYC-Milan"), VmmType::Ec2, 0x1),
    (1, None, VmmType::Gce, 0x1),
    (16, Some("EPYC-Genoa"), VmmType::Gce, 0x1),
];

#[test]
fn snp_digest_of_debian_ovmf_equals_sev_snp_measure_across_vcpus_cpu_types_and_vmms() {
    let test = "snp_digest_of_debian_ovmf_equals_sev_snp_measure";
    let Some(images) = debian_ovmf(test, &[OVMF_FD, OVMF_CODE_FD]) else {
        return;
    };
    if !oracle(test) {
        return;
    }
    for image_path in &images {
        let image = std::fs::read(image_path).expect("read image");
        let path = image_path.to_str().expect("utf-8 path");
        let mut seen = std::collections::BTreeSet::new();
        for &(vcpus, vcpu_type, vmm, features) in LAUNCHES {
            let launch = SnpLaunch::new(
                vcpus,
                vcpu_type.map(|t| VcpuType::parse(t).expect("known type")),
                vmm,
                features,
                None,
            )
            .expect("valid launch");
            let ours = hex::encode(snp_launch_digest(&image, &launch).expect("measures"));
            let vcpus_s = vcpus.to_string();
            let features_s = format!("{features:#x}");
            let vmm_s = match vmm {
                VmmType::Qemu => "QEMU",
                VmmType::Ec2 => "ec2",
                VmmType::Gce => "gce",
            };
            let mut args = vec![
                "--ovmf",
                path,
                "--vcpus",
                &vcpus_s,
                "--vmm-type",
                vmm_s,
                "--guest-features",
                &features_s,
            ];
            if let Some(t) = vcpu_type {
                args.extend(["--vcpu-type", t]);
            }
            assert_eq!(
                ours,
                oracle_digest(&args),
                "{path}: {vcpus} vCPUs, {vcpu_type:?}, {vmm:?}, features {features:#x}"
            );
            seen.insert(ours);
        }
        // The launches are distinguishable: a digest that ignored an input would collide.
        assert_eq!(seen.len(), LAUNCHES.len(), "{path}");
    }
}

#[test]
fn snp_cli_prints_the_oracles_digest_as_hex_and_as_json() {
    let test = "snp_cli_prints_the_oracles_digest_as_hex_and_as_json";
    let Some(images) = debian_ovmf(test, &[OVMF_FD]) else {
        return;
    };
    if !oracle(test) {
        return;
    }
    let path = images[0].to_str().expect("utf-8 path");
    let want = oracle_digest(&["--ovmf", path, "--vcpus", "4", "--vcpu-type", "EPYC-Milan"]);
    let out = verifier(&[
        "snp",
        "--ovmf",
        path,
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Milan",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{want}\n"));

    let out = verifier(&[
        "snp",
        "--ovmf",
        path,
        "--vcpus",
        "2",
        "--vmm-type",
        "gce",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let want = oracle_digest(&["--ovmf", path, "--vcpus", "2", "--vmm-type", "gce"]);
    assert_eq!(
        v,
        serde_json::json!({"measurement": want, "vcpus": 2, "vcpu_type": null, "vmm_type": "gce",
                           "guest_features": "0x1"})
    );
}

/// Debian's OVMF.fd with its CPUID section turned into an SNP kernel-hashes section and the hashes-table GPA set,
/// so that measured direct boot can be compared with the oracle on a real image.
fn with_kernel_hashes_section(image: &[u8]) -> Vec<u8> {
    let mut img = image.to_vec();
    let find = |img: &[u8], needle: &[u8]| -> usize {
        img.windows(needle.len())
            .rposition(|w| w == needle)
            .expect("present in Debian's OVMF")
    };
    // SEV metadata section (GPA 0x80e000, one page, type 3 = CPUID) → type 0x10.
    let mut cpuid = Vec::new();
    for v in [0x80_e000u32, 0x1000, 3] {
        cpuid.extend_from_slice(&v.to_le_bytes());
    }
    let at = find(&img, &cpuid);
    img[at + 8..at + 12].copy_from_slice(&0x10u32.to_le_bytes());
    // SEV_HASH_TABLE_RV_GUID entry (8 data bytes, 2 size bytes, GUID 7255371f-3a3b-4b04-927b-1da6efa8d454).
    let guid = [
        0x1f, 0x37, 0x55, 0x72, 0x3b, 0x3a, 0x04, 0x4b, 0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4,
        0x54,
    ];
    let at = find(&img, &guid) - 2 - 8;
    img[at..at + 4].copy_from_slice(&0x80_ec00u32.to_le_bytes());
    img
}

#[test]
fn snp_measured_direct_boot_equals_sev_snp_measure_on_an_image_with_a_hashes_section() {
    let test = "snp_measured_direct_boot_equals_sev_snp_measure";
    let Some(images) = debian_ovmf(test, &[OVMF_FD]) else {
        return;
    };
    if !oracle(test) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ovmf = dir.path().join("OVMF-hashes.fd");
    std::fs::write(
        &ovmf,
        with_kernel_hashes_section(&std::fs::read(&images[0]).expect("read")),
    )
    .expect("write");
    let kernel = dir.path().join("vmlinuz");
    let initrd = dir.path().join("initrd.img");
    std::fs::write(&kernel, b"not really a kernel, but hashed all the same").expect("write");
    std::fs::write(&initrd, vec![0x5a; 10_000]).expect("write");
    let (ovmf, kernel, initrd) = (
        ovmf.to_str().expect("utf-8"),
        kernel.to_str().expect("utf-8"),
        initrd.to_str().expect("utf-8"),
    );
    let cases: &[&[&str]] = &[
        &["--kernel", kernel],
        &["--kernel", kernel, "--initrd", initrd],
        &[
            "--kernel",
            kernel,
            "--initrd",
            initrd,
            "--append",
            "console=ttyS0 root=/dev/vda1 ",
        ],
        &["--kernel", kernel, "--append", "quiet", "--vmm-type", "ec2"],
    ];
    let mut seen = std::collections::BTreeSet::new();
    for extra in cases {
        let mut args = vec!["--ovmf", ovmf, "--vcpus", "2", "--vcpu-type", "EPYC-v4"];
        args.extend_from_slice(extra);
        let want = oracle_digest(&args);
        // Same flags: our --vmm-type values are the oracle's lowercase ones here.
        let mut ours = vec!["snp"];
        ours.extend_from_slice(&args);
        let out = verifier(&ours);
        assert!(out.status.success(), "{extra:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want,
            "{extra:?}"
        );
        seen.insert(want);
    }
    assert_eq!(seen.len(), cases.len());
}

#[test]
fn snp_refuses_the_4m_build_without_sev_metadata_with_exit_2() {
    let test = "snp_refuses_the_4m_build_without_sev_metadata_with_exit_2";
    let Some(images) = debian_ovmf(test, &[OVMF_CODE_4M_FD]) else {
        return;
    };
    let path = images[0].to_str().expect("utf-8");
    let out = verifier(&["snp", "--ovmf", path, "--vcpus", "1", "--vcpu-type", "EPYC"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "locus-verifier measure: the image has no SEV metadata (OVMF table entry dc886566-984a-4798-a75e-5585a7bf67cc): it cannot launch as an SEV-SNP guest\n"
    );
    assert!(out.stdout.is_empty());
    let out = verifier(&["tdx", "--ovmf", path]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the image has no TDVF metadata"),
        "{out:?}"
    );
}

#[test]
fn snp_bad_input_on_a_real_image_exits_2_naming_the_problem() {
    let test = "snp_bad_input_on_a_real_image_exits_2_naming_the_problem";
    let Some(images) = debian_ovmf(test, &[OVMF_FD]) else {
        return;
    };
    let path = images[0].to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("vmlinuz");
    std::fs::write(&kernel, b"k").expect("write");
    let kernel = kernel.to_str().expect("utf-8");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--vcpus", "1", "--vcpu-type", "EPYC-Zen9"],
            "locus-verifier measure: unknown vCPU type \"EPYC-Zen9\": expected one of EPYC, EPYC-v1,",
        ),
        (
            &["--vcpus", "1", "--vcpu-type", "EPYC", "--kernel", kernel],
            "locus-verifier measure: --kernel needs an image with an SNP kernel-hashes section",
        ),
        (
            &["--vcpus", "1"],
            "locus-verifier measure: --vcpu-type is required with --vmm-type qemu",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["snp", "--ovmf", path];
        all.extend_from_slice(args);
        let out = verifier(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
    }
    // An unknown VMM is refused by the argument parser, also with exit 2.
    let out = verifier(&["snp", "--ovmf", path, "--vcpus", "1", "--vmm-type", "QEMU"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// SHA-256 of Debian bookworm's `ovmf` 2022.11-6+deb12u2 `/usr/share/ovmf/OVMF.fd`, and its MRTD (upstream QEMU's
/// per-page order) as computed by an independent implementation: the Python `td_shim_tee_info_hash.py` of
/// confidential-containers/td-shim (`td-shim-tools/src/bin/td-shim-tee-info-hash/`), run on that file.
const DEBIAN_OVMF_FD_SHA256: &str =
    "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773";
const DEBIAN_OVMF_FD_MRTD_TD_SHIM: &str = "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47";

#[test]
fn tdx_mrtd_of_debian_ovmf_fd_equals_td_shims_independent_computation() {
    use sha2::Digest;
    let test = "tdx_mrtd_of_debian_ovmf_fd_equals_td_shims_independent_computation";
    let Some(images) = debian_ovmf(test, &[OVMF_FD]) else {
        return;
    };
    let image = std::fs::read(&images[0]).expect("read");
    let single = tdx_mrtd(&image, PageAddOrder::SinglePass).expect("TDVF metadata");
    let two = tdx_mrtd(&image, PageAddOrder::TwoPass).expect("TDVF metadata");
    assert_ne!(
        single, two,
        "the BFV spans many pages, so the order matters"
    );
    let path = images[0].to_str().expect("utf-8");
    let out = verifier(&["tdx", "--ovmf", path]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", hex::encode(single))
    );
    let out = verifier(&["tdx", "--ovmf", path, "--two-pass-add-pages", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"mr_td": hex::encode(two), "page_add_order": "two-pass"})
    );
    let sha = hex::encode(sha2::Sha256::digest(&image));
    if sha == DEBIAN_OVMF_FD_SHA256 {
        assert_eq!(hex::encode(single), DEBIAN_OVMF_FD_MRTD_TD_SHIM);
    } else {
        eprintln!(
            "SKIP: {test}: {path} is not the 2022.11-6+deb12u2 build (sha256 {sha}); only the self-consistency checks ran"
        );
    }
}

#[test]
fn tdx_refuses_the_split_code_image_whose_metadata_points_past_its_end() {
    let test = "tdx_refuses_the_split_code_image_whose_metadata_points_past_its_end";
    let Some(images) = debian_ovmf(test, &[OVMF_CODE_FD]) else {
        return;
    };
    let out = verifier(&["tdx", "--ovmf", images[0].to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "locus-verifier measure: the TDVF metadata is malformed: section 0 (BFV) needs image bytes 0x20000..0x200000, but the image is 0x1e0000 bytes (a split OVMF_CODE image cannot launch a TD: use the unified OVMF.fd)\n"
    );
}
