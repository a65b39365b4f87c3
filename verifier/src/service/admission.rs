//! Admission control (issue 10): a token bucket per client on `/v1/*` (governor), answering `429 rate_limited` with
//! `Retry-After`.
//!
//! The client is the peer address, or — when the peer is one of the configured `trusted_proxies` — the first address
//! in `X-Forwarded-For` read from the right that is not a trusted proxy (the left part of that header is whatever the
//! client wrote, so only hops appended by proxies we trust count). Defaults are set so that one well-behaved client
//! (an agent renewing, the demo, the test suites) never meets them; `rate_limit_per_second = 0` turns limiting off
//! (the load tool's configuration does).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Per-client rate limits and who may speak for a client.
#[derive(Debug)]
pub struct Admission {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: Vec<IpAddr>,
    clock: DefaultClock,
}

impl Admission {
    /// `per_second = 0`: no limit.
    pub fn new(per_second: u32, burst: u32, trusted_proxies: Vec<IpAddr>) -> Admission {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Admission {
            limiter,
            trusted_proxies,
            clock: DefaultClock::default(),
        }
    }

    /// The client a request comes from (module docs).
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let ip = peer.ip();
        if !self.trusted_proxies.contains(&ip) {
            return ip;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse::<IpAddr>().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|h| !self.trusted_proxies.contains(h))
            .unwrap_or(ip)
    }

    /// Take a token for `client`, or say how long until one is free.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forget clients whose buckets are full again (bounded memory under a flood of addresses).
    pub fn forget_idle_clients(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 1234)
    }

    #[test]
    fn a_client_over_its_burst_is_refused_with_a_wait_while_another_client_is_not() {
        let a = Admission::new(1, 3, vec![]);
        let x: IpAddr = "127.0.0.2".parse().expect("ip");
        let y: IpAddr = "127.0.0.3".parse().expect("ip");
        for _ in 0..3 {
            a.check(x).expect("within the burst");
        }
        let wait = a.check(x).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        a.check(y).expect("other clients are unaffected");
        let off = Admission::new(0, 0, vec![]);
        for _ in 0..10_000 {
            off.check(x).expect("no limit");
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy_and_only_its_first_untrusted_hop() {
        let proxy: IpAddr = "10.0.0.5".parse().expect("ip");
        let a = Admission::new(1, 1, vec![proxy]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8, 10.0.0.5".parse().expect("hv"),
        );
        assert_eq!(
            a.client(peer("10.0.0.5"), &h),
            "5.6.7.8".parse::<IpAddr>().expect("ip")
        );
        // An untrusted peer cannot pick its identity with the header.
        assert_eq!(
            a.client(peer("9.9.9.9"), &h),
            "9.9.9.9".parse::<IpAddr>().expect("ip")
        );
        // A trusted proxy without the header is the client.
        assert_eq!(a.client(peer("10.0.0.5"), &HeaderMap::new()), proxy);
    }
}
