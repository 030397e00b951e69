//! nfnetlink_queue over a raw `AF_NETLINK`/`NETLINK_NETFILTER` socket, libc only.
//!
//! Wire format (linux/netlink.h, linux/netfilter/nfnetlink{,_queue}.h):
//! `nlmsghdr` (16 bytes, host order) + `nfgenmsg` (family, version 0, queue
//! number big-endian) + attributes (`nlattr` {len, type}, 4-byte aligned,
//! payloads big-endian). Message type = `NFNL_SUBSYS_QUEUE << 8 | msg`.
//!
//! The queue is configured by ONE config message carrying BIND, PARAMS
//! (copy mode + range), QUEUE_MAXLEN and FLAGS+MASK, so there is no window in
//! which packets meet a half-configured queue. Verdicts are per packet id and
//! may be sent in any order; several verdict messages are packed into one
//! datagram (the kernel processes each in turn).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CAP_LEN: u16 = 13;
const NFQA_SKB_INFO: u16 = 14;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `NFQA_CFG_F_FAIL_OPEN`: accept instead of drop when the queue is full.
pub const FLAG_FAIL_OPEN: u32 = 1;
/// `NFQA_CFG_F_GSO`: queue GSO packets whole instead of segmenting them first.
pub const FLAG_GSO: u32 = 4;
/// `NFQA_SKB_GSO` bit of `NFQA_SKB_INFO`.
pub const SKB_INFO_GSO: u32 = 2;

/// Netfilter verdicts (`NF_DROP`, `NF_ACCEPT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Drop = 0,
    Accept = 1,
}

/// Queue settings sent at bind time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub queue: u16,
    /// Bytes of each packet copied to us (from the network header).
    pub copy_range: u32,
    /// Packets the kernel holds for us at most.
    pub maxlen: u32,
    /// `FLAG_*` bits to set (all of FAIL_OPEN|GSO are written, the rest untouched).
    pub flags: u32,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn put_nlmsghdr(buf: &mut Vec<u8>, msg: u16, flags: u16, seq: u32, queue: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by finish()
    buf.extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg).to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // portid 0: the kernel
    buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]); // nfgenmsg family, version
    buf.extend_from_slice(&queue.to_be_bytes());
    start
}

fn put_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align4(buf.len()), 0);
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Appends the one config message (BIND + PARAMS + MAXLEN + MASK/FLAGS, ACK requested).
pub fn encode_config(buf: &mut Vec<u8>, seq: u32, cfg: &Config) {
    let start = put_nlmsghdr(
        buf,
        NFQNL_MSG_CONFIG,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        cfg.queue,
    );
    let pf = (libc::AF_INET as u16).to_be_bytes();
    put_attr(buf, NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, pf[0], pf[1]]);
    let mut params = cfg.copy_range.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_PACKET); // struct is packed: 5 bytes
    put_attr(buf, NFQA_CFG_PARAMS, &params);
    put_attr(buf, NFQA_CFG_QUEUE_MAXLEN, &cfg.maxlen.to_be_bytes());
    put_attr(
        buf,
        NFQA_CFG_MASK,
        &(FLAG_FAIL_OPEN | FLAG_GSO).to_be_bytes(),
    );
    put_attr(buf, NFQA_CFG_FLAGS, &cfg.flags.to_be_bytes());
    finish(buf, start);
}

/// Appends one verdict message (no ACK: the kernel reports failures anyway).
pub fn encode_verdict(buf: &mut Vec<u8>, seq: u32, queue: u16, id: u32, verdict: Verdict) {
    let start = put_nlmsghdr(buf, NFQNL_MSG_VERDICT, NLM_F_REQUEST, seq, queue);
    let mut hdr = (verdict as u32).to_be_bytes().to_vec();
    hdr.extend_from_slice(&id.to_be_bytes());
    put_attr(buf, NFQA_VERDICT_HDR, &hdr);
    finish(buf, start);
}

/// A queued packet as the kernel announced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub queue: u16,
    pub id: u32,
    pub hw_protocol: u16,
    pub hook: u8,
    /// The first `copy_range` bytes, from the network header on.
    pub payload: &'a [u8],
    /// Original length, present only when the payload was truncated.
    pub cap_len: Option<u32>,
    /// `NFQA_SKB_INFO` bits (0 when absent).
    pub skb_info: u32,
}

/// One message read from the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Packet(Packet<'a>),
    /// `NLMSG_ERROR`: `errno` 0 is an ACK; `seq` is the request's.
    Error {
        errno: i32,
        seq: u32,
    },
    Other {
        msg_type: u16,
    },
}

/// Iterates over the netlink messages of one datagram.
pub struct Messages<'a> {
    buf: &'a [u8],
}

/// Parses the netlink messages of one received datagram.
pub fn parse(buf: &[u8]) -> Messages<'_> {
    Messages { buf }
}

fn u16_ne(b: &[u8]) -> u16 {
    u16::from_ne_bytes([b[0], b[1]])
}
fn u32_ne(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}
fn u32_be(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_ne(self.buf) as usize;
        if len < NLMSG_HDRLEN || len > self.buf.len() {
            self.buf = &[];
            return Some(Err(format!("bad nlmsg length {len}")));
        }
        let (msg, rest) = self.buf.split_at(len);
        self.buf = rest.get(align4(len) - len..).unwrap_or(&[]);
        Some(decode(msg))
    }
}

fn decode(msg: &[u8]) -> Result<Message<'_>, String> {
    let msg_type = u16_ne(&msg[4..]);
    let seq = u32_ne(&msg[8..]);
    let body = &msg[NLMSG_HDRLEN..];
    if msg_type == NLMSG_ERROR {
        let err = body.get(..4).ok_or("short NLMSG_ERROR")?;
        return Ok(Message::Error {
            errno: -(u32_ne(err) as i32),
            seq,
        });
    }
    if msg_type != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
        return Ok(Message::Other { msg_type });
    }
    let queue = u16::from_be_bytes(body.get(2..4).ok_or("short nfgenmsg")?.try_into().unwrap());
    let mut pkt = Packet {
        queue,
        id: 0,
        hw_protocol: 0,
        hook: 0,
        payload: &[],
        cap_len: None,
        skb_info: 0,
    };
    let mut have_hdr = false;
    let mut attrs = &body[4..];
    while attrs.len() >= 4 {
        let alen = u16_ne(attrs) as usize;
        let ty = u16_ne(&attrs[2..]) & NLA_TYPE_MASK;
        if alen < 4 || alen > attrs.len() {
            return Err(format!("bad attribute length {alen}"));
        }
        let val = &attrs[4..alen];
        match ty {
            NFQA_PACKET_HDR if val.len() >= 7 => {
                pkt.id = u32_be(val).unwrap();
                pkt.hw_protocol = u16::from_be_bytes([val[4], val[5]]);
                pkt.hook = val[6];
                have_hdr = true;
            }
            NFQA_PAYLOAD => pkt.payload = val,
            NFQA_CAP_LEN => pkt.cap_len = u32_be(val),
            NFQA_SKB_INFO => pkt.skb_info = u32_be(val).unwrap_or(0),
            _ => {}
        }
        attrs = attrs.get(align4(alen)..).unwrap_or(&[]);
    }
    if !have_hdr {
        return Err("packet message without NFQA_PACKET_HDR".into());
    }
    Ok(Message::Packet(pkt))
}

/// Addresses and length read from a packet's network header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSummary {
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    /// Total length from the header (IPv4 total length, IPv6 40 + payload length).
    pub total_len: u32,
}

/// Reads src, dst and total length of an IPv4 or IPv6 header.
pub fn ip_summary(payload: &[u8]) -> Option<IpSummary> {
    match payload.first()? >> 4 {
        4 if payload.len() >= 20 => {
            let a: [u8; 4] = payload[12..16].try_into().ok()?;
            let b: [u8; 4] = payload[16..20].try_into().ok()?;
            Some(IpSummary {
                src: a.into(),
                dst: b.into(),
                total_len: u16::from_be_bytes([payload[2], payload[3]]).into(),
            })
        }
        6 if payload.len() >= 40 => {
            let a: [u8; 16] = payload[8..24].try_into().ok()?;
            let b: [u8; 16] = payload[24..40].try_into().ok()?;
            Some(IpSummary {
                src: a.into(),
                dst: b.into(),
                total_len: 40 + u32::from(u16::from_be_bytes([payload[4], payload[5]])),
            })
        }
        _ => None,
    }
}

/// A bound queue: the netlink socket.
pub struct Queue {
    fd: OwnedFd,
    cfg: Config,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Queue {
    /// Opens the socket in the current network namespace, binds and configures
    /// the queue, and waits for the kernel's ACK. Packets that arrive before
    /// the ACK are accepted at once.
    pub fn open(cfg: Config, rcvbuf: usize) -> io::Result<Queue> {
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        })?;
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        let salen = std::mem::size_of::<libc::sockaddr_nl>() as u32;
        cvt(unsafe { libc::bind(raw, &sa as *const _ as *const libc::sockaddr, salen) })?;
        let size = rcvbuf as libc::c_int;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            let p = &size as *const _ as *const libc::c_void;
            if unsafe { libc::setsockopt(raw, libc::SOL_SOCKET, opt, p, 4) } == 0 {
                break;
            }
        }
        let q = Queue { fd, cfg };
        let mut buf = Vec::new();
        encode_config(&mut buf, 1, &cfg);
        q.send(&buf)?;
        let mut rbuf = vec![0u8; 65_536];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let mut pfd = libc::pollfd {
                fd: raw,
                events: libc::POLLIN,
                revents: 0,
            };
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero()
                || cvt(unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) })? == 0
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no ACK for queue config",
                ));
            }
            let n = q.recv(&mut rbuf)?;
            let mut verdicts = Vec::new();
            let mut acked = None;
            for m in parse(&rbuf[..n]) {
                match m.map_err(io::Error::other)? {
                    Message::Packet(p) => {
                        encode_verdict(&mut verdicts, 0, cfg.queue, p.id, Verdict::Accept)
                    }
                    Message::Error { errno, seq: 1 } => acked = Some(errno),
                    _ => {}
                }
            }
            if !verdicts.is_empty() {
                q.send(&verdicts)?;
            }
            match acked {
                Some(0) => return Ok(q),
                Some(e) => return Err(io::Error::from_raw_os_error(e)),
                None => {}
            }
        }
    }

    /// The socket, for poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The configuration the queue was bound with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Receives one datagram without blocking (`WouldBlock` when none is there;
    /// `ENOBUFS` when the kernel could not deliver some messages).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let p = buf.as_mut_ptr() as *mut libc::c_void;
        let n = unsafe {
            libc::recv(
                self.fd(),
                p,
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize > buf.len() {
            return Err(io::Error::other(format!("datagram of {n} bytes truncated")));
        }
        Ok(n as usize)
    }

    /// Sends a buffer of one or more encoded messages to the kernel.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        let n = unsafe {
            libc::sendto(
                self.fd(),
                buf.as_ptr() as *const libc::c_void,
                buf.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(all(test, target_endian = "little"))]
#[path = "nfqueue_tests.rs"]
mod tests;
