//! The memory roofline the CUDA engine is measured against: device-to-device copy bandwidth.
use super::gpu::Gpu;
use super::launch::{self, DType};
use crate::error::Result;

/// Device-to-device copy bandwidth (bytes read + written per second), the roofline used below.
pub fn copy_bandwidth(gpu: &Gpu) -> Result<f64> {
    let n = 1usize << 30;
    let a = gpu.alloc(n)?;
    let b = gpu.alloc(n)?;
    gpu.memset0(&a)?;
    let t = gpu.timer()?;
    let copy = || launch::copy(gpu, b.view(DType::U8), a.view(DType::U8));
    copy()?;
    gpu.sync()?;
    t.start()?;
    let reps = 10;
    for _ in 0..reps {
        copy()?;
    }
    let ms = t.stop_ms()?;
    Ok(2.0 * n as f64 * reps as f64 / (ms / 1e3))
}
