//! The live view of a testbed: each node's role as it answers, its MAC as
//! its interface has it (what ARP answers with; read in its namespace, not
//! the MAC the testbed asked for), whether it holds the VIP.

use super::Testbed;
use crate::backend::{client, host};
use crate::error::Result;
use crate::model::net::mac_for;
use crate::model::render::paths;
use crate::model::topology::Node;
use serde::{Deserialize, Serialize};

/// `cargo xtask status --json`: a stable interface.
#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    pub name: String,
    pub master_name: String,
    pub vip: String,
    pub subnet: String,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub ip: String,
    /// The MAC of the node's interface, read in its namespace (empty when
    /// the node is down).
    pub mac: String,
    /// The MAC the testbed asked for (`02:42:` + the IPv4 bytes).
    pub expected_mac: String,
    pub redis_port: u16,
    pub sentinel_port: u16,
    /// `master`, `replica` or `down`.
    pub role: String,
    pub holds_vip: bool,
    pub redis_container: String,
    pub sentinel_container: String,
}

impl NodeStatus {
    /// Whether the interface has another MAC than the one asked for.
    pub fn mac_differs(&self) -> bool {
        !self.mac.is_empty() && !self.mac.eq_ignore_ascii_case(&self.expected_mac)
    }
}

impl Testbed {
    /// The MAC of `n`'s interface as the kernel has it; `None` when down.
    pub async fn mac(&self, n: &Node) -> Result<Option<String>> {
        let pid = self.pid(n).await?;
        if pid == 0 {
            return Ok(None);
        }
        // netlink, not /sys: sysfs shows the namespace that mounted it (the
        // host's), whatever namespace the reader entered
        let out = host::in_netns(pid, "ip", &["-j", "link", "show", paths::INTERFACE]).await?;
        #[derive(serde::Deserialize)]
        struct Link {
            address: Option<String>,
        }
        let links: Vec<Link> = serde_json::from_str(&out)
            .map_err(|e| crate::Error::command("ip -j link show", format!("unparsable: {e}")))?;
        Ok(links.into_iter().next().and_then(|l| l.address))
    }

    /// The live view: every node's role, MAC and whether it holds the VIP.
    pub async fn status(&self) -> Result<Status> {
        let t = &self.topology;
        let mut nodes = Vec::new();
        for n in &t.nodes {
            let info = client::info(self.redis_addr(n), self.password(), "replication").await;
            let role = match info.as_ref().ok().and_then(|i| i.get("role")) {
                Some(r) if r == "master" => "master",
                Some(r) if r == "slave" => "replica",
                _ => "down",
            };
            nodes.push(NodeStatus {
                name: n.name.clone(),
                ip: n.ip.to_string(),
                mac: self.mac(n).await?.unwrap_or_default(),
                expected_mac: mac_for(n.ip),
                redis_port: t.redis_port,
                sentinel_port: t.sentinel_port,
                role: role.to_string(),
                holds_vip: self.holds_vip(n).await?.unwrap_or(false),
                redis_container: self.names.redis(&n.name),
                sentinel_container: self.names.sentinel(&n.name),
            });
        }
        Ok(Status {
            name: t.name.clone(),
            master_name: t.master_name.clone(),
            vip: t.vip.to_string(),
            subnet: t.subnet.to_string(),
            nodes,
        })
    }
}
