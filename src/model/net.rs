//! Addresses and names: the `Subnet` type, how every Docker object and host
//! link of a testbed is named, and the MAC address each node gets.
//!
//! Invariant: every name is a pure function of the testbed name, so `down`
//! finds what `up` made even without a state file; every host link carries the
//! alias `LINK_ALIAS_PREFIX<name>` so `down --all` finds it and never touches a
//! link the testbed did not create.

use serde::{Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Prefix of the `ifalias` of every host link the testbed creates.
pub const LINK_ALIAS_PREFIX: &str = "redis-sentinel-testbed:";

/// An IPv4 subnet such as `198.18.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// A subnet from its network address and prefix length.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, String> {
        if prefix > 32 {
            return Err(format!("prefix /{prefix} is longer than 32"));
        }
        let s = Subnet { addr, prefix };
        if s.network() != addr {
            return Err(format!(
                "{addr}/{prefix} has host bits set (the network address is {})",
                s.network()
            ));
        }
        Ok(s)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The address `k` below the broadcast address.
    pub fn from_end(&self, k: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.broadcast()) - k)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// `ip`'s host part (relative to `old`) placed in this subnet.
    pub fn with_host_of(&self, ip: Ipv4Addr, old: Subnet) -> Ipv4Addr {
        let host = u32::from(ip) & !old.mask();
        Ipv4Addr::from(u32::from(self.network()) | (host & !self.mask()))
    }

    /// The `index`-th /24 of 198.18.0.0/16, for tests that run side by side.
    pub fn test_slot(index: u8) -> Subnet {
        Subnet {
            addr: Ipv4Addr::new(198, 18, index, 0),
            prefix: 24,
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a subnet like 198.18.0.0/24"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("`/{p}` is not a prefix length"))?;
        Subnet::new(addr, prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The MAC address a node gets: `02:42:` + its IPv4 bytes (locally
/// administered). dockerd 20.10's macvlan driver derives exactly this from the
/// IP; newer engines take it from the endpoint settings. Fixed per IP, so a
/// rerun leaves no stale neighbour entry behind.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// The names of everything one testbed creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Names {
    pub testbed: String,
    /// Docker macvlan network.
    pub network: String,
    /// Host veth end used as the macvlan parent.
    pub parent: String,
    /// The other end of the veth pair (kept up, never addressed).
    pub parent_peer: String,
    /// Host-side macvlan shim that gives the host a foot on the segment.
    pub shim: String,
    /// The `ifalias` put on each link the testbed made.
    pub link_alias: String,
}

impl Names {
    pub fn new(testbed: &str) -> Names {
        // Link names are limited to 15 bytes: use a hash of the testbed name.
        let h = fnv1a(testbed);
        Names {
            testbed: testbed.to_string(),
            network: format!("tb-{testbed}"),
            parent: format!("tb{h:08x}l"),
            parent_peer: format!("tb{h:08x}p"),
            shim: format!("tb{h:08x}s"),
            link_alias: format!("{LINK_ALIAS_PREFIX}{testbed}"),
        }
    }

    /// The redis-server container of `node`.
    pub fn redis(&self, node: &str) -> String {
        format!("tb-{}-{node}", self.testbed)
    }

    /// The sentinel container of `node`.
    pub fn sentinel(&self, node: &str) -> String {
        format!("tb-{}-{node}-sentinel", self.testbed)
    }
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_arithmetic() {
        let s: Subnet = "198.18.4.0/24".parse().unwrap();
        assert_eq!(s.broadcast(), Ipv4Addr::new(198, 18, 4, 255));
        assert_eq!(s.from_end(1), Ipv4Addr::new(198, 18, 4, 254));
        assert!(s.contains(Ipv4Addr::new(198, 18, 4, 11)));
        assert!(!s.contains(Ipv4Addr::new(198, 18, 5, 11)));
        let space: Subnet = "198.18.0.0/15".parse().unwrap();
        assert!(space.contains_subnet(&s));
        assert!(!s.contains_subnet(&space));
        let old: Subnet = "198.18.0.0/24".parse().unwrap();
        assert_eq!(
            s.with_host_of(Ipv4Addr::new(198, 18, 0, 11), old),
            Ipv4Addr::new(198, 18, 4, 11)
        );
        assert!("198.18.0.1/24"
            .parse::<Subnet>()
            .unwrap_err()
            .contains("host bits"));
    }

    #[test]
    fn names_fit_linux_limits() {
        let n = Names::new("a-very-long-testbed-name-x");
        for l in [&n.parent, &n.parent_peer, &n.shim] {
            assert!(l.len() <= 15, "{l}");
        }
        assert_eq!(mac_for(Ipv4Addr::new(198, 18, 5, 11)), "02:42:c6:12:05:0b");
    }
}
