//! Host links: the veth pair that parents the macvlan network (there is no
//! `dummy` module on this kind of host) and the host-side macvlan shim that
//! lets the host reach the containers and the VIP.
//!
//! Invariant: every link made here carries the ifalias `Names::link_alias`;
//! removal only ever deletes links whose alias starts with
//! `LINK_ALIAS_PREFIX`, so the testbed never touches a link it did not make.

use crate::backend::host::run;
use crate::error::{Error, Result};
use crate::model::net::{Names, Subnet, LINK_ALIAS_PREFIX};
use serde::Deserialize;
use std::net::Ipv4Addr;

#[derive(Debug, Deserialize)]
struct LinkJson {
    ifname: String,
    #[serde(default)]
    ifalias: Option<String>,
    #[serde(default)]
    link: Option<String>,
}

/// A host link that belongs to some testbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedLink {
    pub name: String,
    /// The testbed name from the alias.
    pub testbed: String,
    /// Whether it sits on another link (a macvlan): delete those first.
    pub stacked: bool,
}

/// Every host link whose alias marks it as a testbed's.
pub fn owned_links() -> Result<Vec<OwnedLink>> {
    let out = run("ip", &["-j", "link", "show"])?;
    let links: Vec<LinkJson> = serde_json::from_str(&out)
        .map_err(|e| Error::command("ip -j link show", format!("unparsable output: {e}")))?;
    Ok(links
        .into_iter()
        .filter_map(|l| {
            let testbed = l
                .ifalias
                .as_deref()?
                .strip_prefix(LINK_ALIAS_PREFIX)?
                .to_string();
            Some(OwnedLink {
                name: l.ifname,
                testbed,
                stacked: l.link.is_some_and(|p| p != "NONE"),
            })
        })
        .collect())
}

/// Creates the segment: a veth pair used as the macvlan parent (unless
/// `parent` names an existing interface) and the host shim with `shim_ip`.
/// Returns the name of the parent to give Docker.
pub fn create_segment(
    names: &Names,
    subnet: Subnet,
    shim_ip: Ipv4Addr,
    parent: Option<&str>,
) -> Result<String> {
    let alias = names.link_alias.as_str();
    let parent = match parent {
        Some(p) => {
            run("ip", &["link", "show", p]).map_err(|_| Error::Prerequisite {
                what: format!("--parent {p}: no such interface"),
                hint: "name an existing interface (`ip link`), or omit --parent to get a private veth segment".into(),
            })?;
            p.to_string()
        }
        None => {
            run(
                "ip",
                &[
                    "link",
                    "add",
                    &names.parent,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &names.parent_peer,
                ],
            )?;
            for l in [&names.parent, &names.parent_peer] {
                run("ip", &["link", "set", l, "alias", alias])?;
                // IPv6 would only add router solicitations to an isolated segment.
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{l}/disable_ipv6"), "1");
                run("ip", &["link", "set", l, "up"])?;
            }
            names.parent.clone()
        }
    };
    run(
        "ip",
        &[
            "link",
            "add",
            &names.shim,
            "link",
            &parent,
            "type",
            "macvlan",
            "mode",
            "bridge",
        ],
    )?;
    run("ip", &["link", "set", &names.shim, "alias", alias])?;
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", names.shim),
        "1",
    );
    let cidr = format!("{shim_ip}/{}", subnet.prefix());
    run("ip", &["addr", "add", &cidr, "dev", &names.shim])?;
    run("ip", &["link", "set", &names.shim, "up"])?;
    Ok(parent)
}

/// Deletes the links of testbed `name` (or of every testbed when `None`).
/// Returns the names deleted. Idempotent.
pub fn remove_links(name: Option<&str>) -> Result<Vec<String>> {
    let mut links: Vec<OwnedLink> = owned_links()?
        .into_iter()
        .filter(|l| name.is_none_or(|n| l.testbed == n))
        .collect();
    // macvlans on top first, then the veth ends (deleting one end removes both).
    links.sort_by_key(|l| !l.stacked);
    let mut removed = Vec::new();
    for l in links {
        match run("ip", &["link", "del", &l.name]) {
            Ok(_) => removed.push(l.name),
            // The peer of a deleted veth disappears with it.
            Err(_) if !link_exists(&l.name) => removed.push(l.name),
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", name]).is_ok()
}

#[derive(Debug, Deserialize)]
struct AddrJson {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

#[derive(Debug, Deserialize)]
struct AddrInfo {
    local: String,
    prefixlen: u8,
}

/// Host interfaces with an IPv4 address overlapping `subnet` (a busy subnet).
pub fn host_addresses_in(subnet: Subnet) -> Result<Vec<String>> {
    let out = run("ip", &["-j", "-4", "addr", "show"])?;
    let list: Vec<AddrJson> = serde_json::from_str(&out)
        .map_err(|e| Error::command("ip -j -4 addr show", format!("unparsable output: {e}")))?;
    let mut busy = Vec::new();
    for i in list {
        for a in i.addr_info {
            let Ok(ip) = a.local.parse::<Ipv4Addr>() else {
                continue;
            };
            let net = Subnet::new(ip, 32).ok().map(|_| {
                let mask = if a.prefixlen == 0 {
                    0
                } else {
                    u32::MAX << (32 - a.prefixlen)
                };
                Subnet::new(Ipv4Addr::from(u32::from(ip) & mask), a.prefixlen)
            });
            if let Some(Ok(net)) = net {
                if net.overlaps(&subnet) {
                    busy.push(format!("{}/{} on {}", a.local, a.prefixlen, i.ifname));
                }
            }
        }
    }
    Ok(busy)
}

/// The MAC the host's neighbour table holds for `ip` on `dev`, if any.
pub fn neighbour_mac(ip: Ipv4Addr, dev: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Neigh {
        #[serde(default)]
        lladdr: Option<String>,
    }
    let out = run("ip", &["-j", "neigh", "show", &ip.to_string(), "dev", dev])?;
    let list: Vec<Neigh> = serde_json::from_str(&out)
        .map_err(|e| Error::command("ip -j neigh show", format!("unparsable output: {e}")))?;
    Ok(list.into_iter().find_map(|n| n.lladdr))
}
