//! Where each impairment goes, decided purely from the topology:
//!
//! - delay, jitter, loss, flap from X to Y: a rule of the `testbed-netem`
//!   daemon in the namespace of the node that *receives* (Y's INPUT, matched
//!   on X's address), because a packet held at the sender's OUTPUT still
//!   counts against its socket's TCP Small Queues budget and throttles TCP
//!   to ~2 packets per delay (measured); only traffic *to the host* is held
//!   at the sending node's OUTPUT (the host's own netfilter is never touched);
//! - rate from X to Y: an htb class on X's egress (the node's `eth0` inside
//!   its namespace, or the host's shim — a link the testbed made) for Y's
//!   address, in the kernel.

use super::netem::rules::{Effect, Rule};
use crate::model::topology::Topology;
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The NFQUEUE number every daemon binds (queues are per namespace).
pub const QUEUE: u16 = 4242;

/// What an impaired direction of a link suffers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Impairment {
    /// Every packet held `ms` ± uniform `jitter_ms` (so they may reorder).
    Delay { ms: u64, jitter_ms: u64 },
    /// Each packet dropped with this probability.
    Loss { percent: f64 },
    /// A bandwidth cap (htb), in kbit/s.
    Rate { kbit: u64 },
    /// Passed for `up_ms`, dropped for `down_ms`, over and over.
    Flap { up_ms: u64, down_ms: u64 },
}

impl Impairment {
    /// The impairment an action of `delay`, `loss`, `rate` or `flap` asks for.
    pub fn of(a: &crate::model::action::Action) -> Option<Impairment> {
        use crate::model::action::Action;
        Some(match *a {
            Action::Delay { ms, jitter_ms, .. } => Impairment::Delay { ms, jitter_ms },
            Action::Loss { percent, .. } => Impairment::Loss { percent },
            Action::Rate { kbit, .. } => Impairment::Rate { kbit },
            Action::Flap { up_ms, down_ms, .. } => Impairment::Flap { up_ms, down_ms },
            _ => return None,
        })
    }

    /// Checks the parameters; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        use super::netem::rules::MAX_DELAY_MS as MAX;
        match *self {
            Impairment::Delay { ms, jitter_ms } if ms > MAX || jitter_ms > MAX => {
                Err(format!("delay and jitter are at most {MAX} ms"))
            }
            Impairment::Delay { ms, jitter_ms } if jitter_ms > ms => Err(format!(
                "jitter {jitter_ms} ms is more than the delay {ms} ms (a packet cannot leave before it was sent)"
            )),
            Impairment::Delay { ms: 0, jitter_ms: 0 } => Err("a delay of 0 ms does nothing".into()),
            Impairment::Loss { percent } if !(percent > 0.0 && percent <= 100.0) => Err(format!(
                "loss of {percent} %: give a percentage above 0 and at most 100"
            )),
            Impairment::Rate { kbit } if !(8..=10_000_000).contains(&kbit) => Err(format!(
                "a rate of {kbit} kbit/s: give 8 kbit/s to 10 Gbit/s (10000000)"
            )),
            Impairment::Flap { up_ms, down_ms } if up_ms == 0 || down_ms == 0 => Err(format!(
                "flap up {up_ms} ms / down {down_ms} ms: both must be more than 0"
            )),
            _ => Ok(()),
        }
    }

    /// The same kind of impairment (a new one replaces the old one of its
    /// kind on a link).
    fn same_kind(&self, other: &Impairment) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// The daemon's effect (`None` for rate, which is the kernel's).
    fn effect(&self) -> Option<Effect> {
        match *self {
            Impairment::Delay { ms, jitter_ms } => Some(Effect::Delay { ms, jitter_ms }),
            Impairment::Loss { percent } => Some(Effect::Loss { percent }),
            Impairment::Flap { up_ms, down_ms } => Some(Effect::Flap {
                up_ms,
                down_ms,
                phase_ms: 0,
            }),
            Impairment::Rate { .. } => None,
        }
    }

    fn from_effect(e: &Effect) -> Impairment {
        match *e {
            Effect::Delay { ms, jitter_ms } => Impairment::Delay { ms, jitter_ms },
            Effect::Loss { percent } => Impairment::Loss { percent },
            Effect::Flap { up_ms, down_ms, .. } => Impairment::Flap { up_ms, down_ms },
        }
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Impairment::Delay { ms, jitter_ms: 0 } => write!(f, "delay {ms} ms"),
            Impairment::Delay { ms, jitter_ms } => write!(f, "delay {ms} ms ± {jitter_ms} ms"),
            Impairment::Loss { percent } => write!(f, "loss {percent} %"),
            Impairment::Rate { kbit } => write!(f, "rate {kbit} kbit/s"),
            Impairment::Flap { up_ms, down_ms } => {
                write!(f, "flap up {up_ms} ms / down {down_ms} ms")
            }
        }
    }
}

/// One end of a link: a node, or the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum End {
    Node(String),
    Host,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Node(n) => f.write_str(n),
            End::Host => f.write_str("host"),
        }
    }
}

/// One impairment in force on one direction of a link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impaired {
    pub from: End,
    pub to: End,
    pub what: Impairment,
}

impl fmt::Display for Impaired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}: {}", self.from, self.to, self.what)
    }
}

/// Where an impairment is served.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// A rule of the daemon in `node`'s namespace; packets are steered to it
    /// by `hook`.
    Queue {
        node: String,
        hook: Hook,
        rule: Rule,
    },
    /// An htb class for `dst` on the egress of `on`.
    Shape { on: End, dst: Ipv4Addr, kbit: u64 },
}

/// Which packets a node's steering rule sends to its daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    /// INPUT, from this source.
    From(Ipv4Addr),
    /// OUTPUT, to this destination (only the host's shim).
    To(Ipv4Addr),
}

/// The address of an end.
pub fn ip(t: &Topology, e: &End) -> Result<Ipv4Addr, String> {
    match e {
        End::Host => Ok(t.shim_ip()),
        End::Node(n) => t
            .node(n)
            .map(|n| n.ip)
            .ok_or_else(|| format!("no node `{n}`")),
    }
}

/// The end an address belongs to.
pub fn end_of(t: &Topology, ip: Ipv4Addr) -> Option<End> {
    if ip == t.shim_ip() {
        return Some(End::Host);
    }
    t.node_by_ip(ip).map(|n| End::Node(n.name.clone()))
}

/// Where `i` is served (pure).
pub fn place(t: &Topology, i: &Impaired) -> Result<Placement, String> {
    let (from, to) = (ip(t, &i.from)?, ip(t, &i.to)?);
    if i.from == i.to || (i.from == End::Host && i.to == End::Host) {
        return Err(format!("{} -> {}: a link needs two ends", i.from, i.to));
    }
    if let Impairment::Rate { kbit } = i.what {
        return Ok(Placement::Shape {
            on: i.from.clone(),
            dst: to,
            kbit,
        });
    }
    let effect = i.what.effect().expect("only rate has no effect");
    Ok(match &i.to {
        End::Node(n) => Placement::Queue {
            node: n.clone(),
            hook: Hook::From(from),
            rule: Rule {
                name: Some(format!("{} {}->{}", i.what, i.from, i.to)),
                src: Some(IpAddr::V4(from)),
                dst: None,
                effect,
            },
        },
        End::Host => {
            let End::Node(n) = &i.from else {
                unreachable!("host -> host was refused above");
            };
            Placement::Queue {
                node: n.clone(),
                hook: Hook::To(to),
                rule: Rule {
                    name: Some(format!("{} {}->host", i.what, n)),
                    src: None,
                    dst: Some(IpAddr::V4(to)),
                    effect,
                },
            }
        }
    })
}

/// The impairment a daemon rule of `node` stands for.
pub fn from_rule(t: &Topology, node: &str, r: &Rule) -> Option<Impaired> {
    let what = Impairment::from_effect(&r.effect);
    let v4 = |a: &Option<IpAddr>| match a {
        Some(IpAddr::V4(ip)) => Some(*ip),
        _ => None,
    };
    match (v4(&r.src), v4(&r.dst)) {
        (Some(src), None) => Some(Impaired {
            from: end_of(t, src)?,
            to: End::Node(node.to_string()),
            what,
        }),
        (None, Some(dst)) => Some(Impaired {
            from: End::Node(node.to_string()),
            to: end_of(t, dst)?,
            what,
        }),
        _ => None,
    }
}

/// `rules` with `new` in place of a rule of the same kind on the same link.
pub fn merged(rules: &[Rule], new: Rule) -> Vec<Rule> {
    let kind = Impairment::from_effect(&new.effect);
    let mut out: Vec<Rule> = rules
        .iter()
        .filter(|r| {
            !(r.src == new.src
                && r.dst == new.dst
                && Impairment::from_effect(&r.effect).same_kind(&kind))
        })
        .cloned()
        .collect();
    out.push(new);
    out
}

/// The steering rules `rules` need (one per source or destination).
pub fn hooks(rules: &[Rule]) -> Vec<Hook> {
    let mut out: Vec<Hook> = rules
        .iter()
        .filter_map(|r| match (&r.src, &r.dst) {
            (Some(IpAddr::V4(s)), None) => Some(Hook::From(*s)),
            (None, Some(IpAddr::V4(d))) => Some(Hook::To(*d)),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Topology {
        Topology::default_topology()
    }

    fn link(from: &str, to: &str, what: Impairment) -> Impaired {
        let end = |s: &str| {
            if s == "host" {
                End::Host
            } else {
                End::Node(s.into())
            }
        };
        Impaired {
            from: end(from),
            to: end(to),
            what,
        }
    }

    #[test]
    fn delays_are_served_at_the_receiver_and_rates_at_the_sender() {
        let d = Impairment::Delay {
            ms: 50,
            jitter_ms: 5,
        };
        let p = place(&t(), &link("node1", "node2", d)).unwrap();
        let Placement::Queue { node, hook, rule } = p else {
            panic!("{p:?}")
        };
        assert_eq!(node, "node2");
        assert_eq!(hook, Hook::From("198.18.0.11".parse().unwrap()));
        assert_eq!(
            from_rule(&t(), &node, &rule).unwrap(),
            link("node1", "node2", d)
        );
        // from the host: at the node's INPUT, matched on the shim's address
        let p = place(&t(), &link("host", "node1", d)).unwrap();
        assert!(
            matches!(p, Placement::Queue { ref node, hook: Hook::From(ip), .. } if node == "node1" && ip == t().shim_ip())
        );
        // to the host: at the node's OUTPUT (the host's netfilter is not touched)
        let p = place(&t(), &link("node3", "host", d)).unwrap();
        let Placement::Queue { node, hook, rule } = p else {
            panic!()
        };
        assert_eq!((node.as_str(), hook), ("node3", Hook::To(t().shim_ip())));
        assert_eq!(
            from_rule(&t(), "node3", &rule).unwrap(),
            link("node3", "host", d)
        );
        let r = Impairment::Rate { kbit: 800 };
        assert_eq!(
            place(&t(), &link("host", "node2", r)).unwrap(),
            Placement::Shape {
                on: End::Host,
                dst: "198.18.0.12".parse().unwrap(),
                kbit: 800
            }
        );
        assert!(place(&t(), &link("host", "host", d)).is_err());
        assert!(place(&t(), &link("node1", "node1", d)).is_err());
    }

    #[test]
    fn a_new_impairment_replaces_the_same_kind_on_the_same_link_only() {
        let rule = |what: Impairment, from: &str| {
            let Placement::Queue { rule, .. } = place(&t(), &link(from, "node2", what)).unwrap()
            else {
                panic!()
            };
            rule
        };
        let d1 = rule(
            Impairment::Delay {
                ms: 10,
                jitter_ms: 0,
            },
            "node1",
        );
        let d2 = rule(
            Impairment::Delay {
                ms: 99,
                jitter_ms: 0,
            },
            "node1",
        );
        let l = rule(Impairment::Loss { percent: 5.0 }, "node1");
        let d3 = rule(
            Impairment::Delay {
                ms: 10,
                jitter_ms: 0,
            },
            "node3",
        );
        let set = merged(&merged(&merged(&[], d1), l.clone()), d3.clone());
        let set = merged(&set, d2.clone());
        assert_eq!(set, vec![l, d3, d2]);
        assert_eq!(hooks(&set).len(), 2, "one steering rule per source");
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = [
            (
                Impairment::Delay {
                    ms: 10,
                    jitter_ms: 20,
                },
                "jitter 20 ms is more than",
            ),
            (
                Impairment::Delay {
                    ms: 0,
                    jitter_ms: 0,
                },
                "does nothing",
            ),
            (Impairment::Loss { percent: 101.0 }, "at most 100"),
            (Impairment::Loss { percent: 0.0 }, "above 0"),
            (Impairment::Rate { kbit: 0 }, "8 kbit/s"),
            (
                Impairment::Flap {
                    up_ms: 0,
                    down_ms: 5,
                },
                "more than 0",
            ),
        ];
        for (i, want) in bad {
            assert!(i.validate().unwrap_err().contains(want), "{i:?}");
        }
        assert!(Impairment::Delay {
            ms: 10,
            jitter_ms: 10
        }
        .validate()
        .is_ok());
    }
}
