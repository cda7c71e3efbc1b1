//! End-to-end tests: every test starts an application in `eventplane-host` on a loopback port
//! and talks to it over real HTTP. The WebAssembly components must be built first
//! (`./scripts/test.sh` does it).

mod application;
mod bus;
mod gateway;
mod key_value;
mod manifest;
mod mqtt;
mod on_spin;
mod outbound;
mod registry;
mod routing;
mod scale_out;
mod subscriptions;
mod unauthorized;
mod variables;

/// One multi-threaded runtime per test, so that requests really run concurrently.
macro_rules! e2e_test {
    ($(#[$meta:meta])* async fn $name:ident() -> anyhow::Result<()> $body:block) => {
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() -> anyhow::Result<()> $body
    };
}
pub(crate) use e2e_test;
