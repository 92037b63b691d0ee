//! The megakernel's weights at load (`TRTFORGE_MK=1`; see mk.rs): the model's
//! float weights as f16 chunks in `mk_step`'s layout, packed on the host before upload.
use super::mk::{pack_chunks, MkDims, RowMap};
use crate::model::{LlamaConfig, ModelWeights, Param};
use half::f16;
use rayon::prelude::*;

/// The packed weights, one buffer per weight kind, layers concatenated (f16 bits).
pub struct MkPacked {
    pub qkv: Vec<u16>,
    pub o: Vec<u16>,
    pub gate_up: Vec<u16>,
    pub down: Vec<u16>,
    pub head: Vec<u16>,
}

/// The kernel's dimensions of a model.
pub fn dims_of(c: &LlamaConfig) -> MkDims {
    MkDims {
        hidden: c.hidden_size,
        inter: c.intermediate_size,
        layers: c.num_hidden_layers,
        heads: c.num_attention_heads,
        kv_heads: c.num_key_value_heads,
        head_dim: c.head_dim,
        vocab: c.vocab_size,
    }
}

fn bits(v: &[f32]) -> Vec<u16> {
    v.iter().map(|&x| f16::from_f32(x).to_bits()).collect()
}

/// Packs every layer's q / k / v (as one fused (q; k; v) matrix), o, gate + up, down and the head.
pub fn pack_model(w: &ModelWeights) -> Result<MkPacked, String> {
    let d = dims_of(&w.config);
    d.check()?;
    let (h, i) = (d.hidden, d.inter);
    // The layers in parallel (TinyLlama: 8 s of the engine's load on one thread), concatenated in order.
    let layer = |l: usize| -> Result<[Vec<u16>; 4], String> {
        let mut qkv = bits(&w.get(Param::Wq(l)).data);
        qkv.extend(bits(&w.get(Param::Wk(l)).data));
        qkv.extend(bits(&w.get(Param::Wv(l)).data));
        let (g, u) = (bits(&w.get(Param::WGate(l)).data), bits(&w.get(Param::WUp(l)).data));
        Ok([
            pack_chunks(&d, RowMap::Qkv, &qkv, None, d.qkv_rows(), h)?,
            pack_chunks(&d, RowMap::Plain, &bits(&w.get(Param::Wo(l)).data), None, h, h)?,
            pack_chunks(&d, RowMap::GateUp, &g, Some(&u), i, h)?,
            pack_chunks(&d, RowMap::Plain, &bits(&w.get(Param::WDown(l)).data), None, h, i)?,
        ])
    };
    let layers: Vec<[Vec<u16>; 4]> = (0..d.layers).into_par_iter().map(layer).collect::<Result<_, _>>()?;
    let head = pack_chunks(&d, RowMap::Plain, &bits(&w.get(Param::LmHead).data), None, d.vocab, h)?;
    let mut p = MkPacked { qkv: Vec::new(), o: Vec::new(), gate_up: Vec::new(), down: Vec::new(), head };
    for [qkv, o, gu, dn] in layers {
        p.qkv.extend(qkv);
        p.o.extend(o);
        p.gate_up.extend(gu);
        p.down.extend(dn);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::super::mk::chunk_source;
    use super::*;

    fn small() -> LlamaConfig {
        let mut c = LlamaConfig::preset("tiny").unwrap();
        c.hidden_size = 512;
        c.intermediate_size = 1024;
        c.num_hidden_layers = 2;
        c.num_attention_heads = 8;
        c.num_key_value_heads = 1;
        c.head_dim = 64;
        c.vocab_size = 64;
        c
    }

    #[test]
    fn packed_chunks_hold_the_models_f16_weights_where_the_kernel_reads_them() {
        let w = ModelWeights::random(small(), 7).unwrap();
        let d = dims_of(&w.config);
        let p = pack_model(&w).unwrap();
        let (h, i) = (d.hidden, d.inter);
        let f = |v: f32| f16::from_f32(v).to_bits();
        // Every chunk element of layer 1 (and the head) against the weight it must hold.
        let l = 1;
        let (ck, cki) = (d.ckh(), d.cki());
        let (kc, chh) = (h / ck, 16 * ck);
        let qkv_per = d.qkv_rows() * h;
        for t in 0..d.t_qkv() {
            for c in 0..kc {
                for (kt, ln, j) in [(0, 0, 0), (3, 17, 5), (31, 31, 7)] {
                    let (_, row, col) = chunk_source(&d, RowMap::Qkv, ck, t, c, kt, ln, j);
                    let want = if row < h {
                        w.get(Param::Wq(l)).data[row * h + col]
                    } else if row < h + d.kv_heads * d.head_dim {
                        w.get(Param::Wk(l)).data[(row - h) * h + col]
                    } else {
                        w.get(Param::Wv(l)).data[(row - h - d.kv_heads * d.head_dim) * h + col]
                    };
                    let got = p.qkv[l * qkv_per + (t * kc + c) * chh + (kt * 32 + ln) * 8 + j];
                    assert_eq!(got, f(want), "qkv tile {t} chunk {c}");
                }
            }
        }
        for t in 0..i / 8 {
            for (kt, ln, j) in [(0, 0, 0), (5, 30, 3), (31, 9, 6)] {
                let (m, row, col) = chunk_source(&d, RowMap::GateUp, ck, t, 0, kt, ln, j);
                let src = if m == 0 { Param::WGate(l) } else { Param::WUp(l) };
                let got = p.gate_up[l * 2 * i * h + (t * kc) * chh + (kt * 32 + ln) * 8 + j];
                assert_eq!(got, f(w.get(src).data[row * h + col]), "gate/up tile {t}");
            }
        }
        let kci = i / cki;
        for t in 0..h / 16 {
            let (_, row, col) = chunk_source(&d, RowMap::Plain, cki, t, kci - 1, 7, 11, 2);
            let got = p.down[l * h * i + (t * kci + kci - 1) * 16 * cki + (7 * 32 + 11) * 8 + 2];
            assert_eq!(got, f(w.get(Param::WDown(l)).data[row * i + col]), "down tile {t}");
        }
        let (_, row, col) = chunk_source(&d, RowMap::Plain, ck, 2, 0, 1, 2, 3);
        assert_eq!(p.head[(2 * kc) * chh + (32 + 2) * 8 + 3], f(w.get(Param::LmHead).data[row * h + col]));
        assert_eq!(p.o.len(), d.layers * h * h);
    }

    #[test]
    fn models_the_kernel_cannot_run_are_refused() {
        let w = ModelWeights::random(LlamaConfig::preset("tiny").unwrap(), 1).unwrap();
        assert!(pack_model(&w).is_err());
    }
}
