//! Measuring a link from the outside: probes that run inside a node's
//! network namespace (a thread of this process enters it with `setns`, so
//! its sockets live there) and time real traffic.
//!
//! - [`tcp_rtt`]: Redis `PING`/`+PONG` round trips on one TCP connection —
//!   what a client sees (a delay at the prober's own INPUT included).
//! - [`udp_one_way`]: datagrams stamped with the monotonic clock (one kernel,
//!   one clock for every namespace) and received in another namespace: the
//!   delay of each direction on its own, and the share that never arrives.
//!
//! `ping` from a namespace sees only part of a delay served at that
//! namespace's INPUT: it stamps replies when they reach the device, before
//! the hook. These probes do not have that blind spot.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Runs `f` on a new thread inside the network namespace of process `pid`.
fn in_netns<T: Send + 'static>(
    pid: i64,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<std::thread::JoinHandle<std::io::Result<T>>> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    Ok(std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on an open namespace fd; it affects only this thread.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f()
    }))
}

fn joined<T>(h: std::thread::JoinHandle<std::io::Result<T>>, what: &str) -> Result<T> {
    h.join()
        .map_err(|_| Error::State(format!("the {what} probe thread panicked")))?
        .map_err(|e| Error::command(what.to_string(), e.to_string()))
}

/// `count` Redis `PING` round trips from `pid`'s namespace to `addr` (ms),
/// on one connection, `gap` apart.
pub async fn tcp_rtt(
    pid: i64,
    addr: SocketAddrV4,
    count: usize,
    gap: Duration,
) -> Result<Vec<f64>> {
    let h = in_netns(pid, move || {
        let mut s = std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut out = Vec::with_capacity(count);
        let mut buf = [0u8; 64];
        for _ in 0..count {
            let t = Instant::now();
            s.write_all(b"PING\r\n")?;
            let mut got = 0;
            while !buf[..got].ends_with(b"\r\n") {
                let k = s.read(&mut buf[got..])?;
                if k == 0 {
                    return Err(std::io::Error::other("the server closed the connection"));
                }
                got += k;
            }
            out.push(t.elapsed().as_secs_f64() * 1000.0);
            std::thread::sleep(gap);
        }
        Ok(out)
    })?;
    tokio::task::spawn_blocking(move || joined(h, "tcp rtt"))
        .await
        .map_err(|e| Error::State(format!("probe task: {e}")))?
}

/// Seconds from sending a `SET` of `bytes` from `pid`'s namespace to
/// `addr` until the server's answer: a transfer through the link's caps.
pub async fn tcp_transfer(pid: i64, addr: SocketAddrV4, bytes: usize) -> Result<f64> {
    let h = in_netns(pid, move || {
        let mut s = std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        let key = "probe:transfer";
        let head = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${bytes}\r\n", key.len());
        let mut cmd = head.into_bytes();
        cmd.extend(std::iter::repeat_n(b'x', bytes));
        cmd.extend(b"\r\n");
        let start = Instant::now();
        s.write_all(&cmd)?;
        let mut buf = [0u8; 128];
        if s.read(&mut buf)? == 0 {
            return Err(std::io::Error::other("no answer"));
        }
        Ok(start.elapsed().as_secs_f64())
    })?;
    tokio::task::spawn_blocking(move || joined(h, "tcp transfer"))
        .await
        .map_err(|e| Error::State(format!("probe task: {e}")))?
}

/// CPU time (user + system) `pid` has used so far, seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks as f64 / hz)
}

/// What [`udp_one_way`] saw.
#[derive(Debug, Clone)]
pub struct OneWay {
    pub sent: usize,
    /// One-way delay of each datagram that arrived, ms.
    pub delays_ms: Vec<f64>,
}

impl OneWay {
    /// The share of datagrams that never arrived, %.
    pub fn loss_percent(&self) -> f64 {
        100.0 * (self.sent - self.delays_ms.len()) as f64 / self.sent.max(1) as f64
    }
}

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sends `count` stamped datagrams, `gap` apart, from `from_pid`'s namespace
/// to `to` (an address of `to_pid`'s namespace, port free there), and
/// receives them there.
pub async fn udp_one_way(
    from_pid: i64,
    to_pid: i64,
    to: SocketAddrV4,
    count: usize,
    gap: Duration,
) -> Result<OneWay> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let settle = Duration::from_secs(2);
    let rx = in_netns(to_pid, move || {
        let s = UdpSocket::bind(to)?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        let _ = ready_tx.send(());
        let mut delays = Vec::new();
        let mut buf = [0u8; 64];
        // all of them, the longest delay, the end marks: then it is over
        let deadline = Instant::now() + gap * count as u32 + settle * 3;
        loop {
            if Instant::now() > deadline {
                break;
            }
            match s.recv(&mut buf) {
                Ok(n) if n >= 16 => {
                    let sent = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
                    if u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")) == u64::MAX {
                        break;
                    }
                    delays.push(mono_ns().saturating_sub(sent) as f64 / 1e6);
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(delays)
    })?;
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| Error::State("the UDP receiver did not start".into()))?;
    let tx = in_netns(from_pid, move || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        // paced by the clock, not by sleeps that add up: `gap` apart on average
        let start = Instant::now();
        for i in 0..count as u64 {
            let mut msg = [0u8; 16];
            msg[..8].copy_from_slice(&i.to_le_bytes());
            msg[8..].copy_from_slice(&mono_ns().to_le_bytes());
            s.send_to(&msg, to)?;
            let next = start + gap * (i as u32 + 1);
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
        // what is still held arrives within the longest delay; then the end
        std::thread::sleep(settle);
        let mut end = [0u8; 16];
        end[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        for _ in 0..20 {
            s.send_to(&end, to)?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })?;
    let delays = tokio::task::spawn_blocking(move || {
        joined(tx, "udp sender")?;
        joined(rx, "udp receiver")
    })
    .await
    .map_err(|e| Error::State(format!("probe task: {e}")))??;
    Ok(OneWay {
        sent: count,
        delays_ms: delays,
    })
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The `q`-quantile of `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 0.5), 50.0);
    }

    #[tokio::test]
    async fn one_way_probes_measure_this_namespace_too() {
        // no delay at all between two sockets of this process's namespace:
        // every datagram arrives, each within a few ms
        let me = std::process::id() as i64;
        let port = 40000 + (std::process::id() % 20000) as u16;
        let to = SocketAddrV4::new("127.0.0.1".parse().unwrap(), port);
        let r = udp_one_way(me, me, to, 50, Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(r.loss_percent(), 0.0);
        assert!(median(&r.delays_ms) < 5.0, "{r:?}");
    }
}
