//! Host links: the veth pair that parents the macvlan network (there is no
//! `dummy` module on this kind of host) and the host-side macvlan shim that
//! lets the host reach the containers and the VIP.
//!
//! Invariant: every link made here carries the ifalias `Names::link_alias`;
//! removal only deletes links whose alias starts with `LINK_ALIAS_PREFIX`,
//! or — for a testbed being removed — a link with one of the names `Names`
//! gives it and no alias at all (made by `ip link add`, killed before `ip
//! link set alias`), so the testbed never touches a link it did not make.

use crate::backend::host::run_async as run;
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
pub async fn owned_links() -> Result<Vec<OwnedLink>> {
    Ok(all_links()
        .await?
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

async fn all_links() -> Result<Vec<LinkJson>> {
    let out = run("ip", &["-j", "link", "show"]).await?;
    serde_json::from_str(&out)
        .map_err(|e| Error::command("ip -j link show", format!("unparsable output: {e}")))
}

/// Creates the segment: a veth pair used as the macvlan parent (unless
/// `parent` names an existing interface) and the host shim with `shim_ip`.
/// Returns the name of the parent to give Docker.
pub async fn create_segment(
    names: &Names,
    subnet: Subnet,
    shim_ip: Ipv4Addr,
    parent: Option<&str>,
) -> Result<String> {
    let alias = names.link_alias.as_str();
    let parent = match parent {
        Some(p) => {
            run("ip", &["link", "show", p]).await.map_err(|_| Error::Prerequisite {
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
            )
            .await?;
            for l in [&names.parent, &names.parent_peer] {
                run("ip", &["link", "set", l, "alias", alias]).await?;
                // IPv6 would only add router solicitations to an isolated segment.
                disable_ipv6(l).await;
                run("ip", &["link", "set", l, "up"]).await?;
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
    )
    .await?;
    run("ip", &["link", "set", &names.shim, "alias", alias]).await?;
    disable_ipv6(&names.shim).await;
    let cidr = format!("{shim_ip}/{}", subnet.prefix());
    run("ip", &["addr", "add", &cidr, "dev", &names.shim]).await?;
    run("ip", &["link", "set", &names.shim, "up"]).await?;
    Ok(parent)
}

/// Best effort: a link without IPv6 sends no router solicitations.
async fn disable_ipv6(link: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    let _ = tokio::fs::write(path, "1").await;
}

/// The links of testbed `name` (every testbed when `None`): those with its
/// alias, and those with a name one of `names` gives and no alias (see the
/// module docs). Stacked links (macvlans) come first.
pub async fn testbed_links(name: Option<&str>, names: &[String]) -> Result<Vec<String>> {
    let all = all_links().await?;
    let derived: Vec<String> = names
        .iter()
        .flat_map(|n| crate::testbed::teardown::link_names(n))
        .collect();
    let mut found: Vec<(bool, String)> = all
        .into_iter()
        .filter(|l| match l.ifalias.as_deref() {
            Some(a) => a
                .strip_prefix(LINK_ALIAS_PREFIX)
                .is_some_and(|t| name.is_none_or(|n| t == n)),
            None => derived.contains(&l.ifname),
        })
        .map(|l| (l.link.is_some_and(|p| p != "NONE"), l.ifname))
        .collect();
    // macvlans on top first, then the veth ends (deleting one end removes both)
    found.sort_by_key(|(stacked, _)| !stacked);
    Ok(found.into_iter().map(|(_, n)| n).collect())
}

/// Deletes [`testbed_links`]; returns the names deleted. Idempotent.
pub async fn remove_testbed_links(name: Option<&str>, names: &[String]) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for l in testbed_links(name, names).await? {
        match run("ip", &["link", "del", &l]).await {
            Ok(_) => removed.push(l),
            // the peer of a deleted veth disappears with it
            Err(_) if !link_exists(&l).await => removed.push(l),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(removed)
    } else {
        Err(Error::command("ip link del", errors.join("; ")))
    }
}

async fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", name]).await.is_ok()
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
pub async fn host_addresses_in(subnet: Subnet) -> Result<Vec<String>> {
    let out = run("ip", &["-j", "-4", "addr", "show"]).await?;
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
pub async fn neighbour_mac(ip: Ipv4Addr, dev: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Neigh {
        #[serde(default)]
        lladdr: Option<String>,
    }
    let out = run("ip", &["-j", "neigh", "show", &ip.to_string(), "dev", dev]).await?;
    let list: Vec<Neigh> = serde_json::from_str(&out)
        .map_err(|e| Error::command("ip -j neigh show", format!("unparsable output: {e}")))?;
    Ok(list.into_iter().find_map(|n| n.lladdr))
}
