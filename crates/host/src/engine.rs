//! The wasmtime engine, and compiled components cached on disk between runs.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How many component instances may be alive at once, across all components: the number of
/// requests (incoming plus chained) the host serves concurrently. Past it, a request is refused.
pub const MAX_CONCURRENT_INSTANCES: u32 = 1000;

/// The largest linear memory one instance may grow to.
pub const MAX_INSTANCE_MEMORY_BYTES: usize = 256 << 20;

/// How many instances one `[[trigger.mqtt]]` entry may run at once (messages in flight).
pub const MQTT_INSTANCES_PER_TRIGGER: u32 = 16;

/// How often the trigger engine's epoch advances: a guest running that long without calling
/// the host yields, so that a per-message timeout can stop it.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Builds the engine of the HTTP components: async host calls (required by wasi-http) and the
/// pooling allocator, which makes per-request instantiation cheap by reusing pre-reserved
/// memory slots.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = engine_config(MAX_CONCURRENT_INSTANCES);
    // Spin's components use the WASI 0.2 ABI, where a call into the host is one synchronous
    // call: without the component-model-async machinery, no call (of the dozens a request
    // makes) creates and deletes a host task, and no store sets up concurrency state.
    config.concurrency_support(false);
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot configure the WebAssembly engine")
}

/// Builds the engine of the components Spin's MQTT trigger calls, for `instances` instances
/// at once: their `handle-message` export is an `async func`, which needs the component
/// model's async ABI (and `Store::run_concurrent`). Epoch interruption lets a per-message
/// timeout stop a guest that never yields (see [`EPOCH_TICK`]).
pub fn new_trigger_engine(instances: u32) -> anyhow::Result<Engine> {
    let mut config = engine_config(instances.max(1));
    config
        .concurrency_support(true)
        .wasm_component_model_async(true)
        .epoch_interruption(true);
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot configure the WebAssembly engine of the MQTT trigger")
}

/// The settings both engines share, with a pool of `instances` instance slots.
fn engine_config(instances: u32) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memories_per_component(4)
        .max_memory_size(MAX_INSTANCE_MEMORY_BYTES)
        .max_component_instance_size(1 << 20)
        .max_core_instances_per_component(32)
        .max_tables_per_component(32)
        // Reset the first MiB of a reused memory (and tables, stacks) with memset instead of
        // returning the pages to the kernel: the next request then takes no page faults there.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    // `EVENTPLANE_PROFILE=perfmap` writes /tmp/perf-<pid>.map, so that `perf` names guest
    // functions (of components built with their name section).
    if std::env::var("EVENTPLANE_PROFILE").as_deref() == Ok("perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Memories are reserved at their maximum size so they never move; a smaller reservation
    // keeps 1000 slots within a normal virtual address space.
    config.memory_reservation(MAX_INSTANCE_MEMORY_BYTES as u64);
    config.memory_guard_size(32 << 20);
    config
}

/// Loads the component at `path`, from the compile cache in `cache_dir` when this engine has
/// compiled the very same bytes before, compiling (and caching) it otherwise.
pub fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Component> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))?;
    let Some(cache_dir) = cache_dir else {
        return compile(engine, &bytes, path);
    };
    let cached = cache_dir.join(cache_file_name(engine, &bytes));
    if cached.exists() {
        match deserialize(engine, &cached) {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", cached.display()),
        }
    }
    let component = compile(engine, &bytes, path)?;
    if let Err(e) = store_in_cache(&component, &cached) {
        tracing::warn!(
            "cannot cache compiled component in {}: {e:#}",
            cached.display()
        );
    }
    Ok(component)
}

fn compile(engine: &Engine, bytes: &[u8], path: &Path) -> anyhow::Result<Component> {
    Component::new(engine, bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{} is not a valid WebAssembly component", path.display()))
}

/// The cache key: the component's bytes and everything about the engine that changes the
/// machine code (wasmtime version, settings, CPU features).
fn cache_file_name(engine: &Engine, bytes: &[u8]) -> String {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let digest = Sha256::digest(bytes);
    format!(
        "{}-{:016x}.cwasm",
        hex::encode(&digest[..16]),
        engine_hash.finish()
    )
}

#[expect(
    unsafe_code,
    reason = "deserialising trusts the file to be wasmtime's own output; the cache directory \
              is private to this host and entries are keyed by content and engine hash"
)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file was written by `store_in_cache` with `Component::serialize` from an
    // engine with the same compatibility hash (part of the file name); wasmtime re-checks the
    // header and engine settings and fails cleanly on a mismatch.
    unsafe { Component::deserialize_file(engine, path) }.map_err(anyhow::Error::from)
}

fn store_in_cache(component: &Component, cached: &Path) -> anyhow::Result<()> {
    let dir = cached
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir)?;
    // Write to a temporary file and rename, so a concurrent reader never sees half a file.
    let tmp = dir.join(format!(".{}.tmp-{}", std::process::id(), rand_suffix()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, cached)?;
    Ok(())
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The default compile cache: `$XDG_CACHE_HOME/eventplane` or `~/.cache/eventplane`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("eventplane"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("eventplane"))
}
