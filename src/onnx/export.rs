//! Writes the Llama graph as ONNX by walking [`crate::model::graph::forward`] with an op emitter;
//! attention is emitted by the configured form ([`super::portable`] or [`super::tensorrt`]).
use super::builder::{attr_i, attr_ints, GraphBuilder};
pub use super::builder::{FloatType, EXTERNAL_DATA_FILE};
use super::portable::{self, Portable};
use super::tensorrt;
use crate::engine_dir::config::AttentionForm;
use crate::error::{Error, Result};
use crate::model::graph::{forward, LlamaOps};
use crate::model::{ModelWeights, Param};
use crate::proto as pb;
use crate::quant::kv::{KvCacheDtype, KvRotation, KvScales};
use crate::quant::{QuantizedLinear, QuantizedModel, WeightFormat};

/// Opset of the portable form: ops that ONNX Runtime and TensorRT both run.
pub const OPSET_PORTABLE: i64 = portable::OPSET;
/// Opset of quantized models: `DequantizeLinear` with INT4 and `block_size` needs 21.
pub const OPSET_QUANTIZED: i64 = 21;
/// Protobuf messages are limited to 2 GiB; above this many weight bytes, weights go to an external file.
pub const EXTERNAL_DATA_THRESHOLD: usize = 1 << 30;
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Dtype of weights, activations and the KV cache.
    pub dtype: FloatType,
    pub attention: AttentionForm,
    /// Rows of the RoPE tables (the engine's max_seq_len).
    pub max_positions: usize,
    /// Force external data even for small models.
    pub force_external: bool,
    /// A quantized KV cache with static per-head scales: each layer's new K and V go through
    /// `QuantizeLinear → DequantizeLinear` before they enter the cache (portable form only).
    pub kv_cache: Option<(KvCacheDtype, KvScales)>,
    /// K smoothing: per (layer, kv head, channel) means of post-RoPE K, flat (layers · kv_dim). Each
    /// layer's new K goes through `Sub(k, kv_k_mean.{layer})` (a `[kv_heads · head_dim]` constant in
    /// the model dtype) before its Q/DQ and the cache: the cache holds `k − mean`, never added back.
    pub kv_k_mean: Option<Vec<f32>>,
    /// K rotation (`kv_rotate`): each layer's new K is rotated per kv head by `kv_rotate.{layer}`
    /// (diag(R, …, R), one R of head_dim × head_dim per kv head) before its Q/DQ and rotated back by
    /// `kv_unrotate.{layer}` (the same with Rᵀ) after, so
    /// the cache holds `Q(kR)·Rᵀ`: the rounding of the rotated key, scores as with q rotated.
    pub kv_rotation: Option<KvRotation>,
}

/// An exported model: the protobuf and, when external, the weight bytes it points to.
pub struct OnnxModel {
    pub model: pb::ModelProto,
    /// Default-domain opset of the model.
    pub opset: i64,
    /// Bytes of [`EXTERNAL_DATA_FILE`]; empty when weights are inline.
    pub external: Vec<u8>,
    pub input_names: Vec<String>,
    pub output_names: Vec<String>,
}

pub fn output_names(n_layers: usize) -> Vec<String> {
    let mut v = vec!["logits".to_string()];
    for i in 0..n_layers {
        v.push(format!("present.{i}.key"));
        v.push(format!("present.{i}.value"));
    }
    v
}

/// Exports the model at [`OPSET_PORTABLE`]. Weights are converted to `opts.dtype`.
pub fn export_llama(w: &ModelWeights, opts: &ExportOptions) -> Result<OnnxModel> {
    export_llama_with(w, opts, OPSET_PORTABLE, None)
}

/// Exports the model at `opset` (17..=21); the linears in `quant` become integer initializers +
/// `DequantizeLinear` (needs opset 21), everything else is converted to `opts.dtype`. The tensorrt
/// attention form always uses its own opset (24).
pub fn export_llama_with(
    w: &ModelWeights,
    opts: &ExportOptions,
    opset: i64,
    quant: Option<&QuantizedModel>,
) -> Result<OnnxModel> {
    if !(OPSET_PORTABLE..=OPSET_QUANTIZED).contains(&opset) {
        return Err(Error::Unsupported(format!(
            "ONNX opset {opset}: the exporter writes {OPSET_PORTABLE} to {OPSET_QUANTIZED}"
        )));
    }
    if quant.is_some_and(|q| !q.linears.is_empty()) && opset < OPSET_QUANTIZED {
        return Err(Error::Unsupported(format!(
            "quantized weights need opset {OPSET_QUANTIZED} (DequantizeLinear with int4 and block_size); got {opset}"
        )));
    }
    let trt_form = opts.attention == AttentionForm::Tensorrt;
    if trt_form {
        tensorrt::check(opts.dtype)?;
        if opts.kv_cache.is_some() || opts.kv_k_mean.is_some() || opts.kv_rotation.is_some() {
            return Err(Error::Unsupported(
                "a quantized KV cache is exported in the portable attention form only (the tensorrt form's cache is fp16)"
                    .into(),
            ));
        }
    }
    if opts.kv_cache.is_some() && opset < OPSET_QUANTIZED {
        return Err(Error::Unsupported(format!("a quantized KV cache needs opset {OPSET_QUANTIZED}; got {opset}")));
    }
    let opset = if trt_form { tensorrt::OPSET } else { opset };
    let c = &w.config;
    if let Some(m) = &opts.kv_k_mean {
        if m.len() != c.num_hidden_layers * c.kv_dim() {
            return Err(Error::Invalid(format!(
                "K means: {} values for {} layers × kv_dim {}",
                m.len(),
                c.num_hidden_layers,
                c.kv_dim()
            )));
        }
    }
    if let Some(r) = &opts.kv_rotation {
        if let Some(m) = r.mismatch(c.num_hidden_layers, c.head_dim) {
            return Err(Error::Invalid(m));
        }
    }
    let weight_bytes = c.param_count() * if opts.dtype == FloatType::F16 { 2 } else { 4 };
    let external = opts.force_external || weight_bytes > EXTERNAL_DATA_THRESHOLD;
    let mut e = Emitter {
        w,
        dt: opts.dtype,
        opset,
        quant,
        max_positions: opts.max_positions,
        g: GraphBuilder::new(external),
        rope_tables: None,
        portable: Portable::default(),
        weights: Default::default(),
        qdq_inputs: Default::default(),
        kv_cache: opts.kv_cache.as_ref(),
        kv_k_mean: opts.kv_k_mean.as_deref(),
        kv_rotation: opts.kv_rotation.as_ref(),
        attention: opts.attention,
    };
    let logits = forward(c, &mut e)?;
    let logits = if opts.dtype == FloatType::F16 { e.g.op("Cast", &[&logits], vec![attr_i("to", 1)]) } else { logits };
    e.g.op_to("Identity", &[&logits], vec![], "logits");

    let (inputs, outputs) =
        if trt_form { tensorrt::io(c, opts.dtype, opts.max_positions) } else { portable::io(c, opts.dtype) };
    let g = e.g;
    let graph = pb::GraphProto {
        name: Some("trtforge_llama".into()),
        node: g.nodes,
        initializer: g.inits,
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    let model = pb::ModelProto {
        // IR 10 (ONNX 1.16) introduced opset 21 and the INT4 type.
        ir_version: Some(if opset >= 21 { 10 } else { 8 }),
        opset_import: vec![pb::OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        producer_name: Some("trtforge".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        ..Default::default()
    };
    Ok(OnnxModel {
        model,
        opset,
        external: g.external.unwrap_or_default(),
        input_names: if trt_form {
            tensorrt::input_names(c.num_hidden_layers)
        } else {
            portable::input_names(c.num_hidden_layers)
        },
        output_names: output_names(c.num_hidden_layers),
    })
}

/// Emits ONNX nodes for each op of the Llama graph.
struct Emitter<'a> {
    w: &'a ModelWeights,
    dt: FloatType,
    opset: i64,
    /// Linears stored as integers + scales (see docs/formats.md).
    quant: Option<&'a QuantizedModel>,
    max_positions: usize,
    g: GraphBuilder,
    /// (cos, sin) gathered at position_ids, each (batch, seq, 1, head_dim/2).
    rope_tables: Option<(String, String)>,
    /// The portable form's state (its shared mask).
    portable: Portable,
    /// Initializer names of weights already emitted (tied weights are stored once).
    weights: std::collections::HashMap<Param, String>,
    /// fp8 activations: the fake-quantized value of each linear input already emitted (q/k/v and
    /// gate/up share one Q/DQ pair).
    qdq_inputs: std::collections::HashMap<String, String>,
    kv_cache: Option<&'a (KvCacheDtype, KvScales)>,
    kv_k_mean: Option<&'a [f32]>,
    kv_rotation: Option<&'a KvRotation>,
    attention: AttentionForm,
}

impl Emitter<'_> {
    /// The weight as a (in, out) matrix for MatMul, or a norm vector, emitted once.
    fn weight(&mut self, p: Param) -> String {
        let p = if p == Param::LmHead && self.w.lm_head.is_none() { Param::Embed } else { p };
        if let Some(n) = self.weights.get(&p) {
            return n.clone();
        }
        let t = self.w.get(p);
        let name = param_onnx_name(p);
        let n = if let Some(ql) = self.quant.and_then(|q| q.get(p)) {
            self.dequantized_weight(&name, ql)
        } else if t.shape.len() == 2 && p != Param::Embed {
            // Linear weights are stored transposed, (in, out), so the graph is a plain MatMul.
            let (rows, cols) = (t.rows(), t.cols());
            let mut tr = vec![0.0f32; t.numel()];
            for r in 0..rows {
                for (c, v) in t.row(r).iter().enumerate() {
                    tr[c * rows + r] = *v;
                }
            }
            self.g.init_float(&name, &[cols, rows], &tr, self.dt)
        } else {
            self.g.init_float(&name, &t.shape, &t.data, self.dt)
        };
        self.weights.insert(p, n.clone());
        n
    }

    /// Integer initializer `{name}.qweight` (stored_in, out) + scales `{name}.scales` → DequantizeLinear
    /// → `{name}` (in, out) in the model dtype; a Slice drops the zero padding rows of an int4 weight
    /// whose input dimension is not a whole number of groups. Layout: docs/formats.md.
    fn dequantized_weight(&mut self, name: &str, ql: &QuantizedLinear) -> String {
        use pb::tensor_proto::DataType;
        let (n_in, n_out, k_stored) = (ql.in_features, ql.out_features, ql.stored_in());
        let (elem, attrs) = match ql.format {
            // Per-axis over the output channels (axis 1 of the stored (in, out) matrix).
            WeightFormat::I8 | WeightFormat::F32 | WeightFormat::F16 => {
                (DataType::Int8 as i32, vec![attr_i("axis", 1)])
            }
            // Blocks along the input dimension (axis 0).
            WeightFormat::I4 { group } => {
                (DataType::Int4 as i32, vec![attr_i("axis", 0), attr_i("block_size", group as i64)])
            }
            // E4M3 codes, per-axis over the output channels like int8.
            WeightFormat::F8 => (DataType::Float8e4m3fn as i32, vec![attr_i("axis", 1)]),
        };
        let qn = self.g.init_raw(&format!("{name}.qweight"), &[k_stored, n_out], elem, ql.packed());
        let scales: Vec<f32> = ql.scales.iter().map(|s| s.to_f32()).collect();
        let sn = self.g.init_float(&format!("{name}.scales"), &ql.scales_shape(), &scales, self.dt);
        if k_stored == n_in {
            self.g.op_to("DequantizeLinear", &[&qn, &sn], attrs, name);
            return name.to_string();
        }
        let dq = format!("{name}.padded");
        self.g.op_to("DequantizeLinear", &[&qn, &sn], attrs, &dq);
        let (st, en, ax) = (self.g.const_i64(&[0]), self.g.const_i64(&[n_in as i64]), self.g.const_i64(&[0]));
        self.g.op_to("Slice", &[&dq, &st, &en, &ax], vec![], name);
        name.to_string()
    }

    /// `DequantizeLinear(QuantizeLinear(x, s, 0), s, 0)` with `elem` codes (FLOAT8E4M3FN or INT8) and
    /// scales `scales` in the model dtype: a scalar for per-tensor, else per-axis over the last axis.
    fn qdq(&mut self, x: &str, name: &str, scales: &[f32], elem: i32) -> String {
        let dims: Vec<usize> = if scales.len() == 1 { vec![] } else { vec![scales.len()] };
        let sn = self.g.init_float(&format!("{name}_scale"), &dims, scales, self.dt);
        let zn = self.g.init_raw(&format!("{name}_zero_point"), &dims, elem, vec![0u8; scales.len()]);
        let attrs = || if scales.len() == 1 { vec![] } else { vec![attr_i("axis", -1)] };
        let q = self.g.op("QuantizeLinear", &[x, &sn, &zn], attrs());
        self.g.op("DequantizeLinear", &[&q, &sn, &zn], attrs())
    }

    /// K smoothing: `k − mean` of layer `layer` (b, s, kv_heads·hd), the mean a constant
    /// `kv_k_mean.{layer}` broadcast over batch and sequence; `k` itself without means.
    fn kv_centre_k(&mut self, k: &str, layer: usize) -> String {
        let Some(m) = self.kv_k_mean else { return k.to_string() };
        let kvd = self.w.config.kv_dim();
        let mn = self.g.init_float(&format!("kv_k_mean.{layer}"), &[kvd], &m[layer * kvd..(layer + 1) * kvd], self.dt);
        self.g.op("Sub", &[k, &mn], vec![])
    }

    /// K rotation: `k (b, s, kv_heads·hd)` times layer `layer`'s R (or Rᵀ with `back`) per kv head,
    /// as one MatMul with the block-diagonal (kv_heads·hd)² matrix diag(R, …, R): no reshapes to
    /// heads and back (ONNX Runtime's CPU provider pays per node: 120 Reshapes were 2.4 ms of a
    /// SmolLM2 decode step); `k` itself without a rotation.
    fn kv_rotate_k(&mut self, k: &str, layer: usize, back: bool) -> String {
        let Some(r) = self.kv_rotation else { return k.to_string() };
        let c = &self.w.config;
        let (hd, kvh) = (c.head_dim, c.num_key_value_heads);
        let m = r.matrix(layer);
        let kvd = kvh * hd;
        let mut bd = vec![0.0f32; kvd * kvd];
        for h in 0..kvh {
            for i in 0..hd {
                for j in 0..hd {
                    // R[i][j] (or Rᵀ[i][j] = R[j][i]) at row h·hd + i, column h·hd + j.
                    bd[(h * hd + i) * kvd + h * hd + j] = if back { m[j * hd + i] } else { m[i * hd + j] };
                }
            }
        }
        let name = if back { format!("kv_unrotate.{layer}") } else { format!("kv_rotate.{layer}") };
        let mn = self.g.init_float(&name, &[kvd, kvd], &bd, self.dt);
        self.g.op("MatMul", &[k, &mn], vec![])
    }

    /// A new K or V (b, s, kv_heads·hd) rounded to the cache dtype with per-head scales.
    fn kv_qdq(&mut self, x: &str, layer: usize, kind: &str) -> String {
        use pb::tensor_proto::DataType;
        let Some((dtype, sc)) = self.kv_cache else { return x.to_string() };
        let heads = if kind == "key" { &sc.k[layer] } else { &sc.v[layer] };
        let hd = self.w.config.head_dim;
        let per_elem: Vec<f32> = heads.iter().flat_map(|&s| std::iter::repeat_n(s, hd)).collect();
        let elem = match dtype {
            KvCacheDtype::Fp8 => DataType::Float8e4m3fn as i32,
            KvCacheDtype::Int8 => DataType::Int8 as i32,
            KvCacheDtype::Fp16 => return x.to_string(),
        };
        self.qdq(x, &format!("kv_scale.{layer}.{kind}"), &per_elem, elem)
    }

    fn rope_tables(&mut self) -> (String, String) {
        if let Some(t) = &self.rope_tables {
            return t.clone();
        }
        let c = &self.w.config;
        let half = c.head_dim / 2;
        let inv = c.rope_inv_freq();
        let n = self.max_positions;
        let (mut cos, mut sin) = (vec![0.0f32; n * half], vec![0.0f32; n * half]);
        for p in 0..n {
            for (i, f) in inv.iter().enumerate() {
                let a = p as f32 * f;
                cos[p * half + i] = a.cos();
                sin[p * half + i] = a.sin();
            }
        }
        let ct = self.g.init_float("rope_cos", &[n, half], &cos, self.dt);
        let st = self.g.init_float("rope_sin", &[n, half], &sin, self.dt);
        let axes = self.g.const_i64(&[2]);
        let cg = self.g.op("Gather", &[&ct, "position_ids"], vec![attr_i("axis", 0)]); // (b, s, half)
        let sg = self.g.op("Gather", &[&st, "position_ids"], vec![attr_i("axis", 0)]);
        let cu = self.g.op("Unsqueeze", &[&cg, &axes], vec![]); // (b, s, 1, half)
        let su = self.g.op("Unsqueeze", &[&sg, &axes], vec![]);
        self.rope_tables = Some((cu.clone(), su.clone()));
        (cu, su)
    }
}

fn param_onnx_name(p: Param) -> String {
    // HF names: readable in Netron and in TensorRT's layer names.
    crate::model::weights::tensor_name(p, crate::model::weights::NameScheme::Hf)
}

impl LlamaOps for Emitter<'_> {
    type T = String;

    fn embed(&mut self) -> Result<String> {
        let e = self.weight(Param::Embed);
        Ok(self.g.op("Gather", &[&e, "input_ids"], vec![attr_i("axis", 0)])) // (b, s, hidden)
    }

    fn rms_norm(&mut self, x: &String, w: Param) -> Result<String> {
        let wn = self.weight(w);
        let eps = self.g.scalar_f(self.w.config.rms_norm_eps, FloatType::F32);
        let f16 = self.dt == FloatType::F16;
        // Accumulate in f32 whatever the model dtype, as HF does.
        let xf = if f16 { self.g.op("Cast", &[x], vec![attr_i("to", 1)]) } else { x.clone() };
        let sq = self.g.op("Mul", &[&xf, &xf], vec![]);
        // Opset 18 moved ReduceMean's axes from an attribute to an input.
        let ms = if self.opset >= 18 {
            let axes = self.g.const_i64(&[-1]);
            self.g.op("ReduceMean", &[&sq, &axes], vec![attr_i("keepdims", 1)])
        } else {
            self.g.op("ReduceMean", &[&sq], vec![attr_ints("axes", &[-1]), attr_i("keepdims", 1)])
        };
        let ve = self.g.op("Add", &[&ms, &eps], vec![]);
        let rs = self.g.op("Sqrt", &[&ve], vec![]);
        let inv = self.g.op("Reciprocal", &[&rs], vec![]);
        let n = self.g.op("Mul", &[&xf, &inv], vec![]);
        let n = if f16 { self.g.op("Cast", &[&n], vec![attr_i("to", 10)]) } else { n };
        Ok(self.g.op("Mul", &[&n, &wn], vec![]))
    }

    fn linear(&mut self, x: &String, w: Param) -> Result<String> {
        let tied_head = w == Param::LmHead && self.w.lm_head.is_none();
        let wn = self.weight(w);
        let x = match self.quant.and_then(|q| q.input_scale(w)) {
            // fp8 activations: the static per-tensor Q/DQ pair TensorRT fuses with the weight's DQ
            // into an FP8 GEMM; shared by the linears that read the same input.
            Some(s) => match self.qdq_inputs.get(x) {
                Some(n) => n.clone(),
                None => {
                    let name = format!("{}.input", param_onnx_name(w));
                    let n = self.qdq(x, &name, &[s.to_f32()], pb::tensor_proto::DataType::Float8e4m3fn as i32);
                    self.qdq_inputs.insert(x.clone(), n.clone());
                    n
                }
            },
            None => x.clone(),
        };
        let x = &x;
        let wn = if tied_head {
            // Tied: the embedding (vocab, hidden) is stored once and transposed in the graph.
            self.g.op("Transpose", &[&wn], vec![attr_ints("perm", &[1, 0])])
        } else {
            wn
        };
        Ok(self.g.op("MatMul", &[x, &wn], vec![]))
    }

    fn rope(&mut self, x: &String, n_heads: usize) -> Result<String> {
        let hd = self.w.config.head_dim as i64;
        let (cos, sin) = self.rope_tables();
        let g = &mut self.g;
        let shp = g.const_i64(&[0, 0, n_heads as i64, hd]);
        let x4 = g.op("Reshape", &[x, &shp], vec![]); // (b, s, h, hd)
        let (s0, s1, s2) = (g.const_i64(&[0]), g.const_i64(&[hd / 2]), g.const_i64(&[hd]));
        let ax = g.const_i64(&[3]);
        let x1 = g.op("Slice", &[&x4, &s0, &s1, &ax], vec![]); // (b, s, h, hd/2)
        let x2 = g.op("Slice", &[&x4, &s1, &s2, &ax], vec![]);
        let a = g.op("Mul", &[&x1, &cos], vec![]);
        let b = g.op("Mul", &[&x2, &sin], vec![]);
        let o1 = g.op("Sub", &[&a, &b], vec![]);
        let a = g.op("Mul", &[&x2, &cos], vec![]);
        let b = g.op("Mul", &[&x1, &sin], vec![]);
        let o2 = g.op("Add", &[&a, &b], vec![]);
        let o = g.op("Concat", &[&o1, &o2], vec![attr_i("axis", 3)]);
        let back = g.const_i64(&[0, 0, n_heads as i64 * hd]);
        Ok(g.op("Reshape", &[&o, &back], vec![])) // (b, s, h·hd)
    }

    fn attention(&mut self, layer: usize, q: &String, k: &String, v: &String) -> Result<String> {
        if self.attention == AttentionForm::Tensorrt {
            return tensorrt::attention(&mut self.g, &self.w.config, self.max_positions, layer, q, k, v);
        }
        let k = self.kv_centre_k(k, layer);
        let k = self.kv_rotate_k(&k, layer, false);
        let k = self.kv_qdq(&k, layer, "key");
        let k = self.kv_rotate_k(&k, layer, true);
        let v = self.kv_qdq(v, layer, "value");
        Ok(self.portable.attention(&mut self.g, &self.w.config, self.dt, layer, q, &k, &v))
    }

    fn swiglu(&mut self, gate: &String, up: &String) -> Result<String> {
        let sg = self.g.op("Sigmoid", &[gate], vec![]);
        let silu = self.g.op("Mul", &[gate, &sg], vec![]);
        Ok(self.g.op("Mul", &[&silu, up], vec![]))
    }

    fn add(&mut self, a: &String, b: &String) -> Result<String> {
        Ok(self.g.op("Add", &[a, b], vec![]))
    }

    fn select_outputs(&mut self, x: &String) -> Result<String> {
        Ok(x.clone()) // logits for every position, as optimum's models return
    }
}
