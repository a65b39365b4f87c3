//! A measured value as a `[[workload]]` block for `verifier.toml` (`measure … --as-workload ID`): the reference
//! value pinned, nothing else guessed. SEV-SNP pins `measurement`; TDX pins `mr_td` and declares
//! `measurement_scope = "firmware"`, since nothing in the firmware image fixes RTMR1/RTMR2 (kernel, command line).

/// A TOML basic string (quoted and escaped) for `s`.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The `[[workload]]` block admitting SEV-SNP guests whose launch digest is `measurement`. `provenance` becomes the
/// leading comment (what was measured, with which launch parameters).
pub fn snp_workload_block(id: &str, measurement: &[u8; 48], provenance: &str) -> String {
    format!(
        "# {provenance}\n\
         [[workload]]\n\
         id = {id}\n\
         tee = [\"sev-snp\"]\n\
         # Add a geofence to restrict where it may run, e.g. geofence = {{ zones = [\"eu\"] }}\n\
         [workload.sev-snp]\n\
         measurement = [\"{m}\"]\n",
        id = toml_string(id),
        m = hex::encode(measurement),
    )
}

/// The `[[workload]]` block admitting TDX guests whose MRTD is `mr_td`, with `measurement_scope = "firmware"`.
pub fn tdx_workload_block(id: &str, mr_td: &[u8; 48], provenance: &str) -> String {
    format!(
        "# {provenance}\n\
         [[workload]]\n\
         id = {id}\n\
         tee = [\"tdx\"]\n\
         # Only the firmware is pinned: nothing in the image fixes RTMR1/RTMR2 (kernel, command line).\n\
         measurement_scope = \"firmware\"\n\
         # Add a geofence to restrict where it may run, e.g. geofence = {{ zones = [\"eu\"] }}\n\
         [workload.tdx]\n\
         mr_td = [\"{m}\"]\n",
        id = toml_string(id),
        m = hex::encode(mr_td),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snp_block_parses_as_one_workload_pinning_the_measurement() {
        let text = snp_workload_block("spiffe://locus.example/app", &[0xab; 48], "from OVMF.fd");
        let doc: toml::Table = text.parse().expect("TOML");
        let w = &doc["workload"][0];
        assert_eq!(w["id"].as_str(), Some("spiffe://locus.example/app"));
        assert_eq!(w["tee"][0].as_str(), Some("sev-snp"));
        assert_eq!(
            w["sev-snp"]["measurement"][0].as_str(),
            Some("ab".repeat(48).as_str())
        );
        assert!(text.starts_with("# from OVMF.fd\n"), "{text}");
    }

    #[test]
    fn tdx_block_pins_mr_td_with_firmware_scope() {
        let text = tdx_workload_block("spiffe://locus.example/app", &[0x01; 48], "x");
        let doc: toml::Table = text.parse().expect("TOML");
        let w = &doc["workload"][0];
        assert_eq!(w["tee"][0].as_str(), Some("tdx"));
        assert_eq!(w["measurement_scope"].as_str(), Some("firmware"));
        assert_eq!(
            w["tdx"]["mr_td"][0].as_str(),
            Some("01".repeat(48).as_str())
        );
    }

    #[test]
    fn ids_are_quoted_as_toml_strings() {
        let text = snp_workload_block("a\"b", &[0; 48], "x");
        let doc: toml::Table = text.parse().expect("TOML");
        assert_eq!(doc["workload"][0]["id"].as_str(), Some("a\"b"));
    }
}
