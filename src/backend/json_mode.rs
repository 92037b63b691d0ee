//! JSON mode (`response_format: {"type": "json_object"}`): the tokens a sequence may take next so
//! that its text stays a prefix of one JSON object, and ends exactly when the object closes.
//!
//! [`JsonPrefix`] reads bytes and says whether they still begin a JSON object (RFC 8259, with the
//! object as the top-level value); [`JsonVocab`] holds every token's bytes; [`JsonVocab::mask`]
//! sets the logits of the tokens that would break the prefix to −∞ (the sequence's end tokens
//! only once the object is complete, and then nothing else). What a strict parser (serde_json)
//! could refuse is kept out as well: `\u` escapes of surrogates, numbers beyond f64's range, and
//! runs of whitespace longer than [`MAX_WS`] (a model could otherwise pad to its length limit).

use crate::model::tokenizer::Tokenizer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Deepest nesting of objects and arrays.
pub const MAX_DEPTH: usize = 32;
/// Longest run of whitespace between tokens of the JSON text.
pub const MAX_WS: u8 = 32;
const MAX_INT_DIGITS: u8 = 20;
const MAX_FRAC_DIGITS: u8 = 40;
const MAX_EXP_DIGITS: u8 = 2;

/// Where the reader is outside strings, numbers and literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum At {
    /// Before the top-level object.
    Start,
    /// After `{`: a key or `}`.
    ObjOpen,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// A value.
    Value,
    /// After `[`: a value or `]`.
    ArrOpen,
    /// After a value in a container: `,` or its closer.
    After,
    /// The top-level object is closed.
    Done,
}

/// A token being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tok {
    None,
    /// A string (`key`: an object's key), at `part`.
    Str {
        key: bool,
        part: InStr,
    },
    /// A number: its part and that part's digits so far.
    Num {
        part: NumPart,
        digits: u8,
    },
    /// `true`, `false` or `null`: the bytes still to come.
    Lit(&'static [u8]),
}

/// Where a string is read. A state holds only what its next bytes depend on, so equal states
/// compare (and hash) equal for the kept masks whatever characters came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum InStr {
    /// Between characters.
    Char,
    /// After `\`.
    Escape,
    /// In a `\u` escape: `n` of its 4 hex digits read, their value `v`.
    Hex { n: u8, v: u16 },
    /// In a multi-byte character: `left` continuation bytes to come, the next in `lo..=hi`.
    Utf8 { left: u8, lo: u8, hi: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NumPart {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

/// A JSON object's prefix, read byte by byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonPrefix {
    /// Open containers: `true` an object, `false` an array.
    stack: Vec<bool>,
    at: At,
    tok: Tok,
    ws: u8,
}

impl Default for JsonPrefix {
    fn default() -> Self {
        JsonPrefix { stack: Vec::new(), at: At::Start, tok: Tok::None, ws: 0 }
    }
}

impl JsonPrefix {
    /// Whether the bytes so far are one whole JSON object (and nothing may follow).
    pub fn is_complete(&self) -> bool {
        self.at == At::Done
    }

    /// Reads `bytes`; `false` (the state then unspecified) when they leave no JSON object to complete.
    pub fn feed_all(&mut self, bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| self.feed(b))
    }

    /// Reads one byte; `false` when it leaves no JSON object to complete.
    pub fn feed(&mut self, b: u8) -> bool {
        match self.tok {
            Tok::None => self.punct(b),
            Tok::Str { key, part } => {
                let part = match part {
                    InStr::Utf8 { left, lo, hi } => {
                        if !(lo..=hi).contains(&b) {
                            return false;
                        }
                        if left > 1 {
                            InStr::Utf8 { left: left - 1, lo: 0x80, hi: 0xBF }
                        } else {
                            InStr::Char
                        }
                    }
                    InStr::Escape => match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => InStr::Char,
                        b'u' => InStr::Hex { n: 0, v: 0 },
                        _ => return false,
                    },
                    InStr::Hex { n, v } => {
                        let Some(d) = (b as char).to_digit(16) else { return false };
                        let v = v << 4 | d as u16;
                        // After the second digit: refuse a surrogate (U+D800..U+DFFF), which a strict
                        // parser wants paired; the character itself can be written as UTF-8.
                        if n == 1 && (0xD8..=0xDF).contains(&v) {
                            return false;
                        }
                        if n == 3 {
                            InStr::Char
                        } else {
                            InStr::Hex { n: n + 1, v }
                        }
                    }
                    InStr::Char => match b {
                        b'"' => {
                            self.tok = Tok::None;
                            self.at = if key { At::Colon } else { At::After };
                            return true;
                        }
                        b'\\' => InStr::Escape,
                        0x00..=0x1F => return false,
                        0x20..=0x7F => InStr::Char,
                        _ => {
                            let (left, lo, hi) = match b {
                                0xC2..=0xDF => (1, 0x80, 0xBF),
                                0xE0 => (2, 0xA0, 0xBF),
                                0xED => (2, 0x80, 0x9F),
                                0xE1..=0xEF => (2, 0x80, 0xBF),
                                0xF0 => (3, 0x90, 0xBF),
                                0xF1..=0xF3 => (3, 0x80, 0xBF),
                                0xF4 => (3, 0x80, 0x8F),
                                _ => return false,
                            };
                            InStr::Utf8 { left, lo, hi }
                        }
                    },
                };
                self.tok = Tok::Str { key, part };
                true
            }
            Tok::Num { part, digits } => {
                use NumPart::*;
                let digit = b.is_ascii_digit();
                let next = match (part, b) {
                    (Minus, b'0') => Some((Zero, 0)),
                    (Minus, _) if digit => Some((Int, 1)),
                    (Int, _) if digit => Some((Int, digits + 1)),
                    (Zero | Int, b'.') => Some((Dot, 0)),
                    (Dot | Frac, _) if digit => Some((Frac, digits + 1)),
                    (Zero | Int | Frac, b'e' | b'E') => Some((E, 0)),
                    (E, b'+' | b'-') => Some((ESign, 0)),
                    (E | ESign | Exp, _) if digit => Some((Exp, digits + 1)),
                    _ => None,
                };
                match next {
                    Some((p, d)) => {
                        let cap = match p {
                            Int => MAX_INT_DIGITS,
                            Frac => MAX_FRAC_DIGITS,
                            Exp => MAX_EXP_DIGITS,
                            _ => u8::MAX,
                        };
                        self.tok = Tok::Num { part: p, digits: d };
                        d <= cap
                    }
                    // The number ends here if it may; the byte then belongs to what follows.
                    None if matches!(part, Zero | Int | Frac | Exp) => {
                        self.tok = Tok::None;
                        self.at = At::After;
                        self.punct(b)
                    }
                    None => false,
                }
            }
            Tok::Lit(rest) => {
                if rest.first() != Some(&b) {
                    return false;
                }
                if rest.len() == 1 {
                    self.tok = Tok::None;
                    self.at = At::After;
                } else {
                    self.tok = Tok::Lit(&rest[1..]);
                }
                true
            }
        }
    }

    /// A byte outside strings, numbers and literals.
    fn punct(&mut self, b: u8) -> bool {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            self.ws += 1;
            return self.at != At::Done && self.ws <= MAX_WS;
        }
        self.ws = 0;
        match (self.at, b) {
            (At::Start, b'{') => self.open(true),
            (At::ObjOpen, b'}') | (At::ArrOpen, b']') => self.close(),
            (At::After, b'}') if self.stack.last() == Some(&true) => self.close(),
            (At::After, b']') if self.stack.last() == Some(&false) => self.close(),
            (At::ObjOpen | At::Key, b'"') => {
                self.tok = Tok::Str { key: true, part: InStr::Char };
                true
            }
            (At::Colon, b':') => {
                self.at = At::Value;
                true
            }
            (At::After, b',') => {
                self.at = if self.stack.last() == Some(&true) { At::Key } else { At::Value };
                true
            }
            (At::Value | At::ArrOpen, _) => self.value(b),
            _ => false,
        }
    }

    /// The first byte of a value.
    fn value(&mut self, b: u8) -> bool {
        self.tok = match b {
            b'{' => return self.open(true),
            b'[' => return self.open(false),
            b'"' => Tok::Str { key: false, part: InStr::Char },
            b'-' => Tok::Num { part: NumPart::Minus, digits: 0 },
            b'0' => Tok::Num { part: NumPart::Zero, digits: 0 },
            b'1'..=b'9' => Tok::Num { part: NumPart::Int, digits: 1 },
            b't' => Tok::Lit(b"rue"),
            b'f' => Tok::Lit(b"alse"),
            b'n' => Tok::Lit(b"ull"),
            _ => return false,
        };
        true
    }

    fn open(&mut self, object: bool) -> bool {
        if self.stack.len() >= MAX_DEPTH {
            return false;
        }
        self.stack.push(object);
        self.at = if object { At::ObjOpen } else { At::ArrOpen };
        true
    }

    fn close(&mut self) -> bool {
        self.stack.pop();
        self.at = if self.stack.is_empty() { At::Done } else { At::After };
        true
    }
}

/// Every token's bytes as they extend a text (a SentencePiece `▁` as the space it stands for, a byte
/// piece as its byte); tokens with none (special and control tokens) never fit a JSON text.
pub struct JsonVocab {
    bytes: Vec<u8>,
    /// Token t's bytes are `bytes[offs[t]..offs[t + 1]]`.
    offs: Vec<u32>,
    /// The allowed tokens (a bit each) of states met before: inside a string or between values the
    /// state repeats from step to step (and across requests), so most steps only apply a mask.
    masks: Mutex<HashMap<JsonPrefix, Arc<Vec<u64>>>>,
}

/// Most states whose masks [`JsonVocab`] keeps (≈ 6 KB each at a 49,152-token vocabulary).
const MASKS_KEPT: usize = 1024;

impl std::fmt::Debug for JsonVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonVocab({} tokens)", self.len())
    }
}

impl JsonVocab {
    /// The table of `vocab` tokens, `bytes_of(t)` each (None: never allowed).
    pub fn new(vocab: usize, mut bytes_of: impl FnMut(u32) -> Option<Vec<u8>>) -> Self {
        let (mut bytes, mut offs) = (Vec::new(), vec![0u32]);
        for t in 0..vocab as u32 {
            if let Some(b) = bytes_of(t) {
                bytes.extend_from_slice(&b);
            }
            offs.push(bytes.len() as u32);
        }
        JsonVocab { bytes, offs, masks: Mutex::new(HashMap::new()) }
    }

    /// The table of a tokenizer's tokens over a model's `vocab` rows (rows past the tokenizer's never
    /// fit). A token is decoded after an anchor token, so that a SentencePiece piece keeps its leading
    /// space; special tokens (gone when decoded with `skip_special`) get no bytes; a piece of a
    /// character gets its raw bytes ([`Tokenizer::token_bytes`]).
    pub fn from_tokenizer(tok: &Tokenizer, vocab: usize) -> Self {
        let anchor = tok.encode("a", false).ok().filter(|v| v.len() == 1).and_then(|v| {
            let text = tok.decode(&v, false).ok()?;
            Some((v[0], text))
        });
        Self::new(vocab, |t| {
            if t as usize >= tok.vocab_size() {
                return None;
            }
            let (ids, prefix) = match &anchor {
                Some((a, text)) => (vec![*a, t], text.as_str()),
                None => (vec![t], ""),
            };
            let skipped = tok.decode(&ids, true).ok()?;
            if skipped.len() <= prefix.len() {
                return None;
            }
            match tok.decode(&ids, false).ok()?.strip_prefix(prefix) {
                Some(x) if !x.contains('\u{FFFD}') && !x.is_empty() => Some(x.as_bytes().to_vec()),
                _ => Some(tok.token_bytes(t)).filter(|b| !b.is_empty()),
            }
        })
    }

    pub fn len(&self) -> usize {
        self.offs.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Token t's bytes (empty outside the table).
    pub fn token(&self, t: u32) -> &[u8] {
        let t = t as usize;
        if t + 1 >= self.offs.len() {
            return &[];
        }
        &self.bytes[self.offs[t] as usize..self.offs[t + 1] as usize]
    }

    /// The state after the generated tokens; None when they already left JSON (they cannot,
    /// when each was chosen under [`mask`](Self::mask)).
    fn state(&self, generated: &[u32]) -> Option<JsonPrefix> {
        let mut s = JsonPrefix::default();
        generated.iter().all(|&t| s.feed_all(self.token(t))).then_some(s)
    }

    /// The tokens that may follow state `s` (not complete), a bit each: from the kept masks, or
    /// computed and kept.
    fn allowed(&self, s: &JsonPrefix) -> Arc<Vec<u64>> {
        if let Some(m) = self.masks.lock().unwrap_or_else(|e| e.into_inner()).get(s) {
            return m.clone();
        }
        // Which first bytes can follow: most tokens are refused by their first byte alone.
        let mut first = [false; 256];
        for (b, ok) in first.iter_mut().enumerate() {
            *ok = s.clone().feed(b as u8);
        }
        let mut bits = vec![0u64; self.len().div_ceil(64)];
        let mut scratch = s.clone();
        for t in 0..self.len() {
            let b = self.token(t as u32);
            if !b.is_empty() && first[b[0] as usize] && {
                scratch.clone_from(s);
                scratch.feed_all(b)
            } {
                bits[t / 64] |= 1 << (t % 64);
            }
        }
        let bits = Arc::new(bits);
        let mut kept = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= MASKS_KEPT {
            kept.clear();
        }
        kept.insert(s.clone(), bits.clone());
        bits
    }

    /// Sets the logits of every token that may not follow `generated`'s text to −∞: the JSON object
    /// goes on, or, once it is complete, one of the `end` tokens ends the sequence. Where no token
    /// would fit (not expected), the end tokens stay.
    pub fn mask(&self, generated: &[u32], end: &[u32], logits: &mut [f32]) {
        let saved: Vec<(usize, f32)> =
            end.iter().filter_map(|&t| logits.get(t as usize).map(|&l| (t as usize, l))).collect();
        let keep_end = |logits: &mut [f32]| {
            logits.fill(f32::NEG_INFINITY);
            for &(t, l) in &saved {
                logits[t] = l;
            }
        };
        let s = match self.state(generated) {
            Some(s) if !s.is_complete() => s,
            _ => return keep_end(logits),
        };
        let allowed = self.allowed(&s);
        let mut any = false;
        for (t, l) in logits.iter_mut().enumerate() {
            if allowed.get(t / 64).is_some_and(|w| w >> (t % 64) & 1 == 1) {
                any |= *l > f32::NEG_INFINITY;
            } else {
                *l = f32::NEG_INFINITY;
            }
        }
        if !any {
            keep_end(logits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::SplitMix64;
    use serde_json::Value;

    fn accepts(s: &str) -> Option<JsonPrefix> {
        let mut p = JsonPrefix::default();
        p.feed_all(s.as_bytes()).then_some(p)
    }

    /// A random JSON value within the reader's limits, written with random whitespace.
    fn gen(r: &mut SplitMix64, depth: usize, out: &mut String) {
        let ws = |r: &mut SplitMix64, out: &mut String| {
            for _ in 0..r.next_u64() % 3 {
                out.push([' ', '\n', '\t', '\r'][(r.next_u64() % 4) as usize]);
            }
        };
        let k = if depth == 0 { 0 } else { r.next_u64() % 7 };
        match k {
            0 | 1 => {
                let obj = k == 0 || depth == 0;
                out.push(if obj { '{' } else { '[' });
                let n = if depth > 3 { 0 } else { r.next_u64() % 4 };
                for i in 0..n {
                    ws(r, out);
                    if i > 0 {
                        out.push(',');
                        ws(r, out);
                    }
                    if obj {
                        gen_str(r, out);
                        ws(r, out);
                        out.push(':');
                        ws(r, out);
                    }
                    gen(r, depth + 1, out);
                    ws(r, out);
                }
                ws(r, out);
                out.push(if obj { '}' } else { ']' });
            }
            2 => gen_str(r, out),
            3 => {
                let x = (r.next_u64() % 2_000_001) as f64 / 1000.0 - 1000.0;
                let e = r.next_u64() % 3;
                match e {
                    0 => out.push_str(&format!("{}", x as i64)),
                    1 => out.push_str(&format!("{x}")),
                    _ => out.push_str(&format!(
                        "{x}e{}{}",
                        ["", "+", "-"][(r.next_u64() % 3) as usize],
                        r.next_u64() % 99
                    )),
                }
            }
            4 => out.push_str("true"),
            5 => out.push_str("false"),
            _ => out.push_str("null"),
        }
    }

    fn gen_str(r: &mut SplitMix64, out: &mut String) {
        out.push('"');
        for _ in 0..r.next_u64() % 6 {
            let piece = ["a", "Z", " ", "é", "€", "🌟", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\u20AC", "'"];
            out.push_str(piece[(r.next_u64() % piece.len() as u64) as usize]);
        }
        out.push('"');
    }

    /// Not beyond the reader's limits where serde_json has none: trailing whitespace, long runs of it, digit runs
    /// longer than an integer's, exponents of three digits, `\\u` escapes that could be surrogates.
    fn within_limits(b: &[u8]) -> bool {
        let ws_run = b.windows(MAX_WS as usize + 1).any(|w| w.iter().all(|c| c.is_ascii_whitespace()));
        let digit_run = b.windows(MAX_INT_DIGITS as usize + 1).any(|w| w.iter().all(u8::is_ascii_digit));
        let long_exp = (0..b.len()).any(|i| {
            let rest = &b[i..];
            let digits = |r: &[u8]| r.iter().take_while(|c| c.is_ascii_digit()).count() >= 3;
            matches!(rest[0], b'e' | b'E')
                && (digits(&rest[1..]) || matches!(rest.get(1), Some(b'+' | b'-')) && digits(&rest[2..]))
        });
        let surrogate = b.windows(3).any(|w| w[0] == b'u' && matches!(w[1], b'd' | b'D'));
        b.last() == Some(&b'}') && !ws_run && !digit_run && !long_exp && !surrogate
    }

    #[test]
    fn every_prefix_of_a_json_object_is_read_and_only_the_whole_one_is_complete() {
        let mut r = SplitMix64(7);
        for _ in 0..2000 {
            let mut doc = String::new();
            gen(&mut r, 0, &mut doc);
            assert!(serde_json::from_str::<Value>(&doc).unwrap().is_object(), "{doc}");
            let mut p = JsonPrefix::default();
            for (i, &b) in doc.as_bytes().iter().enumerate() {
                assert!(!p.is_complete(), "complete before byte {i} of {doc:?}");
                assert!(p.feed(b), "byte {i} ({:?}) of {doc:?} refused", b as char);
            }
            assert!(p.is_complete(), "{doc:?}");
            for tail in [" ", "}", ",", "x"] {
                assert!(!p.clone().feed_all(tail.as_bytes()), "{doc:?} + {tail:?}");
            }
        }
    }

    #[test]
    fn what_the_reader_completes_serde_json_parses_as_an_object() {
        // Mutants of JSON texts (a byte dropped, doubled or swapped for another): whenever the reader reads
        // one whole as a complete object, serde_json must parse it to an object — and where serde_json parses
        // an object within the reader's limits (no surrogate escapes, short numbers), the reader must take it.
        let mut r = SplitMix64(11);
        let alphabet = b"{}[],:\" \n0123456789.-+eEtrufalsn\\u/aZ\xC3\xA9";
        let (mut both, mut checked) = (0, 0);
        for _ in 0..20000 {
            let mut doc = String::new();
            gen(&mut r, 0, &mut doc);
            let mut b = doc.into_bytes();
            for _ in 0..1 + r.next_u64() % 2 {
                let i = (r.next_u64() as usize) % b.len();
                match r.next_u64() % 3 {
                    0 => {
                        b.remove(i);
                    }
                    1 => b.insert(i, b[i]),
                    _ => b[i] = alphabet[(r.next_u64() as usize) % alphabet.len()],
                }
                if b.is_empty() {
                    break;
                }
            }
            let reader = {
                let mut p = JsonPrefix::default();
                p.feed_all(&b) && p.is_complete()
            };
            let serde = std::str::from_utf8(&b)
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .is_some_and(|v| v.is_object());
            let plain = within_limits(&b);
            if reader {
                assert!(serde, "reader completes what serde_json refuses: {:?}", String::from_utf8_lossy(&b));
            }
            if serde && plain {
                assert!(reader, "serde_json parses what the reader refuses: {:?}", String::from_utf8_lossy(&b));
            }
            both += usize::from(reader);
            checked += 1;
        }
        assert!(both > 1000, "{both} of {checked} mutants stayed JSON objects");
    }

    #[test]
    fn limits_and_strict_parser_cases() {
        for ok in ["{}", "{ \"a\" : [1, -0.5e+10, true, null, {\"b\": []}] }", "{\"\\u00e9\": \"\u{1F31F}\"}"] {
            assert!(accepts(ok).is_some_and(|p| p.is_complete()), "{ok}");
        }
        // Not a JSON object (serde_json agrees), so never complete.
        for bad in [
            "[]",
            "\"a\"",
            "1",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{,}",
            "{\"a\"}",
            "{\"a\":1,}",
            "{\"a\":[1,]}",
            "{\"a\":tru}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"\\x\"}",
            "{}}",
        ] {
            assert!(serde_json::from_str::<Value>(bad).map_or(true, |v| !v.is_object()), "{bad}");
            assert!(!accepts(bad).is_some_and(|p| p.is_complete()), "{bad}");
        }
        // JSON objects beyond the reader's limits: a surrogate escape, numbers past its digits, trailing space.
        for beyond in ["{\"a\":\"\\ud800\\udc00\"}", "{\"a\":1e100}", "{\"a\":123456789012345678901}", "{} "] {
            assert!(serde_json::from_str::<Value>(beyond).unwrap().is_object(), "{beyond}");
            assert!(!accepts(beyond).is_some_and(|p| p.is_complete()), "{beyond}");
        }
        // Invalid UTF-8 in a string: an overlong form, a lone continuation byte, a surrogate's encoding.
        for bad in [&b"{\"a\":\"\xC0\xAF\"}"[..], b"{\"a\":\"\x80\"}", b"{\"a\":\"\xED\xA0\x80\"}"] {
            assert!(!JsonPrefix::default().feed_all(bad));
        }
        // Inside a string the state does not remember the characters or escapes before (one kept mask serves all).
        let plain = accepts("{\"a\": \"xy").unwrap();
        for same in ["{\"a\": \"\u{e9}y", "{\"a\": \"\u{1F31F}y", "{\"a\": \"\\u00e9y", "{\"a\": \"\\ny"] {
            assert_eq!(accepts(same).as_ref(), Some(&plain), "{same}");
        }
        let deep = "[".repeat(MAX_DEPTH);
        assert!(accepts(&format!("{{\"a\":{}", &deep[1..])).is_some());
        assert!(accepts(&format!("{{\"a\":{deep}")).is_none());
        assert!(accepts(&format!("{{{}", " ".repeat(MAX_WS as usize))).is_some());
        assert!(accepts(&format!("{{{}", " ".repeat(MAX_WS as usize + 1))).is_none());
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    #[test]
    fn token_bytes_are_the_pieces_as_text_extends() {
        // SentencePiece (Llama's GGUF vocabulary): a normal piece is its text with `▁` as a space (kept at the
        // front, where decoding a text's first token drops it), a byte piece `<0xNN>` the byte, control and
        // unknown pieces nothing. Expected from the GGUF's pieces and types, not from the tokenizer.
        let path = fixture("llama_spm_vocab/ggml-vocab-llama-spm.gguf");
        let gg = crate::model::gguf::GgufFile::open(&path).unwrap();
        let raw = gg.tokenizer_vocab().unwrap();
        let (pieces, types) = (raw.tokens.clone(), raw.token_types.clone());
        let tok = Tokenizer::from_gguf_vocab(raw).unwrap();
        let v = JsonVocab::from_tokenizer(&tok, pieces.len() + 3);
        let mut differ = Vec::new();
        for (t, p) in pieces.iter().enumerate() {
            let want: Vec<u8> = match types[t] {
                1 => p.replace('\u{2581}', " ").into_bytes(),
                6 => vec![u8::from_str_radix(&p[3..5], 16).unwrap()],
                _ => Vec::new(),
            };
            if v.token(t as u32) != want.as_slice() {
                differ.push((t, p.clone(), String::from_utf8_lossy(v.token(t as u32)).into_owned()));
            }
        }
        assert!(
            differ.is_empty(),
            "{} of {} differ: {:?}",
            differ.len(),
            pieces.len(),
            &differ[..differ.len().min(10)]
        );
        assert_eq!((v.len(), v.token(pieces.len() as u32 + 1)), (pieces.len() + 3, &[][..]), "rows past the tokenizer");

        // GPT-2 byte-level BPE (tokenizer.json): each piece's characters are bytes (printable Latin-1 as
        // themselves, the others from U+0100 on); added special tokens nothing.
        let path = fixture("tiny_llama/tokenizer.json");
        let j: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let printable: Vec<u32> = (33..127).chain(161..173).chain(174..256).collect();
        let mut unbyte = std::collections::HashMap::new();
        let mut n = 0;
        for b in 0..256u32 {
            let c = if printable.contains(&b) {
                b
            } else {
                n += 1;
                255 + n
            };
            unbyte.insert(char::from_u32(c).unwrap(), b as u8);
        }
        let tok = Tokenizer::from_file(&path).unwrap();
        let v = JsonVocab::from_tokenizer(&tok, tok.vocab_size());
        let special: Vec<&str> =
            j["added_tokens"].as_array().unwrap().iter().map(|a| a["content"].as_str().unwrap()).collect();
        let mut seen = 0;
        for (p, id) in j["model"]["vocab"].as_object().unwrap() {
            let want: Vec<u8> =
                if special.contains(&p.as_str()) { Vec::new() } else { p.chars().map(|c| unbyte[&c]).collect() };
            assert_eq!(v.token(id.as_u64().unwrap() as u32), want.as_slice(), "{p:?}");
            seen += 1;
        }
        assert_eq!(seen, tok.vocab_size());
    }

    #[test]
    fn the_mask_keeps_exactly_the_tokens_that_extend_the_prefix() {
        let toks: Vec<&[u8]> =
            vec![b"{", b"\"", b"a", b"\":", b" 1", b"}", b"", b"<s>", b"\xC3", b"\xA9", b"}}", b"\n", b", \"b", b"tr"];
        let v = JsonVocab::new(toks.len(), |t| {
            let b = toks[t as usize];
            (b != b"<s>").then(|| b.to_vec())
        });
        let end = [7u32];
        let allowed = |gen: &[u32]| {
            let mut l = vec![0.0f32; toks.len()];
            v.mask(gen, &end, &mut l);
            (0..toks.len() as u32).filter(|&t| l[t as usize] == 0.0).collect::<Vec<_>>()
        };
        assert_eq!(allowed(&[]), vec![0, 11]);
        // Inside a key, `:` and `}` are characters; `\n` must be escaped, a lone continuation byte is not UTF-8.
        assert_eq!(allowed(&[0]), vec![1, 3, 5, 11]);
        assert_eq!(allowed(&[0, 1]), vec![0, 1, 2, 3, 4, 5, 8, 10, 13]);
        assert_eq!(allowed(&[0, 1, 8]), vec![9]);
        assert_eq!(allowed(&[0, 1, 2, 3]), vec![0, 1, 3, 4, 11, 13]);
        assert_eq!(allowed(&[0, 1, 2, 3, 4]), vec![5, 11, 12]);
        // Complete: only the end token.
        assert_eq!(allowed(&[0, 1, 2, 3, 4, 5]), vec![7]);
        // Where the model gives −∞ to every fitting token, the end tokens stay.
        let mut l = vec![f32::NEG_INFINITY; toks.len()];
        l[7] = 0.0;
        v.mask(&[0], &end, &mut l);
        assert_eq!(l.iter().filter(|x| x.is_finite()).count(), 1);
    }
}
