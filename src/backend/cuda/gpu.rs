//! The engine's safe layer over cudarc's `sys`/`result` layers: device discovery that never
//! panics, RAII device buffers, kernel module compilation with an on-disk cache, raw launches,
//! cuBLAS and CUDA graphs. `unsafe` in the CUDA engine lives here and at kernel launches.
use super::kernels::{tcg4_requested, KernelSpec, F8G_INSTANCES};
use crate::error::{Error, Result};
use cudarc::cublas::sys as cublas_sys;
use cudarc::cublaslt::{result as ltr, sys as lt};
use cudarc::driver::{sys, CudaContext, CudaFunction, CudaGraph, CudaModule, CudaStream};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn gpu_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Gpu(format!("{what}: {e:?}"))
}

/// Whether `TRTFORGE_CUDA_PRECOMPILE` asks this run to fill the kernel cache (on a machine without a GPU).
pub fn precompiling() -> bool {
    std::env::var_os("TRTFORGE_CUDA_PRECOMPILE").is_some()
}

/// [`probe`], except when [`precompiling`]: commands that only fill the kernel cache need no GPU.
pub fn probe_unless_precompiling() -> Result<()> {
    if precompiling() {
        return Ok(());
    }
    probe()
}

/// Checks that the driver, NVRTC and cuBLAS can be loaded and that a GPU is visible, before
/// anything in cudarc that would panic without them is touched.
pub fn probe() -> Result<()> {
    // SAFETY: each call only tries to dlopen the library by its usual names.
    let (drv, rtc, blas) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
        )
    };
    if !drv {
        return Err(Error::Gpu(
            "no NVIDIA driver: libcuda.so could not be loaded. --backend cuda needs an NVIDIA GPU and driver; \
             use --backend cpu on this machine"
                .into(),
        ));
    }
    for (ok, lib) in [(rtc, "libnvrtc.so (CUDA 13 NVRTC)"), (blas, "libcublas.so (CUDA 13 cuBLAS)")] {
        if !ok {
            return Err(Error::Gpu(format!(
                "{lib} could not be loaded; install the CUDA 13 toolkit libraries and add their folder \
                 (e.g. /usr/local/cuda/lib64) to LD_LIBRARY_PATH"
            )));
        }
    }
    cudarc::driver::result::init().map_err(|e| gpu_err("cuInit failed (is a GPU visible to this process?)", e))?;
    let n = cudarc::driver::result::device::get_count().map_err(|e| gpu_err("cuDeviceGetCount", e))?;
    if n < 1 {
        return Err(Error::Gpu("the NVIDIA driver sees no GPU".into()));
    }
    Ok(())
}

/// A device allocation freed on drop. Holds raw bytes; kernels get its address.
pub struct DevBuf {
    ptr: sys::CUdeviceptr,
    bytes: usize,
    ctx: Arc<CudaContext>,
    /// Carved from the process arena (`TRTFORGE_ARENA_MB`): dropping it does not free memory.
    arena: bool,
}

impl DevBuf {
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        if self.arena {
            arena_release();
            return;
        }
        if self.ptr != 0 {
            let _ = self.ctx.bind_to_thread();
            // SAFETY: ptr came from cuMemAlloc in this context and is freed once; the engine
            // synchronizes its stream before dropping buffers.
            let _ = unsafe { cudarc::driver::result::free_sync(self.ptr) };
        }
    }
}

/// A cuBLAS handle with its own workspace (needed for graph capture), freed on drop.
pub struct Blas {
    handle: cublas_sys::cublasHandle_t,
    _workspace: DevBuf,
}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: the handle was created by cublasCreate and is destroyed once.
        let _ = unsafe { cudarc::cublas::result::destroy_handle(self.handle) };
    }
}

/// Element type of a GEMM operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmType {
    F16,
    F32,
}

impl GemmType {
    fn cuda(self) -> cublas_sys::cudaDataType {
        match self {
            GemmType::F16 => cublas_sys::cudaDataType::CUDA_R_16F,
            GemmType::F32 => cublas_sys::cudaDataType::CUDA_R_32F,
        }
    }
}

/// One GPU: context, the engine's stream, the compiled kernels and cuBLAS.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    funcs: HashMap<String, CudaFunction>,
    blas: Blas,
    /// cuBLASLt with per-shape autotuned algorithms (None where libcublasLt is missing).
    lt: Option<Lt>,
    pub name: String,
    pub cc: (i32, i32),
    pub sms: u32,
    pub compile_secs: f64,
    pub compile_cached: bool,
    /// Launch with programmatic dependent launch (sm_90+; TRTFORGE_PDL=0 turns it off). Measured
    /// 4–6 % faster bs1 decode on the H100 with the trigger after each kernel's main loop.
    pub pdl: bool,
    /// The module was built for sm_90a with the wgmma GEMM (`tcg4_*`, TRTFORGE_TCG=4 on cc 9.0).
    pub wgmma: bool,
    /// The module was built for sm_90a with the FP8 GEMM (`f8g_*`, fp8 engines on cc 9.0: KernelSpec::f8g).
    pub f8g: bool,
    /// The module holds the quantized decode GEMM (`wq_*`, cc 9.0 unless TRTFORGE_WQ=0: KernelSpec::wq).
    pub wq: bool,
}

/// Where compiled kernels are cached: $TRTFORGE_CACHE_DIR, else $XDG_CACHE_HOME/trtforge, else
/// ~/.cache/trtforge, else the system temp dir.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TRTFORGE_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("trtforge").join("cuda")
}

fn arch_name(cc: (i32, i32)) -> &'static str {
    match cc {
        (9, 0) => "sm_90",
        (8, 0) => "sm_80",
        (8, 6) => "sm_86",
        (8, 7) => "sm_87",
        (8, 9) => "sm_89",
        (7, 5) => "sm_75",
        (7, 0) => "sm_70",
        (10, 0) => "sm_100",
        (12, 0) => "sm_120",
        // Unknown parts: the oldest real architecture NVRTC 13 targets; the driver refuses a
        // CUBIN it cannot run, which surfaces as a clear load error.
        _ => "sm_75",
    }
}

/// NVRTC output: a CUBIN for one real architecture and the compiler's log (ptxas -v).
pub struct Compiled {
    pub cubin: Vec<u8>,
    pub log: String,
    pub secs: f64,
    pub cached: bool,
}

/// Compiles `src` with NVRTC straight to a CUBIN for `arch` (no driver JIT at load), or returns
/// the one cached on disk under a hash of the source, architecture and NVRTC version.
pub fn compile_cached(src: &str, arch: &str, dir: &Path) -> Result<Compiled> {
    // TRTFORGE_CUDA_PRECOMPILE comes here without `probe`: cudarc panics on a missing library.
    // SAFETY: only tries to dlopen the library by its usual names.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::Gpu(
            "libnvrtc.so (CUDA 13 NVRTC) could not be loaded; add its folder (e.g. /usr/local/cuda/lib64) \
             to LD_LIBRARY_PATH"
                .into(),
        ));
    }
    let mut nv = (0, 0);
    // SAFETY: nvrtcVersion writes two ints; the library was found above.
    unsafe {
        let _ = cudarc::nvrtc::sys::nvrtcVersion(&mut nv.0, &mut nv.1);
    }
    // TRTFORGE_NVRTC_LINEINFO=1: source lines in the CUBIN for ncu's source view (code unchanged; own cache entry).
    let lineinfo = std::env::var("TRTFORGE_NVRTC_LINEINFO").as_deref() == Ok("1");
    let key = crate::util::sha256_bytes(
        format!("{arch}|nvrtc{}.{}|{}{src}", nv.0, nv.1, if lineinfo { "lineinfo|" } else { "" }).as_bytes(),
    );
    let path = dir.join(format!("{}.cubin", &key[..24]));
    if let Ok(cubin) = std::fs::read(&path) {
        return Ok(Compiled { cubin, log: String::new(), secs: 0.0, cached: true });
    }
    let t = std::time::Instant::now();
    let (cubin, log) = nvrtc_cubin(src, arch, lineinfo)?;
    let secs = t.elapsed().as_secs_f64();
    // The cache is an optimization: a read-only or missing home is not an error.
    if std::fs::create_dir_all(dir).is_ok() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &cubin).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(Compiled { cubin, log, secs, cached: false })
}

fn nvrtc_cubin(src: &str, arch: &str, lineinfo: bool) -> Result<(Vec<u8>, String)> {
    use cudarc::nvrtc::{result as nr, sys as ns};
    let csrc = std::ffi::CString::new(src).map_err(|_| Error::Gpu("kernel source contains a NUL byte".into()))?;
    let prog = nr::create_program(&csrc, Some(c"trtforge_kernels.cu")).map_err(|e| gpu_err("nvrtcCreateProgram", e))?;
    let mut opts = vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".into(),
        "-default-device".into(),
        "--ptxas-options=-v".into(),
    ];
    if lineinfo {
        opts.push("-lineinfo".into());
    }
    // SAFETY: prog is live until destroy_program below; the log and CUBIN buffers are sized by NVRTC.
    unsafe {
        let compiled = nr::compile_program(prog, &opts);
        let log_raw = nr::get_program_log(prog).unwrap_or_default();
        let log = std::ffi::CStr::from_ptr(log_raw.as_ptr()).to_string_lossy().into_owned();
        let out = match compiled {
            Err(e) => {
                Err(Error::Gpu(format!("NVRTC failed to compile the engine's kernels for {arch} ({e:?}):\n{log}")))
            }
            Ok(()) => {
                let mut n = 0usize;
                ns::nvrtcGetCUBINSize(prog, &mut n).result().map_err(|e| gpu_err("nvrtcGetCUBINSize", e))?;
                let mut buf = vec![0u8; n];
                ns::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut std::ffi::c_char)
                    .result()
                    .map_err(|e| gpu_err("nvrtcGetCUBIN", e))?;
                Ok((buf, log))
            }
        };
        let _ = nr::destroy_program(prog);
        out
    }
}

impl Gpu {
    /// Opens GPU `ordinal`, compiles (or loads from cache) the kernels of `spec`, creates cuBLAS.
    pub fn open(ordinal: usize, spec: &KernelSpec) -> Result<Gpu> {
        probe()?;
        let ctx = CudaContext::new(ordinal).map_err(|e| gpu_err("creating the CUDA context", e))?;
        // The engine orders all work on one stream itself; cudarc's per-buffer events would only
        // add work and interfere with graph capture.
        // SAFETY: no cudarc-managed buffers are shared between streams by this engine.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(|e| gpu_err("creating a stream", e))?;
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let cc = ctx.compute_capability().map_err(|e| gpu_err("compute capability", e))?;
        let sms = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| gpu_err("SM count", e))? as u32;
        // TRTFORGE_TCG=4 on cc 9.0: the same kernels for sm_90a plus the wgmma GEMM (`tcg4_*`); fp8
        // engines on cc 9.0: the same kernels for sm_90a plus the FP8 GEMM (`f8g_*`).
        let (src, arch, wgmma, f8g, mk, wq) = module_source(spec, cc);
        let c = compile_cached(&src, &arch, &cache_dir())?;
        let (compile_secs, compile_cached) = (c.secs, c.cached);
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_binary(c.cubin))
            .map_err(|e| gpu_err("loading the compiled kernels", e))?;
        let mut funcs = HashMap::new();
        let mut names = spec.kernel_names();
        if wgmma {
            names.extend(spec.tcg4_names());
        }
        if f8g {
            names.extend(F8G_INSTANCES.iter().map(|i| i.0.to_string()));
        }
        if mk {
            names.extend(["mk_step".to_string(), "mk_advance".to_string()]);
        }
        if wq {
            names.extend(super::wq::KERNELS.iter().map(|n| n.to_string()));
        }
        for n in names {
            let f = module.load_function(&n).map_err(|e| gpu_err(&format!("kernel {n}"), e))?;
            funcs.insert(n, f);
        }
        let handle = cudarc::cublas::result::create_handle().map_err(|e| gpu_err("cublasCreate", e))?;
        let ws_bytes = 32 << 20;
        let workspace = alloc_raw(&ctx, ws_bytes)?;
        // SAFETY: handle is live; the stream and workspace outlive it (both owned by Gpu).
        unsafe {
            cudarc::cublas::result::set_stream(handle, stream.cu_stream() as _)
                .map_err(|e| gpu_err("cublasSetStream", e))?;
            cublas_sys::cublasSetWorkspace_v2(handle, workspace.ptr() as *mut c_void, ws_bytes)
                .result()
                .map_err(|e| gpu_err("cublasSetWorkspace", e))?;
        }
        let blas = Blas { handle, _workspace: workspace };
        let pdl = cc.0 >= 9 && std::env::var("TRTFORGE_PDL").as_deref() != Ok("0");
        // SAFETY: only tries to dlopen the library by its usual names.
        let lt = if unsafe { cudarc::cublaslt::sys::is_culib_present() } { Some(Lt::new(&ctx)?) } else { None };
        Ok(Gpu {
            ctx,
            stream,
            _module: module,
            funcs,
            blas,
            lt,
            name,
            cc,
            sms,
            compile_secs,
            compile_cached,
            pdl,
            wgmma,
            f8g,
            wq,
        })
    }

    /// Sets an `int` `__constant__` of the module (before any kernel that reads it runs).
    /// Sets a `__constant__` pointer of the module to the address of `buf`.
    pub fn set_const_ptr(&self, name: &str, buf: &DevBuf) -> Result<()> {
        let mut g = self._module.get_global(name, &self.stream).map_err(|e| gpu_err(&format!("constant {name}"), e))?;
        self.stream
            .memcpy_htod(&buf.ptr().to_le_bytes(), &mut g)
            .map_err(|e| gpu_err(&format!("setting {name}"), e))?;
        self.sync()
    }

    /// Sets an `int[]` `__constant__` of the module.
    pub fn set_const_i32s(&self, name: &str, v: &[i32]) -> Result<()> {
        let mut g = self._module.get_global(name, &self.stream).map_err(|e| gpu_err(&format!("constant {name}"), e))?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.stream.memcpy_htod(&bytes, &mut g).map_err(|e| gpu_err(&format!("setting {name}"), e))?;
        self.sync()
    }

    /// Sets a `__constant__` u64 (or pointer, e.g. to null) of the module.
    pub fn set_const_u64(&self, name: &str, v: u64) -> Result<()> {
        let mut g = self._module.get_global(name, &self.stream).map_err(|e| gpu_err(&format!("constant {name}"), e))?;
        self.stream.memcpy_htod(&v.to_le_bytes(), &mut g).map_err(|e| gpu_err(&format!("setting {name}"), e))?;
        self.sync()
    }

    pub fn set_const_i32(&self, name: &str, v: i32) -> Result<()> {
        let mut g = self._module.get_global(name, &self.stream).map_err(|e| gpu_err(&format!("constant {name}"), e))?;
        self.stream.memcpy_htod(&v.to_le_bytes(), &mut g).map_err(|e| gpu_err(&format!("setting {name}"), e))?;
        self.sync()
    }

    pub fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| gpu_err("binding the CUDA context", e))
    }

    pub fn alloc(&self, bytes: usize) -> Result<DevBuf> {
        alloc_raw(&self.ctx, bytes)
    }

    /// Allocates and uploads.
    pub fn upload<T: Copy>(&self, data: &[T]) -> Result<DevBuf> {
        let b = self.alloc(std::mem::size_of_val(data))?;
        self.htod(&b, 0, data)?;
        Ok(b)
    }

    /// Copies host data into `dst` at byte offset `off` (synchronous with respect to the host).
    pub fn htod<T: Copy>(&self, dst: &DevBuf, off: usize, data: &[T]) -> Result<()> {
        let n = std::mem::size_of_val(data);
        if off + n > dst.bytes {
            return Err(Error::Gpu(format!("upload of {n} bytes at {off} overruns a {}-byte buffer", dst.bytes)));
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: bounds checked above; the copy is ordered on the engine's stream and completes
        // before returning (pageable source memory), so `data` may be freed afterwards.
        unsafe {
            cudarc::driver::result::memcpy_htod_async(dst.ptr + off as u64, data, self.stream.cu_stream())
                .map_err(|e| gpu_err("host-to-device copy", e))?;
        }
        Ok(())
    }

    /// Copies device bytes at `off` into `out`, after all queued work (synchronizes the stream).
    pub fn dtoh<T: Copy>(&self, src: &DevBuf, off: usize, out: &mut [T]) -> Result<()> {
        let n = std::mem::size_of_val(out);
        if off + n > src.bytes {
            return Err(Error::Gpu(format!("download of {n} bytes at {off} overruns a {}-byte buffer", src.bytes)));
        }
        // SAFETY: bounds checked; the copy is queued after the stream's work and awaited.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(out, src.ptr + off as u64, self.stream.cu_stream())
                .map_err(|e| gpu_err("device-to-host copy", e))?;
        }
        self.sync()
    }

    pub fn memset0(&self, b: &DevBuf) -> Result<()> {
        // SAFETY: the whole allocation is cleared, on the engine's stream.
        unsafe {
            cudarc::driver::result::memset_d8_async(b.ptr, 0, b.bytes, self.stream.cu_stream())
                .map_err(|e| gpu_err("memset", e))
        }
    }

    pub fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| gpu_err("kernel execution failed", e))
    }

    /// cuProfilerStart / cuProfilerStop: the range a profiler started with `--profile-from-start off`
    /// (ncu) records (session 7: per-kernel GPU times of one prefill pass).
    pub fn profiler(&self, on: bool) -> Result<()> {
        self.bind()?;
        // SAFETY: no arguments; the context is current (bind).
        let r = unsafe {
            if on {
                sys::cuProfilerStart()
            } else {
                sys::cuProfilerStop()
            }
        };
        if r != sys::CUresult::CUDA_SUCCESS {
            return Err(Error::Gpu(format!("cuProfiler{}: {r:?}", if on { "Start" } else { "Stop" })));
        }
        Ok(())
    }

    pub fn func(&self, name: &str) -> Result<&CudaFunction> {
        self.funcs.get(name).ok_or_else(|| Error::Gpu(format!("kernel {name} was not compiled for this model")))
    }

    /// Lets `name` use `bytes` of dynamic shared memory (above the 48 KB default).
    pub fn allow_smem(&self, name: &str, bytes: usize) -> Result<()> {
        let f = self.func(name)?;
        // SAFETY: a valid function handle and attribute.
        unsafe {
            cudarc::driver::result::function::set_function_attribute(
                f.cu_function(),
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
            .map_err(|e| gpu_err(&format!("shared memory limit of {name}"), e))
        }
    }

    /// Sets every kernel's preferred shared-memory carveout (percent of the SM's unified L1 / shared
    /// memory, or -1 for the driver's choice per launch): one value for all keeps the SM from switching
    /// configurations between kernels (a switch needs the SM free of blocks, which PDL's early-launched
    /// blocks of the next kernel never are). Session 11, bs1 switch `coN`.
    pub fn set_carveout_all(&self, pct: i32) -> Result<()> {
        for (name, f) in &self.funcs {
            // SAFETY: a valid function handle and attribute; -1 or 0..=100 (the caller checks).
            unsafe {
                cudarc::driver::result::function::set_function_attribute(
                    f.cu_function(),
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
                    pct,
                )
                .map_err(|e| gpu_err(&format!("shared memory carveout of {name}"), e))?;
            }
        }
        Ok(())
    }

    /// A 2-D TMA tensor map over an f16 row-major matrix at device address `addr` (`rows` × `cols`,
    /// rows `cols` · 2 bytes apart) with boxes of `box_cols` × `box_rows` and the 128-byte swizzle
    /// (`box_cols` · 2 <= 128); rows past `rows` read as zeros. Passed by value to a kernel's
    /// `__grid_constant__` parameter (kernels_tcg4.cu `G4Tmap`).
    pub fn tensor_map_f16_sw128(
        &self,
        addr: u64,
        rows: usize,
        cols: usize,
        box_rows: u32,
        box_cols: u32,
    ) -> Result<sys::CUtensorMap> {
        tensor_map_sw128(addr, rows, cols, 2, box_rows, box_cols)
    }

    /// [`Self::tensor_map_f16_sw128`] over a byte matrix (E4M3 codes; `box_cols` <= 128), the
    /// session-28 FP8 GEMM's operands (kernels_sm90.cu `HopTmap`).
    pub fn tensor_map_u8_sw128(
        &self,
        addr: u64,
        rows: usize,
        cols: usize,
        box_rows: u32,
        box_cols: u32,
    ) -> Result<sys::CUtensorMap> {
        tensor_map_sw128(addr, rows, cols, 1, box_rows, box_cols)
    }

    /// A 3-D view of the same f16 row-major matrix for wq's x (session 47): dims (64 k, `rows`, `cols` / 64),
    /// strides (`cols` · 2, 128) bytes, boxes of (64, 64 rows, 2) with the 128-byte swizzle, so one copy lands two
    /// 64 k × 64-row SW128 tiles back to back (8 KB apart) — what two 2-D boxes of [`Self::tensor_map_f16_sw128`]
    /// land; rows past `rows` read as zeros. `cols` must be a multiple of 128.
    pub fn tensor_map_f16_sw128_k2(&self, addr: u64, rows: usize, cols: usize) -> Result<sys::CUtensorMap> {
        if addr % 16 != 0 || rows == 0 || cols == 0 || cols % 128 != 0 {
            return Err(Error::Gpu(format!("3-D tensor map: {rows} × {cols} f16 at {addr:#x}")));
        }
        encode_tiled_sw128(
            addr,
            sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
            &[64, rows as u64, (cols / 64) as u64],
            &[(cols * 2) as u64, 128],
            &[64, 64, 2],
        )
    }

    /// Resident blocks per SM for `name` at `threads` and `smem`.
    pub fn occupancy(&self, name: &str, threads: u32, smem: usize) -> Result<u32> {
        let f = self.func(name)?;
        let mut n: i32 = 0;
        // SAFETY: valid function handle, output pointer to a live int.
        unsafe {
            sys::cuOccupancyMaxActiveBlocksPerMultiprocessor(&mut n, f.cu_function(), threads as i32, smem)
                .result()
                .map_err(|e| gpu_err("occupancy", e))?;
        }
        Ok(n.max(1) as u32)
    }

    /// Launches `name`. `args` are pointers to each kernel parameter's value, in order.
    ///
    /// # Safety
    /// The parameters must match the kernel's signature in kernels.cu, every device pointer among
    /// them must be valid for the accesses the kernel makes with the given grid, and those buffers
    /// must outlive the launch (and any graph that captures it).
    pub unsafe fn launch(
        &self,
        name: &str,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        args: &mut [*mut c_void],
    ) -> Result<()> {
        let f = self.func(name)?;
        if !self.pdl {
            return cudarc::driver::result::launch_kernel(
                f.cu_function(),
                grid,
                (block, 1, 1),
                smem,
                self.stream.cu_stream(),
                args,
            )
            .map_err(|e| gpu_err(&format!("launching {name}"), e));
        }
        let mut attr: [sys::CUlaunchAttribute; 1] = std::mem::zeroed();
        set_pdl(&mut attr[0]);
        self.launch_ex(f, grid, block, smem, &mut attr, args).map_err(|e| gpu_err(&format!("launching {name}"), e))
    }

    /// `cuLaunchKernelEx` of `f` on this stream with the given launch attributes.
    ///
    /// # Safety
    /// As [`Gpu::launch`].
    unsafe fn launch_ex(
        &self,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        attrs: &mut [sys::CUlaunchAttribute],
        args: &mut [*mut c_void],
    ) -> std::result::Result<(), cudarc::driver::DriverError> {
        let cfg = self.launch_config(grid, block, smem, attrs);
        sys::cuLaunchKernelEx(&cfg, f.cu_function(), args.as_mut_ptr(), std::ptr::null_mut()).result()
    }

    /// The launch configuration of `grid` blocks of `block` threads with `smem` bytes of dynamic
    /// shared memory on this stream, pointing at `attrs` (which must outlive its use).
    fn launch_config(
        &self,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        attrs: &mut [sys::CUlaunchAttribute],
    ) -> sys::CUlaunchConfig {
        sys::CUlaunchConfig {
            gridDimX: grid.0,
            gridDimY: grid.1,
            gridDimZ: grid.2,
            blockDimX: block,
            blockDimY: 1,
            blockDimZ: 1,
            sharedMemBytes: smem,
            hStream: self.stream.cu_stream(),
            attrs: attrs.as_mut_ptr(),
            numAttrs: attrs.len() as u32,
        }
    }

    /// Launches `name` in thread-block clusters of (`cluster`, 1, 1) (sm_90+; `grid.0` must be a
    /// multiple of `cluster`), with programmatic dependent launch where [`Gpu::pdl`] is on.
    ///
    /// # Safety
    /// As [`Gpu::launch`].
    pub unsafe fn launch_cluster(
        &self,
        name: &str,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        cluster: u32,
        args: &mut [*mut c_void],
    ) -> Result<()> {
        let f = self.func(name)?;
        let mut attrs: [sys::CUlaunchAttribute; 2] = std::mem::zeroed();
        set_cluster(&mut attrs[0], cluster);
        set_pdl(&mut attrs[1]);
        let n = if self.pdl { 2 } else { 1 };
        self.launch_ex(f, grid, block, smem, &mut attrs[..n], args)
            .map_err(|e| gpu_err(&format!("launching {name} (clusters of {cluster})"), e))
    }

    /// How many clusters of (`cluster`, 1, 1) blocks of `block` threads and `smem` bytes of dynamic
    /// shared memory of `name` can be resident at once (cuOccupancyMaxActiveClusters; sm_90+).
    pub fn max_active_clusters(
        &self,
        name: &str,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        cluster: u32,
    ) -> Result<u32> {
        let f = self.func(name)?;
        let mut n: i32 = 0;
        // SAFETY: a valid function handle; the config and its one attribute live across the call.
        unsafe {
            let mut attrs: [sys::CUlaunchAttribute; 1] = std::mem::zeroed();
            set_cluster(&mut attrs[0], cluster);
            let cfg = self.launch_config(grid, block, smem, &mut attrs);
            sys::cuOccupancyMaxActiveClusters(&mut n, f.cu_function(), &cfg)
                .result()
                .map_err(|e| gpu_err(&format!("cluster occupancy of {name}"), e))?;
        }
        Ok(n.max(0) as u32)
    }

    /// Lets `name` run in clusters of more than 8 blocks (non-portable sizes, up to 16 on the H100/H200).
    pub fn allow_big_clusters(&self, name: &str) -> Result<()> {
        let f = self.func(name)?;
        // SAFETY: a valid function handle and attribute.
        unsafe {
            cudarc::driver::result::function::set_function_attribute(
                f.cu_function(),
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED,
                1,
            )
            .map_err(|e| gpu_err(&format!("cluster size limit of {name}"), e))
        }
    }

    /// `c (rows, n) = alpha · a (rows, k) · w (n, k)ᵀ + beta · c`, row-major, f32 accumulation.
    ///
    /// # Safety
    /// `w`, `a` and `c` must be device buffers holding at least those many elements of their types.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm(
        &self,
        rows: usize,
        n: usize,
        k: usize,
        w: u64,
        wt: GemmType,
        a: u64,
        at: GemmType,
        c: u64,
        beta: f32,
    ) -> Result<()> {
        // SAFETY: the caller's contract (f32 output).
        unsafe { self.gemm_to(rows, n, k, w, wt, a, at, c, GemmType::F32, beta) }
    }

    /// [`Gpu::gemm`] with the output type `ct` (f32 or f16; f32 accumulation either way).
    ///
    /// # Safety
    /// As [`Gpu::gemm`], c holding rows × n elements of `ct`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_to(
        &self,
        rows: usize,
        n: usize,
        k: usize,
        w: u64,
        wt: GemmType,
        a: u64,
        at: GemmType,
        c: u64,
        ct: GemmType,
        beta: f32,
    ) -> Result<()> {
        let alpha = 1.0f32;
        // Column-major view: Cᵀ (n × rows) = W (k × n)ᵀ · Aᵀ (k × rows).
        cudarc::cublas::result::gemm_ex(
            self.blas.handle,
            cublas_sys::cublasOperation_t::CUBLAS_OP_T,
            cublas_sys::cublasOperation_t::CUBLAS_OP_N,
            n as i32,
            rows as i32,
            k as i32,
            &alpha as *const f32 as *const c_void,
            w as *const c_void,
            wt.cuda(),
            k as i32,
            a as *const c_void,
            at.cuda(),
            k as i32,
            &beta as *const f32 as *const c_void,
            c as *mut c_void,
            ct.cuda(),
            n as i32,
            cublas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            cublas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .map_err(|e| gpu_err(&format!("cuBLAS GEMM {rows}×{n}×{k}"), e))
    }

    /// Batched `C_i = alpha · op(A_i) · op(B_i)` (column-major, cuBLAS conventions) with device
    /// arrays of pointers; A and B share `ab`, C has `ct`; f32 accumulation.
    ///
    /// # Safety
    /// The pointer arrays must be device memory holding `batch` valid device pointers each, every
    /// matrix sized for (m, n, k) and its leading dimension.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_batched(
        &self,
        ta: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: u64,
        lda: usize,
        b: u64,
        ldb: usize,
        ab: GemmType,
        c: u64,
        ldc: usize,
        ct: GemmType,
        batch: usize,
    ) -> Result<()> {
        let beta = 0.0f32;
        let op = |t: bool| {
            if t {
                cublas_sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                cublas_sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        cublas_sys::cublasGemmBatchedEx(
            self.blas.handle,
            op(ta),
            cublas_sys::cublasOperation_t::CUBLAS_OP_N,
            m as i32,
            n as i32,
            k as i32,
            &alpha as *const f32 as *const c_void,
            a as *const *const c_void,
            ab.cuda(),
            lda as i32,
            b as *const *const c_void,
            ab.cuda(),
            ldb as i32,
            &beta as *const f32 as *const c_void,
            c as *const *mut c_void,
            ct.cuda(),
            ldc as i32,
            batch as i32,
            cublas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            cublas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .result()
        .map_err(|e| gpu_err(&format!("cuBLAS batched GEMM {m}×{n}×{k} ×{batch}"), e))
    }

    pub fn begin_capture(&self) -> Result<()> {
        self.stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| gpu_err("begin graph capture", e))
    }

    pub fn end_capture(&self) -> Result<CudaGraph> {
        self.stream
            .end_capture(sys::CUgraphInstantiate_flags(0))
            .map_err(|e| gpu_err("end graph capture", e))?
            .ok_or_else(|| Error::Gpu("graph capture produced no graph".into()))
    }

    pub fn launch_graph(&self, g: &CudaGraph) -> Result<()> {
        g.launch().map_err(|e| gpu_err("graph launch", e))
    }

    /// An event pair for timing on the engine's stream.
    pub fn timer(&self) -> Result<GpuTimer> {
        let mk = || {
            self.ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT)).map_err(|e| gpu_err("creating an event", e))
        };
        Ok(GpuTimer { a: mk()?, b: mk()?, stream: self.stream.clone() })
    }

    pub fn mem_info(&self) -> (usize, usize) {
        self.ctx.mem_get_info().unwrap_or((0, 0))
    }

    /// Whether this stream is recording a CUDA graph (no synchronization or timing allowed then).
    pub fn capturing(&self) -> bool {
        let mut st = sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE;
        // SAFETY: a live stream and an output enum on the stack.
        let r = unsafe { sys::cuStreamIsCapturing(self.stream.cu_stream(), &mut st) };
        r != sys::CUresult::CUDA_SUCCESS || st != sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE
    }

    /// Whether cuBLASLt is there (libcublasLt.so loaded).
    pub fn has_lt(&self) -> bool {
        self.lt.is_some()
    }

    /// The tuning report of the cuBLASLt GEMMs so far: one line per shape.
    pub fn lt_report(&self) -> Vec<String> {
        self.lt.as_ref().map(|l| l.report.borrow().clone()).unwrap_or_default()
    }

    /// Tuned time (µs) of a cuBLASLt shape already planned, if it was timed.
    pub fn lt_tuned_us(&self, s: &LtShape) -> Option<f64> {
        self.lt.as_ref().and_then(|l| l.plans.borrow().get(s).and_then(|p| p.us))
    }

    /// `c (rows, n) = a (rows, k) · w (n, k)ᵀ (· scales) + beta · c` (row-major) through cuBLASLt.
    /// The first call of each shape picks the algorithm: the heuristic's candidates (and split-K
    /// variants of the first ones) are timed, L2 flushed before each run, writing into
    /// `p.scratch`, unless the stream is being captured or the tuning budget is spent (then the
    /// heuristic's first choice).
    ///
    /// # Safety
    /// `p.w` must hold n × k elements of `s.w`, `p.a` rows × k of `s.a`, `p.c` and `p.scratch`
    /// rows × n of `s.out`; scale pointers as their modes say (OuterVec: n f32 for w, rows f32
    /// for a; Scalar: one f32), all device memory that outlives the launch.
    pub unsafe fn gemm_lt(&self, s: &LtShape, p: &LtPtrs) -> Result<()> {
        let lt = self.lt.as_ref().ok_or_else(|| Error::Gpu("cuBLASLt (libcublasLt.so) is not loaded".into()))?;
        let mut plans = lt.plans.borrow_mut();
        if !plans.contains_key(s) {
            let plan = lt.make_plan(self, s, p)?;
            plans.insert(*s, plan);
        }
        let plan = &plans[s];
        lt.set_scales(plan, s, p)?;
        lt.run(plan, &plan.algo, s, p, p.c, self.stream.cu_stream())
    }
}

// ---------------------------------------------------------------------------------------------
// cuBLASLt: the GEMM path's matrix products, the algorithm chosen per shape by timing the
// heuristic's candidates once (session 4; TRTFORGE_GEMM=cublas keeps cublasGemmEx).

/// Element type of a cuBLASLt GEMM operand or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LtType {
    F16,
    F32,
    /// FP8 E4M3 (sm_89+).
    E4M3,
}

impl LtType {
    fn cuda(self) -> lt::cudaDataType {
        match self {
            LtType::F16 => lt::cudaDataType::CUDA_R_16F,
            LtType::F32 => lt::cudaDataType::CUDA_R_32F,
            LtType::E4M3 => lt::cudaDataType::CUDA_R_8F_E4M3,
        }
    }
    pub fn size(self) -> usize {
        match self {
            LtType::F16 => 2,
            LtType::F32 => 4,
            LtType::E4M3 => 1,
        }
    }
}

/// Scale factors of an FP8 operand: none, one f32 for the whole tensor, or one f32 per row of its
/// outer dimension (weights: per output channel, n; activations: per token, rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LtScale {
    None,
    Scalar,
    OuterVec,
}

/// One GEMM `c (rows, n) = a (rows, k) · w (n, k)ᵀ + beta · c` (row-major, f32 accumulation) as
/// cuBLASLt plans it; the key of the per-shape algorithm cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LtShape {
    pub rows: usize,
    pub n: usize,
    pub k: usize,
    pub w: LtType,
    pub a: LtType,
    pub out: LtType,
    /// beta = 1 (accumulate into c, e.g. the residual stream) instead of 0.
    pub accumulate: bool,
    pub w_scale: LtScale,
    pub a_scale: LtScale,
}

/// Device addresses of one cuBLASLt GEMM (see [`Gpu::gemm_lt`]).
#[derive(Debug, Clone, Copy)]
pub struct LtPtrs {
    pub w: u64,
    pub a: u64,
    pub c: u64,
    pub w_scale: u64,
    pub a_scale: u64,
    /// rows × n outputs that tuning may overwrite: `c` itself where beta = 0, else a free buffer.
    pub scratch: u64,
}

struct LtPlan {
    desc: lt::cublasLtMatmulDesc_t,
    la: lt::cublasLtMatrixLayout_t,
    lb: lt::cublasLtMatrixLayout_t,
    lc: lt::cublasLtMatrixLayout_t,
    algo: lt::cublasLtMatmulAlgo_t,
    /// Timed µs of the chosen algorithm (None: the heuristic's first choice, untimed).
    us: Option<f64>,
}

impl Drop for LtPlan {
    fn drop(&mut self) {
        // SAFETY: created by make_plan and destroyed once.
        unsafe {
            let _ = ltr::destroy_matrix_layout(self.la);
            let _ = ltr::destroy_matrix_layout(self.lb);
            let _ = ltr::destroy_matrix_layout(self.lc);
            let _ = ltr::destroy_matmul_desc(self.desc);
        }
    }
}

/// The cuBLASLt handle, its workspace, and the algorithm chosen for each shape met so far.
pub struct Lt {
    handle: lt::cublasLtHandle_t,
    ws: DevBuf,
    flush: RefCell<Option<DevBuf>>,
    plans: RefCell<HashMap<LtShape, LtPlan>>,
    /// Wall time left for timing candidates (ms, TRTFORGE_GEMM_TUNE_MS, default 4000); shapes met
    /// later take the heuristic's first choice.
    tune_left_ms: Cell<f64>,
    /// TRTFORGE_GEMM_LOG=1: print each shape's tuning line.
    log: bool,
    report: RefCell<Vec<String>>,
}

impl Drop for Lt {
    fn drop(&mut self) {
        self.plans.borrow_mut().clear();
        // SAFETY: the handle was created by Lt::new and is destroyed once, after its plans.
        let _ = unsafe { ltr::destroy_handle(self.handle) };
    }
}

const LT_WS_BYTES: usize = 32 << 20;
const LT_ITERS: usize = 5;

fn lt_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Gpu(format!("cuBLASLt {what}: {e:?}"))
}

impl Lt {
    fn new(ctx: &Arc<CudaContext>) -> Result<Lt> {
        let handle = ltr::create_handle().map_err(|e| lt_err("create", e))?;
        let ws = alloc_raw(ctx, LT_WS_BYTES)?;
        let ms = std::env::var("TRTFORGE_GEMM_TUNE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(4000.0);
        Ok(Lt {
            handle,
            ws,
            flush: RefCell::new(None),
            plans: RefCell::new(HashMap::new()),
            tune_left_ms: Cell::new(ms),
            log: std::env::var("TRTFORGE_GEMM_LOG").as_deref() == Ok("1"),
            report: RefCell::new(vec![]),
        })
    }

    /// Descriptor and layouts of `s` in cuBLASLt's column-major view: Cᵀ (n × rows) =
    /// op(A) · B with A = w stored (k × n), transposed, and B = a stored (k × rows).
    fn describe(&self, s: &LtShape) -> Result<LtPlan> {
        let desc = ltr::create_matmul_desc(lt::cublasComputeType_t::CUBLAS_COMPUTE_32F, lt::cudaDataType::CUDA_R_32F)
            .map_err(|e| lt_err("matmul descriptor", e))?;
        let mk = |t: LtType, r: usize, c: usize| {
            ltr::create_matrix_layout(t.cuda(), r as u64, c as u64, r as i64).map_err(|e| lt_err("layout", e))
        };
        // Own the descriptor at once so that an error below frees it.
        let mut plan = LtPlan {
            desc,
            la: std::ptr::null_mut(),
            lb: std::ptr::null_mut(),
            lc: std::ptr::null_mut(),
            algo: lt::cublasLtMatmulAlgo_t { data: [0; 8] },
            us: None,
        };
        plan.la = mk(s.w, s.k, s.n)?;
        plan.lb = mk(s.a, s.k, s.rows)?;
        plan.lc = mk(s.out, s.n, s.rows)?;
        let set = |attr: lt::cublasLtMatmulDescAttributes_t, v: i32| {
            // SAFETY: a live descriptor and a 4-byte attribute value (cublasOperation_t / scale mode).
            unsafe {
                ltr::set_matmul_desc_attribute(plan.desc, attr, &v as *const i32 as *const c_void, 4)
                    .map_err(|e| lt_err(&format!("{attr:?}"), e))
            }
        };
        set(lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA, 1)?; // CUBLAS_OP_T
        set(lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSB, 0)?; // CUBLAS_OP_N
        let mode = |m: LtScale| match m {
            LtScale::OuterVec => lt::cublasLtMatmulMatrixScale_t::CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F as i32,
            _ => lt::cublasLtMatmulMatrixScale_t::CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F as i32,
        };
        if s.w_scale != LtScale::None {
            set(lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_A_SCALE_MODE, mode(s.w_scale))?;
        }
        if s.a_scale != LtScale::None {
            set(lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_B_SCALE_MODE, mode(s.a_scale))?;
        }
        Ok(plan)
    }

    /// The heuristic's candidates (up to 16) plus split-K variants of its first four; also how many
    /// of them came from the heuristic (they come first).
    unsafe fn candidates(&self, p: &LtPlan) -> Result<(Vec<lt::cublasLtMatmulAlgo_t>, usize)> {
        let pref = ltr::create_matmul_pref().map_err(|e| lt_err("preference", e))?;
        let wsb = LT_WS_BYTES as u64;
        let _ = ltr::set_matmul_pref_attribute(
            pref,
            lt::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            &wsb as *const u64 as *const c_void,
            8,
        );
        let mut res: [lt::cublasLtMatmulHeuristicResult_t; 16] = std::mem::zeroed();
        let mut cnt = 0i32;
        let st = lt::cublasLtMatmulAlgoGetHeuristic(
            self.handle,
            p.desc,
            p.la,
            p.lb,
            p.lc,
            p.lc,
            pref,
            16,
            res.as_mut_ptr(),
            &mut cnt,
        );
        let _ = ltr::destroy_matmul_pref(pref);
        st.result().map_err(|e| lt_err("heuristic", e))?;
        let ok = lt::cublasStatus_t::CUBLAS_STATUS_SUCCESS;
        let mut v: Vec<lt::cublasLtMatmulAlgo_t> = res[..cnt.max(0) as usize]
            .iter()
            .filter(|r| r.state == ok && r.workspaceSize <= LT_WS_BYTES)
            .map(|r| r.algo)
            .collect();
        let heur = v.len();
        if std::env::var("TRTFORGE_GEMM_SPLITK").as_deref() == Ok("0") {
            return Ok((v, heur));
        }
        for i in 0..heur.min(4) {
            let base = v[i];
            let mut sup = 0i32;
            let mut wr = 0usize;
            let _ = lt::cublasLtMatmulAlgoCapGetAttribute(
                &base,
                lt::cublasLtMatmulAlgoCapAttributes_t::CUBLASLT_ALGO_CAP_SPLITK_SUPPORT,
                &mut sup as *mut i32 as *mut c_void,
                4,
                &mut wr,
            );
            let mut cur = 1u32;
            let _ = lt::cublasLtMatmulAlgoConfigGetAttribute(
                &base,
                lt::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                &mut cur as *mut u32 as *mut c_void,
                4,
                &mut wr,
            );
            if sup == 0 || cur > 1 {
                continue;
            }
            for split in [2u32, 3, 4, 6, 8] {
                for scheme in [
                    lt::cublasLtReductionScheme_t::CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE as u32,
                    lt::cublasLtReductionScheme_t::CUBLASLT_REDUCTION_SCHEME_INPLACE as u32,
                ] {
                    let mut a = base;
                    let c1 = lt::cublasLtMatmulAlgoConfigSetAttribute(
                        &mut a,
                        lt::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                        &split as *const u32 as *const c_void,
                        4,
                    );
                    let c2 = lt::cublasLtMatmulAlgoConfigSetAttribute(
                        &mut a,
                        lt::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                        &scheme as *const u32 as *const c_void,
                        4,
                    );
                    let mut chk: lt::cublasLtMatmulHeuristicResult_t = std::mem::zeroed();
                    let c3 = lt::cublasLtMatmulAlgoCheck(self.handle, p.desc, p.la, p.lb, p.lc, p.lc, &a, &mut chk);
                    if c1 == ok && c2 == ok && c3 == ok && chk.workspaceSize <= LT_WS_BYTES && !v.contains(&a) {
                        v.push(a);
                        break;
                    }
                }
            }
        }
        Ok((v, heur))
    }

    /// (tile id, split-K count) of an algorithm, for the report.
    fn algo_config(a: &lt::cublasLtMatmulAlgo_t) -> (u32, u32) {
        let mut wr = 0usize;
        let (mut split, mut tile) = (1u32, 0u32);
        // SAFETY: reads two 4-byte configuration attributes of a valid algorithm into locals.
        unsafe {
            let _ = lt::cublasLtMatmulAlgoConfigGetAttribute(
                a,
                lt::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                &mut split as *mut u32 as *mut c_void,
                4,
                &mut wr,
            );
            let _ = lt::cublasLtMatmulAlgoConfigGetAttribute(
                a,
                lt::cublasLtMatmulAlgoConfigAttributes_t::CUBLASLT_ALGO_CONFIG_TILE_ID,
                &mut tile as *mut u32 as *mut c_void,
                4,
                &mut wr,
            );
        }
        (tile, split)
    }

    fn set_scales(&self, p: &LtPlan, s: &LtShape, ptrs: &LtPtrs) -> Result<()> {
        for (mode, ptr, attr) in [
            (s.w_scale, ptrs.w_scale, lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_A_SCALE_POINTER),
            (s.a_scale, ptrs.a_scale, lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_B_SCALE_POINTER),
        ] {
            if mode != LtScale::None {
                // SAFETY: a live descriptor and an 8-byte device pointer value.
                unsafe {
                    ltr::set_matmul_desc_attribute(p.desc, attr, &ptr as *const u64 as *const c_void, 8)
                        .map_err(|e| lt_err("scale pointer", e))?;
                }
            }
        }
        Ok(())
    }

    unsafe fn run(
        &self,
        p: &LtPlan,
        algo: &lt::cublasLtMatmulAlgo_t,
        s: &LtShape,
        ptrs: &LtPtrs,
        c: u64,
        stream: sys::CUstream,
    ) -> Result<()> {
        let alpha = 1.0f32;
        let beta = if s.accumulate { 1.0f32 } else { 0.0 };
        ltr::matmul(
            self.handle,
            p.desc,
            &alpha as *const f32 as *const c_void,
            &beta as *const f32 as *const c_void,
            ptrs.w as *const c_void,
            p.la,
            ptrs.a as *const c_void,
            p.lb,
            c as *const c_void,
            p.lc,
            c as *mut c_void,
            p.lc,
            algo,
            self.ws.ptr() as *mut c_void,
            LT_WS_BYTES,
            stream as lt::cudaStream_t,
        )
        .map_err(|e| lt_err(&format!("GEMM {}×{}×{}", s.rows, s.n, s.k), e))
    }

    /// Median µs of `f` over LT_ITERS runs, each after evicting L2 (weights come from DRAM in the
    /// real pass: every layer has its own).
    unsafe fn time(&self, gpu: &Gpu, f: &dyn Fn() -> Result<()>) -> Result<f64> {
        if self.flush.borrow().is_none() {
            let l2 = gpu
                .ctx
                .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
                .map_err(|e| gpu_err("L2 size", e))? as usize;
            *self.flush.borrow_mut() = Some(gpu.alloc((2 * l2).max(16 << 20))?);
        }
        let fl = self.flush.borrow();
        let fl = fl.as_ref().ok_or_else(|| Error::Gpu("no flush buffer".into()))?;
        f()?; // warm-up
        let t = gpu.timer()?;
        let mut us = Vec::with_capacity(LT_ITERS);
        for _ in 0..LT_ITERS {
            cudarc::driver::result::memset_d8_async(fl.ptr(), 1, fl.bytes(), gpu.stream.cu_stream())
                .map_err(|e| gpu_err("L2 flush", e))?;
            t.start()?;
            f()?;
            us.push(t.stop_ms()? * 1e3);
        }
        us.sort_by(|a, b| a.total_cmp(b));
        Ok(us[LT_ITERS / 2])
    }

    unsafe fn make_plan(&self, gpu: &Gpu, s: &LtShape, ptrs: &LtPtrs) -> Result<LtPlan> {
        let mut plan = self.describe(s)?;
        // Vector scale modes need their pointers in the descriptor before the heuristic looks at it.
        self.set_scales(&plan, s, ptrs)?;
        let (cands, heur) = self.candidates(&plan)?;
        if cands.is_empty() {
            return Err(Error::Gpu(format!("cuBLASLt has no algorithm for {s:?}")));
        }
        plan.algo = cands[0];
        let stream = gpu.stream.cu_stream();
        if cands.len() == 1 || self.tune_left_ms.get() <= 0.0 || gpu.capturing() {
            return Ok(plan);
        }
        let t0 = std::time::Instant::now();
        gpu.sync()?;
        let mut times = Vec::with_capacity(cands.len());
        for a in &cands {
            let r = self.time(gpu, &|| self.run(&plan, a, s, ptrs, ptrs.scratch, stream));
            times.push(r.unwrap_or(f64::INFINITY));
        }
        let best = (0..cands.len()).min_by(|&i, &j| times[i].total_cmp(&times[j])).unwrap_or(0);
        if times[best].is_finite() {
            plan.algo = cands[best];
            plan.us = Some(times[best]);
        }
        // cublasGemmEx on the same shape, for the report (the path TRTFORGE_GEMM=cublas runs).
        let legacy = if (s.w, s.a, s.out) == (LtType::F16, LtType::F16, LtType::F32) {
            let beta = if s.accumulate { 1.0 } else { 0.0 };
            self.time(gpu, &|| {
                gpu.gemm(s.rows, s.n, s.k, ptrs.w, GemmType::F16, ptrs.a, GemmType::F16, ptrs.scratch, beta)
            })
            .ok()
        } else {
            None
        };
        gpu.sync()?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        self.tune_left_ms.set(self.tune_left_ms.get() - ms);
        let (tile, split) = Self::algo_config(&plan.algo);
        let all: Vec<String> = cands
            .iter()
            .zip(&times)
            .map(|(a, t)| {
                let (ti, sp) = Self::algo_config(a);
                format!("{ti}/{sp}:{t:.1}")
            })
            .collect();
        let line = format!(
            "gemm-lt {}x{}x{} {:?}*{:?}->{:?}{}: {} candidates ({heur} from the heuristic, the rest split-K variants), best #{best} {:.1} us (tile id {tile}, split-k {split}); heuristic #0 {:.1} us; cublasGemmEx {}; tuned in {ms:.0} ms; all (tile/split:us) {}",
            s.rows,
            s.n,
            s.k,
            s.w,
            s.a,
            s.out,
            if s.accumulate { " +=" } else { "" },
            cands.len(),
            times[best],
            times[0],
            legacy.map_or("-".into(), |u| format!("{u:.1} us")),
            all.join(" "),
        );
        if self.log {
            crate::util::errln!("{line}");
        }
        self.report.borrow_mut().push(line);
        Ok(plan)
    }
}

/// Session 8 (b64_8), opt-in `TRTFORGE_ARENA_MB=N`: one N MiB device allocation made at the
/// first engine's first allocation and kept (with a retain on the primary context) for the whole
/// process; every later allocation is carved from it (2 MiB-aligned from 1 MiB up, 256 B below)
/// and the carve point goes back to the start when the last carved buffer is dropped. So the
/// second, third, ... model of a bench process get the same device memory (virtual and physical)
/// as the first. Allocations that do not fit, or from another context, go to cuMemAlloc.
/// Measured 2026-12-01 (docs/cuda.md, session 8, b64_8): it does not remove the slow bs64 decode
/// of a process's second load, so it stays opt-in (a tool for the next placement test).
struct Arena {
    ctx: Arc<CudaContext>,
    base: u64,
    size: usize,
    top: usize,
    live: usize,
}

static ARENA: std::sync::Mutex<Option<Arena>> = std::sync::Mutex::new(None);

fn arena_mb() -> usize {
    static MB: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MB.get_or_init(|| std::env::var("TRTFORGE_ARENA_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn arena_release() {
    let mut g = ARENA.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = g.as_mut() {
        a.live = a.live.saturating_sub(1);
        if a.live == 0 {
            a.top = 0;
        }
    }
}

/// A carve of `n` bytes from the arena, creating it on first use; None: use cuMemAlloc.
fn arena_alloc(ctx: &Arc<CudaContext>, n: usize) -> Option<u64> {
    let mb = arena_mb();
    if mb == 0 {
        return None;
    }
    let mut g = ARENA.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        let size = mb << 20;
        // SAFETY: plain allocation, owned by the arena for the rest of the process.
        let base = unsafe { cudarc::driver::result::malloc_sync(size) }.ok()?;
        if std::env::var_os("TRTFORGE_ALLOC_LOG").is_some() {
            crate::util::errln!("arena {size} B at {base:#x}");
        }
        *g = Some(Arena { ctx: ctx.clone(), base, size, top: 0, live: 0 });
    }
    let a = g.as_mut()?;
    if a.ctx.cu_ctx() != ctx.cu_ctx() {
        return None;
    }
    let align = if n >= 1 << 20 { 2 << 20 } else { 256 };
    let at = a.top.div_ceil(align) * align;
    if at + n > a.size {
        return None;
    }
    a.top = at + n;
    a.live += 1;
    Some(a.base + at as u64)
}

fn alloc_raw(ctx: &Arc<CudaContext>, bytes: usize) -> Result<DevBuf> {
    ctx.bind_to_thread().map_err(|e| gpu_err("binding the CUDA context", e))?;
    let n = bytes.max(16);
    if let Some(ptr) = arena_alloc(ctx, n) {
        if n >= 1 << 20 && std::env::var_os("TRTFORGE_ALLOC_LOG").is_some() {
            crate::util::errln!("alloc {n} B at {ptr:#x} (arena)");
        }
        return Ok(DevBuf { ptr, bytes: n, ctx: ctx.clone(), arena: true });
    }
    // SAFETY: plain allocation; the pointer is owned by the returned DevBuf.
    let ptr = unsafe { cudarc::driver::result::malloc_sync(n) }
        .map_err(|e| gpu_err(&format!("allocating {:.1} MB on the GPU", n as f64 / 1e6), e))?;
    // Opt-in diagnostic (session 8, b64_8): the bs64 step is bimodal by load placement; log where
    // every allocation of 1 MiB or more lands so a fast and a slow load can be compared.
    if n >= 1 << 20 && std::env::var_os("TRTFORGE_ALLOC_LOG").is_some() {
        crate::util::errln!("alloc {n} B at {ptr:#x} (2 MiB offset {:#x})", ptr % (2 << 20));
    }
    Ok(DevBuf { ptr, bytes: n, ctx: ctx.clone(), arena: false })
}

/// Device-side elapsed time between `start()` and `stop()`.
pub struct GpuTimer {
    a: cudarc::driver::CudaEvent,
    b: cudarc::driver::CudaEvent,
    stream: Arc<CudaStream>,
}

impl GpuTimer {
    pub fn start(&self) -> Result<()> {
        self.a.record(&self.stream).map_err(|e| gpu_err("event record", e))
    }
    /// Records the end and waits for it; returns milliseconds.
    pub fn stop_ms(&self) -> Result<f64> {
        self.b.record(&self.stream).map_err(|e| gpu_err("event record", e))?;
        self.b.synchronize().map_err(|e| gpu_err("event sync", e))?;
        Ok(self.a.elapsed_ms(&self.b).map_err(|e| gpu_err("event elapsed", e))? as f64)
    }
    /// Records the end without waiting (the prefill kernel profile reads all its timers after one
    /// synchronization: `elapsed_ms`, `gap_ms`).
    pub fn stop(&self) -> Result<()> {
        self.b.record(&self.stream).map_err(|e| gpu_err("event record", e))
    }
    /// Milliseconds from start to end of a completed timer.
    pub fn elapsed_ms(&self) -> Result<f64> {
        Ok(self.a.elapsed_ms(&self.b).map_err(|e| gpu_err("event elapsed", e))? as f64)
    }
    /// Milliseconds from this timer's end to `next`'s start (both completed).
    pub fn gap_ms(&self, next: &GpuTimer) -> Result<f64> {
        Ok(self.b.elapsed_ms(&next.a).map_err(|e| gpu_err("event elapsed", e))? as f64)
    }
}

/// Moves a CUDA engine to another thread (the serve engine thread). The engine's driver objects
/// (context, stream, cuBLAS handle, captured graphs) belong to its context, not to a thread; what
/// CUDA requires is that one thread at a time uses them, with the context bound — which owning the
/// value guarantees, and every engine entry point binds the context first (`Gpu::bind`).
pub struct Owned<T>(pub T);

// SAFETY: see the type's doc: exclusive ownership means one user thread at a time, and the
// engine binds its context to the calling thread before any CUDA call.
unsafe impl<T> Send for Owned<T> {}

impl<T> std::ops::Deref for Owned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Owned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

// ---- Pinned host staging (serve engine, helper S): per-step copies that do not block the host.

/// Page-locked host memory of `i32`s with the event of the last copy queued on it. Uploads from it
/// need no staging copy; downloads into it return at once and [`Pinned::host`] waits for them, so
/// the serve engine can queue the next step before it reads the tokens of the one in flight.
pub struct Pinned {
    ptr: *mut i32,
    len: usize,
    ctx: Arc<CudaContext>,
    /// Recorded after the last copy to or from this buffer (None before the first).
    done: Option<cudarc::driver::CudaEvent>,
}

// SAFETY: the pointer is page-locked host memory owned by this value alone (no aliasing); moving
// it to another thread moves that ownership, and the event belongs to the context, not a thread.
unsafe impl Send for Pinned {}

impl Gpu {
    /// `len` pinned `i32`s, zeroed.
    pub fn pinned(&self, len: usize) -> Result<Pinned> {
        self.bind()?;
        let n = len.max(1);
        // SAFETY: plain page-locked allocation of n i32s, owned (and freed once) by the Pinned.
        let raw = unsafe { cudarc::driver::result::malloc_host(n * 4, 0) }
            .map_err(|e| gpu_err("allocating pinned host memory", e))?;
        let ptr = raw as *mut i32;
        // SAFETY: ptr holds n i32s, just allocated, not yet shared.
        unsafe { std::ptr::write_bytes(ptr, 0, n) };
        Ok(Pinned { ptr, len: n, ctx: self.ctx.clone(), done: None })
    }
}

impl Pinned {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Waits until the last copy queued on this buffer has finished.
    pub fn wait(&self) -> Result<()> {
        match &self.done {
            Some(e) => e.synchronize().map_err(|e| gpu_err("waiting for a pinned copy", e)),
            None => Ok(()),
        }
    }

    /// The host view, once the last copy is done (so a download's data is there, and an upload
    /// no longer reads it).
    pub fn host(&mut self) -> Result<&mut [i32]> {
        self.wait()?;
        // SAFETY: ptr holds len i32s for the life of self; no copy is in flight (waited above)
        // and the &mut self borrow excludes queuing one while the slice lives.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }

    fn record(&mut self, gpu: &Gpu) -> Result<()> {
        let e = match self.done.take() {
            Some(e) => e,
            None => self
                .ctx
                .new_event(Some(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING))
                .map_err(|e| gpu_err("creating an event", e))?,
        };
        e.record(&gpu.stream).map_err(|e| gpu_err("event record", e))?;
        self.done = Some(e);
        Ok(())
    }

    /// Queues host `[from, from + n)` → `dst` at byte offset `off`, on the engine's stream.
    pub fn upload(&mut self, gpu: &Gpu, from: usize, n: usize, dst: &DevBuf, off: usize) -> Result<()> {
        if from + n > self.len || off + n * 4 > dst.bytes {
            return Err(Error::Gpu(format!("pinned upload of {n} i32 at {from} / byte {off} out of range")));
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: both ranges checked; the host range stays allocated and is not written while
        // the copy is in flight (every host access goes through `host()`, which waits for it).
        unsafe {
            let src = std::slice::from_raw_parts(self.ptr.add(from), n);
            cudarc::driver::result::memcpy_htod_async(dst.ptr + off as u64, src, gpu.stream.cu_stream())
                .map_err(|e| gpu_err("pinned host-to-device copy", e))?;
        }
        self.record(gpu)
    }

    /// Queues `src` at byte offset `off` → host `[0, n)`, on the engine's stream, without waiting.
    pub fn download(&mut self, gpu: &Gpu, src: &DevBuf, off: usize, n: usize) -> Result<()> {
        if n > self.len || off + n * 4 > src.bytes {
            return Err(Error::Gpu(format!("pinned download of {n} i32 at byte {off} out of range")));
        }
        if n == 0 {
            return Ok(());
        }
        self.wait()?; // an upload from the same host range must not be overwritten under it
                      // SAFETY: both ranges checked; the host range stays allocated and is read only through
                      // `host()`, which waits for this copy.
        unsafe {
            let dst = std::slice::from_raw_parts_mut(self.ptr, n);
            cudarc::driver::result::memcpy_dtoh_async(dst, src.ptr + off as u64, gpu.stream.cu_stream())
                .map_err(|e| gpu_err("device-to-pinned copy", e))?;
        }
        self.record(gpu)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        let _ = self.wait();
        // SAFETY: ptr came from cuMemHostAlloc and is freed once, after its last copy finished.
        let _ = unsafe { cudarc::driver::result::free_host(self.ptr as *mut c_void) };
    }
}

/// Programmatic dependent launch: every kernel in kernels.cu waits (griddepcontrol.wait) before
/// touching data of earlier kernels, so it may be launched to overlap the previous kernel's tail.
fn set_pdl(a: &mut sys::CUlaunchAttribute) {
    a.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    a.value.programmaticStreamSerializationAllowed = 1;
}

/// Makes `a` the thread-block cluster attribute, clusters of (`cluster`, 1, 1).
fn set_cluster(a: &mut sys::CUlaunchAttribute, cluster: u32) {
    a.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    a.value.clusterDim.x = cluster;
    a.value.clusterDim.y = 1;
    a.value.clusterDim.z = 1;
}

/// A 2-D TMA tensor map over a row-major matrix of `elem` (2: f16, 1: bytes) at `addr`, boxes of
/// `box_cols` × `box_rows` with the 128-byte swizzle; rows past `rows` read as zeros.
fn tensor_map_sw128(
    addr: u64,
    rows: usize,
    cols: usize,
    elem: usize,
    box_rows: u32,
    box_cols: u32,
) -> Result<sys::CUtensorMap> {
    let bad = addr % 16 != 0
        || rows == 0
        || cols == 0
        || (cols * elem) % 16 != 0
        || box_cols as usize * elem > 128
        || box_cols == 0
        || !(1..=256).contains(&box_rows);
    if bad {
        return Err(Error::Gpu(format!(
            "tensor map: {rows} × {cols} of {elem}-byte elements at {addr:#x}, box {box_rows} × {box_cols}"
        )));
    }
    let dtype = if elem == 2 {
        sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16
    } else {
        sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT8
    };
    encode_tiled_sw128(addr, dtype, &[cols as u64, rows as u64], &[(cols * elem) as u64], &[box_cols, box_rows])
}

/// `cuTensorMapEncodeTiled` of a rank-`dims.len()` (2 or 3) map with the 128-byte swizzle, unit element strides, no
/// interleave, 128-byte L2 promotion and zero fill; `strides` are the byte strides of dims 1.. (the callers check
/// alignment and box limits; the driver refuses what it cannot encode).
fn encode_tiled_sw128(
    addr: u64,
    dtype: sys::CUtensorMapDataType,
    dims: &[u64],
    strides: &[u64],
    boxd: &[u32],
) -> Result<sys::CUtensorMap> {
    let rank = dims.len();
    if !(2..=3).contains(&rank) || strides.len() != rank - 1 || boxd.len() != rank {
        return Err(Error::Gpu(format!(
            "tensor map: rank {rank} with {} strides, {} box dims",
            strides.len(),
            boxd.len()
        )));
    }
    let es = [1u32; 3];
    let mut tm = std::mem::MaybeUninit::<sys::CUtensorMap>::zeroed();
    // SAFETY: cuTensorMapEncodeTiled only writes the 128-byte map and reads `rank` dims, rank − 1 strides, `rank`
    // box dims and `rank` element strides (all checked above to have those lengths; `es` holds 3 >= rank).
    unsafe {
        sys::cuTensorMapEncodeTiled(
            tm.as_mut_ptr(),
            dtype,
            rank as u32,
            addr as *mut c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxd.as_ptr(),
            es.as_ptr(),
            sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
            sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
        .result()
        .map_err(|e| gpu_err("cuTensorMapEncodeTiled", e))?;
        Ok(tm.assume_init())
    }
}

/// The module a GPU of compute capability `cc` loads for `spec`: (source, NVRTC arch, with the
/// session-7 wgmma GEMM `tcg4_*`, with the session-28 FP8 GEMM `f8g_*`, with the one-row decode
/// megakernel `mk_step`, with the session-37 quantized decode GEMM `wq_*`). On cc 9.0 any of them makes it
/// an sm_90a module (the same kernels plus theirs).
pub fn module_source(spec: &KernelSpec, cc: (i32, i32)) -> (String, String, bool, bool, bool, bool) {
    let wgmma = cc == (9, 0) && tcg4_requested() && !spec.tc_roles().is_empty();
    let f8g = cc == (9, 0) && spec.f8g();
    let mk = cc == (9, 0) && spec.mk_wanted();
    let wq = cc == (9, 0) && spec.wq();
    if wgmma || f8g || mk || wq {
        let src = if wgmma || f8g || wq { spec.source_sm90a(wgmma, f8g) } else { spec.source() };
        (if mk { spec.append_mk(src) } else { src }, "sm_90a".to_string(), wgmma, f8g, mk, wq)
    } else {
        (spec.source(), arch_name(cc).to_string(), false, false, false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernels::{KernelSpec, Role, WeightFormat, GEMV_MTS};
    use crate::model::LlamaConfig;

    /// The TinyLlama shape's kernel spec with every linear in `fmt` (static f16 cache, f16 activations).
    fn tinyllama_spec(fmt: WeightFormat) -> KernelSpec {
        let spec = KernelSpec {
            config: LlamaConfig::preset("tinyllama-1.1b").unwrap(),
            max_seq: 2048,
            act_f32: false,
            kv_f32: false,
            formats: Role::ALL.iter().map(|&r| (r, fmt)).collect(),
            gemv_mts: GEMV_MTS.to_vec(),
            paged: false,
            kv_cache: crate::quant::kv::KvCacheDtype::Fp16,
            kv_rot: false,
        };
        spec.validate().unwrap();
        spec
    }

    /// The megakernel's module compiles with NVRTC for sm_90a with the TinyLlama and SmolLM2
    /// dimensions, `mk_step` in the ptxas report and no spills (no GPU needed).
    #[test]
    #[ignore = "needs libnvrtc (CUDA 13 NVRTC; no GPU): run with --include-ignored where it is present"]
    fn nvrtc_compiles_the_megakernel() {
        // SAFETY: only probes dlopen.
        let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
        assert!(present, "libnvrtc.so not found (set LD_LIBRARY_PATH to a CUDA 13 NVRTC)");
        let dir = tempfile::tempdir().unwrap();
        // TinyLlama, and SmolLM2 (session 65: 576-wide chunks, 3 query heads a kv head).
        let smol =
            KernelSpec { config: LlamaConfig::preset("smollm2-135m").unwrap(), ..tinyllama_spec(WeightFormat::F16) };
        for spec in [tinyllama_spec(WeightFormat::F16), smol] {
            let c = super::compile_cached(&spec.source_mk(), "sm_90a", dir.path()).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.log.contains("'mk_step'"), "mk_step missing from the ptxas report:\n{}", c.log);
            let mut func = "";
            for l in c.log.lines() {
                if let Some(n) = l.split("Function properties for ").nth(1) {
                    func = n.trim();
                } else if func == "mk_step" && l.contains("spill") {
                    assert!(l.contains(" 0 bytes spill stores"), "mk_step spills: {l}");
                }
            }
        }
    }

    /// The session-37 quantized decode GEMM (`wq_*`) compiles with NVRTC for sm_90a inside the int8 / int4 g128 /
    /// fp8 TinyLlama modules, every instance in the ptxas report, no spills and no serialized wgmma (C7513 / C7520:
    /// ptxas would insert a wait after every MMA) (no GPU needed).
    #[test]
    #[ignore = "needs libnvrtc (CUDA 13 NVRTC; no GPU): run with --include-ignored where it is present"]
    fn nvrtc_compiles_the_quantized_decode_gemm() {
        // SAFETY: only probes dlopen.
        let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
        assert!(present, "libnvrtc.so not found (set LD_LIBRARY_PATH to a CUDA 13 NVRTC)");
        let dir = tempfile::tempdir().unwrap();
        for fmt in [WeightFormat::I8, WeightFormat::I4 { group: 128 }, WeightFormat::F8] {
            let src = tinyllama_spec(fmt).source_sm90a_with(false, false, true);
            let c = super::compile_cached(&src, "sm_90a", dir.path()).unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
            assert!(
                !c.log.contains("C7513") && !c.log.contains("C7520") && !c.log.contains("serialized"),
                "{fmt:?}: serialized wgmma:\n{}",
                c.log
            );
            for name in super::super::wq::KERNELS {
                assert!(c.log.contains(&format!("'{name}'")), "{name} missing from the ptxas report");
            }
            let mut func = "";
            for l in c.log.lines() {
                if let Some(n) = l.split("Function properties for ").nth(1) {
                    func = n.trim();
                } else if func.starts_with("wq_") && l.contains("registers") {
                    eprintln!("{fmt:?} {func}: {}", l.trim()); // shown with --nocapture
                } else if func.starts_with("wq_") && l.contains("spill") {
                    assert!(l.contains(" 0 bytes spill stores"), "{func} spills: {l}");
                }
            }
        }
    }

    /// Compiles every kernel variant with NVRTC when the library is present (no GPU needed):
    /// syntax, templates and register use are checked on CPU-only machines that have it.
    #[test]
    #[ignore = "needs libnvrtc (CUDA 13 NVRTC; no GPU): run with --include-ignored where it is present"]
    fn nvrtc_compiles_every_variant() {
        // SAFETY: only probes dlopen.
        let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
        assert!(present, "libnvrtc.so not found (set LD_LIBRARY_PATH to a CUDA 13 NVRTC)");
        let dir = tempfile::tempdir().unwrap();
        for (preset, fmts) in [
            (
                "tinyllama-1.1b",
                vec![WeightFormat::F16, WeightFormat::I8, WeightFormat::I4 { group: 128 }, WeightFormat::F8],
            ),
            ("smollm2-135m", vec![WeightFormat::F32, WeightFormat::I4 { group: 64 }]),
            ("tiny", vec![WeightFormat::F32, WeightFormat::F16]),
        ] {
            for f in fmts {
                let act_f32 = f == WeightFormat::F32;
                let spec = KernelSpec {
                    config: LlamaConfig::preset(preset).unwrap(),
                    max_seq: 256,
                    act_f32,
                    kv_f32: act_f32,
                    formats: Role::ALL.iter().map(|&r| (r, f)).collect(),
                    gemv_mts: GEMV_MTS.to_vec(),
                    paged: preset == "tiny" || f == WeightFormat::I8,
                    // 8-bit caches (int8 static, fp8 paged) on two of the TinyLlama builds.
                    kv_cache: match (preset, f) {
                        ("tinyllama-1.1b", WeightFormat::F16) => crate::quant::kv::KvCacheDtype::Int8,
                        ("tinyllama-1.1b", WeightFormat::I8) => crate::quant::kv::KvCacheDtype::Fp8,
                        _ => crate::quant::kv::KvCacheDtype::Fp16,
                    },
                    // Session 16: the rotated 8-bit cache's kv_rot on both 8-bit builds.
                    kv_rot: preset == "tinyllama-1.1b" && matches!(f, WeightFormat::F16 | WeightFormat::I8),
                };
                spec.validate().unwrap();
                let c = super::compile_cached(&spec.source(), "sm_90", dir.path())
                    .unwrap_or_else(|e| panic!("{preset} {f:?}: {e}"));
                assert!(!c.cached && c.cubin.len() > 1000);
                // ptxas -v: every kernel reports its registers; none may spill to local memory.
                for n in spec.kernel_names() {
                    assert!(c.log.contains(&format!("'{n}'")), "{n} missing from the ptxas report");
                }
                // Spill lines with the kernel they belong to ("Function properties for NAME" comes first).
                let mut func = "";
                let mut spills: Vec<&str> = Vec::new();
                for l in c.log.lines() {
                    if let Some(n) = l.split("Function properties for ").nth(1) {
                        func = n.trim();
                    } else if l.contains("spill") && !l.contains(" 0 bytes spill stores") {
                        // The opt-in persistent layer (TRTFORGE_PERSIST=1, measured slower than the default
                        // path: docs/cuda.md, session 4) runs every phase in one 128-register kernel and spills a
                        // few words on the TinyLlama f16 build with the rotated 8-bit cache; not a default kernel.
                        if func != "persist_layer" {
                            spills.push(l);
                        }
                    }
                }
                let regs: Vec<&str> = c.log.lines().filter(|l| l.contains("registers")).collect();
                crate::util::errln!(
                    "{preset} {f:?}: {:.2} s, {} KB cubin; {} reg lines; spills: {spills:?}",
                    c.secs,
                    c.cubin.len() / 1024,
                    regs.len()
                );
                if std::env::var_os("TRTFORGE_PTXAS_LOG").is_some() {
                    crate::util::errln!("{}", c.log);
                }
                // The fp32 reference mode (f32 weights, 16-byte loads of 4 elements) may spill a
                // word in its widest GEMVs; the fast formats must not spill at all.
                let tolerated = f == WeightFormat::F32 && spills.iter().all(|l| l.contains(" 4 bytes spill stores"));
                assert!(spills.is_empty() || tolerated, "{preset} {f:?}: register spills: {spills:?}");
                let again = super::compile_cached(&spec.source(), "sm_90", dir.path()).unwrap().cached;
                assert!(again, "second compile must come from the cache");
            }
        }
    }
}
