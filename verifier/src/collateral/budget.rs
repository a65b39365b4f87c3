//! Budgets for fetching the collateral of platforms never seen before.
//!
//! A VCEK is named by the CHIP_ID and TCB in the report, TCB info by the FMSPC in the quote's PCK leaf: both come
//! from the request, before any signature is checked, so every made-up value would cost a fetch at AMD or Intel (and
//! spend the verifier's quota there). A fetch of such an item with no copy in the cache therefore spends one token
//! from the client's bucket and one from the global bucket; with either empty the request is refused
//! `collateral_missing` at once.
//!
//! Each budget is a token bucket: it holds at most `N` tokens and refills continuously at `N` per minute, so a client
//! may start a burst of `N` new-platform fetches and then one every `60 / N` seconds. Clients are told apart by IP
//! address (IPv6 by its /64, since one host gets a whole /64); at most [`MAX_TRACKED_CLIENTS`] are tracked, the least
//! recently active forgotten first (a forgotten client starts again with a full bucket, and the global bucket still
//! bounds what all clients together can start). Time is a parameter: callers pass a monotonic instant.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::lru::Lru;

/// Clients whose bucket is remembered at once.
pub const MAX_TRACKED_CLIENTS: usize = 16_384;

/// The period in which a bucket refills completely.
pub const REFILL_PERIOD: Duration = Duration::from_secs(60);

/// The key a client's budget is kept under: its IPv4 address, or the /64 of its IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// This client's bucket is empty (`limit` per minute).
    Client { limit: u32 },
    /// The bucket shared by all clients is empty (`limit` per minute).
    Global { limit: u32 },
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exhausted::Client { limit } => write!(
                f,
                "this client's budget for fetching the collateral of platforms never seen before is exhausted \
                 ({limit} per minute)"
            ),
            Exhausted::Global { limit } => write!(
                f,
                "the verifier's budget for fetching the collateral of platforms never seen before is exhausted \
                 ({limit} per minute for all clients)"
            ),
        }
    }
}

/// A token bucket holding at most `capacity` tokens, refilled at `capacity` per [`REFILL_PERIOD`]. Tokens are
/// counted exactly, in units of 1 / [`REFILL_PERIOD`] in nanoseconds (one token = `REFILL_PERIOD` ns of units), so
/// refills never drift.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    units: u128,
    at: Instant,
}

/// One token, in bucket units.
const TOKEN: u128 = REFILL_PERIOD.as_nanos();

impl Bucket {
    fn full(capacity: u32, now: Instant) -> Self {
        Bucket {
            units: u128::from(capacity) * TOKEN,
            at: now,
        }
    }

    /// Refill up to `now` (an earlier `now` refills nothing) and report whether a whole token is there.
    fn refill(&mut self, capacity: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_nanos();
        let max = u128::from(capacity) * TOKEN;
        self.units = self
            .units
            .saturating_add(elapsed.saturating_mul(u128::from(capacity)))
            .min(max);
        self.at = self.at.max(now);
        self.units >= TOKEN
    }

    fn spend(&mut self) {
        self.units -= TOKEN;
    }
}

#[derive(Debug)]
struct Buckets {
    global: Bucket,
    clients: Lru<ClientKey, Bucket>,
}

/// The per-client and global budgets of one collateral provider.
#[derive(Debug)]
pub struct FetchBudget {
    per_client: u32,
    global: u32,
    buckets: Mutex<Buckets>,
}

impl FetchBudget {
    /// Budgets of `per_client` and `global` new-platform fetches per minute (0 refuses every such fetch).
    pub fn new(per_client: u32, global: u32, now: Instant) -> Self {
        FetchBudget {
            per_client,
            global,
            buckets: Mutex::new(Buckets {
                global: Bucket::full(global, now),
                clients: Lru::new(MAX_TRACKED_CLIENTS),
            }),
        }
    }

    /// Spend one token of `client`'s bucket and one of the global bucket, or neither.
    pub fn try_spend(&self, client: IpAddr, now: Instant) -> Result<(), Exhausted> {
        let key = ClientKey::of(client);
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut mine = b
            .clients
            .get(&key)
            .copied()
            .unwrap_or_else(|| Bucket::full(self.per_client, now));
        let client_ok = mine.refill(self.per_client, now);
        let global_ok = b.global.refill(self.global, now);
        let result = if !client_ok {
            Err(Exhausted::Client {
                limit: self.per_client,
            })
        } else if !global_ok {
            Err(Exhausted::Global { limit: self.global })
        } else {
            mine.spend();
            b.global.spend();
            Ok(())
        };
        b.clients.insert(key, mine);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn a_client_gets_its_burst_then_is_refused_until_the_bucket_refills() {
        let t0 = Instant::now();
        let budget = FetchBudget::new(3, 100, t0);
        for _ in 0..3 {
            assert_eq!(budget.try_spend(v4(2), t0), Ok(()));
        }
        assert_eq!(
            budget.try_spend(v4(2), t0),
            Err(Exhausted::Client { limit: 3 })
        );
        // Another client is not affected.
        assert_eq!(budget.try_spend(v4(3), t0), Ok(()));
        // One token comes back every 20 s (3 per minute).
        assert_eq!(
            budget.try_spend(v4(2), t0 + Duration::from_secs(19)),
            Err(Exhausted::Client { limit: 3 })
        );
        assert_eq!(
            budget.try_spend(v4(2), t0 + Duration::from_secs(20)),
            Ok(())
        );
        assert_eq!(
            budget.try_spend(v4(2), t0 + Duration::from_secs(21)),
            Err(Exhausted::Client { limit: 3 })
        );
    }

    #[test]
    fn the_global_budget_bounds_all_clients_together_and_a_refusal_spends_nothing() {
        let t0 = Instant::now();
        let budget = FetchBudget::new(2, 3, t0);
        assert_eq!(budget.try_spend(v4(2), t0), Ok(()));
        assert_eq!(budget.try_spend(v4(2), t0), Ok(()));
        assert_eq!(budget.try_spend(v4(3), t0), Ok(()));
        assert_eq!(
            budget.try_spend(v4(3), t0),
            Err(Exhausted::Global { limit: 3 })
        );
        assert_eq!(
            budget.try_spend(v4(4), t0),
            Err(Exhausted::Global { limit: 3 })
        );
        // The refused requests took none of client 3's or client 4's tokens: after one global token is back
        // (20 s), client 4 can spend it, and client 3 still has one left for the next.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(budget.try_spend(v4(4), t1), Ok(()));
        let t2 = t0 + Duration::from_secs(40);
        assert_eq!(budget.try_spend(v4(3), t2), Ok(()));
    }

    #[test]
    fn a_zero_budget_refuses_every_new_platform_fetch() {
        let t0 = Instant::now();
        let budget = FetchBudget::new(0, 10, t0);
        assert_eq!(
            budget.try_spend(v4(1), t0 + Duration::from_secs(3600)),
            Err(Exhausted::Client { limit: 0 })
        );
        let budget = FetchBudget::new(10, 0, t0);
        assert_eq!(
            budget.try_spend(v4(1), t0),
            Err(Exhausted::Global { limit: 0 })
        );
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_slash_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("v6");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("v6");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("v6");
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(
            ClientKey::of(mapped),
            ClientKey::of(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(
            ClientKey::of(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ClientKey::of("::".parse().expect("v6"))
        );
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let budget = FetchBudget::new(1, 10, t0);
        assert_eq!(budget.try_spend(v4(1), t0), Ok(()));
        assert_eq!(
            budget.try_spend(v4(1), t0 - Duration::from_secs(50)),
            Err(Exhausted::Client { limit: 1 })
        );
    }
}
