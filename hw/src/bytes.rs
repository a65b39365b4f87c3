//! Bounds-checked little-endian cursor and writer shared by the parsers and their mirror-image encoders.

use crate::FormatError;

/// Reads fields in order from an untrusted buffer; every read is bounds-checked and names its field on failure.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], FormatError> {
        let available = self.buf.len().saturating_sub(self.pos);
        if len > available {
            return Err(FormatError::Truncated {
                field,
                offset: self.pos,
                needed: len,
                available,
            });
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, FormatError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
}

/// Appends fields in order; the encoders are written as mirror images of the parsers.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(cap),
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_field_and_offset_when_truncated() {
        let mut r = Reader::new(&[1, 0, 0]);
        assert_eq!(r.u16("first").ok(), Some(1));
        let err = r.u16("second").err();
        assert_eq!(
            err,
            Some(FormatError::Truncated {
                field: "second",
                offset: 2,
                needed: 2,
                available: 1
            })
        );
    }

    #[test]
    fn writer_mirrors_reader() {
        let mut w = Writer::default();
        w.u8(7).u16(0x0102).u32(0x03040506).u64(9).bytes(&[0xAA; 3]);
        let v = w.into_vec();
        let mut r = Reader::new(&v);
        assert_eq!(r.u8("a").ok(), Some(7));
        assert_eq!(r.u16("b").ok(), Some(0x0102));
        assert_eq!(r.u32("c").ok(), Some(0x03040506));
        assert_eq!(r.u64("d").ok(), Some(9));
        assert_eq!(r.array::<3>("e").ok(), Some([0xAA; 3]));
        assert_eq!(r.pos(), v.len());
    }
}
