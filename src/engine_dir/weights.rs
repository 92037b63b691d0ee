//! Reading an engine directory's weights back from its ONNX: the quantized linears exactly as stored
//! (for the CUDA engine and benchmarks), and an f32 [`ModelWeights`] of what the engine computes (for
//! the CPU reference to check ONNX Runtime or TensorRT against). The layout is docs/formats.md.
use super::manifest::Manifest;
use crate::error::{Error, Result};
use crate::model::weights::{param_shape, tensor_name, LayerWeights, NameScheme};
use crate::model::{LlamaConfig, ModelWeights, Param, Tensor};
use crate::proto as pb;
use crate::quant::{stored_in, QuantizedLinear, QuantizedModel, WeightFormat};
use half::f16;
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The initializers of an engine's ONNX model, with external data resolved.
struct Onnx {
    path: PathBuf,
    graph: pb::GraphProto,
    external: Vec<u8>,
    /// Initializer index by name.
    index: HashMap<String, usize>,
}

impl Onnx {
    fn open(dir: &Path, m: &Manifest) -> Result<Self> {
        let path = dir.join(&m.onnx.file);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let model = pb::ModelProto::decode(bytes.as_slice())
            .map_err(|e| Error::format(&path, format!("not an ONNX model: {e}")))?;
        let graph = model.graph.ok_or_else(|| Error::format(&path, "the model has no graph"))?;
        let external = match &m.onnx.external_data {
            Some(f) => {
                let p = dir.join(f);
                std::fs::read(&p).map_err(|e| Error::io(&p, e))?
            }
            None => Vec::new(),
        };
        let index = graph.initializer.iter().enumerate().map(|(i, t)| (t.name().to_string(), i)).collect();
        Ok(Onnx { path, graph, external, index })
    }

    fn init(&self, name: &str) -> Result<&pb::TensorProto> {
        self.index
            .get(name)
            .map(|&i| &self.graph.initializer[i])
            .ok_or_else(|| Error::format(&self.path, format!("missing initializer {name:?}")))
    }

    fn dims(t: &pb::TensorProto) -> Vec<usize> {
        t.dims.iter().map(|&d| d.max(0) as usize).collect()
    }

    /// Raw little-endian bytes of an initializer, inline or external.
    fn raw<'a>(&'a self, t: &'a pb::TensorProto) -> Result<&'a [u8]> {
        if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
            let get = |k: &str| t.external_data.iter().find(|e| e.key() == k).map(|e| e.value().to_string());
            let num = |k: &str| -> Result<usize> {
                get(k).and_then(|v| v.parse().ok()).ok_or_else(|| {
                    Error::format(&self.path, format!("{}: external data without a valid {k:?}", t.name()))
                })
            };
            let (off, len) = (num("offset")?, num("length")?);
            return self.external.get(off..off.saturating_add(len)).ok_or_else(|| {
                Error::format(
                    &self.path,
                    format!("{}: external data {off}+{len} is past the end of the data file", t.name()),
                )
            });
        }
        t.raw_data.as_deref().ok_or_else(|| Error::format(&self.path, format!("{}: no raw_data", t.name())))
    }

    /// A float or float16 initializer as f32, with its dims.
    fn floats(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        use pb::tensor_proto::DataType;
        let t = self.init(name)?;
        let raw = self.raw(t)?;
        let v: Vec<f32> = match t.data_type() {
            x if x == DataType::Float as i32 => {
                raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            x if x == DataType::Float16 as i32 => {
                raw.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            x => return Err(Error::format(&self.path, format!("{name}: data type {x}, expected float or float16"))),
        };
        let dims = Self::dims(t);
        if dims.iter().product::<usize>() != v.len() {
            return Err(Error::format(&self.path, format!("{name}: {} values for dims {dims:?}", v.len())));
        }
        Ok((dims, v))
    }
}

/// Parameter behind each HF tensor name of a model with this config.
fn names(c: &LlamaConfig) -> HashMap<String, Param> {
    let v = crate::model::weights::graph_params(c, true);
    v.into_iter().map(|p| (tensor_name(p, NameScheme::Hf), p)).collect()
}

/// The quantized linears stored in the graph, each in the format the manifest's precision names
/// (a float engine holds none; a quantized one holds no other format).
fn read_quantized(o: &Onnx, m: &Manifest) -> Result<QuantizedModel> {
    use pb::tensor_proto::DataType;
    let c = &m.model_config;
    let by_name = names(c);
    let mut qm = QuantizedModel::default();
    let bad = |m: String| Error::format(&o.path, m);
    for node in o.graph.node.iter().filter(|n| n.op_type() == "DequantizeLinear") {
        let Some(base) = node.input.first().and_then(|i| i.strip_suffix(".qweight")) else { continue };
        let p = *by_name.get(base).ok_or_else(|| bad(format!("DequantizeLinear of unknown weight {base:?}")))?;
        let attr = |k: &str| node.attribute.iter().find(|a| a.name() == k).and_then(|a| a.i);
        let qt = o.init(&node.input[0])?;
        let sname = node.input.get(1).ok_or_else(|| bad(format!("{base}: DequantizeLinear without scales")))?;
        if node.input.len() > 2 {
            return Err(bad(format!("{base}: zero points are not part of the format (symmetric only)")));
        }
        let format = match qt.data_type() {
            x if x == DataType::Int8 as i32 => {
                if attr("axis") != Some(1) {
                    return Err(bad(format!("{base}: int8 weights must be per-axis on axis 1")));
                }
                WeightFormat::I8
            }
            x if x == DataType::Int4 as i32 => match (attr("axis"), attr("block_size")) {
                (Some(0), Some(g)) if g > 0 => WeightFormat::I4 { group: g as usize },
                _ => return Err(bad(format!("{base}: int4 weights must be blocked on axis 0"))),
            },
            x if x == DataType::Float8e4m3fn as i32 => {
                if attr("axis") != Some(1) {
                    return Err(bad(format!("{base}: fp8 weights must be per-axis on axis 1")));
                }
                WeightFormat::F8
            }
            x => return Err(bad(format!("{base}: quantized data type {x}, expected int8, int4 or float8e4m3fn"))),
        };
        if format != m.precision {
            return Err(bad(format!(
                "{base} is stored as {}, but the manifest's precision is {}; the engine directory is damaged \
(re-run `trtforge convert --force`)",
                format.label(),
                m.precision_name()
            )));
        }
        let shape = param_shape(p, c); // (out, in)
        let (n_out, n_in) = (shape[0], shape[1]);
        let dims = Onnx::dims(qt);
        if dims != [stored_in(format, n_in), n_out] {
            return Err(bad(format!(
                "{base}: stored dims {dims:?}, expected [{}, {n_out}] for a ({n_out}, {n_in}) weight",
                stored_in(format, n_in)
            )));
        }
        let (_, sv) = o.floats(sname)?;
        let scales = sv.iter().map(|&v| f16::from_f32(v)).collect();
        let ql = QuantizedLinear::from_packed(format, n_in, n_out, o.raw(qt)?, scales)
            .map_err(|e| bad(format!("{base}: {e}")))?;
        qm.linears.insert(p, ql);
    }
    // fp8 activations: a MatMul whose weight is a dequantized linear and whose input is produced by a
    // DequantizeLinear (of a QuantizeLinear) with a scalar scale.
    let producer: HashMap<&str, &pb::NodeProto> =
        o.graph.node.iter().flat_map(|n| n.output.iter().map(move |out| (out.as_str(), n))).collect();
    for node in o.graph.node.iter().filter(|n| n.op_type() == "MatMul" && n.input.len() == 2) {
        let Some(&p) = by_name.get(node.input[1].as_str()) else { continue };
        if !qm.linears.contains_key(&p) {
            continue;
        }
        let Some(dq) = producer.get(node.input[0].as_str()).filter(|n| n.op_type() == "DequantizeLinear") else {
            continue;
        };
        let sname = dq.input.get(1).ok_or_else(|| bad(format!("{}: DequantizeLinear without a scale", dq.name())))?;
        let (dims, sv) = o.floats(sname)?;
        if !dims.is_empty() || sv.len() != 1 {
            return Err(bad(format!("{sname}: activation scales must be scalars (per tensor), got dims {dims:?}")));
        }
        qm.input_scales.insert(p, f16::from_f32(sv[0]));
    }
    Ok(qm)
}

/// The quantized linears of an engine directory, exactly as stored (codes, f16 scales, layout).
/// Empty for float engines.
pub fn load_quantized_weights(dir: &Path) -> Result<QuantizedModel> {
    let m = Manifest::load(dir)?;
    m.check_files(dir)?;
    let o = Onnx::open(dir, &m)?;
    read_quantized(&o, &m)
}

/// Everything an engine directory's ONNX computes with.
pub struct EngineWeights {
    /// f32 weights: float initializers widened, quantized linears dequantized as `DequantizeLinear`
    /// does (`f16(q · scale)`), AWQ scales already folded in.
    pub weights: ModelWeights,
    pub quantized: QuantizedModel,
}

/// Reads all weights of an engine directory (see [`EngineWeights`]).
pub fn load_engine_weights(dir: &Path) -> Result<EngineWeights> {
    let m = Manifest::load(dir)?;
    m.check_files(dir)?;
    let o = Onnx::open(dir, &m)?;
    let c = m.model_config.clone();
    let quantized = read_quantized(&o, &m)?;
    let get = |p: Param| -> Result<Tensor> {
        let shape = param_shape(p, &c);
        if let Some(q) = quantized.get(p) {
            return Ok(q.dequantize());
        }
        let name = tensor_name(p, NameScheme::Hf);
        let (dims, v) = o.floats(&name)?;
        if shape.len() == 2 && p != Param::Embed {
            // Float linears are stored transposed, (in, out).
            let (n_out, n_in) = (shape[0], shape[1]);
            if dims != [n_in, n_out] {
                return Err(Error::format(&o.path, format!("{name}: dims {dims:?}, expected [{n_in}, {n_out}]")));
            }
            let mut t = vec![0.0f32; v.len()];
            for k in 0..n_in {
                for n in 0..n_out {
                    t[n * n_in + k] = v[k * n_out + n];
                }
            }
            return Ok(Tensor::new(shape, t));
        }
        if dims != shape {
            return Err(Error::format(&o.path, format!("{name}: dims {dims:?}, expected {shape:?}")));
        }
        Ok(Tensor::new(shape, v))
    };
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for l in 0..c.num_hidden_layers {
        layers.push(LayerWeights {
            attn_norm: get(Param::AttnNorm(l))?,
            wq: get(Param::Wq(l))?,
            wk: get(Param::Wk(l))?,
            wv: get(Param::Wv(l))?,
            wo: get(Param::Wo(l))?,
            ffn_norm: get(Param::FfnNorm(l))?,
            w_gate: get(Param::WGate(l))?,
            w_up: get(Param::WUp(l))?,
            w_down: get(Param::WDown(l))?,
        });
    }
    let weights = ModelWeights {
        embed: get(Param::Embed)?,
        final_norm: get(Param::FinalNorm)?,
        lm_head: if c.tie_word_embeddings { None } else { Some(get(Param::LmHead)?) },
        layers,
        config: c,
    };
    Ok(EngineWeights { weights, quantized })
}
