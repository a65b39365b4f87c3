//! AMD EPYC product generations: from CPUID (report v3+) or from the VCEK/VLEK certificate (v2).

use serde::{Deserialize, Serialize};

/// The SEV-SNP product generations Locus has a pinned ARK for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Product {
    Milan,
    Genoa,
    Turin,
}

impl Product {
    /// Every supported product.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// From the report's CPUID_FAM_ID / CPUID_MOD_ID (extended family + family, extended model + model), following
    /// `sev` `Generation::identify_cpu`: family 0x19 models 0x00–0x0F Milan, 0x10–0x1F and 0xA0–0xAF Genoa; family 0x1A
    /// models 0x00–0x11 Turin. Anything else (Venice included: no pinned ARK yet) is `None`.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Product::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Product::Genoa),
            (0x1A, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }

    /// From a certificate's product name or issuer CN: `Milan-B0`, `Milan`, `SEV-Milan`, `SEV-VLEK-Genoa`, `ARK-Turin`…
    /// Only the part before the first `-` of the product (after stripping the `SEV-`, `SEV-VLEK-`, `ARK-`, `ASK-`
    /// prefixes) is compared, case-sensitively as AMD spells it.
    pub fn from_cert_name(name: &str) -> Option<Product> {
        let name = name.trim();
        let rest = ["SEV-VLEK-", "SEV-", "ARK-", "ASK-", "ASVK-"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        let head = rest.split('-').next().unwrap_or(rest);
        match head {
            "Milan" => Some(Product::Milan),
            "Genoa" => Some(Product::Genoa),
            "Turin" => Some(Product::Turin),
            _ => None,
        }
    }

    /// The product name in AMD KDS URLs.
    pub fn kds_name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Whether this product uses the Turin TCB_VERSION layout (with an FMC component) — SEV-SNP Firmware ABI, publication 56860, TCB_VERSION.
    pub fn has_fmc(self) -> bool {
        matches!(self, Product::Turin)
    }
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kds_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_of_the_vectors_maps_to_their_product() {
        assert_eq!(Product::from_cpuid(25, 1), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(25, 17), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(25, 0xA0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(26, 2), Some(Product::Turin));
    }

    #[test]
    fn unknown_or_venice_cpuid_is_none() {
        assert_eq!(Product::from_cpuid(0x1A, 0x50), None);
        assert_eq!(Product::from_cpuid(0x19, 0x20), None);
        assert_eq!(Product::from_cpuid(0x17, 0x01), None);
        assert_eq!(Product::from_cpuid(0, 0), None);
    }

    #[test]
    fn cert_names_map_to_products() {
        for (name, p) in [
            ("Milan-B0", Product::Milan),
            ("Milan", Product::Milan),
            ("SEV-Milan", Product::Milan),
            ("SEV-VLEK-Milan", Product::Milan),
            ("Genoa", Product::Genoa),
            ("SEV-Genoa", Product::Genoa),
            ("Turin", Product::Turin),
            ("ARK-Turin", Product::Turin),
        ] {
            assert_eq!(Product::from_cert_name(name), Some(p), "{name}");
        }
        for bad in ["", "SEV-VCEK", "Venice", "milan", "SEV-"] {
            assert_eq!(Product::from_cert_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn kds_names_round_trip() {
        for p in Product::ALL {
            assert_eq!(Product::from_cert_name(p.kds_name()), Some(p));
        }
    }
}
