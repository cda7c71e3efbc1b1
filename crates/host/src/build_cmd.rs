//! `--build`: runs each component's `[component.<id>.build] command`, as `spin build` does.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use eventplane_manifest::Manifest;

/// Runs the build command of every component that has one, in manifest order, through the
/// shell, in the component's `workdir` (relative to the manifest's directory) or the manifest's
/// directory. Stops at the first failure, naming the component.
pub fn build_all(manifest: &Manifest, manifest_dir: &Path) -> anyhow::Result<()> {
    let mut built = 0;
    for component in &manifest.components {
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = match &build.workdir {
            Some(dir) => manifest_dir.join(dir),
            None => manifest_dir.to_path_buf(),
        };
        for command in &build.commands {
            println!("Building component {} with `{command}`", component.id);
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .status()
                .with_context(|| {
                    format!("cannot run the build command of component {}", component.id)
                })?;
            if !status.success() {
                bail!(
                    "build command for component {} failed with {status}: `{command}`",
                    component.id
                );
            }
        }
        built += 1;
    }
    if built > 0 {
        println!("Finished building all Spin components");
    }
    Ok(())
}
