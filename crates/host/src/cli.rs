//! The `eventplane` command line: `eventplane up` (like `spin up`) and `eventplane build`
//! (like `spin build`).
//!
//! [`main`] is the whole program, so that another crate's binary runs exactly the same CLI:
//!
//! ```no_run
//! // The host's threads free each other's allocations all the time; `eventplane`'s own
//! // binary uses mimalloc for that (about 11 % less CPU under load), and so should yours.
//! #[global_allocator]
//! static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
//!
//! fn main() -> std::process::ExitCode {
//!     eventplane_host::cli::main()
//! }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{Application, LoadOptions};

#[derive(Parser)]
#[command(
    name = "eventplane",
    version,
    about = "Runs a Spin application (spin.toml) on wasmtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application, like `spin up`.
    Up {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// The application manifest (`--from`, `-f` as with `spin up`).
        #[arg(long, short = 'f', visible_alias = "from", default_value = "spin.toml")]
        manifest: PathBuf,
        /// Directory for the key-value database (default: `.spin` beside the manifest).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Spin's runtime configuration file: where the key-value stores live
        /// (`[key_value_store.<label>]` of type `spin` or `redis`), as with `spin up`.
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
        /// Directory for compiled components (default: ~/.cache/eventplane).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Run every component's build command first, like `spin build --up`.
        #[arg(long)]
        build: bool,
    },
    /// Run every component's build command, like `spin build`.
    Build {
        /// The application manifest (`--from`, `-f` as with `spin build`).
        #[arg(long, short = 'f', visible_alias = "from", default_value = "spin.toml")]
        manifest: PathBuf,
    },
}

/// Runs the `eventplane` command line on the process's arguments (`std::env::args`) and
/// answers its exit code: `eventplane up` serves until Ctrl-C or SIGTERM; any start-up problem
/// is printed on stderr (`Error: ...`) and is a failure.
///
/// Logging goes to stderr, filtered by `EVENTPLANE_LOG` (default `warn`). A binary calling this
/// should set mimalloc as its global allocator, as `eventplane`'s own does (module docs).
pub fn main() -> ExitCode {
    // A caller that set up its own subscriber keeps it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EVENTPLANE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build { manifest } => crate::build(&manifest),
        Command::Up {
            listen,
            manifest,
            state_dir,
            runtime_config_file,
            cache_dir,
            build,
        } => {
            let mut opts = LoadOptions::new(manifest);
            opts.state_dir = state_dir;
            opts.runtime_config_file = runtime_config_file.clone();
            if cache_dir.is_some() {
                opts.cache_dir = cache_dir;
            }
            opts.build = build;
            let app = Application::load(opts)?;
            for warning in app.warnings() {
                eprintln!("Warning: {warning}");
            }
            if let Some(file) = &runtime_config_file {
                // As `spin up` says which stores its runtime config file configures.
                eprintln!("Using runtime config file {}:", file.display());
                for (label, location) in app.stores() {
                    eprintln!("  key-value store {label:?}: {location}");
                }
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mqtt = app.mqtt_triggers();
                // An application of MQTT triggers alone serves no HTTP, as with `spin up`.
                let listener = if app.has_http_triggers() || mqtt.is_none() {
                    let listener = tokio::net::TcpListener::bind(listen)
                        .await
                        .with_context(|| format!("cannot listen on {listen}"))?;
                    let base = format!("http://{}", listener.local_addr()?);
                    println!("\nServing {base}");
                    println!("Available Routes:");
                    for (route, component) in app.routes() {
                        println!("  {component}: {base}{route}");
                    }
                    Some(listener)
                } else {
                    None
                };
                if let Some((broker, subscriptions)) = &mqtt {
                    println!("MQTT triggers on {broker}:");
                    for s in subscriptions {
                        println!("  {}: {} (QoS {})", s.component, s.topic, s.qos);
                    }
                }
                app.run(listener, shutdown_signal()).await?;
                println!("Shut down cleanly.");
                Ok(())
            })
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, the signals `spin up` stops on.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    eprintln!("Shutting down...");
}
