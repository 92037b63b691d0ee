//! C++ objects that TensorRT calls back into: the `ILogger` and the `IProgressMonitor`.
//!
//! Each is a `#[repr(C)]` struct whose first word points into a hand-built vtable laid out as the
//! library's headers say (slot numbers from the version's [`Slots`]): offset-to-top 0, a null RTTI
//! word, then the methods. TensorRT keeps one logger per process, so loggers are leaked and live
//! for the whole process; progress monitors live as long as the `BuilderConfig` that holds them.
use super::sys::{severity, InterfaceInfo, Slots};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Messages at or below this severity are printed (default: warnings and errors).
static LOG_LEVEL: AtomicI32 = AtomicI32::new(severity::WARNING);
/// Error messages since the process started (bounded), read back into user-facing errors.
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
const MAX_KEPT_ERRORS: usize = 256;

/// Sets the severity printed on stderr: "error", "warning", "info" or "verbose".
pub fn set_log_level(name: &str) -> Result<(), String> {
    let v = match name {
        "error" => severity::ERROR,
        "warning" => severity::WARNING,
        "info" => severity::INFO,
        "verbose" => severity::VERBOSE,
        _ => return Err(format!("unknown TensorRT log level {name:?} (error, warning, info, verbose)")),
    };
    LOG_LEVEL.store(v, Ordering::Relaxed);
    Ok(())
}

/// A position in the error log; [`ErrorMark::since`] returns the errors logged after it.
#[derive(Clone, Copy)]
pub struct ErrorMark(usize);

impl ErrorMark {
    pub fn now() -> Self {
        ErrorMark(ERRORS.lock().map(|e| e.len()).unwrap_or(0))
    }
    pub fn since(self) -> Vec<String> {
        ERRORS.lock().map(|e| e.get(self.0.min(e.len())..).unwrap_or(&[]).to_vec()).unwrap_or_default()
    }
}

fn record(sev: i32, msg: &str) {
    if sev <= LOG_LEVEL.load(Ordering::Relaxed) {
        let tag = match sev {
            severity::INTERNAL_ERROR => "internal error",
            severity::ERROR => "error",
            severity::WARNING => "warning",
            severity::INFO => "info",
            _ => "verbose",
        };
        crate::util::errln!("[TensorRT] {tag}: {msg}");
    }
    if sev <= severity::ERROR {
        if let Ok(mut e) = ERRORS.lock() {
            if e.len() >= MAX_KEPT_ERRORS {
                // Keep marks meaningful: drop the oldest half, marks past the end just see nothing.
                e.drain(..MAX_KEPT_ERRORS / 2);
            }
            e.push(msg.to_string());
        }
    }
}

/// Reads a C string from TensorRT; invalid UTF-8 is replaced.
///
/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
pub(crate) unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated per the caller.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A C++-layout object: the vtable pointer, then our data.
#[repr(C)]
struct CppObject<T> {
    vptr: *const *const c_void,
    data: T,
}

/// Builds a vtable of `len` slots (plus offset-to-top and RTTI) with the given entries.
fn vtable(len: usize, entries: &[(usize, *const c_void)]) -> &'static [*const c_void] {
    let noop = noop_dtor as *const c_void;
    let mut v = vec![noop; len + 2];
    v[0] = std::ptr::null(); // offset-to-top
    v[1] = std::ptr::null(); // RTTI: nobody dynamic_casts a logger
    for &(slot, f) in entries {
        v[slot + 2] = f;
    }
    Vec::leak(v)
}

unsafe extern "C" fn noop_dtor(_this: *mut c_void) {}

unsafe extern "C" fn api_language(_this: *const c_void) -> i32 {
    0 // APILanguage::kCPP
}

unsafe extern "C" fn logger_info(_this: *const c_void) -> InterfaceInfo {
    InterfaceInfo { kind: c"ILogger".as_ptr(), major: 1, minor: 0 }
}

unsafe extern "C" fn logger_log(_this: *mut c_void, sev: i32, msg: *const c_char) {
    // SAFETY: TensorRT passes a NUL-terminated message valid for the call.
    let m = unsafe { cstr(msg) };
    record(sev, &m);
}

/// Makes the process-wide logger object for a library version; never freed.
pub(crate) fn new_logger(s: &Slots) -> *mut c_void {
    let mut entries = vec![
        (s.logger_dtor, noop_dtor as *const c_void),
        (s.logger_dtor + 1, noop_dtor as *const c_void),
        (s.logger_log, logger_log as *const c_void),
    ];
    if let Some(i) = s.logger_get_interface_info {
        entries.push((i, logger_info as *const c_void));
    }
    if let Some(i) = s.logger_get_api_language {
        entries.push((i, api_language as *const c_void));
    }
    let vt = vtable(s.logger_vtable_len, &entries);
    let obj = Box::new(CppObject { vptr: vt[2..].as_ptr(), data: () });
    Box::into_raw(obj) as *mut c_void
}

/// What the progress monitor prints: build phases with their durations.
struct ProgressState {
    started: Mutex<Vec<(String, Instant)>>,
}

unsafe extern "C" fn progress_info(_this: *const c_void) -> InterfaceInfo {
    InterfaceInfo { kind: c"IProgressMonitor".as_ptr(), major: 1, minor: 0 }
}

/// # Safety
/// `this` is a `ProgressMonitor` object.
unsafe fn progress_state<'a>(this: *mut c_void) -> &'a ProgressState {
    // SAFETY: TensorRT passes back the object we registered; it outlives the build.
    unsafe { &(*(this as *const CppObject<ProgressState>)).data }
}

unsafe extern "C" fn phase_start(this: *mut c_void, name: *const c_char, parent: *const c_char, steps: i32) {
    // SAFETY: see progress_state; strings are NUL-terminated and valid for the call.
    let (st, name, parent) = unsafe { (progress_state(this), cstr(name), cstr(parent)) };
    if let Ok(mut s) = st.started.lock() {
        let depth = s.len();
        if depth < 2 {
            let indent = "  ".repeat(depth);
            let of = if parent.is_empty() { String::new() } else { format!(" ({parent})") };
            crate::util::errln!("  {indent}▸ {name}{of}: {steps} step{}", if steps == 1 { "" } else { "s" });
        }
        s.push((name, Instant::now()));
    }
}

unsafe extern "C" fn step_complete(_this: *mut c_void, _name: *const c_char, _step: i32) -> bool {
    true // never cancel
}

unsafe extern "C" fn phase_finish(this: *mut c_void, name: *const c_char) {
    // SAFETY: see progress_state.
    let (st, name) = unsafe { (progress_state(this), cstr(name)) };
    if let Ok(mut s) = st.started.lock() {
        if let Some(pos) = s.iter().rposition(|(n, _)| *n == name) {
            let (_, t) = s.remove(pos);
            if pos < 2 {
                crate::util::errln!("  {}✓ {name} ({:.1} s)", "  ".repeat(pos), t.elapsed().as_secs_f64());
            }
        }
    }
}

/// An `IProgressMonitor` that prints the builder's phases on stderr.
pub struct ProgressMonitor {
    obj: *mut CppObject<ProgressState>,
}

// SAFETY: the state is behind a Mutex; TensorRT may call from its worker threads.
unsafe impl Send for ProgressMonitor {}

impl ProgressMonitor {
    pub fn new(s: &Slots) -> Self {
        let entries = [
            (s.progress_dtor, noop_dtor as *const c_void),
            (s.progress_dtor + 1, noop_dtor as *const c_void),
            (s.progress_get_api_language, api_language as *const c_void),
            (s.progress_get_interface_info, progress_info as *const c_void),
            (s.progress_phase_start, phase_start as *const c_void),
            (s.progress_step_complete, step_complete as *const c_void),
            (s.progress_phase_finish, phase_finish as *const c_void),
        ];
        // One vtable per monitor: a few hundred bytes per build, leaked.
        let vt = vtable(s.progress_vtable_len, &entries);
        let obj = Box::into_raw(Box::new(CppObject {
            vptr: vt[2..].as_ptr(),
            data: ProgressState { started: Mutex::new(Vec::new()) },
        }));
        ProgressMonitor { obj }
    }
    pub fn as_ptr(&self) -> *mut c_void {
        self.obj as *mut c_void
    }
}

impl Drop for ProgressMonitor {
    fn drop(&mut self) {
        // SAFETY: made by Box::into_raw in new; the config that pointed at it is gone (it is
        // dropped first by BuilderConfig's field order).
        drop(unsafe { Box::from_raw(self.obj) });
    }
}
