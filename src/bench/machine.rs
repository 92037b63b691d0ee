//! What the benchmark ran on, for the report header.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MachineInfo {
    pub hostname: String,
    pub os: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_bytes: u64,
    /// GPU name, driver, CUDA version and compute capability when a GPU backend reported them.
    pub gpu: Option<String>,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub tensorrt: Option<String>,
    pub onnxruntime: Option<String>,
}

impl MachineInfo {
    pub fn detect() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let memory_bytes = crate::util::physical_memory_bytes().unwrap_or(0);
        let os = read("/etc/os-release")
            .lines()
            .find(|l| l.starts_with("PRETTY_NAME="))
            .map(|l| l.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let (gpu, driver) = nvidia_smi();
        MachineInfo {
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
            os,
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_bytes,
            gpu,
            driver,
            ..Default::default()
        }
    }
}

/// GPU name and driver from nvidia-smi, if present.
fn nvidia_smi() -> (Option<String>, Option<String>) {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout);
            let first = s.lines().next().unwrap_or("");
            let parts: Vec<&str> = first.split(',').map(str::trim).collect();
            match parts.as_slice() {
                [name, driver, cc] => (Some(format!("{name} (sm_{})", cc.replace('.', ""))), Some(driver.to_string())),
                _ => (None, None),
            }
        }
        _ => (None, None),
    }
}

/// Peak and current resident set size of this process, from /proc (Linux).
pub fn host_rss() -> (Option<u64>, Option<u64>) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the kernel's peak-RSS counter (VmHWM) so the next reading covers one cell only.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
