//! Bandwidth caps in the kernel: an htb qdisc on a sender's egress, one class
//! per capped destination (class `1:<host part in hex>`, so the class names
//! its destination), a u32 filter steering that destination's packets into
//! it, and a default class at 10 Gbit/s for everything else (`1:fffe`, a
//! host part no node or shim can have). Settings as measured (README
//! "Impairments"): the default class gets `quantum 60000 burst 1250000
//! cburst 1250000` — with tc's defaults its burst computes to 0 and
//! untouched peers lose a fifth of their bandwidth — and capped classes
//! `quantum 1514`.

use crate::backend::host;
use crate::error::{Error, Result};
use crate::model::net::Subnet;
use std::net::Ipv4Addr;

/// The default (uncapped) class.
const DEFAULT_CLASS: &str = "1:fffe";

/// An egress device the testbed made.
#[derive(Debug, Clone)]
pub enum Dev {
    /// A node's `eth0`, inside the namespace of its redis container.
    Node { pid: i64, ifname: &'static str },
    /// The host's macvlan shim.
    Shim(String),
}

impl Dev {
    fn name(&self) -> &str {
        match self {
            Dev::Node { ifname, .. } => ifname,
            Dev::Shim(n) => n,
        }
    }

    async fn tc(&self, args: &[&str]) -> Result<String> {
        match self {
            Dev::Node { pid, .. } => host::in_netns(*pid, "tc", args).await,
            Dev::Shim(_) => host::run_async("tc", args).await,
        }
    }
}

/// `1:<host part>` of `dst` in `subnet`.
fn class_of(subnet: Subnet, dst: Ipv4Addr) -> String {
    let host = u32::from(dst)
        & !(u32::MAX
            .checked_shl(32 - u32::from(subnet.prefix()))
            .unwrap_or(0));
    format!("1:{host:x}")
}

/// The destination a class names.
fn dst_of(subnet: Subnet, class: &str) -> Option<Ipv4Addr> {
    let host = u32::from_str_radix(class.strip_prefix("1:")?, 16).ok()?;
    Some(Ipv4Addr::from(u32::from(subnet.network()) | host))
}

/// Caps `dev`'s egress to `dst` at `kbit` (replacing a cap it had).
pub async fn set_rate(dev: &Dev, subnet: Subnet, dst: Ipv4Addr, kbit: u64) -> Result<()> {
    let d = dev.name();
    let qdiscs = dev.tc(&["qdisc", "show", "dev", d]).await?;
    if !qdiscs.contains("qdisc htb 1:") {
        dev.tc(&[
            "qdisc", "replace", "dev", d, "root", "handle", "1:", "htb", "default", "fffe",
        ])
        .await?;
        dev.tc(&[
            "class",
            "add",
            "dev",
            d,
            "parent",
            "1:",
            "classid",
            DEFAULT_CLASS,
            "htb",
            "rate",
            "10gbit",
            "quantum",
            "60000",
            "burst",
            "1250000",
            "cburst",
            "1250000",
        ])
        .await?;
    }
    let class = class_of(subnet, dst);
    let had = rates(dev, subnet).await?.iter().any(|(ip, _)| *ip == dst);
    let rate = format!("{kbit}kbit");
    dev.tc(&[
        "class", "replace", "dev", d, "parent", "1:", "classid", &class, "htb", "rate", &rate,
        "ceil", &rate, "quantum", "1514",
    ])
    .await?;
    if !had {
        let m = format!("{dst}/32");
        dev.tc(&[
            "filter", "add", "dev", d, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
            "match", "ip", "dst", &m, "flowid", &class,
        ])
        .await?;
    }
    Ok(())
}

/// The caps in force on `dev`: (destination, kbit/s).
pub async fn rates(dev: &Dev, subnet: Subnet) -> Result<Vec<(Ipv4Addr, u64)>> {
    let out = dev.tc(&["class", "show", "dev", dev.name()]).await?;
    Ok(parse_classes(&out, subnet))
}

/// `class htb 1:b root prio 0 rate 800Kbit ceil ...` lines (tc prints htb
/// classes as text even with `-j`).
fn parse_classes(text: &str, subnet: Subnet) -> Vec<(Ipv4Addr, u64)> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let class = *w.get(2)?;
            if w.first() != Some(&"class") || w.get(1) != Some(&"htb") || class == DEFAULT_CLASS {
                return None;
            }
            let rate = w
                .iter()
                .position(|x| *x == "rate")
                .and_then(|i| w.get(i + 1))?;
            Some((dst_of(subnet, class)?, kbit(rate)?))
        })
        .collect()
}

/// `800Kbit`, `1Mbit`, `10Gbit`, `500bit` as kbit/s (tc's units are 1000s).
fn kbit(s: &str) -> Option<u64> {
    let v = s.strip_suffix("bit")?;
    let (num, mult) = match v.chars().last()? {
        'K' | 'k' => (&v[..v.len() - 1], 1.0),
        'M' | 'm' => (&v[..v.len() - 1], 1e3),
        'G' | 'g' => (&v[..v.len() - 1], 1e6),
        _ => (v, 1e-3),
    };
    Some((num.parse::<f64>().ok()? * mult).round() as u64)
}

/// Removes the testbed's htb from `dev` (nothing when it has none).
pub async fn clear(dev: &Dev) -> Result<bool> {
    let d = dev.name();
    let qdiscs = dev.tc(&["qdisc", "show", "dev", d]).await?;
    if !qdiscs.contains("qdisc htb 1:") {
        return Ok(false);
    }
    dev.tc(&["qdisc", "del", "dev", d, "root"])
        .await
        .map(|_| true)
        .map_err(|e| Error::State(format!("removing the rate caps on {d}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_name_their_destination() {
        let s: Subnet = "198.18.7.0/24".parse().unwrap();
        let ip: Ipv4Addr = "198.18.7.11".parse().unwrap();
        assert_eq!(class_of(s, ip), "1:b");
        assert_eq!(dst_of(s, "1:b"), Some(ip));
        let wide: Subnet = "198.18.0.0/16".parse().unwrap();
        let far: Ipv4Addr = "198.18.3.4".parse().unwrap();
        assert_eq!(dst_of(wide, &class_of(wide, far)), Some(far));
    }

    #[test]
    fn tc_listings_read_back() {
        let s: Subnet = "198.18.7.0/24".parse().unwrap();
        let text = "class htb 1:fffe root prio 0 rate 10Gbit ceil 10Gbit burst 1250000b cburst 1250000b \n\
                    class htb 1:b root prio 0 rate 1600Kbit ceil 1600Kbit burst 1600b cburst 1600b \n\
                    class htb 1:fd root prio 0 rate 2Mbit ceil 2Mbit burst 1600b cburst 1600b \n";
        assert_eq!(
            parse_classes(text, s),
            vec![
                ("198.18.7.11".parse().unwrap(), 1600),
                ("198.18.7.253".parse().unwrap(), 2000)
            ]
        );
        assert_eq!(kbit("500bit"), Some(1));
        assert_eq!(kbit("1.5Mbit"), Some(1500));
        assert_eq!(kbit("fast"), None);
    }
}
