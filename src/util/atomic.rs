//! Every file and directory trtforge writes goes to a temporary name inside its target folder and is
//! renamed into place. Temporaries are removed on error, on SIGINT/SIGTERM/SIGHUP (a handler
//! installed on first use), and swept on the next write into the same folder when a `kill -9` left
//! them: their names carry a marker and the writer's PID, so only ours, from dead processes, go.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

/// `.NAME.trtforge-tmp-PID`: the marker proves a name is a trtforge temporary.
const TMP_MARK: &str = ".trtforge-tmp-";

/// Temporaries of this process that are not yet renamed into place.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Called on an interrupt before cleaning up; returning true keeps the process running
/// (bench's first Ctrl-C finishes the current cell and writes what was measured).
type Hook = Box<dyn FnMut() -> bool + Send>;
static HOOK: Mutex<Option<Hook>> = Mutex::new(None);
static INSTALL: Once = Once::new();

/// Installs the SIGINT/SIGTERM/SIGHUP handler that removes this process's temporaries and exits
/// with 130. Idempotent; called by every function here that creates a temporary. Also makes a
/// file-size limit (SIGXFSZ) an `EFBIG` write error, so that path cleans up too.
pub fn install_handler() {
    INSTALL.call_once(|| {
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        let r = ctrlc::set_handler(|| {
            let keep_running = match HOOK.lock() {
                Ok(mut h) => h.as_mut().is_some_and(|f| f()),
                Err(_) => false,
            };
            if keep_running {
                return;
            }
            // Hold the lock until exit so no new temporary can be registered meanwhile.
            let live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
            for p in live.iter() {
                remove_any(p);
            }
            std::process::exit(130);
        });
        if let Err(e) = r {
            eprintln!("warning: no interrupt handler ({e}); an interrupt may leave temporary files");
        }
    });
}

/// Sets the function asked first on an interrupt (see [`HOOK`]).
pub fn set_interrupt_hook(f: impl FnMut() -> bool + Send + 'static) {
    install_handler();
    *HOOK.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
}

fn remove_any(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

fn register(p: &Path) {
    install_handler();
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(p.to_path_buf());
}

fn unregister(p: &Path) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| x != p);
}

/// The folder a path is written into ("." for a bare file name).
pub fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `dir/.NAME.trtforge-tmp-PID`.
pub fn temp_name(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}{TMP_MARK}{}", std::process::id()))
}

/// The PID a trtforge temporary's name carries, if it is one.
pub fn temp_owner(file_name: &str) -> Option<u32> {
    let (head, pid) = file_name.rsplit_once(TMP_MARK)?;
    if !head.starts_with('.') || head.len() < 2 || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Passes an interrupt on to a child process (SIGINT; 0: none), so that it can finish its current
/// step and write what it has, as this process does on Ctrl-C.
pub fn interrupt_pid(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    if pid > 0 {
        // SAFETY: sends a signal to one process (never 0 or -1, which would reach a group).
        let _ = unsafe { libc::kill(pid, libc::SIGINT) };
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes trtforge temporaries in `dir` left by processes that no longer run. Returns their names.
pub fn sweep_stale(dir: &Path) -> Vec<String> {
    let mut swept = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return swept };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        match temp_owner(&name) {
            Some(pid) if pid != std::process::id() && !process_alive(pid) => {
                remove_any(&e.path());
                swept.push(name);
            }
            _ => {}
        }
    }
    swept
}

/// Writes a file through a temporary in the same folder, synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Like [`write_atomic`], with the contents produced by `fill` (streamed, not held in memory).
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<()> {
    let dir = parent_of(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    sweep_stale(dir);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = temp_name(dir, name);
    register(&tmp);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    unregister(&tmp);
    res.map_err(|e| Error::io(path, e))
}

/// A directory built under a temporary name, removed on drop (and on interrupt) unless committed.
pub struct TempDir {
    pub path: PathBuf,
    done: bool,
}

impl TempDir {
    /// `parent/.NAME.trtforge-tmp-PID`, after sweeping stale temporaries from `parent`.
    pub fn new(parent: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        sweep_stale(parent);
        let path = temp_name(parent, name);
        register(&path);
        remove_any(&path);
        if let Err(e) = std::fs::create_dir(&path) {
            unregister(&path);
            return Err(Error::io(&path, e));
        }
        Ok(TempDir { path, done: false })
    }

    /// Moves the directory to `dest`, which must not exist or must be a directory the caller has
    /// proved it may replace (`replace`). The swap is atomic where the filesystem supports it
    /// (Linux `renameat2(RENAME_EXCHANGE)`): an interrupt leaves either the old or the new directory.
    pub fn commit(mut self, dest: &Path, replace: bool) -> Result<()> {
        let exists = std::fs::symlink_metadata(dest).is_ok();
        if exists && !replace {
            return Err(Error::Invalid(format!("{} already exists", dest.display())));
        }
        if !exists {
            std::fs::rename(&self.path, dest).map_err(|e| Error::io(dest, e))?;
        } else if !exchange(&self.path, dest) {
            // No atomic exchange here: move the old one aside under a temporary name first.
            let old = self
                .path
                .with_file_name(format!("{}-old", self.path.file_name().and_then(|n| n.to_str()).unwrap_or(".old")));
            std::fs::rename(dest, &old).map_err(|e| Error::io(dest, e))?;
            if let Err(e) = std::fs::rename(&self.path, dest) {
                let _ = std::fs::rename(&old, dest);
                return Err(Error::io(dest, e));
            }
            remove_any(&old);
            // self.path is gone; what remains to clean is nothing.
        }
        // After an exchange, self.path holds the replaced directory: remove it.
        remove_any(&self.path);
        unregister(&self.path);
        self.done = true;
        Ok(())
    }
}

/// Atomically swaps two paths (Linux); false where unsupported.
fn exchange(a: &Path, b: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let (Ok(ca), Ok(cb)) =
            (std::ffi::CString::new(a.as_os_str().as_bytes()), std::ffi::CString::new(b.as_os_str().as_bytes()))
        else {
            return false;
        };
        // SAFETY: both strings are NUL-terminated and live across the call.
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        false
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.done {
            remove_any(&self.path);
            unregister(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_parse_back() {
        let p = temp_name(Path::new("d"), "model.engine");
        let n = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_owner(n), Some(std::process::id()));
        assert_eq!(temp_owner("model.engine"), None);
        assert_eq!(temp_owner(".x.trtforge-tmp-"), None);
        assert_eq!(temp_owner(".x.trtforge-tmp-12a"), None);
        assert_eq!(temp_owner("x.trtforge-tmp-12"), None);
    }

    #[test]
    fn sweep_removes_only_dead_owners_temporaries() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        // PID 0x7fff_fff0 does not run; our own PID does.
        std::fs::write(d.join(".a.trtforge-tmp-2147483632"), b"x").unwrap();
        std::fs::create_dir(d.join(".e.trtforge-tmp-2147483632")).unwrap();
        std::fs::write(d.join(format!(".b.trtforge-tmp-{}", std::process::id())), b"x").unwrap();
        std::fs::write(d.join(".c.tmp-2147483632"), b"x").unwrap();
        std::fs::write(d.join("keep.txt"), b"x").unwrap();
        let mut swept = sweep_stale(d);
        swept.sort();
        assert_eq!(swept, vec![".a.trtforge-tmp-2147483632", ".e.trtforge-tmp-2147483632"]);
        let mut left: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left.len(), 3, "{left:?}");
    }

    #[test]
    fn write_atomic_replaces_and_cleans_up() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let err = write_atomic_with(&p, |_| Err(std::io::Error::other("boom"))).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_dir_commit_swaps_and_drop_removes() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("e");
        let a = TempDir::new(t.path(), "e").unwrap();
        std::fs::write(a.path.join("x"), b"1").unwrap();
        a.commit(&dest, false).unwrap();
        let b = TempDir::new(t.path(), "e").unwrap();
        std::fs::write(b.path.join("y"), b"2").unwrap();
        b.commit(&dest, true).unwrap();
        assert!(dest.join("y").exists() && !dest.join("x").exists());
        drop(TempDir::new(t.path(), "e").unwrap());
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
