//! The pure model: what a testbed is made of and how its parts are named and
//! configured. Nothing here touches the host; everything is unit-tested in
//! milliseconds.

pub mod action;
pub mod clients;
pub mod net;
pub mod render;
pub mod target;
pub mod topology;
pub mod verb;
