//! The OVMF GUIDed table (edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`): a list of `(data, u16 size, GUID)`
//! entries read backwards from a footer entry that ends 32 bytes before the end of the image. Each entry's `size`
//! counts its data and its 18-byte header (size + GUID). Both TEEs find their metadata through it.

use super::{le_u16, le_u32, MeasureError, PAGE_SIZE};

/// A GUID in its on-disk (little-endian first three fields) byte order.
pub type GuidLe = [u8; 16];

/// The on-disk bytes of GUID `a-b-c-d` (`d` the last 8 bytes as written).
pub const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> GuidLe {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// The table footer: 96b582de-1fb2-45f7-baea-a366c55a082d.
pub const TABLE_FOOTER_GUID: GuidLe = guid(
    0x96b5_82de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);
/// SEV metadata offset: dc886566-984a-4798-a75e-5585a7bf67cc.
pub const SEV_METADATA_GUID: GuidLe = guid(
    0xdc88_6566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);
/// SEV-ES AP reset block: 00f771de-1a7e-4fcb-890e-68c77e2fb44e.
pub const SEV_ES_RESET_BLOCK_GUID: GuidLe = guid(
    0x00f7_71de,
    0x1a7e,
    0x4fcb,
    [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e],
);
/// SEV kernel-hashes table GPA: 7255371f-3a3b-4b04-927b-1da6efa8d454.
pub const SEV_HASH_TABLE_RV_GUID: GuidLe = guid(
    0x7255_371f,
    0x3a3b,
    0x4b04,
    [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54],
);
/// TDX metadata offset: e47a6535-984a-4798-865e-4685a7bf8ec2.
pub const TDX_METADATA_GUID: GuidLe = guid(
    0xe47a_6535,
    0x984a,
    0x4798,
    [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2],
);

/// Bytes between the footer entry and the end of the image (the reset vector and its padding).
const BYTES_AFTER_FOOTER: usize = 32;
/// An entry's header: `u16` size then the GUID.
const ENTRY_HEADER: usize = 18;

/// A firmware image with its GUIDed table parsed.
#[derive(Debug)]
pub struct OvmfImage<'a> {
    /// The whole image, as loaded below 4 GiB.
    data: &'a [u8],
    /// `(GUID, data)` in the order the table lists them from the footer backwards.
    entries: Vec<(GuidLe, &'a [u8])>,
}

impl<'a> OvmfImage<'a> {
    /// Parse the image's GUIDed table. The image must be whole pages and at most 4 GiB (it is mapped to end at 4 GiB).
    pub fn parse(data: &'a [u8]) -> Result<Self, MeasureError> {
        if data.is_empty() || data.len() % PAGE_SIZE != 0 || data.len() as u64 > 1 << 32 {
            return Err(MeasureError::ImageSize { len: data.len() });
        }
        let footer_at = data
            .len()
            .checked_sub(BYTES_AFTER_FOOTER + ENTRY_HEADER)
            .ok_or(MeasureError::NoGuidedTable)?;
        if data.get(footer_at + 2..footer_at + ENTRY_HEADER) != Some(&TABLE_FOOTER_GUID[..]) {
            return Err(MeasureError::NoGuidedTable);
        }
        let table_size = le_u16(data, footer_at)
            .and_then(|s| usize::from(s).checked_sub(ENTRY_HEADER))
            .ok_or_else(|| MeasureError::GuidedTable("footer size below its header".into()))?;
        let table_start = footer_at
            .checked_sub(table_size)
            .ok_or_else(|| MeasureError::GuidedTable("table larger than the image".into()))?;
        let mut table = &data[table_start..footer_at];
        let mut entries = Vec::new();
        while table.len() >= ENTRY_HEADER {
            let header = table.len() - ENTRY_HEADER;
            let size = le_u16(table, header).map(usize::from).unwrap_or(0);
            if size < ENTRY_HEADER || size > table.len() {
                return Err(MeasureError::GuidedTable(format!(
                    "entry of size {size} with {} bytes of table left",
                    table.len()
                )));
            }
            let mut guid = [0u8; 16];
            guid.copy_from_slice(&table[header + 2..]);
            entries.push((guid, &table[table.len() - size..header]));
            table = &table[..table.len() - size];
        }
        Ok(Self { data, entries })
    }

    /// The whole image.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The guest-physical address of the image's first byte: it ends at 4 GiB.
    pub fn gpa(&self) -> u64 {
        (1u64 << 32) - self.data.len() as u64
    }

    /// The data of the first entry with `guid`.
    pub fn entry(&self, guid: &GuidLe) -> Option<&'a [u8]> {
        self.entries
            .iter()
            .find(|(g, _)| g == guid)
            .map(|(_, data)| *data)
    }

    /// The `u32` at the start of entry `guid`'s data (an offset or an address, by entry).
    pub fn entry_u32(&self, guid: &GuidLe) -> Option<u32> {
        self.entry(guid).and_then(|d| le_u32(d, 0))
    }

    /// The image offset `offset_from_end` bytes before its end (how metadata entries point into the image).
    pub fn offset_from_end(&self, offset_from_end: u32) -> Option<usize> {
        self.data.len().checked_sub(offset_from_end as usize)
    }

    /// The items of a metadata descriptor the image points to with `guid` (SEV `"ASEV"`, TDVF `"TDVF"`): signature,
    /// `u32` length, `u32` version (1), `u32` count, then `count` items of `item_len` bytes. `missing` when the image
    /// has no such entry; `bad` wraps what is wrong with the descriptor.
    pub fn metadata_items(
        &self,
        guid: &GuidLe,
        signature: &[u8; 4],
        item_len: usize,
        missing: MeasureError,
        bad: fn(String) -> MeasureError,
    ) -> Result<&'a [u8], MeasureError> {
        let offset = self.entry_u32(guid).ok_or(missing)?;
        let data = self.data();
        let start = self.offset_from_end(offset).ok_or_else(|| {
            bad(format!(
                "offset {offset:#x} from the end is outside the image"
            ))
        })?;
        if data.get(start..start + 4) != Some(&signature[..]) {
            return Err(bad(format!(
                "no {:?} signature at image offset {start:#x}",
                String::from_utf8_lossy(signature)
            )));
        }
        let field = |at: usize, what: &str| {
            super::le_u32(data, start + at)
                .ok_or_else(|| bad(format!("{what} is past the end of the image")))
        };
        let len = field(4, "the length")? as usize;
        let version = field(8, "the version")?;
        let count = field(12, "the section count")? as usize;
        if version != 1 {
            return Err(bad(format!("version {version}, expected 1")));
        }
        if count.checked_mul(item_len).and_then(|n| n.checked_add(16)) != Some(len) {
            return Err(bad(format!("length {len} does not hold {count} sections")));
        }
        data.get(start + 16..start + len)
            .ok_or_else(|| bad(format!("{count} sections run past the end of the image")))
    }
}

/// Build synthetic images for tests: `pages` zero pages, a GUIDed table with `entries`, and `patches` written at image
/// offsets (metadata blobs).
#[cfg(test)]
pub(crate) fn synthetic_image(
    pages: usize,
    entries: &[(GuidLe, Vec<u8>)],
    patches: &[(usize, Vec<u8>)],
) -> Vec<u8> {
    let mut image = vec![0u8; pages * PAGE_SIZE];
    for (at, bytes) in patches {
        image[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    let mut table = Vec::new();
    for (guid, data) in entries {
        table.extend_from_slice(data);
        table.extend_from_slice(&((data.len() + ENTRY_HEADER) as u16).to_le_bytes());
        table.extend_from_slice(guid);
    }
    table.extend_from_slice(&((table.len() + ENTRY_HEADER) as u16).to_le_bytes());
    table.extend_from_slice(&TABLE_FOOTER_GUID);
    let end = image.len() - BYTES_AFTER_FOOTER;
    image[end - table.len()..end].copy_from_slice(&table);
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_bytes_are_little_endian_in_the_first_three_fields() {
        // 96b582de-1fb2-45f7-baea-a366c55a082d as it appears on disk.
        assert_eq!(
            TABLE_FOOTER_GUID,
            [
                0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a,
                0x08, 0x2d
            ]
        );
    }

    #[test]
    fn entries_are_read_backwards_from_the_footer() {
        let image = synthetic_image(
            2,
            &[
                (
                    SEV_ES_RESET_BLOCK_GUID,
                    0x0080_b004u32.to_le_bytes().to_vec(),
                ),
                (TDX_METADATA_GUID, vec![1, 2, 3, 4, 5, 6]),
            ],
            &[],
        );
        let ovmf = OvmfImage::parse(&image).expect("parses");
        assert_eq!(ovmf.entry_u32(&SEV_ES_RESET_BLOCK_GUID), Some(0x0080_b004));
        assert_eq!(
            ovmf.entry(&TDX_METADATA_GUID),
            Some(&[1, 2, 3, 4, 5, 6][..])
        );
        assert_eq!(ovmf.entry(&SEV_METADATA_GUID), None);
        assert_eq!(ovmf.gpa(), (1 << 32) - 2 * 4096);
    }

    #[test]
    fn an_image_without_the_footer_is_refused() {
        assert_eq!(
            OvmfImage::parse(&[0u8; 8192]).err(),
            Some(MeasureError::NoGuidedTable)
        );
    }

    #[test]
    fn an_image_of_partial_pages_is_refused() {
        assert_eq!(
            OvmfImage::parse(&[0u8; 4095]).err(),
            Some(MeasureError::ImageSize { len: 4095 })
        );
        assert_eq!(
            OvmfImage::parse(&[]).err(),
            Some(MeasureError::ImageSize { len: 0 })
        );
    }

    #[test]
    fn an_entry_larger_than_the_table_is_refused() {
        let mut image = synthetic_image(1, &[(TDX_METADATA_GUID, vec![0; 4])], &[]);
        // The entry's size field sits just before its GUID, which sits just before the footer entry.
        let entry_size_at = image.len() - 32 - 18 - 18;
        image[entry_size_at..entry_size_at + 2].copy_from_slice(&500u16.to_le_bytes());
        assert!(matches!(
            OvmfImage::parse(&image),
            Err(MeasureError::GuidedTable(m)) if m.contains("entry of size 500")
        ));
    }
}
