//! The soak's schedule: an endless, seeded sequence of faults, each with how
//! long it is held and the repair that ends it — the combined nemesis of
//! Jepsen (kill, pause, partition, clock, plus this testbed's link
//! impairments). Pure: the same seed gives the same sequence, and which node
//! a fault hits is decided from the roles of the moment it is applied
//! (`master`, "the k-th replica", "the k-th node"), so a schedule replays on
//! any testbed of the same size.

use serde::Serialize;
use testbed::faults::impair::netem::rng::SplitMix64;
use testbed::faults::{Action, Direction, Process, Target};

/// What a fault is and which node it hits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// `kill master`, held until a quorum reports a new master, then `start`.
    KillMaster,
    /// `kill` the `pick`-th replica, then `start` it.
    KillReplica { pick: u64 },
    /// `pause master` (frozen, still holding the VIP), then `resume`.
    PauseMaster,
    /// `isolate master` from the other nodes (the host still reaches it).
    IsolateMaster,
    /// The `pick`-th node alone on one side of a partition.
    Partition { pick: u64 },
    /// `sentinel-kill` on the `pick`-th node, then `sentinel-resume`.
    SentinelKill { pick: u64 },
    /// `delay` between the master and the others (or the host).
    Delay { ms: u64, jitter_ms: u64, host: bool },
    /// `loss` between the master and the others (or the host).
    Loss { percent: f64, host: bool },
    /// `flap` of the master's links to the others.
    Flap { up_ms: u64, down_ms: u64 },
    /// `rate` cap between the master and the others.
    Rate { kbit: u64 },
    /// `clock-jump` of the `pick`-th node's sentinel.
    ClockJump { pick: u64, seconds: f64 },
    /// A manual `failover`, held until the switch.
    Failover,
}

/// How long a fault stays before its repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hold {
    Ms(u64),
    /// Until a quorum reports a new master, at most this long.
    UntilSwitch(u64),
}

/// One entry of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Planned {
    pub index: usize,
    #[serde(flatten)]
    pub fault: Fault,
    pub hold: Hold,
    /// Quiet time after the testbed is healthy again.
    pub settle_ms: u64,
}

/// The endless schedule of `seed`.
pub struct Schedule {
    rng: SplitMix64,
    next: usize,
    switch_timeout_ms: u64,
}

impl Schedule {
    /// `switch_timeout_ms` bounds the holds that wait for a failover.
    pub fn new(seed: u64, switch_timeout_ms: u64) -> Schedule {
        Schedule {
            rng: SplitMix64::new(seed),
            next: 0,
            switch_timeout_ms,
        }
    }

    fn uniform(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.range_inclusive(lo as i64, hi as i64) as u64
    }
}

/// How many kinds of fault there are (the draw picks one uniformly).
const KINDS: u64 = 12;

impl Iterator for Schedule {
    type Item = Planned;
    fn next(&mut self) -> Option<Planned> {
        let pick = self.rng.next_u64() >> 1;
        let fault = match self.rng.below(KINDS) {
            0 => Fault::KillMaster,
            1 => Fault::KillReplica { pick },
            2 => Fault::PauseMaster,
            3 => Fault::IsolateMaster,
            4 => Fault::Partition { pick },
            5 => Fault::SentinelKill { pick },
            6 => {
                let ms = self.uniform(20, 400);
                let jitter_ms = self.uniform(0, ms / 4);
                let host = self.rng.below(3) == 0;
                Fault::Delay {
                    ms,
                    jitter_ms,
                    host,
                }
            }
            7 => {
                let percent = self.uniform(5, 50) as f64;
                let host = self.rng.below(3) == 0;
                Fault::Loss { percent, host }
            }
            8 => Fault::Flap {
                up_ms: self.uniform(300, 2000),
                down_ms: self.uniform(300, 3000),
            },
            9 => Fault::Rate {
                kbit: [64, 256, 1024][self.rng.below(3) as usize],
            },
            10 => {
                let s = self.uniform(5, 40) as f64;
                let seconds = if self.rng.below(2) == 0 { s } else { -s };
                Fault::ClockJump { pick, seconds }
            }
            _ => Fault::Failover,
        };
        let hold = match fault {
            Fault::KillMaster | Fault::Failover => Hold::UntilSwitch(self.switch_timeout_ms),
            _ => Hold::Ms(self.uniform(1_000, 20_000)),
        };
        let settle_ms = self.uniform(500, 3_000);
        let index = self.next;
        self.next += 1;
        Some(Planned {
            index,
            fault,
            hold,
            settle_ms,
        })
    }
}

/// The fault's actions and the repair's, on a testbed whose nodes are
/// `nodes` (in topology order) and whose master is now `master`.
pub fn actions(fault: &Fault, master: &str, nodes: &[String]) -> (Vec<Action>, Vec<Action>) {
    let node = |pick: u64| Target::Node(nodes[(pick % nodes.len() as u64) as usize].clone());
    let replicas: Vec<&String> = nodes.iter().filter(|n| *n != master).collect();
    let m = Target::Node(master.to_string());
    let others = |host: bool| if host { vec![Target::Host] } else { vec![] };
    let both = Direction::Both;
    match *fault {
        Fault::KillMaster => (
            vec![Action::Kill { target: m.clone() }],
            vec![Action::Start { target: m }],
        ),
        Fault::KillReplica { pick } => {
            let r = match replicas.is_empty() {
                true => m,
                false => Target::Node(replicas[(pick % replicas.len() as u64) as usize].clone()),
            };
            (
                vec![Action::Kill { target: r.clone() }],
                vec![Action::Start { target: r }],
            )
        }
        Fault::PauseMaster => (
            vec![Action::Pause { target: m.clone() }],
            vec![Action::Resume { target: m }],
        ),
        Fault::IsolateMaster => (vec![Action::Isolate { target: m }], vec![Action::Heal]),
        Fault::Partition { pick } => (
            vec![Action::Partition {
                a: vec![node(pick)],
                b: vec![],
                direction: both,
            }],
            vec![Action::Heal],
        ),
        Fault::SentinelKill { pick } => (
            vec![Action::SentinelKill { target: node(pick) }],
            vec![Action::SentinelResume { target: node(pick) }],
        ),
        Fault::Delay {
            ms,
            jitter_ms,
            host,
        } => (
            vec![Action::Delay {
                a: vec![m],
                b: others(host),
                ms,
                jitter_ms,
                direction: both,
            }],
            vec![Action::Heal],
        ),
        Fault::Loss { percent, host } => (
            vec![Action::Loss {
                a: vec![m],
                b: others(host),
                percent,
                direction: both,
            }],
            vec![Action::Heal],
        ),
        Fault::Flap { up_ms, down_ms } => (
            vec![Action::Flap {
                a: vec![m],
                b: vec![],
                up_ms,
                down_ms,
                direction: both,
            }],
            vec![Action::Heal],
        ),
        Fault::Rate { kbit } => (
            vec![Action::Rate {
                a: vec![m],
                b: vec![],
                kbit,
                direction: both,
            }],
            vec![Action::Heal],
        ),
        Fault::ClockJump { pick, seconds } => (
            vec![Action::ClockJump {
                target: node(pick),
                process: Process::Sentinel,
                seconds,
            }],
            vec![Action::Heal],
        ),
        Fault::Failover => (vec![Action::Failover { via: None }], vec![]),
    }
}

/// The fault's parameters as the CLI writes them (`--ms 120 --jitter-ms 30`).
pub fn params(fault: &Fault) -> String {
    let to = |host: bool| if host { " (to the host)" } else { "" };
    match *fault {
        Fault::Delay {
            ms,
            jitter_ms,
            host,
        } => format!("--ms {ms} --jitter-ms {jitter_ms}{}", to(host)),
        Fault::Loss { percent, host } => format!("--percent {percent}{}", to(host)),
        Fault::Flap { up_ms, down_ms } => format!("--up-ms {up_ms} --down-ms {down_ms}"),
        Fault::Rate { kbit } => format!("--kbit {kbit}"),
        Fault::ClockJump { seconds, .. } => format!("--sentinel --seconds {seconds}"),
        _ => String::new(),
    }
}

/// The fault's verb, as the CLI and scenario files name it.
pub fn verb(fault: &Fault) -> &'static str {
    let (fault_actions, _) = actions(fault, "m", &["m".to_string()]);
    fault_actions[0].verb().name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        ["node1", "node2", "node3"].map(String::from).to_vec()
    }

    #[test]
    fn a_seed_gives_one_schedule() {
        let a: Vec<Planned> = Schedule::new(7, 30_000).take(200).collect();
        let b: Vec<Planned> = Schedule::new(7, 30_000).take(200).collect();
        let c: Vec<Planned> = Schedule::new(8, 30_000).take(200).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().enumerate().all(|(i, p)| p.index == i));
    }

    #[test]
    fn every_kind_comes_within_a_hundred_draws() {
        let verbs: std::collections::BTreeSet<&str> = Schedule::new(1, 30_000)
            .take(100)
            .map(|p| verb(&p.fault))
            .collect();
        let want = [
            "kill",
            "pause",
            "isolate",
            "partition",
            "sentinel-kill",
            "delay",
            "loss",
            "flap",
            "rate",
            "clock-jump",
            "failover",
        ];
        for v in want {
            assert!(verbs.contains(v), "{v} missing from {verbs:?}");
        }
    }

    #[test]
    fn holds_and_parameters_stay_in_bounds() {
        for p in Schedule::new(3, 30_000).take(2_000) {
            match p.hold {
                Hold::Ms(ms) => assert!((1_000..=20_000).contains(&ms)),
                Hold::UntilSwitch(ms) => assert_eq!(ms, 30_000),
            }
            assert!((500..=3_000).contains(&p.settle_ms));
            match p.fault {
                Fault::Delay { ms, jitter_ms, .. } => {
                    assert!((20..=400).contains(&ms) && jitter_ms <= ms / 4)
                }
                Fault::Loss { percent, .. } => assert!((5.0..=50.0).contains(&percent)),
                Fault::ClockJump { seconds, .. } => {
                    assert!((5.0..=40.0).contains(&seconds.abs()))
                }
                _ => {}
            }
        }
    }

    #[test]
    fn faults_hit_the_roles_of_the_moment() {
        let n = nodes();
        let (f, r) = actions(&Fault::KillMaster, "node2", &n);
        assert_eq!(
            f,
            vec![Action::Kill {
                target: Target::Node("node2".into())
            }]
        );
        assert_eq!(
            r,
            vec![Action::Start {
                target: Target::Node("node2".into())
            }]
        );
        // a replica is never the master
        for pick in 0..10 {
            let (f, _) = actions(&Fault::KillReplica { pick }, "node2", &n);
            assert_ne!(f[0].targets()[0], &Target::Node("node2".into()));
        }
        // every impairment is healed
        let (_, r) = actions(
            &Fault::Delay {
                ms: 50,
                jitter_ms: 0,
                host: true,
            },
            "node1",
            &n,
        );
        assert_eq!(r, vec![Action::Heal]);
    }
}
