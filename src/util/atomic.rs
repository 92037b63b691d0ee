//! Every file and directory trtforge writes goes to a temporary name inside its target folder and is
//! renamed into place. Temporaries are removed on error, on SIGINT/SIGTERM/SIGHUP (a handler
//! installed on first use), and swept on the next write into the same folder when a `kill -9` left
//! them: their names carry a marker and the writer's PID, so only ours, from dead processes, go —
//! and only once untouched for [`STALE_AFTER`], since a PID says nothing about a process in another
//! PID namespace or on another host writing into the same shared folder.
//! A directory being replaced where the filesystem cannot swap two directories atomically is moved
//! aside as `.NAME.trtforge-tmp-PID-old` for the instant between two renames; should the process die
//! there, the next sweep of the folder renames it back to NAME (see [`TempDir::commit`]).
use crate::error::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

/// `.NAME.trtforge-tmp-PID`: the marker proves a name is a trtforge temporary.
const TMP_MARK: &str = ".trtforge-tmp-";
/// A temporary of a process that is not running here is removed only once unmodified this long
/// (its writer may be alive in another container or host). Long-lived temporaries are kept fresh
/// ([`TempDir::touch`]).
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Appended to a temporary's name for the directory it replaces, moved aside (`.NAME.trtforge-tmp-PID-old`).
const ASIDE: &str = "-old";

/// What this process must undo on an interrupt.
#[derive(Debug, Clone, PartialEq)]
enum Live {
    /// A temporary not yet renamed into place: removed.
    Temp(PathBuf),
    /// The directory `dest` held, moved aside to `old` while a new one is renamed in: put back
    /// when `dest` is missing, otherwise removed.
    Aside { old: PathBuf, dest: PathBuf },
}

/// Temporaries of this process that are not yet renamed into place.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
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
            // Hold the lock until exit so no new temporary can be registered meanwhile (and a
            // commit's two renames, made under it, are never seen half done).
            let live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
            undo(&live);
            std::process::exit(130);
        });
        if let Err(e) = r {
            crate::util::errln!("warning: no interrupt handler ({e}); an interrupt may leave temporary files");
        }
    });
}

/// What the interrupt handler does with this process's live temporaries.
fn undo(live: &[Live]) {
    for l in live {
        match l {
            Live::Temp(p) => remove_any(p),
            Live::Aside { old, dest } => {
                settle_aside(old, dest, true);
            }
        }
    }
}

/// A directory moved aside for `dest`: renamed back where `dest` is missing (the replacement never
/// arrived); otherwise (the new one is in place) removed when `remove` says so. Returns what it did.
fn settle_aside(old: &Path, dest: &Path, remove: bool) -> Option<&'static str> {
    if std::fs::symlink_metadata(dest).is_err() && std::fs::rename(old, dest).is_ok() {
        return Some("restored");
    }
    if remove && std::fs::symlink_metadata(dest).is_ok() {
        remove_any(old);
        return Some("removed");
    }
    None
}

/// Sets the function asked first on an interrupt (see [`HOOK`]).
pub fn set_interrupt_hook(f: impl FnMut() -> bool + Send + 'static) {
    install_handler();
    *HOOK.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
}

fn remove_any(p: &Path) {
    let _ = try_remove_any(p);
}

fn try_remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn live() -> std::sync::MutexGuard<'static, Vec<Live>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn register(p: &Path) {
    install_handler();
    live().push(Live::Temp(p.to_path_buf()));
}

fn unregister(p: &Path) {
    live().retain(|x| !matches!(x, Live::Temp(t) | Live::Aside { old: t, .. } if t == p));
}

/// The folder a path is written into ("." for a bare file name).
pub fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `dir/.NAME.trtforge-tmp-PID`.
pub fn temp_name(dir: &Path, name: impl AsRef<OsStr>) -> PathBuf {
    let mut n = OsString::from(".");
    n.push(name);
    n.push(format!("{TMP_MARK}{}", std::process::id()));
    dir.join(n)
}

/// A trtforge temporary's name taken apart: the name it stands for, its writer's PID, and whether
/// it is a replaced directory moved aside.
fn parse_temp(file_name: &[u8]) -> Option<(&[u8], u32, bool)> {
    let mark = TMP_MARK.as_bytes();
    let at = file_name.windows(mark.len()).rposition(|w| w == mark)?;
    let (head, tail) = (&file_name[..at], &file_name[at + mark.len()..]);
    let (pid, aside) = match tail.strip_suffix(ASIDE.as_bytes()) {
        Some(p) => (p, true),
        None => (tail, false),
    };
    if head.len() < 2 || head[0] != b'.' || pid.is_empty() || !pid.iter().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pid = std::str::from_utf8(pid).ok()?.parse().ok()?;
    Some((&head[1..], pid, aside))
}

/// The PID a trtforge temporary's name carries (a replaced directory moved aside included), if it is one.
pub fn temp_owner(file_name: &str) -> Option<u32> {
    parse_temp(file_name.as_bytes()).map(|(_, pid, _)| pid)
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

/// Whether a temporary has gone unmodified for [`STALE_AFTER`].
fn untouched(md: &std::fs::Metadata) -> bool {
    md.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age >= STALE_AFTER)
}

/// Cleans up after trtforge processes that no longer run, in `dir`: a directory one moved aside
/// while replacing it goes back to its name where that name is missing (the replacement never
/// arrived; nothing is deleted, so this needs no wait) and is removed where the name is taken (it
/// did); their other temporaries are removed. Removals wait until a temporary is untouched for
/// [`STALE_AFTER`]. Returns the names acted on.
pub fn sweep_stale(dir: &Path) -> Vec<String> {
    let mut swept = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return swept };
    for e in rd.flatten() {
        let file_name = e.file_name();
        let Some((name, pid, aside)) = parse_temp(file_name.as_bytes()) else { continue };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let old_enough = e.metadata().is_ok_and(|md| untouched(&md));
        if aside {
            let dest = dir.join(OsStr::from_bytes(name));
            match settle_aside(&e.path(), &dest, old_enough) {
                Some("restored") => crate::util::errln!(
                    "note: restored {}, which an interrupted trtforge (PID {pid}) had moved aside to replace it",
                    dest.display()
                ),
                Some(_) => {}
                None => continue,
            }
        } else if old_enough {
            remove_any(&e.path());
        } else {
            continue;
        }
        swept.push(file_name.to_string_lossy().into_owned());
    }
    swept
}

/// Puts back a directory an interrupted trtforge moved aside from `dest` (see [`TempDir::commit`]),
/// where `dest` is missing. Readers call it before saying `dest` does not exist. Returns whether
/// `dest` was restored.
pub fn restore_aside(dest: &Path) -> bool {
    if std::fs::symlink_metadata(dest).is_ok() {
        return false;
    }
    let (dir, Some(want)) = (parent_of(dest), dest.file_name()) else { return false };
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    for e in rd.flatten() {
        let file_name = e.file_name();
        let Some((name, pid, true)) = parse_temp(file_name.as_bytes()) else { continue };
        if name == want.as_bytes()
            && pid != std::process::id()
            && !process_alive(pid)
            && settle_aside(&e.path(), dest, false) == Some("restored")
        {
            crate::util::errln!(
                "note: restored {}, which an interrupted trtforge (PID {pid}) had moved aside to replace it",
                dest.display()
            );
            return true;
        }
    }
    false
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
    let name = path.file_name().unwrap_or(OsStr::new("out"));
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

/// Writes a set of files into `dir` as one unit: each in full (synced) under its temporary name
/// first, then `remove` (files of an earlier set that this one does not replace) removed and all
/// renamed into place in the given order, under the lock the interrupt handler takes, so Ctrl-C
/// never leaves part of a set renamed. Until the renames an earlier set stays whole; put the file
/// that readers go by last. Returns the paths written.
pub fn write_set_atomic(dir: &Path, files: &[(&str, &[u8])], remove: &[&str]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    sweep_stale(dir);
    let staged: Vec<(PathBuf, PathBuf)> = files.iter().map(|(n, _)| (temp_name(dir, n), dir.join(n))).collect();
    let discard = |upto: usize| {
        for (tmp, _) in &staged[..upto] {
            let _ = std::fs::remove_file(tmp);
            unregister(tmp);
        }
    };
    for (i, ((tmp, dest), (_, bytes))) in staged.iter().zip(files).enumerate() {
        register(tmp);
        let res = std::fs::File::create(tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = res {
            discard(i + 1);
            return Err(Error::io(dest, e));
        }
    }
    let mut live = live();
    for n in remove {
        let p = dir.join(n);
        if let Err(e) = std::fs::remove_file(&p) {
            if e.kind() != std::io::ErrorKind::NotFound {
                drop(live);
                discard(staged.len());
                return Err(Error::io(p, e));
            }
        }
    }
    for (i, (tmp, dest)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, dest) {
            drop(live);
            for (tmp, _) in &staged[i..] {
                let _ = std::fs::remove_file(tmp);
            }
            for (tmp, _) in &staged {
                unregister(tmp);
            }
            return Err(Error::io(dest, e));
        }
    }
    live.retain(|l| !matches!(l, Live::Temp(t) if staged.iter().any(|(s, _)| s == t)));
    Ok(staged.into_iter().map(|(_, d)| d).collect())
}

/// Proves that files can be made in `dir` (where it does not exist yet: in the nearest folder
/// above it that does, where it will be made) by creating and removing a trtforge temporary there,
/// so that a run finds out before its work, not after it.
pub fn check_writable(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Some(existing) = dir
        .ancestors()
        .map(|a| if a.as_os_str().is_empty() { Path::new(".") } else { a })
        .find(|a| std::fs::symlink_metadata(a).is_ok())
    else {
        return Ok(());
    };
    let md = std::fs::metadata(existing).map_err(|e| Error::io(existing, e))?;
    if !md.is_dir() {
        return Err(Error::io(existing, std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    let probe = temp_name(existing, "probe");
    register(&probe);
    let res = std::fs::OpenOptions::new().write(true).create_new(true).open(&probe);
    let _ = std::fs::remove_file(&probe);
    unregister(&probe);
    res.map(drop).map_err(|e| Error::Invalid(format!("cannot write in {}: {e}", existing.display())))
}

/// An exclusive claim on a directory (`flock` on the directory itself, so nothing is added to it),
/// held until dropped or the process ends.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] std::fs::File);

/// Claims `dir` for this process: an error when another process holds it (e.g. a second bench
/// writing a report into the same folder). Where the filesystem has no locks, nothing is claimed.
pub fn lock_dir(dir: &Path) -> Result<Option<DirLock>> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(DirLock(f)));
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Err(Error::Invalid(format!("{} is in use by another trtforge process", dir.display())));
    }
    Ok(None)
}

/// A directory built under a temporary name, removed on drop (and on interrupt) unless committed.
pub struct TempDir {
    pub path: PathBuf,
    done: bool,
}

impl TempDir {
    /// `parent/.NAME.trtforge-tmp-PID`, after sweeping stale temporaries from `parent`.
    pub fn new(parent: &Path, name: impl AsRef<OsStr>) -> Result<Self> {
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

    /// Marks the directory as in use now (its modification time), so that no sweep in a folder
    /// shared with other hosts or containers takes it for a dead process's ([`STALE_AFTER`]).
    /// For a temporary directory that sits unchanged while a long step runs.
    pub fn touch(&self) {
        if let Ok(f) = std::fs::File::open(&self.path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }

    /// Moves the directory to `dest`, which must not exist or must be a directory the caller has
    /// proved it may replace (`replace`). The swap is atomic where the filesystem supports it
    /// (Linux `renameat2(RENAME_EXCHANGE)`): an interrupt leaves either the old or the new directory.
    /// Elsewhere the old directory is renamed aside ([`move_aside`]) and the new one renamed in
    /// ([`move_in`]), both under the lock the interrupt handler takes, so Ctrl-C / SIGTERM never
    /// falls between them; a `kill -9` there leaves the old one aside, which the next run puts back
    /// ([`sweep_stale`], [`restore_aside`]).
    pub fn commit(mut self, dest: &Path, replace: bool) -> Result<()> {
        let exists = std::fs::symlink_metadata(dest).is_ok();
        if exists && !replace {
            return Err(Error::Invalid(format!("{} already exists", dest.display())));
        }
        // The directory left to remove once the new one is in place (the replaced one).
        let replaced = if !exists {
            std::fs::rename(&self.path, dest).map_err(|e| Error::io(dest, e))?;
            None
        } else if exchange(&self.path, dest) {
            // self.path now holds the replaced directory.
            Some(self.path.clone())
        } else {
            let mut live = live();
            let old = move_aside(&self.path, dest).map_err(|e| Error::io(dest, e))?;
            live.push(Live::Aside { old: old.clone(), dest: dest.to_path_buf() });
            if let Err(e) = move_in(&self.path, dest, &old) {
                live.retain(|l| !matches!(l, Live::Aside { old: o, .. } if *o == old));
                return Err(Error::io(dest, e));
            }
            Some(old)
        };
        if let Some(r) = &replaced {
            if let Err(e) = try_remove_any(r) {
                crate::util::errln!(
                    "warning: {} was replaced, but its old contents could not be removed ({e}); they are left at {}: \
remove them by hand",
                    dest.display(),
                    r.display()
                );
            }
            unregister(r);
        }
        unregister(&self.path);
        self.done = true;
        Ok(())
    }
}

/// The fallback's first step: `dest` renamed to `NEW-old` beside it (`NEW`: the temporary that
/// replaces it, whose name carries the PID that the next sweep checks).
fn move_aside(new: &Path, dest: &Path) -> std::io::Result<PathBuf> {
    let mut name = new.file_name().unwrap_or(OsStr::new(".trtforge-tmp-0")).to_os_string();
    name.push(ASIDE);
    let old = new.with_file_name(name);
    std::fs::rename(dest, &old)?;
    Ok(old)
}

/// The fallback's second step: `new` renamed to `dest`; on failure the old directory goes back.
fn move_in(new: &Path, dest: &Path, old: &Path) -> std::io::Result<()> {
    std::fs::rename(new, dest).inspect_err(|_| {
        let _ = std::fs::rename(old, dest);
    })
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
        assert_eq!(temp_owner(".x.trtforge-tmp-12-old"), Some(12));
        assert_eq!(temp_owner(".x.trtforge-tmp--old"), None);
        assert_eq!(parse_temp(b".a.b.trtforge-tmp-7-old"), Some((&b"a.b"[..], 7, true)));
    }

    /// Sets a path's modification time `STALE_AFTER` + 1 minute into the past.
    fn age(p: &Path) {
        let t = std::time::SystemTime::now() - STALE_AFTER - std::time::Duration::from_secs(60);
        std::fs::File::open(p).unwrap().set_modified(t).unwrap();
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
        for n in [".a.trtforge-tmp-2147483632", ".e.trtforge-tmp-2147483632"] {
            age(&d.join(n));
        }
        age(&d.join(format!(".b.trtforge-tmp-{}", std::process::id())));
        let mut swept = sweep_stale(d);
        swept.sort();
        assert_eq!(swept, vec![".a.trtforge-tmp-2147483632", ".e.trtforge-tmp-2147483632"]);
        let mut left: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left.len(), 3, "{left:?}");
    }

    /// A dead PID is not enough: the writer may run in another PID namespace or host sharing the
    /// folder. A temporary modified within STALE_AFTER stays; a touched TempDir counts as fresh.
    #[test]
    fn sweep_spares_recent_temporaries_of_unknown_processes() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join(".a.trtforge-tmp-2147483632"), b"x").unwrap();
        std::fs::create_dir(d.join(".e.trtforge-tmp-2147483632")).unwrap();
        // A replaced dir aside whose new one is in place: removed only when stale too.
        std::fs::create_dir(d.join("f")).unwrap();
        std::fs::create_dir(d.join(".f.trtforge-tmp-2147483632-old")).unwrap();
        assert!(sweep_stale(d).is_empty());
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 4);
        let td = TempDir { path: d.join(".e.trtforge-tmp-2147483632"), done: true };
        age(&td.path);
        td.touch();
        age(&d.join(".f.trtforge-tmp-2147483632-old"));
        let mut swept = sweep_stale(d);
        swept.sort();
        assert_eq!(swept, vec![".f.trtforge-tmp-2147483632-old"]);
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

    /// `commit`'s fallback (no RENAME_EXCHANGE) stopped between its two renames, as a `kill -9`
    /// there would: the user's directory is aside, the new one still a temporary. The next sweep of
    /// the folder (or a reader's `restore_aside`) puts the old one back; nothing of it is lost.
    #[test]
    fn fallback_commit_killed_between_renames_restores_the_old_dir() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let dest = d.join("e");
        // A writer that no longer runs (PID 0x7fff_fff0).
        let new = d.join(".e.trtforge-tmp-2147483632");
        for (reader, sweep) in [(false, true), (true, false)] {
            std::fs::create_dir(&dest).unwrap();
            std::fs::write(dest.join("model.onnx"), b"old").unwrap();
            std::fs::create_dir(&new).unwrap();
            std::fs::write(new.join("model.onnx"), b"new").unwrap();
            let old = move_aside(&new, &dest).unwrap();
            assert_eq!(old, d.join(".e.trtforge-tmp-2147483632-old"));
            assert!(!dest.exists());
            // Killed here. The next run:
            if sweep {
                sweep_stale(d);
            }
            if reader {
                assert!(restore_aside(&dest));
            }
            assert_eq!(std::fs::read(dest.join("model.onnx")).unwrap(), b"old");
            assert!(!old.exists());
            let _ = std::fs::remove_dir_all(&new);
            std::fs::remove_dir_all(&dest).unwrap();
        }
    }

    /// Killed after both renames but before the old directory was removed: the new one stays,
    /// the old one is swept.
    #[test]
    fn fallback_commit_killed_before_removal_keeps_the_new_dir() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let dest = d.join("e");
        let new = d.join(".e.trtforge-tmp-2147483632");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("model.onnx"), b"old").unwrap();
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("model.onnx"), b"new").unwrap();
        let old = move_aside(&new, &dest).unwrap();
        move_in(&new, &dest, &old).unwrap();
        assert!(!restore_aside(&dest), "dest exists: nothing to restore");
        age(&old);
        sweep_stale(d);
        assert_eq!(std::fs::read(dest.join("model.onnx")).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
    }

    /// An interrupt (the handler's `undo`) between the renames puts the old directory back; after
    /// them, removes it. A failed second rename puts it back too.
    #[test]
    fn interrupt_and_failure_paths_restore_the_old_dir() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let dest = d.join("e");
        let new = d.join(format!(".e.trtforge-tmp-{}", std::process::id()));
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("f"), b"old").unwrap();
        std::fs::create_dir(&new).unwrap();
        let old = move_aside(&new, &dest).unwrap();
        undo(&[Live::Aside { old: old.clone(), dest: dest.clone() }]);
        assert_eq!(std::fs::read(dest.join("f")).unwrap(), b"old");
        let old = move_aside(&new, &dest).unwrap();
        move_in(&new, &dest, &old).unwrap();
        undo(&[Live::Aside { old: old.clone(), dest: dest.clone() }]);
        assert!(!old.exists() && dest.exists());
        // The second rename fails (its source is gone): the old directory goes back.
        std::fs::write(dest.join("f"), b"kept").unwrap();
        let old = move_aside(&new, &dest).unwrap();
        assert!(move_in(&new, &dest, &old).is_err());
        assert_eq!(std::fs::read(dest.join("f")).unwrap(), b"kept");
    }

    /// A set whose writing fails part-way replaces nothing: the earlier files stay whole, and no
    /// temporary is left.
    #[test]
    fn write_set_is_all_or_nothing() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("a.md"), b"old a").unwrap();
        std::fs::write(d.join("b.json"), b"old b").unwrap();
        std::fs::write(d.join("stale.svg"), b"old").unwrap();
        // The second file's temporary cannot be made (its folder does not exist).
        let err =
            write_set_atomic(d, &[("a.md", b"new a"), ("no/such.svg", b"x"), ("b.json", b"new b")], &["stale.svg"]);
        assert!(err.is_err());
        assert_eq!(std::fs::read(d.join("a.md")).unwrap(), b"old a");
        assert_eq!(std::fs::read(d.join("b.json")).unwrap(), b"old b");
        assert!(d.join("stale.svg").exists());
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 3);
        let w = write_set_atomic(d, &[("a.md", b"new a"), ("b.json", b"new b")], &["stale.svg"]).unwrap();
        assert_eq!(w, vec![d.join("a.md"), d.join("b.json")]);
        assert_eq!(std::fs::read(d.join("b.json")).unwrap(), b"new b");
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 2);
        assert!(!live().iter().any(|l| matches!(l, Live::Temp(p) if p.starts_with(d))));
    }

    #[test]
    fn check_writable_probes_the_nearest_existing_folder() {
        let t = tempfile::tempdir().unwrap();
        check_writable(&t.path().join("not/yet")).unwrap();
        assert!(!t.path().join("not").exists());
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let e = check_writable(&t.path().join("f/sub")).unwrap_err();
        assert!(e.to_string().contains("Not a directory"), "{e}");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
