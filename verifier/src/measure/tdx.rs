//! MRTD of a TDVF image (Intel TDX Virtual Firmware Design Guide §11 metadata; TDX module spec, TDH.MEM.PAGE.ADD and
//! TDH.MR.EXTEND) as QEMU loads it. The VMM variant the value assumes is described in the `measure` module docs.
//!
//! 1. Find the TDVF descriptor through the OVMF GUIDed table (entry e47a6535-…: offset from the end of the image).
//! 2. Check each section as QEMU's `hw/i386/tdvf.c` does: page-aligned address and size, size ≥ raw data, a type QEMU
//!    loads (BFV and CFV with data, TD_HOB and TempMem without), raw data inside the image.
//! 3. Replay the launch: per section, per page, PAGE.ADD (unless PAGE.AUG) and, for MR.EXTEND sections, 16 chunk
//!    extensions of the page as loaded (the image's raw data, zero past it).

use sha2::{Digest, Sha384};

use super::ovmf::{OvmfImage, TDX_METADATA_GUID};
use super::{le_u32, le_u64, MeasureError, PAGE_SIZE};

/// Section attribute: the VMM extends MRTD with the section's contents.
const ATTR_MR_EXTEND: u32 = 1 << 0;
/// Section attribute: the pages are added after launch (TDH.MEM.PAGE.AUG), not measured.
const ATTR_PAGE_AUG: u32 = 1 << 1;
/// TDH.MR.EXTEND works on 256-byte chunks.
const MR_EXTEND_CHUNK: usize = 256;

/// In which order the VMM issues PAGE.ADD and MR.EXTEND within a section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PageAddOrder {
    /// Upstream QEMU (≥ 9) on upstream KVM: each page is added, then extended.
    #[default]
    SinglePass,
    /// Canonical's TDX QEMU 8.2 and Intel's older QEMU/KVM: all pages of a section are added, then all extended.
    TwoPass,
}

/// TDVF section types (TDVF design guide table 11-2) that QEMU loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SectionType {
    Bfv,
    Cfv,
    TdHob,
    TempMem,
}

impl SectionType {
    fn name(self) -> &'static str {
        match self {
            SectionType::Bfv => "BFV",
            SectionType::Cfv => "CFV",
            SectionType::TdHob => "TD_HOB",
            SectionType::TempMem => "TempMem",
        }
    }
}

/// One TDVF section (32 bytes: `u32` data offset, `u32` raw size, `u64` GPA, `u64` memory size, `u32` type,
/// `u32` attributes).
#[derive(Clone, Copy, Debug)]
struct Section {
    data_offset: usize,
    raw_size: usize,
    gpa: u64,
    mem_size: usize,
    attributes: u32,
}

/// Steps 1 and 2: the descriptor (`"TDVF"`, `u32` length, `u32` version 1, `u32` count) and its sections.
fn tdvf_sections(ovmf: &OvmfImage<'_>) -> Result<Vec<Section>, MeasureError> {
    let bad = |m: String| MeasureError::TdvfMetadata(m);
    let items = ovmf.metadata_items(
        &TDX_METADATA_GUID,
        b"TDVF",
        32,
        MeasureError::NoTdvfMetadata,
        MeasureError::TdvfMetadata,
    )?;
    let count = items.len() / 32;
    let data = ovmf.data();
    let mut sections = Vec::with_capacity(count);
    for (i, item) in items.chunks_exact(32).enumerate() {
        let u32_at = |at| le_u32(item, at).unwrap_or(0);
        let u64_at = |at| le_u64(item, at).unwrap_or(0);
        let (data_offset, raw_size, gpa, mem_size, kind, attributes) = (
            u32_at(0) as usize,
            u32_at(4) as usize,
            u64_at(8),
            u64_at(16),
            u32_at(24),
            u32_at(28),
        );
        let kind = match kind {
            0 => SectionType::Bfv,
            1 => SectionType::Cfv,
            2 => SectionType::TdHob,
            3 => SectionType::TempMem,
            other => {
                return Err(bad(format!(
                    "section {i} has type {other}, which QEMU does not load (it loads BFV 0, CFV 1, TD_HOB 2, TempMem 3)"
                )))
            }
        };
        let what = format!("section {i} ({})", kind.name());
        let mem_size = usize::try_from(mem_size)
            .ok()
            .filter(|m| *m <= 1 << 32)
            .ok_or_else(|| bad(format!("{what} is {mem_size:#x} bytes")))?;
        if gpa % PAGE_SIZE as u64 != 0 || mem_size % PAGE_SIZE != 0 {
            return Err(bad(format!(
                "{what} at {gpa:#x}, {mem_size:#x} bytes, is not page-aligned"
            )));
        }
        if mem_size < raw_size {
            return Err(bad(format!(
                "{what} has {raw_size:#x} bytes of data for {mem_size:#x} bytes of memory"
            )));
        }
        match kind {
            SectionType::Bfv | SectionType::Cfv if raw_size == 0 => {
                return Err(bad(format!("{what} has no data")))
            }
            SectionType::TdHob | SectionType::TempMem if raw_size != 0 => {
                return Err(bad(format!(
                    "{what} must have no data, has {raw_size:#x} bytes"
                )))
            }
            _ => {}
        }
        if data_offset
            .checked_add(raw_size)
            .is_none_or(|end| end > data.len())
        {
            return Err(bad(format!(
                "{what} needs image bytes {data_offset:#x}..{:#x}, but the image is {:#x} bytes (a split OVMF_CODE \
                 image cannot launch a TD: use the unified OVMF.fd)",
                data_offset.saturating_add(raw_size),
                data.len()
            )));
        }
        sections.push(Section {
            data_offset,
            raw_size,
            gpa,
            mem_size,
            attributes,
        });
    }
    Ok(sections)
}

/// The 128-byte record the TDX module hashes for a PAGE.ADD or MR.EXTEND: the operation's ASCII name, zero-padded to
/// 16 bytes, then the GPA, then zeros.
fn record(op: &[u8], gpa: u64) -> [u8; 128] {
    let mut r = [0u8; 128];
    r[..op.len()].copy_from_slice(op);
    r[16..24].copy_from_slice(&gpa.to_le_bytes());
    r
}

/// Step 3 for one page of `s`: its contents as QEMU loads them (raw data, zero past it).
fn extend_page(h: &mut Sha384, image: &[u8], s: &Section, page: usize) {
    for chunk in 0..PAGE_SIZE / MR_EXTEND_CHUNK {
        let offset = page * PAGE_SIZE + chunk * MR_EXTEND_CHUNK;
        h.update(record(b"MR.EXTEND", s.gpa + offset as u64));
        let mut bytes = [0u8; MR_EXTEND_CHUNK];
        if offset < s.raw_size {
            let n = (s.raw_size - offset).min(MR_EXTEND_CHUNK);
            let from = s.data_offset + offset;
            bytes[..n].copy_from_slice(&image[from..from + n]);
        }
        h.update(bytes);
    }
}

/// The MRTD of `image` when the VMM adds its pages in `order`.
pub fn tdx_mrtd(image: &[u8], order: PageAddOrder) -> Result<[u8; 48], MeasureError> {
    let ovmf = OvmfImage::parse(image)?;
    let sections = tdvf_sections(&ovmf)?;
    let mut h = Sha384::new();
    for s in &sections {
        let pages = s.mem_size / PAGE_SIZE;
        let add = |h: &mut Sha384, page: usize| {
            if s.attributes & ATTR_PAGE_AUG == 0 {
                h.update(record(b"MEM.PAGE.ADD", s.gpa + (page * PAGE_SIZE) as u64));
            }
        };
        let extend = s.attributes & ATTR_MR_EXTEND != 0;
        match order {
            PageAddOrder::SinglePass => {
                for page in 0..pages {
                    add(&mut h, page);
                    if extend {
                        extend_page(&mut h, image, s, page);
                    }
                }
            }
            PageAddOrder::TwoPass => {
                for page in 0..pages {
                    add(&mut h, page);
                }
                if extend {
                    for page in 0..pages {
                        extend_page(&mut h, image, s, page);
                    }
                }
            }
        }
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::ovmf::synthetic_image;

    /// A TDVF section as (data offset, raw size, GPA, memory size, type, attributes).
    type RawSection = (u32, u32, u64, u64, u32, u32);

    /// A 4-page image whose TDVF descriptor (at image offset 0x200) lists `sections`.
    fn image(sections: &[RawSection]) -> Vec<u8> {
        let pages = 4;
        let at = 0x200usize;
        let mut meta = b"TDVF".to_vec();
        meta.extend_from_slice(&((16 + 32 * sections.len()) as u32).to_le_bytes());
        meta.extend_from_slice(&1u32.to_le_bytes());
        meta.extend_from_slice(&(sections.len() as u32).to_le_bytes());
        for (off, raw, gpa, size, kind, attr) in sections {
            meta.extend_from_slice(&off.to_le_bytes());
            meta.extend_from_slice(&raw.to_le_bytes());
            meta.extend_from_slice(&gpa.to_le_bytes());
            meta.extend_from_slice(&size.to_le_bytes());
            meta.extend_from_slice(&kind.to_le_bytes());
            meta.extend_from_slice(&attr.to_le_bytes());
        }
        // Recognisable contents in page 1, which the BFV of the tests covers.
        let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        synthetic_image(
            pages,
            &[(
                TDX_METADATA_GUID,
                ((pages * PAGE_SIZE - at) as u32).to_le_bytes().to_vec(),
            )],
            &[(at, meta), (0x1000, pattern)],
        )
    }

    /// The byte stream the TDX module hashes, written out the long way.
    fn page_add(gpa: u64) -> Vec<u8> {
        let mut r = b"MEM.PAGE.ADD\0\0\0\0".to_vec();
        r.extend_from_slice(&gpa.to_le_bytes());
        r.resize(128, 0);
        r
    }

    fn mr_extend(gpa: u64, chunk: &[u8]) -> Vec<u8> {
        let mut r = b"MR.EXTEND\0\0\0\0\0\0\0".to_vec();
        r.extend_from_slice(&gpa.to_le_bytes());
        r.resize(128, 0);
        r.extend_from_slice(chunk);
        r
    }

    #[test]
    fn mrtd_is_the_sha384_of_page_add_and_mr_extend_records_in_launch_order() {
        // BFV: one page of image data at GPA 0xffff0000, extended; TempMem: two pages at 0x800000, added only.
        let img = image(&[
            (0x1000, 0x1000, 0xffff_0000, 0x1000, 0, ATTR_MR_EXTEND),
            (0, 0, 0x80_0000, 0x2000, 3, 0),
        ]);
        let mut stream = page_add(0xffff_0000);
        for c in 0..16 {
            let from = 0x1000 + c * 256;
            stream.extend(mr_extend(
                0xffff_0000 + c as u64 * 256,
                &img[from..from + 256],
            ));
        }
        stream.extend(page_add(0x80_0000));
        stream.extend(page_add(0x80_1000));
        let want: [u8; 48] = Sha384::digest(&stream).into();
        assert_eq!(tdx_mrtd(&img, PageAddOrder::SinglePass), Ok(want));
        // One page per section: both orders agree.
        assert_eq!(tdx_mrtd(&img, PageAddOrder::TwoPass), Ok(want));
    }

    #[test]
    fn two_pass_adds_every_page_of_a_section_before_extending() {
        // A two-page BFV whose second page lies past the raw data (loaded as zeros).
        let img = image(&[(0x1000, 0x1000, 0xffff_0000, 0x2000, 0, ATTR_MR_EXTEND)]);
        let chunks = |page: u64| -> Vec<u8> {
            let mut out = Vec::new();
            for c in 0..16u64 {
                let from = 0x1000 + (page * 4096 + c * 256) as usize;
                let data = if page == 0 {
                    img[from..from + 256].to_vec()
                } else {
                    vec![0; 256]
                };
                out.extend(mr_extend(0xffff_0000 + page * 4096 + c * 256, &data));
            }
            out
        };
        let mut single = page_add(0xffff_0000);
        single.extend(chunks(0));
        single.extend(page_add(0xffff_1000));
        single.extend(chunks(1));
        let mut two = page_add(0xffff_0000);
        two.extend(page_add(0xffff_1000));
        two.extend(chunks(0));
        two.extend(chunks(1));
        assert_eq!(
            tdx_mrtd(&img, PageAddOrder::SinglePass),
            Ok(Sha384::digest(&single).into())
        );
        assert_eq!(
            tdx_mrtd(&img, PageAddOrder::TwoPass),
            Ok(Sha384::digest(&two).into())
        );
    }

    #[test]
    fn page_aug_sections_are_not_added() {
        let with_aug = image(&[
            (0x1000, 0x1000, 0xffff_0000, 0x1000, 0, ATTR_MR_EXTEND),
            (0, 0, 0x80_0000, 0x1000, 3, ATTR_PAGE_AUG),
        ]);
        let without = image(&[(0x1000, 0x1000, 0xffff_0000, 0x1000, 0, ATTR_MR_EXTEND)]);
        assert_eq!(
            tdx_mrtd(&with_aug, PageAddOrder::SinglePass),
            tdx_mrtd(&without, PageAddOrder::SinglePass)
        );
    }

    #[test]
    fn an_image_without_tdvf_metadata_is_refused() {
        let img = synthetic_image(2, &[], &[]);
        let err = tdx_mrtd(&img, PageAddOrder::SinglePass).expect_err("no metadata");
        assert_eq!(err, MeasureError::NoTdvfMetadata);
        assert_eq!(
            err.to_string(),
            "the image has no TDVF metadata (OVMF table entry e47a6535-984a-4798-865e-4685a7bf8ec2): it cannot launch as a TDX guest"
        );
    }

    #[test]
    fn sections_qemu_would_refuse_are_refused() {
        let cases: &[(RawSection, &str)] = &[
            (
                (0, 0, 0x80_0000, 0x1000, 4, 0),
                "section 0 has type 4, which QEMU does not load (it loads BFV 0, CFV 1, TD_HOB 2, TempMem 3)",
            ),
            (
                (0x1000, 0x1000, 0xffff_0800, 0x1000, 0, 1),
                "section 0 (BFV) at 0xffff0800, 0x1000 bytes, is not page-aligned",
            ),
            (
                (0x1000, 0x2000, 0xffff_0000, 0x1000, 0, 1),
                "section 0 (BFV) has 0x2000 bytes of data for 0x1000 bytes of memory",
            ),
            ((0, 0, 0xffff_0000, 0x1000, 1, 0), "section 0 (CFV) has no data"),
            (
                (0, 0x10, 0x80_0000, 0x1000, 2, 0),
                "section 0 (TD_HOB) must have no data, has 0x10 bytes",
            ),
        ];
        for (section, message) in cases {
            let img = image(&[*section]);
            assert_eq!(
                tdx_mrtd(&img, PageAddOrder::SinglePass),
                Err(MeasureError::TdvfMetadata((*message).to_string())),
                "{section:?}"
            );
        }
    }

    #[test]
    fn section_data_past_the_end_of_the_image_is_refused() {
        let img = image(&[(0x3000, 0x2000, 0xffff_0000, 0x2000, 0, 1)]);
        assert!(matches!(
            tdx_mrtd(&img, PageAddOrder::SinglePass),
            Err(MeasureError::TdvfMetadata(m)) if m.starts_with("section 0 (BFV) needs image bytes 0x3000..0x5000, but the image is 0x4000 bytes")
        ));
    }

    #[test]
    fn a_descriptor_whose_length_disagrees_with_its_count_is_refused() {
        let mut img = image(&[(0, 0, 0x80_0000, 0x1000, 3, 0)]);
        img[0x20c..0x210].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(
            tdx_mrtd(&img, PageAddOrder::SinglePass),
            Err(MeasureError::TdvfMetadata(
                "length 48 does not hold 9 sections".into()
            ))
        );
    }
}
