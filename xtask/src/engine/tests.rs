//! Pure parts of the engine: scripts, placeholders, names, mountinfo.

use super::mounts::parse_mountinfo;
use super::start::{placeholders, scripts};
use super::*;

#[test]
fn mountinfo_mount_points_are_unescaped() {
    let t = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
             37 35 0:5 / /var/cache/x/root/proc rw - proc proc rw\n";
    assert_eq!(
        parse_mountinfo(t),
        vec![
            PathBuf::from("/mnt/with space"),
            PathBuf::from("/var/cache/x/root/proc")
        ]
    );
}

#[test]
fn scripts_quote_paths_and_keep_the_recipe_flags() {
    let e = Engine::new("sid").unwrap();
    let (start, inner) = scripts(
        &e,
        &[PathBuf::from("/work/it's/target/testbed")],
        Path::new("/sys/fs/cgroup/pids/x/daemon"),
        true,
    );
    assert!(start.contains("echo $$ > '/sys/fs/cgroup/pids/x/daemon/cgroup.procs'"));
    assert!(start.contains("exec unshare --mount --propagation private sh"));
    let r = "/var/cache/redis-sentinel-testbed/engine-sid/root";
    assert!(inner.contains(&format!("mount --bind '{r}' '{r}'\n")));
    assert!(inner.contains(&format!(
        "mount --bind '/work/it'\\''s/target/testbed' '{r}/work/it'\\''s/target/testbed'"
    )));
    assert!(inner.contains("mount --bind '/run/redis-sentinel-testbed/engine-sid' "));
    assert!(!inner.contains("--bridge=none"), "{inner}");
    for f in [
        "--bridge='tbeng-sid'",
        "--default-address-pool base=198.19.96.0/20,size=24",
        "--iptables=false",
        "--ip-masq=false",
        "--ip-forward=false",
        "-H unix:///run/sock/docker.sock",
        "--cgroup-parent='/redis-sentinel-testbed/engine-sid/containers'",
        " --debug\n",
        "pivot_root . .host-root\numount -l /.host-root\n",
    ] {
        assert!(inner.contains(f), "{f}: {inner}");
    }
}

#[test]
fn placeholders_are_the_missing_components() {
    let root = std::env::temp_dir().join(format!("engine-ph-{}", std::process::id()));
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    let p = placeholders(&root, Path::new("/usr/bin/busybox"), true);
    assert_eq!(p, vec![(root.join("usr/bin/busybox"), true)]);
    let p = placeholders(&root, Path::new("/work/a"), false);
    assert_eq!(
        p,
        vec![(root.join("work"), false), (root.join("work/a"), false)]
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bridges_fit_and_stay_out_of_the_host_engines_range() {
    for suite in ["sid", "trixie", "forky", "trixie-backports"] {
        let e = Engine::new(suite).unwrap();
        assert!(e.bridge().len() <= 15, "{}", e.bridge());
        let third: u32 = e.bridge_cidr().split('.').nth(2).unwrap().parse().unwrap();
        assert!((112..128).contains(&third), "{}", e.bridge_cidr());
    }
}

#[test]
fn suite_names_are_checked() {
    assert!(Engine::new("sid").is_ok());
    assert!(Engine::new("../etc").is_err());
    assert_eq!(
        Engine::new("trixie").unwrap().docker_host(),
        "unix:///run/redis-sentinel-testbed/engine-trixie/docker.sock"
    );
}

#[test]
fn a_root_counts_only_with_the_packages_it_was_asked_for() {
    let v = "ca-certificates=1\ncontainerd=2.1.9\ndocker-compose=2.40.3-3\ndocker.io=28.5.2\niptables=1.8\nrunc=1.3.6\n# /usr/sbin/dockerd --version: Docker version 28.5.2\n";
    assert!(build::lists_packages(v, PACKAGES));
    assert!(!build::lists_packages(v, &["docker.io"]));
    let more = [PACKAGES, &["podman"]].concat();
    assert!(!build::lists_packages(v, &more));
}
