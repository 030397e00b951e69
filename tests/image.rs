//! A catalog image built from another recipe is rebuilt: `image::plan` on
//! a real engine, with a tiny imported image standing in for an old build
//! (a real rebuild is what `cargo xtask image` does; it takes a minute).

mod common;

use anyhow::{ensure, Context, Result};
use testbed::image::{self, ImageSpec, Plan, LABEL_SPEC};

#[tokio::test]
async fn an_image_of_another_recipe_is_planned_for_a_rebuild() -> Result<()> {
    common::init_tracing();
    let docker = testbed::docker::connect()
        .await
        .context("this test imports an image and needs a Docker engine")?;
    let name: &'static str = Box::leak(
        format!(
            "testbed-test/{}:{}",
            common::name("recipe"),
            std::process::id()
        )
        .into_boxed_str(),
    );
    let spec = ImageSpec {
        name,
        ..*image::spec(image::DEFAULT_IMAGE).context("the default image is in the catalog")?
    };
    ensure!(matches!(image::plan(&docker, &spec).await?, Plan::Build));

    // A one-file image labelled with an old recipe, then with this one.
    let dir = std::env::temp_dir().join(format!("tb-recipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("marker"), "old build\n")?;
    let tar = dir.join("rootfs.tar");
    let tar_s = tar.display().to_string();
    let dir_s = dir.display().to_string();
    testbed::host::run_async("tar", &["-C", &dir_s, "-cf", &tar_s, "marker"]).await?;
    let import = |hash: String| {
        let tar_s = tar_s.clone();
        async move {
            let change = format!("LABEL {LABEL_SPEC}={hash}");
            testbed::host::run_async("docker", &["import", "--change", &change, &tar_s, name]).await
        }
    };
    let result = async {
        import("0000000000000000".into()).await?;
        let old = match image::plan(&docker, &spec).await? {
            Plan::Rebuild(old) => old,
            other => anyhow::bail!("an image of another recipe: want Rebuild, got {other:?}"),
        };
        ensure!(old.labels.get(LABEL_SPEC).map(String::as_str) == Some("0000000000000000"));
        // a spec whose package list grew is another recipe too
        import(spec.hash()).await?;
        ensure!(matches!(image::plan(&docker, &spec).await?, Plan::Use(_)));
        let grown = ImageSpec {
            packages: &["redis-server", "libfaketime"],
            ..spec
        };
        ensure!(matches!(
            image::plan(&docker, &grown).await?,
            Plan::Rebuild(_)
        ));
        Ok(())
    }
    .await;
    // both imports: the current tag and the untagged first one
    let _ = testbed::host::run_async("docker", &["rmi", "-f", name]).await;
    let _ = testbed::host::run_async(
        "docker",
        &[
            "image",
            "prune",
            "-f",
            "--filter",
            &format!("label={LABEL_SPEC}=0000000000000000"),
        ],
    )
    .await;
    std::fs::remove_dir_all(&dir)?;
    result
}
