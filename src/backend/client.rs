//! Short-lived redis-rs connections from the host to nodes, sentinels and the
//! VIP, and parsers for what they answer (INFO, SENTINEL MASTER, ...).
//!
//! Every call opens a fresh connection with short timeouts: a killed or
//! frozen node must make a query fail fast, never hang a wait loop, and a new
//! connection to the VIP is what proves where the VIP points.

use crate::error::{Error, Result};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::Duration;

/// Connect timeout for polling; a node that is gone answers nothing at all.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(400);
/// Response timeout for polling.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);

/// A `redis://` URL for `addr` with an optional password.
pub fn url(addr: SocketAddrV4, password: Option<&str>) -> String {
    match password {
        Some(p) => format!("redis://:{p}@{addr}/"),
        None => format!("redis://{addr}/"),
    }
}

/// Opens a new connection to `addr`.
pub async fn connect(addr: SocketAddrV4, password: Option<&str>) -> Result<MultiplexedConnection> {
    let client =
        redis::Client::open(url(addr, password)).map_err(|e| Error::redis(addr, "client", e))?;
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .map_err(|e| Error::redis(addr, "connect", e))
}

/// Runs one command on a fresh connection.
pub async fn query<T: redis::FromRedisValue>(
    addr: SocketAddrV4,
    password: Option<&str>,
    cmd: &redis::Cmd,
) -> Result<T> {
    let mut c = connect(addr, password).await?;
    let what = String::from_utf8_lossy(&cmd.get_packed_command())
        .split("\r\n")
        .filter(|s| !s.starts_with(['*', '$']) && !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    cmd.query_async(&mut c)
        .await
        .map_err(|e| Error::redis(addr, what, e))
}

/// `INFO <section>` parsed into key/value pairs.
pub async fn info(
    addr: SocketAddrV4,
    password: Option<&str>,
    section: &str,
) -> Result<BTreeMap<String, String>> {
    let text: String = query(addr, password, redis::cmd("INFO").arg(section)).await?;
    Ok(parse_info(&text))
}

/// Parses INFO text (`key:value` lines, `# Section` headers ignored).
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `SENTINEL MASTER <name>` as key/value pairs.
pub async fn sentinel_master(
    addr: SocketAddrV4,
    master_name: &str,
) -> Result<BTreeMap<String, String>> {
    query(
        addr,
        None,
        redis::cmd("SENTINEL").arg("MASTER").arg(master_name),
    )
    .await
}

/// `SENTINEL REPLICAS|SENTINELS <name>`: one map per instance.
pub async fn sentinel_list(
    addr: SocketAddrV4,
    what: &str,
    master_name: &str,
) -> Result<Vec<BTreeMap<String, String>>> {
    query(
        addr,
        None,
        redis::cmd("SENTINEL").arg(what).arg(master_name),
    )
    .await
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME <name>`.
pub async fn master_addr(addr: SocketAddrV4, master_name: &str) -> Result<SocketAddrV4> {
    let (ip, port): (String, u16) = query(
        addr,
        None,
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(master_name),
    )
    .await?;
    let ip = ip.parse().map_err(|_| {
        Error::State(format!(
            "sentinel {addr} reported a master address `{ip}` that is not IPv4"
        ))
    })?;
    Ok(SocketAddrV4::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_parsing_skips_headers_and_keeps_values_with_colons() {
        let m = parse_info("# Replication\r\nrole:master\r\nslave0:ip=1.2.3.4,port=6379\r\n\r\n");
        assert_eq!(m["role"], "master");
        assert_eq!(m["slave0"], "ip=1.2.3.4,port=6379");
        assert_eq!(m.len(), 2);
    }
}
