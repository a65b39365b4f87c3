//! WIMSE workload identifiers and credentials.
#![forbid(unsafe_code)]
