//! The health conditions of a testbed, checked from the host over the shim:
//! every redis answers, replicas are linked, every sentinel knows the master,
//! its replicas and its peers, and the VIP answers as the master.

use crate::backend::client;
use crate::model::topology::{Node, Topology};
use futures_util::future::join_all;
use std::net::SocketAddrV4;

/// Checks every condition at once; `Err` lists each one still false.
pub async fn probe(t: &Topology, master: &Node) -> Result<(), String> {
    let pw = t.auth.as_ref().map(|a| a.password.as_str());
    let n = t.nodes.len();
    let redis = |node: &Node| SocketAddrV4::new(node.ip, t.redis_port);
    let mut missing: Vec<String> = Vec::new();

    let infos = join_all(
        t.nodes
            .iter()
            .map(|node| client::info(redis(node), pw, "replication")),
    )
    .await;
    for (node, info) in t.nodes.iter().zip(&infos) {
        let info = match info {
            Ok(i) => i,
            Err(e) => {
                missing.push(format!("{} redis answers ({e})", node.name));
                continue;
            }
        };
        let role = info.get("role").map(String::as_str).unwrap_or("?");
        if node.name == master.name {
            let linked = info
                .get("connected_slaves")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if role != "master" || linked != n - 1 {
                missing.push(format!(
                    "{} is master with {} replicas (role:{role}, connected_slaves:{linked})",
                    node.name,
                    n - 1
                ));
            }
        } else {
            let host = info.get("master_host").map(String::as_str).unwrap_or("?");
            let link = info
                .get("master_link_status")
                .map(String::as_str)
                .unwrap_or("?");
            if role != "slave" || host != master.ip.to_string() || link != "up" {
                missing.push(format!(
                    "{} replicates {} with master_link_status:up (role:{role}, master_host:{host}, link:{link})",
                    node.name, master.name
                ));
            }
        }
    }

    let views = join_all(t.nodes.iter().map(|node| sentinel_view(t, node))).await;
    for (node, view) in t.nodes.iter().zip(views) {
        if let Err(e) = view.and_then(|v| v.check(master, n)) {
            missing.push(format!("sentinel on {}: {e}", node.name));
        }
    }

    match vip_answers_as(t, master).await {
        Ok(()) => {}
        Err(e) => missing.push(e),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// What one sentinel reports.
pub struct SentinelView {
    pub master: std::collections::BTreeMap<String, String>,
    pub replica_flags: Vec<String>,
    pub sentinel_flags: Vec<String>,
}

impl SentinelView {
    fn check(&self, master: &Node, n: usize) -> Result<(), String> {
        let get = |k: &str| self.master.get(k).map(String::as_str).unwrap_or("?");
        let mut bad = Vec::new();
        if get("ip") != master.ip.to_string() {
            bad.push(format!(
                "reports master {} instead of {}",
                get("ip"),
                master.ip
            ));
        }
        if get("flags") != "master" {
            bad.push(format!("master flags are {}", get("flags")));
        }
        let want = (n - 1).to_string();
        if get("num-slaves") != want || self.replica_flags.iter().any(|f| f != "slave") {
            bad.push(format!(
                "num-slaves={} flags={:?} (want {want} healthy replicas)",
                get("num-slaves"),
                self.replica_flags
            ));
        }
        if get("num-other-sentinels") != want
            || self.sentinel_flags.iter().any(|f| !peer_is_healthy(f))
        {
            bad.push(format!(
                "num-other-sentinels={} flags={:?} (want {want} healthy peers)",
                get("num-other-sentinels"),
                self.sentinel_flags
            ));
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join(", "))
        }
    }
}

/// Whether a peer sentinel's flags (as `SENTINEL SENTINELS` lists them) are
/// those of a healthy peer: `sentinel`, or `sentinel,master_down`.
///
/// `master_down` is not the peer's health but its last answer about the
/// master. Valkey 9.1.2 keeps it — and the peer's vote — from the last
/// failover for over a minute (measured: still set 60 s after the failover
/// on the sentinel beside the promoted replica), where Redis and Valkey
/// 8.1.1 drop both within 5 s (Sentinel's ask period × 5). The failover
/// suite prints a NOTE when it sees one (`second_failover`).
pub fn peer_is_healthy(flags: &str) -> bool {
    flags == "sentinel" || flags == "sentinel,master_down"
}

/// Asks the sentinel of `node` for its view of the master.
pub async fn sentinel_view(t: &Topology, node: &Node) -> Result<SentinelView, String> {
    let addr = SocketAddrV4::new(node.ip, t.sentinel_port);
    let m = &t.master_name;
    let (master, replicas, sentinels) = tokio::join!(
        client::sentinel_master(addr, m),
        client::sentinel_list(addr, "REPLICAS", m),
        client::sentinel_list(addr, "SENTINELS", m)
    );
    let flags = |l: Vec<std::collections::BTreeMap<String, String>>| {
        l.into_iter()
            .map(|i| i.get("flags").cloned().unwrap_or_default())
            .collect()
    };
    Ok(SentinelView {
        master: master.map_err(|e| e.to_string())?,
        replica_flags: flags(replicas.map_err(|e| e.to_string())?),
        sentinel_flags: flags(sentinels.map_err(|e| e.to_string())?),
    })
}

/// The nodes whose sentinel is in TILT (`INFO sentinel`: `sentinel_tilt:1`).
/// A sentinel in TILT acts on nothing for 30 s after the last clock jump it
/// saw (forwards or back): healthy by `probe`, yet out of every quorum.
/// An unreachable sentinel is an error naming it.
pub async fn sentinels_in_tilt(t: &Topology) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for n in &t.nodes {
        let addr = SocketAddrV4::new(n.ip, t.sentinel_port);
        let info = client::info(addr, None, "sentinel")
            .await
            .map_err(|e| format!("sentinel of {}: {e}", n.name))?;
        if info.get("sentinel_tilt").is_some_and(|v| v == "1") {
            out.push(n.name.clone());
        }
    }
    Ok(out)
}

/// A new connection to the VIP answers `role:master` with `master`'s run id.
pub async fn vip_answers_as(t: &Topology, master: &Node) -> Result<(), String> {
    let pw = t.auth.as_ref().map(|a| a.password.as_str());
    let vip = SocketAddrV4::new(t.vip, t.redis_port);
    let direct = SocketAddrV4::new(master.ip, t.redis_port);
    let (via_vip, on_master) = tokio::join!(
        client::info(vip, pw, "everything"),
        client::info(direct, pw, "server")
    );
    let via_vip = via_vip.map_err(|e| format!("the VIP {vip} answers ({e})"))?;
    let want = on_master
        .map_err(|e| format!("{} answers INFO server ({e})", master.name))?
        .get("run_id")
        .cloned()
        .unwrap_or_default();
    let role = via_vip.get("role").cloned().unwrap_or_default();
    let got = via_vip.get("run_id").cloned().unwrap_or_default();
    if role == "master" && got == want {
        Ok(())
    } else {
        Err(format!(
            "the VIP answers as {} (role:{role}, run_id {got}, want role:master run_id {want})",
            master.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_master_down_is_a_healthy_peer_and_a_down_one_is_not() {
        assert!(peer_is_healthy("sentinel"));
        assert!(peer_is_healthy("sentinel,master_down"));
        for bad in [
            "s_down,sentinel",
            "sentinel,disconnected",
            "s_down,sentinel,disconnected,master_down",
            "",
        ] {
            assert!(!peer_is_healthy(bad), "{bad}");
        }
    }
}
