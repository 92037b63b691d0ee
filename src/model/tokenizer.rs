//! Text <-> token ids: a thin, typed wrapper over the `tokenizers` crate.
//!
//! Two sources:
//! - an HF `tokenizer.json` (plus, when it sits beside it, `tokenizer_config.json` for bos/eos,
//!   `add_bos_token` and the chat template), via [`Tokenizer::from_file`];
//! - the vocabulary embedded in a GGUF file, handed over as plain data ([`GgufVocab`]) so this
//!   module does not depend on the GGUF parser, via [`Tokenizer::from_gguf_vocab`].
//!
//! A GGUF byte-level BPE vocabulary (`tokenizer.ggml.model = "gpt2"`) is rebuilt into the same
//! pipeline HF's `tokenizer.json` describes (BPE model, byte-level pre-tokenizer chosen by
//! `tokenizer.ggml.pre`, byte-level decoder), so it can be saved as an HF-compatible
//! `tokenizer.json` with [`Tokenizer::save`].
use crate::error::{Error, Result};
use std::path::Path;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::prepend::Prepend;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::utils::Sequence as NormalizerSequence;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::sequence::Sequence as PostSequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::NormalizerWrapper;
use tokenizers::{AddedToken, PostProcessorWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// The tokenizer description a GGUF file carries, as plain data. The GGUF reader fills it from
/// the `tokenizer.*` metadata keys named on each field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE) or `"llama"` (SentencePiece), ...
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer family (`"smollm"`, `"default"`, `"llama-bpe"`...).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, indexed by id. Byte-level vocabularies spell tokens in GPT-2's
    /// byte alphabet (`Ġ` for a space).
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`: `"a b"` pairs, best (lowest rank) first.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type`, one per token (see [`token_type`]); empty means all normal.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.scores`, one per token: SentencePiece piece scores (higher merges first).
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece's `add_dummy_prefix`; absent means true).
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.ggml.bos_token_id`
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`
    pub eos: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`
    pub unk: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`; when absent, llama.cpp's default for the vocabulary type and
    /// pre-tokenizer applies ([`default_add_bos`]).
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`
    pub add_eos: bool,
    /// `tokenizer.ggml.eot_token_id`: end of turn (Llama 3's `<|eot_id|>`), ends generation.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.eom_token_id`: end of message, ends generation.
    pub eom: Option<u32>,
    /// `tokenizer.chat_template` (Jinja source; only used to find a default system prompt).
    pub chat_template: Option<String>,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    /// A `tool` turn's answer to this call (before `content`, as OpenAI's examples write a tool turn: templates
    /// that print a message's keys see them in this order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    pub content: String,
    /// OpenAI's optional participant name (`message.name` in a template; absent when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant turn's tool calls as templates read them: `{"id", "type": "function", "function": {"name",
    /// "arguments"}}`, the arguments an object (transformers' convention; OpenAI's clients send JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into(), name: None, tool_calls: None, tool_call_id: None }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// GPT-2's pre-tokenizer regex family as Llama 3 extends it (from HF's Llama-3 `tokenizer.json`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-2's split regex as llama.cpp writes it (its hand-written matcher implements it).
const GPT2_SPLIT: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// How llama.cpp pre-tokenizes a byte-level BPE vocabulary (llama-vocab.cpp, `llm_tokenizer_bpe`): the
/// `tokenizer.ggml.pre` names that select it and its regexes, applied one after another (each splits the pieces the
/// previous left; matches and the text between them are pieces), then byte-level BPE. The regexes are llama.cpp's
/// own spellings where it adapted a model's original (it runs them with std::regex on a category-collapsed text).
struct PreTokenizer {
    names: &'static [&'static str],
    kind: PreKind,
    /// llama.cpp's `ignore_merges`: a pre-token that is a whole vocabulary entry is that token.
    ignore_merges: bool,
    /// llama.cpp adds bos for this family unless the file says otherwise.
    add_bos: bool,
}

enum PreKind {
    /// HF's `Sequence[Digits(individual), ByteLevel]`: each digit alone, then GPT-2's split.
    DigitsThenGpt2,
    /// GPT-2's byte-level split alone.
    Gpt2,
    /// These regexes one after another.
    Splits(&'static [&'static str]),
}

/// Every byte-level BPE pre-tokenizer llama.cpp knows (llama-vocab.cpp as of llama-cpp-python 0.3.16) that
/// trtforge can reproduce; tests/fixtures/gguf_pre_golden.json holds llama.cpp's own ids for each.
const PRE_TOKENIZERS: &[PreTokenizer] = &[
    PreTokenizer {
        names: &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"],
        kind: PreKind::Splits(&[LLAMA3_SPLIT]),
        ignore_merges: true,
        add_bos: true,
    },
    PreTokenizer { names: &["dbrx", "smaug-bpe"], kind: PreKind::Splits(&[LLAMA3_SPLIT]), ignore_merges: false, add_bos: false },
    PreTokenizer {
        names: &["deepseek-llm"],
        kind: PreKind::Splits(&[
            "[\r\n]",
            "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
            "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
            "\\s+$",
            "[一-龥ࠀ-一가-퟿]+",
            "\\p{N}+",
        ]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["deepseek-v3", "hunyuan-dense"],
        kind: PreKind::Splits(&[
            "\\p{N}{1,3}",
            "[一-龥぀-ゟ゠-ヿ]+",
            // llama.cpp's ASCII \p{S} lacks '~' (its category table for the collapsed text): [\p{S}&&[^~]] here
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}[\\p{S}&&[^~]]]?[\\p{L}\\p{M}]+| ?[\\p{P}[\\p{S}&&[^~]]]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["deepseek-coder"],
        kind: PreKind::Splits(&["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["falcon"],
        kind: PreKind::Splits(&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2_SPLIT, "[0-9][0-9][0-9]"]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"],
        kind: PreKind::DigitsThenGpt2,
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &[
            "gpt2", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
            "exaone4", "mpt", "olmo", "jais", "trillion",
        ],
        kind: PreKind::Gpt2,
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan"],
        kind: PreKind::Splits(&[
            r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["poro-chat", "bloom", "gpt3-finnish"],
        kind: PreKind::Splits(&[" ?[^(\\s|.,!?…。，、।۔،)]+"]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["viking"],
        kind: PreKind::Splits(&[" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["tekken"],
        kind: PreKind::Splits(&[
            r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        ignore_merges: true,
        add_bos: true,
    },
    PreTokenizer {
        names: &["gpt-4o", "llama4"],
        kind: PreKind::Splits(&[
            r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["bailingmoe"],
        kind: PreKind::Splits(&[
            r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
        ]),
        ignore_merges: false,
        add_bos: false,
    },
    PreTokenizer {
        names: &["seed-coder"],
        kind: PreKind::Splits(&[
            r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        ignore_merges: false,
        add_bos: false,
    },
    // llama.cpp's DEFAULT, for `pre = "default"` and (with a warning) a missing key. The second regex is GPT-2's,
    // which llama.cpp runs through an equivalent hand-written matcher.
    PreTokenizer {
        names: &["default"],
        kind: PreKind::Splits(&[r"[\p{P}\$\+<=>\^~\|]+", GPT2_SPLIT, r"\p{N}+", "[0-9][0-9][0-9]"]),
        ignore_merges: false,
        add_bos: false,
    },
];

/// llama.cpp pre-tokenizers trtforge refuses by name, with why.
const PRE_REFUSED: &[(&str, &str)] = &[
    ("jina-v1-en", "an embedding model's (it appends a separator token)"),
    ("jina-v2-code", "an embedding model's (it appends a separator token)"),
    ("roberta-bpe", "an embedding model's (it appends a separator token)"),
    ("glm4", "GLM's (no bos token; not a Llama tokenizer)"),
    ("chatglm-bpe", "GLM's (no bos token; not a Llama tokenizer)"),
    ("chameleon", "Chameleon's (image and sentinel tokens)"),
    ("superbpe", "SuperBPE's (zero-width digit-group splits)"),
    ("kimi-k2", "Kimi K2's (a hand-written matcher in llama.cpp)"),
];

fn pre_tokenizer(name: &str) -> Option<&'static PreTokenizer> {
    PRE_TOKENIZERS.iter().find(|p| p.names.contains(&name))
}

/// Added-token spellings used to guess bos/eos for a `tokenizer.json` without a config beside it.
const BOS_NAMES: &[&str] = &["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"];
const EOS_NAMES: &[&str] = &["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|eot_id|>", "<|im_end|>"];
/// End-of-turn tokens of common chat formats (ChatML, Llama 3, Phi-3, Gemma): chat models stop
/// generating there, so they end generation whenever the vocabulary has them (as llama.cpp's
/// end-of-generation set does).
const END_OF_TURN: &[&str] = &["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"];

/// [`Tokenizer::encode_within`]: bytes a token the prefix allows (real text averages 3–5), and tokens beyond the
/// limit that a cut inside a word may add before a prefix counts as over.
pub const WITHIN_BYTES_PER_TOKEN: usize = 16;
pub const WITHIN_SLACK: usize = 64;
/// Memory [`Tokenizer::encode`] holds a byte of text (the tokenizers crate's normalized string, its
/// alignments and the encoding), with a margin.
pub const ENCODE_BYTES_PER_BYTE: u64 = 200;

/// A text tokenizer with the special-token facts generation needs.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Number of ids: one past the largest (the GGUF token count for GGUF vocabularies).
    n_vocab: usize,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    /// We prepend `bos` ourselves when encoding with special tokens (the wrapped post-processor
    /// never adds it, except for a `tokenizer.json` whose own template does).
    add_bos: bool,
    /// A `tokenizer.json` whose post-processor already inserts a leading bos (e.g. Llama 3's).
    processor_adds_bos: bool,
    /// `encode(.., true)` appends eos (`add_eos_token`; rare).
    add_eos: bool,
    /// Further ids that end generation besides `eos` (`generation_config.json`'s eos list, GGUF
    /// `tokenizer.ggml.eot_token_id` / `eom_token_id`).
    stop_ids: Vec<u32>,
    chat_template: Option<String>,
    default_system: Option<String>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("default_system", &self.default_system)
            .finish_non_exhaustive()
    }
}

fn tok_err(context: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{context}: {e}"))
}

impl Tokenizer {
    /// Loads an HF `tokenizer.json`. When a `tokenizer_config.json` sits in the same folder, its
    /// `bos_token`, `eos_token`, `add_bos_token` and `chat_template` are used; otherwise bos/eos
    /// are guessed from the special added tokens (override with [`Tokenizer::with_bos`] /
    /// [`Tokenizer::with_eos`]).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = crate::util::read_file(path, None)?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| tok_err(format!("{}: not a valid tokenizer.json", path.display()), e))?;
        let config = match path.parent().map(|p| p.join("tokenizer_config.json")) {
            Some(cfg) if cfg.is_file() => Some(HfTokenizerConfig::read(&cfg)?),
            _ => None,
        };
        let mut t = Self::from_hf(inner, config.unwrap_or_default())?;
        if let Some(gen) = path.parent().map(|p| p.join(GENERATION_CONFIG)).filter(|g| g.is_file()) {
            let ids = read_generation_eos(&gen)?;
            let n = t.vocab_size();
            for &id in &ids {
                if id as usize >= n {
                    t.warnings.push(format!("{}: eos_token_id {id} is out of range; ignored", gen.display()));
                } else if Some(id) != t.eos && !t.stop_ids.contains(&id) {
                    t.stop_ids.push(id);
                }
            }
            // A tokenizer_config.json without an eos token: the first of the list is eos.
            if t.eos.is_none() {
                t.eos = ids.first().copied().filter(|&i| (i as usize) < n);
                t.stop_ids.retain(|&i| Some(i) != t.eos);
            }
        }
        Ok(t)
    }

    /// Parses the text of an HF `tokenizer.json` (no `tokenizer_config.json`).
    pub fn from_json_str(json: &str) -> Result<Self> {
        let inner =
            tokenizers::Tokenizer::from_bytes(json.as_bytes()).map_err(|e| tok_err("not a valid tokenizer.json", e))?;
        Self::from_hf(inner, HfTokenizerConfig::default())
    }

    fn from_hf(inner: tokenizers::Tokenizer, cfg: HfTokenizerConfig) -> Result<Self> {
        let mut warnings = Vec::new();
        // What the file's own post-processor inserts around a sequence (Llama 3: a leading bos).
        let probe = |special: bool| -> Vec<u32> {
            inner.encode_fast("a", special).map(|e| e.get_ids().to_vec()).unwrap_or_default()
        };
        let (plain, with_special) = (probe(false), probe(true));
        let processor_bos = if with_special.len() > plain.len() && !with_special.starts_with(&plain) {
            with_special.first().copied()
        } else {
            None
        };
        let processor_eos = with_special.len() > plain.len() && !with_special.ends_with(&plain);
        let specials: Vec<(u32, String)> = {
            let mut v: Vec<(u32, String)> = inner
                .get_added_tokens_decoder()
                .into_iter()
                .filter(|(_, t)| t.special)
                .map(|(id, t)| (id, t.content))
                .collect();
            v.sort();
            v
        };
        let find_named = |names: &[&str]| -> Option<u32> {
            names.iter().find_map(|n| specials.iter().find(|(_, c)| c == n).map(|(id, _)| *id))
        };
        let lookup = |what: &str, tok: &Option<String>, warnings: &mut Vec<String>| -> Option<u32> {
            let t = tok.as_ref()?;
            let id = inner.token_to_id(t);
            if id.is_none() {
                warnings.push(format!("tokenizer_config.json {what} {t:?} is not in the vocabulary"));
            }
            id
        };
        let bos =
            lookup("bos_token", &cfg.bos_token, &mut warnings).or(processor_bos).or_else(|| find_named(BOS_NAMES));
        let eos = lookup("eos_token", &cfg.eos_token, &mut warnings).or_else(|| find_named(EOS_NAMES));
        let unk = lookup("unk_token", &cfg.unk_token, &mut warnings);
        let pad = lookup("pad_token", &cfg.pad_token, &mut warnings);
        let default_system = cfg.chat_template.as_deref().and_then(default_system_prompt);
        // Ids are dense in practice; take the largest id so a hole cannot hide a valid id.
        let max_id = inner.get_vocab(true).into_values().max();
        let n_vocab = max_id.map_or(0, |m| m as usize + 1);
        Ok(Tokenizer {
            inner,
            n_vocab,
            bos,
            eos,
            unk,
            pad,
            add_bos: cfg.add_bos_token.unwrap_or(false) && processor_bos.is_none(),
            processor_adds_bos: processor_bos.is_some(),
            add_eos: cfg.add_eos_token.unwrap_or(false) && eos.is_some() && !processor_eos,
            stop_ids: Vec::new(),
            chat_template: cfg.chat_template,
            default_system,
            warnings,
        })
    }

    /// Builds the tokenizer a GGUF file describes. Supports byte-level BPE (`model = "gpt2"`).
    pub fn from_gguf_vocab(v: GgufVocab) -> Result<Self> {
        let n = v.tokens.len();
        if n == 0 {
            return Err(Error::Tokenizer("GGUF vocabulary has no tokens (tokenizer.ggml.tokens is empty)".into()));
        }
        if n > u32::MAX as usize {
            return Err(Error::Tokenizer(format!("GGUF vocabulary has {n} tokens, more than u32 ids allow")));
        }
        if !v.token_types.is_empty() && v.token_types.len() != n {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {n}; \
                 they must be the same length",
                v.token_types.len()
            )));
        }
        for (what, id) in
            [("bos", v.bos), ("eos", v.eos), ("unk", v.unk), ("pad", v.pad), ("eot", v.eot), ("eom", v.eom)]
        {
            if let Some(id) = id {
                if id as usize >= n {
                    return Err(Error::Tokenizer(format!(
                        "GGUF {what} token id {id} is out of range for a vocabulary of {n} tokens"
                    )));
                }
            }
        }
        match v.model.as_str() {
            "gpt2" => Self::from_gguf_bpe(v),
            "llama" => Self::from_gguf_spm(v),
            other => Err(Error::Unsupported(format!(
                "GGUF tokenizer.ggml.model = {other:?}; supported are byte-level BPE (\"gpt2\") and \
                 SentencePiece (\"llama\")"
            ))),
        }
    }

    fn from_gguf_bpe(v: GgufVocab) -> Result<Self> {
        let mut warnings = Vec::new();
        let mut vocab = Vocab::default();
        let mut duplicates = 0usize;
        for (id, t) in v.tokens.iter().enumerate() {
            // A repeated spelling maps to its last id, as in llama.cpp's and transformers' maps.
            if vocab.insert(t.clone(), id as u32).is_some() {
                duplicates += 1;
            }
        }
        if duplicates > 0 {
            warnings.push(format!("{duplicates} GGUF tokens repeat a later spelling; their ids decode to nothing"));
        }
        let merges = parse_merges(&v.merges)?;
        if v.pre.is_none() {
            warnings.push(
                "GGUF tokenizer.ggml.pre is missing: using llama.cpp's \"default\" pre-tokenizer as llama.cpp does, \
                 which it warns may degrade generation quality; a GGUF written by a current llama.cpp converter names \
                 the model's pre-tokenizer"
                    .into(),
            );
        }
        let pre = v.pre.as_deref().unwrap_or("default");
        let Some(family) = pre_tokenizer(pre) else {
            let why = match PRE_REFUSED.iter().find(|(n, _)| *n == pre) {
                Some((_, what)) => format!("it is {what}, which trtforge does not reproduce"),
                None => "llama.cpp does not know it either (it refuses such a file)".to_string(),
            };
            return Err(Error::Unsupported(format!(
                "GGUF tokenizer.ggml.pre = {pre:?}: this pre-tokenizer decides how text is split before BPE, and {why}; \
                 a GGUF written by llama.cpp's converter for a Llama-family model names one of: {}",
                PRE_TOKENIZERS.iter().flat_map(|p| p.names.iter().copied()).collect::<Vec<_>>().join(", ")
            )));
        };
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(family.ignore_merges)
            .build()
            .map_err(|e| tok_err("building the BPE model from the GGUF vocabulary", e))?;

        let byte_level = ByteLevel::new(false, true, true);
        let pre_tokenizer: PreTokenizerWrapper = match family.kind {
            PreKind::DigitsThenGpt2 => PreSequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
            PreKind::Gpt2 => byte_level.into(),
            PreKind::Splits(regexes) => {
                // Split pieces (matches and the text between), then the byte-level mapping without GPT-2's own split.
                let mut seq: Vec<PreTokenizerWrapper> = Vec::with_capacity(regexes.len() + 1);
                for re in regexes {
                    let split =
                        Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false)
                            .map_err(|e| tok_err(format!("compiling the {pre:?} split regex {re:?}"), e))?;
                    seq.push(split.into());
                }
                seq.push(ByteLevel::new(false, true, false).into());
                PreSequence::new(seq).into()
            }
        };

        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        inner.with_post_processor(Some(ByteLevel::new(true, true, true)));

        add_vocab_tokens(&mut inner, &v, false)?;
        Ok(Self::from_gguf_parts(inner, v, warnings))
    }

    /// The fields every GGUF vocabulary fills the same way.
    fn from_gguf_parts(inner: tokenizers::Tokenizer, v: GgufVocab, warnings: Vec<String>) -> Self {
        let default_system = v.chat_template.as_deref().and_then(default_system_prompt);
        let add_bos = v.add_bos.unwrap_or_else(|| default_add_bos(&v.model, v.pre.as_deref()));
        Tokenizer {
            inner,
            n_vocab: v.tokens.len(),
            bos: v.bos,
            eos: v.eos,
            unk: v.unk,
            pad: v.pad,
            add_bos: add_bos && v.bos.is_some(),
            processor_adds_bos: false,
            add_eos: v.add_eos && v.eos.is_some(),
            stop_ids: [v.eot, v.eom].into_iter().flatten().filter(|&i| Some(i) != v.eos).collect(),
            chat_template: v.chat_template,
            default_system,
            warnings,
        }
    }

    /// A SentencePiece BPE vocabulary (`tokenizer.ggml.model = "llama"`: Llama 2, TinyLlama,
    /// Mistral...) rebuilt as the `tokenizer.json` those models ship: a BPE model with byte
    /// fallback (`<0xNN>` tokens for characters outside the vocabulary) whose merges rank pairs by
    /// the merged piece's score, as SentencePiece and llama.cpp do (transformers' GGUF converter
    /// derives them the same way); a normalizer that writes spaces as `▁` and prepends one
    /// (`add_space_prefix`, SentencePiece's dummy prefix) to every run of text between special
    /// tokens, as llama.cpp does; and the matching decoder.
    fn from_gguf_spm(v: GgufVocab) -> Result<Self> {
        let mut warnings = Vec::new();
        let n = v.tokens.len();
        let mut vocab = Vocab::default();
        for (id, t) in v.tokens.iter().enumerate() {
            vocab.insert(t.clone(), id as u32);
        }
        let merges = if !v.scores.is_empty() {
            if v.scores.len() != n {
                return Err(Error::Tokenizer(format!(
                    "GGUF tokenizer.ggml.scores has {} entries but tokenizer.ggml.tokens has {n}; \
                     they must be the same length",
                    v.scores.len()
                )));
            }
            spm_merges(&v.tokens, &v.scores)
        } else if !v.merges.is_empty() {
            parse_merges(&v.merges)?
        } else {
            return Err(Error::Tokenizer(
                "GGUF SentencePiece vocabulary has neither tokenizer.ggml.scores nor tokenizer.ggml.merges".into(),
            ));
        };
        let mut builder = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true).fuse_unk(true);
        if let Some(unk) = v.unk {
            builder = builder.unk_token(v.tokens[unk as usize].clone());
        }
        let bpe = builder.build().map_err(|e| tok_err("building the BPE model from the GGUF vocabulary", e))?;
        let missing_bytes = (0..=255u8).filter(|b| !v.tokens.contains(&format!("<0x{b:02X}>"))).count();
        if missing_bytes > 0 {
            warnings.push(format!(
                "{missing_bytes} of the 256 byte tokens <0xNN> are missing; characters outside the \
                 vocabulary that need them encode as the unknown token"
            ));
        }

        let mut inner = tokenizers::Tokenizer::new(bpe);
        let space = Replace::new(" ", SPIECE_SPACE).map_err(|e| tok_err("space normalizer", e))?;
        let prefix = v.add_space_prefix.unwrap_or(true);
        let normalizer: NormalizerWrapper = if prefix {
            NormalizerSequence::new(vec![Prepend::new(SPIECE_SPACE.into()).into(), space.into()]).into()
        } else {
            space.into()
        };
        inner.with_normalizer(Some(normalizer)).map_err(|e| tok_err("setting the normalizer", e))?;
        let back = Replace::new(SPIECE_SPACE, " ").map_err(|e| tok_err("space decoder", e))?;
        let mut decoders: Vec<DecoderWrapper> = vec![back.into(), ByteFallback::new().into(), Fuse::new().into()];
        if prefix {
            decoders.push(Strip::new(' ', 1, 0).into());
        }
        inner.with_decoder(Some(DecoderSequence::new(decoders)));
        add_vocab_tokens(&mut inner, &v, true)?;
        Ok(Self::from_gguf_parts(inner, v, warnings))
    }

    /// Overrides the beginning-of-sequence id (`None`: no bos, and none is added).
    pub fn with_bos(mut self, bos: Option<u32>) -> Result<Self> {
        self.check_id("bos", bos)?;
        self.bos = bos;
        if bos.is_none() {
            self.add_bos = false;
        }
        Ok(self)
    }

    /// Overrides the end-of-sequence id.
    pub fn with_eos(mut self, eos: Option<u32>) -> Result<Self> {
        self.check_id("eos", eos)?;
        self.eos = eos;
        Ok(self)
    }

    /// Whether `encode(.., true)` prepends bos (needs a bos id).
    pub fn with_add_bos(mut self, add_bos: bool) -> Result<Self> {
        if add_bos && self.bos.is_none() {
            return Err(Error::Tokenizer("add_bos needs a bos token id; none is known".into()));
        }
        self.add_bos = add_bos && !self.processor_adds_bos;
        Ok(self)
    }

    fn check_id(&self, what: &str, id: Option<u32>) -> Result<()> {
        match id {
            Some(i) if i as usize >= self.vocab_size() => Err(Error::Tokenizer(format!(
                "{what} token id {i} is out of range for a vocabulary of {}",
                self.vocab_size()
            ))),
            _ => Ok(()),
        }
    }

    /// [`encode`](Self::encode), unless `text` surely has more than `limit` tokens: a text of more than
    /// [`WITHIN_BYTES_PER_TOKEN`] bytes a token is first encoded in a prefix of that many bytes per
    /// `limit + WITHIN_SLACK` tokens, and if the prefix alone gives more than that many tokens, `Ok(Err(n))`
    /// with its count `n`, without encoding the rest. A server bounds a request's tokenizing work this
    /// way: a 16 MiB prompt for a 2k context costs the encoding of 40 KiB, not seconds of CPU and
    /// gigabytes of memory.
    pub fn encode_within(
        &self,
        text: &str,
        add_special_tokens: bool,
        limit: usize,
    ) -> Result<std::result::Result<Vec<u32>, usize>> {
        let cap = limit.saturating_add(WITHIN_SLACK);
        let peek = cap.saturating_mul(WITHIN_BYTES_PER_TOKEN);
        if text.len() > peek {
            let n = self.encode(&text[..char_floor(text, peek)], add_special_tokens)?.len();
            if n > cap {
                return Ok(Err(n));
            }
        }
        self.encode(text, add_special_tokens).map(Ok)
    }

    /// The first `need` tokens of `text` (all of them when it has fewer), as [`encode`](Self::encode)
    /// gives them, without encoding more of a long text than they take: prefixes of
    /// [`WITHIN_BYTES_PER_TOKEN`] bytes a token for `need` + [`WITHIN_SLACK`] tokens, doubled until they
    /// hold that many (a cut changes only the tokens next to it; the slack keeps them out of the
    /// result). Perplexity over the first windows of a 50 MB text then encodes kilobytes, not the
    /// whole file (gigabytes of tokenizer memory).
    pub fn encode_prefix(&self, text: &str, add_special_tokens: bool, need: usize) -> Result<Vec<u32>> {
        let want = need.saturating_add(WITHIN_SLACK);
        let mut bytes = want.saturating_mul(WITHIN_BYTES_PER_TOKEN);
        while bytes < text.len() {
            let mut ids = self.encode(&text[..char_floor(text, bytes)], add_special_tokens)?;
            if ids.len() >= want {
                ids.truncate(need);
                return Ok(ids);
            }
            bytes = bytes.saturating_mul(2);
        }
        let mut ids = self.encode(text, add_special_tokens)?;
        ids.truncate(need);
        Ok(ids)
    }

    /// Token ids for `text`. Special tokens spelled in the text (`<|im_start|>`) are always
    /// matched as single tokens, as HF does; `add_special_tokens` adds bos when the tokenizer
    /// says to (and runs a `tokenizer.json`'s own template, if any).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        // The tokenizers crate holds ≈ 185 bytes a byte of text while it encodes (measured on a 50 MB
        // text: 9.2 GB): a text that cannot fit is an error, not the OOM killer.
        if text.len() > 1 << 20 {
            let need = (text.len() as u64).saturating_mul(ENCODE_BYTES_PER_BYTE);
            if let Some(avail) = crate::util::available_memory_bytes().filter(|&a| need > a) {
                return Err(Error::Invalid(format!(
                    "tokenizing {:.1} MiB of text takes about {:.1} GiB of memory, more than the {:.1} GiB available; \
                     use a shorter text",
                    text.len() as f64 / (1u64 << 20) as f64,
                    need as f64 / (1u64 << 30) as f64,
                    avail as f64 / (1u64 << 30) as f64
                )));
            }
        }
        let enc = self.inner.encode_fast(text, add_special_tokens).map_err(|e| tok_err("encode", e))?;
        let ids = enc.get_ids();
        let mut out = Vec::with_capacity(ids.len() + 2);
        match self.bos {
            Some(bos) if add_special_tokens && self.add_bos => out.push(bos),
            _ => {}
        }
        out.extend_from_slice(ids);
        match self.eos {
            Some(eos) if add_special_tokens && self.add_eos => out.push(eos),
            _ => {}
        }
        Ok(out)
    }

    /// Text for `ids`; `skip_special` drops special (control) tokens. Unknown ids are an error.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.check_ids(ids)?;
        self.inner.decode(ids, skip_special).map_err(|e| tok_err("decode", e))
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        let n = self.n_vocab;
        match ids.iter().find(|&&i| i as usize >= n) {
            Some(bad) => Err(Error::Tokenizer(format!("cannot decode token id {bad}: the vocabulary has {n} ids"))),
            None => Ok(()),
        }
    }

    /// An incremental decoder for generated ids.
    pub fn stream_decoder(&self, skip_special: bool) -> StreamDecoder<'_> {
        StreamDecoder { tok: self, skip_special, ids: Vec::new(), prefix: String::new(), prefix_index: 0 }
    }

    /// Number of ids (one past the largest), added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.n_vocab
    }
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }
    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }
    /// Whether `encode(.., true)` adds a bos token (ourselves or through the file's template).
    pub fn adds_bos(&self) -> bool {
        self.add_bos || self.processor_adds_bos
    }

    /// Ids that end generation: eos, the further stop ids the model lists
    /// (`generation_config.json`, GGUF end-of-turn ids), and the end-of-turn tokens of common
    /// chat formats (`<|im_end|>`, `<|eot_id|>`...) when the vocabulary has them.
    pub fn eos_ids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.eos.into_iter().collect();
        let named = END_OF_TURN.iter().filter_map(|t| self.token_to_id(t));
        for id in self.stop_ids.iter().copied().chain(named) {
            if !v.contains(&id) {
                v.push(id);
            }
        }
        v
    }

    /// Adds ids that end generation (checked against the vocabulary).
    pub fn with_stop_ids(mut self, ids: &[u32]) -> Result<Self> {
        for &id in ids {
            self.check_id("stop", Some(id))?;
            if Some(id) != self.eos && !self.stop_ids.contains(&id) {
                self.stop_ids.push(id);
            }
        }
        Ok(self)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The bytes one token stands for: its text's UTF-8, or, for a token that is only part of a
    /// character (a byte-fallback `<0xE2>` or a GPT-2 byte-level piece), its raw bytes. What
    /// OpenAI's `bytes` field carries.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let text = self.decode(&[id], false).unwrap_or_default();
        if !text.contains('\u{FFFD}') {
            return text.into_bytes();
        }
        if let Some(t) = self.id_to_token(id) {
            if let Some(b) = t.strip_prefix("<0x").and_then(|r| r.strip_suffix('>')).filter(|h| h.len() == 2) {
                if let Ok(b) = u8::from_str_radix(b, 16) {
                    return vec![b];
                }
            }
            if let Some(b) = t.chars().map(byte_level_byte).collect::<Option<Vec<u8>>>() {
                return b;
            }
        }
        text.into_bytes()
    }

    /// The chat template source the tokenizer came with, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
    /// The system prompt the chat template inserts when a conversation does not start with one
    /// (a plain ChatML literal only; [`crate::model::chat`] renders the template itself).
    pub fn default_system_prompt(&self) -> Option<&str> {
        self.default_system.as_deref()
    }

    /// Things that loaded but may not behave exactly as the model's own tokenizer (unknown
    /// pre-tokenizer type, repeated tokens, config tokens missing from the vocabulary).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// An HF-compatible `tokenizer.json`. When this tokenizer adds bos itself, the JSON gets a
    /// template post-processor that does the same, so HF loaders agree on `encode(.., true)`.
    pub fn to_json(&self) -> Result<String> {
        let mut t = self.inner.clone();
        // (token, id) this tokenizer adds itself before / after the text.
        let named = |what: &str, on: bool, id: Option<u32>| -> Result<Option<(String, u32)>> {
            let Some(id) = id.filter(|_| on) else { return Ok(None) };
            let name = self.id_to_token(id).ok_or_else(|| Error::Tokenizer(format!("{what} id {id} has no token")))?;
            if name.contains(char::is_whitespace) {
                return Err(Error::Tokenizer(format!(
                    "{what} token {name:?} contains whitespace; it cannot be written into a template"
                )));
            }
            Ok(Some((name, id)))
        };
        let bos = named("bos", self.add_bos, self.bos)?;
        let eos = named("eos", self.add_eos, self.eos)?;
        if bos.is_some() || eos.is_some() {
            let (b, e) = (bos.as_ref().map(|x| x.0.as_str()), eos.as_ref().map(|x| x.0.as_str()));
            let join = |parts: Vec<Option<&str>>| parts.into_iter().flatten().collect::<Vec<_>>().join(" ");
            let b1 = b.map(|b| format!("{b}:1"));
            let e1 = e.map(|e| format!("{e}:1"));
            let template = TemplateProcessing::builder()
                .try_single(join(vec![b, Some("$A:0"), e]))
                .and_then(|x| x.try_pair(join(vec![b, Some("$A:0"), e, b1.as_deref(), Some("$B:1"), e1.as_deref()])))
                .map_err(|e| tok_err("bos/eos template", e))?
                .special_tokens(bos.iter().chain(eos.iter()).cloned().collect::<Vec<_>>())
                .build()
                .map_err(|e| tok_err("bos/eos template", e))?;
            let mut procs: Vec<PostProcessorWrapper> = t.get_post_processor().cloned().into_iter().collect();
            procs.push(template.into());
            t.with_post_processor(Some(PostSequence::new(procs)));
        }
        t.to_string(true).map_err(|e| tok_err("serializing tokenizer.json", e))
    }

    /// Writes [`Tokenizer::to_json`] to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.to_json()?;
        std::fs::write(path, json).map_err(|e| Error::io(path, e))
    }

    /// An HF `tokenizer_config.json` with the facts `tokenizer.json` cannot hold (bos/eos names,
    /// `add_bos_token`, chat template). [`Tokenizer::from_file`] reads it back from beside the
    /// `tokenizer.json`.
    pub fn config_json(&self) -> Result<String> {
        let name = |id: Option<u32>| id.and_then(|i| self.id_to_token(i));
        let mut obj = serde_json::Map::new();
        obj.insert("tokenizer_class".into(), "PreTrainedTokenizerFast".into());
        for (key, id) in
            [("bos_token", self.bos), ("eos_token", self.eos), ("unk_token", self.unk), ("pad_token", self.pad)]
        {
            obj.insert(key.into(), name(id).map_or(serde_json::Value::Null, Into::into));
        }
        obj.insert("add_bos_token".into(), self.adds_bos().into());
        obj.insert("add_eos_token".into(), self.add_eos.into());
        if let Some(t) = &self.chat_template {
            obj.insert("chat_template".into(), t.clone().into());
        }
        serde_json::to_string_pretty(&serde_json::Value::Object(obj))
            .map_err(|e| tok_err("serializing tokenizer_config.json", e))
    }

    /// A `generation_config.json` holding the ids that end generation (`eos_token_id`, a list
    /// when there are several) and bos; [`Tokenizer::from_file`] reads it back.
    pub fn generation_config_json(&self) -> Result<String> {
        let eos = self.eos_ids();
        let mut obj = serde_json::Map::new();
        if let Some(b) = self.bos {
            obj.insert("bos_token_id".into(), b.into());
        }
        obj.insert(
            "eos_token_id".into(),
            match eos.as_slice() {
                [one] => (*one).into(),
                many => many.to_vec().into(),
            },
        );
        serde_json::to_string_pretty(&serde_json::Value::Object(obj))
            .map_err(|e| tok_err("serializing generation_config.json", e))
    }

    /// Writes `tokenizer.json`, `tokenizer_config.json` and `generation_config.json` into `dir`.
    pub fn save_pretrained(&self, dir: &Path) -> Result<()> {
        self.save(&dir.join("tokenizer.json"))?;
        let cfg = dir.join("tokenizer_config.json");
        std::fs::write(&cfg, self.config_json()?).map_err(|e| Error::io(cfg, e))?;
        let gen = dir.join(GENERATION_CONFIG);
        std::fs::write(&gen, self.generation_config_json()?).map_err(|e| Error::io(gen, e))
    }
}

/// HF's file of generation defaults; trtforge reads (and writes) its `eos_token_id`.
pub const GENERATION_CONFIG: &str = "generation_config.json";

/// The `eos_token_id` of a `generation_config.json`: a number or a list of numbers (absent: none).
pub fn read_generation_eos(path: &Path) -> Result<Vec<u32>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::format(path, format!("invalid JSON: {e}")))?;
    let bad = |x: &serde_json::Value| {
        Error::format(path, format!("eos_token_id must be a token id or a list of token ids, found {x}"))
    };
    let id = |x: &serde_json::Value| x.as_u64().and_then(|i| u32::try_from(i).ok()).ok_or_else(|| bad(x));
    match v.get("eos_token_id") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a.iter().map(id).collect(),
        Some(x) => Ok(vec![id(x)?]),
    }
}

/// SentencePiece's space marker.
const SPIECE_SPACE: &str = "\u{2581}";

/// Whether bos is added when `tokenizer.ggml.add_bos_token` is absent: llama.cpp's defaults (llama-vocab.cpp,
/// `llama_vocab::impl::load`) for the vocabularies trtforge reads — true for SentencePiece (`llama`) and for
/// byte-level BPE with a pre-tokenizer llama.cpp adds bos for (the Llama 3 family, `tekken`:
/// [`PreTokenizer::add_bos`]), false for every other BPE pre-tokenizer (`smaug-bpe`, `smollm`, `default`, `gpt-2`...).
fn default_add_bos(model: &str, pre: Option<&str>) -> bool {
    match model {
        "llama" => true,
        "gpt2" => pre.and_then(pre_tokenizer).is_some_and(|p| p.add_bos),
        _ => false,
    }
}

/// `tokenizer.ggml.merges` entries (`"a b"`) as pairs.
fn parse_merges(merges: &[String]) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| match m.split_once(' ') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(' ') => Ok((a.to_string(), b.to_string())),
            _ => Err(Error::Tokenizer(format!("GGUF merge #{i} {m:?} is not two tokens separated by one space"))),
        })
        .collect()
}

/// BPE merges that reproduce SentencePiece's score-ordered merging: every split of a piece into
/// two pieces of the vocabulary, best (highest) score of the merged piece first; ties broken by
/// the longer left part, then the longer right part, then vocabulary order. This is
/// transformers' `generate_merges` with scores, step for step, so the saved `tokenizer.json`
/// matches what transformers builds from the same GGUF.
fn spm_merges(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    use std::collections::HashMap;
    // Python dict semantics: the last id of a repeated spelling wins; iteration follows the
    // first occurrence, with the last score.
    let mut id: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    let mut score: HashMap<&str, f32> = HashMap::with_capacity(tokens.len());
    let mut order: Vec<&str> = Vec::with_capacity(tokens.len());
    for (i, (t, &s)) in tokens.iter().zip(scores).enumerate() {
        id.insert(t, i);
        if score.insert(t, s).is_none() {
            order.push(t);
        }
    }
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for t in order {
        let s = score[t];
        let mut local: Vec<(&str, &str, f32)> = t
            .char_indices()
            .skip(1)
            .map(|(at, _)| t.split_at(at))
            .filter(|(l, r)| id.contains_key(l) && id.contains_key(r))
            .map(|(l, r)| (l, r, s))
            .collect();
        local.sort_by_key(|(l, r, _)| (id[l], id[r]));
        merges.extend(local);
    }
    // A stable sort, descending, like Python's `sorted(..., reverse=True)`.
    let chars = |x: &str| x.chars().count();
    merges.sort_by(|a, b| {
        b.2.partial_cmp(&a.2)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| chars(b.0).cmp(&chars(a.0)))
            .then_with(|| chars(b.1).cmp(&chars(a.1)))
    });
    merges.into_iter().map(|(l, r, _)| (l.to_string(), r.to_string())).collect()
}

/// Adds the vocabulary's control tokens (and, with `unknown_special`, its unknown token) as
/// special added tokens, matched whole in the input and skipped by `decode(.., true)`, and its
/// user-defined ones as plain added tokens, matched whole but decoded as text (as llama.cpp and
/// transformers do). Every one is already spelled in the vocabulary, so none gets a new id.
fn add_vocab_tokens(inner: &mut tokenizers::Tokenizer, v: &GgufVocab, unknown_special: bool) -> Result<()> {
    let n = v.tokens.len();
    let ty = |i: usize| v.token_types.get(i).copied().unwrap_or(token_type::NORMAL);
    let special = |t: i32| t == token_type::CONTROL || (unknown_special && t == token_type::UNKNOWN);
    let control: Vec<AddedToken> = (0..n)
        .filter(|&i| special(ty(i)))
        .map(|i| AddedToken::from(v.tokens[i].clone(), true).normalized(false))
        .collect();
    let user: Vec<AddedToken> = (0..n)
        .filter(|&i| ty(i) == token_type::USER_DEFINED)
        .map(|i| AddedToken::from(v.tokens[i].clone(), false).normalized(false))
        .collect();
    inner.add_special_tokens(control).map_err(|e| tok_err("adding control tokens", e))?;
    inner.add_tokens(user).map_err(|e| tok_err("adding user-defined tokens", e))?;
    if let Some(max) = inner.get_added_tokens_decoder().keys().max() {
        if *max as usize >= n {
            return Err(Error::Tokenizer(format!(
                "GGUF vocabulary of {n} tokens rebuilt with an added token at id {max}"
            )));
        }
    }
    Ok(())
}

/// The largest char boundary of `text` at or below `at` (`str::floor_char_boundary`, newer than this
/// crate's MSRV).
fn char_floor(text: &str, at: usize) -> usize {
    let mut cut = at.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// The byte a character of GPT-2's byte-level alphabet stands for: printable Latin-1 bytes are
/// themselves, the other 68 bytes are U+0100 onward in byte order.
fn byte_level_byte(c: char) -> Option<u8> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let c = c as u32;
    if printable(c) {
        return Some(c as u8);
    }
    let k = c.checked_sub(256)?;
    (0u32..256).filter(|&b| !printable(b)).nth(k as usize).map(|b| b as u8)
}

/// Turns generated ids into text one id at a time. A byte-level token can end in the middle of a
/// UTF-8 character; text is emitted only once the decoded tail is complete (does not end in
/// U+FFFD) and has grown. The concatenation of every `step` plus `finish` equals
/// `decode(all ids)`. The ids kept are only those since the last emitted chunk's start.
pub struct StreamDecoder<'t> {
    tok: &'t Tokenizer,
    skip_special: bool,
    /// Ids from the start of the previously emitted chunk onward.
    ids: Vec<u32>,
    /// `decode(ids[..prefix_index])`: the text already emitted from `ids`.
    prefix: String,
    prefix_index: usize,
}

impl StreamDecoder<'_> {
    /// Feeds one id; returns the newly completed text (empty when the id completes nothing yet).
    pub fn step(&mut self, id: u32) -> Result<String> {
        // Checked before it joins the window, so one bad id does not poison later steps.
        self.tok.check_ids(&[id])?;
        if self.prefix.is_empty() && !self.ids.is_empty() {
            // Nothing emitted since the window moved: re-anchor once the held ids form a valid prefix.
            let p = self.tok.decode(&self.ids, self.skip_special)?;
            if !p.ends_with('\u{FFFD}') {
                self.prefix = p;
                self.prefix_index = self.ids.len();
            }
        }
        self.ids.push(id);
        let text = self.tok.decode(&self.ids, self.skip_special)?;
        if text.len() <= self.prefix.len() || text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let new = text.strip_prefix(self.prefix.as_str()).ok_or_else(|| {
            Error::Tokenizer(format!(
                "stream decode: {:?} does not extend the text already emitted ({:?})",
                text, self.prefix
            ))
        })?;
        let new = new.to_string();
        // Keep the ids of the chunk just emitted as context for the next one.
        let keep = self.ids.len() - self.prefix_index;
        self.ids.drain(..self.prefix_index);
        self.prefix = self.tok.decode(&self.ids, self.skip_special)?;
        self.prefix_index = keep;
        Ok(new)
    }

    /// Returns whatever is still held back (an incomplete character decodes to U+FFFD), and resets.
    pub fn finish(&mut self) -> Result<String> {
        let text = self.tok.decode(&self.ids, self.skip_special)?;
        let rest = text.strip_prefix(self.prefix.as_str()).unwrap_or(&text).to_string();
        let rest = if text.len() > self.prefix.len() { rest } else { String::new() };
        self.ids.clear();
        self.prefix.clear();
        self.prefix_index = 0;
        Ok(rest)
    }
}

/// The parts of an HF `tokenizer_config.json` this module uses.
#[derive(Debug, Default)]
struct HfTokenizerConfig {
    bos_token: Option<String>,
    eos_token: Option<String>,
    unk_token: Option<String>,
    pad_token: Option<String>,
    add_bos_token: Option<bool>,
    add_eos_token: Option<bool>,
    chat_template: Option<String>,
}

impl HfTokenizerConfig {
    /// `chat_template.jinja` in the folder of `config`, if there is one.
    fn template_file(config: &Path) -> Result<Option<String>> {
        let Some(dir) = config.parent() else { return Ok(None) };
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            return std::fs::read_to_string(&jinja).map(Some).map_err(|e| Error::io(&jinja, e));
        }
        Ok(None)
    }

    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::format(path, format!("invalid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| Error::format(path, "expected a JSON object"))?;
        // A token is written either as a string or as {"content": "...", ...}.
        let token = |key: &str| -> Option<String> {
            match obj.get(key)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
                _ => None,
            }
        };
        // Newer transformers save the template beside the config (chat_template.jinja), and such a file takes
        // priority over the config's entry, as in transformers (a processor's chat_template.json is not a
        // tokenizer's: transformers' tokenizers ignore it). In the config, a chat template is a string, or a
        // list of {"name", "template"} (take "default"; as transformers, a list without one is an error, not
        // "no template").
        let file = Self::template_file(path)?;
        let chat_template = match obj.get("chat_template").filter(|_| file.is_none()) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(a)) => {
                let named = |t: &serde_json::Value| t.get("name").and_then(|n| n.as_str()).map(str::to_string);
                match a.iter().find(|t| named(t).as_deref() == Some("default")) {
                    Some(t) => t.get("template").and_then(|x| x.as_str()).map(str::to_string),
                    None => {
                        let names: Vec<String> = a.iter().filter_map(named).collect();
                        return Err(Error::format(
                            path,
                            format!(
                                "chat_template lists several templates ({}) and none is named \"default\"",
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
            _ => None,
        };
        let chat_template = file.or(chat_template);
        Ok(HfTokenizerConfig {
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
            unk_token: token("unk_token"),
            pad_token: token("pad_token"),
            add_bos_token: obj.get("add_bos_token").and_then(|b| b.as_bool()),
            add_eos_token: obj.get("add_eos_token").and_then(|b| b.as_bool()),
            chat_template,
        })
    }
}

/// The literal system message a ChatML template inserts when the conversation has none, e.g.
/// SmolLM2's `{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou
/// are ...<|im_end|>\n' }}{% endif %}`. `None` unless it is a plain literal.
fn default_system_prompt(template: &str) -> Option<String> {
    let conditional = ["!= 'system'", "!= \"system\""].iter().any(|c| template.contains(c));
    if !conditional {
        return None;
    }
    // The newline may be a real one or a `\n` escape inside the Jinja string literal.
    let (start, escaped) = ["<|im_start|>system\n", "<|im_start|>system\\n"]
        .iter()
        .enumerate()
        .find_map(|(i, m)| template.find(m).map(|p| (p + m.len(), i == 1)))?;
    let rest = &template[start..];
    let body = &rest[..rest.find("<|im_end|>")?];
    if body.contains(['\'', '"', '{', '}', '+']) || body.contains("\\'") {
        return None;
    }
    Some(if escaped { body.replace("\\n", "\n") } else { body.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-level vocabulary small enough to write by hand: every printable ASCII byte as
    /// itself plus the GPT-2 spellings we need, a few merges and three control tokens.
    fn tiny_vocab() -> GgufVocab {
        let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_start|>".into(), "<|im_end|>".into()];
        let mut token_types = vec![3, 3, 3];
        // GPT-2 byte alphabet: printable ASCII maps to itself, the rest (space, newline, high bytes)
        // to U+0100 + k. Include all 256 so any text can be encoded.
        for c in byte_alphabet() {
            tokens.push(c.to_string());
            token_types.push(1);
        }
        for t in ["he", "ll", "llo", "hello", "Ġw", "Ġworld", "or", "ld", "Ġwor", "ĠĠ"] {
            tokens.push(t.into());
            token_types.push(1);
        }
        let merges = ["h e", "l l", "ll o", "he llo", "Ġ w", "o r", "l d", "Ġw or", "Ġwor ld", "Ġ Ġ"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        GgufVocab {
            model: "gpt2".into(),
            pre: Some("smollm".into()),
            tokens,
            merges,
            token_types,
            bos: Some(1),
            eos: Some(2),
            unk: Some(0),
            pad: Some(2),
            add_bos: Some(false),
            chat_template: None,
            ..Default::default()
        }
    }

    /// GPT-2's bytes_to_unicode, in byte order.
    fn byte_alphabet() -> Vec<char> {
        let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
        let mut cs = bs.clone();
        let mut n = 0;
        for b in 0..256u32 {
            if !bs.contains(&b) {
                bs.push(b);
                cs.push(256 + n);
                n += 1;
            }
        }
        let mut pairs: Vec<(u32, u32)> = bs.into_iter().zip(cs).collect();
        pairs.sort();
        pairs.into_iter().filter_map(|(_, c)| char::from_u32(c)).collect()
    }

    fn id(t: &Tokenizer, s: &str) -> u32 {
        t.token_to_id(s).unwrap()
    }

    #[test]
    fn gguf_bpe_merges_and_specials() {
        let t = Tokenizer::from_gguf_vocab(tiny_vocab()).unwrap();
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
        let ids = t.encode("hello world", false).unwrap();
        assert_eq!(ids, vec![id(&t, "hello"), id(&t, "Ġworld")]);
        let ids = t.encode("<|im_start|>hello<|im_end|>", false).unwrap();
        assert_eq!(ids, vec![1, id(&t, "hello"), 2]);
        assert_eq!(t.decode(&ids, false).unwrap(), "<|im_start|>hello<|im_end|>");
        assert_eq!(t.decode(&ids, true).unwrap(), "hello");
        assert_eq!(t.eos_ids(), vec![2]);
        assert_eq!(t.bos_id(), Some(1));
        assert!(!t.adds_bos());
        assert_eq!(t.encode("hello", true).unwrap(), vec![id(&t, "hello")]);
    }

    #[test]
    fn encode_within_stops_at_a_prefix_only_when_surely_over() {
        let t = Tokenizer::from_gguf_vocab(tiny_vocab()).unwrap();
        // Within the limit, or too short to cut: exactly `encode`, even beyond the limit.
        let text = "hello world ".repeat(20);
        assert_eq!(t.encode_within(&text, false, 1000).unwrap(), Ok(t.encode(&text, false).unwrap()));
        assert_eq!(t.encode_within(&text, false, 3).unwrap(), Ok(t.encode(&text, false).unwrap()));
        // Far over: the count of the prefix of (limit + slack) × 16 bytes only ("hello world " is 2 tokens a 12 bytes).
        let limit = 10;
        let long = "hello world ".repeat(10_000);
        let peek = (limit + WITHIN_SLACK) * WITHIN_BYTES_PER_TOKEN;
        let n = t.encode_within(&long, false, limit).unwrap().unwrap_err();
        assert_eq!(n, t.encode(&long[..peek], false).unwrap().len());
        assert!(n > limit + WITHIN_SLACK && n < t.encode(&long, false).unwrap().len());
        // A cut inside a multi-byte character moves back to its start.
        let wide = "é".repeat(5_000);
        assert!(t.encode_within(&wide, false, 10).unwrap().is_err());
        // encode_prefix: the whole text's first tokens, from a prefix when the text is long.
        let all = t.encode(&long, false).unwrap();
        for need in [0, 1, 7, 500, all.len(), all.len() + 5] {
            assert_eq!(t.encode_prefix(&long, false, need).unwrap(), all[..need.min(all.len())], "{need}");
        }
        let all_wide = t.encode(&wide, false).unwrap();
        assert_eq!(t.encode_prefix(&wide, false, 100).unwrap(), all_wide[..100]);
    }

    #[test]
    fn a_text_too_large_to_tokenize_here_is_an_error() {
        let t = Tokenizer::from_gguf_vocab(tiny_vocab()).unwrap();
        let Some(avail) = crate::util::available_memory_bytes() else { return };
        // Just over what the available memory allows (refused before any work), and a 2 MiB text (encoded).
        let big = "hello ".repeat((avail / ENCODE_BYTES_PER_BYTE) as usize / 6 + (1 << 19));
        let e = t.encode(&big, false).unwrap_err().to_string();
        assert!(e.contains("more than the") && e.contains("GiB available"), "{e}");
        assert_eq!(t.encode(&"hello ".repeat(350_000), false).unwrap().len(), 700_000);
    }

    #[test]
    fn digits_are_split_before_byte_level() {
        // "a  1": with Digits first, "a  " is pre-tokenized alone and its trailing "  " merges
        // into "ĠĠ"; plain GPT-2 splitting gives "a", " ", " 1" instead.
        let t = Tokenizer::from_gguf_vocab(tiny_vocab()).unwrap();
        assert_eq!(t.encode("a  1", false).unwrap(), vec![id(&t, "a"), id(&t, "ĠĠ"), id(&t, "1")]);
        let mut v = tiny_vocab();
        v.pre = Some("gpt-2".into());
        let plain = Tokenizer::from_gguf_vocab(v).unwrap();
        assert_eq!(plain.encode("a  1", false).unwrap(), vec![id(&t, "a"), id(&t, "Ġ"), id(&t, "Ġ"), id(&t, "1")]);
    }

    #[test]
    fn add_bos_and_overrides() {
        let mut v = tiny_vocab();
        v.add_bos = Some(true);
        let t = Tokenizer::from_gguf_vocab(v).unwrap();
        assert_eq!(t.encode("hello", true).unwrap(), vec![1, id(&t, "hello")]);
        assert_eq!(t.encode("hello", false).unwrap(), vec![id(&t, "hello")]);
        // The saved JSON carries the bos template, so a reload agrees.
        let back = Tokenizer::from_json_str(&t.to_json().unwrap()).unwrap();
        assert_eq!(back.encode("hello", true).unwrap(), vec![1, id(&t, "hello")]);
        assert_eq!(back.bos_id(), Some(1));
        assert!(back.adds_bos());
        let t = t.with_bos(Some(0)).unwrap().with_eos(Some(0)).unwrap();
        assert_eq!(t.encode("hello", true).unwrap(), vec![0, id(&t, "hello")]);
        assert_eq!(t.eos_ids(), vec![0, 2]);
        assert!(t.clone().with_bos(Some(1_000_000)).is_err());
        let t = t.with_bos(None).unwrap();
        assert_eq!(t.encode("hello", true).unwrap(), vec![id(&t, "hello")]);
        assert!(t.with_add_bos(true).is_err());
    }

    #[test]
    fn unknown_pre_is_refused_and_user_defined_tokens_decode_as_text() {
        for (pre, why) in [("martian", "does not know it"), ("kimi-k2", "Kimi K2"), ("chatglm-bpe", "GLM")] {
            let mut v = tiny_vocab();
            v.pre = Some(pre.into());
            let e = Tokenizer::from_gguf_vocab(v).unwrap_err().to_string();
            assert!(e.contains(&format!("{pre:?}")) && e.contains(why) && e.contains("tekken"), "{e}");
        }
        let mut v = tiny_vocab();
        v.pre = Some("gpt-2".into());
        v.tokens.push("<think>".into());
        v.token_types.push(4);
        let t = Tokenizer::from_gguf_vocab(v).unwrap();
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
        let think = id(&t, "<think>");
        assert_eq!(t.encode("<think>hello", false).unwrap(), vec![think, id(&t, "hello")]);
        assert_eq!(t.decode(&[think, 2], true).unwrap(), "<think>");
    }

    #[test]
    fn bad_vocabularies_are_rejected() {
        let mut v = tiny_vocab();
        v.token_types.pop();
        assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(m)) if m.contains("same length")));
        let mut v = tiny_vocab();
        v.model = "llama".into();
        v.scores = vec![0.0; 3];
        assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(m)) if m.contains("scores")));
        let mut v = tiny_vocab();
        v.model = "llama".into();
        v.merges.clear();
        assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(m)) if m.contains("neither")));
        let mut v = tiny_vocab();
        v.model = "bert".into();
        assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Unsupported(_))));
        let mut v = tiny_vocab();
        v.merges.push("nospace".into());
        assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(m)) if m.contains("merge")));
        let mut v = tiny_vocab();
        v.merges.push("zz qq".into());
        assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(_))));
        let mut v = tiny_vocab();
        v.eos = Some(1 << 20);
        assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(m)) if m.contains("out of range")));
        assert!(Tokenizer::from_gguf_vocab(GgufVocab { model: "gpt2".into(), ..Default::default() }).is_err());
        let t = Tokenizer::from_gguf_vocab(tiny_vocab()).unwrap();
        assert!(t.decode(&[1 << 30], false).is_err());
    }

    /// A hand-made SentencePiece vocabulary: specials, all 256 byte tokens, a few pieces.
    fn tiny_spm() -> GgufVocab {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut token_types = vec![2, 3, 3];
        let mut scores = vec![0.0, 0.0, 0.0];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            token_types.push(6);
            scores.push(0.0);
        }
        // Piece scores: "▁h" merges before "he", so "▁he" is reached through "▁h" + "e".
        for (i, t) in ["▁", "h", "e", "l", "o", "▁h", "he", "ll", "▁he", "llo", "▁hello"].iter().enumerate() {
            tokens.push(t.to_string());
            token_types.push(1);
            scores.push(match *t {
                "▁h" => -1.0,
                "he" => -2.0,
                _ => -(10.0 + i as f32),
            });
        }
        GgufVocab {
            model: "llama".into(),
            tokens,
            token_types,
            scores,
            bos: Some(1),
            eos: Some(2),
            unk: Some(0),
            add_bos: Some(true),
            ..Default::default()
        }
    }

    #[test]
    fn spm_merges_follow_scores_and_bytes_fall_back() {
        let t = Tokenizer::from_gguf_vocab(tiny_spm()).unwrap();
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
        assert_eq!(t.encode("hello", true).unwrap(), vec![1, id(&t, "▁hello")]);
        // "\n" and "z" are not pieces: byte fallback. A leading space gives a second "▁".
        let ids = t.encode(" hez\n", false).unwrap();
        let pieces: Vec<String> = ids.iter().map(|&i| t.id_to_token(i).unwrap()).collect();
        assert_eq!(pieces, ["▁", "▁he", "<0x7A>", "<0x0A>"]);
        assert_eq!(t.decode(&ids, false).unwrap(), " hez\n");
        // The space prefix follows a special token too (llama.cpp's rule).
        assert_eq!(t.encode("</s>hello", false).unwrap(), vec![2, id(&t, "▁hello")]);
        let mut v = tiny_spm();
        v.add_space_prefix = Some(false);
        let t = Tokenizer::from_gguf_vocab(v).unwrap();
        let pieces: Vec<String> = t.encode("he", false).unwrap().iter().map(|&i| t.id_to_token(i).unwrap()).collect();
        assert_eq!(pieces, ["he"]);
        assert_eq!(t.decode(&t.encode(" he", false).unwrap(), false).unwrap(), " he");
    }

    #[test]
    fn stream_decoder_holds_split_characters() {
        let t = Tokenizer::from_gguf_vocab(tiny_vocab()).unwrap();
        // "é" is two bytes, two byte tokens here.
        let ids = t.encode("hé!", false).unwrap();
        assert_eq!(ids.len(), 4);
        let mut s = t.stream_decoder(false);
        let parts: Vec<String> = ids.iter().map(|&i| s.step(i).unwrap()).collect();
        assert_eq!(parts, vec!["h", "", "é", "!"]);
        assert_eq!(s.finish().unwrap(), "");
        // A sequence that stops mid-character is flushed by finish.
        let mut s = t.stream_decoder(false);
        assert_eq!(s.step(ids[0]).unwrap(), "h");
        assert_eq!(s.step(ids[1]).unwrap(), "");
        assert_eq!(s.finish().unwrap(), "\u{FFFD}");
    }

    #[test]
    fn stream_decoder_rejects_bad_ids_without_losing_state() {
        let t = Tokenizer::from_gguf_vocab(tiny_vocab()).unwrap();
        let ids = t.encode("hé", false).unwrap();
        let mut s = t.stream_decoder(false);
        assert_eq!(s.step(ids[0]).unwrap(), "h");
        assert_eq!(s.step(ids[1]).unwrap(), "");
        assert!(s.step(u32::MAX).is_err());
        assert_eq!(s.step(ids[2]).unwrap(), "é");
    }

    #[test]
    fn repeated_tokens_warn_and_map_to_the_last_id() {
        let mut v = tiny_vocab();
        v.tokens.push("hello".into());
        v.token_types.push(1);
        let last = (v.tokens.len() - 1) as u32;
        let t = Tokenizer::from_gguf_vocab(v).unwrap();
        assert_eq!(t.warnings().len(), 1, "{:?}", t.warnings());
        assert_eq!(t.vocab_size(), last as usize + 1);
        assert_eq!(t.encode("hello", false).unwrap(), vec![last]);
    }

    #[test]
    fn chat_template_default_system() {
        let tpl = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}\
                   {{ '<|im_start|>system\nBe brief.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] \
                   + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
        assert_eq!(default_system_prompt(tpl).as_deref(), Some("Be brief."));
        let escaped = tpl.replace('\n', "\\n");
        assert_eq!(default_system_prompt(&escaped).as_deref(), Some("Be brief."));
        assert_eq!(default_system_prompt("{{ '<|im_start|>' + m['role'] }}"), None);

        let mut v = tiny_vocab();
        v.chat_template = Some(tpl.into());
        let t = Tokenizer::from_gguf_vocab(v).unwrap();
        assert_eq!(t.default_system_prompt(), Some("Be brief."));
    }
}
