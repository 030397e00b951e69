use super::*;

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn cli(flavor: Flavor, cmd: &str, version: (u32, u32, u32)) -> ComposeCli {
    ComposeCli {
        flavor,
        argv: argv(cmd),
        version,
    }
}

#[test]
fn versions_of_every_flavor_parse() {
    assert_eq!(parse_version("2.40.3\n"), Some((2, 40, 3)));
    assert_eq!(parse_version("v2.40.3"), Some((2, 40, 3)));
    assert_eq!(parse_version("2.40.3-3\n"), Some((2, 40, 3)));
    assert_eq!(
        parse_version("Docker Compose version v2.40.3\n"),
        Some((2, 40, 3))
    );
    assert_eq!(parse_version("1.29.2\n"), Some((1, 29, 2)));
    assert_eq!(
        parse_version("docker-compose version 1.29.2, build unknown\ndocker-py version: 5.0.3\n"),
        Some((1, 29, 2))
    );
    assert_eq!(parse_version("2.26.1+ds1-0+deb13u1"), Some((2, 26, 1)));
    assert_eq!(
        parse_version("docker: 'compose' is not a docker command."),
        None
    );
    assert_eq!(parse_version(""), None);
}

#[test]
fn flavors_follow_the_command_and_the_major_version() {
    assert_eq!(
        classify(&argv("docker compose"), (2, 40, 3)),
        Flavor::Plugin
    );
    assert_eq!(
        classify(&argv("docker-compose"), (2, 40, 3)),
        Flavor::Standalone
    );
    assert_eq!(
        classify(&argv("docker-compose"), (1, 29, 2)),
        Flavor::Legacy
    );
    assert_eq!(
        classify(&argv("/opt/x/docker-compose"), (2, 26, 1)),
        Flavor::Standalone
    );
}

#[test]
fn candidates_prefer_the_variable_then_the_plugin() {
    assert_eq!(
        candidates(None),
        vec![argv("docker compose"), argv("docker-compose")]
    );
    assert_eq!(
        candidates(Some(" docker compose ")),
        vec![argv("docker compose")]
    );
    assert_eq!(candidates(Some("")).len(), 2);
}

#[test]
fn commands_keep_the_output_plain_in_each_flavors_words() {
    let c = cli(Flavor::Legacy, "docker-compose", (1, 29, 2));
    assert_eq!(c.describe(), "docker-compose 1.29.2 (v1, Python)");
    let args: Vec<_> = c
        .command(&["ps"])
        .get_args()
        .map(|a| a.to_owned())
        .collect();
    assert_eq!(args, ["--no-ansi", "ps"]);
    let p = cli(Flavor::Plugin, "docker compose", (2, 40, 3));
    assert_eq!(p.describe(), "docker compose 2.40.3 (v2 plugin)");
    let cmd = p.command(&["ps"]);
    assert_eq!(cmd.get_program(), "docker");
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    assert_eq!(args, ["compose", "--ansi", "never", "ps"]);
}

#[test]
fn macs_are_right_except_for_1x_at_api_1_44_and_above() {
    let legacy = cli(Flavor::Legacy, "docker-compose", (1, 29, 2));
    let v2 = cli(Flavor::Standalone, "docker-compose", (2, 40, 3));
    let plugin = cli(Flavor::Plugin, "docker compose", (2, 40, 3));
    let pin = pinned_api(None, Some("COMPOSE_API_VERSION=1.41\n"));
    assert_eq!(pin, Some((1, 41)));
    // Docker 20.10: every program
    for c in [&legacy, &v2, &plugin] {
        assert!(macs(c, (1, 41), None).is_right());
    }
    // Docker 28: v2 always, 1.x only when pinned below 1.44
    assert!(macs(&v2, (1, 51), None).is_right());
    assert!(macs(&plugin, (1, 51), Some((1, 51))).is_right());
    assert!(macs(&legacy, (1, 51), pin).is_right());
    let no = macs(&legacy, (1, 51), None);
    assert!(!no.is_right());
    assert!(
        no.text().contains("API 1.51") && no.text().contains("COMPOSE_API_VERSION=1.41"),
        "{}",
        no.text()
    );
    assert!(!macs(&legacy, (1, 45), Some((1, 44))).is_right());
    // a pin above the engine's newest API is the engine's
    assert!(!macs(&legacy, (1, 45), Some((1, 51))).is_right());
}

#[test]
fn the_variable_wins_over_the_projects_env_file() {
    let file = Some("# c\nCOMPOSE_PROJECT_NAME=x\nCOMPOSE_API_VERSION=1.41\n");
    assert_eq!(pinned_api(None, file), Some((1, 41)));
    assert_eq!(pinned_api(Some("1.51"), file), Some((1, 51)));
    assert_eq!(pinned_api(Some("auto"), file), None);
    assert_eq!(pinned_api(None, Some("COMPOSE_PROJECT_NAME=x\n")), None);
    assert_eq!(pinned_api(None, None), None);
}

#[test]
fn a_missing_program_is_not_detected() {
    assert_eq!(probe(&argv("/nonexistent/docker-compose")), None);
}
