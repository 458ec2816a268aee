//! Networks and the real client IP (PLATFORM.md §5.2).

use std::net::IpAddr;

/// An IPv4 or IPv6 network written `a.b.c.d/n` or `::1/128` (a bare address means a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(raw: &str) -> Result<Cidr, String> {
        let raw = raw.trim();
        let err = || format!("réseau CIDR attendu, ex. 127.0.0.1/32 (reçu « {raw} »)");
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| err())?,
            None => max,
        };
        if prefix > max {
            return Err(err());
        }
        Ok(Cidr { addr, prefix })
    }

    /// Parses a comma-separated list; empty items are ignored.
    pub fn parse_list(raw: &str) -> Result<Vec<Cidr>, String> {
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Cidr::parse).collect()
    }

    /// True for `0.0.0.0/0` and `::/0`, which production refuses on diagnostic allow-lists.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

pub fn any_contains(nets: &[Cidr], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// Who sent a request, once proxies are accounted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    pub ip: IpAddr,
    /// The TCP peer is a trusted proxy: such a request never qualifies for an IP allow-list.
    pub via_trusted_proxy: bool,
}

/// Walks `X-Forwarded-For` + the TCP peer from right to left, skipping trusted proxies; the first untrusted address
/// is the client. `X-Forwarded-For` from an untrusted peer is ignored; an unparsable hop stops the walk at the last
/// trusted address (the proxy that appended the garbage is the one we can vouch for).
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[Cidr]) -> ClientIp {
    if !any_contains(trusted, peer) {
        return ClientIp { ip: peer, via_trusted_proxy: false };
    }
    let mut current = peer;
    for hop in forwarded_for.iter().flat_map(|h| h.split(',')).rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                current = ip;
                if !any_contains(trusted, ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    ClientIp { ip: current, via_trusted_proxy: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_membership() {
        let loopback = Cidr::parse("127.0.0.1/32").unwrap();
        assert!(loopback.contains(ip("127.0.0.1")));
        assert!(!loopback.contains(ip("127.0.0.2")));
        assert!(loopback.contains(ip("::ffff:127.0.0.1")));
        let net = Cidr::parse("172.28.0.0/24").unwrap();
        assert!(net.contains(ip("172.28.0.10")));
        assert!(!net.contains(ip("172.28.1.10")));
        let v6 = Cidr::parse("::1/128").unwrap();
        assert!(v6.contains(ip("::1")));
        assert!(!v6.contains(ip("127.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().is_everything());
        assert!(Cidr::parse("10.0.0.1").unwrap().contains(ip("10.0.0.1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert_eq!(Cidr::parse_list(" 127.0.0.1/32, ::1/128 ,").unwrap().len(), 2);
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let trusted = Cidr::parse_list("172.28.0.10/32").unwrap();
        let c = client_ip(ip("203.0.113.7"), &["1.2.3.4"], &trusted);
        assert_eq!(c, ClientIp { ip: ip("203.0.113.7"), via_trusted_proxy: false });
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = Cidr::parse_list("172.28.0.10/32,10.0.0.0/8").unwrap();
        // A client spoofs "6.6.6.6"; nginx appends the real address 41.100.2.3.
        let c = client_ip(ip("172.28.0.10"), &["6.6.6.6, 41.100.2.3"], &trusted);
        assert_eq!(c.ip, ip("41.100.2.3"));
        assert!(c.via_trusted_proxy);
        // Two trusted hops.
        let c = client_ip(ip("172.28.0.10"), &["41.100.2.3", "10.1.1.1"], &trusted);
        assert_eq!(c.ip, ip("41.100.2.3"));
    }

    #[test]
    fn a_trusted_peer_without_header_is_itself_the_client_but_still_flagged() {
        let trusted = Cidr::parse_list("127.0.0.1/32").unwrap();
        let c = client_ip(ip("127.0.0.1"), &[], &trusted);
        assert_eq!(c, ClientIp { ip: ip("127.0.0.1"), via_trusted_proxy: true });
        let c = client_ip(ip("127.0.0.1"), &["garbage"], &trusted);
        assert_eq!(c.ip, ip("127.0.0.1"));
    }
}
