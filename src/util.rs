//! Small helpers several layers need, kept once at the bottom: a seeded generator and seeded
//! prompts, SHA-256 digests, atomic file writes, stderr lines that cannot panic.
pub mod atomic;

/// `eprintln!` that never panics: a note, warning or error line for a stderr that cannot take it
/// (`2>/dev/full`, a closed descriptor) is dropped, since there is nowhere else to say it.
/// `eprintln!` panics there, turning a message into exit 101. Use it for every stderr line.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use errln;

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Small, fast, seedable generator (splitmix64); enough for weights and sampling.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Token ids below this are skipped by [`seeded_prompts`]: they are special tokens in most vocabularies.
pub const FIRST_PROMPT_ID: u64 = 16;

/// Seeded random prompts, one per entry of `lens` with that many tokens, ids uniform in
/// [min(16, vocab − 1), vocab). The one prompt generator of the crate (bench, checks, calibration
/// of tokenizer-less presets), so the same seed means the same tokens everywhere.
pub fn seeded_prompts(lens: &[usize], vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let vocab = vocab.max(1) as u64;
    let lo = FIRST_PROMPT_ID.min(vocab - 1);
    let mut rng = SplitMix64(seed);
    lens.iter().map(|&n| (0..n).map(|_| (lo + rng.next_u64() % (vocab - lo)) as u32).collect()).collect()
}

/// SHA-256 of files, streamed, concatenated in the given order.
pub fn sha256_files(paths: &[&Path]) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for p in paths {
        let mut f = std::fs::File::open(p).map_err(|e| Error::io(*p, e))?;
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(*p, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Largest engine config (YAML) read: configs are a few hundred bytes.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a file the user named: refused unless it is a regular file (a FIFO or a device such as
/// /dev/zero would block or grow memory without end), and, with `limit`, unless it holds at most
/// that many bytes (checked while reading too, for a file that grows).
pub fn read_file(path: &Path, limit: Option<u64>) -> Result<Vec<u8>> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer before its type can be seen.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let md = f.metadata().map_err(|e| Error::io(path, e))?;
    let t = md.file_type();
    if !t.is_file() {
        let what = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::Invalid(format!("{} is {what}; give a regular file", path.display())));
    }
    let too_big =
        |n: u64, max: u64| Error::Invalid(format!("{} is {n} bytes; at most {max} are read from it", path.display()));
    if let Some(max) = limit.filter(|&m| md.len() > m) {
        return Err(too_big(md.len(), max));
    }
    let mut bytes = Vec::new();
    f.take(limit.map_or(u64::MAX, |m| m + 1)).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if let Some(max) = limit.filter(|&m| bytes.len() as u64 > m) {
        return Err(too_big(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// [`read_file`] as UTF-8 text.
pub fn read_text(path: &Path, limit: Option<u64>) -> Result<String> {
    String::from_utf8(read_file(path, limit)?).map_err(|e| Error::format(path, format!("not UTF-8 text: {e}")))
}

/// Writes a file through a temporary in the same directory and a rename; the temporary is removed
/// on error and on SIGINT/SIGTERM, and swept later if a kill -9 left it (see [`atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic::write_atomic(path, bytes)
}

/// A /proc/meminfo field in bytes, if known.
fn meminfo(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .map(|k| k * 1024)
}

/// The machine's physical memory (`MemTotal` of /proc/meminfo), if known.
pub fn physical_memory_bytes() -> Option<u64> {
    meminfo("MemTotal")
}

/// Memory available to a new allocation without swapping (`MemAvailable`), if known.
pub fn available_memory_bytes() -> Option<u64> {
    meminfo("MemAvailable")
}
