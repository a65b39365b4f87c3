//! TD_ATTRIBUTES (TDX Module ABI 348551-008US as read by dcap-qvl): a little-endian u64 in the TD report.

/// The TD attributes word. Accessors name the bits; policy decides which ones to refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TdAttributes(pub u64);

impl TdAttributes {
    /// Bits that must be zero: 1–3, 7–15, 23–26, 32–61.
    pub const RESERVED_MASK: u64 =
        0b1110 | (0x1FF << 7) | (0b1111 << 23) | (((1u64 << 30) - 1) << 32);
    /// Bits 7:0, TUD: any set means the TD is not trustworthy (debug or profiling).
    pub const TUD_MASK: u64 = 0xFF;

    fn bit(self, n: u32) -> bool {
        self.0 & (1 << n) != 0
    }

    /// Bit 0: the TD is debuggable (its memory and state are readable by the host).
    pub fn debug(self) -> bool {
        self.bit(0)
    }
    /// Any TUD bit (7:0) set: debug or performance profiling.
    pub fn tud(self) -> bool {
        self.0 & Self::TUD_MASK != 0
    }
    /// Bit 16: ICSSD.
    pub fn icssd(self) -> bool {
        self.bit(16)
    }
    /// Bit 17: SERVTD_EXT (service TD extensions).
    pub fn servtd_ext(self) -> bool {
        self.bit(17)
    }
    /// Bit 27: LASS.
    pub fn lass(self) -> bool {
        self.bit(27)
    }
    /// Bit 28: SEPT_VE_DISABLE (expected set for a production TD).
    pub fn sept_ve_disable(self) -> bool {
        self.bit(28)
    }
    /// Bit 29: MIGRATABLE.
    pub fn migratable(self) -> bool {
        self.bit(29)
    }
    /// Bit 30: PKS.
    pub fn pks(self) -> bool {
        self.bit(30)
    }
    /// Bit 31: KL (key locker).
    pub fn kl(self) -> bool {
        self.bit(31)
    }
    /// Bit 62: TPA.
    pub fn tpa(self) -> bool {
        self.bit(62)
    }
    /// Bit 63: PERFMON.
    pub fn perfmon(self) -> bool {
        self.bit(63)
    }
    /// Set bits in the reserved-zero ranges.
    pub fn reserved_bits(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }
}

impl From<[u8; 8]> for TdAttributes {
    fn from(b: [u8; 8]) -> Self {
        TdAttributes(u64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_attributes_are_sept_ve_disable_only() {
        // td_attributes "0000001000000000" in the vectors.
        let a = TdAttributes::from([0, 0, 0, 0x10, 0, 0, 0, 0]);
        assert!(a.sept_ve_disable());
        assert!(!a.debug() && !a.tud() && !a.migratable());
        assert_eq!(a.reserved_bits(), 0);
    }

    #[test]
    fn debug_vector_sets_bit_zero() {
        let a = TdAttributes::from([1, 0, 0, 0x10, 0, 0, 0, 0]);
        assert!(a.debug() && a.tud());
    }

    #[test]
    fn reserved_mask_covers_exactly_the_listed_bits() {
        let reserved: Vec<u32> = (0..64)
            .filter(|b| TdAttributes(1 << b).reserved_bits() != 0)
            .collect();
        let mut want: Vec<u32> = (1..=3)
            .chain(7..=15)
            .chain(23..=26)
            .chain(32..=61)
            .collect();
        want.sort_unstable();
        assert_eq!(reserved, want);
    }

    #[test]
    fn named_bits() {
        type Accessor = fn(TdAttributes) -> bool;
        let named: [(u32, Accessor); 10] = [
            (0, TdAttributes::debug),
            (16, TdAttributes::icssd),
            (17, TdAttributes::servtd_ext),
            (27, TdAttributes::lass),
            (28, TdAttributes::sept_ve_disable),
            (29, TdAttributes::migratable),
            (30, TdAttributes::pks),
            (31, TdAttributes::kl),
            (62, TdAttributes::tpa),
            (63, TdAttributes::perfmon),
        ];
        for (bit, f) in named {
            assert!(f(TdAttributes(1 << bit)), "bit {bit}");
            assert!(!f(TdAttributes(!(1 << bit))), "bit {bit} clear");
        }
        assert!(TdAttributes(1 << 5).tud());
    }
}
