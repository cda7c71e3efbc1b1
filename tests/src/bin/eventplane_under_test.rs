//! `eventplane` itself (the host's command line, `eventplane_host::cli::main`), built with the
//! tests so that the end-to-end tests can run real `eventplane up` processes (several on one
//! store, killed with `SIGKILL`) without a separate build.

/// As in the `eventplane` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    eventplane_host::cli::main()
}
