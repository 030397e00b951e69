//! Byte fixtures for the nfnetlink_queue encoding (little-endian hosts).

use super::*;

#[rustfmt::skip]
const CONFIG_Q7: [u8; 64] = [
    0x40, 0, 0, 0,  0x02, 0x03,  0x05, 0x00,  1, 0, 0, 0,  0, 0, 0, 0, // nlmsghdr: len 64, type 3<<8|2, REQUEST|ACK, seq 1
    0x00, 0x00, 0x00, 0x07,                                         // nfgenmsg: AF_UNSPEC, v0, queue 7 (BE)
    0x08, 0, 0x01, 0,  1, 0, 0x00, 0x02,                            // CFG_CMD: BIND, pf AF_INET (BE)
    0x09, 0, 0x02, 0,  0, 0, 0, 64, 2, 0, 0, 0,                     // CFG_PARAMS: range 64, COPY_PACKET, pad
    0x08, 0, 0x03, 0,  0, 0, 0x04, 0x00,                            // CFG_QUEUE_MAXLEN 1024
    0x08, 0, 0x04, 0,  0, 0, 0, 0x05,                               // CFG_MASK FAIL_OPEN|GSO
    0x08, 0, 0x05, 0,  0, 0, 0, 0x05,                               // CFG_FLAGS FAIL_OPEN|GSO
];

#[rustfmt::skip]
const VERDICT_ACCEPT: [u8; 32] = [
    0x20, 0, 0, 0,  0x01, 0x03,  0x01, 0x00,  9, 0, 0, 0,  0, 0, 0, 0, // len 32, type 3<<8|1, REQUEST, seq 9
    0x00, 0x00, 0x00, 0x07,
    0x0c, 0, 0x02, 0,  0, 0, 0, 1,  0x01, 0x02, 0x03, 0x04,          // VERDICT_HDR: NF_ACCEPT, id 0x01020304
];

#[rustfmt::skip]
const PACKET_42: [u8; 80] = [
    0x50, 0, 0, 0,  0x00, 0x03,  0, 0,  0, 0, 0, 0,  0, 0, 0, 0,        // len 80, type 3<<8|0
    0x02, 0x00, 0x00, 0x07,                                         // AF_INET, v0, queue 7
    0x0b, 0, 0x01, 0,  0, 0, 0, 42,  0x08, 0x00,  3,  0,              // PACKET_HDR: id 42, ETH_P_IP, hook LOCAL_OUT, pad
    0x08, 0, 0x0e, 0,  0, 0, 0, 2,                                  // SKB_INFO: GSO
    0x08, 0, 0x0d, 0,  0, 0, 0x05, 0xdc,                            // CAP_LEN 1500
    0x18, 0, 0x0a, 0,                                               // PAYLOAD, 20 bytes: IPv4 header
    0x45, 0, 0x05, 0xdc,  0, 0, 0x40, 0,  64, 6, 0, 0,  198, 18, 250, 1,  198, 18, 250, 2,
    0x08, 0, 0x06, 0,  0, 0, 0, 3,                                  // IFINDEX_OUTDEV (ignored)
];

#[rustfmt::skip]
const ACK_SEQ1: [u8; 36] = [
    0x24, 0, 0, 0,  0x02, 0x00,  0x00, 0x01,  1, 0, 0, 0,  0x10, 0, 0, 0, // NLMSG_ERROR, CAPPED, seq 1
    0, 0, 0, 0,                                                       // error 0 = ACK
    0x40, 0, 0, 0,  0x02, 0x03,  0x05, 0x00,  1, 0, 0, 0,  0, 0, 0, 0,  // the request's header
];

#[test]
fn encodes_config() {
    let mut buf = Vec::new();
    let cfg = Config {
        queue: 7,
        copy_range: 64,
        maxlen: 1024,
        flags: FLAG_FAIL_OPEN | FLAG_GSO,
    };
    encode_config(&mut buf, 1, &cfg);
    assert_eq!(buf, CONFIG_Q7);
}

#[test]
fn encodes_verdicts_back_to_back() {
    let mut buf = Vec::new();
    encode_verdict(&mut buf, 9, 7, 0x0102_0304, Verdict::Accept);
    assert_eq!(buf, VERDICT_ACCEPT);
    encode_verdict(&mut buf, 10, 7, 5, Verdict::Drop);
    assert_eq!(buf.len(), 64);
    assert_eq!(&buf[32 + 24..32 + 28], &[0, 0, 0, 0], "NF_DROP");
    assert_eq!(&buf[32 + 28..], &[0, 0, 0, 5]);
}

#[test]
fn decodes_packet() {
    let msgs: Vec<_> = parse(&PACKET_42).collect();
    assert_eq!(msgs.len(), 1);
    let Ok(Message::Packet(p)) = msgs[0] else {
        panic!("{:?}", msgs[0])
    };
    assert_eq!((p.queue, p.id, p.hw_protocol, p.hook), (7, 42, 0x0800, 3));
    assert_eq!(p.cap_len, Some(1500));
    assert_eq!(p.skb_info & SKB_INFO_GSO, SKB_INFO_GSO);
    assert_eq!(p.payload.len(), 20);
    let ip = ip_summary(p.payload).unwrap();
    assert_eq!(ip.src, "198.18.250.1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(ip.dst, "198.18.250.2".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(ip.total_len, 1500);
}

#[test]
fn decodes_ack_then_packet_in_one_datagram() {
    let mut buf = ACK_SEQ1.to_vec();
    buf.extend_from_slice(&PACKET_42);
    let msgs: Vec<_> = parse(&buf).map(Result::unwrap).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0], Message::Error { errno: 0, seq: 1 });
    assert!(matches!(msgs[1], Message::Packet(Packet { id: 42, .. })));
}

#[test]
fn decodes_error_errno() {
    let mut buf = ACK_SEQ1;
    buf[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
    let m: Vec<_> = parse(&buf).collect();
    assert_eq!(
        m,
        vec![Ok(Message::Error {
            errno: libc::EPERM,
            seq: 1
        })]
    );
}

#[test]
fn rejects_malformed() {
    // nlmsg length beyond the datagram
    let mut bad = PACKET_42;
    bad[0] = 0x60;
    assert!(parse(&bad).next().unwrap().is_err());
    // attribute length beyond the message
    let mut bad = PACKET_42;
    bad[20] = 0x7f;
    assert!(parse(&bad).next().unwrap().is_err());
    // packet message without PACKET_HDR
    let mut bad = PACKET_42;
    bad[22] = 0x09; // turn PACKET_HDR into HWADDR
    assert!(parse(&bad).next().unwrap().is_err());
    // a short tail is not a message
    assert_eq!(parse(&[0u8; 10]).count(), 0);
}

#[test]
fn ip_summary_v6_and_garbage() {
    let mut v6 = [0u8; 40];
    v6[0] = 0x60;
    v6[4..6].copy_from_slice(&100u16.to_be_bytes());
    v6[23] = 1;
    v6[39] = 2;
    let s = ip_summary(&v6).unwrap();
    assert_eq!(s.src, "::1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(s.dst, "::2".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(s.total_len, 140);
    assert_eq!(ip_summary(&[0x45; 10]), None);
    assert_eq!(ip_summary(&[]), None);
    assert_eq!(ip_summary(&[0x10; 40]), None);
}
