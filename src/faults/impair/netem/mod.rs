//! The `testbed-netem` daemon: packet delay, jitter, loss and flapping for
//! links between network namespaces, without `sch_netem`: packets are steered with iptables
//! `-j NFQUEUE --queue-bypass` into a userspace daemon that holds them and
//! issues verdicts.
//!
//! Where to steer packets (measured, see RESULTS.md):
//! - Delay/jitter for TCP belongs on the RECEIVER's side: `iptables -A INPUT -s PEER/32
//!   -j NFQUEUE --queue-num N --queue-bypass` in the receiver's namespace, rule
//!   `{"src": PEER, "dst": SELF, ...}`. Held in the sender's OUTPUT, a packet still
//!   counts against the socket's TCP Small Queues budget (~2 packets), so a 50 ms egress
//!   delay caps a TCP flow at ~2 segments per 50 ms (0.6 Mbit/s measured).
//! - Loss and flap work on either side (a DROP frees the packet at once).
//! - `ping` stamps replies when they reach the device, before INPUT: an ingress delay on
//!   the pinger's own side is invisible to ping (not to applications).
//!
//! - [`nfqueue`]: the nfnetlink_queue protocol over a raw netlink socket (libc only).
//! - [`rules`]: the pure rule table (JSON format, matching, composition).
//! - [`rng`]: the seeded PRNG all random choices come from.
//! - [`cli`]: the `testbed-netem` command line.
//! - [`daemon`]: the `testbed-netem` event loop (setns, signals, timer heap).
//! - [`sys`]: thin libc wrappers used by the daemon (ppoll, signalfd, pidfd, setns).

pub mod cli;
pub mod daemon;
pub mod nfqueue;
pub mod rng;
pub mod rules;
pub mod sys;
