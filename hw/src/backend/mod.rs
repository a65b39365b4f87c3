//! In-guest attester backends: configfs-tsm, /dev/sev-guest, libtdx_attest (FFI), chosen by `auto` probing.
