//! Command line of `testbed-netem`.

use super::rng::parse_seed;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: testbed-netem --netns-pid PID --queue N --rules FILE --seed S --testbed NAME --node NODE
                     [--pid-file F] [--log F] [--maxlen N] [--copy-range N] [--no-gso]
                     [--rt-prio P] [--max-sleep-us U]
  --netns-pid PID   enter the network namespace of PID (/proc/PID/ns/net); exit when PID exits
  --queue N         NFQUEUE number to bind (iptables -j NFQUEUE --queue-num N --queue-bypass)
  --rules FILE      JSON rule table; re-read on SIGHUP (a file that does not parse is ignored)
  --seed S          seed of the PRNG (decimal or 0x hex); logged
  --testbed, --node names for the log lines
  --pid-file F      written (temp + rename) once the queue is bound; removed at exit
  --log F           append log lines to F (default: stderr)
  --maxlen N        kernel queue length (default 4096); beyond it packets pass undelayed (FAIL_OPEN)
  --copy-range N    bytes of each packet copied to the daemon (default 64)
  --no-gso          do not set NFQA_CFG_F_GSO (the kernel then segments GSO packets before queueing)
  --rt-prio P       SCHED_FIFO priority (default 10; 0 keeps the normal scheduler)
  --max-sleep-us U  longest single sleep while packets are held (default 500; 0: no limit)
signals: SIGHUP reload, SIGUSR1 log counters, SIGTERM/SIGINT release held packets and exit";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub netns_pid: i32,
    pub queue: u16,
    pub rules: PathBuf,
    pub seed: u64,
    pub testbed: String,
    pub node: String,
    pub pid_file: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub maxlen: u32,
    pub copy_range: u32,
    pub gso: bool,
    pub rt_prio: i32,
    pub max_sleep_us: u64,
}

fn need<T>(o: Option<T>, flag: &str) -> Result<T, String> {
    o.ok_or_else(|| format!("{flag} is required"))
}

impl Args {
    /// Parses the arguments after the program name.
    pub fn parse(argv: &[String]) -> Result<Args, String> {
        let mut it = argv.iter();
        let (mut pid, mut queue, mut rules, mut seed) = (None, None, None, None);
        let (mut testbed, mut node) = (None, None);
        let mut a = Args {
            netns_pid: 0,
            queue: 0,
            rules: PathBuf::new(),
            seed: 0,
            testbed: String::new(),
            node: String::new(),
            pid_file: None,
            log: None,
            maxlen: 4096,
            copy_range: 64,
            gso: true,
            rt_prio: 10,
            max_sleep_us: 500,
        };
        while let Some(flag) = it.next() {
            if flag == "--no-gso" {
                a.gso = false;
                continue;
            }
            let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |what: &str| format!("{flag}: {what} expected, got {v:?}");
            match flag.as_str() {
                "--netns-pid" => {
                    let p = v.parse::<i32>().ok().filter(|p| *p > 0);
                    pid = Some(p.ok_or_else(|| bad("pid"))?);
                }
                "--queue" => queue = Some(v.parse::<u16>().map_err(|_| bad("0..=65535"))?),
                "--rules" => rules = Some(PathBuf::from(v)),
                "--seed" => seed = Some(parse_seed(v).ok_or_else(|| bad("u64"))?),
                "--testbed" => testbed = Some(v.clone()),
                "--node" => node = Some(v.clone()),
                "--pid-file" => a.pid_file = Some(PathBuf::from(v)),
                "--log" => a.log = Some(PathBuf::from(v)),
                "--maxlen" => {
                    let n = v.parse().ok().filter(|n| *n > 0);
                    a.maxlen = n.ok_or_else(|| bad("count > 0"))?;
                }
                "--copy-range" => {
                    let n = v.parse().ok().filter(|n| (20..=65_535).contains(n));
                    a.copy_range = n.ok_or_else(|| bad("20..=65535"))?;
                }
                "--rt-prio" => {
                    let n = v.parse().ok().filter(|n| (0..=99).contains(n));
                    a.rt_prio = n.ok_or_else(|| bad("0..=99"))?;
                }
                "--max-sleep-us" => a.max_sleep_us = v.parse().map_err(|_| bad("µs"))?,
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        a.netns_pid = need(pid, "--netns-pid")?;
        a.queue = need(queue, "--queue")?;
        a.rules = need(rules, "--rules")?;
        a.seed = need(seed, "--seed")?;
        a.testbed = need(testbed, "--testbed")?;
        a.node = need(node, "--node")?;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_full_command_line() {
        let a = Args::parse(&argv(
            "--netns-pid 42 --queue 3 --rules r.json --seed 0x10 --testbed tb --node n1 \
             --pid-file p --log l --maxlen 100 --no-gso --rt-prio 0 --max-sleep-us 0",
        ))
        .unwrap();
        assert_eq!((a.netns_pid, a.queue, a.seed, a.maxlen), (42, 3, 16, 100));
        assert_eq!(
            (a.copy_range, a.gso, a.rt_prio, a.max_sleep_us),
            (64, false, 0, 0)
        );
        assert_eq!((a.testbed.as_str(), a.node.as_str()), ("tb", "n1"));
        assert_eq!(a.pid_file, Some(PathBuf::from("p")));
        assert_eq!(a.rules, PathBuf::from("r.json"));
    }

    #[test]
    fn defaults() {
        let a = Args::parse(&argv(
            "--netns-pid 1 --queue 0 --rules r --seed 1 --testbed t --node n",
        ))
        .unwrap();
        assert_eq!(
            (a.maxlen, a.copy_range, a.gso, a.rt_prio, a.max_sleep_us),
            (4096, 64, true, 10, 500)
        );
        assert_eq!((a.pid_file, a.log), (None, None));
    }

    #[test]
    fn rejects_bad_command_lines() {
        for bad in [
            "--queue 3 --rules r --seed 1 --testbed tb --node n",
            "--netns-pid 0 --queue 3 --rules r --seed 1 --testbed tb --node n",
            "--netns-pid 42 --queue 70000 --rules r --seed 1 --testbed tb --node n",
            "--netns-pid 42 --queue 3 --rules r --seed x --testbed tb --node n",
            "--netns-pid 42 --queue 3 --rules r --seed 1 --testbed tb --node n --frobnicate 1",
            "--netns-pid 42 --queue 3 --rules r --seed 1 --testbed tb --node n --rt-prio 100",
            "--netns-pid 42 --queue 3 --rules r --seed 1 --testbed tb --node",
        ] {
            assert!(Args::parse(&argv(bad)).is_err(), "accepted {bad}");
        }
    }
}
