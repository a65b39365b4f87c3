//! `verifier.toml` (docs/configuration.md), one file per concern: the TOML shape ([`raw`]), the validated model the service runs
//! on ([`model`]), and the validation between them ([`validate`](mod@validate)).

pub mod model;
pub mod proximity;
pub mod raw;
pub mod validate;

pub use model::*;
pub use raw::RawMinTcb;
pub use validate::{check_paths, load, parse, validate, ConfigErrors};
