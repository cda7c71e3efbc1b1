//! The `eventplane` binary as a user runs it: `eventplane up` prints its routes, serves, and
//! shuts down cleanly on Ctrl-C (SIGINT); a start-up problem is a non-zero exit naming it.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn probe_wasm() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release/eventplane_test_probe.wasm");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run ./scripts/test.sh",
        path.display()
    );
    Ok(path)
}

fn write_manifest(dir: &std::path::Path, extra: &str) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"cli\"\n{extra}\n[[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n[component.probe]\nsource = \"{}\"\n",
            probe_wasm()?.display()
        ),
    )?;
    Ok(manifest)
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/eventplane-test-cache")
}

#[test]
fn up_serves_prints_routes_and_stops_cleanly_on_ctrl_c() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(dir.path(), "")?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_eventplane"))
        .args(["up", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(&manifest)
        .arg("--cache-dir")
        .arg(cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let base = loop {
        anyhow::ensure!(Instant::now() < deadline, "no Serving line: {printed}");
        let mut line = String::new();
        anyhow::ensure!(stdout.read_line(&mut line)? > 0, "exited early: {printed}");
        printed.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("Serving ") {
            break url.to_string();
        }
    };
    let mut line = String::new();
    while !line.contains("probe:") {
        line.clear();
        anyhow::ensure!(stdout.read_line(&mut line)? > 0, "no route line: {printed}");
        printed.push_str(&line);
    }
    assert_eq!(line.trim(), format!("probe: {base}/probe/..."));

    let body = reqwest::blocking::get(format!("{base}/probe/hello"))?.text()?;
    assert!(body.contains("\"path\":\"/probe/hello\""), "{body}");
    // The default state directory is `.spin` beside the manifest, as with `spin up`.
    assert!(dir.path().join(".spin/sqlite_key_value.db").exists());

    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()?;
    assert!(status.success());
    let exit = child.wait()?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest)?;
    assert!(
        exit.success(),
        "exit status {exit}; output: {printed}{rest}"
    );
    assert!(rest.contains("Shut down cleanly"), "{rest}");
    Ok(())
}

#[test]
fn up_refuses_to_start_without_a_required_variable() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(
        dir.path(),
        "[variables]\nadmin_token = { required = true, secret = true }\n",
    )?;
    let output = Command::new(env!("CARGO_BIN_EXE_eventplane"))
        .args(["up", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(&manifest)
        .arg("--cache-dir")
        .arg(cache_dir())
        .env_remove("SPIN_VARIABLE_ADMIN_TOKEN")
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admin_token"), "{stderr}");
    Ok(())
}
