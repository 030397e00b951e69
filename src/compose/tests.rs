use super::*;
use crate::model::topology::ParseOptions;
use std::path::Path;

fn fixture() -> Topology {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/topology.toml");
    Topology::from_file(&p, &ParseOptions::default()).unwrap()
}

fn get<'a>(files: &'a [File], path: &str) -> &'a File {
    files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"))
}

#[test]
fn configs_are_those_up_renders_for_the_compose_testbed() {
    let t = fixture();
    let files = render(&t, "fixtures/topology.toml").unwrap();
    let ct = topology(&t).unwrap();
    for n in &ct.nodes {
        let r = &get(&files, &format!("conf/{}/redis.conf", n.name)).contents;
        let (head, rest) = r.split_once('\n').unwrap();
        assert!(head.contains(GENERATED), "{head}");
        assert_eq!(rest, render::redis_conf(&ct, n));
        let s = &get(&files, &format!("conf/{}/sentinel.conf", n.name)).contents;
        assert_eq!(s.split_once('\n').unwrap().1, render::sentinel_conf(&ct, n));
    }
    let w = &get(&files, "script/wrapper.sh").contents;
    assert_eq!(
        w.lines()
            .filter(|l| !l.contains(GENERATED))
            .collect::<Vec<_>>(),
        render::WRAPPER.lines().collect::<Vec<_>>()
    );
}

#[test]
fn every_file_says_it_is_generated_and_scripts_keep_their_shebang() {
    for f in render(&fixture(), "x.toml").unwrap() {
        assert!(
            f.contents.lines().take(2).any(|l| l.contains(GENERATED)),
            "{}",
            f.path
        );
        if f.mode == 0o755 {
            assert!(f.contents.starts_with("#!/testbed/bin/sh\n"), "{}", f.path);
        }
    }
}

#[test]
fn no_name_collides_with_those_of_up() {
    let t = fixture();
    let (up, compose) = (Names::new(&t.name), names(&t));
    let files = render(&t, "x").unwrap();
    let y = &get(&files, COMPOSE_FILE).contents;
    for n in &t.nodes {
        for name in [up.redis(&n.name), up.sentinel(&n.name)] {
            assert!(!y.contains(&format!("\"{name}\"")), "{name}");
        }
        assert!(y.contains(&compose.redis(&n.name)));
        assert!(y.contains(&mac_for(n.ip)));
    }
    assert!(!y.contains(&format!("\"{}\"", up.network)));
    assert!(!y.contains(&up.parent));
    assert!(y.contains(&format!("${{TESTBED_PARENT:-{}}}", compose.parent)));
    assert_ne!(up.parent, compose.parent);
    assert_ne!(up.shim, compose.shim);
}

#[test]
fn the_compose_file_uses_the_variables_and_labels() {
    let y = get(&render(&fixture(), "x").unwrap(), COMPOSE_FILE)
        .contents
        .clone();
    assert!(y.contains("version: \"2.4\"\n"));
    assert!(y.contains("image: \"${TESTBED_IMAGE:-testbed/redis:8.0}\""));
    assert!(y.contains("source: \"${TESTBED_BUSYBOX:-/usr/bin/busybox}\""));
    assert!(y.contains("network_mode: \"service:redis-node1\""));
    assert_eq!(y.matches("TESTBED_BIND_VIP: \"yes\"").count(), 1);
    assert_eq!(
        y.matches(&format!("{LABEL_NAME}: \"compose-testbed\""))
            .count(),
        7
    );
    // no literal `$` reaches compose's interpolation unescaped
    for l in y.lines().filter(|l| !l.starts_with('#')) {
        let rest = l.replace("$$", "").replace("${", "");
        assert!(!rest.contains('$'), "{l}");
    }
}

#[test]
fn quoting_is_literal_for_compose() {
    assert_eq!(q(r#"a"b\c$d"#), r#""a\"b\\c$$d""#);
    let mut t = fixture();
    t.image = "bad image".into();
    let e = render(&t, "x").unwrap_err().to_string();
    assert!(e.contains("TESTBED_IMAGE"), "{e}");
}

#[test]
fn a_long_name_is_refused_with_a_hint() {
    let mut t = fixture();
    t.name = "a-name-of-twenty-chars".into();
    let e = topology(&t).unwrap_err().to_string();
    assert!(e.contains("at most 16"), "{e}");
}

#[test]
fn a_script_without_shebang_is_left_alone() {
    assert_eq!(after_shebang("echo hi\n", "# h\n"), "echo hi\n");
    assert_eq!(
        after_shebang("#!/bin/sh\necho\n", "# h\n"),
        "#!/bin/sh\n# h\necho\n"
    );
}

#[test]
fn check_finds_stale_missing_extra_and_mode_and_write_fixes_them() {
    let dir = std::env::temp_dir().join(format!("testbed-compose-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = render(&fixture(), "x").unwrap();
    assert_eq!(check(&dir, &files).unwrap().len(), files.len());
    write(&dir, &files).unwrap();
    assert!(check(&dir, &files).unwrap().is_empty());

    std::fs::write(dir.join("conf/node1/redis.conf"), "edited\n").unwrap();
    std::fs::write(dir.join("conf/node1/extra"), "x").unwrap();
    std::fs::remove_file(dir.join("script/script.sh")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("bin/boot-redis");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let d = check(&dir, &files).unwrap().join("\n");
    assert!(d.contains("conf/node1/redis.conf: differs"), "{d}");
    assert!(d.contains("line 1"), "{d}");
    assert!(d.contains("conf/node1/extra: not part"), "{d}");
    assert!(d.contains("script/script.sh: missing"), "{d}");
    assert!(d.contains("bin/boot-redis: mode 644"), "{d}");

    let w = write(&dir, &files).unwrap();
    assert_eq!(w.changed.len(), 3, "{w:?}");
    assert_eq!(w.removed, vec!["conf/node1/extra".to_string()]);
    assert!(check(&dir, &files).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn write_refuses_a_directory_that_is_no_project() {
    let dir = std::env::temp_dir().join(format!("testbed-compose-foreign-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let e = write(&dir, &render(&fixture(), "x").unwrap()).unwrap_err();
    assert!(e.to_string().contains("not overwriting"), "{e}");
    assert!(dir.join("notes.txt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dot_env_pins_the_legacy_api_so_that_macs_survive_modern_engines() {
    let files = render(&fixture(), "x").unwrap();
    let env = &get(&files, ".env").contents;
    assert!(
        env.contains("COMPOSE_PROJECT_NAME=compose-testbed\n"),
        "{env}"
    );
    let pin = cli::pinned_api(None, Some(env)).expect("a COMPOSE_API_VERSION line");
    assert_eq!(format!("{}.{}", pin.0, pin.1), LEGACY_API);
    assert!(pin < cli::ENDPOINT_MAC_API);
    // every setting line is KEY=VALUE (docker-compose 1.29 and v2 parse it)
    for l in env.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (k, v) = l.split_once('=').unwrap();
        assert!(k.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{l}");
        assert!(!v.is_empty() && !v.contains(' '), "{l}");
    }
    // the MAC stays a service key (format 2.4), never a per-network one
    let y = &get(&files, COMPOSE_FILE).contents;
    assert_eq!(y.matches("\n    mac_address: ").count(), 3);
    assert!(!y.contains("\n        mac_address: "));
}
