//! The ONNX Runtime backend: `ort` with the library loaded at run time from a
//! `libonnxruntime.so` the host operator names (for example the one inside the
//! PyPI `onnxruntime` wheel). The library is checked when the backend is made,
//! so that a missing or too old library is reported at start-up and never
//! panics inside a job's call.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::run_options::RunOptions;
use ort::tensor::TensorElementType;
use ort::value::{DynValue, ValueType};

use super::backend::{Backend, BackendInfo, IoSpec, Model, Session, guarded};
use super::{Encoding, ErrorCode, NnError, Target, Tensor, TensorType};

/// The environment variable that names the library, as `ort` reads it.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// A loaded ONNX Runtime: where from, and its version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrtStatus {
    /// The library.
    pub path: PathBuf,
    /// Its version, e.g. `1.22.0`.
    pub version: String,
}

/// ONNX on the CPU with ONNX Runtime.
#[derive(Debug)]
pub struct OrtBackend {
    status: OrtStatus,
    threads: usize,
}

impl OrtBackend {
    /// Loads and checks the library at `path` (default: `$ORT_DYLIB_PATH`).
    /// Each inference uses `threads` threads.
    ///
    /// Fails with a message that says how to fix it when the library is
    /// missing, is not ONNX Runtime, or is older than the API this host needs.
    pub fn load(path: Option<&Path>, threads: usize) -> Result<Self, String> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => std::env::var_os(ORT_DYLIB_ENV).map(PathBuf::from).ok_or_else(|| {
                format!(
                    "no ONNX Runtime library given: set {ORT_DYLIB_ENV} (or pass --onnxruntime) to a libonnxruntime.so, \
                     e.g. the one in the PyPI `onnxruntime` wheel (python3 scripts/onnxruntime-lib.py prints its path)"
                )
            })?,
        };
        let version = preflight(&path)?;
        let init = std::panic::catch_unwind(|| {
            ort::init_from(path.to_string_lossy())
                .with_name("netmind")
                .commit()
        });
        match init {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "ONNX Runtime at {} failed to start: {e}",
                    path.display()
                ));
            }
            Err(_) => {
                return Err(format!(
                    "ONNX Runtime at {} failed to start (see the message above)",
                    path.display()
                ));
            }
        }
        Ok(Self {
            status: OrtStatus { path, version },
            threads: threads.max(1),
        })
    }

    /// Finds ONNX Runtime's library: `$ORT_DYLIB_PATH`, else the one inside the
    /// `onnxruntime` Python package, when `python3` has it installed.
    pub fn discover() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(ORT_DYLIB_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        const FIND: &str = "import importlib.util, pathlib, re\n\
            s = importlib.util.find_spec('onnxruntime')\n\
            d = pathlib.Path(next(iter(s.submodule_search_locations))) / 'capi'\n\
            libs = sorted(p for p in d.glob('libonnxruntime*') \
                if re.fullmatch(r'libonnxruntime(\\.so[.\\d]*|[.\\d]*\\.dylib)', p.name))\n\
            print(libs[-1].resolve())";
        let out = std::process::Command::new("python3")
            .args(["-c", FIND])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        (out.status.success() && path.is_file()).then_some(path)
    }

    /// The library in use.
    pub fn status(&self) -> &OrtStatus {
        &self.status
    }
}

/// Opens the library and checks that it is an ONNX Runtime new enough for `ort`,
/// without letting `ort` panic on it.
#[allow(
    unsafe_code,
    reason = "loading a C library and reading its version through its documented entry point"
)]
fn preflight(path: &Path) -> Result<String, String> {
    let how = "install it with `pip install onnxruntime` and point ORT_DYLIB_PATH or --onnxruntime at its capi/libonnxruntime.so";
    if !path.is_file() {
        return Err(format!(
            "ONNX Runtime library {} does not exist; {how}",
            path.display()
        ));
    }
    // SAFETY: loading runs the library's initialisers; the operator chose this
    // file as their ONNX Runtime.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot load {} as ONNX Runtime: {e}; {how}", path.display()))?;
    // SAFETY: the signature is the one ONNX Runtime's C API declares.
    let get_base = unsafe {
        lib.get::<unsafe extern "system" fn() -> *const ort_sys::OrtApiBase>(b"OrtGetApiBase")
    }
    .map_err(|_| {
        format!(
            "{} is not ONNX Runtime (it has no OrtGetApiBase); {how}",
            path.display()
        )
    })?;
    // SAFETY: OrtGetApiBase takes nothing and returns a static table or null.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(format!("{} returned no API table", path.display()));
    }
    // SAFETY: `base` is non-null and points at the library's static OrtApiBase,
    // whose GetVersionString returns a static NUL-terminated string.
    let version = unsafe { ((*base).GetVersionString)() };
    if version.is_null() {
        return Err(format!("{} reports no version", path.display()));
    }
    // SAFETY: non-null, and ONNX Runtime returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(version) }
        .to_string_lossy()
        .into_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let needed = ort_sys::ORT_API_VERSION;
    // SAFETY: as above; GetApi returns null for API versions the library lacks.
    let api = unsafe { ((*base).GetApi)(needed) };
    if (major, minor) < (1, needed) || api.is_null() {
        return Err(format!(
            "ONNX Runtime {version} at {} is too old: this host needs 1.{needed} or newer; {how}",
            path.display()
        ));
    }
    Ok(version)
}

impl Backend for OrtBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "onnxruntime".into(),
            version: self.status.version.clone(),
            encodings: vec![Encoding::Onnx],
            targets: vec![Target::Cpu],
        }
    }

    fn load(&self, model: &[u8], target: Target) -> Result<Arc<dyn Model>, NnError> {
        if target != Target::Cpu {
            return Err(NnError::new(
                ErrorCode::UnsupportedOperation,
                format!("this host runs ONNX Runtime on the cpu only, not the {target}"),
            ));
        }
        guarded("loading the model", || {
            let session = ort::session::Session::builder()
                .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3))
                .and_then(|b| b.with_intra_threads(self.threads))
                .and_then(|b| b.with_inter_threads(1))
                .map_err(|e| NnError::runtime(format!("ONNX Runtime: {e}")))?
                .commit_from_memory(model)
                .map_err(|e| {
                    NnError::invalid(format!("ONNX Runtime cannot load the model: {e}"))
                })?;
            let inputs = session
                .inputs
                .iter()
                .map(|i| spec(&i.name, &i.input_type))
                .collect();
            let outputs = session
                .outputs
                .iter()
                .map(|o| spec(&o.name, &o.output_type))
                .collect();
            Ok(Arc::new(OrtModel(Arc::new(Inner {
                session: Mutex::new(session),
                inputs,
                outputs,
            }))) as Arc<dyn Model>)
        })
    }
}

fn spec(name: &str, ty: &ValueType) -> IoSpec {
    let (ty, shape) = match ty {
        ValueType::Tensor { ty, shape, .. } => (
            from_element(*ty),
            Some(shape.iter().map(|d| u64::try_from(*d).ok()).collect()),
        ),
        _ => (None, None),
    };
    IoSpec {
        name: name.to_string(),
        ty,
        shape,
    }
}

fn from_element(t: TensorElementType) -> Option<TensorType> {
    Some(match t {
        TensorElementType::Float16 => TensorType::F16,
        TensorElementType::Float32 => TensorType::F32,
        TensorElementType::Float64 => TensorType::F64,
        TensorElementType::Bfloat16 => TensorType::Bf16,
        TensorElementType::Uint8 => TensorType::U8,
        TensorElementType::Int32 => TensorType::I32,
        TensorElementType::Int64 => TensorType::I64,
        _ => return None,
    })
}

struct Inner {
    /// `ort` runs a session through `&mut`; jobs sharing a registered model take turns.
    session: Mutex<ort::session::Session>,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
}

struct OrtModel(Arc<Inner>);

impl Model for OrtModel {
    fn inputs(&self) -> &[IoSpec] {
        &self.0.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.0.outputs
    }

    fn session(&self) -> Result<Box<dyn Session>, NnError> {
        Ok(Box::new(OrtSession {
            inner: self.0.clone(),
            watchdog: Watchdog::start()?,
        }))
    }
}

/// Sets ONNX Runtime's terminate flag when a run passes its deadline. One
/// thread per execution context, started with it, so a `compute` call pays
/// two channel messages, not a thread spawn.
struct Watchdog {
    tx: mpsc::Sender<Option<(Instant, Arc<RunOptions>)>>,
}

impl Watchdog {
    fn start() -> Result<Self, NnError> {
        let (tx, rx) = mpsc::channel::<Option<(Instant, Arc<RunOptions>)>>();
        std::thread::Builder::new()
            .name("netmind-ort-watchdog".into())
            .spawn(move || {
                // `Some` starts watching a run, `None` says it ended; a closed channel ends the thread.
                while let Ok(msg) = rx.recv() {
                    let Some((deadline, options)) = msg else {
                        continue;
                    };
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(_) => {}
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let _ = options.terminate();
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(|e| NnError::runtime(format!("cannot start the inference watchdog: {e}")))?;
        Ok(Self { tx })
    }
}

/// Sends the watchdog its "run ended" when dropped.
struct Disarm<'a>(&'a mpsc::Sender<Option<(Instant, Arc<RunOptions>)>>);

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        let _ = self.0.send(None);
    }
}

struct OrtSession {
    inner: Arc<Inner>,
    watchdog: Watchdog,
}

impl Session for OrtSession {
    fn run(&mut self, inputs: Vec<Tensor>, deadline: Instant) -> Result<Vec<Tensor>, NnError> {
        let values = inputs.iter().map(to_value).collect::<Result<Vec<_>, _>>()?;
        let options = Arc::new(
            RunOptions::new().map_err(|e| NnError::runtime(format!("ONNX Runtime: {e}")))?,
        );
        let inner = &self.inner;
        let watchdog = &self.watchdog;
        guarded("running the model", || {
            // Jobs sharing a registered model take turns, each until its deadline.
            let mut session = loop {
                match inner.session.try_lock() {
                    Ok(s) => break s,
                    Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) if Instant::now() >= deadline => {
                        return Err(NnError::new(
                            ErrorCode::Timeout,
                            "the shared model stayed busy past the deadline",
                        ));
                    }
                    Err(std::sync::TryLockError::WouldBlock) => {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                }
            };
            let named: Vec<(&str, &DynValue)> = inner
                .inputs
                .iter()
                .map(|s| s.name.as_str())
                .zip(values.iter())
                .collect();
            if Instant::now() >= deadline {
                return Err(NnError::new(
                    ErrorCode::Timeout,
                    "inference ran past its deadline",
                ));
            }
            let _ = watchdog.tx.send(Some((deadline, options.clone())));
            // Disarms the watchdog however the run ends, a panic included.
            let disarm = Disarm(&watchdog.tx);
            let outputs = session.run_with_options(named, &options);
            drop(disarm);
            let outputs = outputs.map_err(|e| {
                if Instant::now() >= deadline {
                    NnError::new(ErrorCode::Timeout, "inference ran past its deadline")
                } else {
                    NnError::runtime(format!("ONNX Runtime failed to run the model: {e}"))
                }
            })?;
            outputs.values().map(|v| from_value(&v)).collect()
        })
    }
}

fn bytes_to<T, const N: usize>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

fn to_value(t: &Tensor) -> Result<DynValue, NnError> {
    let shape: Vec<i64> = t.dims.iter().map(|d| i64::from(*d)).collect();
    let made = match t.ty {
        TensorType::F32 => {
            ort::value::Tensor::from_array((shape, bytes_to(&t.data, f32::from_le_bytes)))
                .map(ort::value::Value::into_dyn)
        }
        TensorType::F64 => {
            ort::value::Tensor::from_array((shape, bytes_to(&t.data, f64::from_le_bytes)))
                .map(ort::value::Value::into_dyn)
        }
        TensorType::I32 => {
            ort::value::Tensor::from_array((shape, bytes_to(&t.data, i32::from_le_bytes)))
                .map(ort::value::Value::into_dyn)
        }
        TensorType::I64 => {
            ort::value::Tensor::from_array((shape, bytes_to(&t.data, i64::from_le_bytes)))
                .map(ort::value::Value::into_dyn)
        }
        TensorType::U8 => {
            ort::value::Tensor::from_array((shape, t.data.clone())).map(ort::value::Value::into_dyn)
        }
        TensorType::F16 | TensorType::Bf16 => {
            return Err(NnError::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "this host's ONNX Runtime backend takes no {} inputs; convert them to f32",
                    t.ty
                ),
            ));
        }
    };
    made.map_err(|e| NnError::invalid(format!("ONNX Runtime rejects the input tensor: {e}")))
}

fn from_value(v: &DynValue) -> Result<Tensor, NnError> {
    let ValueType::Tensor { ty, .. } = v.dtype() else {
        return Err(NnError::new(
            ErrorCode::UnsupportedOperation,
            "the model outputs a sequence or map, which wasi-nn cannot carry",
        ));
    };
    let err = |e: ort::Error| NnError::runtime(format!("ONNX Runtime output: {e}"));
    macro_rules! take {
        ($t:ty, $tt:expr, $conv:expr) => {{
            let (shape, data) = v.try_extract_tensor::<$t>().map_err(err)?;
            let dims = shape
                .iter()
                .map(|d| u32::try_from(*d))
                .collect::<Result<Vec<u32>, _>>()
                .map_err(|_| {
                    NnError::new(ErrorCode::TooLarge, "an output dimension exceeds u32")
                })?;
            let conv: fn(&$t) -> Vec<u8> = $conv;
            Tensor {
                dims,
                ty: $tt,
                data: data.iter().flat_map(conv).collect(),
            }
        }};
    }
    Ok(match ty {
        TensorElementType::Float32 => take!(f32, TensorType::F32, |x| x.to_le_bytes().to_vec()),
        TensorElementType::Float64 => take!(f64, TensorType::F64, |x| x.to_le_bytes().to_vec()),
        TensorElementType::Int32 => take!(i32, TensorType::I32, |x| x.to_le_bytes().to_vec()),
        TensorElementType::Int64 => take!(i64, TensorType::I64, |x| x.to_le_bytes().to_vec()),
        TensorElementType::Uint8 => take!(u8, TensorType::U8, |x| vec![*x]),
        TensorElementType::Bool => take!(bool, TensorType::U8, |x| vec![u8::from(*x)]),
        TensorElementType::Int8 => take!(i8, TensorType::I32, |x| i32::from(*x)
            .to_le_bytes()
            .to_vec()),
        TensorElementType::Int16 => take!(i16, TensorType::I32, |x| i32::from(*x)
            .to_le_bytes()
            .to_vec()),
        TensorElementType::Uint16 => take!(u16, TensorType::I32, |x| i32::from(*x)
            .to_le_bytes()
            .to_vec()),
        TensorElementType::Uint32 => take!(u32, TensorType::I64, |x| i64::from(*x)
            .to_le_bytes()
            .to_vec()),
        other => {
            return Err(NnError::new(
                ErrorCode::UnsupportedOperation,
                format!("the model outputs {other:?} elements, which wasi-nn cannot carry"),
            ));
        }
    })
}
