//! Simulated Intel world: root CA, PCK platform CA, PCK leaves with SGX extensions, TCB signing, TCB info, QE identity, CRLs, TDX attester.
