//! The `trtforge` command line: one file per command, each its arguments and the few lines that
//! hand them to a stage. Library errors are typed; here they become anyhow messages.

/// `println!` that returns an error instead of panicking: see [`out`]. `outln!(...)?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod agree;
mod bench;
mod bench_serve;
mod build;
mod convert;
mod cuda_check;
mod eval;
mod generate;
mod info;
mod serve;
mod values;

use crate::backend::{cpu::CpuBackend, Backend, BackendKind};
use crate::engine_dir::Manifest;
use crate::model::load::{load, LoadedModel};
use crate::model::tokenizer::Tokenizer;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "trtforge", version, about = "Export, quantize, compile and benchmark small Llama models")]
struct Cli {
    /// Worker threads for CPU backends (default: all cores).
    #[arg(long, global = true, value_parser = values::threads, allow_negative_numbers = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    cmd: Command,
}

// Parsed once per process: boxing the large argument structs would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt; only the generated text goes to stdout.
    Generate(generate::GenerateArgs),
    /// Perplexity of a model on a text file.
    Eval(eval::EvalArgs),
    /// Model config, parameter count, tensor dtypes and memory.
    Info(info::InfoArgs),
    /// Export a model to an engine directory (ONNX + tokenizer + manifest) as a config describes.
    Convert(convert::ConvertArgs),
    /// Measure engines × backends × shapes (speed, memory, quality) and write reports.
    Bench(bench::BenchArgs),
    /// Greedy-token agreement of an engine with a reference engine (ONNX Runtime), e.g. int4 vs fp32.
    Agree(agree::AgreeArgs),
    /// Compile an engine directory's ONNX into a TensorRT engine (model.engine).
    Build(build::BuildArgs),
    /// Check the CUDA engine against the CPU reference (logits, greedy tokens, perplexity).
    CudaCheck(cuda_check::CudaCheckArgs),
    /// OpenAI-compatible HTTP server with in-flight batching over a paged KV cache.
    Serve(serve::ServeArgs),
}

#[derive(Args)]
pub struct ModelArgs {
    /// A GGUF file, an HF checkpoint directory, or `preset:NAME[:SEED]` (seeded random weights).
    #[arg(long, required_unless_present = "engine_dir", conflicts_with = "engine_dir")]
    model: Option<String>,
    /// An engine directory made by `trtforge convert`.
    #[arg(long)]
    engine_dir: Option<PathBuf>,
    /// Execution backend: cpu (f32 reference), ort (ONNX Runtime on the engine dir's model.onnx)
    /// or trt (the engine dir's TensorRT model.engine, made by `trtforge build`; needs a GPU), or cuda
    /// (native CUDA engine; needs an NVIDIA GPU).
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// --backend cuda with --model: weight precision (fp32, fp16, int8, int4). With --engine-dir
    /// the manifest's precision is used.
    #[arg(long, default_value = "fp16", value_parser = values::cuda_precision)]
    precision: String,
    /// --backend cuda, int4: quantization group size along the input dim.
    #[arg(long, default_value_t = 128, value_parser = values::group_size, allow_negative_numbers = true)]
    group_size: usize,
}

/// What a command runs on: a backend plus the tokenizer and config that go with it.
pub struct Runner {
    pub backend: Box<dyn Backend>,
    pub tokenizer: Option<Tokenizer>,
    pub label: String,
}

impl ModelArgs {
    /// Whether this runs an engine dir through ONNX Runtime.
    pub fn is_ort(&self) -> bool {
        self.engine_dir.is_some() && self.backend == BackendKind::Ort
    }

    /// Opens the requested backend with a KV cache for `max_batch` × `max_seq` tokens.
    pub fn open(&self, max_batch: usize, max_seq: impl Fn(&crate::model::LlamaConfig) -> usize) -> Result<Runner> {
        self.open_with(max_batch, max_seq, None)
    }

    /// [`open`](Self::open); `ort_kernels` (when given) decides how ONNX Runtime runs an engine
    /// dir's quantized weights instead of the engine's default (`QuantKernels::for_engine`).
    pub fn open_with(
        &self,
        max_batch: usize,
        max_seq: impl Fn(&crate::model::LlamaConfig) -> usize,
        ort_kernels: Option<crate::backend::ort::QuantKernels>,
    ) -> Result<Runner> {
        match (&self.model, &self.engine_dir, self.backend) {
            (Some(spec), _, BackendKind::Cpu) => {
                let m = load_model(spec)?;
                let n = max_seq(&m.weights.config);
                let label = m.source.to_string();
                let backend = Box::new(CpuBackend::new(Arc::new(m.weights), max_batch, n)?);
                Ok(Runner { backend, tokenizer: m.tokenizer, label })
            }
            (Some(spec), _, BackendKind::Cuda) => {
                // Cheap checks first: the precision, then the GPU, before any weights are made.
                let prec = crate::quant::WeightFormat::parse(&self.precision, self.group_size)?;
                crate::backend::cuda::gpu::probe()?;
                let m = load_model(spec)?;
                let n = max_seq(&m.weights.config);
                let label = m.source.to_string();
                let backend = Box::new(open_cuda(&m.weights, prec, max_batch, n)?);
                Ok(Runner { backend, tokenizer: m.tokenizer, label })
            }
            (Some(_), _, kind) => bail!(
                "--backend {} runs an engine directory: give --engine-dir (made by `trtforge convert`{})",
                kind.name(),
                if kind == BackendKind::Trt { " and `trtforge build`" } else { "" }
            ),
            (None, Some(dir), kind) => {
                let man = Manifest::load(dir)?;
                let tokenizer = match &man.tokenizer {
                    Some(t) => Some(Tokenizer::from_file(&dir.join(t))?),
                    None => None,
                };
                for w in tokenizer.as_ref().map_or(&[][..], |t| t.warnings()) {
                    crate::util::errln!("warning: tokenizer: {w}");
                }
                let n = max_seq(&man.model_config).min(man.build.max_seq_len);
                let label = format!("{} ({})", dir.display(), man.precision_name());
                let t = Instant::now();
                let backend: Box<dyn Backend> = match (kind, ort_kernels) {
                    (BackendKind::Ort, Some(k)) => {
                        Box::new(crate::backend::ort::OrtBackend::open_with(dir, max_batch, n, Some(k))?)
                    }
                    _ => crate::backend::open_engine_dir(dir, kind, max_batch, n)?,
                };
                crate::util::errln!(
                    "opened {} on {} in {:.2} s",
                    dir.display(),
                    kind.name(),
                    t.elapsed().as_secs_f64()
                );
                for n in backend.notes() {
                    crate::util::errln!("note: {n}");
                }
                Ok(Runner { backend, tokenizer, label })
            }
            (None, None, _) => bail!("give --model or --engine-dir"),
        }
    }
}

pub fn main() -> ExitCode {
    restore_sigpipe();
    // clap prints --help / --version / usage errors itself and ignores a failed write; here a
    // --help that could not be written is an error, not a silent success.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if let (Err(w), false) = (e.print(), e.use_stderr()) {
                crate::util::errln!("error: writing to standard output: {w}");
                return ExitCode::FAILURE;
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // The pool is always sized here: rayon would otherwise take RAYON_NUM_THREADS unchecked
    // (100000 spends minutes spawning threads before any output).
    let threads = match (cli.threads, std::env::var("RAYON_NUM_THREADS")) {
        (Some(n), _) => Some(n),
        (None, Ok(s)) => match values::threads(&s) {
            Ok(n) => Some(n),
            Err(e) => {
                crate::util::errln!("error: RAYON_NUM_THREADS={s:?}: {e} (or pass --threads)");
                return ExitCode::from(2);
            }
        },
        (None, Err(_)) => None,
    };
    if let Some(n) = threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            crate::util::errln!("warning: could not set {n} threads: {e}");
        }
    }
    let res = match cli.cmd {
        Command::Generate(a) => generate::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Info(a) => info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Build(a) => build::run(a),
        Command::Agree(a) => agree::run(a),
        Command::CudaCheck(a) => cuda_check::run(a),
        Command::Serve(a) => serve::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::util::errln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Output to a closed pipe (`trtforge info | head -c1`) ends the program quietly, as Unix tools do:
/// killed by SIGPIPE, which a shell reports as 141. Rust ignores SIGPIPE by default, which turns
/// every print to a closed stdout into a panic; restoring the default here covers every print of
/// every command in one place. (A long-running server that writes to sockets keeps it ignored.)
fn restore_sigpipe() {
    // args_os: std::env::args panics on a non-UTF-8 argument (even argv[0], the binary's path).
    if std::env::args_os().nth(1).is_some_and(|a| a == "serve") {
        return;
    }
    // SAFETY: setting a signal's disposition to the default has no preconditions; this runs first
    // thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Writes to stdout and flushes: a stdout that cannot take it (`> /dev/full`, a closed descriptor)
/// is an error (exit 1) where `println!` would panic (exit 101). A closed pipe ends the process by
/// SIGPIPE before that, quietly (see `restore_sigpipe`).
pub fn out(s: impl std::fmt::Display) -> Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    write!(o, "{s}").and_then(|()| o.flush()).context("writing to standard output")
}

/// The command line as typed, for reports (a non-UTF-8 argument shown lossily, never a panic).
pub fn command_line() -> String {
    std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

/// Adds "loading model SPEC" to an error unless the message already names it (OS errors do).
pub fn loading(spec: &str, e: crate::Error) -> anyhow::Error {
    let msg = e.to_string();
    if msg.contains(spec) {
        anyhow::Error::new(e)
    } else {
        anyhow::Error::new(e).context(format!("loading model {spec}"))
    }
}

pub fn load_model(spec: &str) -> Result<LoadedModel> {
    let t = Instant::now();
    let m = load(spec).map_err(|e| loading(spec, e))?;
    for w in m.warnings() {
        crate::util::errln!("warning: {w}");
    }
    crate::util::errln!(
        "loaded {} ({:.1} M params) in {:.2} s",
        m.source,
        m.weights.config.param_count() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    Ok(m)
}

/// The runner's tokenizer, or an error that says what needs it and what to give instead (`hint`).
pub fn need_tokenizer<'a>(r: &'a Runner, what: &str, hint: &str) -> Result<&'a Tokenizer> {
    r.tokenizer.as_ref().with_context(|| format!("{} has no tokenizer, which {what} needs ({hint})", r.label))
}

/// Opens the CUDA engine for `generate` / `eval` and says how long it took.
fn open_cuda(
    w: &crate::model::ModelWeights,
    p: crate::quant::WeightFormat,
    max_batch: usize,
    max_seq: usize,
) -> Result<crate::backend::cuda::CudaBackend> {
    use crate::backend::cuda::{CudaBackend, CudaOptions};
    let t = Instant::now();
    let b = CudaBackend::new(w, CudaOptions::new(p, max_batch, max_seq))?;
    let (cs, cached) = b.compile_info();
    crate::util::errln!(
        "opened the CUDA engine on {} ({}, {:.1} MB of weights) in {:.2} s{}",
        b.device_name(),
        p.label(),
        b.weight_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        if cached { " (kernels from cache)".to_string() } else { format!(" (kernels compiled in {cs:.1} s)") }
    );
    Ok(b)
}
