//! A Redis Sentinel high-availability testbed: three redis-server and three
//! redis-sentinel containers on a macvlan segment with a floating VIP moved by
//! the sentinels' `client-reconfig-script`.
//!
//! Entry point: [`Testbed::up`] with a [`Topology`]. The modules are the
//! layers of ARCHITECTURE.md:
//!
//! - [`model`]: pure — topology, names and addresses, rendered configs, the
//!   fault vocabulary. No I/O.
//! - [`backend`]: what touches the host — Docker (bollard), the kernel (`ip`,
//!   `nsenter`, netfilter), Redis connections, images, prerequisites.
//! - [`testbed`]: a running testbed — bring-up, state, status, teardown.
//! - [`faults`]: faults as verbs on a running testbed.
//! - [`observe`]: what happened — the timeline, phases, health, the VIP
//!   oracle, waits, stable snapshots.
//! - [`workload`]: clients that write, and the checker that judges them.
//! - [`scenario`]: scenario files and their runs.
//! - [`report`]: the bug-report bundle (markdown, JSON, SVG).

pub mod backend;
pub mod compose;
pub mod error;
pub mod faults;
pub mod model;
pub mod observe;
pub mod report;
pub mod scenario;
pub mod testbed;
pub mod testcontainers;
pub mod utc;
pub mod workload;

pub use error::{Error, Result};
pub use model::topology::{ParseOptions, Topology};
pub use testbed::{Testbed, UpOptions};

// The paths of the flat layout before the layers (0.1), kept so code that
// imports them keeps building.
pub use self::testcontainers as tc;
pub use backend::{client, containers, docker, doctor, host, image, links, progress};
pub use faults as netfaults;
pub use model::{net, render, topology};
pub use observe::{health, normalize, phases, timeline, vip, wait};
pub use report::svg;
pub use scenario::run as repro;
pub use testbed::teardown;
pub use workload::{checker, external};
