//! A Redis Sentinel high-availability testbed: three redis-server and three
//! redis-sentinel containers on a macvlan segment with a floating VIP moved by
//! the sentinels' `client-reconfig-script`.
//!
//! Entry point: [`Testbed::up`] with a [`Topology`]. See ARCHITECTURE.md.

pub mod checker;
pub mod client;
pub mod compose;
pub mod containers;
pub mod docker;
pub mod doctor;
pub mod error;
pub mod external;
pub mod faults;
pub mod health;
pub mod host;
pub mod image;
pub mod links;
pub mod net;
pub mod netfaults;
pub mod normalize;
pub mod phases;
pub mod progress;
pub mod render;
pub mod report;
pub mod repro;
pub mod scenario;
pub mod svg;
pub mod tc;
pub mod teardown;
pub mod testbed;
pub mod timeline;
pub mod topology;
pub mod vip;
pub mod wait;
pub mod workload;

pub use error::{Error, Result};
pub use testbed::{Testbed, UpOptions};
pub use topology::{ParseOptions, Topology};
