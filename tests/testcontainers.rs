//! A user's testcontainers suite can start the testbed's offline images.

use anyhow::{ensure, Context, Result};
use testbed::tc::{ServerImage, PORT};
use testcontainers::runners::AsyncRunner;

#[tokio::test]
async fn offline_image_starts_under_testcontainers() -> Result<()> {
    let docker = testbed::docker::connect()
        .await
        .context("this test needs a Docker engine")?;
    let image =
        std::env::var("TESTBED_IMAGE").unwrap_or_else(|_| testbed::image::DEFAULT_IMAGE.into());
    let cache = testbed::testbed::default_state_root().join("images");
    testbed::image::ensure_image(&docker, &image, &cache).await?;

    let container = ServerImage::new(&image)
        .start()
        .await
        .context("starting the image with testcontainers")?;
    let port = container.get_host_port_ipv4(PORT).await?;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let pong: String = redis::cmd("PING").query_async(&mut c).await?;
    ensure!(pong == "PONG", "PING answered {pong}");
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut c).await?;
    ensure!(
        info.contains("redis_version:") || info.contains("valkey_version:"),
        "{info}"
    );
    Ok(())
}
