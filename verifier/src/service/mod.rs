//! The verifier HTTP service (DESIGN §7): config, policy, residency, challenges, issuance, keys, audit, metrics.
