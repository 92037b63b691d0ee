//! Resolves a `--model` argument (GGUF file, HF checkpoint directory, or `preset:NAME[:SEED]`) into
//! weights and, where the source has one, a tokenizer.
use super::gguf::GgufFile;
use super::hf::HfCheckpoint;
use super::tokenizer::{read_generation_eos, Tokenizer};
use super::{LlamaConfig, ModelWeights};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Default seed of `preset:NAME` weights.
pub const DEFAULT_PRESET_SEED: u64 = 0;

#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    Preset { name: String, seed: u64 },
    Gguf(PathBuf),
    Hf(PathBuf),
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Preset { name, seed } => write!(f, "preset:{name}:{seed}"),
            ModelSource::Gguf(p) | ModelSource::Hf(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The file that marks an engine directory (`trtforge convert`'s output; engine_dir::manifest names it so too), so a
/// model path that is one gets an error that says what to do instead of a missing config.json.
pub const ENGINE_MANIFEST_FILE: &str = "trtforge.json";

impl ModelSource {
    pub fn parse(spec: &str) -> Result<Self> {
        if let Some(rest) = spec.strip_prefix("preset:") {
            let (name, seed) = match rest.split_once(':') {
                Some((n, s)) => (
                    n,
                    s.parse::<u64>()
                        .map_err(|_| Error::Invalid(format!("preset seed {s:?} is not an unsigned integer")))?,
                ),
                None => (rest, DEFAULT_PRESET_SEED),
            };
            LlamaConfig::preset(name)?;
            return Ok(ModelSource::Preset { name: name.to_string(), seed });
        }
        let p = Path::new(spec);
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            if p.join(ENGINE_MANIFEST_FILE).is_file() && !p.join("config.json").exists() {
                return Err(Error::Invalid(format!(
                    "{spec} is a trtforge engine directory ({ENGINE_MANIFEST_FILE}, no config.json): give it as \
                     --engine-dir {spec}"
                )));
            }
            if !p.join("config.json").exists() {
                return Err(Error::Invalid(not_a_checkpoint_dir(spec, p)));
            }
            Ok(ModelSource::Hf(p.to_path_buf()))
        } else if meta.is_file() {
            Ok(ModelSource::Gguf(p.to_path_buf()))
        } else {
            Err(Error::Invalid(format!(
                "{spec} is not a regular file or directory (a GGUF file, an HF model directory or preset:NAME is expected)"
            )))
        }
    }
}

/// What to say of a directory given as a model that has no `config.json`: not an HF checkpoint, and the GGUF files in
/// it (a GGUF model is given as its file), if any.
fn not_a_checkpoint_dir(spec: &str, dir: &Path) -> String {
    let mut ggufs: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.is_file() && f.extension().is_some_and(|x| x.eq_ignore_ascii_case("gguf")))
        .map(|f| f.display().to_string())
        .collect();
    ggufs.sort();
    let mut msg = format!("{spec} is a directory without config.json, so not an HF model directory");
    match ggufs.as_slice() {
        [] => msg.push_str(" (a GGUF file, an HF model directory or preset:NAME is expected)"),
        [one] => msg.push_str(&format!("; it holds a GGUF file: give it as --model {one}")),
        many => msg.push_str(&format!("; it holds GGUF files, give one as --model: {}", many.join(", "))),
    }
    msg
}

pub struct LoadedModel {
    pub source: ModelSource,
    pub weights: ModelWeights,
    pub tokenizer: Option<Tokenizer>,
    /// (tensor name, storage dtype, element count) as found in the checkpoint, for `info`.
    pub tensor_dtypes: Vec<(String, String, u64)>,
    /// Checkpoint tensors the graph does not read (`weights::unused_tensors`), for a warning.
    pub unused: Vec<String>,
}

impl LoadedModel {
    /// What to warn the user of about this model: its tokenizer's warnings and the tensors it does not use.
    pub fn warnings(&self) -> Vec<String> {
        let tok = self.tokenizer.as_ref().map_or(&[][..], |t| t.warnings());
        tok.iter().map(|w| format!("tokenizer: {w}")).chain(self.unused_warning()).collect()
    }

    /// The warning to show when the checkpoint holds tensors the graph does not read, if it does.
    pub fn unused_warning(&self) -> Option<String> {
        let n = self.unused.len();
        (n > 0).then(|| {
            let shown: Vec<&str> = self.unused.iter().take(4).map(String::as_str).collect();
            format!(
                "{n} tensor{} of the checkpoint {} not used by the Llama graph ({}{}): check that the config matches the \
                 weights (e.g. attention_bias, mlp_bias, tie_word_embeddings)",
                if n == 1 { "" } else { "s" },
                if n == 1 { "is" } else { "are" },
                shown.join(", "),
                if n > shown.len() { ", ..." } else { "" }
            )
        })
    }
}

pub fn load(spec: &str) -> Result<LoadedModel> {
    let source = ModelSource::parse(spec)?;
    match &source {
        ModelSource::Preset { name, seed } => {
            let weights = ModelWeights::random(LlamaConfig::preset(name)?, *seed)?;
            let n = weights.config.param_count() as u64;
            Ok(LoadedModel {
                source,
                weights,
                tokenizer: None,
                tensor_dtypes: vec![("*".into(), "f32 (random)".into(), n)],
                unused: Vec::new(),
            })
        }
        ModelSource::Gguf(p) => {
            let g = GgufFile::open(p)?;
            let cfg = g.llama_config()?;
            let weights = ModelWeights::load(cfg, &g)?;
            let tokenizer = Some(Tokenizer::from_gguf_vocab(g.tokenizer_vocab()?)?);
            let tensor_dtypes = g.tensor_dtypes();
            let unused = crate::model::weights::unused_tensors(&weights.config, &g);
            Ok(LoadedModel { source, weights, tokenizer, tensor_dtypes, unused })
        }
        ModelSource::Hf(dir) => {
            let ck = HfCheckpoint::open(dir)?;
            let weights = ModelWeights::load(ck.config().clone(), &ck)?;
            let unused = crate::model::weights::unused_tensors(&weights.config, &ck);
            let tj = dir.join("tokenizer.json");
            let tokenizer = match tj.exists() {
                // config.json may list several eos ids (Llama 3.1); generation_config.json is read
                // by from_file.
                true => {
                    Some(Tokenizer::from_file(&tj)?.with_stop_ids(&read_generation_eos(&dir.join("config.json"))?)?)
                }
                false => None,
            };
            let tensor_dtypes = ck.tensor_dtypes();
            Ok(LoadedModel { source, weights, tokenizer, tensor_dtypes, unused })
        }
    }
}

/// What `info` prints: everything but the weights, which are not read (a preset's random weights
/// are not even made, so `info --model preset:tinyllama-1.1b` is instant).
pub struct ModelSummary {
    pub source: ModelSource,
    pub config: LlamaConfig,
    pub tokenizer: Option<Tokenizer>,
    /// (tensor name, storage dtype, elements), as in [`LoadedModel`].
    pub tensor_dtypes: Vec<(String, String, u64)>,
}

pub fn summarize(spec: &str) -> Result<ModelSummary> {
    let source = ModelSource::parse(spec)?;
    match &source {
        ModelSource::Preset { name, .. } => {
            let config = LlamaConfig::preset(name)?;
            let n = config.param_count() as u64;
            Ok(ModelSummary {
                source,
                config,
                tokenizer: None,
                tensor_dtypes: vec![("*".into(), "f32 (random)".into(), n)],
            })
        }
        ModelSource::Gguf(p) => {
            let g = GgufFile::open(p)?;
            let config = g.llama_config()?;
            crate::model::weights::check_tensor_table(&config, &g)?;
            let tokenizer = Some(Tokenizer::from_gguf_vocab(g.tokenizer_vocab()?)?);
            let tensor_dtypes = g.tensor_dtypes();
            Ok(ModelSummary { source, config, tokenizer, tensor_dtypes })
        }
        ModelSource::Hf(dir) => {
            let ck = HfCheckpoint::open(dir)?;
            let config = ck.config().clone();
            crate::model::weights::check_tensor_table(&config, &ck)?;
            let tj = dir.join("tokenizer.json");
            let tokenizer = if tj.exists() { Some(Tokenizer::from_file(&tj)?) } else { None };
            let tensor_dtypes = ck.tensor_dtypes();
            Ok(ModelSummary { source, config, tokenizer, tensor_dtypes })
        }
    }
}
