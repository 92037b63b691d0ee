//! Running a built engine: the GPU check, deserialization, device buffers allocated once at the
//! profiles' maxima, shapes, `enqueueV3` on a stream. The token-level logic (KV cache, batching)
//! is in [`super`]; this module moves tensors.
use crate::engine_dir::manifest::{Manifest, TrtManifest, ENGINE_FILE};
use crate::trt::result::IoTensor;
use crate::trt::safe::{Engine, ExecutionContext, Runtime};
use crate::trt::sys::{Flavour, Slots};
use crate::trt::{parse_target, TrtError, TrtLibrary, RTX_TARGETS};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr};
use std::collections::HashMap;
use std::ffi::c_void;
use std::path::Path;
use std::sync::Arc;

/// The GPU this process would run on.
#[derive(Debug, Clone)]
pub struct GpuInfo {
    pub name: String,
    pub sm: u32,
}

/// Asks the CUDA driver for device 0 without panicking when there is no driver.
pub fn probe_gpu() -> Result<(Arc<CudaContext>, GpuInfo), TrtError> {
    // SAFETY: only checks whether libcuda can be loaded; CudaContext::new panics otherwise.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(TrtError::Gpu(
            "no CUDA driver (libcuda.so) on this machine: TensorRT engines need an NVIDIA GPU; use --backend ort or cpu".into(),
        ));
    }
    let ctx = CudaContext::new(0).map_err(|e| TrtError::Gpu(format!("no usable CUDA device: {e}")))?;
    let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
    let (a, b) = ctx.compute_capability().map_err(|e| TrtError::Gpu(format!("{name}: {e}")))?;
    Ok((ctx, GpuInfo { name, sm: (a * 10 + b) as u32 }))
}

/// Checks an engine's manifest against this GPU (and nothing else): the refusal a user sees on a
/// GPU the engine was not built for, before any TensorRT library is loaded.
pub fn check_gpu(sec: &TrtManifest, gpu: &GpuInfo) -> Result<(), TrtError> {
    if sec.flavour != Flavour::Rtx.as_str() {
        return Ok(()); // TensorRT builds for the GPU it ran on; its runtime checks the rest.
    }
    let targets: Vec<u32> = sec.targets.iter().filter_map(|t| parse_target(t).ok()).collect();
    if targets.contains(&gpu.sm) {
        return Ok(());
    }
    let supported = RTX_TARGETS.contains(&gpu.sm);
    let what = if supported {
        format!("rebuild it for this GPU (build.target: [sm{}] and `trtforge build`)", gpu.sm)
    } else {
        format!(
            "TensorRT-RTX {} does not run on sm_{} at all; run this model with --backend cuda (native engine) or --backend ort (ONNX Runtime)",
            sec.version, gpu.sm
        )
    };
    Err(TrtError::Gpu(format!(
        "this engine was built with TensorRT-RTX {} for {} but this GPU is {} (sm_{}): {what}",
        sec.version,
        sec.targets.join(", "),
        gpu.name,
        gpu.sm
    )))
}

/// Something that runs an engine's I/O contract: the TensorRT session, or (in tests) ONNX Runtime
/// on the same graph.
pub trait EngineRunner {
    /// Runs with optimization profile `profile`; returns every output.
    fn run(&mut self, profile: i32, inputs: &[HostTensor]) -> Result<Vec<HostTensor>, crate::Error>;
}

impl EngineRunner for TrtSession {
    fn run(&mut self, profile: i32, inputs: &[HostTensor]) -> Result<Vec<HostTensor>, crate::Error> {
        TrtSession::run(self, profile, inputs)
    }
}

/// A host tensor: name, shape and little-endian bytes.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub name: String,
    pub dims: Vec<i64>,
    pub bytes: Vec<u8>,
}

/// An engine ready to run: runtime, engine, context, stream and one device buffer per I/O
/// tensor, sized for the largest shape any profile allows.
pub struct TrtSession {
    // Drop order: context, engine, runtime, then buffers and the stream.
    exec: ExecutionContext,
    engine: Engine,
    _runtime: Runtime,
    buffers: HashMap<String, CudaSlice<u8>>,
    stream: Arc<CudaStream>,
    _ctx: Arc<CudaContext>,
    pub io: Vec<IoTensor>,
    pub lib: &'static TrtLibrary,
    profile: i32,
}

impl TrtSession {
    /// Opens `dir/model.engine`: GPU check first, then the library (version must match the
    /// manifest), then deserialization.
    pub fn open(dir: &Path, man: &Manifest, configured_lib: Option<&Path>) -> Result<Self, crate::Error> {
        let sec = TrtManifest::from_manifest(man)
            .ok_or_else(|| {
                TrtError::Invalid(format!(
                    "{} has no TensorRT engine: run `trtforge build --engine-dir {}`",
                    dir.display(),
                    dir.display()
                ))
            })?
            .map_err(|e| TrtError::Invalid(format!("{}: bad tensorrt section: {e}", dir.display())))?;
        if !dir.join(ENGINE_FILE).exists() {
            return Err(TrtError::Invalid(format!(
                "{} has no {ENGINE_FILE} (removed?): run `trtforge build --engine-dir {}`",
                dir.display(),
                dir.display()
            ))
            .into());
        }
        let (ctx, gpu) = probe_gpu()?;
        // Diagnostic escape hatch: let TensorRT itself judge the GPU (its refusal is less clear).
        if std::env::var("TRTFORGE_TRT_SKIP_GPU_CHECK").as_deref() != Ok("1") {
            check_gpu(&sec, &gpu)?;
        }
        let lib = crate::trt::find_and_load(configured_lib)?;
        if lib.flavour.as_str() != sec.flavour || lib.version_string() != sec.version {
            return Err(TrtError::Invalid(format!(
                "{} was built with {} {}, but the library found is {}; rebuild with `trtforge build` or point TRTFORGE_TENSORRT_LIB at {}",
                dir.display(),
                sec.flavour,
                sec.version,
                lib.describe(),
                sec.library
            ))
            .into());
        }
        let path = dir.join(ENGINE_FILE);
        let blob = std::fs::read(&path).map_err(|e| crate::Error::io(&path, e))?;
        if crate::util::sha256_bytes(&blob) != sec.engine_sha256 {
            return Err(TrtError::Invalid(format!(
                "{}: contents differ from the manifest; rebuild it",
                path.display()
            ))
            .into());
        }
        ctx.bind_to_thread().map_err(|e| TrtError::Gpu(e.to_string()))?;
        let stream = ctx.new_stream().map_err(|e| TrtError::Gpu(e.to_string()))?;
        let mut runtime = Runtime::new(lib)?;
        let mut engine = runtime.deserialize(&blob)?;
        let mut exec = engine.create_context()?;
        let io = engine.io_tensors();
        let s = lib.slots();
        // Largest shape of every tensor over all profiles: inputs from the profiles, outputs from
        // the shapes TensorRT infers with the inputs at their maxima.
        let mut max_bytes: HashMap<String, usize> = HashMap::new();
        let raw_stream = stream.cu_stream() as *mut c_void;
        for p in 0..engine.nb_profiles() {
            // SAFETY: `stream` is this context's live stream (held in self below).
            unsafe { exec.set_profile(p, raw_stream)? };
            for t in io.iter().filter(|t| t.is_input) {
                let [_, _, max] = engine.profile_shape(&t.name, p)?;
                exec.set_input_shape(&t.name, &max)?;
                let n = elems(&max) * dtype_size(s, t.dtype);
                max_bytes.entry(t.name.clone()).and_modify(|b| *b = (*b).max(n)).or_insert(n);
            }
            for t in io.iter().filter(|t| !t.is_input) {
                let n = elems(&exec.tensor_shape(&t.name)?) * dtype_size(s, t.dtype);
                max_bytes.entry(t.name.clone()).and_modify(|b| *b = (*b).max(n)).or_insert(n);
            }
        }
        let mut buffers = HashMap::new();
        for (name, n) in max_bytes {
            let b = stream
                .alloc_zeros::<u8>(n.max(1))
                .map_err(|e| TrtError::Gpu(format!("allocating {n} bytes for {name}: {e}")))?;
            buffers.insert(name, b);
        }
        stream.synchronize().map_err(|e| TrtError::Gpu(e.to_string()))?;
        Ok(TrtSession { exec, engine, _runtime: runtime, buffers, stream, _ctx: ctx, io, lib, profile: 0 })
    }

    /// Runs the engine with `profile` on the given inputs; returns every output.
    pub fn run(&mut self, profile: i32, inputs: &[HostTensor]) -> Result<Vec<HostTensor>, crate::Error> {
        let gpu = |e: cudarc::driver::DriverError| TrtError::Gpu(e.to_string());
        let raw_stream = self.stream.cu_stream() as *mut c_void;
        if profile != self.profile {
            // SAFETY: `self.stream` is the live stream of the engine's context.
            unsafe { self.exec.set_profile(profile, raw_stream)? };
            self.profile = profile;
        }
        for t in inputs {
            let buf = self
                .buffers
                .get_mut(&t.name)
                .ok_or_else(|| TrtError::Invalid(format!("engine has no input {}", t.name)))?;
            if t.bytes.len() > buf.len() {
                return Err(TrtError::Invalid(format!(
                    "input {} of {:?} exceeds the engine's profiles",
                    t.name, t.dims
                ))
                .into());
            }
            if !t.bytes.is_empty() {
                let mut view = buf.slice_mut(0..t.bytes.len());
                self.stream.memcpy_htod(&t.bytes, &mut view).map_err(gpu)?;
            }
            self.exec.set_input_shape(&t.name, &t.dims)?;
        }
        for t in &self.io {
            let buf = &self.buffers[&t.name];
            let (ptr, _sync) = buf.device_ptr(&self.stream);
            // SAFETY: the buffer holds the tensor's largest shape over all profiles and lives in
            // self until after the synchronize below.
            unsafe { self.exec.set_tensor_address(&t.name, ptr)? };
        }
        // SAFETY: every I/O tensor is bound above; the stream belongs to the engine's context.
        unsafe { self.exec.enqueue(raw_stream)? };
        let mut out = Vec::new();
        let s = self.lib.slots();
        for t in self.io.iter().filter(|t| !t.is_input) {
            let dims = self.exec.tensor_shape(&t.name)?;
            let n = elems(&dims) * dtype_size(s, t.dtype);
            let mut host = vec![0u8; n];
            if n > 0 {
                let view = self.buffers[&t.name].slice(0..n);
                self.stream.memcpy_dtoh(&view, &mut host).map_err(gpu)?;
            }
            out.push(HostTensor { name: t.name.clone(), dims, bytes: host });
        }
        self.stream.synchronize().map_err(gpu)?;
        let _ = &self.engine;
        Ok(out)
    }
}

fn elems(d: &[i64]) -> usize {
    d.iter().map(|&x| x.max(0) as usize).product()
}

fn dtype_size(s: &Slots, t: i32) -> usize {
    match t {
        x if x == s.dtype_float || x == s.dtype_int32 => 4,
        x if x == s.dtype_half || x == s.dtype_bf16 => 2,
        x if x == s.dtype_int64 => 8,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(targets: &[&str]) -> TrtManifest {
        serde_json::from_value(serde_json::json!({
            "flavour": "tensorrt-rtx", "version": "1.7.1", "library": "x", "targets": targets,
            "attention": "portable", "optimization_level": null, "workspace_bytes": null, "profiles": [],
            "inputs": [], "outputs": [], "layers": 1, "engine_file": "model.engine", "engine_bytes": 1,
            "engine_sha256": "", "build_seconds": 0.0, "timing_cache": "off", "timing_cache_file": null,
            "build_cache": "off", "build_cache_key": ""
        }))
        .unwrap()
    }

    #[test]
    fn h100_is_refused_with_what_to_do() {
        let e = check_gpu(&sec(&["sm89"]), &GpuInfo { name: "NVIDIA H100 80GB HBM3".into(), sm: 90 })
            .unwrap_err()
            .to_string();
        assert!(e.contains("NVIDIA H100 80GB HBM3") && e.contains("sm_90") && e.contains("sm89"), "{e}");
        assert!(e.contains("--backend cuda") && e.contains("--backend ort"), "{e}");
        let e = check_gpu(&sec(&["sm89"]), &GpuInfo { name: "RTX 3090".into(), sm: 86 }).unwrap_err().to_string();
        assert!(e.contains("rebuild") && e.contains("sm86"), "{e}");
        check_gpu(&sec(&["sm86", "sm89"]), &GpuInfo { name: "RTX 4090".into(), sm: 89 }).unwrap();
    }
}
