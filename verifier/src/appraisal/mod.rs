//! Sans-I/O appraisal of SEV-SNP reports and TDX quotes (DESIGN §3).
