//! GGUF (llama.cpp) reader: a bounds-checked header parser, typed metadata, and dequantization of
//! every tensor type in [`super::ggml_quants`] to f32 with llama.cpp's Q/K row permutation undone.
//!
//! Layout (v2/v3, little-endian): magic `GGUF`, u32 version, u64 tensor count, u64 metadata count,
//! metadata key/value pairs, tensor infos (name, n_dims, dims ne0-first, ggml type, offset), padding
//! to `general.alignment`, then the tensor data.
use super::config::{LlamaConfig, RopeScaling};
use super::ggml_quants::{dequantize, type_name as ggml_type_name, GgmlType};
use super::tensor::Tensor;
use super::weights::{NameScheme, TensorSource};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Limits that keep a lying header from driving huge loops or allocations.
const MAX_TENSORS: u64 = 1 << 16;
const MAX_METADATA: u64 = 1 << 16;
const MAX_DIMS: u32 = 4;
const MAX_ARRAY_DEPTH: u32 = 4;
const MAX_ALIGNMENT: u64 = 1 << 16;
const DEFAULT_ALIGNMENT: u64 = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    /// Any non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        u64::try_from(self.as_i128()?).ok()
    }
    /// Any integer that fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        i64::try_from(self.as_i128()?).ok()
    }
    fn as_i128(&self) -> Option<i128> {
        use GgufValue::*;
        Some(match *self {
            U8(v) => v.into(),
            I8(v) => v.into(),
            U16(v) => v.into(),
            I16(v) => v.into(),
            U32(v) => v.into(),
            I32(v) => v.into(),
            U64(v) => v.into(),
            I64(v) => v.into(),
            _ => return None,
        })
    }
    /// Any float (integers too: some writers store e.g. `rope.freq_base` as one).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            GgufValue::F32(v) => Some(v),
            GgufValue::F64(v) => Some(v as f32),
            _ => self.as_i128().map(|v| v as f32),
        }
    }
    /// The GGUF type name, for error messages (values themselves can be huge arrays).
    pub fn type_name(&self) -> &'static str {
        use GgufValue::*;
        match self {
            U8(_) => "a u8",
            I8(_) => "an i8",
            U16(_) => "a u16",
            I16(_) => "an i16",
            U32(_) => "a u32",
            I32(_) => "an i32",
            F32(_) => "an f32",
            Bool(_) => "a bool",
            Str(_) => "a string",
            Array(_) => "an array",
            U64(_) => "a u64",
            I64(_) => "an i64",
            F64(_) => "an f64",
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// GGUF order: ne0 (the contiguous, "column" dimension) first.
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Relative to the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Row-major shape: the GGUF dims reversed (`[ne1, ne0]` = rows × cols).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// The parsed, validated header of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<GgufTensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
}

/// A cursor over the file bytes; every read is bounds-checked and errors name `path`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, msg: String) -> Error {
        Error::format(self.path, msg)
    }
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        match self.bytes.get(self.pos..).and_then(|b| b.first_chunk::<N>()) {
            Some(b) => {
                self.pos += N;
                Ok(*b)
            }
            None => Err(self.err(format!(
                "unexpected end of file reading {what} at offset {} (need {N} bytes, {} left)",
                self.pos,
                self.left()
            ))),
        }
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        self.take(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        self.take(what).map(u64::from_le_bytes)
    }
    /// A count that must be ≤ `max` and leave at least `min_size` bytes per item in the file.
    fn count(&mut self, what: &str, max: u64, min_size: usize) -> Result<usize> {
        let n = self.u64(what)?;
        if n > max {
            return Err(self.err(format!("{what} {n} exceeds the limit {max}")));
        }
        if n > (self.left() / min_size) as u64 {
            let left = self.left();
            return Err(self.err(format!("{what} {n} cannot fit in the {left} bytes left in the file")));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        if n > self.left() as u64 {
            let left = self.left();
            return Err(self.err(format!("string length {n} for {what} extends past end of file ({left} bytes left)")));
        }
        let raw = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        String::from_utf8(raw.to_vec()).map_err(|e| self.err(format!("{what} is not valid UTF-8: {e}")))
    }
    /// A metadata value of type `ty`; `what` names it in errors.
    fn value(&mut self, ty: u32, depth: u32, what: &str) -> Result<GgufValue> {
        use GgufValue::*;
        Ok(match ty {
            0 => U8(u8::from_le_bytes(self.take(what)?)),
            1 => I8(i8::from_le_bytes(self.take(what)?)),
            2 => U16(u16::from_le_bytes(self.take(what)?)),
            3 => I16(i16::from_le_bytes(self.take(what)?)),
            4 => U32(self.u32(what)?),
            5 => I32(i32::from_le_bytes(self.take(what)?)),
            6 => F32(f32::from_le_bytes(self.take(what)?)),
            7 => match self.take::<1>(what)?[0] {
                b @ (0 | 1) => Bool(b == 1),
                b => return Err(self.err(format!("{what}: bool byte {b} is not 0 or 1"))),
            },
            8 => Str(self.string(what)?),
            9 if depth >= MAX_ARRAY_DEPTH => {
                return Err(self.err(format!("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}")))
            }
            9 => {
                let elem = self.u32(what)?;
                let min_size = match elem {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    t => return Err(self.err(format!("{what}: unknown array element type {t}"))),
                };
                let n = self.count(&format!("{what} array count"), u64::MAX, min_size)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1, what)?);
                }
                Array(items)
            }
            10 => U64(self.u64(what)?),
            11 => I64(i64::from_le_bytes(self.take(what)?)),
            12 => F64(f64::from_le_bytes(self.take(what)?)),
            t => return Err(self.err(format!("{what}: unknown value type {t}"))),
        })
    }
}

/// Parses and validates a GGUF header against the whole file `bytes`; never panics. Checks that
/// every tensor's type is supported and its data lies, aligned, inside the file, sharing no byte with another's.
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<GgufHeader> {
    let mut r = Reader { bytes, pos: 0, path };
    let magic: [u8; 4] = r.take("magic")?;
    if &magic != b"GGUF" {
        return Err(r.err(format!("bad magic: expected GGUF, found {:?}", String::from_utf8_lossy(&magic))));
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        // A big-endian file (gguf-py's `--bigendian`) stores the version, and every other number, byte-swapped.
        if (1..=3).contains(&version.swap_bytes()) {
            return Err(r.err(format!(
                "this is a big-endian GGUF (version {} byte-swapped); only little-endian GGUF files are supported",
                version.swap_bytes()
            )));
        }
        return Err(r.err(format!("GGUF version {version} is not supported (expected 2 or 3)")));
    }
    // Minimum on-disk sizes: tensor info = name len + n_dims + 1 dim + type + offset; kv = key len + type + 1.
    let n_tensors = r.count("tensor count", MAX_TENSORS, 8 + 4 + 8 + 4 + 8)?;
    let n_kv = r.count("metadata count", MAX_METADATA, 8 + 4 + 1)?;
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = r.string("metadata key")?;
        let what = format!("metadata {key:?}");
        let ty = r.u32(&what)?;
        let value = r.value(ty, 0, &what)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(r.err(format!("duplicate metadata key {key:?}")));
        }
    }
    let mut tensors = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = r.string(&format!("tensor {i} name"))?;
        let what = format!("tensor {name:?} info");
        let n_dims = r.u32(&what)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(r.err(format!("tensor {name:?} has n_dims {n_dims} (expected 1..={MAX_DIMS})")));
        }
        let dims = (0..n_dims).map(|_| r.u64(&what)).collect::<Result<Vec<u64>>>()?;
        let ggml_type = r.u32(&what)?;
        let offset = r.u64(&what)?;
        tensors.push(GgufTensorInfo { name, dims, ggml_type, offset });
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= MAX_ALIGNMENT => a,
            _ => {
                let found = v.as_u64().map_or_else(|| v.type_name().to_string(), |a| a.to_string());
                let msg = format!("general.alignment must be a power of two ≤ {MAX_ALIGNMENT}, found {found}");
                return Err(r.err(msg));
            }
        },
    };
    // Past the end only in a file without tensor data; each tensor's range is checked below.
    let data_offset = (r.pos as u64).next_multiple_of(alignment);
    let mut seen = HashSet::new();
    let mut spans = Vec::with_capacity(tensors.len());
    for t in &tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(r.err(format!("duplicate tensor name {:?}", t.name)));
        }
        spans.push((tensor_span(path, t, alignment, data_offset, bytes.len())?.1, &t.name));
    }
    // Each tensor's bytes must be its own: ggml's reader requires every offset to be the running sum of
    // the padded sizes before it, so a file whose tensors share bytes is refused there, and would read
    // a neighbour's data here.
    spans.sort_by_key(|(range, _)| (range.start, range.end));
    // Sorted by start, disjoint spans each end where the next may begin (empty tensors take no bytes).
    let mut prev: Option<&(Range<usize>, &String)> = None;
    for span in spans.iter().filter(|(range, _)| !range.is_empty()) {
        if let Some((a, a_name)) = prev.filter(|(a, _)| span.0.start < a.end) {
            let (b, b_name) = span;
            return Err(r.err(format!(
                "tensor {b_name:?} (data [{}..{})) overlaps tensor {a_name:?} (data [{}..{})); each tensor needs \
                 its own bytes",
                b.start, b.end, a.start, a.end
            )));
        }
        prev = Some(span);
    }
    Ok(GgufHeader { version, metadata, tensors, alignment, data_offset })
}

/// Validates one tensor and returns its type and absolute byte range in the file.
fn tensor_span(
    path: &Path,
    t: &GgufTensorInfo,
    alignment: u64,
    data_offset: u64,
    file_len: usize,
) -> Result<(GgmlType, Range<usize>)> {
    let name = &t.name;
    let err = |msg: String| Error::format(path, format!("tensor {name:?}: {msg}"));
    let ty = GgmlType::from_u32(t.ggml_type).ok_or_else(|| {
        Error::Unsupported(format!(
            "{}: tensor {name:?} has ggml type {} ({}); supported: {}",
            path.display(),
            t.ggml_type,
            ggml_type_name(t.ggml_type),
            GgmlType::supported_list()
        ))
    })?;
    let (block, block_bytes) = ty.block();
    let numel = t.dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let numel = numel.filter(|&n| n <= i64::MAX as u64).ok_or_else(|| err(format!("dims {:?} overflow", t.dims)))?;
    let row_len = t.dims.first().copied().unwrap_or(1);
    if row_len % block as u64 != 0 {
        return Err(err(format!("row length {row_len} is not a multiple of the block size {block}")));
    }
    if t.offset.checked_rem(alignment) != Some(0) {
        return Err(err(format!("offset {} is not a multiple of the alignment {alignment}", t.offset)));
    }
    let n_bytes = (numel / block as u64).checked_mul(block_bytes as u64);
    let start = data_offset.checked_add(t.offset);
    match (start, start.zip(n_bytes).and_then(|(s, n)| s.checked_add(n))) {
        (Some(s), Some(e)) if e <= file_len as u64 => Ok((ty, s as usize..e as usize)),
        (s, e) => Err(err(format!(
            "data [{}..{}) extends past end of file (size {file_len})",
            s.map_or("overflow".into(), |v| v.to_string()),
            e.map_or("overflow".into(), |v| v.to_string())
        ))),
    }
}

fn as_bool(v: &GgufValue) -> Option<bool> {
    match v {
        GgufValue::Bool(b) => Some(*b),
        _ => None,
    }
}

/// A non-negative integer value converted to `T`, if it fits.
fn uint<T: TryFrom<u64>>(v: &GgufValue) -> Option<T> {
    v.as_u64().and_then(|x| T::try_from(x).ok())
}

/// A memory-mapped GGUF file.
pub struct GgufFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<GgufTensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only and private to this struct; trtforge never writes model files
        // while reading them. Another process truncating the file underneath us is outside our model.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let GgufHeader { version, metadata, tensors, alignment, data_offset } = parse_header(path, &mmap)?;
        Ok(GgufFile { path: path.to_path_buf(), mmap, version, metadata, tensors, alignment, data_offset })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (tensor name, ggml type name, element count) for every tensor, for `trtforge info`.
    pub fn tensor_dtypes(&self) -> Vec<(String, String, u64)> {
        self.tensors
            .iter()
            .map(|t| (t.name.clone(), ggml_type_name(t.ggml_type).to_string(), t.dims.iter().product()))
            .collect()
    }

    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// A required metadata value converted by `conv`; errors name the key and the expected type.
    fn get_as<'s, T>(&'s self, key: &str, what: &str, conv: impl Fn(&'s GgufValue) -> Option<T>) -> Result<T> {
        self.opt_as(key, what, conv)?
            .ok_or_else(|| Error::format(&self.path, format!("missing required metadata key {key:?}")))
    }

    fn opt_as<'s, T>(&'s self, key: &str, what: &str, conv: impl Fn(&'s GgufValue) -> Option<T>) -> Result<Option<T>> {
        self.metadata
            .get(key)
            .map(|v| {
                conv(v).ok_or_else(|| {
                    Error::format(&self.path, format!("metadata {key:?} is {}, not {what}", v.type_name()))
                })
            })
            .transpose()
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get_as(key, "a string", GgufValue::as_str)
    }
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.get_as(key, "a u32", uint::<u32>)
    }
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        self.get_as(key, "a non-negative integer", uint::<usize>)
    }
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get_as(key, "a number", GgufValue::as_f32)
    }
    pub fn get_str_array(&self, key: &str) -> Result<Vec<String>> {
        self.get_as(key, "an array of strings", |v| {
            v.as_array()?.iter().map(|x| x.as_str().map(str::to_owned)).collect()
        })
    }
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        self.get_as(key, "an array of i32", |v| {
            v.as_array()?.iter().map(|x| x.as_i64().and_then(|i| i32::try_from(i).ok())).collect()
        })
    }
    /// The `tokenizer.*` metadata as plain data for [`crate::model::tokenizer::Tokenizer::from_gguf_vocab`].
    pub fn tokenizer_vocab(&self) -> Result<crate::model::tokenizer::GgufVocab> {
        let id = |k: &str| -> Result<Option<u32>> { self.opt_as(k, "a u32", uint::<u32>) };
        let model = self.get_str("tokenizer.ggml.model")?;
        Ok(crate::model::tokenizer::GgufVocab {
            model: model.to_string(),
            pre: self.opt_as("tokenizer.ggml.pre", "a string", |v| v.as_str().map(str::to_owned))?,
            tokens: self.get_str_array("tokenizer.ggml.tokens")?,
            merges: if self.metadata.contains_key("tokenizer.ggml.merges") {
                self.get_str_array("tokenizer.ggml.merges")?
            } else if model == "gpt2" {
                // Without merges byte-level BPE would tokenize byte by byte; llama.cpp refuses the file
                // ("cannot find tokenizer merges in model file").
                return Err(Error::format(
                    &self.path,
                    "tokenizer.ggml.model is \"gpt2\" (byte-level BPE) but tokenizer.ggml.merges is missing; the \
                     merges are needed to tokenize (llama.cpp refuses such a file too)",
                ));
            } else {
                Vec::new()
            },
            token_types: if self.metadata.contains_key("tokenizer.ggml.token_type") {
                self.get_i32_array("tokenizer.ggml.token_type")?
            } else {
                Vec::new()
            },
            scores: match self.metadata.get("tokenizer.ggml.scores") {
                None => Vec::new(),
                Some(_) => self.get_as("tokenizer.ggml.scores", "an array of numbers", |v| {
                    v.as_array()?.iter().map(GgufValue::as_f32).collect()
                })?,
            },
            add_space_prefix: self.opt_as("tokenizer.ggml.add_space_prefix", "a bool", as_bool)?,
            add_eos: self.opt_as("tokenizer.ggml.add_eos_token", "a bool", as_bool)?.unwrap_or(false),
            eot: id("tokenizer.ggml.eot_token_id")?,
            eom: id("tokenizer.ggml.eom_token_id")?,
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            add_bos: self.opt_as("tokenizer.ggml.add_bos_token", "a bool", as_bool)?,
            chat_template: self.opt_as("tokenizer.chat_template", "a string", |v| v.as_str().map(str::to_owned))?,
        })
    }
    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.opt_as(key, "a non-negative integer", uint::<usize>)
    }
    /// (head_count, head_count_kv); the latter defaults to the former.
    fn head_counts(&self) -> Result<(usize, usize)> {
        let heads = self.get_usize("llama.attention.head_count")?;
        Ok((heads, self.opt_usize("llama.attention.head_count_kv")?.unwrap_or(heads)))
    }

    /// `llama.rope.scaling.*` read as llama.cpp reads them: the type defaults to `linear`, and the factor is
    /// `llama.rope.scaling.factor` or else the older `llama.rope.scale_linear`; without a factor (or with type
    /// `none`) positions are not scaled. YaRN and other types are refused.
    fn linear_rope_scaling(&self) -> Result<Option<RopeScaling>> {
        let ty = self.opt_as("llama.rope.scaling.type", "a string", GgufValue::as_str)?;
        let factor = match self.opt_as("llama.rope.scaling.factor", "a number", GgufValue::as_f32)? {
            Some(f) => Some(("llama.rope.scaling.factor", f)),
            None => self
                .opt_as("llama.rope.scale_linear", "a number", GgufValue::as_f32)?
                .map(|f| ("llama.rope.scale_linear", f)),
        };
        match (ty, factor) {
            (Some("none"), _) | (None, None) => Ok(None),
            (Some("linear"), None) => Err(Error::format(
                &self.path,
                "llama.rope.scaling.type is \"linear\" but neither llama.rope.scaling.factor nor llama.rope.scale_linear \
                 is set",
            )),
            (Some("linear") | None, Some((key, factor))) => {
                if !(factor > 0.0 && factor.is_finite()) {
                    return Err(Error::format(&self.path, format!("{key} = {factor} must be positive")));
                }
                Ok(Some(RopeScaling::Linear { factor }))
            }
            (Some(t), _) => Err(Error::Unsupported(format!(
                "{}: llama.rope.scaling.type = {t:?}; supported are \"none\" and \"linear\"",
                self.path.display()
            ))),
        }
    }

    /// The Llama configuration stored in the metadata.
    pub fn llama_config(&self) -> Result<LlamaConfig> {
        let arch = self.get_str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::Unsupported(format!(
                "{}: GGUF architecture {arch:?}: only \"llama\" is supported",
                self.path.display()
            )));
        }
        if let Some(n) = self.opt_usize("llama.expert_count")?.filter(|&n| n > 0) {
            return Err(Error::Unsupported(format!(
                "{}: llama.expert_count = {n}: mixture-of-experts Llama files (Mixtral-style ffn_*_exps tensors) are \
                 not supported; trtforge runs dense Llama models",
                self.path.display()
            )));
        }
        let rope_scaling = self.linear_rope_scaling()?;
        let hidden_size = self.get_usize("llama.embedding_length")?;
        let (heads, kv_heads) = self.head_counts()?;
        // As llama.cpp: the head dimension is key_length, else embedding_length / head_count; value_length
        // and the rotary dimension default to it, and a llama file where either differs is refused there
        // ("invalid n_rot"; the graph asserts equal K and V head sizes).
        let head_dim = self.opt_usize("llama.attention.key_length")?.unwrap_or(hidden_size / heads.max(1));
        let head_source = if self.metadata.contains_key("llama.attention.key_length") {
            "llama.attention.key_length".to_string()
        } else {
            format!("llama.embedding_length / llama.attention.head_count = {hidden_size} / {heads}")
        };
        if let Some(v) = self.opt_usize("llama.attention.value_length")?.filter(|&v| v != head_dim) {
            return Err(Error::Unsupported(format!(
                "{}: llama.attention.value_length = {v} differs from the key head dimension {head_dim} ({head_source}); \
                 the Llama graph needs equal K and V head sizes (llama.cpp refuses such a file too)",
                self.path.display()
            )));
        }
        if let Some(r) = self.opt_usize("llama.rope.dimension_count")?.filter(|&r| r != head_dim) {
            return Err(Error::Unsupported(format!(
                "{}: llama.rope.dimension_count = {r} but the head dimension is {head_dim} ({head_source}): partial \
                 rotary embeddings are not supported (llama.cpp refuses llama files whose rotary dimension is not \
                 the head dimension: \"invalid n_rot\")",
                self.path.display()
            )));
        }
        // Llama 3.1+ files store their RoPE scaling as per-frequency divisors (llama.cpp's
        // `rope_freqs.weight`, head_dim / 2 values).
        let rope_scaling = match (self.tensor_info("rope_freqs.weight"), rope_scaling) {
            (None, s) => s,
            (Some(_), Some(_)) => {
                return Err(Error::Unsupported(format!(
                    "{}: both a linear RoPE scaling (llama.rope.scaling.*) and rope_freqs.weight are set",
                    self.path.display()
                )))
            }
            (Some(_), None) => {
                let t = self
                    .tensor("rope_freqs.weight", &[head_dim / 2])?
                    .ok_or_else(|| Error::format(&self.path, "rope_freqs.weight disappeared while reading it"))?;
                if let Some(bad) = t.data.iter().find(|d| !(**d > 0.0 && d.is_finite())) {
                    return Err(Error::format(
                        &self.path,
                        format!("rope_freqs.weight holds {bad}; divisors must be positive"),
                    ));
                }
                Some(RopeScaling::Divisors { divisors: t.data })
            }
        };
        let vocab_size = match self.opt_usize("llama.vocab_size")? {
            Some(v) => v,
            None => self.get_as("tokenizer.ggml.tokens", "an array", GgufValue::as_array)?.len(),
        };
        let token = |key| self.opt_as(key, "a u32 token id", uint::<u32>);
        let cfg = LlamaConfig {
            vocab_size,
            hidden_size,
            intermediate_size: self.get_usize("llama.feed_forward_length")?,
            num_hidden_layers: self.get_usize("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rope_theta: self.opt_as("llama.rope.freq_base", "a number", GgufValue::as_f32)?.unwrap_or(10000.0),
            rope_scaling,
            rms_norm_eps: self.get_f32("llama.attention.layer_norm_rms_epsilon")?,
            tie_word_embeddings: self.tensor_info("output.weight").is_none(),
            max_position_embeddings: self.get_usize("llama.context_length")?,
            bos_token_id: token("tokenizer.ggml.bos_token_id")?,
            eos_token_id: token("tokenizer.ggml.eos_token_id")?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Undoes llama.cpp's Q/K row permutation, giving the HF rotate-half layout. `w` is
/// (n_head * hd, cols); HF row h*hd + e*(hd/2) + j comes from GGUF row h*hd + 2*j + e.
/// `None` when `w` does not split into `n_head` heads of even size.
pub fn unpermute_qk(w: &[f32], n_head: usize, cols: usize) -> Option<Vec<f32>> {
    let rows = w.len().checked_div(cols)?;
    let hd = rows.checked_div(n_head)?;
    if rows * cols != w.len() || hd * n_head != rows || hd % 2 != 0 {
        return None;
    }
    let mut out = vec![0.0f32; w.len()]; // (n_head * hd, cols)
    for (hf_row, dst) in out.chunks_exact_mut(cols).enumerate() {
        let (h, r) = (hf_row / hd, hf_row % hd);
        let (e, j) = (r / (hd / 2), r % (hd / 2));
        let src = (h * hd + 2 * j + e) * cols;
        dst.copy_from_slice(&w[src..src + cols]);
    }
    Some(out)
}

impl GgufFile {
    /// Head count for the rows of `blk.N.attn_q.weight` / `blk.N.attn_k.weight`; `None` for other names.
    fn qk_heads(&self, name: &str) -> Result<Option<usize>> {
        let Some((layer, suffix)) = name.strip_prefix("blk.").and_then(|r| r.split_once('.')) else {
            return Ok(None);
        };
        if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        match suffix {
            "attn_q.weight" => Ok(Some(self.head_counts()?.0)),
            "attn_k.weight" => Ok(Some(self.head_counts()?.1)),
            _ => Ok(None),
        }
    }
}

impl TensorSource for GgufFile {
    fn scheme(&self) -> NameScheme {
        NameScheme::Gguf
    }

    fn names(&self) -> Vec<String> {
        self.tensors.iter().map(|t| t.name.clone()).collect()
    }

    fn tensor(&self, name: &str, expected: &[usize]) -> Result<Option<Tensor>> {
        let Some(info) = self.tensor_info(name) else { return Ok(None) };
        let shape = info.shape();
        if shape != expected {
            return Err(Error::format(
                &self.path,
                format!("tensor {name:?} has shape {shape:?} (GGUF dims {:?}), expected {expected:?}", info.dims),
            ));
        }
        let (ty, range) = tensor_span(&self.path, info, self.alignment, self.data_offset, self.mmap.len())?;
        let src = &self.mmap[range]; // checked by tensor_span
        let cols = shape.last().copied().unwrap_or(1);
        let (block, bb) = ty.block();
        // Enough rows per task to amortize rayon's overhead on narrow tensors.
        let rows_per_task = (1 << 14) / cols + 1;
        let mut data = vec![0.0f32; shape.iter().product()]; // (rows, cols)
        data.par_chunks_mut(rows_per_task * cols)
            .zip(src.par_chunks(rows_per_task * cols / block * bb))
            .for_each(|(out, src)| dequantize(ty, src, out));
        if let Some(n_head) = self.qk_heads(name)? {
            data = unpermute_qk(&data, n_head, cols).ok_or_else(|| {
                let msg = format!("tensor {name:?} of shape {shape:?} does not split into {n_head} heads of even size");
                Error::format(&self.path, msg)
            })?;
        }
        Ok(Some(Tensor::new(shape, data)))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_matches_hand_computed_example() {
        // 2 heads of head_dim 4, 1 column: GGUF rows hold (j, e) interleaved pairs per head.
        let w: Vec<f32> = (0..8).map(|x| x as f32).collect();
        assert_eq!(unpermute_qk(&w, 2, 1), Some(vec![0., 2., 1., 3., 4., 6., 5., 7.]));
        // 1 head of head_dim 6, 2 columns: HF rows [g0, g2, g4, g1, g3, g5].
        let w: Vec<f32> = (0..12).map(|x| x as f32).collect();
        assert_eq!(unpermute_qk(&w, 1, 2), Some(vec![0., 1., 4., 5., 8., 9., 2., 3., 6., 7., 10., 11.]));
        // 6 rows as 2 heads of odd size 3, or as 0 heads, cannot be un-permuted.
        assert_eq!(unpermute_qk(&w, 2, 2), None);
        assert_eq!(unpermute_qk(&w, 0, 2), None);
    }

    #[test]
    fn parse_header_rejects_garbage_without_panicking() {
        let p = Path::new("x.gguf");
        for bytes in [&b""[..], b"GGU", b"GGUF\x03\0\0\0", b"GGML\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"] {
            assert!(parse_header(p, bytes).is_err());
        }
    }
}
