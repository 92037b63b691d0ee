//! Load-time rewrites of quantized engines' ONNX for ONNX Runtime's CPU kernels (issue #15).
//!
//! ONNX Runtime has no fused FP8 kernel on CPU: it constant-folds each FLOAT8E4M3FN weight
//! `DequantizeLinear` into an f32 initializer (the same MatMuls as the fp16 engine) and then runs the
//! activation `QuantizeLinear → DequantizeLinear` pairs of every linear input as separate nodes on
//! every step (120 pairs on SmolLM2; its FP8 conversion loops are scalar). That is what made fp8 engines
//! 0.81–0.89× the fp16 engine's decode speed through ONNX Runtime.
//!
//! [`fp8_for_matmulnbits`] turns the graph into the pattern ONNX Runtime fuses into its 8-bit
//! `MatMulNBits` kernel (what int8 engines run with `matmulnbits:4`):
//!
//! - each FP8 weight `DequantizeLinear(codes [in, out], row scales [out], axis 1)` becomes
//!   `DequantizeLinear(int8 [in, out], scales [in/block, out], axis 0, block_size block)`: the
//!   dequantized fp8 weight `code · scale` is re-rounded to int8 per block of `block` inputs of each
//!   output channel (scale = block absmax / 127 in the scale's own float type, round half to even,
//!   symmetric, no zero point). Weights whose input count is not a multiple of `block` stay FP8.
//! - each activation `QuantizeLinear → DequantizeLinear` pair with an FP8 zero point whose result
//!   only feeds MatMuls is removed: `MatMulNBits` at accuracy level 4 quantizes its input to int8 per
//!   block on the fly, in place of the static fp8 rounding. The KV cache's Q/DQ (feeding the past /
//!   present concatenation) stays.
//!
//! Numbers move (the stored fp8 weights are approximated on a finer int8 grid, the activation grid
//! changes): docs/quantization.md measures perplexity against the exported model.
//!
//! [`int4_unpad`] does the same for int4 engines whose input dimension is not a whole number of
//! groups (`pad_to_group`, e.g. SmolLM2's 576 inputs at group 128): the export stores the weight
//! zero-padded to whole groups and slices the dequantized matrix back (`DequantizeLinear → Slice →
//! MatMul`), which TensorRT needs; ONNX Runtime does not fuse that into `MatMulNBits` and instead ran
//! the int4 `DequantizeLinear` of every weight on every step (SmolLM2 int4 decoded at 2.1 tok/s
//! against fp16's 46). The rewrite drops the padding rows from the codes and the `Slice`, leaving a
//! blocked `DequantizeLinear` with a partial last block (valid ONNX: the scales keep
//! ⌈in / group⌉ blocks) feeding the `MatMul` directly — the same numbers (`exact` runs give
//! bit-identical logits), now fused.
use crate::error::{Error, Result};
use crate::proto as pb;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::builder::attr_i;

/// Block size of the re-rounded int8 weights (inputs per scale).
pub const FP8_NBITS_BLOCK: usize = 32;

/// What [`fp8_for_matmulnbits`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fp8Rewrite {
    /// FP8 weight initializers re-rounded to int8 blocks.
    pub weights: usize,
    /// FP8 weights left as they were (input count not a multiple of the block).
    pub weights_kept: usize,
    /// Activation QuantizeLinear → DequantizeLinear pairs removed.
    pub activation_pairs: usize,
}

const F8: i32 = pb::tensor_proto::DataType::Float8e4m3fn as i32;
const I8: i32 = pb::tensor_proto::DataType::Int8 as i32;
const F16: i32 = pb::tensor_proto::DataType::Float16 as i32;
const F32: i32 = pb::tensor_proto::DataType::Float as i32;

/// Moves external initializer data (`location`/`offset`/`length` relative to `dir`) into the
/// protobuf, so the rewritten model can be handed to ONNX Runtime from memory.
pub fn inline_external_data(model: &mut pb::ModelProto, dir: &Path) -> Result<()> {
    let Some(g) = model.graph.as_mut() else { return Ok(()) };
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for t in g.initializer.iter_mut() {
        if t.data_location != Some(pb::tensor_proto::DataLocation::External as i32) {
            continue;
        }
        let get = |k: &str| t.external_data.iter().find(|e| e.key.as_deref() == Some(k)).and_then(|e| e.value.clone());
        let name = t.name.clone().unwrap_or_default();
        let bad = |why: &str| Error::Invalid(format!("initializer {name}: external data {why}"));
        let loc = get("location").ok_or_else(|| bad("without a location"))?;
        if loc.contains('/') || loc.contains('\\') || loc.starts_with('.') {
            return Err(bad(&format!("location {loc:?} is not a plain file name")));
        }
        let off: usize = get("offset").map_or(Ok(0), |v| v.parse()).map_err(|_| bad("offset"))?;
        if !files.contains_key(&loc) {
            let p = dir.join(&loc);
            files.insert(loc.clone(), std::fs::read(&p).map_err(|e| Error::io(&p, e))?);
        }
        let data = &files[&loc];
        let len: usize = match get("length") {
            Some(v) => v.parse().map_err(|_| bad("length"))?,
            None => data.len().saturating_sub(off),
        };
        let bytes = data.get(off..off + len).ok_or_else(|| bad("beyond the end of its file"))?;
        t.raw_data = Some(bytes.to_vec());
        t.data_location = None;
        t.external_data.clear();
    }
    Ok(())
}

fn f16_bits(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_le_bytes()
}

/// Floats of a 1-D f16/f32 initializer (raw data only, as trtforge writes them).
fn floats(t: &pb::TensorProto) -> Option<Vec<f32>> {
    let raw = t.raw_data.as_deref()?;
    match t.data_type? {
        F16 => Some(raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()),
        F32 => Some(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        _ => None,
    }
}

/// Re-rounds a dequantized weight `w` ([k, n] row-major: input-major as MatMul's B) to int8 per
/// block of `block` inputs of each column; returns (codes [k, n], scales [k / block, n]) with the
/// scales as stored in `scale_type` (f16 or f32) and the codes computed against that stored scale.
pub fn int8_blocks(w: &[f32], k: usize, n: usize, block: usize, scale_type: i32) -> (Vec<i8>, Vec<f32>) {
    let nb = k / block;
    let mut codes = vec![0i8; k * n];
    let mut scales = vec![0f32; nb * n];
    for b in 0..nb {
        for j in 0..n {
            let amax = (b * block..(b + 1) * block).map(|i| w[i * n + j].abs()).fold(0f32, f32::max);
            let s = amax / 127.0;
            let s = if scale_type == F16 { half::f16::from_f32(s).to_f32() } else { s };
            scales[b * n + j] = s;
            if s > 0.0 {
                for i in b * block..(b + 1) * block {
                    codes[i * n + j] = (w[i * n + j] / s).round_ties_even().clamp(-127.0, 127.0) as i8;
                }
            }
        }
    }
    (codes, scales)
}

/// The graph of `model`, or an error for a model without one.
fn graph_mut(model: &mut pb::ModelProto) -> Result<&mut pb::GraphProto> {
    model.graph.as_mut().ok_or_else(|| Error::Invalid("ONNX model without a graph".into()))
}

/// Where each named initializer sits in `g.initializer`.
fn initializer_positions(g: &pb::GraphProto) -> HashMap<String, usize> {
    g.initializer.iter().enumerate().filter_map(|(i, t)| t.name.clone().map(|n| (n, i))).collect()
}

/// How many node inputs read each name.
fn reader_counts(g: &pb::GraphProto) -> HashMap<&str, usize> {
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for x in g.node.iter().flat_map(|n| n.input.iter()) {
        *readers.entry(x.as_str()).or_default() += 1;
    }
    readers
}

/// Removes the nodes at the positions in `drop`, keeping the others' order.
fn remove_nodes(g: &mut pb::GraphProto, drop: &HashSet<usize>) {
    let nodes = std::mem::take(&mut g.node);
    g.node = nodes.into_iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, n)| n).collect();
}

/// Whether a node's third input, a DequantizeLinear's zero point, is given.
fn has_zero_point(n: &pb::NodeProto) -> bool {
    n.input.len() == 3 && !n.input[2].is_empty()
}

/// MatMulNBits takes blocks of a power of two ≥ 16 inputs.
fn check_nbits_block(block: usize) -> Result<()> {
    if block < 16 || !block.is_power_of_two() {
        return Err(Error::Invalid(format!("MatMulNBits block size {block}: expected a power of two >= 16")));
    }
    Ok(())
}

fn attr_int(n: &pb::NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name)).and_then(|a| a.i)
}

/// The rewrite described in the module docs, in place. `block` must be a power of two ≥ 16 (what
/// ONNX Runtime's MatMulNBits accepts).
pub fn fp8_for_matmulnbits(model: &mut pb::ModelProto, block: usize) -> Result<Fp8Rewrite> {
    check_nbits_block(block)?;
    let g = graph_mut(model)?;
    let mut out = Fp8Rewrite::default();
    let init_pos = initializer_positions(g);
    let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for x in &n.input {
            consumers.entry(x.clone()).or_default().push(i);
        }
    }
    let op = |i: usize| g.node[i].op_type.as_deref().unwrap_or("");
    let dtype = |name: &str| init_pos.get(name).and_then(|&p| g.initializer[p].data_type);

    // Activation Q → DQ pairs feeding only MatMuls.
    let mut drop: HashSet<usize> = HashSet::new();
    let mut rename: HashMap<String, String> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        if n.op_type.as_deref() != Some("QuantizeLinear") || n.input.len() < 3 || init_pos.contains_key(&n.input[0]) {
            continue;
        }
        if dtype(&n.input[2]) != Some(F8) {
            continue;
        }
        let Some(c) = consumers.get(&n.output[0]) else { continue };
        if c.len() != 1 || op(c[0]) != "DequantizeLinear" {
            continue;
        }
        let dq = &g.node[c[0]];
        let users = consumers.get(&dq.output[0]).map(|v| v.as_slice()).unwrap_or(&[]);
        if users.is_empty() || !users.iter().all(|&u| op(u) == "MatMul") {
            continue;
        }
        if g.output.iter().any(|o| o.name.as_deref() == Some(dq.output[0].as_str())) {
            continue;
        }
        drop.insert(i);
        drop.insert(c[0]);
        rename.insert(dq.output[0].clone(), n.input[0].clone());
        out.activation_pairs += 1;
    }

    // FP8 weight DQ → int8 blocks.
    let mut edits: Vec<(usize, usize, usize, usize, usize)> = Vec::new(); // node, codes init, scale init, k, n
    for (i, n) in g.node.iter().enumerate() {
        if n.op_type.as_deref() != Some("DequantizeLinear") || n.input.len() < 2 || n.input.len() > 3 {
            continue;
        }
        let (Some(&qp), Some(&sp)) = (init_pos.get(&n.input[0]), init_pos.get(&n.input[1])) else { continue };
        let (q, s) = (&g.initializer[qp], &g.initializer[sp]);
        if q.data_type != Some(F8) || q.dims.len() != 2 || s.dims.len() != 1 || attr_int(n, "axis") != Some(1) {
            continue;
        }
        if has_zero_point(n) {
            continue; // trtforge writes weight DQs without zero points
        }
        let (k, nn) = (q.dims[0] as usize, q.dims[1] as usize);
        if s.dims[0] as usize != nn || !matches!(s.data_type, Some(F16) | Some(F32)) {
            continue;
        }
        if k % block != 0 {
            out.weights_kept += 1;
            continue;
        }
        edits.push((i, qp, sp, k, nn));
    }
    let table = crate::quant::fp8::decode_table();
    for (ni, qp, sp, k, n) in edits {
        let name = g.initializer[qp].name.clone().unwrap_or_default();
        let raw = g.initializer[qp]
            .raw_data
            .as_deref()
            .filter(|r| r.len() == k * n)
            .ok_or_else(|| Error::Invalid(format!("{name}: FP8 weight without raw data of {k}x{n} bytes")))?;
        let row = floats(&g.initializer[sp]).ok_or_else(|| Error::Invalid(format!("{name}: unreadable scales")))?;
        let w: Vec<f32> = raw.iter().enumerate().map(|(i, &c)| table[c as usize] * row[i % n]).collect();
        let st = g.initializer[sp].data_type.unwrap_or(F16);
        let (codes, scales) = int8_blocks(&w, k, n, block, st);
        let qt = &mut g.initializer[qp];
        qt.data_type = Some(I8);
        qt.raw_data = Some(codes.iter().map(|&c| c as u8).collect());
        let stt = &mut g.initializer[sp];
        stt.dims = vec![(k / block) as i64, n as i64];
        stt.raw_data = Some(if st == F16 {
            scales.iter().flat_map(|&x| f16_bits(x)).collect()
        } else {
            scales.iter().flat_map(|x| x.to_le_bytes()).collect()
        });
        let node = &mut g.node[ni];
        node.input.truncate(2);
        node.attribute = vec![attr_i("axis", 0), attr_i("block_size", block as i64)];
        out.weights += 1;
    }

    if !drop.is_empty() {
        remove_nodes(g, &drop);
        for n in g.node.iter_mut() {
            for x in n.input.iter_mut() {
                if let Some(r) = rename.get(x) {
                    *x = r.clone();
                }
            }
        }
        // Drop the activation scales / zero points nothing reads any more.
        drop_unused_initializers(g);
    }
    Ok(out)
}

/// Block length [`int8_blocked`] gives per-channel int8 weights: measured fastest of 32 / 64 / 128 on
/// SmolLM2 (ONNX Runtime 1.31, 2 threads: prefill 128 144 / 159 / 157 ms, per-channel 167).
pub const INT8_NBITS_BLOCK: usize = 64;

/// Per-channel int8 weights as blocked ones, in place: every `DequantizeLinear(int8 codes [k, n],
/// scales [n], axis 1)` becomes `DequantizeLinear(same codes, scales [k / block, n] (each row the
/// per-channel scales), axis 0, block_size block)` where `block` divides k. The dequantized weights
/// are the same numbers; ONNX Runtime fuses both forms into `MatMulNBits`, and its blocked 8-bit kernel
/// runs SmolLM2 ≈ 13 % faster in prefill and decode than the per-channel one. Returns how many weights
/// it changed.
pub fn int8_blocked(model: &mut pb::ModelProto, block: usize) -> Result<usize> {
    check_nbits_block(block)?;
    let g = graph_mut(model)?;
    let init_pos = initializer_positions(g);
    // A scale initializer read by two weights would be replicated twice: count the readers.
    let readers = reader_counts(g);
    let mut edits: Vec<(usize, usize, usize, usize)> = Vec::new(); // node, scale init, k, n
    for (i, n) in g.node.iter().enumerate() {
        if n.op_type.as_deref() != Some("DequantizeLinear") || n.input.len() < 2 || attr_int(n, "axis") != Some(1) {
            continue;
        }
        if has_zero_point(n) {
            continue; // trtforge writes weight DQs without zero points
        }
        let (Some(&qp), Some(&sp)) = (init_pos.get(&n.input[0]), init_pos.get(&n.input[1])) else { continue };
        let (q, s) = (&g.initializer[qp], &g.initializer[sp]);
        if q.data_type != Some(I8)
            || q.dims.len() != 2
            || s.dims.len() != 1
            || readers.get(n.input[1].as_str()) != Some(&1)
        {
            continue;
        }
        let (k, nn) = (q.dims[0] as usize, q.dims[1] as usize);
        if s.dims[0] as usize != nn || k % block != 0 || !matches!(s.data_type, Some(F16) | Some(F32)) {
            continue;
        }
        let bytes = if s.data_type == Some(F16) { 2 } else { 4 };
        if s.raw_data.as_ref().map(|r| r.len()) != Some(nn * bytes) {
            continue;
        }
        edits.push((i, sp, k, nn));
    }
    for &(ni, sp, k, n) in &edits {
        let st = &mut g.initializer[sp];
        let row = st.raw_data.take().unwrap_or_default();
        st.raw_data = Some(row.repeat(k / block));
        st.dims = vec![(k / block) as i64, n as i64];
        g.node[ni].attribute = vec![attr_i("axis", 0), attr_i("block_size", block as i64)];
    }
    Ok(edits.len())
}

/// Removes initializers that no node reads and no graph output names.
fn drop_unused_initializers(g: &mut pb::GraphProto) {
    let used: HashSet<&str> = g.node.iter().flat_map(|n| n.input.iter().map(|s| s.as_str())).collect();
    let outputs: HashSet<&str> = g.output.iter().filter_map(|o| o.name.as_deref()).collect();
    let keep: Vec<bool> = g
        .initializer
        .iter()
        .map(|t| t.name.as_deref().is_some_and(|n| used.contains(n) || outputs.contains(n)))
        .collect();
    let inits = std::mem::take(&mut g.initializer);
    g.initializer = inits.into_iter().zip(keep).filter(|(_, k)| *k).map(|(t, _)| t).collect();
}

const I4: i32 = pb::tensor_proto::DataType::Int4 as i32;
const I64: i32 = pb::tensor_proto::DataType::Int64 as i32;

/// The values of a 1-D int64 initializer (raw data, as trtforge writes them).
fn int64s(t: &pb::TensorProto) -> Option<Vec<i64>> {
    if t.data_type != Some(I64) {
        return None;
    }
    match t.raw_data.as_deref() {
        Some(raw) => Some(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
        None => Some(t.int64_data.clone()),
    }
}

/// The first `n` int4 values of packed `raw` (two a byte, low nibble first, as ONNX packs INT4), packed
/// the same way; an odd count leaves the last byte's high nibble zero.
fn int4_prefix(raw: &[u8], n: usize) -> Vec<u8> {
    let mut out = raw[..n.div_ceil(2)].to_vec();
    if n % 2 == 1 {
        if let Some(last) = out.last_mut() {
            *last &= 0x0f;
        }
    }
    out
}

/// The `int4_unpad` rewrite of the module docs, in place: every `DequantizeLinear(int4 codes [k, n],
/// scales [⌈in / g⌉, n], axis 0, block_size g) → Slice(0 .. in, axis 0)` whose dequantized matrix
/// only the Slice reads becomes `DequantizeLinear(codes [in, n], same scales)` writing the Slice's
/// output. Returns how many weights it trimmed.
pub fn int4_unpad(model: &mut pb::ModelProto) -> Result<usize> {
    let g = graph_mut(model)?;
    let init_pos = initializer_positions(g);
    let consumers = reader_counts(g);
    let producer: HashMap<&str, usize> =
        g.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |y| (y.as_str(), i))).collect();
    let outputs: HashSet<&str> = g.output.iter().filter_map(|o| o.name.as_deref()).collect();
    let ints = |name: &str| init_pos.get(name).and_then(|&p| int64s(&g.initializer[p]));
    // (slice node, dq node, codes initializer, rows kept)
    let mut edits: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (si, s) in g.node.iter().enumerate() {
        if s.op_type.as_deref() != Some("Slice") || !(3..=5).contains(&s.input.len()) {
            continue;
        }
        let Some(&di) = producer.get(s.input[0].as_str()) else { continue };
        let dq = &g.node[di];
        if dq.op_type.as_deref() != Some("DequantizeLinear") || dq.input.len() < 2 {
            continue;
        }
        if has_zero_point(dq) {
            continue; // trtforge writes weight DQs without zero points
        }
        if consumers.get(s.input[0].as_str()) != Some(&1) || outputs.contains(s.input[0].as_str()) {
            continue;
        }
        let (Some(&qp), Some(&sp)) = (init_pos.get(&dq.input[0]), init_pos.get(&dq.input[1])) else { continue };
        let (q, sc) = (&g.initializer[qp], &g.initializer[sp]);
        let (Some(block), Some(0)) = (attr_int(dq, "block_size"), attr_int(dq, "axis")) else { continue };
        if q.data_type != Some(I4) || q.dims.len() != 2 || sc.dims.len() != 2 || block <= 0 {
            continue;
        }
        let (k, n) = (q.dims[0], q.dims[1]);
        // Slice(data, starts [0], ends [rows], axes [0], steps [1]).
        let (Some(st), Some(en)) = (ints(&s.input[1]), ints(&s.input[2])) else { continue };
        let axes = if s.input.len() > 3 && !s.input[3].is_empty() { ints(&s.input[3]) } else { Some(vec![0]) };
        let steps = if s.input.len() > 4 && !s.input[4].is_empty() { ints(&s.input[4]) } else { Some(vec![1]) };
        let rows = match (st.as_slice(), en.as_slice(), axes.as_deref(), steps.as_deref()) {
            ([0], [e], Some([0]), Some([1])) if *e > 0 && *e < k => *e,
            _ => continue,
        };
        if sc.dims[0] != (rows + block - 1) / block || sc.dims[1] != n {
            continue; // the padding is more than the last group's: not what pad_to_group writes
        }
        let Some(raw) = q.raw_data.as_deref() else { continue };
        if raw.len() != ((k * n) as usize).div_ceil(2) {
            return Err(Error::Invalid(format!(
                "{}: INT4 initializer of {} bytes for {k}x{n} values",
                q.name.as_deref().unwrap_or("?"),
                raw.len()
            )));
        }
        edits.push((si, di, qp, rows as usize));
    }
    let mut drop: HashSet<usize> = HashSet::new();
    for &(si, di, qp, rows) in &edits {
        let q = &mut g.initializer[qp];
        let n = q.dims[1] as usize;
        q.raw_data = Some(int4_prefix(q.raw_data.as_deref().unwrap_or_default(), rows * n));
        q.dims[0] = rows as i64;
        let out = g.node[si].output[0].clone();
        g.node[di].output[0] = out;
        drop.insert(si);
    }
    if !drop.is_empty() {
        remove_nodes(g, &drop);
        drop_unused_initializers(g);
    }
    Ok(edits.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_blocks_round_against_the_stored_scale() {
        // 2 blocks of 16 inputs, 1 column; block 1 all zero.
        let mut w = vec![0f32; 32];
        for (i, x) in w.iter_mut().take(16).enumerate() {
            *x = (i as f32 - 7.3) * 0.01;
        }
        let (c, s) = int8_blocks(&w, 32, 1, 16, F16);
        let amax = w.iter().fold(0f32, |m, v| m.max(v.abs())); // 7.7 · 0.01
        assert_eq!(s[0], half::f16::from_f32(amax / 127.0).to_f32());
        assert_eq!(s[1], 0.0);
        for i in 0..16 {
            assert_eq!(c[i] as f32, (w[i] / s[0]).round_ties_even().clamp(-127.0, 127.0));
            // half a step, or the clamp at ±127 where the f16 scale rounded below amax / 127
            let clamp = (amax - 127.0 * s[0]).max(0.0);
            assert!((c[i] as f32 * s[0] - w[i]).abs() <= s[0] * 0.5 + clamp + 1e-7);
        }
        assert!(c[16..].iter().all(|&x| x == 0));
    }

    fn init(name: &str, ty: i32, dims: &[i64], raw: Vec<u8>) -> pb::TensorProto {
        pb::TensorProto {
            name: Some(name.into()),
            data_type: Some(ty),
            dims: dims.to_vec(),
            raw_data: Some(raw),
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
        pb::NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    fn i64s(v: &[i64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A weight of 5 real inputs stored as 8 (blocks of 4, 3 outputs: 15 codes kept of 24, an odd
    /// count), DQ → Slice → MatMul; a second padded weight whose dequantized matrix has a second reader.
    fn padded_model() -> pb::ModelProto {
        let codes: Vec<u8> = (0..12u8).map(|b| b.wrapping_mul(37) | 0x11).collect(); // 24 nibbles, none zero
        let blocked = || vec![attr_i("axis", 0), attr_i("block_size", 4)];
        let g = pb::GraphProto {
            initializer: vec![
                init("w.qweight", I4, &[8, 3], codes.clone()),
                init("w.scales", F16, &[2, 3], vec![0; 12]),
                init("v.qweight", I4, &[8, 3], codes),
                init("v.scales", F16, &[2, 3], vec![0; 12]),
                init("st", I64, &[1], i64s(&[0])),
                init("en", I64, &[1], i64s(&[5])),
                init("ax", I64, &[1], i64s(&[0])),
            ],
            node: vec![
                node("DequantizeLinear", &["w.qweight", "w.scales"], "w.padded", blocked()),
                node("Slice", &["w.padded", "st", "en", "ax"], "w", vec![]),
                node("MatMul", &["x", "w"], "y", vec![]),
                node("DequantizeLinear", &["v.qweight", "v.scales"], "v.padded", blocked()),
                node("Slice", &["v.padded", "st", "en", "ax"], "v", vec![]),
                node("MatMul", &["x", "v"], "z", vec![]),
                node("Identity", &["v.padded"], "v2", vec![]),
            ],
            ..Default::default()
        };
        pb::ModelProto { graph: Some(g), ..Default::default() }
    }

    #[test]
    fn int4_unpad_trims_the_codes_and_drops_the_slice() {
        let mut m = padded_model();
        let before = m.graph.as_ref().unwrap().initializer[0].raw_data.clone().unwrap();
        assert_eq!(int4_unpad(&mut m).unwrap(), 1);
        let g = m.graph.as_ref().unwrap();
        let w = g.initializer.iter().find(|t| t.name.as_deref() == Some("w.qweight")).unwrap();
        assert_eq!(w.dims, vec![5, 3]);
        // 15 nibbles: 7 whole bytes, then the 15th code in the low nibble of byte 8.
        let raw = w.raw_data.as_deref().unwrap();
        assert_eq!(raw.len(), 8);
        assert_eq!(&raw[..7], &before[..7]);
        assert_eq!(raw[7], before[7] & 0x0f);
        // The DQ writes "w" itself; w's Slice is gone, v's (its DQ output has a second reader) stays,
        // and so do the constants v's Slice still reads.
        let ops: Vec<(&str, &str)> =
            g.node.iter().map(|n| (n.op_type.as_deref().unwrap(), n.output[0].as_str())).collect();
        assert_eq!(
            ops,
            [
                ("DequantizeLinear", "w"),
                ("MatMul", "y"),
                ("DequantizeLinear", "v.padded"),
                ("Slice", "v"),
                ("MatMul", "z"),
                ("Identity", "v2")
            ]
        );
        assert_eq!(g.initializer.len(), 7);
        let v = g.initializer.iter().find(|t| t.name.as_deref() == Some("v.qweight")).unwrap();
        assert_eq!(v.dims, vec![8, 3]);
    }

    #[test]
    fn int4_unpad_leaves_other_slices_and_drops_unused_constants() {
        // Only v: once its second reader is gone it is trimmed too, and the Slice constants with it.
        let mut m = padded_model();
        m.graph.as_mut().unwrap().node.retain(|n| n.op_type.as_deref() != Some("Identity"));
        assert_eq!(int4_unpad(&mut m).unwrap(), 2);
        let g = m.graph.as_ref().unwrap();
        assert!(g.node.iter().all(|n| n.op_type.as_deref() != Some("Slice")));
        let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["w.qweight", "w.scales", "v.qweight", "v.scales"]);
        // A slice that is not a prefix of rows (start 1) or whose scales do not match is left alone.
        for (st, en) in [(1, 5), (0, 3)] {
            let mut m = padded_model();
            let g = m.graph.as_mut().unwrap();
            g.node.retain(|n| n.op_type.as_deref() != Some("Identity"));
            g.initializer[4].raw_data = Some(i64s(&[st]));
            g.initializer[5].raw_data = Some(i64s(&[en]));
            assert_eq!(int4_unpad(&mut m).unwrap(), 0, "start {st}, end {en}");
        }
    }
}
