//! Checks of the CUDA engine's paged KV cache (what `trtforge serve --backend cuda` runs), for
//! `trtforge cuda-check` on the GPU machine:
//! - greedy tokens of each prompt alone through the paged engine (scattered block tables) equal
//!   the static engine's (contiguous cache) for the same prompt alone;
//! - prefill in chunks of 5 (crossing block boundaries, attending over earlier blocks) gives the
//!   same tokens as one-shot prefill;
//! - the same prompts among 61 others (64 sequences, prefill chunks mixed with decodes, steps
//!   split into several passes, decode graphs of the 64 bucket) give the same greedy tokens, and a
//!   sampled sequence the same sampled tokens, as alone;
//! - the logits of those steps match the CPU reference on the same weights within the precision's
//!   tolerance (`cuda_check::rel_tol`).
use super::cuda_check::{
    check_kv_rot, fp8_rows_of, kv_label, max_rel, reference_weights, rel_tol, rounding_detail, rounding_pass,
    rounding_what, tiny32, CheckResult, CheckSet,
};
use crate::backend::cpu::{CpuBackend, CpuQuant, KvQuant};
use crate::backend::cuda::paged::{kv_elem_bytes_of, CudaPagedBackend, CudaPagedOptions};
use crate::backend::cuda::{quantize_rtn, CudaBackend, CudaOptions};
use crate::backend::paged::{
    block_bytes, sample_token, LogitShaping, PagedBackend, PagedSeq, PromptScore, TokenSampling,
};
use crate::backend::sampling::{token_logprobs, TokenLogprobs};
use crate::backend::{Backend, Logits, SeqChunk};
use crate::error::Result;
use crate::generate::{generate_batch, SamplingParams, StopCriteria};
use crate::model::ModelWeights;
use crate::quant::kv::KvCacheDtype;
use crate::quant::WeightFormat;
use crate::util::{seeded_prompts, SplitMix64};
use std::sync::Arc;

/// One sequence of a paged run.
struct Req {
    prompt: Vec<u32>,
    sample: TokenSampling,
    /// serve's `logit_bias` and penalties.
    shaping: Option<LogitShaping>,
    /// serve's `echo` with `logprobs`: score the prompt with this many alternatives a position.
    score: Option<u8>,
}

impl Req {
    fn new(prompt: &[u32], sample: TokenSampling) -> Req {
        Req { prompt: prompt.to_vec(), sample, shaping: None, score: None }
    }
}

/// Tokens, the logits of every sampled row and what `take_logprobs` gave for it, and the prompt
/// log-probabilities (`take_prompt_logprobs`), per sequence.
struct RunOut {
    tokens: Vec<Vec<u32>>,
    logits: Vec<Vec<Vec<f32>>>,
    logprobs: Vec<Vec<Option<TokenLogprobs>>>,
    prompt_logprobs: Vec<Vec<TokenLogprobs>>,
}

/// Runs `reqs` together: every step each unfinished sequence gives its next prompt chunk of at
/// most `chunk` tokens or its one decode token, until each has `n` new tokens. Blocks are taken
/// from `perm` (a shuffled pool) in order.
fn run_paged(b: &mut CudaPagedBackend, reqs: &[Req], n: usize, chunk: usize, perm: &[i32]) -> Result<RunOut> {
    let vocab = b.config().vocab_size;
    let mut tables = Vec::new();
    let mut at = 0;
    for r in reqs {
        let need = (r.prompt.len() + n).div_ceil(16);
        if at + need > perm.len() {
            return Err(crate::error::Error::Invalid("paged check: pool too small".into()));
        }
        tables.push(perm[at..at + need].to_vec());
        at += need;
    }
    let mut pos = vec![0usize; reqs.len()];
    let mut out = RunOut {
        tokens: vec![vec![]; reqs.len()],
        logits: vec![vec![]; reqs.len()],
        logprobs: vec![vec![]; reqs.len()],
        prompt_logprobs: vec![vec![]; reqs.len()],
    };
    b.capture_logits = Some(Vec::new());
    loop {
        let mut seqs = Vec::new();
        let mut who = Vec::new();
        let mut stepped = Vec::new();
        let last: Vec<[u32; 1]> = out.tokens.iter().map(|t| [t.last().copied().unwrap_or(0)]).collect();
        for (i, r) in reqs.iter().enumerate() {
            if out.tokens[i].len() >= n {
                continue;
            }
            let (tokens, sample, score) = if pos[i] < r.prompt.len() {
                let end = (pos[i] + chunk).min(r.prompt.len());
                // Row j (position pos + j) scores the prompt's token at pos + j + 1.
                let score = r.score.map(|top| PromptScore {
                    from_row: 0,
                    targets: &r.prompt[pos[i] + 1..(end + 1).min(r.prompt.len())],
                    top,
                });
                (&r.prompt[pos[i]..end], (end == r.prompt.len()).then_some(r.sample), score)
            } else {
                (&last[i][..], Some(r.sample), None)
            };
            if sample.is_some() {
                who.push(i);
            }
            stepped.push((i, tokens.len()));
            let shaping = r.shaping.as_ref().map(|l| l.view(&[], &out.tokens[i]));
            seqs.push(PagedSeq { score, shaping, ..PagedSeq::new(tokens, pos[i], &tables[i], sample) });
        }
        if seqs.is_empty() {
            break;
        }
        let ids = b.step(&seqs)?;
        drop(seqs);
        let lp = b.take_logprobs();
        let plp = b.take_prompt_logprobs();
        for (k, l) in plp.into_iter().enumerate() {
            out.prompt_logprobs[stepped[k].0].extend(l);
        }
        let lg = b.capture_logits.replace(Vec::new()).unwrap_or_default();
        for (r, (&i, &id)) in who.iter().zip(&ids).enumerate() {
            out.tokens[i].push(id);
            out.logits[i].push(lg[r * vocab..(r + 1) * vocab].to_vec());
            out.logprobs[i].push(lp.get(r).cloned().flatten());
        }
        for (i, len) in stepped {
            pos[i] += len;
        }
    }
    b.capture_logits = None;
    Ok(out)
}

/// Greedy tokens of the static engine for each prompt alone.
fn static_greedy(
    w: &ModelWeights,
    p: WeightFormat,
    kv: Option<&KvQuant>,
    prompts: &[Vec<u32>],
    n: usize,
) -> Result<Vec<Vec<u32>>> {
    let max_seq = prompts.iter().map(|x| x.len()).max().unwrap_or(1) + n + 1;
    let mut o = CudaOptions::new(p, 1, max_seq);
    o.kv = kv.cloned();
    let mut g = CudaBackend::new(w, o)?;
    let params = SamplingParams { greedy: true, max_new_tokens: n, ..Default::default() };
    let stop = StopCriteria { eos: &[], stop_strings: &[], detok: None };
    let mut v = Vec::new();
    for pr in prompts {
        g.reset(0);
        v.push(generate_batch(&mut g, std::slice::from_ref(pr), &params, &stop, |_, _| {})?.remove(0).tokens);
    }
    Ok(v)
}

/// Logits of `prompt` followed by `gen[..n-1]` on the CPU reference: one row per generated token.
fn cpu_logits(cpu: &mut CpuBackend, prompt: &[u32], gen: &[u32]) -> Result<Vec<Vec<f32>>> {
    cpu.reset(0);
    let mut rows = vec![cpu.forward(&[SeqChunk { slot: 0, tokens: prompt }], Logits::Last)?.data];
    for t in &gen[..gen.len().saturating_sub(1)] {
        rows.push(cpu.forward(&[SeqChunk { slot: 0, tokens: &[*t] }], Logits::Last)?.data);
    }
    Ok(rows)
}

fn first_diff(a: &[Vec<u32>], b: &[Vec<u32>]) -> Vec<usize> {
    a.iter().zip(b).map(|(x, y)| x.iter().zip(y).take_while(|(p, q)| p == q).count()).collect()
}

/// Whether the engine's paths reach a logit of `p` weights by different roundings (session 38): int8 / int4 / fp8
/// weights are read as codes and scales by the GEMV (≤ 8 rows), as the load-time f16 copy `f16(q · s)` by the prefill
/// GEMMs, and as codes with the row scale applied after the sum by the quantized decode GEMM (wq.rs, 9..=64-row decode
/// steps). Two runs of one sequence through different paths (chunked vs one-shot prefill, alone vs among 63 others)
/// then differ in the last bits, and a greedy or sampling near-tie may go either way. Such runs pass when every logits
/// row up to and including the first differing token agrees within the precision's tolerance ([`rel_tol`]: the bound
/// the same engine meets against the CPU reference); float weights must give identical tokens.
fn quant_paths(p: WeightFormat) -> bool {
    matches!(p, WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8)
}

/// The verdict of a [`quant_paths`] comparison whose tokens differ (`before`: what the tokens showed; `kind`: greedy
/// or sampling): a near-tie passes when `d`, the logits' largest difference up to the first differing token, is within
/// the precision's tolerance.
fn near_tie(d: f32, p: WeightFormat, before: &str, kind: &str) -> (bool, String) {
    let detail = format!(
        "{before}, then a {kind} near-tie if the logits up to it agree: max|Δ|/max|other run| {d:.2e} (tol {:.0e}: \
         quantized weights, the paths round differently)",
        rel_tol(p)
    );
    (d <= rel_tol(p), detail)
}

/// The largest [`max_rel`] between two runs' logits rows, per sequence up to and including its first differing token
/// (sequences with identical tokens count fully).
fn upto_first_diff<'a>(
    a: impl Iterator<Item = &'a Vec<Vec<f32>>>,
    b: impl Iterator<Item = &'a Vec<Vec<f32>>>,
    ta: &[Vec<u32>],
    tb: &[Vec<u32>],
) -> f32 {
    let same = first_diff(ta, tb);
    a.zip(b).enumerate().fold(0f32, |m, (k, (x, y))| {
        let upto = (same[k] + 1).min(x.len()).min(y.len());
        (0..upto).fold(m, |m, j| m.max(max_rel(&x[j], &y[j])))
    })
}

/// The paged checks for one model and precision: `prompts` (3 or more) with `n` new tokens.
pub fn paged_checks(
    name: &str,
    w: &ModelWeights,
    p: WeightFormat,
    prompts: &[Vec<u32>],
    n: usize,
) -> Vec<Result<CheckResult>> {
    paged_checks_kv(name, w, p, KvCacheDtype::Fp16, prompts, n)
}

/// [`paged_checks`] with a `kv` cache: an 8-bit one (per-head scales calibrated on `prompts` by
/// the CPU reference) in the paged engine, the static engine and the CPU reference alike.
pub fn paged_checks_kv(
    name: &str,
    w: &ModelWeights,
    p: WeightFormat,
    kv: KvCacheDtype,
    prompts: &[Vec<u32>],
    n: usize,
) -> Vec<Result<CheckResult>> {
    paged_checks_kvr(name, w, p, kv, false, prompts, n)
}

/// [`paged_checks_kv`] with K rotated before the 8-bit rounding when `rotate` (kv_rotate).
pub fn paged_checks_kvr(
    name: &str,
    w: &ModelWeights,
    p: WeightFormat,
    kv: KvCacheDtype,
    rotate: bool,
    prompts: &[Vec<u32>],
    n: usize,
) -> Vec<Result<CheckResult>> {
    let mut out = Vec::new();
    let label = format!("{name} {} paged", kv_label(p, kv, rotate));
    let vocab = w.config.vocab_size;
    let q = match quantize_rtn(w, p) {
        Ok(q) => q,
        Err(e) => return vec![Err(e)],
    };
    let kvq = match reference_weights(w, p).and_then(|r| check_kv_rot(&r, kv, rotate, prompts)) {
        Ok(k) => k,
        Err(e) => return vec![Err(e)],
    };
    let kvb = kv_elem_bytes_of(p, kv);
    let num_blocks = 1024;
    let o = CudaPagedOptions {
        kv: kvq.clone(),
        precision: p,
        kv_cache_bytes: (block_bytes(&w.config, kvb) * num_blocks) as u64,
        gpu_memory_utilization: None,
        max_num_seqs: 64,
        max_num_batched_tokens: 256,
        device: 0,
    };
    if crate::backend::cuda::gpu::precompiling() {
        // Fill the kernel cache for both engines (each constructor stops after compiling, with an
        // error saying so; an NVRTC failure is reported as it is, not dropped).
        let mut so = CudaOptions::new(p, 1, 64);
        so.kv = kvq.clone();
        let engines = [CudaBackend::new(w, so).map(|_| ()), CudaPagedBackend::new(w, q.as_ref(), &o).map(|_| ())];
        return engines
            .into_iter()
            .map(|r| {
                let why = match r {
                    Ok(()) => "TRTFORGE_CUDA_PRECOMPILE: kernels cached".to_string(),
                    Err(crate::error::Error::Gpu(m)) => m,
                    Err(e) => e.to_string(),
                };
                Err(crate::error::Error::Gpu(format!("{label}: {why}")))
            })
            .collect();
    }
    let mut b = match CudaPagedBackend::new(w, q.as_ref(), &o) {
        Ok(b) => b,
        Err(e) => return vec![Err(e)],
    };
    let mut perm: Vec<i32> = (0..num_blocks as i32).collect();
    let mut rng = SplitMix64(5);
    for i in (1..perm.len()).rev() {
        perm.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let greedy = TokenSampling::GREEDY;
    let sampled = TokenSampling { temperature: 0.8, top_k: 40, top_p: 0.9, seed: 42, logprobs: None };
    let reqs = |ps: &[Vec<u32>], s: TokenSampling| -> Vec<Req> { ps.iter().map(|x| Req::new(x, s)).collect() };
    let want = match static_greedy(w, p, kvq.as_ref(), prompts, n) {
        Ok(v) => v,
        Err(e) => return vec![Err(e)],
    };
    // 1) alone, one-shot prefill
    let alone: Result<Vec<RunOut>> =
        prompts.iter().map(|x| run_paged(&mut b, &reqs(std::slice::from_ref(x), greedy), n, 4096, &perm)).collect();
    let alone = match alone {
        Ok(a) => a,
        Err(e) => return vec![Err(e)],
    };
    let alone_tok: Vec<Vec<u32>> = alone.iter().map(|r| r.tokens[0].clone()).collect();
    out.push(Ok(CheckResult {
        name: format!("{label}: greedy alone == static engine ({} × {n})", prompts.len()),
        pass: alone_tok == want,
        detail: format!("identical prefix lengths {:?}", first_diff(&alone_tok, &want)),
    }));
    // 2) chunked prefill, alone (judged below, once the 8-bit rounding's bound is known)
    let chunked: Result<Vec<RunOut>> =
        prompts.iter().map(|x| run_paged(&mut b, &reqs(std::slice::from_ref(x), greedy), n, 5, &perm[37..])).collect();
    let chunked_at = out.len();
    // The CPU reference (the engine's rounding: weights, FP8 GEMM inputs, KV cache) and, where it
    // rounds to 8 bits on the fly, that rounding's noise: the same reference without it (f16
    // cache, unrounded linear inputs) on the alone runs' tokens (`cuda_check::rounding_pass`).
    let max_seq = prompts.iter().map(|x| x.len()).max().unwrap_or(1) + n + 1;
    let cpu_of = |kv: Option<KvQuant>, fp8: bool, f16_inputs: bool| -> Result<CpuBackend> {
        let fp8_rows = if fp8 { fp8_rows_of(&b.engine().fp8_gemm_params()) } else { None };
        let quant = CpuQuant { kv, fp8_rows, f16_inputs, ..Default::default() };
        CpuBackend::with_quant(Arc::new(reference_weights(w, p)?), 1, max_seq, quant)
    };
    let mut cpu = match cpu_of(kvq.clone(), true, false) {
        Ok(c) => c,
        Err(e) => return vec![Err(e)],
    };
    let (mut noise, mut twin) = (0f32, 0f32);
    let what = rounding_what(cpu.quant());
    if what.is_some() {
        let r = cpu_of(None, false, false).and_then(|mut c16| {
            let mut ct = cpu_of(kvq.clone(), true, true)?;
            for (k, pr) in prompts.iter().enumerate() {
                let a = cpu_logits(&mut cpu, pr, &alone[k].tokens[0])?;
                let b = cpu_logits(&mut c16, pr, &alone[k].tokens[0])?;
                let t = cpu_logits(&mut ct, pr, &alone[k].tokens[0])?;
                for ((x, y), z) in a.iter().zip(&b).zip(&t) {
                    noise = noise.max(max_rel(x, y));
                    twin = twin.max(max_rel(z, x));
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            return vec![Err(e)];
        }
    }
    // Chunked prefill's tokens must equal one-shot's. With an 8-bit cache, 5-row chunks (the GEMV path, f32 sums
    // rounded to f16 at c_y16) and the one-shot prompt (the GEMM path) may round a K/V row to neighbouring codes,
    // so a greedy near-tie may then go the other way (session 24, TinyLlama shape + int8 cache: prefix 14 of 16 for
    // one prompt): tokens equal, or every logits row up to and including the first differing token agrees as an
    // 8-bit-rounding engine agrees with its reference (`rounding_pass`, the sampled check's rule below).
    let chunked_check = chunked.map(|c| {
        let name = format!("{label}: prefill in chunks of 5 == one-shot");
        let toks: Vec<Vec<u32>> = c.iter().map(|r| r.tokens[0].clone()).collect();
        let same = first_diff(&toks, &alone_tok);
        match &what {
            _ if toks == alone_tok => {
                CheckResult { name, pass: true, detail: format!("identical prefix lengths {same:?}") }
            }
            None if quant_paths(p) => {
                let d = upto_first_diff(
                    c.iter().map(|r| &r.logits[0]),
                    alone.iter().map(|r| &r.logits[0]),
                    &toks,
                    &alone_tok,
                );
                let (pass, detail) = near_tie(d, p, &format!("identical prefix lengths {same:?}"), "greedy");
                CheckResult { name, pass, detail }
            }
            None => CheckResult { name, pass: false, detail: format!("identical prefix lengths {same:?}") },
            Some(what) => {
                let mut d = 0f32;
                for (k, r) in c.iter().enumerate().filter(|(k, _)| toks[*k] != alone_tok[*k]) {
                    let upto = (same[k] + 1).min(r.logits[0].len()).min(alone[k].logits[0].len());
                    d = (0..upto).fold(d, |m, j| m.max(max_rel(&r.logits[0][j], &alone[k].logits[0][j])));
                }
                CheckResult {
                    name,
                    pass: rounding_pass(d, twin, p),
                    detail: format!(
                        "identical prefix lengths {same:?}, then a greedy near-tie if the logits up to it agree: {}",
                        rounding_detail(d, twin, noise, p, what)
                    ),
                }
            }
        }
    });
    out.insert(chunked_at, chunked_check);
    // 3) among others: 64 sequences, the test prompts at 0, 31, 63 (and a sampled one at 10)
    let sampled_alone = run_paged(&mut b, &reqs(&prompts[..1], sampled), n, 4096, &perm[100..]);
    let others = seeded_prompts(&(0..64).map(|i| 1 + (i * 7) % 47).collect::<Vec<_>>(), vocab, 9);
    let mut all: Vec<Req> = others.iter().map(|x| Req::new(x, greedy)).collect();
    let at = [0usize, 31, 63];
    for (k, &i) in at.iter().enumerate().take(prompts.len()) {
        all[i].prompt = prompts[k].clone();
    }
    all[10] = Req::new(&prompts[0], sampled);
    let big = run_paged(&mut b, &all, n, 16, &perm);
    match (&big, &sampled_alone) {
        (Ok(big), Ok(sa)) => {
            let got: Vec<Vec<u32>> = at.iter().take(prompts.len()).map(|&i| big.tokens[i].clone()).collect();
            let detail = format!(
                "identical prefix lengths {:?}; 64 seqs, chunks of 16, 256-token steps",
                first_diff(&got, &alone_tok)
            );
            let (pass, detail) = if got != alone_tok && quant_paths(p) {
                let big_logits = at.iter().take(prompts.len()).map(|&i| &big.logits[i]);
                let d = upto_first_diff(big_logits, alone.iter().map(|r| &r.logits[0]), &got, &alone_tok);
                near_tie(d, p, &detail, "greedy")
            } else {
                (got == alone_tok, detail)
            };
            out.push(Ok(CheckResult { name: format!("{label}: greedy among 63 others == alone"), pass, detail }));
            // With an 8-bit cache the K/V rows of the 64-row GEMM and of the 1-row GEMV may round
            // to neighbouring codes (their f32 sums differ in the last bits), so two runs of the
            // same sequence may see logits that differ within the cache's quantization noise, and
            // a sampled draw near a boundary of the sampler may then pick another token. Tokens
            // must be equal, or the first differing token must come from logits rows (every one
            // up to it) that agree as an 8-bit-rounding engine agrees with its reference (`rounding_pass`).
            let same = first_diff(&big.tokens[10..11], &sa.tokens[..1])[0];
            let distinct = sa.tokens[0].iter().collect::<std::collections::HashSet<_>>().len();
            let d = || {
                upto_first_diff(
                    [&big.logits[10]].into_iter(),
                    [&sa.logits[0]].into_iter(),
                    &big.tokens[10..11],
                    &sa.tokens[..1],
                )
            };
            let (pass, detail) = if big.tokens[10] == sa.tokens[0] {
                (true, format!("identical {n} of {n}; distinct tokens {distinct}"))
            } else if let Some(what) = &what {
                let d = d();
                (
                    rounding_pass(d, twin, p),
                    format!(
                        "identical prefix {same} of {n}, then a sampling near-tie if the logits up to it agree: {}",
                        rounding_detail(d, twin, noise, p, what)
                    ),
                )
            } else if quant_paths(p) {
                near_tie(d(), p, &format!("identical prefix {same} of {n}"), "sampling")
            } else {
                (false, format!("identical prefix {same} of {n}; distinct tokens {distinct}"))
            };
            out.push(Ok(CheckResult {
                name: format!("{label}: sampled (T 0.8, top-k 40, top-p 0.9) among 63 == alone"),
                pass,
                detail,
            }));
        }
        (Err(e), _) | (_, Err(e)) => out.push(Err(crate::error::Error::Gpu(e.to_string()))),
    }
    // 4) logits vs the CPU reference, alone and among others
    let mut lg = || -> Result<CheckResult> {
        let mut worst = 0f32;
        for (k, pr) in prompts.iter().enumerate() {
            let refl = cpu_logits(&mut cpu, pr, &alone[k].tokens[0])?;
            for (a, b) in alone[k].logits[0].iter().zip(&refl) {
                worst = worst.max(max_rel(a, b));
            }
            if let Ok(big) = &big {
                let i = at[k];
                let refb = cpu_logits(&mut cpu, pr, &big.tokens[i])?;
                for (a, b) in big.logits[i].iter().zip(&refb) {
                    worst = worst.max(max_rel(a, b));
                }
            }
        }
        let (pass, detail) = if let Some(what) = &what {
            (rounding_pass(worst, twin, p), rounding_detail(worst, twin, noise, p, what))
        } else {
            let tol = rel_tol(p);
            (worst <= tol, format!("max|Δ|/max|ref| {worst:.2e} (tol {tol:.0e})"))
        };
        Ok(CheckResult { name: format!("{label}: logits vs CPU (alone and among 63)"), pass, detail })
    };
    out.push(lg());
    // 5) log-probabilities (serve's `logprobs`): in mixed steps (prefill chunks of 5 beside decodes, reordered), each
    // sampled row that asks gets the log-softmax of its own captured logits at its own token; the others get none.
    let mut lp_check = || -> Result<CheckResult> {
        let with = |s: TokenSampling, k: u8| TokenSampling { logprobs: Some(k), ..s };
        let mut rq: Vec<Req> = others[..6].iter().map(|x| Req::new(x, greedy)).collect();
        rq[1] = Req::new(&prompts[0], with(greedy, 5));
        rq[4] = Req::new(&others[40], with(sampled, 0));
        let r = run_paged(&mut b, &rq, n, 5, &perm[200..])?;
        let (mut rows, mut bad) = (0, Vec::new());
        for (i, q) in rq.iter().enumerate() {
            for (j, got) in r.logprobs[i].iter().enumerate() {
                let want = q.sample.logprobs.map(|k| token_logprobs(&r.logits[i][j], r.tokens[i][j], k as usize));
                rows += usize::from(want.is_some());
                if *got != want {
                    bad.push((i, j));
                }
            }
        }
        Ok(CheckResult {
            name: format!("{label}: log-probabilities == the captured logits' (6 seqs, chunks of 5)"),
            pass: bad.is_empty() && rows == 2 * n,
            detail: format!("{rows} rows with log-probabilities; mismatches (seq, step) {bad:?}"),
        })
    };
    out.push(lp_check());
    // 6) logit_bias and penalties (serve's `logit_bias`, `presence_penalty`, `frequency_penalty`), chosen on the
    // host: each token of a shaped sequence is the CPU sampler's choice from its own captured (unshaped) logits
    // with the changes applied; its log-probabilities stay those of the unshaped logits.
    let mut shape_check = || -> Result<CheckResult> {
        let shaped = |s: TokenSampling, bias: Vec<(u32, f32)>, presence: f32, frequency: f32, prompt: &[u32]| Req {
            shaping: Some(LogitShaping { bias, presence, frequency, ..Default::default() }),
            ..Req::new(prompt, s)
        };
        let mut rq: Vec<Req> = others[6..12].iter().map(|x| Req::new(x, greedy)).collect();
        rq[0] = shaped(greedy, vec![(7, 100.0)], 0.0, 0.0, &prompts[0]);
        rq[2] = shaped(TokenSampling { logprobs: Some(3), ..greedy }, vec![], 2.0, 2.0, &others[20]);
        rq[3] = shaped(sampled, vec![(3, -100.0), (11, 4.0)], 0.5, 1.0, &others[21]);
        rq[5] = shaped(TokenSampling { top_k: 0, ..sampled }, vec![], -1.0, 0.0, &others[22]);
        let r = run_paged(&mut b, &rq, n, 5, &perm[300..])?;
        let (mut rows, mut changed, mut bad, mut scratch) = (0, 0, Vec::new(), Vec::new());
        for (i, q) in rq.iter().enumerate() {
            for (j, &got) in r.tokens[i].iter().enumerate() {
                let pos = q.prompt.len() + j;
                let raw = &r.logits[i][j];
                let want = match &q.shaping {
                    Some(l) => {
                        let mut row = raw.clone();
                        l.view(&[], &r.tokens[i][..j]).apply(&mut row);
                        let t = sample_token(&row, &q.sample, pos, &mut scratch);
                        rows += 1;
                        changed += usize::from(t != sample_token(raw, &q.sample, pos, &mut scratch));
                        t
                    }
                    None => got,
                };
                let lp_want = q.sample.logprobs.map(|k| token_logprobs(raw, got, k as usize));
                if got != want || r.logprobs[i][j] != lp_want {
                    bad.push((i, j));
                }
            }
        }
        Ok(CheckResult {
            name: format!("{label}: shaped tokens (logit_bias, penalties) == the captured logits' choice (6 seqs)"),
            pass: bad.is_empty() && rows == 4 * n && changed > 0,
            detail: format!(
                "{rows} shaped rows, {changed} of them another token than unshaped; mismatches (seq, step) {bad:?}"
            ),
        })
    };
    out.push(shape_check());
    // 7) prompt log-probabilities (serve's `echo` with `logprobs`), scored in chunks of 5 beside other sequences:
    // each position's log-probability of the prompt's own next token against the CPU reference's (all rows of the
    // prompt at once), judged as the logits are in 4) (a log-probability moves at most twice the logits' largest
    // change), and the alternatives ranked.
    let mut score_check = || -> Result<CheckResult> {
        let mut rq: Vec<Req> = others[12..18].iter().map(|x| Req::new(x, greedy)).collect();
        rq[1] = Req { score: Some(3), ..Req::new(&prompts[0], greedy) };
        rq[4] = Req { score: Some(0), ..Req::new(&others[41], sampled) };
        let r = run_paged(&mut b, &rq, 2, 5, &perm[400..])?;
        let (mut worst, mut rows, mut bad) = (0f32, 0, Vec::new());
        for (i, q) in rq.iter().enumerate() {
            let got = &r.prompt_logprobs[i];
            let Some(top) = q.score else {
                if !got.is_empty() {
                    bad.push((i, 0));
                }
                continue;
            };
            if got.len() + 1 != q.prompt.len() {
                bad.push((i, got.len()));
                continue;
            }
            cpu.reset(0);
            let refl = cpu.forward(&[SeqChunk { slot: 0, tokens: &q.prompt }], Logits::All)?.data;
            let v = vocab;
            for (j, g) in got.iter().enumerate() {
                let row = &refl[j * v..(j + 1) * v];
                let w = token_logprobs(row, q.prompt[j + 1], top as usize);
                let scale = row.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
                worst = worst.max((g.logprob - w.logprob).abs() / 2.0 / scale);
                rows += 1;
                let ranked = g.top.windows(2).all(|p| p[0].1 >= p[1].1);
                if g.token != q.prompt[j + 1] || g.top.len() != top as usize || !ranked {
                    bad.push((i, j));
                }
            }
        }
        let (pass, detail) = if let Some(what) = &what {
            (rounding_pass(worst, twin, p), rounding_detail(worst, twin, noise, p, what))
        } else {
            let tol = rel_tol(p);
            (worst <= tol, format!("max|Δ logprob|/(2 max|ref|) {worst:.2e} (tol {tol:.0e})"))
        };
        let want_rows = prompts[0].len() + others[41].len() - 2;
        Ok(CheckResult {
            name: format!("{label}: prompt log-probabilities vs CPU (2 of 6 seqs scored, chunks of 5)"),
            pass: pass && bad.is_empty() && rows == want_rows,
            detail: format!("{rows} of {want_rows} positions; {detail}; bad (seq, position) {bad:?}"),
        })
    };
    out.push(score_check());
    out
}

/// The paged checks of `trtforge cuda-check`: the tiny fixture in fp32 and fp16; with
/// `set.paged_only` also preset:tiny int4 g32 and, with `set.tinyllama`, the TinyLlama shape (fp16 weights; fp16 and int8
/// caches).
pub fn run_paged_checks(set: &CheckSet, report: &mut dyn FnMut(&CheckResult)) -> Result<Vec<CheckResult>> {
    use crate::model::load::load;
    use WeightFormat::*;
    let mut results: Vec<CheckResult> = vec![];
    let mut add = |r: Result<CheckResult>| {
        let r = r.unwrap_or_else(|e| CheckResult { name: "error".into(), pass: false, detail: e.to_string() });
        report(&r);
        results.push(r);
    };
    let tiny_path =
        set.tiny.to_str().ok_or_else(|| crate::error::Error::Invalid(format!("{:?} is not UTF-8", set.tiny)))?;
    if std::env::var("TRTFORGE_CHECKS").as_deref() == Ok("smolkv") {
        return Ok(results);
    }
    if std::env::var("TRTFORGE_CHECKS").as_deref() == Ok("kvrot") {
        // The rotated 8-bit cache (kv_rotate) through the block tables.
        let t32 = tiny32()?;
        let ps5 = seeded_prompts(&[9, 40, 70], t32.config.vocab_size, 5);
        for r in paged_checks_kvr("tiny32", &t32, F16, KvCacheDtype::Fp8, true, &ps5, 24) {
            add(r);
        }
        return Ok(results);
    }
    if super::cuda_check::tlkv8_only() {
        // Session 24: only the TinyLlama shape with the int8 cache through the block tables (`--paged --tinyllama`).
        tinyllama_paged(set, &[KvCacheDtype::Int8], &mut add)?;
        return Ok(results);
    }
    if super::cuda_check::wqp_only() {
        // Session 38: quantized TinyLlama-shape weights through the block tables; "greedy among 63 others" decodes
        // steps of up to 64 rows, which take the quantized decode GEMM on cc 9.0 (wq.rs) unless TRTFORGE_WQ=0.
        if !set.tinyllama {
            return Err(crate::error::Error::Invalid(
                "TRTFORGE_CHECKS=wqp checks the TinyLlama shape: add --tinyllama".into(),
            ));
        }
        let tl = load("preset:tinyllama-1.1b")?;
        let ps3 = seeded_prompts(&[20, 6, 70], tl.weights.config.vocab_size, 3);
        for p in [I4 { group: 128 }, I8] {
            for r in paged_checks_kv("tinyllama-1.1b", &tl.weights, p, KvCacheDtype::Fp16, &ps3, 16) {
                add(r);
            }
        }
        return Ok(results);
    }
    if super::cuda_check::prefill_only() {
        // TRTFORGE_CHECKS=prefill: the TinyLlama-shape paged checks (prefill through
        // attn_prefill_fa on the block tables, chunked prefill, 64 sequences).
        tinyllama_paged(set, &[KvCacheDtype::Fp16], &mut add)?;
        return Ok(results);
    }
    if super::cuda_check::attn_only() {
        // TRTFORGE_CHECKS=attn: the tensor-core decode attention through the block tables.
        let t32 = tiny32()?;
        let ps5 = seeded_prompts(&[9, 40, 70], t32.config.vocab_size, 5);
        for kv in [KvCacheDtype::Fp16, KvCacheDtype::Int8] {
            for r in paged_checks_kv("tiny32", &t32, F16, kv, &ps5, 24) {
                add(r);
            }
        }
        tinyllama_paged(set, &[KvCacheDtype::Fp16], &mut add)?;
        return Ok(results);
    }
    let tiny = load(tiny_path)?;
    let ps = seeded_prompts(&[5, 17, 40], tiny.weights.config.vocab_size, 1);
    for p in [F32, F16] {
        if super::cuda_check::fp8kv_only() {
            break;
        }
        for r in paged_checks("tiny_llama", &tiny.weights, p, &ps, 24) {
            add(r);
        }
    }
    // 8-bit KV caches through the block tables (head_dim 32: the tensor-core attention).
    let t32 = tiny32()?;
    let ps5 = seeded_prompts(&[9, 40, 70], t32.config.vocab_size, 5);
    for (p, kv) in [(F16, KvCacheDtype::Int8), (F8, KvCacheDtype::Fp8)] {
        for r in paged_checks_kv("tiny32", &t32, p, kv, &ps5, 24) {
            add(r);
        }
    }
    if set.paged_only {
        let pt = load("preset:tiny")?;
        let ps2 = seeded_prompts(&[3, 12, 30], pt.weights.config.vocab_size, 2);
        for r in paged_checks("preset:tiny", &pt.weights, I4 { group: 32 }, &ps2, 16) {
            add(r);
        }
        tinyllama_paged(set, &[KvCacheDtype::Fp16, KvCacheDtype::Int8], &mut add)?;
    }
    Ok(results)
}

/// With `set.tinyllama`: the TinyLlama-shape paged checks, fp16 weights, three prompts, once per cache format in `kvs`.
fn tinyllama_paged(set: &CheckSet, kvs: &[KvCacheDtype], add: &mut dyn FnMut(Result<CheckResult>)) -> Result<()> {
    if set.tinyllama {
        let tl = crate::model::load::load("preset:tinyllama-1.1b")?;
        let ps3 = seeded_prompts(&[20, 6, 70], tl.weights.config.vocab_size, 3);
        for &kv in kvs {
            for r in paged_checks_kv("tinyllama-1.1b", &tl.weights, WeightFormat::F16, kv, &ps3, 16) {
                add(r);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upto_first_diff_compares_rows_up_to_the_first_flip() {
        // Sequence 0 flips at token 1: rows 0 and 1 count (|Δ| 0.1 and 0.5 over max|other| 1 and 2), row 2 not (9).
        // Sequence 1 is identical: every row counts (its largest 0.3 over 1).
        let a = [vec![vec![1.0, 0.1], vec![1.0, 2.5], vec![9.0, 0.0]], vec![vec![0.7, 1.0]]];
        let b = [vec![vec![1.0, 0.0], vec![1.0, 2.0], vec![0.0, 0.0]], vec![vec![1.0, 1.0]]];
        let (ta, tb) = ([vec![5, 6, 7], vec![3]], [vec![5, 8, 7], vec![3]]);
        let d = upto_first_diff(a.iter(), b.iter(), &ta, &tb);
        assert!((d - 0.3).abs() < 1e-6, "{d}");
        // Without sequence 1: 0.25 (row 1: 0.5 / 2), row 2's 9 left out.
        let d0 = upto_first_diff(a[..1].iter(), b[..1].iter(), &ta[..1], &tb[..1]);
        assert!((d0 - 0.25).abs() < 1e-6, "{d0}");
    }
}
