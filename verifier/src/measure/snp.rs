//! The SEV-SNP launch digest (SNP firmware ABI §8.17 `SNP_LAUNCH_UPDATE`, PAGE_INFO) of an OVMF image as QEMU, EC2 or
//! GCE launch it, with the semantics of `sev-snp-measure` 0.0.13 `--mode snp` (see the module docs of `measure` for
//! why this is not `sev::measurement`).
//!
//! 1. Every page of the image, as a normal page, at `4 GiB − size`.
//! 2. The SEV metadata sections in order: secure memory → zero pages (GCE: unmeasured pages); secrets → the secrets
//!    page; CPUID → the CPUID page (EC2: after all other sections); kernel hashes → the hashes table page when a
//!    kernel is given, zero pages otherwise; SVSM calling area → zero pages.
//! 3. One VMSA per vCPU: the BSP starts at the reset vector `0xfffffff0`, the APs at the SEV-ES reset block's address.

use sev::launch::PageType;
use sev::measurement::vcpu_types::CpuType;
use sha2::{Digest, Sha256, Sha384};

use super::ovmf::{OvmfImage, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_RV_GUID, SEV_METADATA_GUID};
use super::{le_u32, MeasureError, PAGE_SIZE};

/// The vCPU type names `sev-snp-measure` 0.0.13 accepts (QEMU's EPYC models), spelled as it spells them.
pub const VCPU_TYPE_NAMES: &[&str] = &[
    "EPYC",
    "EPYC-v1",
    "EPYC-v2",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-Rome",
    "EPYC-Rome-v1",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Milan",
    "EPYC-Milan-v1",
    "EPYC-Milan-v2",
    "EPYC-Genoa",
    "EPYC-Genoa-v1",
    "EPYC-Turin",
];

/// A QEMU vCPU model; its CPUID signature (family, model, stepping) comes from the `sev` crate's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuType {
    name: &'static str,
    signature: u32,
}

impl VcpuType {
    /// One of [`VCPU_TYPE_NAMES`], exactly as spelled there.
    pub fn parse(name: &str) -> Result<Self, MeasureError> {
        let unknown = || MeasureError::UnknownVcpuType(name.to_string());
        let known = VCPU_TYPE_NAMES
            .iter()
            .find(|n| **n == name)
            .ok_or_else(unknown)?;
        let cpu = CpuType::try_from(*known).map_err(|_| unknown())?;
        let signature = u32::try_from(cpu.sig()).map_err(|_| unknown())?;
        Ok(Self {
            name: known,
            signature,
        })
    }

    /// The name it was parsed from.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// CPUID Fn0000_0001_EAX as QEMU reports it (QEMU puts it in the VMSA's RDX).
    pub fn signature(&self) -> u32 {
        self.signature
    }
}

/// The VMM that launches the guest: they differ in the initial register state and in how some sections are added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VmmType {
    /// QEMU/KVM.
    Qemu,
    /// AWS EC2.
    Ec2,
    /// Google Compute Engine.
    Gce,
}

impl VmmType {
    /// The lowercase name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            VmmType::Qemu => "qemu",
            VmmType::Ec2 => "ec2",
            VmmType::Gce => "gce",
        }
    }
}

/// The SHA-256 hashes QEMU puts in the SEV hashes table for measured direct boot (`-kernel`, `-initrd`, `-append`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelHashes {
    /// SHA-256 of the kernel file.
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd file (of nothing when there is none).
    pub initrd: [u8; 32],
    /// SHA-256 of the command line with its terminating NUL (just the NUL when there is none).
    pub cmdline: [u8; 32],
}

/// SEV hashes table header and entries (QEMU `target/i386/sev.c`).
const HASH_TABLE_HEADER_GUID: super::ovmf::GuidLe = super::ovmf::guid(
    0x9438_d606,
    0x4f22,
    0x4cc9,
    [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21],
);
const HASH_CMDLINE_GUID: super::ovmf::GuidLe = super::ovmf::guid(
    0x97d0_2dd8,
    0xbd20,
    0x4c94,
    [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a],
);
const HASH_INITRD_GUID: super::ovmf::GuidLe = super::ovmf::guid(
    0x44ba_f731,
    0x3a2f,
    0x4bd7,
    [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d],
);
const HASH_KERNEL_GUID: super::ovmf::GuidLe = super::ovmf::guid(
    0x4de7_9437,
    0xabd2,
    0x427f,
    [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b],
);
/// One table entry: GUID, `u16` length, SHA-256.
const HASH_ENTRY_LEN: usize = 16 + 2 + 32;
/// The table: GUID, `u16` length, three entries (168 bytes).
const HASH_TABLE_LEN: usize = 16 + 2 + 3 * HASH_ENTRY_LEN;
/// QEMU pads the table to 16 bytes.
const HASH_TABLE_PADDED_LEN: usize = HASH_TABLE_LEN.div_ceil(16) * 16;

impl KernelHashes {
    /// Hash the files QEMU would be given. The command line is hashed as given, with a NUL appended.
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, cmdline: Option<&str>) -> Self {
        let mut line = cmdline.unwrap_or("").as_bytes().to_vec();
        line.push(0);
        Self {
            kernel: Sha256::digest(kernel).into(),
            initrd: Sha256::digest(initrd.unwrap_or(&[])).into(),
            cmdline: Sha256::digest(&line).into(),
        }
    }

    /// The padded table QEMU writes: header, then command line, initrd, kernel.
    pub fn table(&self) -> [u8; HASH_TABLE_PADDED_LEN] {
        let mut t = [0u8; HASH_TABLE_PADDED_LEN];
        t[..16].copy_from_slice(&HASH_TABLE_HEADER_GUID);
        t[16..18].copy_from_slice(&(HASH_TABLE_LEN as u16).to_le_bytes());
        let entries = [
            (HASH_CMDLINE_GUID, &self.cmdline),
            (HASH_INITRD_GUID, &self.initrd),
            (HASH_KERNEL_GUID, &self.kernel),
        ];
        for (i, (guid, hash)) in entries.into_iter().enumerate() {
            let at = 18 + i * HASH_ENTRY_LEN;
            t[at..at + 16].copy_from_slice(&guid);
            t[at + 16..at + 18].copy_from_slice(&(HASH_ENTRY_LEN as u16).to_le_bytes());
            t[at + 18..at + HASH_ENTRY_LEN].copy_from_slice(hash);
        }
        t
    }
}

/// What is launched besides the image: vCPUs, VMM, guest features, and the hashes for measured direct boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpLaunch {
    vcpus: u32,
    vcpu_type: Option<VcpuType>,
    vmm: VmmType,
    guest_features: u64,
    kernel_hashes: Option<KernelHashes>,
}

impl SnpLaunch {
    /// A launch of `vcpus` vCPUs by `vmm`. QEMU needs the vCPU type (its signature goes in every VMSA); EC2 and GCE
    /// put a fixed value there, so it is optional for them, as in `sev-snp-measure`.
    pub fn new(
        vcpus: u32,
        vcpu_type: Option<VcpuType>,
        vmm: VmmType,
        guest_features: u64,
        kernel_hashes: Option<KernelHashes>,
    ) -> Result<Self, MeasureError> {
        if vcpus == 0 {
            return Err(MeasureError::NoVcpus);
        }
        if vmm == VmmType::Qemu && vcpu_type.is_none() {
            return Err(MeasureError::VcpuTypeRequired);
        }
        Ok(Self {
            vcpus,
            vcpu_type,
            vmm,
            guest_features,
            kernel_hashes,
        })
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.vcpus
    }

    /// The vCPU type, when given.
    pub fn vcpu_type(&self) -> Option<VcpuType> {
        self.vcpu_type
    }

    /// The VMM.
    pub fn vmm(&self) -> VmmType {
        self.vmm
    }

    /// SEV_FEATURES of every VMSA.
    pub fn guest_features(&self) -> u64 {
        self.guest_features
    }
}

/// SEV metadata section types (edk2 `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SectionType {
    SecMem,
    Secrets,
    Cpuid,
    SvsmCaa,
    KernelHashes,
}

impl SectionType {
    fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::SecMem),
            2 => Some(Self::Secrets),
            3 => Some(Self::Cpuid),
            4 => Some(Self::SvsmCaa),
            0x10 => Some(Self::KernelHashes),
            _ => None,
        }
    }
}

/// One SEV metadata section.
#[derive(Clone, Copy, Debug)]
struct Section {
    gpa: u64,
    size: usize,
    kind: SectionType,
}

/// The `ASEV` descriptor: `"ASEV"`, `u32` length, `u32` version (1), `u32` count, then 12-byte sections
/// (`u32` GPA, `u32` size, `u32` type).
fn sev_metadata(ovmf: &OvmfImage<'_>) -> Result<Vec<Section>, MeasureError> {
    let bad = |m: String| MeasureError::SevMetadata(m);
    let items = ovmf.metadata_items(
        &SEV_METADATA_GUID,
        b"ASEV",
        12,
        MeasureError::NoSevMetadata,
        MeasureError::SevMetadata,
    )?;
    let count = items.len() / 12;
    let mut sections = Vec::with_capacity(count);
    for (i, item) in items.chunks_exact(12).enumerate() {
        let (gpa, size, kind) = (
            le_u32(item, 0).unwrap_or(0),
            le_u32(item, 4).unwrap_or(0),
            le_u32(item, 8).unwrap_or(0),
        );
        let kind = SectionType::from_u32(kind)
            .ok_or_else(|| bad(format!("section {i} has unknown type {kind:#x}")))?;
        if size as usize % PAGE_SIZE != 0 || gpa as usize % PAGE_SIZE != 0 {
            return Err(bad(format!(
                "section {i} ({gpa:#x}, {size:#x} bytes) is not page-aligned"
            )));
        }
        if matches!(kind, SectionType::KernelHashes) && size as usize != PAGE_SIZE {
            return Err(bad(format!(
                "the kernel-hashes section {i} is {size:#x} bytes, not one page"
            )));
        }
        sections.push(Section {
            gpa: u64::from(gpa),
            size: size as usize,
            kind,
        });
    }
    Ok(sections)
}

/// The launch digest as the PSP extends it: `ld = SHA-384(PAGE_INFO)` with PAGE_INFO = previous digest ‖ page
/// contents digest ‖ length 0x70 ‖ page type ‖ IMI 0 ‖ VMPL3..1 permissions 0 ‖ reserved ‖ GPA.
struct LaunchDigest([u8; 48]);

/// The GPA the PSP records for a VMSA page: `(u64)-1`, page-aligned, bits above 51 cleared.
const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

impl LaunchDigest {
    fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; 48]) {
        let mut page_info = [0u8; 0x70];
        page_info[..48].copy_from_slice(&self.0);
        page_info[48..96].copy_from_slice(contents);
        page_info[96..98].copy_from_slice(&0x70u16.to_le_bytes());
        page_info[98] = page_type as u8;
        page_info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.0 = Sha384::digest(page_info).into();
    }

    fn normal_pages(&mut self, gpa: u64, data: &[u8]) {
        for (i, page) in data.chunks(PAGE_SIZE).enumerate() {
            let offset = (i * PAGE_SIZE) as u64;
            self.update(PageType::Normal, gpa + offset, &Sha384::digest(page).into());
        }
    }

    fn empty_pages(&mut self, page_type: PageType, gpa: u64, size: usize) {
        for offset in (0..size).step_by(PAGE_SIZE) {
            self.update(page_type, gpa + offset as u64, &[0; 48]);
        }
    }
}

/// The guest's initial register state as the VMM sets it (AMD APM vol. 2 table B-4, VMSA offsets).
fn vmsa_page(eip: u32, launch: &SnpLaunch) -> [u8; PAGE_SIZE] {
    let mut v = [0u8; PAGE_SIZE];
    let mut put = |at: usize, bytes: &[u8]| v[at..at + bytes.len()].copy_from_slice(bytes);
    let seg = |selector: u16, attrib: u16, limit: u32, base: u64| {
        let mut s = [0u8; 16];
        s[..2].copy_from_slice(&selector.to_le_bytes());
        s[2..4].copy_from_slice(&attrib.to_le_bytes());
        s[4..8].copy_from_slice(&limit.to_le_bytes());
        s[8..].copy_from_slice(&base.to_le_bytes());
        s
    };
    let bsp = eip == 0xffff_fff0;
    // (CS, SS, TR attributes, RDX, MXCSR, x87 FCW, G_PAT) per VMM, as `sev-snp-measure` 0.0.13 sets them.
    let (cs, ss, tr, rdx, mxcsr, fcw, g_pat): (u16, u16, u16, u64, u32, u16, u64) = match launch.vmm
    {
        VmmType::Qemu => (
            0x9b,
            0x93,
            0x8b,
            launch
                .vcpu_type
                .map(|t| u64::from(t.signature()))
                .unwrap_or(0),
            0x1f80,
            0x37f,
            0x0007_0406_0007_0406,
        ),
        VmmType::Ec2 => (
            if bsp { 0x9a } else { 0x9b },
            0x92,
            0x83,
            0x600,
            0,
            0,
            0x0007_0406_0007_0406,
        ),
        VmmType::Gce => (0x9b, 0x93, 0x8b, 0x600, 0, 0, 0x0007_0106),
    };
    put(0x00, &seg(0, 0x93, 0xffff, 0)); // ES
    put(0x10, &seg(0xf000, cs, 0xffff, u64::from(eip & 0xffff_0000))); // CS
    put(0x20, &seg(0, ss, 0xffff, 0)); // SS
    put(0x30, &seg(0, 0x93, 0xffff, 0)); // DS
    put(0x40, &seg(0, 0x93, 0xffff, 0)); // FS
    put(0x50, &seg(0, 0x93, 0xffff, 0)); // GS
    put(0x60, &seg(0, 0, 0xffff, 0)); // GDTR
    put(0x70, &seg(0, 0x82, 0xffff, 0)); // LDTR
    put(0x80, &seg(0, 0, 0xffff, 0)); // IDTR
    put(0x90, &seg(0, tr, 0xffff, 0)); // TR
    put(0xd0, &0x1000u64.to_le_bytes()); // EFER: SVME, which KVM sets
    put(0x148, &0x40u64.to_le_bytes()); // CR4: MCE
    put(0x158, &0x10u64.to_le_bytes()); // CR0: ET
    put(0x160, &0x400u64.to_le_bytes()); // DR7
    put(0x168, &0xffff_0ff0u64.to_le_bytes()); // DR6
    put(0x170, &0x2u64.to_le_bytes()); // RFLAGS
    put(0x178, &u64::from(eip & 0xffff).to_le_bytes()); // RIP
    put(0x268, &g_pat.to_le_bytes()); // G_PAT
    put(0x310, &rdx.to_le_bytes()); // RDX
    put(0x3b0, &launch.guest_features.to_le_bytes()); // SEV_FEATURES
    put(0x3e8, &0x1u64.to_le_bytes()); // XCR0
    put(0x408, &mxcsr.to_le_bytes()); // MXCSR
    put(0x410, &fcw.to_le_bytes()); // x87 FCW
    v
}

/// The SEV-SNP launch digest (the report's MEASUREMENT) of `image` launched as `launch` says.
pub fn snp_launch_digest(image: &[u8], launch: &SnpLaunch) -> Result<[u8; 48], MeasureError> {
    let ovmf = OvmfImage::parse(image)?;
    let sections = sev_metadata(&ovmf)?;
    let has_hashes_section = sections.iter().any(|s| s.kind == SectionType::KernelHashes);
    // Step 0: refuse before measuring anything the launch cannot do.
    let hashes_page = match &launch.kernel_hashes {
        None => None,
        Some(_) if !has_hashes_section => return Err(MeasureError::NoKernelHashesSection),
        Some(hashes) => {
            let gpa = ovmf
                .entry_u32(&SEV_HASH_TABLE_RV_GUID)
                .filter(|gpa| *gpa != 0)
                .ok_or(MeasureError::NoKernelHashesSection)?;
            let offset = gpa as usize % PAGE_SIZE;
            let mut page = [0u8; PAGE_SIZE];
            let table = hashes.table();
            let end = offset + table.len();
            if end > PAGE_SIZE {
                return Err(MeasureError::SevMetadata(format!(
                    "the hashes table at {gpa:#x} crosses a page boundary"
                )));
            }
            page[offset..end].copy_from_slice(&table);
            Some(page)
        }
    };
    let ap_eip = ovmf
        .entry_u32(&SEV_ES_RESET_BLOCK_GUID)
        .ok_or(MeasureError::NoResetBlock)?;
    if ap_eip == 0 && launch.vcpus > 1 {
        return Err(MeasureError::NoResetBlock);
    }

    let mut ld = LaunchDigest([0; 48]);
    // Step 1: the image.
    ld.normal_pages(ovmf.gpa(), ovmf.data());
    // Step 2: the metadata sections.
    for s in &sections {
        match s.kind {
            SectionType::SecMem if launch.vmm == VmmType::Gce => {
                ld.empty_pages(PageType::Unmeasured, s.gpa, s.size)
            }
            SectionType::SecMem | SectionType::SvsmCaa => {
                ld.empty_pages(PageType::Zero, s.gpa, s.size)
            }
            SectionType::Secrets => ld.update(PageType::Secrets, s.gpa, &[0; 48]),
            SectionType::Cpuid if launch.vmm == VmmType::Ec2 => {}
            SectionType::Cpuid => ld.update(PageType::Cpuid, s.gpa, &[0; 48]),
            SectionType::KernelHashes => match &hashes_page {
                Some(page) => ld.normal_pages(s.gpa, page),
                None => ld.empty_pages(PageType::Zero, s.gpa, s.size),
            },
        }
    }
    if launch.vmm == VmmType::Ec2 {
        for s in sections.iter().filter(|s| s.kind == SectionType::Cpuid) {
            ld.update(PageType::Cpuid, s.gpa, &[0; 48]);
        }
    }
    // Step 3: the VMSAs, BSP first.
    let bsp: [u8; 48] = Sha384::digest(vmsa_page(0xffff_fff0, launch)).into();
    let ap: [u8; 48] = Sha384::digest(vmsa_page(ap_eip, launch)).into();
    for i in 0..launch.vcpus {
        ld.update(PageType::Vmsa, VMSA_GPA, if i == 0 { &bsp } else { &ap });
    }
    Ok(ld.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::ovmf::synthetic_image;

    /// A small SNP image: 4 pages; SEV metadata (at image offset 0x100) with the given sections; reset block AP
    /// address 0x80b004; hashes table GPA `hashes_gpa` when given.
    fn image(sections: &[(u32, u32, u32)], hashes_gpa: Option<u32>) -> Vec<u8> {
        let pages = 4;
        let meta_at = 0x100usize;
        let mut meta = b"ASEV".to_vec();
        meta.extend_from_slice(&((16 + 12 * sections.len()) as u32).to_le_bytes());
        meta.extend_from_slice(&1u32.to_le_bytes());
        meta.extend_from_slice(&(sections.len() as u32).to_le_bytes());
        for (gpa, size, kind) in sections {
            for v in [gpa, size, kind] {
                meta.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut entries = vec![
            (
                SEV_ES_RESET_BLOCK_GUID,
                0x0080_b004u32.to_le_bytes().to_vec(),
            ),
            (
                SEV_METADATA_GUID,
                ((pages * PAGE_SIZE - meta_at) as u32)
                    .to_le_bytes()
                    .to_vec(),
            ),
        ];
        if let Some(gpa) = hashes_gpa {
            let mut data = gpa.to_le_bytes().to_vec();
            data.extend_from_slice(&0x400u32.to_le_bytes());
            entries.push((SEV_HASH_TABLE_RV_GUID, data));
        }
        synthetic_image(pages, &entries, &[(meta_at, meta)])
    }

    fn launch(vcpus: u32, hashes: Option<KernelHashes>) -> SnpLaunch {
        let epyc = VcpuType::parse("EPYC-v4").expect("known type");
        SnpLaunch::new(vcpus, Some(epyc), VmmType::Qemu, 0x1, hashes).expect("valid launch")
    }

    #[test]
    fn vcpu_types_carry_the_cpuid_signature_of_their_family() {
        // Family 23 model 1 stepping 2 → 0x00800f12; Milan (25, 1, 1) → 0x00a00f11; Turin (26, 0, 0) → 0x00b00f00.
        assert_eq!(
            VcpuType::parse("EPYC-v4").map(|t| t.signature()),
            Ok(0x0080_0f12)
        );
        assert_eq!(
            VcpuType::parse("EPYC-Milan").map(|t| t.signature()),
            Ok(0x00a0_0f11)
        );
        assert_eq!(
            VcpuType::parse("EPYC-Turin").map(|t| t.signature()),
            Ok(0x00b0_0f00)
        );
    }

    #[test]
    fn an_unknown_vcpu_type_is_refused_naming_the_known_ones() {
        let err = VcpuType::parse("EPYC-Zen9").expect_err("unknown");
        assert_eq!(err, MeasureError::UnknownVcpuType("EPYC-Zen9".into()));
        let msg = err.to_string();
        assert!(
            msg.starts_with("unknown vCPU type \"EPYC-Zen9\": expected one of EPYC, EPYC-v1,"),
            "{msg}"
        );
        // The names are `sev-snp-measure`'s, spelled exactly.
        assert!(VcpuType::parse("epyc-v4").is_err());
    }

    #[test]
    fn qemu_needs_a_vcpu_type_and_ec2_and_gce_do_not() {
        assert_eq!(
            SnpLaunch::new(2, None, VmmType::Qemu, 1, None).err(),
            Some(MeasureError::VcpuTypeRequired)
        );
        assert!(SnpLaunch::new(2, None, VmmType::Ec2, 1, None).is_ok());
        assert!(SnpLaunch::new(2, None, VmmType::Gce, 1, None).is_ok());
        assert_eq!(
            SnpLaunch::new(0, None, VmmType::Gce, 1, None).err(),
            Some(MeasureError::NoVcpus)
        );
        assert_eq!(
            MeasureError::VcpuTypeRequired.to_string(),
            "--vcpu-type is required with --vmm-type qemu (QEMU puts the vCPU's CPUID signature in each VMSA)"
        );
    }

    #[test]
    fn an_image_without_sev_metadata_is_refused() {
        let img = synthetic_image(2, &[(SEV_ES_RESET_BLOCK_GUID, vec![0; 4])], &[]);
        let err = snp_launch_digest(&img, &launch(1, None)).expect_err("no metadata");
        assert_eq!(err, MeasureError::NoSevMetadata);
        assert_eq!(
            err.to_string(),
            "the image has no SEV metadata (OVMF table entry dc886566-984a-4798-a75e-5585a7bf67cc): it cannot launch as an SEV-SNP guest"
        );
    }

    #[test]
    fn a_kernel_on_an_image_without_a_hashes_section_is_refused() {
        let img = image(&[(0x80_0000, 0x1000, 1)], None);
        let hashes = KernelHashes::new(b"kernel", None, None);
        let err = snp_launch_digest(&img, &launch(1, Some(hashes))).expect_err("no section");
        assert_eq!(err, MeasureError::NoKernelHashesSection);
        assert!(err
            .to_string()
            .starts_with("--kernel needs an image with an SNP kernel-hashes section"));
        // Without a kernel the same image measures.
        assert!(snp_launch_digest(&img, &launch(1, None)).is_ok());
    }

    #[test]
    fn unknown_section_types_and_unaligned_sections_are_refused() {
        let img = image(&[(0x80_0000, 0x1000, 7)], None);
        assert_eq!(
            snp_launch_digest(&img, &launch(1, None)).err(),
            Some(MeasureError::SevMetadata(
                "section 0 has unknown type 0x7".into()
            ))
        );
        let img = image(&[(0x80_0000, 0x800, 1)], None);
        assert_eq!(
            snp_launch_digest(&img, &launch(1, None)).err(),
            Some(MeasureError::SevMetadata(
                "section 0 (0x800000, 0x800 bytes) is not page-aligned".into()
            ))
        );
    }

    #[test]
    fn a_metadata_offset_outside_the_image_is_refused() {
        let img = synthetic_image(
            1,
            &[(SEV_METADATA_GUID, 0x10_0000u32.to_le_bytes().to_vec())],
            &[],
        );
        assert!(matches!(
            snp_launch_digest(&img, &launch(1, None)),
            Err(MeasureError::SevMetadata(m)) if m.contains("outside the image")
        ));
    }

    #[test]
    fn hashes_table_holds_the_sha256_of_cmdline_initrd_and_kernel_at_qemus_offsets() {
        let hashes = KernelHashes::new(b"a kernel", Some(b"an initrd"), Some("console=ttyS0"));
        let t = hashes.table();
        assert_eq!(t.len(), 176);
        // Header: GUID 9438d606-4f22-4cc9-b479-a793d411fd21, length 168.
        assert_eq!(&t[..4], &[0x06, 0xd6, 0x38, 0x94]);
        assert_eq!(&t[16..18], &168u16.to_le_bytes());
        // Entries of 50 bytes from offset 18: cmdline (with its NUL), initrd, kernel.
        let cmdline: [u8; 32] = Sha256::digest(b"console=ttyS0\0").into();
        let initrd: [u8; 32] = Sha256::digest(b"an initrd").into();
        let kernel: [u8; 32] = Sha256::digest(b"a kernel").into();
        assert_eq!(&t[18..22], &[0xd8, 0x2d, 0xd0, 0x97]);
        assert_eq!(&t[34..36], &50u16.to_le_bytes());
        assert_eq!(&t[36..68], &cmdline);
        assert_eq!(&t[68..72], &[0x31, 0xf7, 0xba, 0x44]);
        assert_eq!(&t[86..118], &initrd);
        assert_eq!(&t[118..122], &[0x37, 0x94, 0xe7, 0x4d]);
        assert_eq!(&t[136..168], &kernel);
        assert_eq!(&t[168..], &[0; 8]);
        // No initrd and no command line: the hash of nothing and of a lone NUL.
        let bare = KernelHashes::new(b"k", None, None);
        assert_eq!(bare.initrd, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(bare.cmdline, <[u8; 32]>::from(Sha256::digest(b"\0")));
    }

    #[test]
    fn measured_direct_boot_puts_the_hashes_page_in_place_of_the_zero_page() {
        // Independent expectation: replay the PAGE_INFO chain by hand for a 1-vCPU launch of this image.
        let hashes_gpa = 0x80_f000 + 0x10;
        let img = image(&[(0x80_f000, 0x1000, 0x10)], Some(hashes_gpa));
        let hashes = KernelHashes::new(b"vmlinuz", Some(b"initrd"), Some("ro quiet"));
        let launch = launch(1, Some(hashes.clone()));
        let got = snp_launch_digest(&img, &launch).expect("measures");

        let step = |ld: [u8; 48], page_type: u8, gpa: u64, contents: [u8; 48]| -> [u8; 48] {
            let mut info = Vec::new();
            info.extend_from_slice(&ld);
            info.extend_from_slice(&contents);
            info.extend_from_slice(&[0x70, 0x00, page_type, 0, 0, 0, 0, 0]);
            info.extend_from_slice(&gpa.to_le_bytes());
            Sha384::digest(&info).into()
        };
        let mut ld = [0u8; 48];
        let base = (1u64 << 32) - img.len() as u64;
        for (i, page) in img.chunks(4096).enumerate() {
            ld = step(ld, 1, base + 4096 * i as u64, Sha384::digest(page).into());
        }
        let mut page = vec![0u8; 4096];
        page[0x10..0x10 + 176].copy_from_slice(&hashes.table());
        ld = step(ld, 1, 0x80_f000, Sha384::digest(&page).into());
        ld = step(
            ld,
            2,
            0xFFFF_FFFF_F000,
            Sha384::digest(vmsa_page(0xffff_fff0, &launch)).into(),
        );
        assert_eq!(hex::encode(got), hex::encode(ld));

        // Without the kernel the section is a zero page, so the digests differ.
        let plain = snp_launch_digest(&img, &self::launch(1, None)).expect("measures");
        assert_ne!(plain, got);
    }

    #[test]
    fn vmsa_bsp_starts_at_the_reset_vector_and_aps_at_the_reset_block() {
        let l = launch(2, None);
        let bsp = vmsa_page(0xffff_fff0, &l);
        assert_eq!(&bsp[0x18..0x20], &0xffff_0000u64.to_le_bytes()); // CS base
        assert_eq!(&bsp[0x178..0x180], &0xfff0u64.to_le_bytes()); // RIP
        assert_eq!(&bsp[0x310..0x318], &0x0080_0f12u64.to_le_bytes()); // RDX = EPYC signature
        let ap = vmsa_page(0x0080_b004, &l);
        assert_eq!(&ap[0x18..0x20], &0x0080_0000u64.to_le_bytes());
        assert_eq!(&ap[0x178..0x180], &0xb004u64.to_le_bytes());
    }
}
