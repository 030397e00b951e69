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

/// The connection info for `addr`, built field by field (no URL: a password
/// with `/`, `#` or `%` needs no escaping).
pub fn connection_info(addr: SocketAddrV4, password: Option<&str>) -> redis::ConnectionInfo {
    use redis::IntoConnectionInfo;
    let info = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
        .into_connection_info()
        .expect("a TCP address is a connection info");
    match password {
        Some(p) => info.set_redis_settings(redis::RedisConnectionInfo::default().set_password(p)),
        None => info,
    }
}

/// Opens a new connection to `addr` with the polling timeouts.
pub async fn connect(addr: SocketAddrV4, password: Option<&str>) -> Result<MultiplexedConnection> {
    connect_with(addr, password, RESPONSE_TIMEOUT).await
}

/// Opens a new connection that waits up to `response` for each answer (the
/// connect timeout is always [`CONNECT_TIMEOUT`]).
pub async fn connect_with(
    addr: SocketAddrV4,
    password: Option<&str>,
    response: Duration,
) -> Result<MultiplexedConnection> {
    let client = redis::Client::open(connection_info(addr, password))
        .map_err(|e| Error::redis(addr, "client", e))?;
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response));
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
    query_waiting(addr, password, cmd, RESPONSE_TIMEOUT).await
}

/// Like [`query`], waiting up to `response` for the answer (a command that
/// blocks on purpose, such as `DEBUG SLEEP`).
pub async fn query_waiting<T: redis::FromRedisValue>(
    addr: SocketAddrV4,
    password: Option<&str>,
    cmd: &redis::Cmd,
    response: Duration,
) -> Result<T> {
    let mut c = connect_with(addr, password, response).await?;
    cmd.query_async(&mut c)
        .await
        .map_err(|e| Error::redis(addr, command_text(cmd), e))
}

/// The words of a command, for messages.
fn command_text(cmd: &redis::Cmd) -> String {
    String::from_utf8_lossy(&cmd.get_packed_command())
        .split("\r\n")
        .filter(|s| !s.starts_with(['*', '$']) && !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A redis-rs sentinel-aware client over `sentinels` (asked in that order)
/// for `master_name`. Every socket is bounded by TCP_USER_TIMEOUT
/// `user_timeout`: without it a sentinel whose host vanished (black-holed,
/// not refused) stalls every lookup, because redis-rs takes the sentinels'
/// answers in order.
pub fn sentinel_client(
    sentinels: &[SocketAddrV4],
    master_name: &str,
    password: Option<&str>,
    user_timeout: Duration,
) -> Result<redis::sentinel::SentinelClient> {
    let tcp = redis::io::tcp::TcpSettings::default().set_user_timeout(user_timeout);
    let infos: Vec<redis::ConnectionInfo> = sentinels
        .iter()
        .map(|a| connection_info(*a, None).set_tcp_settings(tcp.clone()))
        .collect();
    let mut node = redis::sentinel::SentinelNodeConnectionInfo::default().set_tcp_settings(tcp);
    if let Some(p) = password {
        node =
            node.set_redis_connection_info(redis::RedisConnectionInfo::default().set_password(p));
    }
    let first = sentinels
        .first()
        .copied()
        .ok_or_else(|| Error::State("a sentinel client needs at least one sentinel".into()))?;
    redis::sentinel::SentinelClient::build(
        infos,
        master_name.to_string(),
        Some(node),
        redis::sentinel::SentinelServerType::Master,
    )
    .map_err(|e| Error::redis(first, "sentinel client", e))
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
    fn a_password_with_url_characters_is_kept_as_is() {
        let addr = "198.18.0.11:6379".parse().unwrap();
        let info = connection_info(addr, Some("p/a#s%25w"));
        assert_eq!(info.redis_settings().password(), Some("p/a#s%25w"));
        assert_eq!(
            info.addr(),
            &redis::ConnectionAddr::Tcp("198.18.0.11".into(), 6379)
        );
        let cmd = redis::cmd("SENTINEL").arg("MASTER").arg("m").clone();
        assert_eq!(command_text(&cmd), "SENTINEL MASTER m");
    }

    #[test]
    fn info_parsing_skips_headers_and_keeps_values_with_colons() {
        let m = parse_info("# Replication\r\nrole:master\r\nslave0:ip=1.2.3.4,port=6379\r\n\r\n");
        assert_eq!(m["role"], "master");
        assert_eq!(m["slave0"], "ip=1.2.3.4,port=6379");
        assert_eq!(m.len(), 2);
    }
}
