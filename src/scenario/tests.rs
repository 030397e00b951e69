use super::*;
use crate::error::Result;
use crate::model::target::Target;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios")
}

fn parse(text: &str) -> Result<Scenario> {
    Scenario::parse(text, &dir().join("t.toml"))
}

#[test]
fn every_shipped_scenario_parses() {
    let mut n = 0;
    for e in std::fs::read_dir(dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let s = Scenario::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(!s.steps.is_empty(), "{}", p.display());
            assert!(!s.expect.is_empty(), "{}", p.display());
            // a reproduction says what is claimed and where
            assert!(!s.description.is_empty(), "{}: no description", p.display());
            assert!(!s.sources.is_empty(), "{}: no source", p.display());
            assert!(s.key_measure.is_some(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 25, "only {n} scenarios");
}

#[test]
fn command_steps_and_their_mistakes() {
    let s = parse(
        "[[step]]\naction = \"command\"\ntarget = \"master\"\nargs = [\"CONFIG\", \"SET\", \"dir\", \"/proc\"]\nrole = \"fault\"\n\
         [[step]]\naction = \"sentinel-command\"\ntarget = \"replicas\"\nargs = [\"SENTINEL\", \"SET\", \"mymaster\", \"quorum\", \"2\"]\ntimeout_ms = 900\nexpect_error = \"ERR\"\n\
         [[step]]\naction = \"failover\"\nvia = \"node2\"\ncoordinated = true\nexpect_error = \"NOGOODSLAVE\"\n",
    )
    .unwrap();
    let Action::Command { command, .. } = &s.steps[0].action else {
        panic!("{:?}", s.steps[0]);
    };
    assert_eq!(command.role, crate::model::verb::Role::Fault);
    assert_eq!(command.timeout_ms, 5000);
    assert_eq!(s.steps[0].action.role(), crate::model::verb::Role::Fault);
    let Action::SentinelCommand { command, target } = &s.steps[1].action else {
        panic!("{:?}", s.steps[1]);
    };
    assert_eq!((command.timeout_ms, target), (900, &Target::Replicas));
    assert_eq!(s.steps[1].expect_error.as_deref(), Some("ERR"));
    assert!(matches!(
        s.steps[2].action,
        Action::Failover {
            coordinated: true,
            ..
        }
    ));
    let cases = [
        (
            "[[step]]\naction = \"command\"\ntarget = \"master\"\n",
            "t.toml:1:1:",
            "step `command` needs `args`",
        ),
        (
            "[[step]]\naction = \"command\"\ntarget = \"master\"\nargs = []\n",
            "t.toml:4:8:",
            "the command is empty",
        ),
        (
            "[[step]]\naction = \"command\"\ntarget = \"master\"\nargs = [\"PING\"]\nrole = \"boss\"\n",
            "t.toml:5:8:",
            "want fault, repair or control",
        ),
        (
            "[[step]]\naction = \"kill\"\ntarget = \"master\"\nexpect_error = \"X\"\n",
            "t.toml:4:16:",
            "key `expect_error` does not apply to `kill`",
        ),
        (
            "[[step]]\naction = \"failover\"\nexpect_error = \"\"\n",
            "t.toml:3:16:",
            "the text is empty",
        ),
        (
            "[[step]]\naction = \"kill\"\ntarget = \"master\"\ncoordinated = true\n",
            "t.toml:4:15:",
            "key `coordinated` does not apply to `kill`",
        ),
    ];
    for (text, at, want) in cases {
        let e = parse(text).map(drop).unwrap_err().to_string();
        assert!(
            e.contains(at) && e.contains(want),
            "want `{at}` + `{want}` in: {e}"
        );
    }
}

#[test]
fn waits_for_a_named_master_or_an_event() {
    let s = parse(
        "[[step]]\naction = \"wait\"\nuntil = \"master\"\ntarget = \"node1\"\n\
         [[step]]\naction = \"wait\"\nuntil = \"event\"\nevent = \"+odown\"\ntarget = \"node2\"\ntimeout_ms = 100\n",
    )
    .unwrap();
    assert!(matches!(
        &s.steps[0].action,
        Action::Wait { until: Until::Master, target: Some(Target::Node(n)), event: None, .. } if n == "node1"
    ));
    assert!(matches!(
        &s.steps[1].action,
        Action::Wait { until: Until::Event, event: Some(e), timeout_ms: 100, .. } if e == "+odown"
    ));
    let cases = [
        (
            "[[step]]\naction = \"wait\"\nuntil = \"master\"\n",
            "t.toml:1:1:",
            "needs `target`",
        ),
        (
            "[[step]]\naction = \"wait\"\nuntil = \"master\"\ntarget = \"replicas\"\n",
            "t.toml:4:10:",
            "names no fixed node",
        ),
        (
            "[[step]]\naction = \"wait\"\nuntil = \"event\"\n",
            "t.toml:1:1:",
            "needs `event`",
        ),
        (
            "[[step]]\naction = \"wait\"\nuntil = \"event\"\nevent = \"+odwn\"\n",
            "t.toml:4:9:",
            "`+odwn` is not a sentinel event",
        ),
        (
            "[[step]]\naction = \"wait\"\nuntil = \"switch\"\ntarget = \"node1\"\n",
            "t.toml:4:10:",
            "does not apply to until = \"switch\"",
        ),
    ];
    for (text, at, want) in cases {
        let e = parse(text).map(drop).unwrap_err().to_string();
        assert!(
            e.contains(at) && e.contains(want),
            "want `{at}` + `{want}` in: {e}"
        );
    }
}

#[test]
fn dotted_measures_parse_and_their_mistakes_are_located() {
    let s = parse(
        "[[step]]\naction = \"heal\"\n[expect]\nevents.\"+reboot\" = \">= 1\"\nevents.\"+sdown\".node2 = 0\n\
         refused_writes.NOREPLICAS = \"> 0\"\ninfo.master.dbsize = 0\ninfo.node1.role = \"master\"\n\
         sentinel.node3.flags = \"~ disconnected\"\nsentinel_running.node2 = false\npromoted_node = \"node3\"\n\
         key_measure_is_not_here = 1\n",
    );
    assert!(
        parse_err(&s).contains("t.toml:12:1:") && parse_err(&s).contains("not a known measure"),
        "{}",
        parse_err(&s)
    );
    let s = parse(
        "key_measure = \"info.master.dbsize\"\n[[step]]\naction = \"heal\"\n[expect]\nevents.\"+reboot\" = \">= 1\"\n\
         events.\"+sdown\".node2 = 0\nrefused_writes.NOREPLICAS = \"> 0\"\ninfo.master.dbsize = 0\n\
         info.node1.role = \"master\"\nsentinel.node3.flags = \"~ disconnected\"\nsentinel_running.node2 = false\n\
         promoted_node = \"node3\"\n",
    )
    .unwrap();
    let by = |p: &str| s.expect.iter().find(|e| e.path() == p).unwrap().clone();
    assert_eq!(by("events.+sdown.node2").args, ["+sdown", "node2"]);
    assert_eq!(by("events.+reboot").source, "events.\"+reboot\" = \">= 1\"");
    assert_eq!(by("info.node1.role").bound, Bound::Text("master".into()));
    assert_eq!(
        by("sentinel.node3.flags").bound,
        Bound::Contains("disconnected".into())
    );
    assert_eq!(by("sentinel_running.node2").bound, Bound::Number(0.0));
    assert_eq!(s.key_measure.as_deref(), Some("info.master.dbsize"));
    let cases = [
        (
            "[expect]\nevents.\"+rebot\" = 1\n",
            "t.toml:2:8:",
            "not one of the sentinel events",
        ),
        (
            "[expect]\nfailovers = 0\ninfo.node9.role = \"master\"\n",
            "t.toml:3:12:",
            "no node named `node9`",
        ),
        (
            "[expect]\ninfo.node1.role = 1\n",
            "t.toml:2:12:",
            "compared for equality",
        ),
        // a claim on a measure that does not exist
        (
            "[expect]\nfailovers = 1\nsdown_flaps = 2\n",
            "t.toml:3:1:",
            "is not a known measure",
        ),
        (
            "[expect]\npromoted_node = \"node7\"\n",
            "t.toml:2:1:",
            "neither a role nor a node",
        ),
        (
            "key_measure = \"failovers\"\n[expect]\nlost_acknowledged_writes = 0\n",
            "t.toml:1:15:",
            "not a measure of this scenario",
        ),
    ];
    for (text, at, want) in cases {
        let e = parse(text).map(drop).unwrap_err().to_string();
        assert!(
            e.contains(at) && e.contains(want),
            "want `{at}` + `{want}` in: {e}"
        );
    }
}

fn parse_err(r: &Result<Scenario>) -> String {
    match r {
        Ok(_) => "parsed".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn overrides_reach_the_topology() {
    let s = Scenario::from_file(&dir().join("double-failover.toml")).unwrap();
    assert_eq!(s.topology.down_after_ms, 1000);
    let s = Scenario::from_file(&dir().join("split-brain-min-replicas.toml")).unwrap();
    assert_eq!(
        (
            s.topology.min_replicas_to_write,
            s.topology.min_replicas_max_lag
        ),
        (Some(1), Some(10))
    );
}

#[test]
fn expectations_parse_with_their_comparison() {
    let s = parse("[[step]]\naction = \"heal\"\n[expect]\nfailovers = 1\nlost_acknowledged_writes = \"> 0\"\npromoted_within_ms = 5000\n").unwrap();
    let by = |m: Measure| s.expect.iter().find(|e| e.measure == m).unwrap().clone();
    assert_eq!(by(Measure::Failovers).op, Cmp::Eq);
    assert_eq!(by(Measure::LostAcknowledgedWrites).op, Cmp::Gt);
    assert_eq!(by(Measure::PromotedWithinMs).op, Cmp::Le);
}

#[test]
fn errors_name_file_line_and_column() {
    let e = parse("[[step]]\naction = \"explode\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:2:10:"), "{e}");
    assert!(e.contains("`explode` is not an action"), "{e}");
    let e = parse("[[step]]\naction = \"kill\"\ntarget = \"node9\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.toml:3:10:") && e.contains("no node named `node9`"),
        "{e}"
    );
    assert!(e.contains("the nodes are node1, node2, node3"), "{e}");
    let e = parse("[expect]\nfailovers = \"about 1\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a comparison"), "{e}");
    let e = parse("[topology_overrides]\nquorum = 7\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:1:1:") && e.contains("quorum"), "{e}");
    let e = parse("[workload]\npath = \"carrier-pigeon\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:2:8:"), "{e}");
}

#[test]
fn an_external_client_and_its_expectations_parse() {
    let s = parse(
        "[external_client]\nname = \"redis-py\"\ncommand = [\"python3\", \"../clients/redis_py_sentinel.py\"]\nrate = 20\n\
         [[step]]\naction = \"kill\"\ntarget = \"master\"\n\
         [expect]\nfailovers = 1\nexternal.lost_acknowledged_writes = 0\nexternal.client_recovered_within_ms = 9000\n",
    )
    .unwrap();
    let x = s.external.clone().unwrap();
    assert_eq!(
        (x.name.as_str(), x.rate, x.timeout_ms),
        ("redis-py", 20, 1000)
    );
    assert_eq!(x.dir, dir());
    assert_eq!(x.key_prefix(), "wl:redis-py:");
    let ext: Vec<&str> = s
        .expect
        .iter()
        .filter(|e| e.external)
        .map(|e| e.source.as_str())
        .collect();
    assert_eq!(
        ext,
        [
            "external.client_recovered_within_ms = 9000",
            "external.lost_acknowledged_writes = 0",
        ]
    );
    assert!(!s
        .expect
        .iter()
        .any(|e| e.external && e.measure == Measure::Failovers));
}

#[test]
fn external_client_mistakes_are_named() {
    let cases = [
        (
            "[expect.external]\nlost_acknowledged_writes = 0\n",
            "the scenario has no `[external_client]`",
        ),
        (
            "[external_client]\ncommand = [\"true\"]\n[expect.external]\nfailovers = 1\n",
            "`failovers` is not measured per client",
        ),
        (
            "[external_client]\nname = \"no spaces\"\ncommand = [\"true\"]\n",
            "t.toml:2:8: key `external_client.name`: `no spaces` is not a usable name",
        ),
        (
            "[external_client]\ncommand = []\n",
            "t.toml:2:11: key `external_client.command`: the command is empty",
        ),
        (
            "[external_client]\ncommand = [\"true\"]\nrate = \"fast\"\n",
            "t.toml:3:8:",
        ),
    ];
    for (text, want) in cases {
        let e = parse(&format!("[[step]]\naction = \"heal\"\n{text}"))
            .map(drop)
            .unwrap_err()
            .to_string();
        // the step adds two lines in front
        let want = want
            .replace("t.toml:2:", "t.toml:4:")
            .replace("t.toml:3:", "t.toml:5:");
        assert!(e.contains(&want), "want `{want}` in: {e}");
    }
}

#[test]
fn a_missing_client_program_is_a_prerequisite_error() {
    let s =
        parse("[external_client]\ncommand = [\"./no-such-client\"]\n[[step]]\naction = \"heal\"\n")
            .unwrap();
    let e = s.external.unwrap().program().unwrap_err().to_string();
    assert!(
        e.contains("program `./no-such-client` not found (relative to") && e.contains("hint:"),
        "{e}"
    );
}

#[test]
fn old_action_names_are_refused_with_the_new_one() {
    for (old, new) in [
        ("kill-sentinel", "sentinel-kill"),
        ("crash-sentinel", "sentinel-crash"),
        ("unpause", "resume"),
        ("unpause-sentinel", "sentinel-resume"),
    ] {
        let e = parse(&format!(
            "[[step]]\naction = \"{old}\"\ntarget = \"node1\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.toml:2:10:") && e.contains(&format!("was renamed `{new}`")),
            "{e}"
        );
    }
}

#[test]
fn typed_values_are_checked_when_the_file_is_read() {
    let cases = [
        // a wait condition that does not exist
        (
            "[[step]]\naction = \"wait\"\nuntil = \"soon\"\n",
            "t.toml:3:9:",
            "`soon` is not a condition",
        ),
        // a mode for simulate-failure
        (
            "[[step]]\naction = \"simulate-failure\"\ntarget = \"node1\"\nmode = \"boom\"\n",
            "t.toml:4:8:",
            "crash-after-election",
        ),
        // a key the verb does not take
        (
            "[[step]]\naction = \"kill\"\ntarget = \"node1\"\nms = 5\n",
            "t.toml:4:6:",
            "key `ms` does not apply to `kill`",
        ),
        // negative time
        ("[[step]]\naction = \"sleep\"\nms = -5\n", "t.toml:3:6:", ""),
        // `replicas` where one node is needed
        (
            "[[step]]\naction = \"failover\"\nvia = \"replicas\"\n",
            "t.toml:3:7:",
            "aimed at one node",
        ),
        // `host` is no node
        (
            "[[step]]\naction = \"partition\"\na = [\"host\"]\nb = []\n",
            "t.toml:3:5:",
            "`host` is not a node",
        ),
        // a bound that is not a number
        (
            "[expect]\npromoted_within_ms = \"<= soon\"\n",
            "t.toml:2:1:",
            "`soon` is not a number",
        ),
        // a rate of zero
        (
            "[workload]\npath = \"vip\"\nrate = 0\n",
            "t.toml:3:8:",
            "outside 1..=1000",
        ),
    ];
    for (text, at, want) in cases {
        let e = parse(text).map(drop).unwrap_err().to_string();
        assert!(
            e.contains(at) && e.contains(want),
            "want `{at}` + `{want}` in: {e}"
        );
    }
}

#[test]
fn targets_are_typed() {
    let s = parse(
        "[[step]]\naction = \"kill\"\ntarget = \"master\"\n\
         [[step]]\naction = \"start\"\ntarget = \"initial-master\"\n\
         [[step]]\naction = \"sentinel-pause\"\ntarget = \"replicas\"\n\
         [[step]]\naction = \"partition\"\na = [\"node1\"]\nb = []\none_way = true\n",
    )
    .unwrap();
    let targets: Vec<Vec<&Target>> = s.steps.iter().map(|st| st.action.targets()).collect();
    assert_eq!(targets[0], [&Target::Master]);
    assert_eq!(targets[1], [&Target::InitialMaster]);
    assert_eq!(targets[2], [&Target::Replicas]);
    assert_eq!(targets[3], [&Target::Node("node1".into())]);
    assert_eq!(s.steps[1].line, 4);
    assert!(matches!(
        s.steps[3].action,
        Action::Partition {
            direction: crate::model::target::Direction::OneWay,
            ..
        }
    ));
}

#[test]
fn sources_are_references_of_known_forms() {
    let s = parse(
        "source = [\"redis/redis#6062\", \"valkey-io/valkey:tests/sentinel/tests/12-primary-reboot.tcl\", \"article:vip-notify\", \"https://example.org/x\"]\n[[step]]\naction = \"heal\"\n",
    )
    .unwrap();
    let text: Vec<String> = s.sources.iter().map(Source::text).collect();
    assert_eq!(text[0], "redis/redis#6062");
    assert_eq!(
        s.sources[0].url().unwrap(),
        "https://github.com/redis/redis/issues/6062"
    );
    assert!(matches!(s.sources[1], Source::File { .. }));
    let e = parse("source = \"somewhere on the internet\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.toml:1:10:") && e.contains("not a source reference"),
        "{e}"
    );
}
