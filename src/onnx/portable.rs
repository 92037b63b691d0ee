//! The `onnx.attention: portable` form (opset 17): past/present KV concatenation and an additive
//! causal + padding mask from `attention_mask`, ops that ONNX Runtime and TensorRT both run.
//! I/O follows HF optimum: `input_ids [batch, seq]`, `attention_mask [batch, past+seq]`,
//! `position_ids [batch, seq]`, `past_key_values.{i}.key|value [batch, kv_heads, past, head_dim]`
//! → `logits [batch, seq, vocab]` (always f32), `present.{i}.key|value [batch, kv_heads, past+seq, head_dim]`.
use super::builder::{attr_i, attr_ints, d, dv, value_info, FloatType, GraphBuilder};
use crate::model::LlamaConfig;
use crate::proto as pb;

/// Opset of the portable form: ops that ONNX Runtime and TensorRT both run.
pub const OPSET: i64 = 17;
/// Additive mask value for disallowed keys (finite so fully masked rows stay NaN-free).
const MASK_MIN: f32 = -1e30;

pub fn input_names(n_layers: usize) -> Vec<String> {
    let mut v = vec!["input_ids".to_string(), "attention_mask".into(), "position_ids".into()];
    for i in 0..n_layers {
        v.push(format!("past_key_values.{i}.key"));
        v.push(format!("past_key_values.{i}.value"));
    }
    v
}

/// Graph inputs and outputs of this form.
pub fn io(c: &LlamaConfig, dt: FloatType) -> (Vec<pb::ValueInfoProto>, Vec<pb::ValueInfoProto>) {
    let dt = dt.onnx();
    let i64t = pb::tensor_proto::DataType::Int64 as i32;
    let kv = |b: &str, t: &str| vec![d(b), dv(c.num_key_value_heads as i64), d(t), dv(c.head_dim as i64)];
    let mut inputs = vec![
        value_info("input_ids", i64t, vec![d("batch"), d("seq")]),
        value_info("attention_mask", i64t, vec![d("batch"), d("total")]),
        value_info("position_ids", i64t, vec![d("batch"), d("seq")]),
    ];
    let mut outputs = vec![value_info(
        "logits",
        pb::tensor_proto::DataType::Float as i32,
        vec![d("batch"), d("seq"), dv(c.vocab_size as i64)],
    )];
    for i in 0..c.num_hidden_layers {
        inputs.push(value_info(&format!("past_key_values.{i}.key"), dt, kv("batch", "past")));
        inputs.push(value_info(&format!("past_key_values.{i}.value"), dt, kv("batch", "past")));
        outputs.push(value_info(&format!("present.{i}.key"), dt, kv("batch", "total")));
        outputs.push(value_info(&format!("present.{i}.value"), dt, kv("batch", "total")));
    }
    (inputs, outputs)
}

/// The portable form's per-graph state: the mask, built once and shared by every layer.
#[derive(Default)]
pub struct Portable {
    /// Additive attention bias, f32 (batch, 1, seq, total).
    mask: Option<String>,
}

impl Portable {
    /// Causal + padding mask as an additive f32 bias (batch, 1, seq, total), built once.
    fn mask(&mut self, g: &mut GraphBuilder) -> String {
        if let Some(m) = &self.mask {
            return m.clone();
        }
        let i1 = g.const_i64(&[1]);
        let shape_m = g.op("Shape", &["attention_mask"], vec![]);
        let shape_i = g.op("Shape", &["input_ids"], vec![]);
        let total = g.op("Gather", &[&shape_m, &i1], vec![attr_i("axis", 0)]); // [1]
        let seq = g.op("Gather", &[&shape_i, &i1], vec![attr_i("axis", 0)]); // [1]
        let past = g.op("Sub", &[&total, &seq], vec![]);
        let sq = |g: &mut GraphBuilder, x: &str| {
            let ax = g.const_i64(&[0]);
            g.op("Squeeze", &[x, &ax], vec![])
        };
        let (total_s, past_s) = (sq(g, &total), sq(g, &past));
        let zero = g.init_i64(&format!("zero_{}", g.nodes.len()), &[], &[0]);
        let one = g.init_i64(&format!("one_{}", g.nodes.len()), &[], &[1]);
        let kpos = g.op("Range", &[&zero, &total_s, &one], vec![]); // (total)
        let qpos = g.op("Range", &[&past_s, &total_s, &one], vec![]); // (seq)
        let qcol = g.op("Unsqueeze", &[&qpos, &i1], vec![]); // (seq, 1)
        let causal = g.op("LessOrEqual", &[&kpos, &qcol], vec![]); // (seq, total) bool
        let pad = g.op("Cast", &["attention_mask"], vec![attr_i("to", pb::tensor_proto::DataType::Bool as i64)]);
        let ax12 = g.const_i64(&[1, 2]);
        let pad4 = g.op("Unsqueeze", &[&pad, &ax12], vec![]); // (batch, 1, 1, total)
        let allowed = g.op("And", &[&causal, &pad4], vec![]); // (batch, 1, seq, total)
        let zf = g.scalar_f(0.0, FloatType::F32);
        let mf = g.scalar_f(MASK_MIN, FloatType::F32);
        let m = g.op("Where", &[&allowed, &zf, &mf], vec![]);
        self.mask = Some(m.clone());
        m
    }

    /// Grouped-query attention of one layer over past + new keys; writes `present.{layer}.*`.
    /// q (b, s, heads·hd), k/v (b, s, kv_heads·hd) → (b, s, heads·hd).
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &mut self,
        g: &mut GraphBuilder,
        c: &LlamaConfig,
        dt: FloatType,
        layer: usize,
        q: &str,
        k: &str,
        v: &str,
    ) -> String {
        let (nh, nkv, hd) = (c.num_attention_heads as i64, c.num_key_value_heads as i64, c.head_dim as i64);
        let mask = self.mask(g);
        let f16 = dt == FloatType::F16;
        let scale = g.scalar_f(1.0 / (hd as f32).sqrt(), FloatType::F32);
        let q4 = g.split_heads(q, nh, hd);
        let k4 = g.split_heads(k, nkv, hd);
        let v4 = g.split_heads(v, nkv, hd);
        let (pk, pv) = (format!("past_key_values.{layer}.key"), format!("past_key_values.{layer}.value"));
        let (ok, ov) = (format!("present.{layer}.key"), format!("present.{layer}.value"));
        g.op_to("Concat", &[&pk, &k4], vec![attr_i("axis", 2)], &ok); // (b, kv, total, hd)
        g.op_to("Concat", &[&pv, &v4], vec![attr_i("axis", 2)], &ov);
        let group = nh / nkv;
        let expand = |g: &mut GraphBuilder, x: &str| -> String {
            if group == 1 {
                return x.to_string();
            }
            // (b, kv, total, hd) → (b, kv, group, total, hd) → (b, heads, total, hd)
            let ax = g.const_i64(&[2]);
            let u = g.op("Unsqueeze", &[x, &ax], vec![]);
            let shp = g.const_i64(&[1, 1, group, 1, 1]);
            let e = g.op("Expand", &[&u, &shp], vec![]);
            let r = g.const_i64(&[0, nh, -1, hd]);
            g.op("Reshape", &[&e, &r], vec![])
        };
        let kx = expand(g, &ok);
        let vx = expand(g, &ov);
        let kt = g.op("Transpose", &[&kx], vec![attr_ints("perm", &[0, 1, 3, 2])]); // (b, h, hd, total)
        let s = g.op("MatMul", &[&q4, &kt], vec![]); // (b, h, s, total)
                                                     // Softmax in f32 whatever the model dtype.
        let s = if f16 { g.op("Cast", &[&s], vec![attr_i("to", 1)]) } else { s };
        let s = g.op("Mul", &[&s, &scale], vec![]);
        let s = g.op("Add", &[&s, &mask], vec![]);
        let p = g.op("Softmax", &[&s], vec![attr_i("axis", -1)]);
        let p = if f16 { g.op("Cast", &[&p], vec![attr_i("to", 10)]) } else { p };
        let o = g.op("MatMul", &[&p, &vx], vec![]); // (b, h, s, hd)
        let o = g.op("Transpose", &[&o], vec![attr_ints("perm", &[0, 2, 1, 3])]); // (b, s, h, hd)
        let shp = g.const_i64(&[0, 0, nh * hd]);
        g.op("Reshape", &[&o, &shp], vec![])
    }
}
