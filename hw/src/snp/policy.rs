//! GUEST POLICY and PLATFORM_INFO bit fields (SEV-SNP Firmware ABI, publication 56860).

use serde::{Deserialize, Serialize};

/// The guest policy the VM was launched with (report offset 0x008).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bits 63:26 are reserved and must be zero.
    pub const RESERVED_MASK: u64 = !((1u64 << 26) - 1);
    /// Bit 17 is reserved and must be one.
    pub const RESERVED_ONE: u64 = 1 << 17;

    fn bit(self, n: u32) -> bool {
        self.0 & (1 << n) != 0
    }

    /// Bits 7:0: minimum ABI minor version.
    pub fn abi_minor(self) -> u8 {
        (self.0 & 0xFF) as u8
    }
    /// Bits 15:8: minimum ABI major version.
    pub fn abi_major(self) -> u8 {
        ((self.0 >> 8) & 0xFF) as u8
    }
    /// Bit 16: host SMT allowed.
    pub fn smt(self) -> bool {
        self.bit(16)
    }
    /// Bit 17: reserved, must be 1.
    pub fn reserved_one(self) -> bool {
        self.bit(17)
    }
    /// Bit 18: association with a migration agent allowed.
    pub fn migrate_ma(self) -> bool {
        self.bit(18)
    }
    /// Bit 19: debugging allowed (Locus `debug_enabled`).
    pub fn debug(self) -> bool {
        self.bit(19)
    }
    /// Bit 20: guest limited to a single socket.
    pub fn single_socket(self) -> bool {
        self.bit(20)
    }
    /// Bit 21: CXL devices or memory may be populated.
    pub fn cxl_allow(self) -> bool {
        self.bit(21)
    }
    /// Bit 22: AES-256-XTS required for memory encryption.
    pub fn mem_aes_256_xts(self) -> bool {
        self.bit(22)
    }
    /// Bit 23: RAPL must be disabled.
    pub fn rapl_dis(self) -> bool {
        self.bit(23)
    }
    /// Bit 24: ciphertext hiding must be enabled.
    pub fn ciphertext_hiding(self) -> bool {
        self.bit(24)
    }
    /// Bit 25: page swap/move commands disabled (report v5).
    pub fn page_swap_disable(self) -> bool {
        self.bit(25)
    }
    /// Set bits in the reserved-zero range 63:26.
    pub fn reserved_bits(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }
}

/// PLATFORM_INFO (report offset 0x040): what the platform had enabled when the report was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    /// The bits with a documented meaning (0–5 and 7); bit 6 is not confirmed and is reported as unknown.
    pub const KNOWN_MASK: u64 = 0b1011_1111;

    fn bit(self, n: u32) -> bool {
        self.0 & (1 << n) != 0
    }

    /// Bit 0: SMT enabled.
    pub fn smt_en(self) -> bool {
        self.bit(0)
    }
    /// Bit 1: TSME enabled.
    pub fn tsme_en(self) -> bool {
        self.bit(1)
    }
    /// Bit 2: ECC memory in use.
    pub fn ecc_en(self) -> bool {
        self.bit(2)
    }
    /// Bit 3: RAPL disabled.
    pub fn rapl_dis(self) -> bool {
        self.bit(3)
    }
    /// Bit 4: ciphertext hiding enabled (DRAM).
    pub fn ciphertext_hiding_en(self) -> bool {
        self.bit(4)
    }
    /// Bit 5: alias check complete (v3+).
    pub fn alias_check_complete(self) -> bool {
        self.bit(5)
    }
    /// Bit 7: SEV-TIO enabled (v5).
    pub fn tio_en(self) -> bool {
        self.bit(7)
    }
    /// Set bits without a confirmed meaning (bit 6 and 63:8). Exposed in facts, rejected only by policy.
    pub fn unknown_bits(self) -> u64 {
        self.0 & !Self::KNOWN_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_vectors_decode() {
        let p = GuestPolicy(0x30000);
        assert!(p.smt() && p.reserved_one() && !p.debug() && !p.migrate_ma());
        assert_eq!((p.abi_major(), p.abi_minor()), (0, 0));
        assert!(GuestPolicy(0xb0000).debug());
        let abi = GuestPolicy(0x3001f);
        assert_eq!((abi.abi_major(), abi.abi_minor()), (0, 31));
        assert_eq!(p.reserved_bits(), 0);
        assert_eq!(GuestPolicy(1 << 26).reserved_bits(), 1 << 26);
    }

    #[test]
    fn each_policy_bit_has_its_accessor() {
        type Accessor = fn(GuestPolicy) -> bool;
        let checks: [(u32, Accessor); 10] = [
            (16, GuestPolicy::smt),
            (17, GuestPolicy::reserved_one),
            (18, GuestPolicy::migrate_ma),
            (19, GuestPolicy::debug),
            (20, GuestPolicy::single_socket),
            (21, GuestPolicy::cxl_allow),
            (22, GuestPolicy::mem_aes_256_xts),
            (23, GuestPolicy::rapl_dis),
            (24, GuestPolicy::ciphertext_hiding),
            (25, GuestPolicy::page_swap_disable),
        ];
        for (bit, f) in checks {
            assert!(f(GuestPolicy(1 << bit)), "bit {bit}");
            assert!(!f(GuestPolicy(!(1 << bit))), "bit {bit} clear");
        }
    }

    #[test]
    fn platform_info_exposes_unknown_bits() {
        let turin = PlatformInfo(0x67);
        assert!(
            turin.smt_en() && turin.tsme_en() && turin.ecc_en() && turin.alias_check_complete()
        );
        assert_eq!(turin.unknown_bits(), 0x40);
        assert_eq!(PlatformInfo(0x25).unknown_bits(), 0);
        assert!(PlatformInfo(0x80).tio_en());
        assert!(PlatformInfo(0x10).ciphertext_hiding_en());
        assert!(PlatformInfo(0x08).rapl_dis());
        assert_eq!(PlatformInfo(1 << 40).unknown_bits(), 1 << 40);
    }
}
