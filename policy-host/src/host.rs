//! The module's lifecycle, as policy-server runs it: compiled once, a fresh instance rehydrated
//! from the pre-compiled module for every evaluation, and an epoch deadline on every call.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use serde_json::{Value, json};
use wapc::WapcHost;
use wasmtime_provider::wasmtime::{Cache, CacheConfig, Config, Engine, ProfilingStrategy};
use wasmtime_provider::{EpochDeadlines, WasmtimeEngineProviderBuilder, WasmtimeEngineProviderPre};

use crate::admission::{AdmissionResponse, ValidationResponse, request_uid};
use crate::callbacks::HostCapabilities;

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct PolicyHost {
    pre: WasmtimeEngineProviderPre,
    deadlines: EpochDeadlines,
    timeout: Duration,
    capabilities: Arc<HostCapabilities>,
    _ticker: EpochTicker,
}

/// Whether the module's machine code is kept in wasmtime's on-disk cache (under `~/.cache`), keyed
/// by the module's bytes, the engine's settings and wasmtime's version: kwctl keeps it unless
/// `--disable-wasmtime-cache` is given. Compiling the module is the slow part of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCache {
    Enabled,
    Disabled,
}

/// The answer to `validate_settings`.
#[derive(Debug, PartialEq, Eq)]
pub enum SettingsVerdict {
    Valid,
    Invalid(String),
}

#[derive(Deserialize)]
struct SettingsValidationResponse {
    valid: bool,
    message: Option<String>,
}

impl PolicyHost {
    /// Compiles the module at `path` once (or loads its machine code from the cache).
    pub fn load(path: &Path, timeout: Duration, code_cache: CodeCache) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_bytes(&bytes, timeout, code_cache)
            .with_context(|| format!("loading {}", path.display()))
    }

    pub fn from_bytes(bytes: &[u8], timeout: Duration, code_cache: CodeCache) -> Result<Self> {
        Self::with_config(bytes, timeout, Config::new(), code_cache)
    }

    /// The same, with every instance's linear memory limited to `limit` bytes: the memory is
    /// reserved at that size up front and may not move, so growing past it fails in the module.
    pub fn load_with_memory_limit(bytes: &[u8], timeout: Duration, limit: u64) -> Result<Self> {
        let mut config = Config::new();
        config
            .memory_reservation(limit)
            .memory_reservation_for_growth(0)
            .memory_may_move(false);
        Self::with_config(bytes, timeout, config, CodeCache::Disabled)
    }

    /// The same, with wasmtime writing `/tmp/perf-<pid>.map`, which names the address range of
    /// each of the module's compiled functions, so that a profiler (perf, or callgrind with
    /// `e2e-tests/probe.sh`) can tell which wasm function the time goes to.
    pub fn load_with_perf_map(bytes: &[u8], timeout: Duration) -> Result<Self> {
        let mut config = Config::new();
        config.profiler(ProfilingStrategy::PerfMap);
        Self::with_config(bytes, timeout, config, CodeCache::Disabled)
    }

    fn with_config(
        bytes: &[u8],
        timeout: Duration,
        mut config: Config,
        code_cache: CodeCache,
    ) -> Result<Self> {
        config.epoch_interruption(true);
        if code_cache == CodeCache::Enabled {
            let cache = Cache::new(CacheConfig::new())
                .map_err(|e| anyhow!("opening wasmtime's code cache: {e}"))?;
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config).map_err(|e| anyhow!("creating the engine: {e}"))?;
        let ticks = (timeout.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64;
        let deadlines = EpochDeadlines {
            wapc_init: ticks,
            wapc_func: ticks,
        };
        let pre = WasmtimeEngineProviderBuilder::new()
            .engine(engine.clone())
            .module_bytes(bytes)
            .enable_epoch_interruptions(deadlines)
            .build_pre()
            .context("compiling the module")?;
        Ok(Self {
            pre,
            deadlines,
            timeout,
            capabilities: Arc::new(HostCapabilities::default()),
            _ticker: EpochTicker::start(engine),
        })
    }

    /// Offers `capabilities` to every instance made from now on.
    pub fn with_capabilities(mut self, capabilities: HostCapabilities) -> Self {
        self.capabilities = Arc::new(capabilities);
        self
    }

    /// A new instance, initialized (`wapc_init`), as policy-server makes for every request.
    pub fn instance(&self) -> Result<WapcHost> {
        let provider = self
            .pre
            .rehydrate(Some(self.deadlines))
            .context("instantiating the module")?;
        let capabilities = Arc::clone(&self.capabilities);
        let callback =
            move |_id: u64, binding: &str, namespace: &str, operation: &str, payload: &[u8]| {
                capabilities.call(binding, namespace, operation, payload)
            };
        WapcHost::new(Box::new(provider), Some(Box::new(callback)))
            .context("initializing the module (wapc_init)")
    }

    /// Checks that the module speaks Kubewarden's protocol v1, as policy-server does on load.
    pub fn check_protocol_version(&self) -> Result<()> {
        let answer = self.instance()?.call("protocol_version", b"")?;
        let version: String = serde_json::from_slice(&answer)
            .context("the module's protocol_version answer is not a JSON string")?;
        anyhow::ensure!(
            version == "v1",
            "unsupported policy protocol version {version:?}"
        );
        Ok(())
    }

    /// Calls `validate_settings` with the bare settings; a guest error means invalid settings.
    pub fn validate_settings(&self, settings: &Value) -> Result<SettingsVerdict> {
        let payload = serde_json::to_vec(settings)?;
        match self.instance()?.call("validate_settings", &payload) {
            Ok(answer) => {
                let response: SettingsValidationResponse = serde_json::from_slice(&answer)
                    .context("the module's validate_settings answer is not a settings response")?;
                Ok(if response.valid {
                    SettingsVerdict::Valid
                } else {
                    SettingsVerdict::Invalid(response.message.unwrap_or_default())
                })
            }
            Err(e) => Ok(SettingsVerdict::Invalid(e.to_string())),
        }
    }

    /// Evaluates a request in a fresh instance.
    pub fn validate(&self, request: &Value, settings: &Value) -> AdmissionResponse {
        let outcome = validate_payload(request, settings).and_then(|payload| {
            let instance = self.instance()?;
            self.call_validate(&instance, &payload)
        });
        self.to_admission_response(request_uid(request), outcome)
    }

    /// Calls `validate` on an existing instance (what `kwctl bench` measures).
    pub fn call_validate(&self, instance: &WapcHost, payload: &[u8]) -> Result<ValidationResponse> {
        let answer = instance.call("validate", payload)?;
        serde_json::from_slice(&answer).context("the module's answer is not a ValidationResponse")
    }

    fn to_admission_response(
        &self,
        uid: String,
        outcome: Result<ValidationResponse>,
    ) -> AdmissionResponse {
        match outcome {
            Ok(response) => AdmissionResponse::from_validation(uid, response),
            Err(e) => {
                let detail = format!("{e:#}");
                let message = if detail.contains("execution deadline exceeded") {
                    format!(
                        "internal server error: policy evaluation exceeded the {:?} deadline",
                        self.timeout
                    )
                } else {
                    format!("internal server error: {detail}")
                };
                AdmissionResponse::internal_error(uid, message)
            }
        }
    }
}

/// The payload of `validate`: `{"request": ..., "settings": ...}`.
pub fn validate_payload(request: &Value, settings: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(&json!({ "request": request, "settings": settings }))
        .context("serializing the validate payload")
}

/// Advances the engine's epoch every tick, as policy-server's ticker thread does.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
