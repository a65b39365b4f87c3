//! The evidence binding of docs/architecture.md#evidence-binding, agent side: the agent puts
//! `SHA-512("locus-attest-v1" ‖ 0x00 ‖ nonce ‖ jwk_thumbprint)` in its evidence. The one implementation lives in
//! [`locus_hw::binding`], shared with the verifier that recomputes it.

pub use locus_hw::binding::{report_data, LABEL};
