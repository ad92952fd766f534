//! The engine, the linkers and the on-disk cache of compiled jobs.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME as ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
};
use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Module, PoolingAllocationConfig,
};
use wasmtime_wasi::p2::bindings::sync::CommandPre;

use crate::core::{CoreState, WITX_NN_MODULE};
use crate::nn::NnHost;
use crate::poll::DeadlinePollData;
use crate::run::ComponentState;
use crate::{Error, Result};

/// Engine-wide settings of a sandbox. Per-job limits are [`crate::JobLimits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Canonicalise NaNs, fix clocks and seed random (see [`crate::RunOptions::seed`])
    /// so that two runs of a job on the same inputs give the same outputs.
    pub deterministic: bool,
    /// Meter fuel. Needed for jobs with a fuel limit; costs about a quarter
    /// more CPU, so it is off unless asked for.
    pub fuel: bool,
    /// Where compiled jobs are cached, keyed by content hash and engine
    /// configuration. `None` compiles every time. The directory must be
    /// private to the host's user: its files are native code.
    pub cache_dir: Option<PathBuf>,
    /// The largest memory limit a job may ask for.
    pub max_memory_bytes: u64,
    /// The wasm stack limit.
    pub max_wasm_stack: usize,
    /// Use the pooling allocator (fast instantiation) for up to this many
    /// concurrent jobs; `0` allocates on demand.
    pub pooled_jobs: u32,
    /// How often limits are checked while a job runs.
    pub tick: Duration,
    /// Whether and how jobs use the GPU.
    pub gpu: crate::GpuConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            deterministic: false,
            fuel: false,
            cache_dir: None,
            max_memory_bytes: 4 << 30,
            max_wasm_stack: 1 << 20,
            pooled_jobs: 16,
            tick: Duration::from_millis(1),
            gpu: crate::GpuConfig::default(),
        }
    }
}

/// The default cache directory: `$NETMIND_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/netmind`, else `~/.cache/netmind`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("NETMIND_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("netmind"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/netmind"))
}

/// A sandbox: one wasmtime engine configured for hostile guests, plus the
/// WASI linkers. Cheap to share (`Arc` inside); create one per process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) config: SandboxConfig,
    pub(crate) pooling: bool,
    pub(crate) nn: Arc<NnHost>,
    pub(crate) gpu: Arc<crate::GpuConfig>,
    /// The limit ticker (runs hold it).
    pub(crate) ticker: Arc<Ticker>,
    component_linker: ComponentLinker<ComponentState>,
    core_linker: wasmtime::Linker<CoreState>,
    compat: u64,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .field("pooling", &self.inner.pooling)
            .finish_non_exhaustive()
    }
}

fn wasmtime_config(c: &SandboxConfig, pooled: bool) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(c.fuel)
        .max_wasm_stack(c.max_wasm_stack)
        .cranelift_nan_canonicalization(c.deterministic)
        .relaxed_simd_deterministic(c.deterministic);
    if pooled {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(c.pooled_jobs)
            .total_core_instances(c.pooled_jobs * 16)
            .total_memories(c.pooled_jobs * 4)
            .total_tables(c.pooled_jobs * 16)
            .max_memory_size(c.max_memory_bytes as usize)
            // Reset only the pages a job dirtied (PAGEMAP_SCAN, Linux 6.7+) and
            // keep them mapped: the next job in the slot starts from zeroed,
            // resident memory instead of taking a page fault per page.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(64 << 20)
            .table_keep_resident(1 << 20);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}

impl Runtime {
    /// Builds the engine and linkers and starts the limit-checking ticker.
    /// Jobs get wasi-nn with the default service ([`NnHost::default`]: tract).
    pub fn new(config: SandboxConfig) -> Result<Self> {
        Self::with_nn(config, Arc::new(NnHost::default()))
    }

    /// Like [`Runtime::new`], with the given wasi-nn service (backends,
    /// registered models and limits).
    pub fn with_nn(config: SandboxConfig, nn: Arc<NnHost>) -> Result<Self> {
        let pooled = config.pooled_jobs > 0;
        let (engine, pooling) = match Engine::new(&wasmtime_config(&config, pooled)) {
            Ok(e) => (e, pooled),
            Err(err) if pooled => {
                tracing::warn!(target: "host::sandbox", error = %err, "pooling allocator unavailable; allocating on demand");
                let e = Engine::new(&wasmtime_config(&config, false)).map_err(Error::Engine)?;
                (e, false)
            }
            Err(err) => return Err(Error::Engine(err)),
        };
        let mut component_linker = ComponentLinker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut component_linker).map_err(Error::Engine)?;
        // Replace `wasi:io/poll` with a version that honours the wall-time limit.
        component_linker.allow_shadowing(true);
        wasmtime_wasi::p2::bindings::sync::io::poll::add_to_linker::<_, DeadlinePollData>(
            &mut component_linker,
            ComponentState::deadline_poll,
        )
        .map_err(Error::Engine)?;
        component_linker.allow_shadowing(false);
        crate::nn::wit::add_to_linker(&mut component_linker, ComponentState::nn_view)
            .map_err(Error::Engine)?;
        crate::gpu::wit::add_to_linker(&mut component_linker, ComponentState::gpu_view)
            .map_err(Error::Engine)?;
        let core_linker = crate::core::linker(&engine).map_err(Error::Engine)?;
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let compat = h.finish();
        let ticker = Arc::new(Ticker::default());
        start_ticker(&engine, config.tick, ticker.clone());
        let gpu = Arc::new(config.gpu.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                gpu,
                config,
                pooling,
                nn,
                ticker,
                component_linker,
                core_linker,
                compat,
            }),
        })
    }

    /// The engine-wide settings.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// The wasi-nn service jobs use.
    pub fn nn(&self) -> &Arc<NnHost> {
        &self.inner.nn
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Compiles (or loads from the cache) a component or a core module and
    /// links it against the sandbox's WASI, ready to run many times.
    ///
    /// A `wasm32-wasip1` core module is first wrapped into a component with
    /// wasmtime's preview-1 adapter, so both kinds run through the same
    /// preview-2 sandbox and every protection applies to both.
    pub fn load(&self, wasm: &[u8]) -> Result<Job> {
        let started = Instant::now();
        let kind = WasmKind::detect(wasm)?;
        let hash: [u8; 32] = Sha256::digest(wasm).into();
        if kind == WasmKind::Module
            && let Some((module, cached)) = self.witx_nn_module(&hash, wasm)?
        {
            let pre = self
                .inner
                .core_linker
                .instantiate_pre(&module)
                .map_err(Error::UnsupportedImport)?;
            return Ok(Job {
                runtime: self.clone(),
                code: Code::Core { pre, module },
                kind,
                hash,
                from_cache: cached,
                load_time: started.elapsed(),
            });
        }
        let (component, cached) = self.compile_cached(kind, &hash, wasm)?;
        let pre = self
            .inner
            .component_linker
            .instantiate_pre(&component)
            .map_err(Error::UnsupportedImport)?;
        let pre = CommandPre::new(pre).map_err(Error::NotACommand)?;
        Ok(Job {
            runtime: self.clone(),
            code: Code::Component {
                pre: Box::new(pre),
                component,
            },
            kind,
            hash,
            from_cache: cached,
            load_time: started.elapsed(),
        })
    }

    /// A core module that imports wasi-nn's witx ABI, compiled (or from the
    /// cache) to run as a core module; `None` for any other module.
    fn witx_nn_module(&self, hash: &[u8; 32], wasm: &[u8]) -> Result<Option<(Module, bool)>> {
        let needle = WITX_NN_MODULE.as_bytes();
        if !wasm.windows(needle.len()).any(|w| w == needle) {
            return Ok(None);
        }
        let engine = &self.inner.engine;
        let path = self
            .cache_path(hash)
            .map(|p| p.with_extension("core.cwasm"));
        if let Some(path) = path.as_deref().filter(|p| p.exists()) {
            match deserialize_module(engine, path) {
                Ok(module) => return Ok(Some((module, true))),
                Err(err) => {
                    tracing::warn!(target: "host::cache", path = %path.display(), error = %err, "discarding unusable cache entry");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let module = Module::new(engine, wasm).map_err(Error::Compile)?;
        if !module.imports().any(|i| i.module() == WITX_NN_MODULE) {
            return Ok(None);
        }
        if module.get_export("_start").is_none() {
            return Err(Error::NotACommand(wasmtime::format_err!(
                "core module has no `_start` export"
            )));
        }
        if let Some(path) = path
            && let Ok(bytes) = module.serialize()
            && let Err(err) = write_atomic(&path, &bytes)
        {
            tracing::warn!(target: "host::cache", path = %path.display(), error = %err, "cannot write cache entry");
        }
        Ok(Some((module, false)))
    }

    fn cache_path(&self, hash: &[u8; 32]) -> Option<PathBuf> {
        let dir = self.inner.config.cache_dir.as_ref()?;
        Some(dir.join(format!(
            "{}-{:016x}.cwasm",
            hex::encode(hash),
            self.inner.compat
        )))
    }

    fn compile_cached(
        &self,
        kind: WasmKind,
        hash: &[u8; 32],
        wasm: &[u8],
    ) -> Result<(Component, bool)> {
        let engine = &self.inner.engine;
        let path = self.cache_path(hash);
        if let Some(path) = path.as_deref().filter(|p| p.exists()) {
            match deserialize(engine, path) {
                Ok(component) => return Ok((component, true)),
                Err(err) => {
                    tracing::warn!(target: "host::cache", path = %path.display(), error = %err, "discarding unusable cache entry");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let component = match kind {
            WasmKind::Component => Component::new(engine, wasm),
            WasmKind::Module => Component::new(engine, adapt_preview1(engine, wasm)?),
        }
        .map_err(Error::Compile)?;
        if let Some(path) = path {
            match component.serialize() {
                Ok(bytes) => {
                    if let Err(err) = write_atomic(&path, &bytes) {
                        tracing::warn!(target: "host::cache", path = %path.display(), error = %err, "cannot write cache entry");
                    }
                }
                Err(err) => {
                    tracing::warn!(target: "host::cache", error = %err, "cannot serialize compiled job");
                }
            }
        }
        Ok((component, false))
    }
}

/// The import modules of the wasi-nn WIT interfaces, as `wit-bindgen` names them.
const WASI_NN_PREFIX: &str = "wasi:nn/";

/// Wraps a `wasm32-wasip1` command module into a preview-2 component.
fn adapt_preview1(engine: &Engine, module: &[u8]) -> Result<Vec<u8>> {
    // Compile first, so that a broken module is reported as such and not as
    // an adapter problem, and so that its imports can be checked by name.
    let m = Module::new(engine, module).map_err(Error::Compile)?;
    if m.get_export("_start").is_none() {
        return Err(Error::NotACommand(wasmtime::format_err!(
            "core module has no `_start` export"
        )));
    }
    // WASI preview 1 through the adapter, and wasi-nn through its WIT interface
    // (modules built with `wit-bindgen`, whose component-type section describes it).
    let provided = |module: &str| module == ADAPTER_NAME || module.starts_with(WASI_NN_PREFIX);
    if let Some(i) = m.imports().find(|i| !provided(i.module())) {
        return Err(Error::UnsupportedImport(wasmtime::format_err!(
            "core module imports `{}::{}`; only `{ADAPTER_NAME}` (WASI preview 1) and \
             `{WASI_NN_PREFIX}*` (wasi-nn through wit-bindgen) are provided",
            i.module(),
            i.name()
        )));
    }
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|e| e.adapter(ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER))
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| Error::UnsupportedImport(wasmtime::format_err!("{e:#}")))
}

#[allow(
    unsafe_code,
    reason = "loading native code the host itself compiled into its private cache"
)]
fn deserialize_module(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: as for components below: a private cache of this engine's own artifacts.
    unsafe { Module::deserialize_file(engine, path) }
}

#[allow(
    unsafe_code,
    reason = "loading native code the host itself compiled into its private cache"
)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the cache directory is private to this host and only ever holds
    // artifacts this engine serialized; wasmtime also checks the header and the
    // engine compatibility hash before using them.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The limit ticker's state: it advances the engine's epoch every `tick`
/// while a job runs, and sleeps while none does (a host that waits for work
/// wakes ten times a second, not a thousand).
#[derive(Debug, Default)]
pub(crate) struct Ticker {
    running: std::sync::atomic::AtomicUsize,
    /// Ticks so far.
    ticks: std::sync::atomic::AtomicU64,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Ticker {
    /// Keeps the ticker ticking until the guard drops (for one run).
    pub(crate) fn hold(self: &Arc<Self>) -> Ticking {
        if self
            .running
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            == 0
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
        Ticking(self.clone())
    }
}

/// A run that needs the ticker (see [`Ticker::hold`]).
pub(crate) struct Ticking(Arc<Ticker>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn start_ticker(engine: &Engine, tick: Duration, ticker: Arc<Ticker>) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("netmind-epoch".into())
        .spawn(move || {
            let _ = ticker.thread.set(std::thread::current());
            while let Some(engine) = weak.upgrade() {
                if ticker.running.load(std::sync::atomic::Ordering::Acquire) == 0 {
                    // Nothing runs: sleep until a run starts (`hold` unparks),
                    // looking every 100 ms whether the engine is gone.
                    drop(engine);
                    std::thread::park_timeout(Duration::from_millis(100));
                    continue;
                }
                engine.increment_epoch();
                ticker
                    .ticks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                drop(engine);
                std::thread::sleep(tick);
            }
        });
    if let Err(err) = spawned {
        tracing::error!(target: "host::sandbox", error = %err, "cannot start the limit ticker");
    }
}

/// Whether bytes are a component or a core module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A WASI preview-2 component.
    Component,
    /// A core module (e.g. `wasm32-wasip1`); it runs adapted to preview 2.
    Module,
}

impl WasmKind {
    /// Reads the preamble.
    pub fn detect(bytes: &[u8]) -> Result<Self> {
        match bytes {
            [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Ok(Self::Module),
            [0, b'a', b's', b'm', _, _, 1, 0, ..] => Ok(Self::Component),
            [0, b'a', b's', b'm', ..] => Err(Error::NotWasm(
                "unsupported WebAssembly version or layer in the header".into(),
            )),
            _ => Err(Error::NotWasm(
                "missing the `\\0asm` magic bytes; is this a .wasm file?".into(),
            )),
        }
    }
}

/// What runs: a component, or a core module that uses wasi-nn's witx ABI.
pub(crate) enum Code {
    Component {
        pre: Box<CommandPre<ComponentState>>,
        component: Component,
    },
    Core {
        pre: InstancePre<CoreState>,
        module: Module,
    },
}

/// A compiled, linked job, ready to run any number of times.
pub struct Job {
    pub(crate) runtime: Runtime,
    pub(crate) code: Code,
    kind: WasmKind,
    hash: [u8; 32],
    from_cache: bool,
    load_time: Duration,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("hash", &hex::encode(self.hash))
            .field("kind", &self.kind)
            .field("from_cache", &self.from_cache)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// SHA-256 of the wasm bytes.
    pub fn wasm_hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// How long loading (compile or cache read, and linking) took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// What the job was given as: a component, or a core module (which runs adapted).
    pub fn kind(&self) -> WasmKind {
        self.kind
    }

    /// The imports of the component that runs, e.g. `wasi:cli/environment@0.2.6`.
    pub fn imports(&self) -> Vec<String> {
        match &self.code {
            Code::Component { component, .. } => {
                component_imports(&self.runtime.inner.engine, component)
            }
            Code::Core { module, .. } => module
                .imports()
                .map(|i| format!("{}::{}", i.module(), i.name()))
                .collect(),
        }
    }
}

fn component_imports(engine: &Engine, c: &Component) -> Vec<String> {
    c.component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Lists the imports of wasm bytes without linking them (so that a job
/// with unsupported imports can still be inspected): component imports, or
/// `module::name` for a core module.
pub fn list_imports(runtime: &Runtime, wasm: &[u8]) -> Result<(WasmKind, Vec<String>)> {
    let engine = &runtime.inner.engine;
    let kind = WasmKind::detect(wasm)?;
    let imports = match kind {
        WasmKind::Component => component_imports(
            engine,
            &Component::new(engine, wasm).map_err(Error::Compile)?,
        ),
        WasmKind::Module => Module::new(engine, wasm)
            .map_err(Error::Compile)?
            .imports()
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect(),
    };
    Ok((kind, imports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds_and_rejects_non_wasm() {
        assert_eq!(
            WasmKind::detect(b"\0asm\x01\0\0\0").unwrap(),
            WasmKind::Module
        );
        assert_eq!(
            WasmKind::detect(b"\0asm\x0d\0\x01\0").unwrap(),
            WasmKind::Component
        );
        let err = WasmKind::detect(b"#!/bin/sh\n").unwrap_err().to_string();
        assert!(err.contains("magic bytes"), "{err}");
    }

    #[test]
    fn the_limit_ticker_ticks_only_while_a_run_holds_it() {
        let rt = Runtime::new(SandboxConfig::default()).unwrap();
        let ticker = rt.inner.ticker.clone();
        let ticks = || ticker.ticks.load(std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
        let idle = ticks();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(ticks(), idle, "no ticks while nothing runs");
        let held = ticker.hold();
        std::thread::sleep(Duration::from_millis(100));
        let running = ticks() - idle;
        assert!(running >= 10, "{running} ticks in 100 ms of a 1 ms ticker");
        drop(held);
        std::thread::sleep(Duration::from_millis(50));
        let after = ticks();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(ticks(), after, "it stops once the run is over");
    }
}
