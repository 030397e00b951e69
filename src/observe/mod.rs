//! Observers: what happened and when. The timeline of sentinel events and
//! testbed actions, failover phases, health conditions, waits with deadlines,
//! the VIP oracle and the normaliser behind stable snapshots.

pub mod health;
pub mod normalize;
pub mod phases;
pub mod probe;
pub mod roles;
pub mod timeline;
pub mod vip;
pub mod wait;
