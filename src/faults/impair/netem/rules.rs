//! The rule table: which packets to delay, drop or flap. Pure (no I/O except
//! the atomic file writer at the bottom), so it is tested without a kernel.
//!
//! # JSON format
//! ```json
//! { "rules": [
//!     { "name": "a->b slow", "src": "198.18.250.1", "dst": "198.18.250.2",
//!       "effect": { "delay": { "ms": 50, "jitter_ms": 20 } } },
//!     { "dst": "198.18.250.2", "effect": { "loss": { "percent": 30.0 } } },
//!     { "src": "198.18.250.1", "effect": { "flap": { "up_ms": 500, "down_ms": 500 } } }
//! ] }
//! ```
//! `name`, `src`, `dst`, `jitter_ms` and `phase_ms` are optional; an absent
//! `src`/`dst` matches any address, so one rule covers one direction of one
//! pair (or more, with wildcards). Unknown fields are rejected.
//!
//! # Composition
//! For one packet, every rule whose `src` and `dst` match takes part, in file order:
//! - each `loss` rule drops the packet with its own independent probability
//!   (so passing has probability Π(1 − pᵢ));
//! - each `flap` rule drops it while its schedule is in a down phase at the
//!   packet's arrival time (schedules are independent of each other);
//! - each `delay` rule adds `ms` + U[−jitter_ms, +jitter_ms] (µs resolution);
//!   the sum is clamped at 0;
//! - a drop wins over any delay.
//!
//! Every matching `loss` rule and every matching `delay` rule with jitter draws
//! from the RNG even when the packet is already dropped, so the stream of draws
//! depends only on the sequence of packets and the table, not on earlier outcomes.
//!
//! A flap schedule starts when its rule is installed: at `t` since then the rule
//! is up iff `(t + phase_ms) mod (up_ms + down_ms) < up_ms` (starts up unless
//! `phase_ms` ≥ `up_ms`). A reload keeps the install time of a rule that is
//! present, unchanged, in both the old and the new table.

use super::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

/// Longest total delay a table may ask for (one rule), in ms.
pub const MAX_DELAY_MS: u64 = 60_000;

/// The whole rules file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One rule: a match on one direction of one pair, and an effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    pub effect: Effect,
}

/// What a matching rule does to a packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// Hold for `ms` ± uniform `jitter_ms` (packets may reorder).
    Delay {
        ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Drop with probability `percent` / 100.
    Loss { percent: f64 },
    /// Pass for `up_ms`, drop for `down_ms`, repeating from install time.
    Flap {
        up_ms: u64,
        down_ms: u64,
        #[serde(default)]
        phase_ms: u64,
    },
}

impl Rule {
    /// Whether the rule applies to a packet from `src` to `dst`.
    pub fn matches(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.src.is_none_or(|s| s == src) && self.dst.is_none_or(|d| d == dst)
    }
}

/// Why a packet is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Loss,
    Flap,
}

/// A packet's fate under the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Issue ACCEPT after `delay_us` microseconds (0: at once).
    Pass { delay_us: u64 },
    /// Issue DROP at once.
    Drop(DropReason),
}

/// Parses and validates a rules file; an error leaves the caller's table alone.
pub fn parse(text: &str) -> Result<RuleFile, String> {
    let file: RuleFile = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    validate(&file)?;
    Ok(file)
}

/// Checks value ranges that JSON types do not express.
pub fn validate(file: &RuleFile) -> Result<(), String> {
    for (i, r) in file.rules.iter().enumerate() {
        let bad = |m: &str| Err(format!("rule {i}: {m}"));
        match r.effect {
            Effect::Delay { ms, jitter_ms } => {
                if ms > MAX_DELAY_MS || jitter_ms > MAX_DELAY_MS {
                    return bad("delay/jitter above 60000 ms");
                }
            }
            Effect::Loss { percent } => {
                if !(0.0..=100.0).contains(&percent) {
                    return bad("loss percent outside 0..=100");
                }
            }
            Effect::Flap { up_ms, down_ms, .. } => {
                if up_ms.checked_add(down_ms).is_none_or(|p| p == 0) {
                    return bad("flap period (up_ms + down_ms) must be > 0");
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Installed {
    rule: Rule,
    /// Install time, ns on the caller's monotonic clock.
    since_ns: u64,
}

/// An installed table: rules plus their install times.
#[derive(Debug, Clone, Default)]
pub struct RuleTable {
    rules: Vec<Installed>,
}

impl RuleTable {
    /// Installs `file` at `now_ns`; rules equal to one of `self` keep its install time.
    pub fn install(&self, file: &RuleFile, now_ns: u64) -> RuleTable {
        let mut taken = vec![false; self.rules.len()];
        let rules = file
            .rules
            .iter()
            .map(|rule| {
                let old = self
                    .rules
                    .iter()
                    .enumerate()
                    .find(|(i, o)| !taken[*i] && o.rule == *rule);
                let since_ns = match old {
                    Some((i, o)) => {
                        taken[i] = true;
                        o.since_ns
                    }
                    None => now_ns,
                };
                Installed {
                    rule: rule.clone(),
                    since_ns,
                }
            })
            .collect();
        RuleTable { rules }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the table has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as a file (for logging).
    pub fn to_file(&self) -> RuleFile {
        RuleFile {
            rules: self.rules.iter().map(|i| i.rule.clone()).collect(),
        }
    }

    /// The fate of a packet from `src` to `dst` arriving at `now_ns`.
    pub fn decide(&self, src: IpAddr, dst: IpAddr, now_ns: u64, rng: &mut SplitMix64) -> Fate {
        let mut drop: Option<DropReason> = None;
        let mut delay_us: i64 = 0;
        for inst in self.rules.iter().filter(|i| i.rule.matches(src, dst)) {
            match inst.rule.effect {
                Effect::Loss { percent } => {
                    if rng.next_f64() * 100.0 < percent {
                        drop = drop.or(Some(DropReason::Loss));
                    }
                }
                Effect::Flap {
                    up_ms,
                    down_ms,
                    phase_ms,
                } => {
                    if !flap_is_up(
                        up_ms,
                        down_ms,
                        phase_ms,
                        now_ns.saturating_sub(inst.since_ns),
                    ) {
                        drop = drop.or(Some(DropReason::Flap));
                    }
                }
                Effect::Delay { ms, jitter_ms } => {
                    let j = (jitter_ms * 1000) as i64;
                    let jitter = if j > 0 { rng.range_inclusive(-j, j) } else { 0 };
                    delay_us += (ms * 1000) as i64 + jitter;
                }
            }
        }
        match drop {
            Some(reason) => Fate::Drop(reason),
            None => Fate::Pass {
                delay_us: delay_us.max(0) as u64,
            },
        }
    }
}

/// Whether a flap schedule is up `elapsed_ns` after its install time.
pub fn flap_is_up(up_ms: u64, down_ms: u64, phase_ms: u64, elapsed_ns: u64) -> bool {
    let period = u128::from(up_ms + down_ms) * 1_000_000;
    if period == 0 {
        return true;
    }
    let pos = (u128::from(elapsed_ns) + u128::from(phase_ms) * 1_000_000) % period;
    pos < u128::from(up_ms) * 1_000_000
}

/// Writes a rules file so that a reader never sees it half-written: to a
/// temporary file in the same directory, fsync, then rename over `path`.
pub fn write_atomically(path: &Path, file: &RuleFile) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
