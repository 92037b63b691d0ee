//! Weight-only quantization of the decoder's linear layers: INT8 per output channel (W8A16) and INT4
//! group-wise along the input dimension (W4A16), by round-to-nearest or AWQ.
//!
//! Pure: f32 [`ModelWeights`] (and, for AWQ, activation statistics) in, a [`QuantizedModel`] (integer
//! weights + f16 scales in the layout the ONNX initializers use, see docs/formats.md) out; AWQ also
//! folds its per-channel scales into the float weights so the full-precision model is unchanged.
//! Nothing here runs a model: calibration (a CPU pass collecting the statistics) is
//! `convert::calibrate`, and reading stored weights back is `engine_dir::weights`.
//!
//! - [`rtn`]: the quantizer itself (absmax scales, optional per-block clipping).
//! - [`stats`]: per-site activation statistics (mean |x|, Gram matrix) that AWQ consumes.
//! - [`awq`]: activation-aware scale search, folding, clip search.
//! - [`fp8`]: FP8 E4M3 codec, per-channel weights and static activation scales (W8A8 fp8).
//! - [`gptq`]: GPTQ error feedback on the fp8 grid (weights chosen against the calibration Gram matrix).
//! - [`kv`]: quantized KV cache formats (fp8 / int8, per-head or per-block scales).
//! - [`smooth`]: SmoothQuant migration of activation outliers into the weights (before fp8).
pub mod awq;
pub mod fp8;
pub mod gptq;
pub mod kv;
pub mod rtn;
pub mod smooth;
pub mod stats;

use crate::error::{Error, Result};
use crate::model::weights::{tensor_name, NameScheme};
use crate::model::{LlamaConfig, ModelWeights, Param, Tensor};
use half::f16;
use std::collections::HashMap;

/// Group sizes a config may ask for (16 is for small test models whose dimensions 32 does not divide).
pub const GROUP_SIZES: &[usize] = &[16, 32, 64, 128];

/// How weights are stored, the one precision type of trtforge: the quantizers, the ONNX writer, the
/// stored-weight reader, the CUDA engine and the command line all speak it. (An engine config's
/// `quantization.precision` names a format plus how its codes are chosen, `int4_rtn` / `int4_awq`:
/// [`crate::engine_dir::config::Precision::format`].)
///
/// The quantized formats are symmetric here (no zero point): TensorRT's dequantize layer accepts
/// only zero zero-points, and the ONNX Runtime run must be the same model. (The CUDA engine's own
/// int4 packing adds a per-group zero point, see backend/cuda/pack.rs.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// f32 weights (and, on the CUDA engine, f32 activations and KV cache).
    F32,
    /// f16 weights.
    F16,
    /// int8 in [-128, 127], one scale per output channel: `w = q * scale[n]` (W8A16).
    I8,
    /// int4 in [-8, 7], one scale per `group` consecutive input channels of each output channel:
    /// `w = q * scale[k / group][n]` (W4A16).
    I4 { group: usize },
    /// FP8 E4M3FN (codes are bit patterns, see [`fp8`]), one scale per output channel:
    /// `w = decode(q) * scale[n]`. Its activations are fp8 too (static per-tensor scales in
    /// [`QuantizedModel::input_scales`]): W8A8.
    F8,
}

impl WeightFormat {
    /// Parses a command-line precision: fp32, fp16, int8, int4 (int4_rtn / int4_awq mean int4);
    /// `group` is int4's group size.
    pub fn parse(s: &str, group: usize) -> Result<Self> {
        Ok(match s {
            "fp32" | "f32" => WeightFormat::F32,
            "fp16" | "f16" => WeightFormat::F16,
            "int8" => WeightFormat::I8,
            "fp8" | "f8" | "fp8_e4m3" => WeightFormat::F8,
            "int4" | "int4_rtn" | "int4_awq" => {
                // 0 would divide by zero in the kernels' checks; the CUDA kernels read 32 codes at a time.
                if group == 0 || group % 32 != 0 {
                    return Err(Error::Invalid(format!(
                        "int4 group size {group} must be a positive multiple of 32 (32, 64 or 128)"
                    )));
                }
                WeightFormat::I4 { group }
            }
            other => {
                return Err(Error::Invalid(format!("unknown precision {other:?}; use fp32, fp16, int8, int4 or fp8")))
            }
        })
    }
    /// "fp32", "fp16", "int8", "int4".
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "fp32",
            WeightFormat::F16 => "fp16",
            WeightFormat::I8 => "int8",
            WeightFormat::I4 { .. } => "int4",
            WeightFormat::F8 => "fp8",
        }
    }
    /// The name with int4's group size, for reports: "int4 g128".
    pub fn label(self) -> String {
        match self {
            WeightFormat::I4 { group } => format!("int4 g{group}"),
            f => f.name().to_string(),
        }
    }
    /// Integer codes + scales (as opposed to float weights).
    pub fn is_quantized(self) -> bool {
        matches!(self, WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8)
    }
    /// Smallest code (quantized formats; 0 for float ones).
    pub fn qmin(self) -> i32 {
        match self {
            WeightFormat::I8 => -128,
            WeightFormat::I4 { .. } => -8,
            WeightFormat::F8 => -448,
            WeightFormat::F32 | WeightFormat::F16 => 0,
        }
    }
    /// The absmax of a block maps to this code (quantized formats; 0 for float ones).
    pub fn qmax(self) -> i32 {
        match self {
            WeightFormat::I8 => 127,
            WeightFormat::I4 { .. } => 7,
            WeightFormat::F8 => 448,
            WeightFormat::F32 | WeightFormat::F16 => 0,
        }
    }
    /// Input channels that share one scale.
    pub fn block_len(self, in_features: usize) -> usize {
        match self {
            WeightFormat::I4 { group } => group,
            _ => in_features,
        }
    }
    pub fn group_size(self) -> Option<usize> {
        match self {
            WeightFormat::I4 { group } => Some(group),
            _ => None,
        }
    }
}

/// One quantized linear weight `W (out, in)`, stored the way the ONNX graph consumes it: transposed,
/// `(in, out)`, so `DequantizeLinear → MatMul(x, ·)` needs no transpose. When an int4 group size does
/// not divide `in` (and `pad_to_group` allowed it), the stored input dimension is padded with zero
/// codes to whole groups, [`stored_in`](Self::stored_in) rows; the graph slices the first `in` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLinear {
    pub format: WeightFormat,
    pub in_features: usize,
    pub out_features: usize,
    /// (stored_in, out) row-major: `q[k * out + n]` is the code of `W[n][k]`; rows k >= in are 0.
    pub q: Vec<i8>,
    /// Int8, Fp8: (out). Int4: (stored_in / group, out), `scales[(k / group) * out + n]`.
    pub scales: Vec<f16>,
}

/// Stored input dimension of a weight with `in_features` inputs: whole groups for int4.
pub fn stored_in(format: WeightFormat, in_features: usize) -> usize {
    match format {
        WeightFormat::F32 | WeightFormat::F16 | WeightFormat::I8 | WeightFormat::F8 => in_features,
        WeightFormat::I4 { group } => in_features.div_ceil(group) * group,
    }
}

impl QuantizedLinear {
    /// Rows of the stored `(in, out)` matrix (`in` rounded up to whole groups for int4).
    pub fn stored_in(&self) -> usize {
        stored_in(self.format, self.in_features)
    }

    /// Shape of the scales initializer.
    pub fn scales_shape(&self) -> Vec<usize> {
        match self.format {
            WeightFormat::I8 | WeightFormat::F8 | WeightFormat::F32 | WeightFormat::F16 => vec![self.out_features],
            WeightFormat::I4 { group } => vec![self.stored_in() / group, self.out_features],
        }
    }

    /// Scale of element `W[n][k]`.
    #[inline]
    pub fn scale(&self, n: usize, k: usize) -> f16 {
        match self.format {
            WeightFormat::I8 | WeightFormat::F8 | WeightFormat::F32 | WeightFormat::F16 => self.scales[n],
            WeightFormat::I4 { group } => self.scales[(k / group) * self.out_features + n],
        }
    }

    /// The weights a `DequantizeLinear` with f16 scales produces, `f16(q · scale)`, as f32 `(out, in)`:
    /// what the CPU reference runs to check an engine.
    pub fn dequantize(&self) -> Tensor {
        let (n_in, n_out) = (self.in_features, self.out_features);
        let mut w = vec![0.0f32; n_in * n_out]; // (out, in)
        let fp8 = (self.format == WeightFormat::F8).then(fp8::decode_table);
        for k in 0..n_in {
            for n in 0..n_out {
                let s = self.scale(n, k).to_f32();
                let c = self.q[k * n_out + n];
                let v = match &fp8 {
                    Some(t) => t[c as u8 as usize],
                    None => c as f32,
                };
                w[n * n_in + k] = f16::from_f32(v * s).to_f32();
            }
        }
        Tensor::new(vec![n_out, n_in], w)
    }

    /// Bytes of the ONNX initializer: int8 as is; int4 two per byte in element order, the even
    /// element in the low nibble (two's complement), an odd count padded with a zero nibble.
    pub fn packed(&self) -> Vec<u8> {
        match self.format {
            WeightFormat::I8 | WeightFormat::F8 | WeightFormat::F32 | WeightFormat::F16 => {
                self.q.iter().map(|&v| v as u8).collect()
            }
            WeightFormat::I4 { .. } => pack_int4(&self.q),
        }
    }

    /// Inverse of [`packed`](Self::packed) for a weight with `in_features` real inputs; checks sizes.
    pub fn from_packed(
        format: WeightFormat,
        in_features: usize,
        out_features: usize,
        bytes: &[u8],
        scales: Vec<f16>,
    ) -> Result<Self> {
        if let WeightFormat::I4 { group } = format {
            if group == 0 {
                return Err(Error::Invalid("int4 block size 0".into()));
            }
        }
        if !format.is_quantized() {
            return Err(Error::Invalid(format!("{} is not a quantized format", format.name())));
        }
        let n = stored_in(format, in_features) * out_features;
        let q = match format {
            WeightFormat::I8 | WeightFormat::F8 | WeightFormat::F32 | WeightFormat::F16 => {
                if bytes.len() != n {
                    return Err(Error::Invalid(format!("int8 weight: {} bytes for {n} elements", bytes.len())));
                }
                bytes.iter().map(|&b| b as i8).collect()
            }
            WeightFormat::I4 { .. } => {
                if bytes.len() != n.div_ceil(2) {
                    return Err(Error::Invalid(format!(
                        "int4 weight: {} bytes for {n} elements (expected {})",
                        bytes.len(),
                        n.div_ceil(2)
                    )));
                }
                unpack_int4(bytes, n)
            }
        };
        let ql = QuantizedLinear { format, in_features, out_features, q, scales };
        let want: usize = ql.scales_shape().iter().product();
        if ql.scales.len() != want {
            return Err(Error::Invalid(format!("{} scales, expected {want}", ql.scales.len())));
        }
        Ok(ql)
    }

    /// Codes `(out, stored_in)` and scales `(out, stored_in / block)` in output-major order, the
    /// layout GEMV kernels usually want (each output row's inputs contiguous).
    pub fn out_major(&self) -> (Vec<i8>, Vec<f16>) {
        let (k_s, n_out) = (self.stored_in(), self.out_features);
        let mut q = vec![0i8; k_s * n_out];
        for k in 0..k_s {
            for n in 0..n_out {
                q[n * k_s + k] = self.q[k * n_out + n];
            }
        }
        let nb = self.scales.len() / n_out.max(1);
        let mut s = vec![f16::ZERO; self.scales.len()];
        for b in 0..nb {
            for n in 0..n_out {
                s[n * nb + b] = self.scales[b * n_out + n];
            }
        }
        (q, s)
    }

    /// Bytes of weights + scales as stored.
    pub fn stored_bytes(&self) -> usize {
        let w = match self.format {
            WeightFormat::I8 | WeightFormat::F8 | WeightFormat::F32 | WeightFormat::F16 => self.q.len(),
            WeightFormat::I4 { .. } => self.q.len().div_ceil(2),
        };
        w + self.scales.len() * 2
    }
}

/// Packs int4 codes (each in [-8, 7]) two per byte, even index in the low nibble.
pub fn pack_int4(q: &[i8]) -> Vec<u8> {
    q.chunks(2).map(|p| (p[0] as u8 & 0x0f) | ((p.get(1).copied().unwrap_or(0) as u8 & 0x0f) << 4)).collect()
}

/// Unpacks `n` int4 codes, sign-extending each nibble.
pub fn unpack_int4(bytes: &[u8], n: usize) -> Vec<i8> {
    let sext = |v: u8| ((v << 4) as i8) >> 4;
    (0..n).map(|i| sext(if i % 2 == 0 { bytes[i / 2] & 0x0f } else { bytes[i / 2] >> 4 })).collect()
}

/// The quantized linears of a model.
#[derive(Debug, Clone, Default)]
pub struct QuantizedModel {
    pub linears: HashMap<Param, QuantizedLinear>,
    /// Static per-tensor scales of the linears' inputs (fp8 activations): the engine computes
    /// `x · Wᵀ` on `DequantizeLinear(QuantizeLinear(x, s), s)`. Linears that share an input (q/k/v,
    /// gate/up) share the scale. Empty for weight-only formats.
    pub input_scales: HashMap<Param, f16>,
}

impl QuantizedModel {
    pub fn get(&self, p: Param) -> Option<&QuantizedLinear> {
        self.linears.get(&p)
    }
    /// A copy of `w` whose quantized linears hold their dequantized values (see
    /// [`QuantizedLinear::dequantize`]); everything else is unchanged.
    pub fn dequantized(&self, w: &ModelWeights) -> ModelWeights {
        let mut out = w.clone();
        for (p, ql) in &self.linears {
            *out.get_mut(*p) = ql.dequantize();
        }
        out
    }
    /// Input scale of a linear whose activations are quantized (fp8).
    pub fn input_scale(&self, p: Param) -> Option<f16> {
        self.input_scales.get(&p).copied()
    }
    /// Bytes of all quantized weights and scales.
    pub fn stored_bytes(&self) -> usize {
        self.linears.values().map(|q| q.stored_bytes()).sum()
    }
}

/// The linear layers the quantized precisions cover: q/k/v/o/gate/up/down of every decoder layer.
/// Embeddings, norms and the LM head stay in the model float type (tied heads are the embedding table,
/// which a Gather reads; untied heads are left in float as AWQ and TensorRT-LLM do by default).
pub fn decoder_linears(c: &LlamaConfig) -> Vec<Param> {
    (0..c.num_hidden_layers)
        .flat_map(|l| {
            [Param::Wq(l), Param::Wk(l), Param::Wv(l), Param::Wo(l), Param::WGate(l), Param::WUp(l), Param::WDown(l)]
        })
        .collect()
}

/// The kind of a decoder linear as configs name it ("q_proj", ..., "down_proj"); None otherwise.
pub fn linear_kind(p: Param) -> Option<&'static str> {
    Some(match p {
        Param::Wq(_) => "q_proj",
        Param::Wk(_) => "k_proj",
        Param::Wv(_) => "v_proj",
        Param::Wo(_) => "o_proj",
        Param::WGate(_) => "gate_proj",
        Param::WUp(_) => "up_proj",
        Param::WDown(_) => "down_proj",
        _ => return None,
    })
}

/// HF tensor name, used in messages and as the ONNX initializer name.
pub fn param_name(p: Param) -> String {
    tensor_name(p, NameScheme::Hf)
}

/// Checks that `format` applies to every parameter in `params`; the error names the first that
/// does not and says what would work.
pub fn check_applicable(w: &ModelWeights, params: &[Param], format: WeightFormat, pad_to_group: bool) -> Result<()> {
    if !format.is_quantized() {
        return Err(Error::Invalid(format!("{} is not a quantized format", format.name())));
    }
    for &p in params {
        let name = param_name(p);
        match p {
            Param::Embed | Param::AttnNorm(_) | Param::FfnNorm(_) | Param::FinalNorm => {
                return Err(Error::Unsupported(format!(
                    "{} weight-only quantization applies to linear layers; {name} is {}",
                    format.name(),
                    if p == Param::Embed { "the token embedding table (read by Gather)" } else { "a norm vector" }
                )))
            }
            Param::LmHead if w.lm_head.is_none() => {
                return Err(Error::Unsupported(format!(
                    "{} cannot apply to the LM head of this model: it is tied to the token embedding table, \
                     which the graph reads with Gather; untie it (save a separate lm_head.weight) or leave it in float",
                    format.name()
                )))
            }
            _ => {}
        }
        let t = w.get(p);
        let (n_out, n_in) = (t.rows(), t.cols());
        if let WeightFormat::I4 { group } = format {
            if group == 0 || (n_in % group != 0 && !pad_to_group) {
                let fits: Vec<String> = GROUP_SIZES.iter().filter(|&&g| n_in % g == 0).map(|g| g.to_string()).collect();
                let hint = if fits.is_empty() {
                    format!(
                        "no supported group size ({GROUP_SIZES:?}) divides {n_in}; use precision int8 for this model"
                    )
                } else {
                    format!("group sizes that divide it: {}", fits.join(", "))
                };
                return Err(Error::Invalid(format!(
                    "quantization.group_size {group} does not divide the input dimension {n_in} of {name} \
                     ({n_out} × {n_in}); {hint}; or set quantization.pad_to_group: true to zero-pad it to {} \
                     (whole groups, as TensorRT requires)",
                    n_in.div_ceil(group.max(1)) * group
                )));
            }
        }
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("{name} has a non-finite value at element {i}; cannot quantize it")));
        }
        // f16 scales: max|w| / qmax must stay below f16::MAX (AWQ's scaling included, with margin).
        let amax = t.data.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        if amax / format.qmax() as f32 > f16::MAX.to_f32() / 64.0 {
            return Err(Error::Invalid(format!("{name} has |w| up to {amax}, too large for f16 scales")));
        }
    }
    Ok(())
}
