//! Collateral and endorsement fetching and caching: AMD KDS, Intel PCS / PCCS, offline directories.
