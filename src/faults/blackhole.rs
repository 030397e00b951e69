//! `sentinel-blackhole`: the client containers' packets to a node's
//! sentinel vanish — dropped, no reset — while the other sentinels, the
//! nodes and the host still reach it (go-redis#3652: a silent sentinel eats
//! a client's time budget; ioredis#1314 for a hung server).
//!
//! The same netfilter approach as partitions (`partition.rs`): rules in the
//! chain [`super::CHAIN`] of the *receiving* node's namespace, set from the
//! host, matching the source address of each client container of the
//! testbed (found by its labels, so any process can do it) and the
//! sentinel's port only. Sentinel gossip, replication and the host's own
//! subscriptions are untouched. `heal` removes these rules with the
//! partitions; `partitions` lists them (the source is the client's
//! address).
//!
//! Invariant: no rule names a node's address or the host's shim; a client
//! container started after the fault is not cut.

use super::partition::{ensure_chain, iptables};
use super::{Target, Verb};
use crate::backend::docker::{KIND_CLIENT, LABEL_KIND, LABEL_NAME};
use crate::error::{Error, Result};
use crate::testbed::Testbed;
use bollard::query_parameters::ListContainersOptions;
use std::collections::HashMap;
use std::net::Ipv4Addr;

impl Testbed {
    /// The running client containers of this testbed: (name, address on
    /// its segment).
    pub async fn client_containers(&self) -> Result<Vec<(String, Ipv4Addr)>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_NAME}={}", self.topology.name),
                format!("{LABEL_KIND}={KIND_CLIENT}"),
            ],
        )]);
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: false,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| Error::docker("list client containers", e))?;
        let mut out = Vec::new();
        for c in list {
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let ip = c
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|mut n| n.remove(&self.names.network))
                .and_then(|e| e.ip_address)
                .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
            if let Some(ip) = ip {
                out.push((name, ip));
            }
        }
        out.sort_by_key(|(_, ip)| *ip);
        Ok(out)
    }

    /// Drops, in each of `target`'s nodes, the TCP packets the client
    /// containers send to its sentinel's port (see the module docs).
    pub async fn sentinel_blackhole(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let clients = self.client_containers().await?;
        let ips: Vec<Ipv4Addr> = clients
            .iter()
            .map(|(_, ip)| *ip)
            .filter(|ip| self.topology.node_by_ip(*ip).is_none() && *ip != self.topology.shim_ip())
            .collect();
        if ips.is_empty() {
            return Err(Error::State(format!(
                "sentinel-blackhole: testbed {} has no client container to cut (it drops the client containers' packets only; the host is never cut)",
                self.topology.name
            )));
        }
        let mut pids = Vec::new();
        for n in &nodes {
            match self.pid(n).await? {
                0 => {}
                pid => pids.push(pid),
            }
        }
        let list: Vec<String> = ips.iter().map(|ip| format!("{ip}/32")).collect();
        let extra = format!(
            "sentinel port {} from the clients at {} (dropped, no reset)",
            self.topology.sentinel_port,
            ips.iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let t = self.record_verb(Verb::SentinelBlackhole, &nodes, &extra);
        let port = self.topology.sentinel_port.to_string();
        for pid in pids {
            ensure_chain(pid).await?;
            // one call: iptables adds one rule per source address
            let sources = list.join(",");
            iptables(
                pid,
                &[
                    "-A",
                    super::CHAIN,
                    "-s",
                    &sources,
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--dports",
                    &port,
                    "-j",
                    "DROP",
                ],
            )
            .await?;
        }
        Ok(t)
    }
}
