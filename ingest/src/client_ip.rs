//! Which IP a request came from: the socket peer, or the right-most
//! untrusted `X-Forwarded-For` hop when the peer is a configured trusted proxy.

use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Comma-separated IPs or CIDRs (`10.0.0.0/8, ::1`).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| format!("{item:?} is not an IP or CIDR"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("{item:?} has a bad prefix length"))?,
                None => max,
            };
            nets.push((ip, len));
        }
        Ok(TrustedProxies { nets })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ringpath_types::ip::canonical(ip);
        self.nets.iter().any(|(net, len)| in_net(ip, *net, *len))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The client's IP: walk `X-Forwarded-For` from the right while hops are trusted.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return ringpath_types::ip::canonical(peer);
    }
    let Some(header) = forwarded_for else { return ringpath_types::ip::canonical(peer) };
    let mut client = peer;
    for hop in header.rsplit(',').map(str::trim) {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    ringpath_types::ip::canonical(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &t), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_proxy_chain_yields_the_first_untrusted_hop() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        assert_eq!(client_ip(ip("127.0.0.1"), Some("6.6.6.6, 81.2.69.142, 10.1.2.3"), &t), ip("81.2.69.142"));
        assert_eq!(client_ip(ip("127.0.0.1"), None, &t), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("127.0.0.1"), Some("garbage"), &t), ip("127.0.0.1"));
    }

    #[test]
    fn bad_proxy_lists_are_rejected() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nope").is_err());
        assert!(TrustedProxies::parse("").unwrap().nets.is_empty());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_header_from_an_untrusted_peer_is_ignored(a in any::<[u8; 4]>(), header in "\\PC{0,200}") {
                let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
                let peer = IpAddr::from([11, a[1], a[2], a[3]]);
                prop_assert_eq!(client_ip(peer, Some(&header), &t), peer);
            }

            #[test]
            fn a_trusted_peer_yields_itself_or_a_listed_hop(hops in proptest::collection::vec(prop_oneof![any::<[u8; 4]>().prop_map(|a| IpAddr::from(a).to_string()), "\\PC{0,20}"], 0..6)) {
                let t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
                let peer = ip("127.0.0.1");
                let header = hops.join(", ");
                let got = client_ip(peer, Some(&header), &t);
                prop_assert!(got == peer || hops.iter().any(|h| h.trim().parse::<IpAddr>().is_ok_and(|h| h == got)), "{got} from {header:?}");
            }

            #[test]
            fn parsing_proxy_lists_never_panics(list in "\\PC{0,100}") {
                let _ = TrustedProxies::parse(&list);
            }
        }
    }
}
