//! The whole `cargo xtask` command line, declared in one place.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Redis Sentinel HA testbed: bring-up, status, teardown, images"
)]
pub struct Xtask {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Args)]
pub struct TopologyArgs {
    /// Topology file (TOML).
    #[arg(long, default_value = "fixtures/topology.toml")]
    pub topology: PathBuf,
    /// Override the topology's image (e.g. testbed/redis:7.0, testbed/valkey:8.1, redis:7.4).
    #[arg(long)]
    pub image: Option<String>,
    /// Accept a subnet outside 198.18.0.0/15 (for a real LAN with --parent).
    #[arg(long)]
    pub allow_any_subnet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Start the testbed and wait until it is healthy (a no-op when running).
    Up {
        #[command(flatten)]
        topo: TopologyArgs,
        /// Use this existing interface as the macvlan parent instead of a private veth.
        #[arg(long)]
        parent: Option<String>,
        /// Do not install missing prerequisites or start dockerd.
        #[arg(long)]
        no_fix: bool,
    },
    /// Show the running testbed.
    Status {
        /// Testbed name (default: from the topology file).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "fixtures/topology.toml")]
        topology: PathBuf,
        /// Machine-readable output (a stable interface).
        #[arg(long)]
        json: bool,
    },
    /// Remove the testbed (or, with --all, everything any testbed left).
    Down {
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "fixtures/topology.toml")]
        topology: PathBuf,
        /// Remove every testbed-labelled container, network and link on this machine.
        #[arg(long)]
        all: bool,
    },
    /// Show container logs, prefixed by node.
    Logs {
        /// Only this node.
        node: Option<String>,
        /// The sentinel containers instead of the redis ones.
        #[arg(long)]
        sentinel: bool,
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "fixtures/topology.toml")]
        topology: PathBuf,
    },
    /// Check prerequisites; --fix installs what is missing and starts dockerd.
    Doctor {
        #[arg(long)]
        fix: bool,
    },
    /// Build the offline images from Debian packages (cached).
    Image {
        /// Images to build (default: the default image).
        names: Vec<String>,
        /// Build every image of the catalog.
        #[arg(long)]
        all: bool,
    },
}
