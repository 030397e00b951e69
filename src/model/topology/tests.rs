use super::*;

fn parse(text: &str) -> Result<Topology> {
    Topology::parse(text, Some(Path::new("t.toml")), &ParseOptions::default())
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let t = parse("").unwrap();
    assert_eq!(t.name, "testbed");
    assert_eq!(t.master_name, "mymaster");
    assert_eq!(t.subnet.to_string(), "198.18.0.0/24");
    assert_eq!(t.vip, Ipv4Addr::new(198, 18, 0, 100));
    let ips: Vec<_> = t.nodes.iter().map(|n| n.ip.to_string()).collect();
    assert_eq!(ips, ["198.18.0.11", "198.18.0.12", "198.18.0.13"]);
    assert_eq!(t.initial_master().name, "node1");
    assert_eq!((t.redis_port, t.sentinel_port, t.quorum), (6379, 26379, 2));
    assert_eq!(
        (t.down_after_ms, t.failover_timeout_ms, t.parallel_syncs),
        (2000, 10000, 1)
    );
    assert_eq!(t.gateway(), Ipv4Addr::new(198, 18, 0, 254));
    assert_eq!(t.shim_ip(), Ipv4Addr::new(198, 18, 0, 253));
}

#[test]
fn the_shipped_default_file_equals_the_defaults() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/topology.toml");
    let mut t = Topology::from_file(&p, &ParseOptions::default()).unwrap();
    t.source = None;
    assert_eq!(t, Topology::default_topology());
}

#[test]
fn unknown_key_is_named_with_its_position() {
    let e = err("name = \"x\"\nquorom = 2\n");
    assert!(e.starts_with("t.toml:2:1:"), "{e}");
    assert!(e.contains("quorom"), "{e}");
}

#[test]
fn syntax_error_has_a_position() {
    let e = err("name = \"x\"\nvip = \n");
    assert!(e.starts_with("t.toml:2:"), "{e}");
}

#[test]
fn wrong_type_has_a_position() {
    let e = err("quorum = \"two\"\n");
    assert!(e.starts_with("t.toml:1:10:"), "{e}");
}

#[test]
fn quorum_above_the_sentinel_count_is_refused() {
    let e = err("quorum = 4\n");
    assert!(e.starts_with("t.toml:1:10: key `quorum`"), "{e}");
    assert!(e.contains("number of sentinels (3)"), "{e}");
}

#[test]
fn subnet_outside_the_benchmark_space_is_refused_unless_allowed() {
    let text = "subnet = \"10.1.0.0/24\"\nvip = \"10.1.0.100\"\n[[nodes]]\nname = \"a\"\nip = \"10.1.0.2\"\n[[nodes]]\nname = \"b\"\nip = \"10.1.0.3\"\n";
    let e = err(text);
    assert!(e.starts_with("t.toml:1:10: key `subnet`"), "{e}");
    assert!(e.contains("198.18.0.0/15"), "{e}");
    let opts = ParseOptions {
        allow_any_subnet: true,
    };
    assert!(Topology::parse(text, None, &opts).is_ok());
}

#[test]
fn node_outside_the_subnet_is_refused() {
    let e = err("[[nodes]]\nname = \"a\"\nip = \"198.18.1.2\"\n[[nodes]]\nname = \"b\"\nip = \"198.18.0.3\"\n");
    assert!(e.starts_with("t.toml:3:6: key `nodes.ip`"), "{e}");
    assert!(e.contains("not inside subnet 198.18.0.0/24"), "{e}");
}

#[test]
fn duplicate_addresses_and_names_are_refused() {
    let e = err("[[nodes]]\nname = \"a\"\nip = \"198.18.0.2\"\n[[nodes]]\nname = \"b\"\nip = \"198.18.0.2\"\n");
    assert!(e.contains("also the address of a"), "{e}");
    let e = err("[[nodes]]\nname = \"a\"\nip = \"198.18.0.2\"\n[[nodes]]\nname = \"a\"\nip = \"198.18.0.3\"\n");
    assert!(e.contains("used twice"), "{e}");
    let e = err("vip = \"198.18.0.11\"\n");
    assert!(e.contains("default node address"), "{e}");
}

#[test]
fn reserved_addresses_are_refused() {
    let e = err("vip = \"198.18.0.254\"\n");
    assert!(e.contains("gateway"), "{e}");
    let e = err("vip = \"198.18.0.253\"\n");
    assert!(e.contains("shim"), "{e}");
}

#[test]
fn ports_are_checked() {
    assert!(err("redis_port = 70000\n").contains("out of range"));
    assert!(err("sentinel_port = 6379\n").contains("equals redis_port"));
}

#[test]
fn bad_names_are_refused() {
    let e = err("name = \"Bad Name\"\n");
    assert!(e.contains("not a valid name"), "{e}");
    assert!(e.contains("hint:"), "{e}");
}

#[test]
fn names_of_the_state_roots_own_folders_are_refused() {
    let e = err("name = \"reports\"\n");
    assert!(e.contains("t.toml:1:8"), "{e}");
    assert!(e.contains("folder of the state root"), "{e}");
    assert!(parse("name = \"reports2\"\n").is_ok());
}

#[test]
fn max_lag_without_min_replicas_is_refused() {
    assert!(err("min_replicas_max_lag = 10\n").contains("without min_replicas_to_write"));
}

#[test]
fn missing_script_is_refused_relative_to_the_file() {
    let e = err("reconfig_script = \"nope.sh\"\n");
    assert!(e.contains("nope.sh is not a file"), "{e}");
}

#[test]
fn relocation_keeps_host_parts() {
    let t = Topology::default_topology()
        .relocated("other", crate::model::net::Subnet::test_slot(7))
        .unwrap();
    assert_eq!(t.name, "other");
    assert_eq!(t.vip, Ipv4Addr::new(198, 18, 7, 100));
    assert_eq!(t.nodes[2].ip, Ipv4Addr::new(198, 18, 7, 13));
}

#[test]
fn seeds_parse_with_their_values() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/topologies");
    let v = Topology::from_file(&dir.join("seed-vip.toml"), &ParseOptions::default()).unwrap();
    assert_eq!(
        (v.redis_port, v.sentinel_port, v.master_name.as_str()),
        (8000, 6800, "master8000")
    );
    assert_eq!((v.down_after_ms, v.failover_timeout_ms), (5000, 15000));
    assert!(v.reconfig_script.unwrap().ends_with("notify_master6800.sh"));
    let p = Topology::from_file(&dir.join("seed-python.toml"), &ParseOptions::default()).unwrap();
    assert_eq!(
        (p.down_after_ms, p.failover_timeout_ms, p.parallel_syncs),
        (60000, 180000, 1)
    );
    assert_eq!(
        (p.min_replicas_to_write, p.min_replicas_max_lag),
        (Some(1), Some(10))
    );
}

#[test]
fn diff_names_each_key_that_differs() {
    let a = Topology::default_topology();
    assert!(a.diff(&a.clone()).is_empty());
    let mut b = a.clone();
    b.down_after_ms = 3000;
    b.quorum = 3;
    let d = a.diff(&b);
    assert_eq!(
        d,
        [
            "`down_after_ms`: 2000 here, 3000 there",
            "`quorum`: 2 here, 3 there"
        ]
    );
}

#[test]
fn the_state_roots_own_folders_are_refused_as_names() {
    // every folder a command writes beside the testbeds' state dirs
    for folder in [
        "bench", "reports", "runs", "matrix", "flake", "clients", "images",
    ] {
        let e = err(&format!("name = \"{folder}\"\n"));
        assert!(
            e.contains("t.toml:1:8") && e.contains("a folder of the state root"),
            "{folder}: {e}"
        );
    }
}
