//! The `onnx.attention: tensorrt` form: a fixed-size KV cache updated in place with opset-24
//! `TensorScatter`, and opset-24 `Attention` — the ops TensorRT maps onto its KV-cache-update and
//! fused attention layers (see TensorRT's ONNX operator support). ONNX Runtime 1.31 runs the same graph, which is how
//! tests check it against the portable form.
//!
//! I/O (replacing the portable form's `attention_mask` and growing past/present):
//! `input_ids [batch, seq]`, `position_ids [batch, seq]`, `past_seq_lens [batch]` (tokens already
//! cached = where the new keys are written), `past_key_values.{i}.key|value [batch, kv_heads,
//! capacity, head_dim]` → `logits`, `present.{i}.key|value [batch, kv_heads, capacity, head_dim]`
//! (the same cache with the new tokens written). Slots past a sequence's length are masked.
//!
//! TensorRT-RTX 1.7 has dedicated attention kernels for fp16/bf16 only (an fp32 `Attention`
//! fails to build), so this form needs fp16.
use super::builder::{attr_i, attr_ints, d, dv, value_info, FloatType, GraphBuilder};
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
use crate::proto as pb;

/// `TensorScatter` and `nonpad`-capable `Attention` are opset 24.
pub const OPSET: i64 = 24;
/// Name of the shared bool mask (batch, 1, seq, capacity).
const MASK: &str = "trt_attention_mask";

pub fn check(dt: FloatType) -> Result<()> {
    if dt != FloatType::F16 {
        return Err(Error::Unsupported(format!(
            "onnx.attention: tensorrt needs fp16 activations (TensorRT's fused attention kernels take fp16/bf16), \
but the model is exported as {}; use precision fp16, or attention: portable",
            dt.name()
        )));
    }
    Ok(())
}

pub fn input_names(n_layers: usize) -> Vec<String> {
    let mut v = vec!["input_ids".to_string(), "position_ids".into(), "past_seq_lens".into()];
    for i in 0..n_layers {
        v.push(format!("past_key_values.{i}.key"));
        v.push(format!("past_key_values.{i}.value"));
    }
    v
}

/// Graph inputs and outputs of this form.
pub fn io(c: &LlamaConfig, dt: FloatType, capacity: usize) -> (Vec<pb::ValueInfoProto>, Vec<pb::ValueInfoProto>) {
    let i64t = pb::tensor_proto::DataType::Int64 as i32;
    let f = match dt {
        FloatType::F32 => pb::tensor_proto::DataType::Float as i32,
        FloatType::F16 => pb::tensor_proto::DataType::Float16 as i32,
    };
    let kv = || vec![d("batch"), dv(c.num_key_value_heads as i64), dv(capacity as i64), dv(c.head_dim as i64)];
    let mut ins = vec![
        value_info("input_ids", i64t, vec![d("batch"), d("seq")]),
        value_info("position_ids", i64t, vec![d("batch"), d("seq")]),
        value_info("past_seq_lens", i64t, vec![d("batch")]),
    ];
    let mut outs = vec![value_info(
        "logits",
        pb::tensor_proto::DataType::Float as i32,
        vec![d("batch"), d("seq"), dv(c.vocab_size as i64)],
    )];
    for i in 0..c.num_hidden_layers {
        for kind in ["key", "value"] {
            ins.push(value_info(&format!("past_key_values.{i}.{kind}"), f, kv()));
            outs.push(value_info(&format!("present.{i}.{kind}"), f, kv()));
        }
    }
    (ins, outs)
}

/// Emits one layer's attention: cache update + fused attention. q (b, s, heads·hd), k and v
/// (b, s, kv_heads·hd), RoPE already applied. Returns (b, s, heads·hd).
pub(crate) fn attention(
    g: &mut GraphBuilder,
    c: &LlamaConfig,
    capacity: usize,
    layer: usize,
    q: &str,
    k: &str,
    v: &str,
) -> Result<String> {
    let (nh, nkv, hd) = (c.num_attention_heads as i64, c.num_key_value_heads as i64, c.head_dim as i64);
    if layer == 0 {
        emit_mask(g, capacity);
    }
    let q4 = g.split_heads(q, nh, hd);
    let k4 = g.split_heads(k, nkv, hd);
    let v4 = g.split_heads(v, nkv, hd);
    let (pk, pv) = (format!("past_key_values.{layer}.key"), format!("past_key_values.{layer}.value"));
    let (ok, ov) = (format!("present.{layer}.key"), format!("present.{layer}.value"));
    // Writes the new (b, kv, s, hd) rows at past_seq_lens[b] along the sequence axis.
    g.op_to("TensorScatter", &[&pk, &k4, "past_seq_lens"], vec![attr_i("axis", 2)], &ok); // (b, kv, cap, hd)
    g.op_to("TensorScatter", &[&pv, &v4, "past_seq_lens"], vec![attr_i("axis", 2)], &ov);
    // GQA is native to Attention with 4-D inputs; scale defaults to 1/sqrt(hd). (TensorRT's parser
    // refuses `softmax_precision`; its kernels accumulate the softmax in f32 anyway.)
    let y = g.op("Attention", &[&q4, &ok, &ov, MASK], vec![]); // (b, h, s, hd)
    let y = g.op("Transpose", &[&y], vec![attr_ints("perm", &[0, 2, 1, 3])]); // (b, s, h, hd)
    let shp = g.const_i64(&[0, 0, nh * hd]);
    Ok(g.op("Reshape", &[&y, &shp], vec![]))
}

/// key slot j is visible to the query at position p iff j <= p: causal, and it hides the unwritten
/// slots beyond the sequence (position_ids are past + i). Bool (b, 1, s, capacity).
fn emit_mask(g: &mut GraphBuilder, capacity: usize) {
    let zero = g.init_i64("trt_mask_zero", &[], &[0]);
    let cap = g.init_i64("trt_mask_capacity", &[], &[capacity as i64]);
    let one = g.init_i64("trt_mask_one", &[], &[1]);
    let kpos = g.op("Range", &[&zero, &cap, &one], vec![]); // (cap)
    let ax = g.const_i64(&[1, 3]);
    let qpos = g.op("Unsqueeze", &["position_ids", &ax], vec![]); // (b, 1, s, 1)
    g.op_to("LessOrEqual", &[&kpos, &qpos], vec![], MASK); // (b, 1, s, cap)
}
