//! The sentinels' settings (ports, quorum, timings, the split-brain guard)
//! and the rest of a topology (auth, the reconfig script, extra config
//! lines, the profile), validated like the sections before them.

use super::*;

impl Validator<'_> {
    /// Ports, quorum, timings, the split-brain guard.
    pub(super) fn sentinel(&self, raw: &RawTopology, nodes: &[Node]) -> Check<SentinelSettings> {
        let port = |v: &Option<Spanned<i64>>, key: &str, default| {
            self.int(v, key, default, 1..65536).map(|p| p as u16)
        };
        let redis_port = port(&raw.redis_port, "redis_port", 6379)?;
        let sentinel_port = port(&raw.sentinel_port, "sentinel_port", 26379)?;
        if redis_port == sentinel_port {
            let span = raw.sentinel_port.as_ref().map_or(0..0, |v| v.span());
            return self.fail(
                span,
                "sentinel_port",
                "equals redis_port; they share a network namespace",
                None,
            );
        }
        let quorum = self
            .int(&raw.quorum, "quorum", 2, 1..(nodes.len() as i64 + 1))
            .map_err(|e| {
                with_hint(
                    e,
                    &format!(
                        "quorum must be between 1 and the number of sentinels ({})",
                        nodes.len()
                    ),
                )
            })? as u32;
        let down_after_ms =
            self.int(&raw.down_after_ms, "down_after_ms", 2000, 100..86_400_001)? as u64;
        let failover_timeout_ms = self.int(
            &raw.failover_timeout_ms,
            "failover_timeout_ms",
            10_000,
            1000..86_400_001,
        )? as u64;
        let parallel_syncs = self.int(&raw.parallel_syncs, "parallel_syncs", 1, 1..1000)? as u32;
        let min_replicas_to_write = match &raw.min_replicas_to_write {
            None => None,
            Some(_) => Some(self.int(
                &raw.min_replicas_to_write,
                "min_replicas_to_write",
                0,
                0..nodes.len() as i64,
            )? as u32),
        };
        let min_replicas_max_lag = match &raw.min_replicas_max_lag {
            None => None,
            Some(v) if min_replicas_to_write.is_none() => {
                return self.fail(
                    v.span(),
                    "min_replicas_max_lag",
                    "has no effect without min_replicas_to_write",
                    Some("set min_replicas_to_write too"),
                )
            }
            Some(_) => Some(self.int(
                &raw.min_replicas_max_lag,
                "min_replicas_max_lag",
                10,
                1..86_401,
            )? as u32),
        };
        Ok(SentinelSettings {
            redis_port,
            sentinel_port,
            quorum,
            down_after_ms,
            failover_timeout_ms,
            parallel_syncs,
            min_replicas_to_write,
            min_replicas_max_lag,
        })
    }

    /// `[auth]`, `reconfig_script`, the extra config lines, `profile`.
    pub(super) fn extras(&self, raw: &RawTopology, nodes: &[Node]) -> Check<Extras> {
        let auth = match &raw.auth {
            None => None,
            Some(a) => {
                let p = &a.get_ref().password;
                if p.get_ref().is_empty()
                    || p.get_ref()
                        .contains(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                {
                    return self.fail(
                        p.span(),
                        "auth.password",
                        "must be non-empty, without spaces or quotes",
                        None,
                    );
                }
                let user = match &a.get_ref().user {
                    Some(u)
                        if u.get_ref().is_empty()
                            || !u
                                .get_ref()
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                    {
                        return self.fail(
                            u.span(),
                            "auth.user",
                            format!("`{}` is not a usable ACL user name", u.get_ref()),
                            Some("letters, digits, `-` and `_`"),
                        )
                    }
                    Some(u) if u.get_ref() == "default" => {
                        return self.fail(
                            u.span(),
                            "auth.user",
                            "the default user is the testbed's own: name another",
                            None,
                        )
                    }
                    u => u.as_ref().map(|u| u.get_ref().clone()),
                };
                let user_rules = match (&a.get_ref().user_rules, &user) {
                    (Some(r), None) => {
                        return self.fail(
                            r.span(),
                            "auth.user_rules",
                            "has no effect without auth.user",
                            Some("name the sentinels' ACL user with user = \"...\""),
                        )
                    }
                    (Some(r), _) if r.get_ref().contains(['\n', '\r', '>', '<']) => {
                        return self.fail(
                            r.span(),
                            "auth.user_rules",
                            "rules are one line and carry no password (`>`/`<`): the testbed adds `on >password`",
                            None,
                        )
                    }
                    (r, _) => r.as_ref().map(|r| r.get_ref().clone()),
                };
                Some(Auth {
                    password: p.get_ref().clone(),
                    user,
                    user_rules,
                })
            }
        };
        let reconfig_script = match &raw.reconfig_script {
            None => None,
            Some(v) => {
                let p = PathBuf::from(v.get_ref());
                let p = match (&self.at.dir, p.is_relative()) {
                    (Some(dir), true) => dir.join(p),
                    _ => p,
                };
                if !p.is_file() {
                    return self.fail(
                        v.span(),
                        "reconfig_script",
                        format!("{} is not a file", p.display()),
                        Some("paths are relative to the topology file"),
                    );
                }
                Some(p)
            }
        };
        let lines = |v: &Option<Vec<Spanned<String>>>, key: &str| -> Check<Vec<String>> {
            let mut out = Vec::new();
            for l in v.iter().flatten() {
                if l.get_ref().contains(['\n', '\r']) {
                    return self.fail(
                        l.span(),
                        key,
                        "a line may not contain a newline",
                        Some("give one array element per line"),
                    );
                }
                // `{ip:NODE}` is that node's address when rendered (after a
                // relocation too): NODE must be a node
                if let Err(n) = crate::model::render::expand(l.get_ref(), nodes) {
                    let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                    return self.fail(
                        l.span(),
                        key,
                        format!("`{{ip:{n}}}` names no node"),
                        Some(&format!("the nodes are {}", known.join(", "))),
                    );
                }
                out.push(l.get_ref().clone());
            }
            Ok(out)
        };
        let profile = match &raw.profile {
            None => Profile::Default,
            Some(v) => match v.get_ref().as_str() {
                "default" => Profile::Default,
                "fast" => Profile::Fast,
                other => {
                    return self.fail(
                        v.span(),
                        "profile",
                        format!("`{other}` is not a profile"),
                        Some("use \"default\" or \"fast\""),
                    )
                }
            },
        };
        Ok(Extras {
            auth,
            reconfig_script,
            redis_conf: lines(&raw.redis_conf, "redis_conf")?,
            sentinel_conf: lines(&raw.sentinel_conf, "sentinel_conf")?,
            profile,
        })
    }
}

pub(super) struct SentinelSettings {
    pub(super) redis_port: u16,
    pub(super) sentinel_port: u16,
    pub(super) quorum: u32,
    pub(super) down_after_ms: u64,
    pub(super) failover_timeout_ms: u64,
    pub(super) parallel_syncs: u32,
    pub(super) min_replicas_to_write: Option<u32>,
    pub(super) min_replicas_max_lag: Option<u32>,
}

pub(super) struct Extras {
    pub(super) auth: Option<Auth>,
    pub(super) reconfig_script: Option<PathBuf>,
    pub(super) redis_conf: Vec<String>,
    pub(super) sentinel_conf: Vec<String>,
    pub(super) profile: Profile,
}

fn with_hint(e: Error, hint: &str) -> Error {
    match e {
        Error::Input { at, message, .. } => Error::Input {
            at,
            message,
            hint: Some(hint.to_string()),
        },
        other => other,
    }
}
