//! TCB_VERSION (SEV-SNP Firmware ABI, publication 56860): eight bytes whose layout depends on the product.
//!
//! | Byte | Milan, Genoa | Turin      |
//! |------|--------------|------------|
//! | 0    | BOOT_LOADER  | FMC        |
//! | 1    | TEE          | BOOT_LOADER|
//! | 2    | reserved     | TEE        |
//! | 3    | reserved     | SNP        |
//! | 4–5  | reserved     | reserved   |
//! | 6    | SNP          | reserved   |
//! | 7    | MICROCODE    | MICROCODE  |

use super::Product;
use serde::{Deserialize, Serialize};

/// A decoded TCB_VERSION. Compare per component with [`TcbVersion::meets`], never as a packed u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TcbVersion {
    /// FMC SPL; present only on Turin and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes a raw TCB_VERSION for `product`. Reserved bytes are ignored here; see [`TcbVersion::reserved_bits`].
    pub fn from_raw(raw: u64, product: Product) -> TcbVersion {
        let b = raw.to_le_bytes();
        if product.has_fmc() {
            TcbVersion {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            }
        } else {
            TcbVersion {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            }
        }
    }

    /// Encodes for `product` (reserved bytes zero). The FMC is written only on Turin (absent FMC = 0).
    pub fn to_raw(&self, product: Product) -> u64 {
        let mut b = [0u8; 8];
        if product.has_fmc() {
            b[0] = self.fmc.unwrap_or(0);
            b[1] = self.bootloader;
            b[2] = self.tee;
            b[3] = self.snp;
        } else {
            b[0] = self.bootloader;
            b[1] = self.tee;
            b[6] = self.snp;
        }
        b[7] = self.microcode;
        u64::from_le_bytes(b)
    }

    /// The bits of `raw` that are reserved in `product`'s layout (non-zero means a layout or product mix-up).
    pub fn reserved_bits(raw: u64, product: Product) -> u64 {
        let mask: u64 = if product.has_fmc() {
            0x00FF_FFFF_0000_0000
        } else {
            0x0000_FFFF_FFFF_0000
        };
        raw & mask
    }

    /// True when every component is ≥ the minimum's. An FMC minimum is only checked when both sides have one;
    /// a minimum with an FMC against a value without one (pre-Turin layout) fails.
    pub fn meets(&self, min: &TcbVersion) -> bool {
        let fmc_ok = match (self.fmc, min.fmc) {
            (_, None) => true,
            (Some(have), Some(need)) => have >= need,
            (None, Some(_)) => false,
        };
        fmc_ok
            && self.bootloader >= min.bootloader
            && self.tee >= min.tee
            && self.snp >= min.snp
            && self.microcode >= min.microcode
    }
}

impl std::fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_milan_vector_layout() {
        let t = TcbVersion::from_raw(0x7308000000000003, Product::Milan);
        assert_eq!(
            t,
            TcbVersion {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115
            }
        );
        assert_eq!(t.to_raw(Product::Milan), 0x7308000000000003);
    }

    #[test]
    fn decodes_the_turin_vector_layout() {
        let t = TcbVersion::from_raw(0x4700000002000100, Product::Turin);
        assert_eq!(
            t,
            TcbVersion {
                fmc: Some(0),
                bootloader: 1,
                tee: 0,
                snp: 2,
                microcode: 71
            }
        );
        assert_eq!(t.to_raw(Product::Turin), 0x4700000002000100);
    }

    #[test]
    fn same_raw_decodes_differently_per_product() {
        let raw = 0x4700000002000100;
        assert_ne!(
            TcbVersion::from_raw(raw, Product::Genoa),
            TcbVersion::from_raw(raw, Product::Turin)
        );
        assert_eq!(TcbVersion::reserved_bits(raw, Product::Turin), 0);
        assert_ne!(TcbVersion::reserved_bits(raw, Product::Genoa), 0);
    }

    #[test]
    fn meets_compares_each_component() {
        let have = TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        };
        assert!(have.meets(&have));
        assert!(have.meets(&TcbVersion {
            microcode: 100,
            ..have
        }));
        // A higher microcode does not make up for a lower SNP SPL (packed-u64 comparison would say it does).
        let min = TcbVersion {
            snp: 9,
            microcode: 0,
            ..have
        };
        assert!(!have.meets(&min));
        assert!(!have.meets(&TcbVersion {
            fmc: Some(0),
            ..have
        }));
        let turin = TcbVersion {
            fmc: Some(2),
            ..have
        };
        assert!(turin.meets(&TcbVersion {
            fmc: Some(1),
            ..have
        }));
        assert!(!turin.meets(&TcbVersion {
            fmc: Some(3),
            ..have
        }));
    }
}
