//! The testbed's offline images for a user's own testcontainers suite: one
//! standalone redis-server (or valkey-server) from `testbed/redis:8.0` and
//! friends, ready when it logs that it accepts connections.
//!
//! testcontainers cannot run the testbed itself (see ARCHITECTURE.md: no
//! static IPs on a macvlan network, no `container:` network mode); it serves
//! where one server is enough.

use ::testcontainers::core::{ContainerPort, WaitFor};
use ::testcontainers::Image;

/// The port the server listens on inside the container.
pub const PORT: ContainerPort = ContainerPort::Tcp(6379);

/// A standalone server from one of the testbed's images.
#[derive(Debug, Clone)]
pub struct ServerImage {
    name: String,
    tag: String,
}

impl ServerImage {
    /// `image` as `name:tag`, e.g. `testbed/redis:8.0` (build it first with
    /// `cargo xtask image`).
    pub fn new(image: &str) -> ServerImage {
        // the one reference parser: `host:5000/img` has no tag
        let (name, tag) = crate::backend::image::split_reference(image);
        ServerImage {
            name: name.into(),
            tag: tag.into(),
        }
    }
}

impl Default for ServerImage {
    fn default() -> Self {
        ServerImage::new(crate::backend::image::DEFAULT_IMAGE)
    }
}

impl Image for ServerImage {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![WaitFor::message_on_stdout("Ready to accept connections")]
    }

    fn cmd(&self) -> impl IntoIterator<Item = impl Into<std::borrow::Cow<'_, str>>> {
        // Whichever server the image has; protected mode off so the mapped
        // port answers.
        [
            "sh",
            "-c",
            "exec $(command -v redis-server || command -v valkey-server) --protected-mode no --save ''",
        ]
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &[PORT]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_port_is_not_a_tag() {
        let i = ServerImage::new("registry.local:5000/redis");
        assert_eq!((i.name(), i.tag()), ("registry.local:5000/redis", "latest"));
        let i = ServerImage::new("testbed/valkey:8.1");
        assert_eq!((i.name(), i.tag()), ("testbed/valkey", "8.1"));
    }
}
