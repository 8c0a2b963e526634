//! Per-client token buckets. In memory, per process: a cap against one noisy
//! client, not a global quota.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

struct Bucket {
    tokens: f64,
    at_ms: i64,
}

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate_per_s: f64, burst: f64) -> RateLimiter {
        RateLimiter { rate: rate_per_s, burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// `Ok` to serve, or `Err(seconds until a token is back)`.
    /// One request of the client `ip` stands for (an IPv6 /64 is one client).
    pub fn check(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let ip = ringpath_types::ip::client(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget full buckets so a scan from many addresses cannot grow memory forever.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + (now_ms - b.at_ms) as f64 / 1000.0 * rate < burst);
        }
        let b = buckets.entry(ip).or_insert(Bucket { tokens: self.burst, at_ms: now_ms });
        b.tokens = (b.tokens + (now_ms - b.at_ms).max(0) as f64 / 1000.0 * self.rate).min(self.burst);
        b.at_ms = now_ms;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_slash_64_shares_one_bucket() {
        let limiter = RateLimiter::new(1.0, 2.0);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limiter.check(a, 0).is_ok() && limiter.check(b, 0).is_ok());
        assert!(limiter.check(a, 0).is_err() && limiter.check(b, 0).is_err(), "new addresses in the same /64 do not buy new tokens");
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap(), 0).is_ok(), "another /64 is another client");
    }

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(10.0, 3.0);
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        assert!((0..3).all(|_| rl.check(ip, 0).is_ok()));
        assert_eq!(rl.check(ip, 0), Err(1));
        assert!(rl.check(ip, 100).is_ok(), "one token back after 100 ms at 10/s");
        let other: IpAddr = "203.0.113.2".parse().unwrap();
        assert!(rl.check(other, 0).is_ok(), "clients are independent");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Over any stretch of time a client gets at most burst + rate × elapsed requests.
            #[test]
            fn never_more_than_burst_plus_rate(rate in 1.0f64..100.0, burst in 1.0f64..50.0, gaps in proptest::collection::vec(0i64..200, 1..500)) {
                let rl = RateLimiter::new(rate, burst);
                let ip: IpAddr = "198.51.100.7".parse().unwrap();
                let (mut now, mut allowed) = (0i64, 0u32);
                for gap in gaps {
                    now += gap;
                    match rl.check(ip, now) {
                        Ok(()) => allowed += 1,
                        Err(retry) => prop_assert!(retry >= 1),
                    }
                    prop_assert!(f64::from(allowed) <= burst.max(1.0) + rate * now as f64 / 1000.0 + 1e-9);
                }
            }
        }
    }
}
