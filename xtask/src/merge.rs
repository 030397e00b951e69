//! `cargo xtask report merge DIR... [--out DIR]`: joins the bundles of one
//! plan's shards (`repro --shard I/N`) into one bundle whose rates count
//! every run of every shard. Every refusal names the folder at fault.

use anyhow::{Context, Result};
use std::path::Path;
use testbed::report::{self, merge};

use crate::paths::resolve;

pub fn run(dirs: &[std::path::PathBuf], out: Option<&Path>, state_root: &Path) -> Result<()> {
    let mut bundles = Vec::new();
    for d in dirs {
        bundles.push(merge::read(&resolve(d))?);
    }
    let m = merge::merge(bundles)?;
    let out = match out {
        Some(o) => o.to_path_buf(),
        None => state_root.join("reports").join(format!(
            "{}-merged-{}",
            report::safe_name(&m.plan.scenario),
            report::utc_compact(std::time::SystemTime::now())
        )),
    };
    let md = merge::write(&out, &m).with_context(|| format!("writing {}", out.display()))?;
    for r in &m.rates {
        println!("{}", r.line());
    }
    if !m.missing.is_empty() {
        println!(
            "missing seeds (no bundle holds them): {}",
            m.missing
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "merged {} bundle(s), {} run(s) of {} planned: {}",
        m.shards.len(),
        m.plan.seeds.len(),
        m.plan.repeat,
        md.display()
    );
    Ok(())
}
