//! The arguments of the commands that run scenarios and faults many times:
//! `repro`, `matrix`, `report`, `clients`, `soak`, `flake`.

use clap::Subcommand;
use std::path::PathBuf;

/// `cargo xtask repro`.
#[derive(Debug, clap::Args)]
pub struct ReproArgs {
    /// Scenario file (TOML), e.g. fixtures/scenarios/kill-master.toml.
    pub file: PathBuf,
    /// How many times to run it; the report gives the failure rate per expectation.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Override the scenario topology's image (e.g. testbed/valkey:8.1).
    #[arg(long)]
    pub image: Option<String>,
    /// Go on with the next run when one cannot complete (e.g. bring-up failed).
    #[arg(long)]
    pub keep_going: bool,
    /// The /24 of 198.18.0.0/16 its testbed uses (198.18.SLOT.0/24); with
    /// --jobs K the K testbeds use SLOT..SLOT+K-1. Default: 200, or 240 with --jobs.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub slot: Option<u8>,
    /// Testbeds at once (each its own name and /24: slots 240-254).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=15))]
    pub jobs: u32,
    /// Run only the I-th of N shares of the repeats (seeds I, I+N, I+2N, ...);
    /// `cargo xtask report merge` joins the shards' bundles.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
}

/// `I/N` with 1 <= I <= N.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not I/N (e.g. 1/4: the first of 4 shards)"))?;
    let (i, n): (u32, u32) = match (i.trim().parse(), n.trim().parse()) {
        (Ok(i), Ok(n)) => (i, n),
        _ => return Err(format!("`{s}` is not I/N with whole numbers (e.g. 2/4)")),
    };
    if n == 0 || i == 0 || i > n {
        return Err(format!(
            "shard {i} of {n} does not exist: I must be between 1 and N (e.g. 1/{})",
            n.max(1)
        ));
    }
    Ok((i, n))
}

/// `cargo xtask matrix`.
#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// Scenario files (default: every file of fixtures/scenarios/).
    pub scenarios: Vec<PathBuf>,
    /// Images, one column each (default: every image of the offline catalog
    /// that is built on this machine).
    #[arg(long = "image", value_name = "IMG")]
    pub images: Vec<String>,
    /// Runs per cell.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Testbeds at once (slots 240-254).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=15))]
    pub jobs: u32,
    /// Also write the matrix as a committed document (links to scenario
    /// files instead of bundles), e.g. docs/behaviour-matrix.md.
    #[arg(long)]
    pub doc: Option<PathBuf>,
    /// Run nothing: join earlier runs' folders (target/testbed/matrix/<UTC>/,
    /// e.g. one per image) into one matrix; a later run's cell replaces an
    /// earlier one's.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["scenarios", "images"])]
    pub join: Vec<PathBuf>,
}

/// `cargo xtask report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Merge bundles of one plan's shards (`repro --shard I/N`) into one report
    /// whose rates count every shard.
    Merge {
        /// Bundle folders (target/testbed/reports/<scenario>-<UTC>/).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write (default: target/testbed/reports/<scenario>-merged-<UTC>/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `cargo xtask clients`.
#[derive(Debug, clap::Args)]
pub struct ClientsArgs {
    /// Scenario files (default: every file of fixtures/scenarios/clients/).
    pub scenarios: Vec<PathBuf>,
    /// Only these client programs (repeatable, or comma-separated; default: all).
    #[arg(long)]
    pub client: Vec<String>,
    /// Runs per scenario; the matrix gives the median and range of the recovery.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// The first /24 of the ten it uses (198.18.SLOT.0/24 to SLOT+9).
    #[arg(long, default_value_t = 210, value_parser = clap::value_parser!(u8).range(1..=245))]
    pub slot: u8,
    /// Each client's writes per second (TESTBED_RATE).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: u32,
    /// Each client's command timeout in ms (TESTBED_TIMEOUT_MS).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
    /// Override the scenarios' server image (e.g. testbed/valkey:8.1).
    #[arg(long)]
    pub image: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long faults are applied (the final check comes after).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub minutes: u32,
    /// The schedule's seed (decimal or 0x-hex); default: a fresh one, printed.
    #[arg(long)]
    pub seed: Option<String>,
    /// Writes per second of the workload (through the VIP).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub rate: u32,
    /// The topology (relocated to the soak's name and slot).
    #[arg(long, default_value = "fixtures/topology.toml")]
    pub topology: PathBuf,
    /// Override the topology's image (e.g. testbed/valkey:8.1).
    #[arg(long)]
    pub image: Option<String>,
    /// The testbed's name.
    #[arg(long, default_value = "soak")]
    pub name: String,
    /// The /24 of 198.18.0.0/16 its testbed uses (198.18.SLOT.0/24).
    #[arg(long, default_value_t = 179, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub slot: u8,
}

/// `cargo xtask flake`.
#[derive(Debug, clap::Args)]
pub struct FlakeArgs {
    /// How many runs of the test command, one after another.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub runs: u32,
    /// TESTBED_TEST_PREFIX for the runs (e.g. fl-): their testbeds get other
    /// names and slots, so a second `flake` (or another suite) runs beside.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Run nothing: read the run logs of these earlier flake folders into one table.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub join: Vec<std::path::PathBuf>,
    /// The folder to write (default: target/testbed/flake/<UTC time>[-prefix]/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
