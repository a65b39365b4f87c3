//! End-to-end tests, demo and load tool.
#![forbid(unsafe_code)]
