//! Fault injection: evidence faults (applied by the attesters) and server faults (applied by `locus-sim serve`).
//! Each fault makes one specific verifier check fail, so tests can expect one exact error code.

use std::time::Duration;

/// A fault in the evidence an attester produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The report/quote signature does not verify (one signature byte flipped after signing) → `signature_invalid`.
    BadSignature,
    /// Signed by a VCEK/PCK chained to a look-alike root with the same names but other keys → `chain_untrusted`.
    ForeignChain,
    /// The VCEK/PCK validity lies in the past (2016..2023) → `certificate_expired`.
    ExpiredCertificate,
    /// Intel: the PCK certificate is listed in the PCK CRL → `revoked`.
    RevokedPck,
    /// Intel: the TCB info / QE identity are past `nextUpdate` → `collateral_expired`.
    StaleCollateral,
    /// Debug enabled (SNP policy bit 19, TDX TD attribute bit 0) → `debug_enabled` under policy.
    Debug,
    /// An old TCB (with a VCEK matching it, so the evidence verifies) → `tcb_below_minimum` / `tcb_status_rejected`.
    LowTcb,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 7] = [
        Fault::BadSignature,
        Fault::ForeignChain,
        Fault::ExpiredCertificate,
        Fault::RevokedPck,
        Fault::StaleCollateral,
        Fault::Debug,
        Fault::LowTcb,
    ];

    /// The CLI spelling (`bad-signature`, `foreign-chain`, …).
    pub fn name(self) -> &'static str {
        match self {
            Fault::BadSignature => "bad-signature",
            Fault::ForeignChain => "foreign-chain",
            Fault::ExpiredCertificate => "expired-certificate",
            Fault::RevokedPck => "revoked-pck",
            Fault::StaleCollateral => "stale-collateral",
            Fault::Debug => "debug",
            Fault::LowTcb => "low-tcb",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {s:?} (expected one of {})", names.join(", "))
            })
    }
}

/// Faults of the KDS/PCS server (`locus-sim serve --fault NAME`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// `kds-429[:N]`: answer the first N requests (default 1) with 429 and `Retry-After: 1`, then normally.
    pub rate_limit_first: u32,
    /// `slow[:MS]`: delay every answer (default 2000 ms).
    pub slow: Option<Duration>,
    /// Evidence/collateral faults the server applies to what it serves (e.g. `stale-collateral`, `revoked-pck`,
    /// `expired-certificate` for VCEKs served by KDS).
    pub evidence: Vec<Fault>,
}

/// Default number of 429s for a bare `kds-429`.
pub const DEFAULT_429_COUNT: u32 = 1;
/// Default delay for a bare `slow`.
pub const DEFAULT_SLOW: Duration = Duration::from_millis(2000);

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Whether an evidence fault is on.
    pub fn has(&self, f: Fault) -> bool {
        self.evidence.contains(&f)
    }

    /// Add one `--fault` argument: `kds-429`, `kds-429:N`, `slow`, `slow:MS`, or an evidence fault name.
    pub fn add(&mut self, arg: &str) -> Result<(), String> {
        let (name, param) = match arg.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (arg, None),
        };
        let number = |p: &str| -> Result<u64, String> {
            p.parse::<u64>()
                .map_err(|_| format!("fault {name}: {p:?} is not a non-negative integer"))
        };
        match name {
            "kds-429" | "429" => {
                let n = match param {
                    Some(p) => u32::try_from(number(p)?)
                        .map_err(|_| format!("fault {name}: {p} too large"))?,
                    None => DEFAULT_429_COUNT,
                };
                self.rate_limit_first = n;
            }
            "slow" => {
                self.slow = Some(match param {
                    Some(p) => Duration::from_millis(number(p)?),
                    None => DEFAULT_SLOW,
                });
            }
            other => {
                if param.is_some() {
                    return Err(format!("fault {other} takes no parameter"));
                }
                let f: Fault = other.parse()?;
                if !self.evidence.contains(&f) {
                    self.evidence.push(f);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
        }
        assert!("nope".parse::<Fault>().is_err());
    }

    #[test]
    fn server_fault_arguments_parse() {
        let mut f = Faults::none();
        f.add("kds-429").expect("kds-429");
        assert_eq!(f.rate_limit_first, 1);
        f.add("kds-429:3").expect("kds-429:3");
        assert_eq!(f.rate_limit_first, 3);
        f.add("slow:10").expect("slow");
        assert_eq!(f.slow, Some(Duration::from_millis(10)));
        f.add("stale-collateral").expect("stale");
        assert!(f.has(Fault::StaleCollateral));
        assert!(f.add("slow:x").is_err());
        assert!(f.add("debug:1").is_err());
        assert!(f.add("whatever").is_err());
    }
}
