//! What a fault is aimed at: one name for each idea, the same in the CLI, in
//! scenario files and in the library.
//!
//! - a node name (`node2`);
//! - `master`: the node most live sentinels report as master **when the
//!   fault is applied** (after a failover that is the new master);
//! - `initial-master`: the topology's `initial_master`, whatever happened
//!   since (the node to start again after killing the master);
//! - `replicas`: every node except `master`, at the time of the fault;
//! - `host`: the host's foot on the segment (its shim address). Only link
//!   impairments take it (a slow client link); partitions never cut the host.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A fault's target, before it is resolved to nodes on a running testbed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A node by name.
    Node(String),
    /// The node most sentinels report as master when the fault is applied.
    Master,
    /// The topology's initial master.
    InitialMaster,
    /// Every node but the current master.
    Replicas,
    /// The host (its shim address on the segment).
    Host,
}

/// The words a target can be, for messages.
pub const TARGET_WORDS: &str = "a node name, `master`, `initial-master` or `replicas`";

impl Target {
    /// Whether it can name more than one node.
    pub fn is_group(&self) -> bool {
        matches!(self, Target::Replicas)
    }

    /// The node name when the target is one fixed node.
    pub fn node_name(&self) -> Option<&str> {
        match self {
            Target::Node(n) => Some(n),
            _ => None,
        }
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "master" => Target::Master,
            "initial-master" => Target::InitialMaster,
            "replicas" => Target::Replicas,
            "host" => Target::Host,
            "" => return Err(format!("empty target; use {TARGET_WORDS}")),
            n if n.starts_with('-') => {
                return Err(format!(
                    "`{n}` is an option, not a target; options go first"
                ))
            }
            n => Target::Node(n.to_string()),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(n) => f.write_str(n),
            Target::Master => f.write_str("master"),
            Target::InitialMaster => f.write_str("initial-master"),
            Target::Replicas => f.write_str("replicas"),
            Target::Host => f.write_str("host"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which way a link fault acts between two groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Both ways (the default).
    #[default]
    Both,
    /// Only from the first group to the second.
    OneWay,
}

/// Splits command-line words into the two groups of a link fault: `a b -- c`
/// comes in as `a = [a, b]`, `b = [c]`; each word may hold a comma-separated
/// list (`--from node1 --to node2,node3`). An empty `b` means "every other
/// node", resolved on the running testbed.
pub fn parse_groups(a: &[String], b: &[String]) -> Result<(Vec<Target>, Vec<Target>), String> {
    let split = |words: &[String]| -> Result<Vec<Target>, String> {
        words
            .iter()
            .flat_map(|w| w.split(','))
            .filter(|w| !w.is_empty())
            .map(Target::from_str)
            .collect()
    };
    let (a, b) = (split(a)?, split(b)?);
    if a.is_empty() {
        return Err("the first group is empty: name at least one node".into());
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn every_word_round_trips() {
        for w in ["node3", "master", "initial-master", "replicas", "host"] {
            assert_eq!(w.parse::<Target>().unwrap().to_string(), w);
        }
        assert!("".parse::<Target>().is_err());
        assert!("--one-way"
            .parse::<Target>()
            .unwrap_err()
            .contains("option"));
    }

    #[test]
    fn groups_from_words_and_commas() {
        let (a, b) = parse_groups(&words("node1 node2"), &words("node3")).unwrap();
        assert_eq!(
            a,
            vec![Target::Node("node1".into()), Target::Node("node2".into())]
        );
        assert_eq!(b, vec![Target::Node("node3".into())]);
        let (a, b) = parse_groups(&words("master"), &words("node2,node3")).unwrap();
        assert_eq!(a, vec![Target::Master]);
        assert_eq!(b.len(), 2);
        let (_, b) = parse_groups(&words("replicas"), &[]).unwrap();
        assert!(b.is_empty(), "empty second group = the rest");
        assert!(parse_groups(&[], &words("node1")).is_err());
    }
}
