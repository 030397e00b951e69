//! What of a testbed is still there after an interrupted command, looked
//! for without the code under test where it can be, and the guards that
//! remove a failed test's testbed.

use super::*;

/// Everything of testbed `name` that still exists, looked for independently
/// of the code under test where it can be: Docker's labels, `ip link`,
/// `ip addr`, `/proc`, the state dir.
pub(crate) fn leftovers(name: &str, s: u8) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for (what, args) in [
        (
            "container",
            vec!["ps", "-a", "--format", "{{.Names}}", "--filter"],
        ),
        (
            "network",
            vec!["network", "ls", "--format", "{{.Name}}", "--filter"],
        ),
    ] {
        let mut a = args.clone();
        let f = format!("label=io.redis-sentinel-testbed.name={name}");
        a.push(&f);
        let out = Command::new("docker").args(&a).output().context("docker")?;
        ensure!(
            out.status.success(),
            "docker {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for l in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
        {
            left.push(format!("{what} {l}"));
        }
    }
    // `ip -o link`: "7: NAME@PEER: <...> ... alias ALIAS"
    let n = Names::new(name);
    let ours = [&n.parent, &n.parent_peer, &n.shim];
    let alias = format!("alias redis-sentinel-testbed:{name}");
    let links = String::from_utf8(
        Command::new("ip")
            .args(["-o", "link", "show"])
            .output()?
            .stdout,
    )?;
    for l in links.lines() {
        let Some(ifname) = l
            .split(':')
            .nth(1)
            .map(|i| i.trim().split('@').next().unwrap_or("").to_string())
        else {
            continue;
        };
        let aliased = l
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(&alias)
            && l.trim_end().ends_with(&format!(":{name}"));
        if ours.contains(&&ifname) || aliased {
            left.push(format!("link {ifname}"));
        }
    }
    let addrs = String::from_utf8(
        Command::new("ip")
            .args(["-o", "-4", "addr", "show"])
            .output()?
            .stdout,
    )?;
    let net = format!(" 198.18.{s}.");
    if let Some(a) = addrs.lines().find(|l| l.contains(&net)) {
        left.push(format!("host address: {a}"));
    }
    let dir = default_state_root().join(name);
    if dir.exists() {
        left.push(format!("state dir {}", dir.display()));
    }
    // no process of ours still runs for it (an xtask, a daemon)
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = String::from_utf8_lossy(&cmd)
            .split('\0')
            .map(str::to_string)
            .collect();
        let cmd = args.join(" ");
        let xtask = args
            .first()
            .is_some_and(|a| a == env!("CARGO_BIN_EXE_xtask"))
            && args.iter().any(|a| names_testbed(a, name));
        // an impairment daemon names its testbed: `--testbed NAME `
        let daemon = cmd.contains("testbed-netem") && cmd.contains(&format!(" --testbed {name} "));
        if xtask || daemon {
            left.push(format!(
                "process {}: {cmd}",
                e.file_name().to_string_lossy()
            ));
        }
    }
    Ok(left)
}

/// Whether an argument of an xtask names testbed `name`: the name itself
/// (`--name N`), or a topology or scenario file of that name (`N.toml`; a
/// scenario's testbed is `rp-N` or `cm-N`). Whole words only: `it-up` is
/// not `fl-it-up`, another suite's (TESTBED_TEST_PREFIX) beside this one.
fn names_testbed(arg: &str, name: &str) -> bool {
    let stem = Path::new(arg).file_stem().and_then(|s| s.to_str());
    let scenario = name
        .strip_prefix("rp-")
        .or_else(|| name.strip_prefix("cm-"));
    arg == name || stem == Some(name) || (stem.is_some() && stem == scenario)
}

#[test]
fn another_suites_testbed_is_not_this_ones() {
    assert!(names_testbed("it-up", "it-up"));
    assert!(names_testbed("/tmp/tb-interrupt-1/it-up.toml", "it-up"));
    assert!(names_testbed(
        "/tmp/tb-interrupt-1/it-repro.toml",
        "rp-it-repro"
    ));
    assert!(!names_testbed("/tmp/tb-interrupt-2/fl-it-up.toml", "it-up"));
    assert!(!names_testbed("fl-it-soak", "it-soak"));
    assert!(!names_testbed(
        "/tmp/tb-interrupt-2/fl-it-repro.toml",
        "rp-it-repro"
    ));
}

/// Runs `xtask down --name` for a testbed when dropped: a test that fails
/// half-way leaves nothing of its own behind.
pub(crate) struct Down(pub(crate) String);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = xtask()
            .args(["down", "--name", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
