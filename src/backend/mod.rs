//! Everything that touches the host: the Docker engine (bollard), the kernel
//! (`ip`, `nsenter`, netfilter), Redis connections, the offline images, and
//! the prerequisites (`doctor`).

pub mod client;
pub mod client_image;
pub mod compose_cli;
pub mod containers;
pub mod docker;
pub mod doctor;
pub mod host;
pub mod image;
pub mod links;
pub mod progress;
