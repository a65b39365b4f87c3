//! Which SPIFFE identity a Workload API caller gets.
//!
//! The caller is known by its `SO_PEERCRED` uid and gid ([`crate::run::PeerCred`]). `--spiffe-uid UID=ID` and
//! `--spiffe-gid GID=ID` map them to SPIFFE IDs: a uid entry wins over a gid entry; without either, the agent's own uid
//! gets the agent's default identity (its `--workload`, or the verifier's default workload when that is unset). Any
//! other caller has no identity and is refused with `PermissionDenied`, as the SPIFFE Workload API asks. The agent
//! holds one attested credential per distinct identity ([`IdentityKey`]).

use std::collections::{BTreeMap, BTreeSet};

use locus_wimse::WorkloadId;

use crate::run::PeerCred;

/// The identity a credential is requested for: `None` is the agent's default (`--workload` unset: the verifier picks),
/// `Some(id)` a Workload Identifier asked for by name.
pub type IdentityKey = Option<String>;

/// uid / gid → SPIFFE ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityMap {
    by_uid: BTreeMap<u32, String>,
    by_gid: BTreeMap<u32, String>,
}

/// Parse `N=spiffe://td/path` (the value of `--spiffe-uid` / `--spiffe-gid`).
pub fn parse_entry(s: &str) -> Result<(u32, String), String> {
    let (num, id) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected ID_NUMBER=spiffe://trust-domain/path"))?;
    let num: u32 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: {num:?} is not a uid/gid number"))?;
    let parsed = WorkloadId::parse(id).map_err(|e| format!("{s:?}: {e}"))?;
    if !parsed.is_spiffe() {
        return Err(format!("{s:?}: {id} is not a SPIFFE ID (spiffe://…)"));
    }
    Ok((num, id.to_string()))
}

impl IdentityMap {
    /// Map peers with effective uid `uid` to `id`.
    pub fn with_uid(mut self, uid: u32, id: impl Into<String>) -> Self {
        self.by_uid.insert(uid, id.into());
        self
    }

    /// Map peers with effective gid `gid` to `id` (when their uid has no entry).
    pub fn with_gid(mut self, gid: u32, id: impl Into<String>) -> Self {
        self.by_gid.insert(gid, id.into());
        self
    }

    /// The identity of `peer`, for an agent running as `own_uid` whose default identity is `default`.
    pub fn resolve(
        &self,
        peer: &PeerCred,
        own_uid: u32,
        default: &IdentityKey,
    ) -> Option<IdentityKey> {
        let (uid, gid) = (peer.uid?, peer.gid?);
        if let Some(id) = self.by_uid.get(&uid) {
            return Some(Some(id.clone()));
        }
        if let Some(id) = self.by_gid.get(&gid) {
            return Some(Some(id.clone()));
        }
        (uid == own_uid).then(|| default.clone())
    }

    /// Every identity the agent may serve: the default and each mapped one (each needs its own credential).
    pub fn identities(&self, default: &IdentityKey) -> BTreeSet<IdentityKey> {
        let mut all: BTreeSet<IdentityKey> = self
            .by_uid
            .values()
            .chain(self.by_gid.values())
            .map(|id| Some(id.clone()))
            .collect();
        all.insert(default.clone());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> PeerCred {
        PeerCred {
            uid: Some(uid),
            gid: Some(gid),
            pid: None,
        }
    }

    #[test]
    fn uid_beats_gid_and_only_the_agents_own_uid_gets_the_default() {
        let map = IdentityMap::default()
            .with_uid(1001, "spiffe://td/a")
            .with_gid(50, "spiffe://td/g");
        let default: IdentityKey = Some("spiffe://td/agent".into());
        assert_eq!(
            map.resolve(&peer(1001, 50), 0, &default),
            Some(Some("spiffe://td/a".into()))
        );
        assert_eq!(
            map.resolve(&peer(1002, 50), 0, &default),
            Some(Some("spiffe://td/g".into()))
        );
        assert_eq!(map.resolve(&peer(0, 0), 0, &default), Some(default.clone()));
        assert_eq!(map.resolve(&peer(1002, 51), 0, &default), None);
        let unknown = PeerCred {
            uid: None,
            gid: None,
            pid: None,
        };
        assert_eq!(map.resolve(&unknown, 0, &default), None);
        assert_eq!(map.identities(&default).len(), 3);
        assert_eq!(
            map.identities(&Some("spiffe://td/a".into())).len(),
            2,
            "shared credential"
        );
    }

    #[test]
    fn entries_must_name_a_number_and_a_spiffe_id() {
        assert_eq!(
            parse_entry("1001=spiffe://td/a"),
            Ok((1001, "spiffe://td/a".into()))
        );
        for bad in [
            "1001",
            "x=spiffe://td/a",
            "1=wimse://td/a",
            "1=spiffe://TD/a",
            "1=spiffe://td/a/",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad}");
        }
    }
}
