//! Reference values from the image: the SEV-SNP launch digest and the TDX MRTD an OVMF build yields, computed from its
//! bytes so an operator can write a `[[workload]]` without booting the VM first (no trust on first use).
//!
//! The flow, the same for both TEEs: the firmware image's OVMF GUIDed table ([`ovmf`], 32 bytes before its end) says
//! where the TEE's metadata is; the metadata says which guest-physical pages the VMM loads and how the hardware
//! measures them; replaying those launch commands over the image's bytes gives the value the hardware reports.
//! The computations are pure functions over bytes; [`command`] is the CLI edge that reads the files and prints.
//!
//! **SEV-SNP** ([`snp`]): the semantics of AMD's `sev-snp-measure` 0.0.13 in `--mode snp`, the reference the tests
//! compare against — every OVMF page as a normal page at `4 GiB − image size`; then the SEV metadata sections (secure
//! memory as zero pages, or unmeasured on GCE; the secrets page; the CPUID page, last on EC2; the kernel-hashes page
//! for measured direct boot); then one VMSA per vCPU (the BSP at the reset vector, the APs at the SEV-ES reset block)
//! with the register state of the chosen VMM (`qemu`, `ec2`, `gce`) and, on QEMU, the CPU signature of the vCPU type.
//!
//! Why not `sev::measurement` (the mandated `sev` 8 crate has it, and builds with our `snp` + `crypto_nossl`
//! features): its entry points take file paths (`OVMF::new(PathBuf)`, `SevHashes::new(PathBuf, …)`), while this core
//! does no I/O; its digest accessor on `Gctx` is crate-private, so its pieces cannot be combined over bytes; it has
//! no GCE VMM type; its EC2 VMSA sets RDX to 0 where `sev-snp-measure` 0.0.13 sets 0x600; it trims the kernel
//! command line where QEMU and `sev-snp-measure` hash it as given; and it indexes the image without bounds checks
//! (a truncated file panics). We do use its vCPU model table (`sev::measurement::vcpu_types::CpuType`) and its
//! `PageType` codes.
//!
//! **TDX** ([`tdx`]): MRTD is the SHA-384 the TDX module accumulates over `TDH.MEM.PAGE.ADD` (one 128-byte record
//! per 4 KiB page: `"MEM.PAGE.ADD"`, GPA) and `TDH.MR.EXTEND` (per 256-byte chunk: a 128-byte record `"MR.EXTEND"`,
//! GPA, then the chunk) for the TDVF metadata's sections. The value assumes **upstream QEMU (≥ 9) on upstream KVM**:
//! every section QEMU accepts (BFV, CFV, TD_HOB, TempMem) is added page by page in metadata order — TD_HOB and TempMem
//! pages too, which measures their GPAs but not their contents (QEMU fills the TD_HOB after the measurement-neutral
//! add, TempMem stays zero) — and each page of a section with the MR.EXTEND attribute is extended right after it is
//! added. Sections with the PAGE.AUG attribute are not added (the guest accepts them later). Canonical's TDX QEMU 8.2
//! (and Intel's older QEMU/KVM) instead adds all pages of a section before extending any: that variant is
//! [`tdx::PageAddOrder::TwoPass`] (`--two-pass-add-pages`). Nothing in the image fixes RTMR0–3.

pub mod command;
pub mod ovmf;
pub mod snp;
pub mod tdx;
pub mod workload;

pub use snp::{snp_launch_digest, KernelHashes, SnpLaunch, VcpuType, VmmType};
pub use tdx::{tdx_mrtd, PageAddOrder};

/// Why an image or a request cannot be measured. Every variant is bad input (the CLI exits 2 with its message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The image is not whole 4 KiB pages, or larger than the 4 GiB it is mapped below.
    #[error("the image is {len} bytes: a firmware image is whole 4 KiB pages and at most 4 GiB")]
    ImageSize {
        /// Its length.
        len: usize,
    },
    /// No OVMF GUIDed table footer (GUID 96b582de-1fb2-45f7-baea-a366c55a082d, 32 bytes before the end).
    #[error("the image has no OVMF GUIDed table (footer GUID 96b582de-1fb2-45f7-baea-a366c55a082d 32 bytes before its end): it is not an OVMF build for confidential guests")]
    NoGuidedTable,
    /// The GUIDed table is there but does not parse.
    #[error("the OVMF GUIDed table is malformed: {0}")]
    GuidedTable(String),
    /// No SEV metadata entry in the GUIDed table.
    #[error("the image has no SEV metadata (OVMF table entry dc886566-984a-4798-a75e-5585a7bf67cc): it cannot launch as an SEV-SNP guest")]
    NoSevMetadata,
    /// The SEV metadata does not parse or names something the launch cannot do.
    #[error("the SEV metadata is malformed: {0}")]
    SevMetadata(String),
    /// No SEV-ES reset block, so the APs' start address is unknown.
    #[error("the image has no SEV-ES reset block (OVMF table entry 00f771de-1a7e-4fcb-890e-68c77e2fb44e): the APs' start address is unknown")]
    NoResetBlock,
    /// Measured direct boot asked for on an image that has no place for the hashes.
    #[error("--kernel needs an image with an SNP kernel-hashes section (SEV metadata section type 0x10); this image has none, so QEMU cannot measure a kernel, initrd or command line into it")]
    NoKernelHashesSection,
    /// No TDVF metadata entry in the GUIDed table.
    #[error("the image has no TDVF metadata (OVMF table entry e47a6535-984a-4798-865e-4685a7bf8ec2): it cannot launch as a TDX guest")]
    NoTdvfMetadata,
    /// The TDVF metadata does not parse or names something QEMU does not load.
    #[error("the TDVF metadata is malformed: {0}")]
    TdvfMetadata(String),
    /// A vCPU type `sev-snp-measure` does not know.
    #[error("unknown vCPU type {0:?}: expected one of {names}", names = snp::VCPU_TYPE_NAMES.join(", "))]
    UnknownVcpuType(String),
    /// QEMU puts the vCPU's CPUID signature in RDX, so the type must be given.
    #[error("--vcpu-type is required with --vmm-type qemu (QEMU puts the vCPU's CPUID signature in each VMSA)")]
    VcpuTypeRequired,
    /// A guest needs at least one vCPU.
    #[error("--vcpus must be at least 1")]
    NoVcpus,
}

/// Read a little-endian `u16` at `at`, `None` past the end.
fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(b.try_into().ok()?))
}

/// Read a little-endian `u32` at `at`, `None` past the end.
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Read a little-endian `u64` at `at`, `None` past the end.
fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// 4 KiB, the page size of both launch flows.
pub const PAGE_SIZE: usize = 4096;
