//! Unit tests of the rule table.

use super::*;

const A: &str = "198.18.250.1";
const B: &str = "198.18.250.2";
const C: &str = "198.18.251.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn table(json: &str) -> RuleTable {
    RuleTable::default().install(&parse(json).unwrap(), 0)
}

#[test]
fn parses_documented_format() {
    let f = parse(
        r#"{"rules":[
          {"name":"x","src":"198.18.250.1","dst":"198.18.250.2","effect":{"delay":{"ms":50,"jitter_ms":20}}},
          {"dst":"198.18.250.2","effect":{"loss":{"percent":30}}},
          {"src":"198.18.250.1","effect":{"flap":{"up_ms":500,"down_ms":500}}}]}"#,
    )
    .unwrap();
    assert_eq!(f.rules.len(), 3);
    assert_eq!(
        f.rules[0].effect,
        Effect::Delay {
            ms: 50,
            jitter_ms: 20
        }
    );
    assert_eq!(f.rules[1].src, None);
    assert_eq!(
        f.rules[2].effect,
        Effect::Flap {
            up_ms: 500,
            down_ms: 500,
            phase_ms: 0
        }
    );
    let round = parse(&serde_json::to_string(&f).unwrap()).unwrap();
    assert_eq!(round, f);
    assert_eq!(parse("{}").unwrap().rules.len(), 0);
}

#[test]
fn rejects_bad_files() {
    for bad in [
        r#"{"rules":[{"effect":{"loss":{"percent":101}}}]}"#,
        r#"{"rules":[{"effect":{"flap":{"up_ms":0,"down_ms":0}}}]}"#,
        r#"{"rules":[{"effect":{"delay":{"ms":60001}}}]}"#,
        r#"{"rules":[{"effect":{"delay":{"ms":5,"jiter_ms":1}}}]}"#,
        r#"{"rules":[{"sorce":"198.18.250.1","effect":{"delay":{"ms":5}}}]}"#,
        r#"{"rules":[{"src":"not-an-ip","effect":{"delay":{"ms":5}}}]}"#,
        r#"{"rules":[{"effect":{"teleport":{}}}]}"#,
        r#"{"rules":[{"effect":{"delay":{"ms":5}}}"#, // half-written
        "",
    ] {
        assert!(parse(bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn match_is_one_direction_of_one_pair() {
    let t = table(
        r#"{"rules":[{"src":"198.18.250.1","dst":"198.18.250.2","effect":{"delay":{"ms":10}}}]}"#,
    );
    let mut r = SplitMix64::new(1);
    assert_eq!(
        t.decide(ip(A), ip(B), 0, &mut r),
        Fate::Pass { delay_us: 10_000 }
    );
    assert_eq!(
        t.decide(ip(B), ip(A), 0, &mut r),
        Fate::Pass { delay_us: 0 }
    );
    assert_eq!(
        t.decide(ip(A), ip(C), 0, &mut r),
        Fate::Pass { delay_us: 0 }
    );
}

#[test]
fn loss_rate_is_close_to_asked() {
    for percent in [1.0, 10.0, 30.0, 50.0] {
        let t = table(&format!(
            r#"{{"rules":[{{"effect":{{"loss":{{"percent":{percent}}}}}}}]}}"#
        ));
        let mut r = SplitMix64::new(20_240_601);
        let n = 10_000;
        let dropped = (0..n)
            .filter(|_| {
                matches!(
                    t.decide(ip(A), ip(B), 0, &mut r),
                    Fate::Drop(DropReason::Loss)
                )
            })
            .count();
        let measured = dropped as f64 * 100.0 / n as f64;
        assert!(
            (measured - percent).abs() <= 2.0,
            "asked {percent}, got {measured}"
        );
    }
}

#[test]
fn jitter_stays_in_bounds_and_spreads() {
    let t = table(r#"{"rules":[{"effect":{"delay":{"ms":50,"jitter_ms":20}}}]}"#);
    let mut r = SplitMix64::new(3);
    let (mut min, mut max, mut sum) = (u64::MAX, 0, 0u64);
    for _ in 0..10_000 {
        let Fate::Pass { delay_us } = t.decide(ip(A), ip(B), 0, &mut r) else {
            panic!()
        };
        assert!((30_000..=70_000).contains(&delay_us));
        min = min.min(delay_us);
        max = max.max(delay_us);
        sum += delay_us;
    }
    assert!(min < 31_000 && max > 69_000, "spread {min}..{max}");
    assert!((sum / 10_000).abs_diff(50_000) < 1_000);
    // jitter larger than the delay clamps at zero instead of going negative
    let t = table(r#"{"rules":[{"effect":{"delay":{"ms":1,"jitter_ms":5}}}]}"#);
    for _ in 0..1000 {
        let Fate::Pass { delay_us } = t.decide(ip(A), ip(B), 0, &mut r) else {
            panic!()
        };
        assert!(delay_us <= 6_000);
    }
}

#[test]
fn flap_schedule_boundaries() {
    let ms = 1_000_000u64;
    assert!(flap_is_up(500, 500, 0, 0));
    assert!(flap_is_up(500, 500, 0, 500 * ms - 1));
    assert!(!flap_is_up(500, 500, 0, 500 * ms));
    assert!(!flap_is_up(500, 500, 0, 1000 * ms - 1));
    assert!(flap_is_up(500, 500, 0, 1000 * ms));
    assert!(flap_is_up(500, 500, 0, 10_000 * ms + 499 * ms));
    // phase: starting in the down phase
    assert!(!flap_is_up(500, 500, 500, 0));
    assert!(flap_is_up(500, 500, 500, 500 * ms));
    // degenerate schedules
    assert!(!flap_is_up(0, 100, 0, 5 * ms));
    assert!(flap_is_up(100, 0, 0, 5 * ms));
    // the table measures time from the rule's install time
    let f = parse(r#"{"rules":[{"effect":{"flap":{"up_ms":100,"down_ms":200}}}]}"#).unwrap();
    let t = RuleTable::default().install(&f, 7 * ms);
    let mut r = SplitMix64::new(1);
    assert_eq!(
        t.decide(ip(A), ip(B), 7 * ms + 99 * ms, &mut r),
        Fate::Pass { delay_us: 0 }
    );
    assert_eq!(
        t.decide(ip(A), ip(B), 7 * ms + 100 * ms, &mut r),
        Fate::Drop(DropReason::Flap)
    );
    assert_eq!(
        t.decide(ip(A), ip(B), 7 * ms + 300 * ms, &mut r),
        Fate::Pass { delay_us: 0 }
    );
}

#[test]
fn composition_adds_delays_and_drops_win() {
    let t = table(
        r#"{"rules":[
        {"dst":"198.18.250.2","effect":{"delay":{"ms":10}}},
        {"src":"198.18.250.1","dst":"198.18.250.2","effect":{"delay":{"ms":5}}},
        {"dst":"198.18.251.2","effect":{"delay":{"ms":10}}},
        {"dst":"198.18.251.2","effect":{"loss":{"percent":100}}}]}"#,
    );
    let mut r = SplitMix64::new(9);
    assert_eq!(
        t.decide(ip(A), ip(B), 0, &mut r),
        Fate::Pass { delay_us: 15_000 }
    );
    assert_eq!(
        t.decide(ip(A), ip(C), 0, &mut r),
        Fate::Drop(DropReason::Loss)
    );
    // two independent 50% losses pass ~25%
    let t = table(
        r#"{"rules":[{"effect":{"loss":{"percent":50}}},{"effect":{"loss":{"percent":50}}}]}"#,
    );
    let passed = (0..10_000)
        .filter(|_| matches!(t.decide(ip(A), ip(B), 0, &mut r), Fate::Pass { .. }))
        .count();
    assert!((2_300..=2_700).contains(&passed), "{passed}");
}

#[test]
fn same_seed_same_decisions() {
    let t = table(
        r#"{"rules":[{"effect":{"loss":{"percent":30}}},{"effect":{"delay":{"ms":20,"jitter_ms":10}}}]}"#,
    );
    let run = |seed| {
        let mut r = SplitMix64::new(seed);
        (0..500)
            .map(|_| t.decide(ip(A), ip(B), 0, &mut r))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn reload_keeps_install_time_of_unchanged_rules() {
    let ms = 1_000_000u64;
    let flap = r#"{"effect":{"flap":{"up_ms":100,"down_ms":100}}}"#;
    let other = r#"{"effect":{"delay":{"ms":1}}}"#;
    let t1 = RuleTable::default().install(&parse(&format!(r#"{{"rules":[{flap}]}}"#)).unwrap(), 0);
    let t2 = t1.install(
        &parse(&format!(r#"{{"rules":[{other},{flap}]}}"#)).unwrap(),
        50 * ms,
    );
    let mut r = SplitMix64::new(1);
    // still on the schedule started at 0: down at 150 ms (a fresh one would be up)
    assert_eq!(
        t2.decide(ip(A), ip(B), 150 * ms, &mut r),
        Fate::Drop(DropReason::Flap)
    );
    let changed = r#"{"effect":{"flap":{"up_ms":100,"down_ms":101}}}"#;
    let t3 = t2.install(
        &parse(&format!(r#"{{"rules":[{changed}]}}"#)).unwrap(),
        150 * ms,
    );
    assert_eq!(
        t3.decide(ip(A), ip(B), 150 * ms, &mut r),
        Fate::Pass { delay_us: 0 }
    );
    assert_eq!(t3.len(), 1);
    assert_eq!(t3.to_file().rules.len(), 1);
}

#[test]
fn atomic_write_round_trips() {
    let dir = std::env::temp_dir().join(format!("netem-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rules.json");
    let f =
        parse(r#"{"rules":[{"dst":"198.18.250.2","effect":{"loss":{"percent":12.5}}}]}"#).unwrap();
    write_atomically(&path, &f).unwrap();
    let back = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back, f);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temp file left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
