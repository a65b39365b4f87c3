//! The SEV-SNP extended-report certificate table (GHCB format; also the configfs-tsm `auxblob`; GHCB specification, publication 56421).
//!
//! Layout: 24-byte entries `{ guid[16], offset u32 LE, length u32 LE }` ending with an all-zero entry, followed by the
//! certificate blobs; offsets are relative to the start of the table. The input is untrusted (it comes from the host):
//! every offset and length is bounded by the buffer, blobs may not overlap each other or the entry array, GUIDs may
//! not repeat, and the entry count is capped.

use crate::bytes::{Reader, Writer};
use crate::FormatError;

/// Size of one table entry.
pub const ENTRY_SIZE: usize = 24;
/// Most entries accepted (AMD defines five kinds; leave room for vendor ones).
pub const MAX_ENTRIES: usize = 32;

/// What a table entry holds, from its GUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// `c0b406a4-a803-4952-9743-3fb6014cd0ae`
    Ark,
    /// `4ab7b379-bbac-4fe4-a02f-05aef327c782` (ASK or ASVK)
    Ask,
    /// `63da758d-e664-4564-adc5-f4b93be8accd`
    Vcek,
    /// `a8074bc2-a25a-483e-aae6-39c045a0b8a1`
    Vlek,
    /// `92f81bc3-5811-4d3d-97ff-d19f88dc67ea`
    Crl,
    /// Any other GUID, kept verbatim.
    Other([u8; 16]),
}

const GUID_ARK: [u8; 16] = guid("c0b406a4a80349529743 3fb6014cd0ae");
const GUID_ASK: [u8; 16] = guid("4ab7b379bbac4fe4a02f 05aef327c782");
const GUID_VCEK: [u8; 16] = guid("63da758de6644564adc5 f4b93be8accd");
const GUID_VLEK: [u8; 16] = guid("a8074bc2a25a483eaae6 39c045a0b8a1");
const GUID_CRL: [u8; 16] = guid("92f81bc358114d3d97ff d19f88dc67ea");

/// Decodes a GUID written as its hex string (RFC 4122 byte order, as the string reads) at compile time.
const fn guid(s: &str) -> [u8; 16] {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] != b' ' {
            let v = match b[i] {
                b'0'..=b'9' => b[i] - b'0',
                b'a'..=b'f' => b[i] - b'a' + 10,
                _ => panic!("bad GUID literal"),
            };
            out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
            n += 1;
        }
        i += 1;
    }
    assert!(n == 32, "GUID literal must have 32 hex digits");
    out
}

impl CertKind {
    /// The kind a GUID names.
    pub fn from_guid(g: [u8; 16]) -> CertKind {
        match g {
            GUID_ARK => CertKind::Ark,
            GUID_ASK => CertKind::Ask,
            GUID_VCEK => CertKind::Vcek,
            GUID_VLEK => CertKind::Vlek,
            GUID_CRL => CertKind::Crl,
            other => CertKind::Other(other),
        }
    }

    /// The GUID bytes of this kind.
    pub fn guid(self) -> [u8; 16] {
        match self {
            CertKind::Ark => GUID_ARK,
            CertKind::Ask => GUID_ASK,
            CertKind::Vcek => GUID_VCEK,
            CertKind::Vlek => GUID_VLEK,
            CertKind::Crl => GUID_CRL,
            CertKind::Other(g) => g,
        }
    }
}

/// One certificate (or CRL) from the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertTableEntry {
    pub kind: CertKind,
    pub data: Vec<u8>,
}

/// Parses a certificate table. Bytes after the last blob (page padding) are ignored.
pub fn parse(bytes: &[u8]) -> Result<Vec<CertTableEntry>, FormatError> {
    let mut r = Reader::new(bytes);
    let mut headers: Vec<([u8; 16], usize, usize)> = Vec::new();
    loop {
        let at = r.pos();
        let g: [u8; 16] = r.array("certificate table entry GUID")?;
        let offset = r.u32("certificate table entry offset")? as usize;
        let length = r.u32("certificate table entry length")? as usize;
        if g == [0; 16] && offset == 0 && length == 0 {
            break;
        }
        if g == [0; 16] {
            return Err(FormatError::invalid(
                "certificate table entry GUID",
                at,
                "zero GUID in a non-terminator entry",
            ));
        }
        if headers.len() == MAX_ENTRIES {
            return Err(FormatError::invalid(
                "certificate table",
                at,
                format!("more than {MAX_ENTRIES} entries"),
            ));
        }
        if headers.iter().any(|(seen, _, _)| *seen == g) {
            return Err(FormatError::invalid(
                "certificate table entry GUID",
                at,
                format!("duplicate entry {}", hex::encode(g)),
            ));
        }
        headers.push((g, offset, length));
    }
    let table_end = r.pos();

    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(headers.len());
    let mut entries = Vec::with_capacity(headers.len());
    for (i, (g, offset, length)) in headers.into_iter().enumerate() {
        let at = i * ENTRY_SIZE + 16;
        if length == 0 {
            return Err(FormatError::invalid(
                "certificate table entry length",
                at + 4,
                "empty blob",
            ));
        }
        let end = offset
            .checked_add(length)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                FormatError::invalid(
                    "certificate table entry offset",
                    at,
                    format!(
                        "blob {offset}+{length} exceeds the {}-byte table",
                        bytes.len()
                    ),
                )
            })?;
        if offset < table_end {
            return Err(FormatError::invalid(
                "certificate table entry offset",
                at,
                format!("blob at {offset} overlaps the entry array ending at {table_end}"),
            ));
        }
        if let Some((o, e)) = spans.iter().find(|(o, e)| offset < *e && *o < end) {
            return Err(FormatError::invalid(
                "certificate table entry offset",
                at,
                format!("blob {offset}..{end} overlaps blob {o}..{e}"),
            ));
        }
        spans.push((offset, end));
        entries.push(CertTableEntry {
            kind: CertKind::from_guid(g),
            data: bytes[offset..end].to_vec(),
        });
    }
    Ok(entries)
}

/// Encodes a table: the entries, the all-zero terminator, then the blobs in order (mirror of [`parse`]).
pub fn encode(entries: &[CertTableEntry]) -> Vec<u8> {
    let header_len = (entries.len() + 1) * ENTRY_SIZE;
    let total = header_len + entries.iter().map(|e| e.data.len()).sum::<usize>();
    let mut w = Writer::with_capacity(total);
    let mut offset = header_len;
    for e in entries {
        // Offsets and lengths are u32 by format; encoded tables are built from certificates of a few KiB.
        w.bytes(&e.kind.guid())
            .u32(offset as u32)
            .u32(e.data.len() as u32);
        offset += e.data.len();
    }
    w.bytes(&[0u8; ENTRY_SIZE]);
    for e in entries {
        w.bytes(&e.data);
    }
    w.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: CertKind, fill: u8, len: usize) -> CertTableEntry {
        CertTableEntry {
            kind,
            data: vec![fill; len],
        }
    }

    fn header(g: [u8; 16], offset: u32, length: u32) -> Vec<u8> {
        let mut v = g.to_vec();
        v.extend_from_slice(&offset.to_le_bytes());
        v.extend_from_slice(&length.to_le_bytes());
        v
    }

    fn code(bytes: &[u8]) -> Option<&'static str> {
        parse(bytes).err().map(|e| e.code())
    }

    #[test]
    fn guids_match_the_spec_strings() {
        assert_eq!(
            hex::encode(CertKind::Vcek.guid()),
            "63da758de6644564adc5f4b93be8accd"
        );
        assert_eq!(
            hex::encode(CertKind::Ark.guid()),
            "c0b406a4a803495297433fb6014cd0ae"
        );
        assert_eq!(CertKind::from_guid(GUID_VLEK), CertKind::Vlek);
        assert_eq!(CertKind::from_guid([9; 16]), CertKind::Other([9; 16]));
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let entries = vec![
            entry(CertKind::Vcek, 1, 100),
            entry(CertKind::Ask, 2, 50),
            entry(CertKind::Ark, 3, 70),
            entry(CertKind::Other([7; 16]), 4, 1),
        ];
        let bytes = encode(&entries);
        assert_eq!(parse(&bytes).ok(), Some(entries.clone()));
        // Page padding after the blobs is ignored.
        let mut padded = bytes.clone();
        padded.resize(4096, 0);
        assert_eq!(parse(&padded).ok(), Some(entries));
    }

    #[test]
    fn empty_table_is_just_a_terminator() {
        assert_eq!(parse(&[0u8; ENTRY_SIZE]).ok(), Some(vec![]));
        assert_eq!(encode(&[]), vec![0u8; ENTRY_SIZE]);
    }

    #[test]
    fn missing_terminator_is_evidence_malformed() {
        let mut bytes = header(GUID_VCEK, 48, 1);
        bytes.extend_from_slice(&[0; 10]);
        assert_eq!(code(&bytes), Some("evidence_malformed"));
        assert_eq!(code(&[]), Some("evidence_malformed"));
    }

    #[test]
    fn out_of_bounds_blob_is_evidence_malformed() {
        let mut bytes = header(GUID_VCEK, 48, 100);
        bytes.extend_from_slice(&[0; ENTRY_SIZE]);
        bytes.extend_from_slice(&[1; 99]);
        assert_eq!(code(&bytes), Some("evidence_malformed"));
        // offset + length overflowing u32 arithmetic on 32-bit targets is also caught.
        let mut huge = header(GUID_VCEK, u32::MAX, u32::MAX);
        huge.extend_from_slice(&[0; ENTRY_SIZE]);
        assert_eq!(code(&huge), Some("evidence_malformed"));
    }

    #[test]
    fn overlapping_blobs_are_evidence_malformed() {
        let mut bytes = header(GUID_VCEK, 72, 10);
        bytes.extend(header(GUID_ASK, 80, 10));
        bytes.extend_from_slice(&[0; ENTRY_SIZE]);
        bytes.extend_from_slice(&[1; 20]);
        assert_eq!(code(&bytes), Some("evidence_malformed"));
    }

    #[test]
    fn blob_overlapping_the_entry_array_is_evidence_malformed() {
        let mut bytes = header(GUID_VCEK, 0, 30);
        bytes.extend_from_slice(&[0; ENTRY_SIZE]);
        assert_eq!(code(&bytes), Some("evidence_malformed"));
    }

    #[test]
    fn duplicate_guids_are_evidence_malformed() {
        let mut bytes = header(GUID_VCEK, 72, 1);
        bytes.extend(header(GUID_VCEK, 73, 1));
        bytes.extend_from_slice(&[0; ENTRY_SIZE]);
        bytes.extend_from_slice(&[1; 2]);
        assert_eq!(code(&bytes), Some("evidence_malformed"));
    }

    #[test]
    fn empty_blob_and_zero_guid_are_evidence_malformed() {
        let mut empty = header(GUID_VCEK, 48, 0);
        empty.extend_from_slice(&[0; ENTRY_SIZE]);
        assert_eq!(code(&empty), Some("evidence_malformed"));
        let mut zero_guid = header([0; 16], 48, 1);
        zero_guid.extend_from_slice(&[0; ENTRY_SIZE]);
        zero_guid.push(1);
        assert_eq!(code(&zero_guid), Some("evidence_malformed"));
    }

    #[test]
    fn too_many_entries_is_evidence_malformed() {
        let n = MAX_ENTRIES + 1;
        let entries: Vec<_> = (0..n)
            .map(|i| entry(CertKind::Other([i as u8 + 1; 16]), 0, 1))
            .collect();
        assert_eq!(code(&encode(&entries)), Some("evidence_malformed"));
        assert!(parse(&encode(&entries[..MAX_ENTRIES])).is_ok());
    }
}
