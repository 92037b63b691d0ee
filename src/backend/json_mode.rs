//! Constrained JSON decoding (serve's `response_format`): the tokens a sequence may take next so that
//! its text stays a prefix of one JSON value the request allows — any JSON object (`json_object`) or an
//! instance of a JSON Schema (`json_schema`) — and ends exactly when that value is complete.
//!
//! [`Grammar`] is what is allowed: [`Grammar::json_object`], or [`Grammar::from_schema`] (the subset of
//! JSON Schema listed there; a keyword it cannot enforce is an error, never ignored). [`JsonState`]
//! reads bytes under a grammar (RFC 8259, strict UTF-8). [`JsonVocab`] holds every token's bytes;
//! [`Constraint`] pairs a grammar with a vocabulary and keeps the allowed tokens of each state met;
//! [`Constraint::mask`] sets the logits of the tokens that would break the prefix to −∞ (the sequence's
//! end tokens only once the value may end). What a strict parser (serde_json) could refuse is kept out
//! as well: `\u` escapes of surrogates, numbers beyond f64's range; whitespace takes the layouts [`MAX_WS`]
//! describes (a model could otherwise pad to its length limit). Every state a grammar lets the text reach
//! can still be completed (nesting within [`MAX_DEPTH`] included), so a constrained choice never
//! strands.

use crate::model::tokenizer::Tokenizer;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Deepest nesting of objects and arrays.
pub const MAX_DEPTH: usize = 32;
/// Whitespace between tokens of the JSON text is nothing, one space, or a line break with at most this many spaces
/// or tabs of indentation after it (llama.cpp's JSON grammars allow the same layouts): a model can write JSON on one
/// line or indented, but never pad it with blank lines or long runs (its choice would reach its length limit).
pub const MAX_WS: u8 = 32;
/// `Cfg::ws` after a lone space (after a line break it counts the bytes of the run).
const WS_SPACE: u8 = u8::MAX;
const MAX_INT_DIGITS: u8 = 20;
const MAX_FRAC_DIGITS: u8 = 40;
const MAX_EXP_DIGITS: u8 = 2;
/// Most declared properties of one object schema.
pub const MAX_PROPS: usize = 64;
/// Most nodes a compiled schema may have.
const MAX_NODES: usize = 10_000;
/// Most alternatives (`anyOf`, type lists) a state reads in parallel.
const MAX_CFGS: usize = 32;
/// Longest `enum` / `const` value, as JSON text.
const MAX_LIT: usize = 4096;

type Id = u32;
/// Any JSON value; an object of any keys and values; an array of any values; `false` / `null` /
/// `true`; any string; any number. Every grammar starts with these six nodes.
const ANY: Id = 0;
const ANY_OBJ: Id = 1;
const ANY_ARR: Id = 2;
const ANY_LIT: Id = 3;
const ANY_STR: Id = 4;
const ANY_NUM: Id = 5;
const UNBOUNDED: u32 = u32::MAX;
/// A key that is none of the object's declared ones (its value: the object's `extra`).
const EXTRA: u8 = u8::MAX;

/// What one value may be.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Any,
    /// A number (`int`: an integer, no fraction or exponent) of this sign.
    Num {
        int: bool,
        sign: Sign,
    },
    /// An integer in `lo..=hi` (at most 19 digits).
    Int {
        lo: i128,
        hi: i128,
    },
    /// A bounded non-integer number, without exponent and with at most [`DEC_FRAC`] fraction digits: its
    /// digits read as units of 10⁻¹⁵ must reach `lo..=hi` (bounds made conservative, so that every value in
    /// it passes the exact check), and the value it ends with passes the bounds as f64 (the validators'
    /// reading).
    Dec {
        lo: i128,
        hi: i128,
        min: Option<f64>,
        xmin: Option<f64>,
        max: Option<f64>,
        xmax: Option<f64>,
    },
    /// A string of `min..=max` characters.
    Str {
        min: u32,
        max: u32,
    },
    /// One of these JSON texts (sorted, distinct): `enum`, `const`, booleans, null.
    Lit(Vec<Vec<u8>>),
    /// An array of `min..=max` values of `items`.
    Arr {
        items: Id,
        min: u32,
        max: u32,
    },
    /// An object: declared keys (as written inside the quotes, sorted) with their values' nodes, the
    /// required ones (a bit each), and the value of any other key (None: no other key).
    Obj {
        keys: Vec<Vec<u8>>,
        vals: Vec<Id>,
        required: u64,
        extra: Option<Id>,
    },
    /// Any of these.
    Union(Vec<Id>),
}

/// What a constrained text may be: a JSON value of the root node.
#[derive(Debug, PartialEq)]
pub struct Grammar {
    nodes: Vec<Node>,
    root: Id,
    /// Each node's least nesting of objects / arrays an instance needs (u32::MAX: it has none).
    depth: Vec<u32>,
}

/// A container being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Frame {
    Obj {
        node: Id,
        seen: u64,
        at: ObjAt,
    },
    /// `open`: right after `[`.
    Arr {
        node: Id,
        count: u32,
        open: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum ObjAt {
    /// After `{`: a key or `}`.
    Open,
    /// After `,`: a key.
    Key,
    /// After key `k` (an index into the declared keys, or [`EXTRA`]): `:`.
    Colon(u8),
    /// After a value: `,` or `}`.
    After,
}

/// A token being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Lex {
    None,
    /// A string value of node `node`, `n` characters begun (counted only where the node bounds them).
    Str {
        node: Id,
        part: InStr,
        n: u32,
    },
    /// A key of the innermost object: declared keys `lo..hi` still spell what is typed (`pos` bytes).
    Key {
        lo: u8,
        hi: u8,
        pos: u16,
        part: InStr,
    },
    /// A number; `sign`: Positive's `nz` says whether a non-zero digit came (false for the other signs).
    Num {
        int: bool,
        sign: Sign,
        nz: bool,
        part: NumPart,
        digits: u8,
    },
    /// A bounded non-integer number of node `node`: its sign, part, whether its integer part is a leading
    /// zero, its integer / fraction digit counts and the magnitude of all its digits so far.
    Dec {
        node: Id,
        neg: bool,
        part: DecPart,
        lead0: bool,
        idig: u8,
        fdig: u8,
        val: i128,
    },
    /// A bounded integer of node `node`: its sign, the magnitude of its digits so far and their count.
    Int {
        node: Id,
        neg: bool,
        mag: u64,
        digits: u8,
    },
    /// One of node `node`'s texts `lo..hi`, `pos` bytes typed.
    Lit {
        node: Id,
        lo: u16,
        hi: u16,
        pos: u16,
    },
}

/// Where a string is read. A state holds only what its next bytes depend on, so equal states
/// compare (and hash) equal for the kept masks whatever characters came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// The sign a number may have (`minimum: 0`, `exclusiveMinimum: 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Sign {
    Any,
    NonNegative,
    Positive,
}

/// Most digits of a bounded integer (and of a bounded number's integer part).
const MAX_BOUNDED_DIGITS: u8 = 19;
/// Most fraction digits of a bounded non-integer number, and its unit (10⁻¹⁵) and largest magnitude.
const DEC_FRAC: u8 = 15;
const DEC_UNIT: i128 = 1_000_000_000_000_000;
const DEC_MAX: i128 = 10_000_000_000_000_000_000 * DEC_UNIT - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum DecPart {
    /// Nothing or `-`.
    Sign,
    Int,
    /// After `.`.
    Dot,
    Frac,
}

/// Whether a bounded number's digits so far can still be a value in units `lo..=hi`: after integer digits
/// `val` (`idig` of them), any value whose integer part begins with them; after fraction digits (`fdig`),
/// `val` as the value's first digits.
fn dec_reachable(neg: bool, part: DecPart, lead0: bool, idig: u8, fdig: u8, val: i128, (lo, hi): (i128, i128)) -> bool {
    let hit = |a: i128, b: i128| if neg { -b <= hi && -a >= lo } else { a <= hi && b >= lo };
    match part {
        DecPart::Sign => hit(0, DEC_MAX),
        DecPart::Int if lead0 => hit(0, DEC_UNIT - 1),
        DecPart::Int => {
            let mut scale: i128 = 1;
            for _ in idig..=MAX_BOUNDED_DIGITS {
                if hit(val * scale * DEC_UNIT, (val + 1) * scale * DEC_UNIT - 1) {
                    return true;
                }
                scale *= 10;
            }
            false
        }
        DecPart::Dot | DecPart::Frac => {
            let scale = 10i128.pow((DEC_FRAC - fdig) as u32);
            hit(val * scale, (val + 1) * scale - 1)
        }
    }
}

/// The f64 a bounded number's text reads as (digits `val`, the last `fdig` of them fraction).
fn dec_value(neg: bool, val: i128, fdig: u8) -> f64 {
    let d = format!("{val:0>width$}", width = fdig as usize + 1);
    let (i, f) = d.split_at(d.len() - fdig as usize);
    format!("{}{i}.{f}0", if neg { "-" } else { "" }).parse().unwrap_or(f64::NAN)
}

/// The least value in units of 10⁻¹⁵ from which every decimal satisfies `≥ x` (`> x` when `excl`) once read
/// as f64: the bound itself where its shortest decimal has at most [`DEC_FRAC`] fraction digits (rounding is
/// monotonic), else — and for exclusive bounds other than 0 — past it by more than f64's rounding.
fn units_from(x: f64, excl: bool) -> i128 {
    let text = format!("{x}");
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text.as_str()),
    };
    let (i, f) = t.split_once('.').unwrap_or((t, ""));
    if f.len() <= DEC_FRAC as usize && i.len() <= MAX_BOUNDED_DIGITS as usize {
        let exact = format!("{i}{f:0<15}").parse::<i128>().map(|v| if neg { -v } else { v });
        match exact {
            Ok(v) if !excl => return v,
            Ok(0) => return 1,
            _ => {}
        }
    }
    let m = (x * 1e15).clamp(-(DEC_MAX as f64), DEC_MAX as f64);
    let extra = (m.abs() * 1e-15).ceil().max(2.0);
    ((m.ceil() + extra) as i128).clamp(-DEC_MAX, DEC_MAX)
}

/// Whether an integer whose decimal digits begin with `mag` (`digits` of them; negative with `neg`) can
/// still be one in `lo..=hi` within [`MAX_BOUNDED_DIGITS`].
fn int_reachable(neg: bool, mag: u64, digits: u8, lo: i128, hi: i128) -> bool {
    let within = |a: i128, b: i128| if neg { -b <= hi && -a >= lo } else { a <= hi && b >= lo };
    if mag == 0 {
        return within(0, 0);
    }
    let mut scale: i128 = 1;
    for _ in digits..=MAX_BOUNDED_DIGITS {
        let a = mag as i128 * scale;
        if within(a, a + scale - 1) {
            return true;
        }
        scale *= 10;
    }
    false
}

/// What comes next outside tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Want {
    /// A value of this node.
    Value(Id),
    /// What the innermost container takes after its last byte.
    Punct,
    /// Nothing: the value is complete.
    Done,
}

/// One reading of the text so far.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Cfg {
    stack: Vec<Frame>,
    lex: Lex,
    want: Want,
    ws: u8,
}

impl Clone for Cfg {
    fn clone(&self) -> Self {
        Cfg { stack: self.stack.clone(), lex: self.lex, want: self.want, ws: self.ws }
    }
    fn clone_from(&mut self, o: &Self) {
        self.stack.clone_from(&o.stack);
        (self.lex, self.want, self.ws) = (o.lex, o.want, o.ws);
    }
}

enum Step {
    Ok,
    Fail,
    /// The value wanted is the union node `id`: the byte is read as each of its alternatives.
    Fork(Id),
}

/// A prefix of a text under a grammar: the readings it still has (more than one only inside
/// alternatives that begin alike).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonState {
    cfgs: Vec<Cfg>,
}

/// A string byte between characters or inside one; None when it cannot be one (the closing `"` is
/// the caller's).
fn in_str(part: InStr, b: u8) -> Option<InStr> {
    Some(match part {
        InStr::Utf8 { left, lo, hi } => {
            if !(lo..=hi).contains(&b) {
                return None;
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
            _ => return None,
        },
        InStr::Hex { n, v } => {
            let d = (b as char).to_digit(16)?;
            let v = v << 4 | d as u16;
            // After the second digit: refuse a surrogate (U+D800..U+DFFF), which a strict parser
            // wants paired; the character itself can be written as UTF-8.
            if n == 1 && (0xD8..=0xDF).contains(&v) {
                return None;
            }
            if n == 3 {
                InStr::Char
            } else {
                InStr::Hex { n: n + 1, v }
            }
        }
        InStr::Char => match b {
            b'\\' => InStr::Escape,
            0x00..=0x1F | b'"' => return None,
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
                    _ => return None,
                };
                InStr::Utf8 { left, lo, hi }
            }
        },
    })
}

fn bit(i: usize) -> u64 {
    1u64 << i
}

impl Grammar {
    fn base() -> Vec<Node> {
        vec![
            Node::Any,
            Node::Obj { keys: Vec::new(), vals: Vec::new(), required: 0, extra: Some(ANY) },
            Node::Arr { items: ANY, min: 0, max: UNBOUNDED },
            Node::Lit(vec![b"false".to_vec(), b"null".to_vec(), b"true".to_vec()]),
            Node::Str { min: 0, max: UNBOUNDED },
            Node::Num { int: false, sign: Sign::Any },
        ]
    }

    fn with_root(nodes: Vec<Node>, root: Id) -> Result<Grammar, String> {
        let depth = min_depth(&nodes);
        match depth[root as usize] {
            UNBOUNDED => return Err("the schema has no finite instance".into()),
            d if d as usize > MAX_DEPTH => {
                return Err(format!("the schema's instances nest deeper than {MAX_DEPTH} objects / arrays"))
            }
            _ => {}
        }
        Ok(Grammar { nodes, root, depth })
    }

    /// Any JSON object (`response_format: {"type": "json_object"}`).
    pub fn json_object() -> Grammar {
        Self::with_root(Self::base(), ANY_OBJ).expect("the object grammar")
    }

    /// The reading before any byte.
    pub fn start(&self) -> JsonState {
        JsonState { cfgs: vec![Cfg { stack: Vec::new(), lex: Lex::None, want: Want::Value(self.root), ws: 0 }] }
    }

    /// Whether a value of node `id` begun at nesting `depth` can still be completed.
    fn fits(&self, depth: usize, id: Id) -> bool {
        (self.depth[id as usize] as usize).saturating_add(depth) <= MAX_DEPTH
    }

    /// Whether the innermost object can take another key: an unseen declared one that fits, or any other.
    fn key_possible(&self, depth: usize, node: Id, seen: u64) -> bool {
        let Node::Obj { vals, extra, .. } = &self.nodes[node as usize] else { return false };
        extra.is_some_and(|x| self.fits(depth, x))
            || vals.iter().enumerate().any(|(i, &v)| seen & bit(i) == 0 && self.fits(depth, v))
    }

    fn done_value(c: &mut Cfg) {
        c.lex = Lex::None;
        c.want = if c.stack.is_empty() { Want::Done } else { Want::Punct };
    }

    /// Reads one byte into one reading.
    fn step(&self, c: &mut Cfg, b: u8) -> Step {
        let ok = |x: bool| if x { Step::Ok } else { Step::Fail };
        match c.lex {
            Lex::None => {
                if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    // nothing, " ", or "\n" and up to MAX_WS - 1 spaces / tabs
                    c.ws = match (c.ws, b) {
                        (0, b' ') => WS_SPACE,
                        (0, b'\n') => 1,
                        (n, b' ' | b'\t') if n != WS_SPACE && n != 0 && n < MAX_WS => n + 1,
                        _ => return Step::Fail,
                    };
                    return ok(c.want != Want::Done);
                }
                c.ws = 0;
                match c.want {
                    Want::Value(id) => self.value(c, id, b),
                    Want::Punct => self.punct(c, b),
                    Want::Done => Step::Fail,
                }
            }
            Lex::Str { node, part, n } => {
                if part == InStr::Char && b == b'"' {
                    let Node::Str { min, .. } = self.nodes[node as usize] else { return Step::Fail };
                    if n < min {
                        return Step::Fail;
                    }
                    Self::done_value(c);
                    return Step::Ok;
                }
                let Some(next) = in_str(part, b) else { return Step::Fail };
                let mut n = n;
                if part == InStr::Char {
                    // A character begins: count it where the node bounds the length.
                    if let Node::Str { min, max } = self.nodes[node as usize] {
                        if min > 0 || max != UNBOUNDED {
                            if n >= max {
                                return Step::Fail;
                            }
                            n += 1;
                        }
                    }
                }
                c.lex = Lex::Str { node, part: next, n };
                Step::Ok
            }
            Lex::Key { lo, hi, pos, part } => ok(self.key_byte(c, lo, hi, pos, part, b)),
            Lex::Num { int, sign, nz, part, digits } => {
                use NumPart::*;
                let digit = b.is_ascii_digit();
                // A positive number's mantissa has a non-zero digit (its exponent's digits do not count).
                let nz = nz || sign == Sign::Positive && matches!(b, b'1'..=b'9') && !matches!(part, E | ESign | Exp);
                let next = match (part, b) {
                    (Minus, b'0') => Some((Zero, 0)),
                    (Minus, _) if digit => Some((Int, 1)),
                    (Int, _) if digit => Some((Int, digits + 1)),
                    (Zero | Int, b'.') if !int => Some((Dot, 0)),
                    (Dot | Frac, _) if digit => Some((Frac, digits + 1)),
                    (Zero | Int | Frac, b'e' | b'E') if !int => Some((E, 0)),
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
                        // A positive number without a non-zero digit yet keeps room for one: no exponent, no
                        // last fraction digit that is zero.
                        if sign == Sign::Positive && !nz && (p == E || p == Frac && d >= cap) {
                            return Step::Fail;
                        }
                        c.lex = Lex::Num { int, sign, nz, part: p, digits: d };
                        ok(d <= cap)
                    }
                    // The number ends here if it may; the byte then belongs to what follows.
                    None if self.may_end(c.lex) => self.end_then(c, b),
                    None => Step::Fail,
                }
            }
            Lex::Dec { node, neg, part, lead0, idig, fdig, val } => {
                let Node::Dec { lo, hi, .. } = self.nodes[node as usize] else { return Step::Fail };
                let next = match (part, b) {
                    (DecPart::Sign, b'0') => (DecPart::Int, true, 1, 0, 0),
                    (DecPart::Sign, b'1'..=b'9') => (DecPart::Int, false, 1, 0, (b - b'0') as i128),
                    (DecPart::Int, b'0'..=b'9') if !lead0 && idig < MAX_BOUNDED_DIGITS => {
                        (DecPart::Int, false, idig + 1, 0, val * 10 + (b - b'0') as i128)
                    }
                    (DecPart::Int, b'.') => (DecPart::Dot, lead0, idig, 0, val),
                    (DecPart::Dot | DecPart::Frac, b'0'..=b'9') if fdig < DEC_FRAC => {
                        (DecPart::Frac, lead0, idig, fdig + 1, val * 10 + (b - b'0') as i128)
                    }
                    // The number ends here if it may; the byte then belongs to what follows.
                    _ if !b.is_ascii_digit() && self.may_end(c.lex) => return self.end_then(c, b),
                    _ => return Step::Fail,
                };
                let (part, lead0, idig, fdig, val) = next;
                if !dec_reachable(neg, part, lead0, idig, fdig, val, (lo, hi)) {
                    return Step::Fail;
                }
                c.lex = Lex::Dec { node, neg, part, lead0, idig, fdig, val };
                Step::Ok
            }
            Lex::Int { node, neg, mag, digits } => {
                let Node::Int { lo, hi } = self.nodes[node as usize] else { return Step::Fail };
                if b.is_ascii_digit() {
                    // No digit after a leading zero; the prefix must still reach the range.
                    if digits == 1 && mag == 0 || digits >= MAX_BOUNDED_DIGITS {
                        return Step::Fail;
                    }
                    let mag = mag * 10 + (b - b'0') as u64;
                    if !int_reachable(neg, mag, digits + 1, lo, hi) {
                        return Step::Fail;
                    }
                    c.lex = Lex::Int { node, neg, mag, digits: digits + 1 };
                    return Step::Ok;
                }
                if self.may_end(c.lex) {
                    self.end_then(c, b)
                } else {
                    Step::Fail
                }
            }
            Lex::Lit { node, lo, hi, pos } => {
                let Node::Lit(texts) = &self.nodes[node as usize] else { return Step::Fail };
                let (lo, hi, p) = (lo as usize, hi as usize, pos as usize);
                // The texts lo..hi share their first p bytes and are sorted, so those going on with b are a run.
                let nlo = (lo..hi).find(|&i| texts[i].get(p) == Some(&b)).unwrap_or(hi);
                let nhi = (nlo..hi).find(|&i| texts[i].get(p) != Some(&b)).unwrap_or(hi);
                if nlo < nhi {
                    if nhi - nlo == 1 && texts[nlo].len() == p + 1 {
                        Self::done_value(c);
                    } else {
                        c.lex = Lex::Lit { node, lo: nlo as u16, hi: nhi as u16, pos: pos + 1 };
                    }
                    Step::Ok
                } else if self.may_end(c.lex) {
                    // A text ended (a number that could have gone on): the byte belongs to what follows.
                    self.end_then(c, b)
                } else {
                    Step::Fail
                }
            }
        }
    }

    /// Whether the token being read may end where it is (a number or literal that could also go on ends
    /// at the first byte that does not continue it): a number with its digits (a positive one with a
    /// non-zero digit), a bounded one within its bounds (a non-integer's as f64), a whole literal.
    fn may_end(&self, lex: Lex) -> bool {
        match lex {
            Lex::Num { part, sign, nz, .. } => {
                matches!(part, NumPart::Zero | NumPart::Int | NumPart::Frac | NumPart::Exp)
                    && (sign != Sign::Positive || nz)
            }
            Lex::Int { node, neg, mag, digits } => {
                let Node::Int { lo, hi } = self.nodes[node as usize] else { return false };
                digits > 0 && (lo..=hi).contains(&if neg { -(mag as i128) } else { mag as i128 })
            }
            Lex::Dec { node, neg, part, fdig, val, .. } => {
                let Node::Dec { min, xmin, max, xmax, .. } = self.nodes[node as usize] else { return false };
                let v = dec_value(neg, val, fdig);
                matches!(part, DecPart::Int | DecPart::Frac)
                    && min.is_none_or(|m| v >= m)
                    && xmin.is_none_or(|m| v > m)
                    && max.is_none_or(|m| v <= m)
                    && xmax.is_none_or(|m| v < m)
            }
            Lex::Lit { node, lo, hi, pos } => {
                let Node::Lit(t) = &self.nodes[node as usize] else { return false };
                (lo..hi).any(|i| t[i as usize].len() == pos as usize)
            }
            Lex::None | Lex::Str { .. } | Lex::Key { .. } => false,
        }
    }

    /// The token being read ends before byte `b`, which is read as what follows it.
    fn end_then(&self, c: &mut Cfg, b: u8) -> Step {
        Self::done_value(c);
        self.step(c, b)
    }

    /// The first byte of a value of node `id` (which fits where it starts).
    fn value(&self, c: &mut Cfg, id: Id, b: u8) -> Step {
        // The token this byte begins; a number's `-` is all of its first step.
        let lex = match &self.nodes[id as usize] {
            Node::Any => match b {
                b'{' => return self.value(c, ANY_OBJ, b),
                b'[' => return self.value(c, ANY_ARR, b),
                b'"' => return self.value(c, ANY_STR, b),
                b'-' | b'0'..=b'9' => return self.value(c, ANY_NUM, b),
                _ => return self.value(c, ANY_LIT, b),
            },
            Node::Num { int, sign } => match b {
                b'-' if *sign != Sign::Any => return Step::Fail,
                b'-' | b'0'..=b'9' => Lex::Num { int: *int, sign: *sign, nz: false, part: NumPart::Minus, digits: 0 },
                _ => return Step::Fail,
            },
            Node::Dec { lo, hi, .. } => match b {
                b'-' if !dec_reachable(true, DecPart::Sign, false, 0, 0, 0, (*lo, *hi)) => return Step::Fail,
                b'-' | b'0'..=b'9' => {
                    Lex::Dec { node: id, neg: b == b'-', part: DecPart::Sign, lead0: false, idig: 0, fdig: 0, val: 0 }
                }
                _ => return Step::Fail,
            },
            Node::Int { lo, .. } => match b {
                b'-' if *lo >= 0 => return Step::Fail,
                b'-' | b'0'..=b'9' => Lex::Int { node: id, neg: b == b'-', mag: 0, digits: 0 },
                _ => return Step::Fail,
            },
            Node::Str { .. } if b == b'"' => Lex::Str { node: id, part: InStr::Char, n: 0 },
            Node::Str { .. } => return Step::Fail,
            Node::Lit(texts) => Lex::Lit { node: id, lo: 0, hi: texts.len() as u16, pos: 0 },
            Node::Obj { .. } => return self.open(c, b == b'{', Frame::Obj { node: id, seen: 0, at: ObjAt::Open }),
            Node::Arr { .. } => return self.open(c, b == b'[', Frame::Arr { node: id, count: 0, open: true }),
            Node::Union(_) => return Step::Fork(id),
        };
        c.lex = lex;
        let number = matches!(lex, Lex::Num { .. } | Lex::Int { .. } | Lex::Dec { .. });
        if matches!(lex, Lex::Str { .. }) || number && b == b'-' {
            return Step::Ok;
        }
        self.step(c, b)
    }

    /// A container's opening (`opens`: the byte is its bracket) within [`MAX_DEPTH`].
    fn open(&self, c: &mut Cfg, opens: bool, frame: Frame) -> Step {
        if !opens || c.stack.len() >= MAX_DEPTH {
            return Step::Fail;
        }
        c.stack.push(frame);
        c.want = Want::Punct;
        Step::Ok
    }

    /// A byte after a value or a container's opening, other than whitespace.
    fn punct(&self, c: &mut Cfg, b: u8) -> Step {
        let depth = c.stack.len();
        let Some(top) = c.stack.last_mut() else { return Step::Fail };
        match top {
            Frame::Obj { node, seen, at } => {
                let (node, seen0) = (*node, *seen);
                let Node::Obj { keys, vals, required, extra } = &self.nodes[node as usize] else {
                    return Step::Fail;
                };
                match (*at, b) {
                    (ObjAt::Open | ObjAt::After, b'}') if required & !seen0 == 0 => {}
                    (ObjAt::Open | ObjAt::Key, b'"') if self.key_possible(depth, node, seen0) => {
                        c.lex = Lex::Key { lo: 0, hi: keys.len() as u8, pos: 0, part: InStr::Char };
                        return Step::Ok;
                    }
                    (ObjAt::After, b',') if self.key_possible(depth, node, seen0) => {
                        *at = ObjAt::Key;
                        return Step::Ok;
                    }
                    (ObjAt::Colon(k), b':') => {
                        *at = ObjAt::After;
                        let v = if k == EXTRA { extra.unwrap_or(ANY) } else { vals[k as usize] };
                        c.want = Want::Value(v);
                        return Step::Ok;
                    }
                    _ => return Step::Fail,
                }
            }
            Frame::Arr { node, count, open } => {
                let Node::Arr { items, min, max } = self.nodes[*node as usize] else { return Step::Fail };
                match (*open, b) {
                    (_, b']') if *count >= min => {}
                    (false, b',') if *count < max && self.fits(depth, items) => {
                        *count += 1;
                        c.want = Want::Value(items);
                        return Step::Ok;
                    }
                    (true, _) if max > 0 && self.fits(depth, items) => {
                        (*count, *open) = (1, false);
                        c.want = Want::Value(items);
                        return self.value(c, items, b);
                    }
                    _ => return Step::Fail,
                }
            }
        }
        // A container closes.
        c.stack.pop();
        Self::done_value(c);
        Step::Ok
    }

    /// A byte of a key of the innermost object.
    fn key_byte(&self, c: &mut Cfg, lo: u8, hi: u8, pos: u16, part: InStr, b: u8) -> bool {
        let depth = c.stack.len();
        let Some(Frame::Obj { node, seen, at }) = c.stack.last_mut() else { return false };
        let Node::Obj { keys, vals, extra, .. } = &self.nodes[*node as usize] else { return false };
        let seen0 = *seen;
        let usable = |i: usize| seen0 & bit(i) == 0 && self.fits(depth, vals[i]);
        let (lo, hi, p) = (lo as usize, hi as usize, pos as usize);
        let nlo = (lo..hi).find(|&i| keys[i].get(p) == Some(&b)).unwrap_or(hi);
        let nhi = (nlo..hi).find(|&i| keys[i].get(p) != Some(&b)).unwrap_or(hi);
        let free = extra.is_some_and(|x| self.fits(depth, x));
        let close = |k: u8, seen: &mut u64, at: &mut ObjAt| {
            if k != EXTRA {
                *seen |= bit(k as usize);
            }
            *at = ObjAt::Colon(k);
        };
        if !free {
            // Only declared keys: the typed bytes spell one of them as JSON writes it.
            if (nlo..nhi).any(usable) {
                c.lex = Lex::Key { lo: nlo as u8, hi: nhi as u8, pos: pos + 1, part };
                return true;
            }
            if b == b'"' {
                if let Some(i) = (lo..hi).find(|&i| keys[i].len() == p && usable(i)) {
                    close(i as u8, seen, at);
                    c.lex = Lex::None;
                    return true;
                }
            }
            return false;
        }
        if part == InStr::Char && b == b'"' {
            // The key ends: a declared key (once only) or another.
            let k = match (lo..hi).find(|&i| keys[i].len() == p) {
                Some(i) if !usable(i) => return false,
                Some(i) => i as u8,
                None => EXTRA,
            };
            close(k, seen, at);
            c.lex = Lex::None;
            return true;
        }
        // Escapes only where they spell a declared key: a key written otherwise that means a declared one
        // would name it twice.
        let escaping = matches!(part, InStr::Escape | InStr::Hex { .. }) || part == InStr::Char && b == b'\\';
        if escaping && !keys.is_empty() && nlo >= nhi {
            return false;
        }
        let Some(next) = in_str(part, b) else { return false };
        c.lex = if nlo < nhi {
            Lex::Key { lo: nlo as u8, hi: nhi as u8, pos: pos + 1, part: next }
        } else {
            Lex::Key { lo: 0, hi: 0, pos: 0, part: next }
        };
        true
    }
}

/// Each node's least nesting an instance needs (u32::MAX: none is finite).
fn min_depth(nodes: &[Node]) -> Vec<u32> {
    let mut d = vec![UNBOUNDED; nodes.len()];
    let add1 = |x: u32| x.saturating_add(1);
    loop {
        let mut changed = false;
        for (i, n) in nodes.iter().enumerate() {
            let v = match n {
                Node::Any
                | Node::Num { .. }
                | Node::Int { .. }
                | Node::Dec { .. }
                | Node::Str { .. }
                | Node::Lit(_) => 0,
                Node::Arr { items, min, .. } => add1(if *min > 0 { d[*items as usize] } else { 0 }),
                Node::Obj { vals, required, .. } => add1(
                    vals.iter()
                        .enumerate()
                        .filter(|(k, _)| required & bit(*k) != 0)
                        .map(|(_, &v)| d[v as usize])
                        .max()
                        .unwrap_or(0),
                ),
                Node::Union(alts) => alts.iter().map(|&a| d[a as usize]).min().unwrap_or(UNBOUNDED),
            };
            if v < d[i] {
                d[i] = v;
                changed = true;
            }
        }
        if !changed {
            return d;
        }
    }
}

impl JsonState {
    /// Reads one byte; `false` (the state then unspecified) when it leaves no value to complete.
    pub fn feed(&mut self, g: &Grammar, b: u8) -> bool {
        if self.cfgs.len() == 1 {
            match g.step(&mut self.cfgs[0], b) {
                Step::Ok => return true,
                Step::Fail => {
                    self.cfgs.clear();
                    return false;
                }
                Step::Fork(u) => {
                    let c = self.cfgs.pop().expect("one reading");
                    Self::fork(g, c, u, b, &mut self.cfgs, 0);
                }
            }
        } else {
            let mut out = Vec::with_capacity(self.cfgs.len());
            for mut c in std::mem::take(&mut self.cfgs) {
                match g.step(&mut c, b) {
                    Step::Ok => out.push(c),
                    Step::Fail => {}
                    Step::Fork(u) => Self::fork(g, c, u, b, &mut out, 0),
                }
            }
            self.cfgs = out;
        }
        if self.cfgs.len() > 1 {
            self.cfgs.sort();
            self.cfgs.dedup();
            self.cfgs.truncate(MAX_CFGS);
        }
        !self.cfgs.is_empty()
    }

    /// Reads `b` as the first byte of each alternative of union `u` that fits.
    fn fork(g: &Grammar, c: Cfg, u: Id, b: u8, out: &mut Vec<Cfg>, hops: usize) {
        let Node::Union(alts) = &g.nodes[u as usize] else { return };
        if hops > 64 {
            return;
        }
        for &a in alts {
            if !g.fits(c.stack.len(), a) {
                continue;
            }
            let mut x = c.clone();
            x.want = Want::Value(a);
            match g.step(&mut x, b) {
                Step::Ok => out.push(x),
                Step::Fail => {}
                Step::Fork(v) => Self::fork(g, x, v, b, out, hops + 1),
            }
        }
    }

    /// Reads `bytes`; `false` when they leave no value to complete.
    pub fn feed_all(&mut self, g: &Grammar, bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| self.feed(g, b))
    }

    /// Whether the text so far is a whole value the grammar allows (it may still go on where that value is
    /// a number: `1` → `12`).
    pub fn can_end(&self, g: &Grammar) -> bool {
        self.cfgs.iter().any(|c| match (c.want, c.lex) {
            (Want::Done, _) => true,
            (_, lex) => c.stack.is_empty() && g.may_end(lex),
        })
    }

    /// Whether nothing may follow (the value is complete and cannot go on).
    pub fn is_complete(&self) -> bool {
        !self.cfgs.is_empty() && self.cfgs.iter().all(|c| c.want == Want::Done)
    }
}

/// Every token's bytes as they extend a text (a SentencePiece `▁` as the space it stands for, a byte
/// piece as its byte); tokens with none (special and control tokens) never fit a JSON text.
pub struct JsonVocab {
    bytes: Vec<u8>,
    /// Token t's bytes are `bytes[offs[t]..offs[t + 1]]`.
    offs: Vec<u32>,
    /// The tokens that are plain string text, made by the first string state met.
    plain: std::sync::OnceLock<Plain>,
}

/// Which tokens are plain string text — whole UTF-8 characters, none of them `"`, `\\` or a control
/// character — and how many characters each has: inside a string (between characters) such a token
/// is allowed whatever encloses the string, up to the string's length bound, so a string state's mask
/// reads only the other tokens byte by byte.
struct Plain {
    /// Characters of each token; [`NOT_PLAIN`] for the others.
    chars: Vec<u32>,
    /// The plain tokens, a bit each.
    bits: Vec<u64>,
    /// The tokens with bytes that are not plain.
    others: Vec<u32>,
}

const NOT_PLAIN: u32 = u32::MAX;

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
        JsonVocab { bytes, offs, plain: std::sync::OnceLock::new() }
    }

    fn plain(&self) -> &Plain {
        self.plain.get_or_init(|| {
            let mut p = Plain {
                chars: Vec::with_capacity(self.len()),
                bits: vec![0; self.len().div_ceil(64)],
                others: Vec::new(),
            };
            for t in 0..self.len() {
                let b = self.token(t as u32);
                let text = std::str::from_utf8(b).ok().filter(|x| !x.chars().any(|c| c == '"' || c == '\\' || c < ' '));
                match text {
                    Some(x) if !b.is_empty() => {
                        p.chars.push(x.chars().count() as u32);
                        p.bits[t / 64] |= 1 << (t % 64);
                    }
                    _ => {
                        p.chars.push(NOT_PLAIN);
                        if !b.is_empty() {
                            p.others.push(t as u32);
                        }
                    }
                }
            }
            p
        })
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

    /// The bytes of `tokens` one after the other (a sequence's generated text).
    pub fn text(&self, tokens: &[u32]) -> Vec<u8> {
        tokens.iter().flat_map(|&t| self.token(t).iter().copied()).collect()
    }

    /// The tokens with bytes for which `keep` holds, a bit each (tokens with no bytes never).
    pub fn bits_where(&self, mut keep: impl FnMut(&[u8]) -> bool) -> Vec<u64> {
        let n = self.len();
        let mut bits = vec![0u64; n.div_ceil(64)];
        for t in 0..n {
            let b = self.token(t as u32);
            if !b.is_empty() && keep(b) {
                bits[t / 64] |= 1 << (t % 64);
            }
        }
        bits
    }
}

/// What a shaped sequence's text must be, applied to a row of logits before sampling: a JSON value
/// ([`Constraint`]) or one of a list of strings ([`Choices`], vLLM's `guided_choice`).
pub trait TokenConstraint: Send + Sync + std::fmt::Debug {
    /// Sets to −∞ the logits of the tokens that would leave what the text may still become after
    /// `generated`; `end` (the sequence's end tokens) stay only where the text may end (or where nothing
    /// else is left).
    fn mask(&self, generated: &[u32], end: &[u32], logits: &mut [f32]);
}

impl TokenConstraint for Constraint {
    fn mask(&self, generated: &[u32], end: &[u32], logits: &mut [f32]) {
        Constraint::mask(self, generated, end, logits)
    }
}

/// The mask kept for `key`, or `compute`'s, then kept (all are dropped once [`MASKS_KEPT`] are).
pub(crate) fn kept_mask<K, Q>(
    masks: &Mutex<HashMap<K, Arc<Vec<u64>>>>,
    key: &Q,
    compute: impl FnOnce() -> Vec<u64>,
) -> Arc<Vec<u64>>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
{
    if let Some(m) = masks.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
        return m.clone();
    }
    let bits = Arc::new(compute());
    let mut kept = masks.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= MASKS_KEPT {
        kept.clear();
    }
    kept.insert(key.to_owned(), bits.clone());
    bits
}

/// Sets to −∞ the logits of the tokens not in `allowed` (a bit each); the `end` tokens keep theirs where the text
/// `may_end`, or where no other token is left.
pub(crate) fn apply_mask(allowed: &[u64], may_end: bool, end: &[u32], logits: &mut [f32]) {
    let saved: Vec<(usize, f32)> =
        end.iter().filter_map(|&t| logits.get(t as usize).map(|&l| (t as usize, l))).collect();
    let mut any = false;
    for (t, l) in logits.iter_mut().enumerate() {
        if allowed.get(t / 64).is_some_and(|w| w >> (t % 64) & 1 == 1) {
            any |= *l > f32::NEG_INFINITY;
        } else {
            *l = f32::NEG_INFINITY;
        }
    }
    if !any || may_end {
        for (t, l) in saved {
            logits[t] = l;
        }
    }
}

/// vLLM's `guided_choice`: the text is exactly one of `choices` (any tokenization of it), then an end token.
pub struct Choices {
    choices: Vec<Vec<u8>>,
    vocab: Arc<JsonVocab>,
    /// The allowed tokens after each text met so far (at most [`MASKS_KEPT`]).
    masks: Mutex<HashMap<Vec<u8>, Arc<Vec<u64>>>>,
}

impl std::fmt::Debug for Choices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Choices({} strings, {:?})", self.choices.len(), self.vocab)
    }
}

impl Choices {
    pub fn new(choices: &[String], vocab: Arc<JsonVocab>) -> Self {
        Choices { choices: choices.iter().map(|c| c.as_bytes().to_vec()).collect(), vocab, masks: Mutex::default() }
    }

    /// The tokens whose bytes extend `text` within one of the choices (a bit each).
    fn allowed(&self, text: &[u8]) -> Arc<Vec<u64>> {
        kept_mask(&self.masks, text, || {
            let rests: Vec<&[u8]> = self.choices.iter().filter_map(|c| c.strip_prefix(text)).collect();
            self.vocab.bits_where(|b| rests.iter().any(|r| r.starts_with(b)))
        })
    }
}

impl TokenConstraint for Choices {
    fn mask(&self, generated: &[u32], end: &[u32], logits: &mut [f32]) {
        let text = self.vocab.text(generated);
        apply_mask(&self.allowed(&text), self.choices.contains(&text), end, logits);
    }
}

/// A grammar over a vocabulary, with the allowed tokens of the states met so far.
pub struct Constraint {
    grammar: Arc<Grammar>,
    vocab: Arc<JsonVocab>,
    /// The allowed tokens (a bit each) of states met before: inside a string or between values the
    /// state repeats from step to step (and across requests), so most steps only apply a mask.
    masks: Mutex<HashMap<JsonState, Arc<Vec<u64>>>>,
}

/// Most states whose masks a [`Constraint`] keeps (≈ 6 KB each at a 49,152-token vocabulary).
const MASKS_KEPT: usize = 1024;

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Constraint({} nodes, {:?})", self.grammar.nodes.len(), self.vocab)
    }
}

impl Constraint {
    pub fn new(grammar: Arc<Grammar>, vocab: Arc<JsonVocab>) -> Self {
        Constraint { grammar, vocab, masks: Mutex::new(HashMap::new()) }
    }

    pub fn grammar(&self) -> &Arc<Grammar> {
        &self.grammar
    }

    /// The state after the generated tokens; None when they already left the grammar (they cannot,
    /// when each was chosen under [`mask`](Self::mask)).
    fn state(&self, generated: &[u32]) -> Option<JsonState> {
        let mut s = self.grammar.start();
        generated.iter().all(|&t| s.feed_all(&self.grammar, self.vocab.token(t))).then_some(s)
    }

    /// The tokens that may follow state `s`, a bit each: from the kept masks, or computed and kept.
    fn allowed(&self, s: &JsonState) -> Arc<Vec<u64>> {
        kept_mask(&self.masks, s, || self.compute(s, true))
    }

    /// The tokens that may follow state `s`, a bit each: inside a string between characters (`plain`), the
    /// plain tokens within the string's length bound plus the others read byte by byte; elsewhere each token
    /// read byte by byte, those whose first byte cannot follow skipped.
    fn compute(&self, s: &JsonState, plain: bool) -> Vec<u64> {
        let g = &*self.grammar;
        let n = self.vocab.len();
        let mut scratch = s.clone();
        let mut fits = |t: u32| {
            scratch.clone_from(s);
            scratch.feed_all(g, self.vocab.token(t))
        };
        // Inside a string between characters: the characters still allowed (None: any number).
        let in_string = match &s.cfgs[..] {
            [c] if plain => match c.lex {
                Lex::Str { node, part: InStr::Char, n } => match g.nodes[node as usize] {
                    Node::Str { min, max } if min > 0 || max != UNBOUNDED => Some(Some(max - n)),
                    _ => Some(None),
                },
                Lex::Key { lo, hi, part: InStr::Char, .. } if lo == hi => Some(None),
                _ => None,
            },
            _ => None,
        };
        if let Some(budget) = in_string {
            let p = self.vocab.plain();
            let mut bits = match budget {
                None => p.bits.clone(),
                Some(k) => {
                    let mut bits = vec![0u64; n.div_ceil(64)];
                    for (t, &c) in p.chars.iter().enumerate() {
                        if c != NOT_PLAIN && c <= k {
                            bits[t / 64] |= 1 << (t % 64);
                        }
                    }
                    bits
                }
            };
            for &t in &p.others {
                if fits(t) {
                    bits[t as usize / 64] |= 1 << (t % 64);
                }
            }
            return bits;
        }
        // Which first bytes can follow: most tokens are refused by their first byte alone.
        let mut first = [false; 256];
        for (b, ok) in first.iter_mut().enumerate() {
            *ok = s.clone().feed(g, b as u8);
        }
        let mut bits = vec![0u64; n.div_ceil(64)];
        for t in 0..n as u32 {
            let b = self.vocab.token(t);
            if !b.is_empty() && first[b[0] as usize] && fits(t) {
                bits[t as usize / 64] |= 1 << (t % 64);
            }
        }
        bits
    }

    /// Sets the logits of every token that may not follow `generated`'s text to −∞: the value goes on,
    /// or, where it may end, one of the `end` tokens ends the sequence. Where no token would fit (not
    /// expected), the end tokens stay.
    pub fn mask(&self, generated: &[u32], end: &[u32], logits: &mut [f32]) {
        match self.state(generated) {
            Some(s) => apply_mask(&self.allowed(&s), s.can_end(&self.grammar), end, logits),
            None => apply_mask(&[], false, end, logits),
        }
    }
}

/// Keywords that constrain instances in ways this decoder does not enforce: a schema with one is
/// refused rather than answered with text that may not match it.
const UNSUPPORTED: [&str; 23] = [
    "pattern",
    "multipleOf",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "if",
    "then",
    "else",
    "not",
    "contains",
    "minContains",
    "maxContains",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "oneOf",
    "$dynamicRef",
    "$recursiveRef",
];

/// Number bounds.
const BOUNDS: [&str; 4] = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];

/// Keywords [`Grammar::from_schema`] enforces.
const HANDLED: [&str; 19] = [
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "anyOf",
    "allOf",
    "$ref",
    "nullable",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
];

struct Compiler<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    refs: HashMap<String, Id>,
}

impl Grammar {
    /// The instances of a JSON Schema. Enforced: `type` (one or a list), `enum`, `const`, `properties` (at most
    /// [`MAX_PROPS`] an object, in any order, each once), `required`, `additionalProperties` (false, true or a
    /// schema; where `properties` is given without it, no other key — OpenAI's strict form — and an object
    /// schema with neither takes any keys), `items`, `minItems` / `maxItems`, `minLength` / `maxLength`
    /// (characters), `minimum` / `maximum` / `exclusiveMinimum` / `exclusiveMaximum` (integers of at most 19
    /// digits; other numbers with bounds besides a sign — minimum 0, exclusiveMinimum 0 — are written without
    /// exponent, with at most 15 fraction digits), `anyOf`, `allOf` of one schema, `$ref` to `#` or a pointer into the document (`$defs`,
    /// `definitions`; recursion included), OpenAPI's `nullable`. Annotations (`title`, `description`, `format`,
    /// ...) and unknown keywords are ignored; keywords it does not enforce (`pattern`, `multipleOf`, `oneOf`, ...)
    /// are an error naming them, as are schemas with no finite instance or none within [`MAX_DEPTH`].
    pub fn from_schema(schema: &Value) -> Result<Grammar, String> {
        let mut c = Compiler { root: schema, nodes: Grammar::base(), refs: HashMap::new() };
        let root = c.compile(schema, "")?;
        Grammar::with_root(c.nodes, root)
    }
}

impl Compiler<'_> {
    fn push(&mut self, n: Node) -> Result<Id, String> {
        if self.nodes.len() >= MAX_NODES {
            return Err(format!("the schema is too large (more than {MAX_NODES} parts)"));
        }
        self.nodes.push(n);
        Ok(self.nodes.len() as Id - 1)
    }

    fn count(o: &Map<String, Value>, k: &str, at: &str) -> Result<Option<u32>, String> {
        match o.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|&x| x < UNBOUNDED as u64)
                .map(|x| Some(x as u32))
                .ok_or_else(|| format!("{}: '{k}' must be a non-negative integer", loc(at))),
        }
    }

    fn compile(&mut self, s: &Value, at: &str) -> Result<Id, String> {
        let o = match s {
            Value::Bool(true) => return Ok(ANY),
            Value::Bool(false) => return Err(format!("{}: the schema `false` allows nothing", loc(at))),
            Value::Object(o) => o,
            v => return Err(format!("{}: a schema must be an object or a boolean, got {v}", loc(at))),
        };
        if let Some(k) = UNSUPPORTED.iter().find(|k| o.contains_key(**k)) {
            return Err(format!("{}: '{k}' is not supported (this server cannot enforce it while decoding)", loc(at)));
        }
        let constraints: Vec<&str> = HANDLED.iter().copied().filter(|k| o.contains_key(*k)).collect();
        let alone = |k: &str| -> Result<(), String> {
            match constraints.iter().find(|&&c| c != k && c != "nullable") {
                Some(other) => Err(format!("{}: '{k}' beside '{other}' is not supported", loc(at))),
                None => Ok(()),
            }
        };
        let id = if let Some(r) = o.get("$ref") {
            alone("$ref")?;
            let r = r.as_str().ok_or_else(|| format!("{}: '$ref' must be a string", loc(at)))?;
            self.reference(r)?
        } else if let Some(all) = o.get("allOf") {
            alone("allOf")?;
            match all.as_array().map(|a| a.as_slice()) {
                Some([one]) => self.compile(one, &format!("{at}/allOf/0"))?,
                _ => return Err(format!("{}: 'allOf' is supported with exactly one schema", loc(at))),
            }
        } else if let Some(any) = o.get("anyOf") {
            alone("anyOf")?;
            let alts = any
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| format!("{}: 'anyOf' must be a non-empty list of schemas", loc(at)))?;
            let mut ids = Vec::with_capacity(alts.len());
            for (i, a) in alts.iter().enumerate() {
                ids.push(self.compile(a, &format!("{at}/anyOf/{i}"))?);
            }
            self.push(Node::Union(ids))?
        } else {
            let types: Vec<&str> = match o.get("type") {
                None => Vec::new(),
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(a)) if !a.is_empty() => a
                    .iter()
                    .map(|t| t.as_str().ok_or_else(|| format!("{}: 'type' must name types", loc(at))))
                    .collect::<Result<_, _>>()?,
                Some(v) => return Err(format!("{}: 'type' must be a type name or a list of them, got {v}", loc(at))),
            };
            if let Some(vals) = o.get("enum").map(Some).or(o.get("const").map(|_| None)) {
                let k = if vals.is_some() { "enum" } else { "const" };
                if let Some(other) = constraints.iter().find(|&&c| !matches!(c, "type" | "nullable" | "enum" | "const"))
                {
                    return Err(format!("{}: '{k}' beside '{other}' is not supported", loc(at)));
                }
                let values: Vec<&Value> = match vals {
                    Some(v) => {
                        v.as_array().ok_or_else(|| format!("{}: 'enum' must be a list", loc(at)))?.iter().collect()
                    }
                    None => vec![&o["const"]],
                };
                self.literals(values, &types, at)?
            } else if types.is_empty() {
                let ty = if ["properties", "required", "additionalProperties"].iter().any(|k| o.contains_key(*k)) {
                    "object"
                } else if ["items", "minItems", "maxItems"].iter().any(|k| o.contains_key(*k)) {
                    "array"
                } else if ["minLength", "maxLength"].iter().any(|k| o.contains_key(*k)) {
                    "string"
                } else if BOUNDS.iter().any(|k| o.contains_key(*k)) {
                    "number"
                } else {
                    "any"
                };
                self.typed(o, ty, at)?
            } else if types.len() == 1 {
                self.typed(o, types[0], at)?
            } else {
                let mut ids = Vec::new();
                for t in &types {
                    ids.push(self.typed(o, t, at)?);
                }
                self.push(Node::Union(ids))?
            }
        };
        match o.get("nullable") {
            None | Some(Value::Bool(false)) => Ok(id),
            Some(Value::Bool(true)) => {
                let null = self.push(Node::Lit(vec![b"null".to_vec()]))?;
                self.push(Node::Union(vec![id, null]))
            }
            Some(v) => Err(format!("{}: 'nullable' must be a boolean, got {v}", loc(at))),
        }
    }

    /// `enum` / `const` values (of the given types, where the schema names some).
    fn literals(&mut self, values: Vec<&Value>, types: &[&str], at: &str) -> Result<Id, String> {
        let is = |v: &Value, t: &str| match t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        };
        let mut texts: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|v| types.is_empty() || types.iter().any(|t| is(v, t)))
            .map(|v| serde_json::to_vec(v).expect("a JSON value"))
            .collect();
        texts.sort();
        texts.dedup();
        if texts.is_empty() {
            return Err(format!("{}: 'enum' / 'const' leaves no value", loc(at)));
        }
        if texts.len() > u16::MAX as usize - 1 || texts.iter().any(|t| t.len() > MAX_LIT) {
            return Err(format!("{}: 'enum' / 'const' values are too many or too long", loc(at)));
        }
        self.push(Node::Lit(texts))
    }

    /// A schema of one type.
    fn typed(&mut self, o: &Map<String, Value>, ty: &str, at: &str) -> Result<Id, String> {
        match ty {
            "any" => Ok(ANY),
            "null" => self.push(Node::Lit(vec![b"null".to_vec()])),
            "boolean" => Ok(self.push(Node::Lit(vec![b"false".to_vec(), b"true".to_vec()]))?),
            "integer" | "number" => self.number(o, ty == "integer", at),
            "string" => {
                let min = Self::count(o, "minLength", at)?.unwrap_or(0);
                let max = Self::count(o, "maxLength", at)?.unwrap_or(UNBOUNDED);
                if min > max {
                    return Err(format!("{}: 'minLength' {min} is above 'maxLength' {max}", loc(at)));
                }
                self.push(Node::Str { min, max })
            }
            "array" => {
                let items = match o.get("items") {
                    None => ANY,
                    Some(Value::Array(_)) => {
                        return Err(format!("{}: 'items' as a list (tuples) is not supported", loc(at)))
                    }
                    Some(s) => self.compile(s, &format!("{at}/items"))?,
                };
                let min = Self::count(o, "minItems", at)?.unwrap_or(0);
                let max = Self::count(o, "maxItems", at)?.unwrap_or(UNBOUNDED);
                if min > max {
                    return Err(format!("{}: 'minItems' {min} is above 'maxItems' {max}", loc(at)));
                }
                self.push(Node::Arr { items, min, max })
            }
            "object" => self.object(o, at),
            t => Err(format!("{}: unknown type {t:?}", loc(at))),
        }
    }

    /// An integer or number schema with its bounds.
    fn number(&mut self, o: &Map<String, Value>, int: bool, at: &str) -> Result<Id, String> {
        let get = |k: &str| -> Result<Option<f64>, String> {
            match o.get(k) {
                None | Some(Value::Bool(_)) => Ok(None),
                Some(v) => v.as_f64().map(Some).ok_or_else(|| format!("{}: '{k}' must be a number, got {v}", loc(at))),
            }
        };
        // Draft 4 writes an exclusive bound as `exclusiveMinimum: true` beside `minimum`.
        let draft4 = |k: &str| o.get(k) == Some(&Value::Bool(true));
        let (mut min, mut max) = (get("minimum")?, get("maximum")?);
        let (mut xmin, mut xmax) = (get("exclusiveMinimum")?, get("exclusiveMaximum")?);
        if draft4("exclusiveMinimum") {
            xmin = xmin.or(min.take());
        }
        if draft4("exclusiveMaximum") {
            xmax = xmax.or(max.take());
        }
        if !int {
            let sign = match (min, xmin, max, xmax) {
                (None, None, None, None) => Sign::Any,
                (Some(0.0), None, None, None) => Sign::NonNegative,
                (m, Some(x), None, None) if x == 0.0 && m.is_none_or(|m| m <= 0.0) => Sign::Positive,
                _ => {
                    // Other bounds: the number is written without exponent, its digits read against them.
                    let lo = [min.map(|m| units_from(m, false)), xmin.map(|x| units_from(x, true))]
                        .into_iter()
                        .flatten()
                        .fold(-DEC_MAX, i128::max);
                    let hi = [max.map(|m| -units_from(-m, false)), xmax.map(|x| -units_from(-x, true))]
                        .into_iter()
                        .flatten()
                        .fold(DEC_MAX, i128::min);
                    if lo > hi {
                        return Err(format!(
                            "{}: no number within the bounds (written with at most {MAX_BOUNDED_DIGITS} integer and \
{DEC_FRAC} fraction digits)",
                            loc(at)
                        ));
                    }
                    return self.push(Node::Dec { lo, hi, min, xmin, max, xmax });
                }
            };
            return self.push(Node::Num { int, sign });
        }
        if [min, max, xmin, xmax].iter().all(Option::is_none) {
            return self.push(Node::Num { int, sign: Sign::Any });
        }
        let limit = 10f64.powi(MAX_BOUNDED_DIGITS as i32) - 1.0;
        let mut lo = -limit;
        let mut hi = limit;
        if let Some(m) = min {
            lo = lo.max(m.ceil());
        }
        if let Some(x) = xmin {
            lo = lo.max(x.floor() + 1.0);
        }
        if let Some(m) = max {
            hi = hi.min(m.floor());
        }
        if let Some(x) = xmax {
            hi = hi.min(x.ceil() - 1.0);
        }
        if lo > hi {
            return Err(format!("{}: no integer within the bounds (at most {MAX_BOUNDED_DIGITS} digits)", loc(at)));
        }
        self.push(Node::Int { lo: lo as i128, hi: hi as i128 })
    }

    fn object(&mut self, o: &Map<String, Value>, at: &str) -> Result<Id, String> {
        let props = match o.get("properties") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(v) => return Err(format!("{}: 'properties' must be an object, got {v}", loc(at))),
        };
        let extra = match o.get("additionalProperties") {
            None if props.is_none() => Some(ANY),
            None | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(ANY),
            Some(s) => Some(self.compile(s, &format!("{at}/additionalProperties"))?),
        };
        let mut decl: Vec<(Vec<u8>, Id, bool)> = Vec::new();
        let required: Vec<&str> = match o.get("required") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|k| k.as_str().ok_or_else(|| format!("{}: 'required' must list property names", loc(at))))
                .collect::<Result<_, _>>()?,
            Some(v) => return Err(format!("{}: 'required' must be a list, got {v}", loc(at))),
        };
        let key_text = |k: &str| {
            let q = serde_json::to_vec(k).expect("a string");
            q[1..q.len() - 1].to_vec()
        };
        for (k, s) in props.into_iter().flatten() {
            let id = self.compile(s, &format!("{at}/properties/{k}"))?;
            decl.push((key_text(k), id, required.contains(&k.as_str())));
        }
        for r in &required {
            if props.is_some_and(|p| p.contains_key(*r)) {
                continue;
            }
            match extra {
                Some(x) => decl.push((key_text(r), x, true)),
                None => {
                    return Err(format!(
                        "{}: required property {r:?} is not in 'properties' and no other property is allowed",
                        loc(at)
                    ))
                }
            }
        }
        decl.sort();
        decl.dedup_by(|a, b| a.0 == b.0);
        if decl.len() > MAX_PROPS {
            return Err(format!("{}: more than {MAX_PROPS} properties in one object", loc(at)));
        }
        let required = decl.iter().enumerate().filter(|(_, d)| d.2).fold(0u64, |m, (i, _)| m | bit(i));
        let (keys, vals) = decl.into_iter().map(|(k, v, _)| (k, v)).unzip();
        self.push(Node::Obj { keys, vals, required, extra })
    }

    /// The node of `$ref` `r` (`#` or a JSON pointer into the document), compiled once: a reference met
    /// again, recursion included, is the same node.
    fn reference(&mut self, r: &str) -> Result<Id, String> {
        if let Some(&id) = self.refs.get(r) {
            return Ok(id);
        }
        let target = r
            .strip_prefix('#')
            .and_then(|p| self.root.pointer(p))
            .ok_or_else(|| format!("'$ref' {r:?} does not point into this schema (only \"#\" and \"#/...\")"))?;
        let id = self.push(Node::Union(Vec::new()))?;
        self.refs.insert(r.to_string(), id);
        let t = self.compile(target, r.strip_prefix('#').unwrap_or(r))?;
        self.nodes[id as usize] = Node::Union(vec![t]);
        Ok(id)
    }
}

fn loc(at: &str) -> String {
    if at.is_empty() {
        "the schema".into()
    } else {
        format!("schema at {at}")
    }
}

/// What the constraints' tests share: small vocabularies and random walks under a mask.
#[cfg(test)]
pub(crate) mod testing {
    use super::{JsonVocab, TokenConstraint};
    use std::sync::Arc;

    /// A vocabulary of these token texts; "" and "</s>" stand for tokens with no text (specials, never allowed) and the
    /// end token.
    pub fn vocab(tokens: &[&str]) -> Arc<JsonVocab> {
        Arc::new(JsonVocab::new(tokens.len(), |t| {
            let s = tokens[t as usize];
            (!s.is_empty() && s != "</s>").then(|| s.as_bytes().to_vec())
        }))
    }

    /// A random walk under `c`'s mask (each step one of the allowed tokens, never none) until it takes the `end` token:
    /// the text it wrote.
    pub fn masked_walk(c: &dyn TokenConstraint, toks: &[&str], end: u32, rng: &mut crate::util::SplitMix64) -> String {
        let mut gen: Vec<u32> = Vec::new();
        loop {
            let mut l = vec![0f32; toks.len()];
            c.mask(&gen, &[end], &mut l);
            let ok: Vec<u32> = (0..toks.len() as u32).filter(|&t| l[t as usize] > f32::NEG_INFINITY).collect();
            assert!(!ok.is_empty());
            let t = ok[(rng.next_u64() % ok.len() as u64) as usize];
            if t == end {
                return gen.iter().map(|&t| toks[t as usize]).collect();
            }
            gen.push(t);
            assert!(gen.len() < 1000, "{gen:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::SplitMix64;
    use serde_json::Value;

    fn accepts(s: &str) -> Option<JsonState> {
        let g = Grammar::json_object();
        let mut p = g.start();
        p.feed_all(&g, s.as_bytes()).then_some(p)
    }

    /// Whitespace in one of the layouts the reader takes (nothing, a space, a line break and indentation), none
    /// right after other whitespace.
    fn layout(r: &mut SplitMix64, out: &mut String) {
        if out.ends_with(|c: char| c.is_ascii_whitespace()) {
            return;
        }
        match r.next_u64() % 4 {
            0 => {}
            1 => out.push(' '),
            _ => {
                out.push('\n');
                for _ in 0..r.next_u64() % 6 {
                    out.push([' ', '\t'][(r.next_u64() % 2) as usize]);
                }
            }
        }
    }

    /// Whether every run of whitespace outside strings is one of the layouts the reader takes (read independently
    /// of it: runs found byte by byte, strings skipped by their quotes).
    fn layouts_ok(b: &[u8]) -> bool {
        let (mut in_str, mut esc, mut run) = (false, false, Vec::new());
        let ok = |run: &[u8]| match run {
            [] | [b' '] => true,
            [b'\n', rest @ ..] => rest.len() < MAX_WS as usize && rest.iter().all(|c| matches!(c, b' ' | b'\t')),
            _ => false,
        };
        for &c in b {
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            if c.is_ascii_whitespace() {
                run.push(c);
                continue;
            }
            if !ok(&run) {
                return false;
            }
            run.clear();
            in_str = c == b'"';
        }
        ok(&run)
    }

    /// A random JSON value within the reader's limits, written with random whitespace.
    fn gen(r: &mut SplitMix64, depth: usize, out: &mut String) {
        let ws = |r: &mut SplitMix64, out: &mut String| layout(r, out);
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

    /// One or two random edits of a text: a byte dropped, doubled or swapped for one of `alphabet`.
    fn mutate(r: &mut SplitMix64, mut b: Vec<u8>, alphabet: &[u8]) -> Vec<u8> {
        for _ in 0..1 + r.next_u64() % 2 {
            if b.is_empty() {
                break;
            }
            let i = (r.next_u64() as usize) % b.len();
            match r.next_u64() % 3 {
                0 => {
                    b.remove(i);
                }
                1 => b.insert(i, b[i]),
                _ => b[i] = alphabet[(r.next_u64() as usize) % alphabet.len()],
            }
        }
        b
    }

    /// Not beyond the reader's limits where serde_json has none: trailing whitespace, whitespace in other layouts,
    /// digit runs longer than an integer's, exponents of three digits, `\\u` escapes that could be surrogates.
    fn within_limits(b: &[u8]) -> bool {
        let ws_run = !layouts_ok(b);
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
        let g = Grammar::json_object();
        let mut r = SplitMix64(7);
        for _ in 0..2000 {
            let mut doc = String::new();
            gen(&mut r, 0, &mut doc);
            assert!(serde_json::from_str::<Value>(&doc).unwrap().is_object(), "{doc}");
            let mut p = g.start();
            for (i, &b) in doc.as_bytes().iter().enumerate() {
                assert!(!p.can_end(&g), "complete before byte {i} of {doc:?}");
                assert!(p.feed(&g, b), "byte {i} ({:?}) of {doc:?} refused", b as char);
            }
            assert!(p.is_complete() && p.can_end(&g), "{doc:?}");
            for tail in [" ", "}", ",", "x"] {
                assert!(!p.clone().feed_all(&g, tail.as_bytes()), "{doc:?} + {tail:?}");
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
            let b = mutate(&mut r, doc.into_bytes(), alphabet);
            let reader = {
                let g = Grammar::json_object();
                let mut p = g.start();
                p.feed_all(&g, &b) && p.is_complete()
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
            let g = Grammar::json_object();
            assert!(!g.start().feed_all(&g, bad));
        }
        // Inside a string the state does not remember the characters or escapes before (one kept mask serves all).
        let plain = accepts("{\"a\": \"xy").unwrap();
        for same in ["{\"a\": \"\u{e9}y", "{\"a\": \"\u{1F31F}y", "{\"a\": \"\\u00e9y", "{\"a\": \"\\ny"] {
            assert_eq!(accepts(same).as_ref(), Some(&plain), "{same}");
        }
        let deep = "[".repeat(MAX_DEPTH);
        assert!(accepts(&format!("{{\"a\":{}", &deep[1..])).is_some());
        assert!(accepts(&format!("{{\"a\":{deep}")).is_none());
        // Whitespace: nothing, a space, or a line break with up to MAX_WS - 1 spaces / tabs of indentation.
        let indent = |n: usize| format!("{{\n{}", " \t".repeat(n).chars().take(n).collect::<String>());
        assert!(accepts(&indent(MAX_WS as usize - 1)).is_some() && accepts(&indent(MAX_WS as usize)).is_none());
        for fine in ["{ \"a\": 1 }", "{\"a\" :1,\n  \"b\":\n\t[ 2 ,\n 3 ]\n}", "\n{}", " {}"] {
            assert!(accepts(fine).is_some_and(|p| p.is_complete()), "{fine:?}");
        }
        for padded in ["{  \"a\": 1}", "{\n\n\"a\": 1}", "{\"a\": 1 \n}", "{\t\"a\": 1}", "{\r\n\"a\": 1}", "{}\n"] {
            assert!(accepts(padded).is_none(), "{padded:?}");
        }
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
        let v = Constraint::new(Arc::new(Grammar::json_object()), Arc::new(v));
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

    // ---- JSON Schema (response_format json_schema) ----

    /// An independent reading of the schema subset (what each keyword means per JSON Schema, with this
    /// server's one convention: `properties` without `additionalProperties` allows no other key).
    fn valid(root: &Value, s: &Value, v: &Value) -> bool {
        let o = match s {
            Value::Bool(b) => return *b,
            Value::Object(o) => o,
            _ => panic!("schema {s}"),
        };
        if o.get("nullable") == Some(&Value::Bool(true)) && v.is_null() {
            return true;
        }
        if let Some(r) = o.get("$ref").and_then(Value::as_str) {
            return valid(root, root.pointer(&r[1..]).unwrap(), v);
        }
        if let Some(a) = o.get("anyOf").and_then(Value::as_array) {
            return a.iter().any(|x| valid(root, x, v));
        }
        if let Some(a) = o.get("allOf").and_then(Value::as_array) {
            return a.iter().all(|x| valid(root, x, v));
        }
        if o.get("enum").and_then(Value::as_array).is_some_and(|e| !e.contains(v)) {
            return false;
        }
        if o.get("const").is_some_and(|c| c != v) {
            return false;
        }
        let is = |t: &str| match t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "integer" => v.as_f64().is_some_and(|x| x.fract() == 0.0),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => panic!("type {t}"),
        };
        match o.get("type") {
            Some(Value::String(t)) if !is(t) => return false,
            Some(Value::Array(ts)) if !ts.iter().any(|t| is(t.as_str().unwrap())) => return false,
            _ => {}
        }
        let num = |k: &str| o.get(k).and_then(Value::as_u64);
        let bound = |k: &str| o.get(k).and_then(Value::as_f64);
        match v {
            Value::Number(x) => {
                let x = x.as_f64().unwrap();
                bound("minimum").is_none_or(|m| x >= m)
                    && bound("maximum").is_none_or(|m| x <= m)
                    && bound("exclusiveMinimum").is_none_or(|m| x > m)
                    && bound("exclusiveMaximum").is_none_or(|m| x < m)
            }
            Value::String(x) => {
                let n = x.chars().count() as u64;
                num("minLength").is_none_or(|m| n >= m) && num("maxLength").is_none_or(|m| n <= m)
            }
            Value::Array(a) => {
                let n = a.len() as u64;
                num("minItems").is_none_or(|m| n >= m)
                    && num("maxItems").is_none_or(|m| n <= m)
                    && o.get("items").is_none_or(|i| a.iter().all(|x| valid(root, i, x)))
            }
            Value::Object(m) => {
                let props = o.get("properties").and_then(Value::as_object);
                let required = o.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
                let extra = match o.get("additionalProperties") {
                    None => Value::Bool(props.is_none()),
                    Some(x) => x.clone(),
                };
                required.iter().all(|k| m.contains_key(k.as_str().unwrap()))
                    && m.iter().all(|(k, x)| match props.and_then(|p| p.get(k)) {
                        Some(ps) => valid(root, ps, x),
                        None => valid(root, &extra, x),
                    })
            }
            _ => true,
        }
    }

    /// A random instance of a schema of the subset, written with random whitespace: from the schema's
    /// own keywords, not from the compiled grammar.
    fn gen_valid(r: &mut SplitMix64, root: &Value, s: &Value, depth: usize, out: &mut String) {
        let ws = |r: &mut SplitMix64, out: &mut String| layout(r, out);
        let pick = |r: &mut SplitMix64, n: usize| (r.next_u64() % n as u64) as usize;
        let o = match s {
            Value::Bool(true) => return gen(r, depth.max(1), out),
            Value::Object(o) => o,
            _ => panic!("schema {s}"),
        };
        if o.get("nullable") == Some(&Value::Bool(true)) && pick(r, 4) == 0 {
            return out.push_str("null");
        }
        if let Some(x) = o.get("$ref").and_then(Value::as_str) {
            return gen_valid(r, root, root.pointer(&x[1..]).unwrap(), depth, out);
        }
        if let Some(a) = o.get("anyOf").or(o.get("allOf")).and_then(Value::as_array) {
            let i = pick(r, a.len());
            return gen_valid(r, root, &a[i], depth, out);
        }
        if let Some(e) = o.get("enum").and_then(Value::as_array) {
            return out.push_str(&serde_json::to_string(&e[pick(r, e.len())]).unwrap());
        }
        if let Some(c) = o.get("const") {
            return out.push_str(&serde_json::to_string(c).unwrap());
        }
        let ty = match o.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts[pick(r, ts.len())].as_str().unwrap().to_string(),
            None if o.contains_key("properties") => "object".into(),
            None => return gen(r, depth.max(1), out),
            Some(t) => panic!("type {t}"),
        };
        let num = |k: &str| o.get(k).and_then(Value::as_u64);
        match ty.as_str() {
            "null" => out.push_str("null"),
            "boolean" => out.push_str(["true", "false"][pick(r, 2)]),
            "integer" => {
                let f = |k: &str| o.get(k).and_then(Value::as_f64);
                let lo = f("minimum").map(|m| m.ceil() as i64).or(f("exclusiveMinimum").map(|x| x.floor() as i64 + 1));
                let hi = f("maximum").map(|m| m.floor() as i64).or(f("exclusiveMaximum").map(|x| x.ceil() as i64 - 1));
                let (lo, hi) = match (lo, hi) {
                    (Some(a), Some(b)) => (a, b),
                    (Some(a), None) => (a, a + 100_000),
                    (None, Some(b)) => (b - 100_000, b),
                    (None, None) => (-100_000, 100_000),
                };
                out.push_str(&format!("{}", lo + (r.next_u64() % (hi - lo + 1) as u64) as i64));
            }
            "number" => {
                // Thousandths between the bounds (a thousandth inside an exclusive one).
                let f = |k: &str| o.get(k).and_then(Value::as_f64);
                let lo = f("minimum").or(f("exclusiveMinimum").map(|x| x + 0.001)).unwrap_or(-1000.0);
                let hi = f("maximum").or(f("exclusiveMaximum").map(|x| x - 0.001)).unwrap_or(lo.max(0.0) + 1000.0);
                let (a, b) = ((lo * 1000.0).ceil() as i64, (hi * 1000.0).floor() as i64);
                let k = a + (r.next_u64() % (b - a + 1) as u64) as i64;
                out.push_str(&format!("{}", k as f64 / 1000.0));
            }
            "string" => {
                let min = num("minLength").unwrap_or(0);
                let max = num("maxLength").unwrap_or(u64::MAX).min(min + 6);
                out.push('"');
                for _ in 0..min + r.next_u64() % (max - min + 1) {
                    let piece = ["a", "Z", " ", "é", "€", "🌟", "\\n", "\\\"", "\\u00e9", "'", ":", "}"];
                    out.push_str(piece[pick(r, piece.len())]);
                }
                out.push('"');
            }
            "array" => {
                let min = num("minItems").unwrap_or(0);
                let max = num("maxItems").unwrap_or(u64::MAX).min(if depth > 3 { min } else { min + 3 });
                let items = o.get("items").cloned().unwrap_or(Value::Bool(true));
                out.push('[');
                for i in 0..min + r.next_u64() % (max - min + 1) {
                    ws(r, out);
                    if i > 0 {
                        out.push(',');
                        ws(r, out);
                    }
                    gen_valid(r, root, &items, depth + 1, out);
                    ws(r, out);
                }
                out.push(']');
            }
            "object" => {
                let props = o.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
                let required = o.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
                let mut members: Vec<(String, Value)> = props
                    .iter()
                    .filter(|(k, _)| required.contains(&Value::String(k.to_string())) || pick(r, 2) == 0 && depth < 4)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let extra = match o.get("additionalProperties") {
                    None if !o.contains_key("properties") => Some(Value::Bool(true)),
                    None | Some(Value::Bool(false)) => None,
                    Some(x) => Some(x.clone()),
                };
                if let Some(x) = extra.filter(|_| depth < 4) {
                    for i in 0..pick(r, 3) {
                        members.push((format!("more {i}\u{e9}"), x.clone()));
                    }
                }
                for i in (1..members.len()).rev() {
                    members.swap(i, pick(r, i + 1));
                }
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    ws(r, out);
                    if i > 0 {
                        out.push(',');
                        ws(r, out);
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    ws(r, out);
                    out.push(':');
                    ws(r, out);
                    gen_valid(r, root, v, depth + 1, out);
                    ws(r, out);
                }
                out.push('}');
            }
            t => panic!("type {t}"),
        }
    }

    /// A schema with what pydantic and OpenAI's strict mode write: `$defs` + `$ref`, recursion, `anyOf` with
    /// null, enums, nested arrays, bounds, extra keys by schema, keys that JSON must escape.
    fn sample_schema() -> Value {
        serde_json::json!({
            "$defs": {
                "Pet": {
                    "type": "object",
                    "title": "Pet",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 8},
                        "kind": {"enum": ["cat", "dog", 3, null, {"a": [1]}]},
                        "age": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
                        "friends": {"type": "array", "items": {"$ref": "#/$defs/Pet"}, "maxItems": 2}
                    },
                    "required": ["name", "kind"],
                    "additionalProperties": false
                }
            },
            "type": "object",
            "properties": {
                "owner": {"type": "string", "format": "email", "description": "annotation only"},
                "pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}, "minItems": 1, "maxItems": 3},
                "score": {"type": ["number", "boolean"]},
                "ok": {"const": true},
                "tags": {"type": "object", "additionalProperties": {"type": "integer"}},
                "quote\"d\n": {"type": "null"},
                "nick": {"type": "string", "nullable": true},
                "any": {},
                "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                "count": {"type": "integer", "exclusiveMinimum": -3, "maximum": 1000},
                "big": {"type": "integer", "minimum": 123_456_789_012_i64},
                "weight": {"type": "number", "minimum": 0},
                "price": {"type": "number", "exclusiveMinimum": 0},
                "prob": {"type": "number", "minimum": 0, "maximum": 1},
                "temp": {"type": "number", "exclusiveMinimum": -2.5, "exclusiveMaximum": 40.25},
                "fixed": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}
            },
            "required": ["owner", "pets", "ok"],
            "additionalProperties": false
        })
    }

    #[test]
    fn every_prefix_of_a_schema_instance_is_read_and_the_whole_one_may_end() {
        let schema = sample_schema();
        let g = Grammar::from_schema(&schema).unwrap();
        let mut r = SplitMix64(21);
        for _ in 0..1500 {
            let mut doc = String::new();
            gen_valid(&mut r, &schema, &schema, 0, &mut doc);
            let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
            assert!(valid(&schema, &schema, &v), "{doc}");
            let mut p = g.start();
            for (i, &b) in doc.as_bytes().iter().enumerate() {
                assert!(!p.can_end(&g), "may end before byte {i} of {doc:?}");
                assert!(p.feed(&g, b), "byte {i} ({:?}) of {doc:?} refused", b as char);
            }
            assert!(p.is_complete() && p.can_end(&g), "{doc:?}");
        }
    }

    #[test]
    fn what_a_schema_completes_is_an_instance_and_no_reading_strands() {
        // Mutants of instances: whatever the reader completes is an instance (by `valid`), and whatever it reads
        // can still be completed: a walk that takes random allowed bytes from any prefix it accepted always has
        // a byte to take or may end, and where it ends the text is an instance.
        let schema = sample_schema();
        let g = Grammar::from_schema(&schema).unwrap();
        let mut r = SplitMix64(5);
        let alphabet = b"{}[],:\" \n0123456789.-eEtrufalsn\\u/aZ\xC3\xA9";
        let (mut completed, mut walks_ended) = (0, 0);
        for round in 0..4000 {
            let mut doc = String::new();
            gen_valid(&mut r, &schema, &schema, 0, &mut doc);
            let b = mutate(&mut r, doc.into_bytes(), alphabet);
            let mut p = g.start();
            let mut read = 0;
            while read < b.len() && p.feed(&g, b[read]) {
                read += 1;
            }
            if read == b.len() && p.can_end(&g) {
                let v: Value = serde_json::from_slice(&b)
                    .unwrap_or_else(|e| panic!("{e}: completed {:?}", String::from_utf8_lossy(&b)));
                assert!(valid(&schema, &schema, &v), "completed a non-instance {:?}", String::from_utf8_lossy(&b));
                completed += 1;
            }
            if round % 4 != 0 {
                continue;
            }
            // The walk: from the longest accepted prefix, random allowed bytes (closers favoured so it ends).
            let mut p = g.start();
            assert!(p.feed_all(&g, &b[..read]));
            let mut text = b[..read].to_vec();
            let favoured = b"}]\"0 ";
            for _ in 0..600 {
                if p.can_end(&g) && (p.is_complete() || r.next_u64() % 4 == 0) {
                    let v: Value = serde_json::from_slice(&text).unwrap();
                    assert!(
                        valid(&schema, &schema, &v),
                        "walked to a non-instance {:?}",
                        String::from_utf8_lossy(&text)
                    );
                    walks_ended += 1;
                    break;
                }
                let ok: Vec<u8> = (0..=255u8).filter(|&x| p.clone().feed(&g, x)).collect();
                assert!(!ok.is_empty(), "stranded after {:?}", String::from_utf8_lossy(&text));
                let fav: Vec<u8> = ok.iter().copied().filter(|x| favoured.contains(x)).collect();
                let from = if !fav.is_empty() && r.next_u64() % 3 != 0 { &fav } else { &ok };
                let x = from[(r.next_u64() as usize) % from.len()];
                assert!(p.feed(&g, x));
                text.push(x);
            }
        }
        assert!(completed > 300 && walks_ended > 500, "{completed} mutants completed, {walks_ended} walks ended");
    }

    #[test]
    fn schema_cases() {
        // `ok`: taken; `bad`: refused, not instances; texts in `spelt` are refused although serde_json reads them
        // as instances (a key twice, a declared key written with an escape).
        let check3 = |schema: Value, ok: &[&str], bad: &[&str], spelt: &[&str]| {
            let g = Grammar::from_schema(&schema).unwrap_or_else(|e| panic!("{schema}: {e}"));
            for t in ok {
                let mut p = g.start();
                assert!(p.feed_all(&g, t.as_bytes()) && p.can_end(&g), "{schema}: {t} refused");
                assert!(valid(&schema, &schema, &serde_json::from_str(t).unwrap()), "{schema}: {t}");
            }
            for t in bad.iter().chain(spelt) {
                let mut p = g.start();
                assert!(!(p.feed_all(&g, t.as_bytes()) && p.can_end(&g)), "{schema}: {t} taken");
            }
            for t in bad {
                let v: Result<Value, _> = serde_json::from_str(t);
                assert!(v.map_or(true, |v| !valid(&schema, &schema, &v)), "{schema}: {t} is an instance");
            }
        };
        let check = |schema: Value, ok: &[&str], bad: &[&str]| check3(schema, ok, bad, &[]);
        use serde_json::json;
        // Keys: each declared key once, in any order, spelt as JSON writes it; required ones before `}`.
        let s = json!({"properties": {"a": {"type": "integer"}, "ab": {"type": "boolean"}}, "required": ["ab"]});
        check3(
            s,
            &["{\"ab\":true}", "{\"a\":-0,\"ab\":false}", "{ \"ab\" : true , \"a\" : 12 }"],
            &["{}", "{\"a\":1}", "{\"ab\":true,\"c\":1}", "{\"a\":1.5,\"ab\":true}", "{\"ab\":true,}"],
            &["{\"ab\":true,\"ab\":true}", "{\"\\u0061b\":true}", "{\"a\":1e3,\"ab\":true}"],
        );
        // Other keys by schema; a declared key spelt with an escape would name it twice, so escapes only where
        // they spell a declared key.
        let s = json!({"properties": {"a\"b": {"type": "null"}}, "additionalProperties": {"type": "string"}});
        check3(
            s,
            &["{\"a\\\"b\":null}", "{\"x\":\"1\",\"a\\\"b\":null}", "{\"\u{e9}\":\"\"}"],
            &["{\"x\":1}", "{\"a\\\"b\":\"s\"}"],
            &["{\"a\\u0022b\":null}", "{\"x\\u0041\":\"s\"}"],
        );
        // Numbers as enum values end where the next byte says so; top-level values of any type.
        check3(
            json!({"enum": [1, 12, "x", [true]]}),
            &["1", "12", "\"x\"", "[true]"],
            &["123", "2", "\"y\""],
            &["[ true]"],
        );
        check(json!({"enum": [-2, "a"]}), &["-2", "\"a\""], &["-", "-3", "2"]);
        check3(json!({"type": "integer"}), &["0", "-7", "123"], &["01", "-", "\"1\"", "1.5"], &["1.0", "1e2"]);
        check(
            json!({"type": "string", "minLength": 2, "maxLength": 3}),
            &["\"ab\"", "\"\\n\u{1F31F}\\u00e9\""],
            &["\"a\"", "\"abcd\""],
        );
        check(
            json!({"type": "array", "items": {"type": "null"}, "minItems": 1, "maxItems": 2}),
            &["[null]", "[null,null]"],
            &["[]", "[null,null,null]"],
        );
        check(json!({"type": "object"}), &["{}", "{\"x\":[1,{\"y\":null}]}"], &["[]"]);
        check(
            json!({"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                              {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]}]}),
            &["{\"a\":1}", "{\"b\":\"\"}"],
            &["{\"a\":\"\"}", "{}", "{\"a\":1,\"b\":\"\"}"],
        );
        // Bounds: integers by their digits; other numbers by their sign.
        check3(
            json!({"type": "integer", "minimum": -12, "exclusiveMaximum": 250}),
            &["-12", "-0", "0", "7", "249", "-1"],
            &["-13", "250", "1000", "-120", "2490"],
            &["01", "-012"],
        );
        check(json!({"type": "integer", "minimum": 10, "maximum": 10}), &["10"], &["1", "100", "9", "11"]);
        // Draft 4's exclusive bound (`exclusiveMinimum: true` beside `minimum`).
        let g = Grammar::from_schema(&json!({"type": "integer", "exclusiveMinimum": true, "minimum": 0})).unwrap();
        for (t, ok) in [("1", true), ("90", true), ("0", false), ("-1", false)] {
            let mut p = g.start();
            assert_eq!(p.feed_all(&g, t.as_bytes()) && p.can_end(&g), ok, "{t}");
        }
        check(json!({"type": "number", "minimum": 0}), &["0", "0.5", "3e-2"], &["-1", "-0.5"]);
        check3(
            json!({"type": "number", "exclusiveMinimum": 0}),
            &["0.5", "1", "10e3", "0.00001"],
            &["-1", "0"],
            &["0.0", "0e5"],
        );
        check3(
            json!({"type": "number", "minimum": 0, "maximum": 1}),
            &["0", "1", "0.5", "1.000", "0.999999", "-0"],
            &["1.5", "-0.1", "2", "1.0000001"],
            &["1e0", "0.1234567890123456"],
        );
        check(
            json!({"type": "number", "exclusiveMinimum": 0.1, "exclusiveMaximum": 0.3}),
            &["0.2", "0.1000001", "0.2999"],
            &["0.1", "0.3", "0.05", "0.30"],
        );
        check(
            json!({"type": "number", "minimum": -1.5, "maximum": -1.25}),
            &["-1.5", "-1.3", "-1.25"],
            &["-1.2", "-2", "1.3"],
        );
        // Recursion through "#".
        check(
            json!({"type": "object", "properties": {"next": {"$ref": "#"}}}),
            &["{}", "{\"next\":{\"next\":{}}}"],
            &["{\"next\":1}"],
        );

        // Refused with a reason: keywords not enforced, schemas with no (finite, shallow enough) instance.
        let deep = (0..40)
            .fold(json!({"type": "null"}), |s, _| json!({"type": "object", "properties": {"x": s}, "required": ["x"]}));
        for (s, why) in [
            (json!({"type": "string", "pattern": "^a"}), "'pattern'"),
            (json!({"type": "number", "minimum": 2, "maximum": 1}), "no number"),
            (json!({"exclusiveMinimum": 0.5, "exclusiveMaximum": 0.5}), "no number"),
            (json!({"type": "integer", "minimum": 3, "exclusiveMaximum": 3}), "no integer"),
            (json!({"type": "integer", "multipleOf": 2}), "'multipleOf'"),
            (json!({"oneOf": [{"type": "null"}]}), "'oneOf'"),
            (json!({"properties": {"a": false}, "required": ["a"]}), "allows nothing"),
            (json!({"properties": {}, "required": ["a"]}), "not in 'properties'"),
            (json!({"properties": {"a": {"$ref": "#"}}, "required": ["a"]}), "no finite instance"),
            (deep, "deeper than"),
            (json!({"type": "array", "items": [{"type": "null"}]}), "tuples"),
            (json!({"$ref": "#/$defs/missing"}), "does not point"),
            (json!({"$ref": "https://example.com/s.json"}), "does not point"),
            (json!({"allOf": [{}, {}]}), "exactly one"),
            (json!({"type": "string", "minLength": 3, "maxLength": 2}), "above"),
            (json!({"enum": []}), "no value"),
            (json!({"enum": ["a"], "minLength": 3}), "beside"),
            (json!({"type": "strung"}), "unknown type"),
            (json!({"$ref": "#", "type": "null"}), "beside"),
        ] {
            let e = Grammar::from_schema(&s).map(|_| ()).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn the_mask_keeps_a_schema_s_tokens_and_ends_where_the_value_may() {
        let toks: Vec<&[u8]> = vec![b"{\"", b"ok", b"\":", b"true", b"false", b"}", b"<eos>", b"1", b"2", b"{}", b" "];
        let v = Arc::new(JsonVocab::new(toks.len(), |t| {
            let b = toks[t as usize];
            (b != b"<eos>").then(|| b.to_vec())
        }));
        let allowed = |schema: Value, gen: &[u32]| {
            let c = Constraint::new(Arc::new(Grammar::from_schema(&schema).unwrap()), v.clone());
            let mut l = vec![0.0f32; toks.len()];
            c.mask(gen, &[6], &mut l);
            (0..toks.len() as u32).filter(|&t| l[t as usize] == 0.0).collect::<Vec<_>>()
        };
        let s = serde_json::json!({"properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
        assert_eq!(allowed(s.clone(), &[]), vec![0, 10]);
        assert_eq!(allowed(s.clone(), &[0]), vec![1]);
        assert_eq!(allowed(s.clone(), &[0, 1, 2]), vec![3, 4, 10]);
        assert_eq!(allowed(s.clone(), &[0, 1, 2, 3]), vec![5, 10]);
        assert_eq!(allowed(s, &[0, 1, 2, 3, 5]), vec![6]);
        // A top-level number may end or go on: both the end token and digits.
        assert_eq!(allowed(serde_json::json!({"type": "integer"}), &[7]), vec![6, 7, 8]);
    }

    /// guided_choice on a toy vocabulary: exactly the tokens that extend the text within a choice, the end token only
    /// once the text is one (and then also where a longer choice could go on).
    #[test]
    fn choices_allow_exactly_the_extensions_of_the_text() {
        let toks = ["a", "b", "ab", "abc", "x", "c"];
        let v = Arc::new(JsonVocab::new(toks.len() + 1, |t| toks.get(t as usize).map(|s| s.as_bytes().to_vec())));
        let end = [toks.len() as u32];
        let c = Choices::new(&["abc".into(), "ax".into(), "ab".into()], v);
        let allowed = |gen: &[u32]| {
            let mut l = vec![0.0f32; toks.len() + 1];
            c.mask(gen, &end, &mut l);
            l.iter().enumerate().filter(|(_, x)| x.is_finite()).map(|(t, _)| t).collect::<Vec<_>>()
        };
        assert_eq!(allowed(&[]), [0, 2, 3]); // a, ab, abc
        assert_eq!(allowed(&[0]), [1, 4]); // a + b, a + x
        assert_eq!(allowed(&[0, 1]), [5, 6]); // ab is a choice (end) and abc goes on (c)
        assert_eq!(allowed(&[3]), [6]); // abc: only the end
        assert_eq!(allowed(&[2, 5]), [6]);
    }

    #[test]
    fn a_string_s_mask_from_its_plain_tokens_equals_the_byte_by_byte_one() {
        // Llama's SentencePiece vocabulary (byte pieces, multi-byte characters, spaces): at states met in JSON
        // objects and schema instances (inside strings and keys above all), the mask of the plain-token path
        // equals the one that reads every token.
        let path = fixture("llama_spm_vocab/ggml-vocab-llama-spm.gguf");
        let gg = crate::model::gguf::GgufFile::open(&path).unwrap();
        let tok = Tokenizer::from_gguf_vocab(gg.tokenizer_vocab().unwrap()).unwrap();
        let v = Arc::new(JsonVocab::from_tokenizer(&tok, tok.vocab_size()));
        let schema = sample_schema();
        let tight = serde_json::json!({"type": "object", "properties": {"s": {"type": "string", "minLength": 1, "maxLength": 3},
                                       "t": {"type": "string", "minLength": 2}},
                                       "additionalProperties": {"type": "string", "maxLength": 2}});
        let mut r = SplitMix64(3);
        let (mut strings, mut checked) = (0, 0);
        for (g, root) in [
            (Grammar::json_object(), None),
            (Grammar::from_schema(&schema).unwrap(), Some(&schema)),
            (Grammar::from_schema(&tight).unwrap(), Some(&tight)),
        ] {
            let c = Constraint::new(Arc::new(g), v.clone());
            for _ in 0..25 {
                let mut doc = String::new();
                match root {
                    None => gen(&mut r, 0, &mut doc),
                    Some(sc) => gen_valid(&mut r, sc, sc, 0, &mut doc),
                }
                // Prefixes that end right after a quote (a string's or key's first character next), and one more.
                let mut ends: Vec<usize> = doc.bytes().enumerate().filter(|x| x.1 == b'"').map(|x| x.0 + 1).collect();
                ends.truncate(12);
                ends.push(doc.char_indices().map(|x| x.0).nth((r.next_u64() as usize) % doc.chars().count()).unwrap());
                for at in ends {
                    let mut st = c.grammar.start();
                    assert!(st.feed_all(&c.grammar, &doc.as_bytes()[..at]));
                    let fast = c.compute(&st, true);
                    let slow = c.compute(&st, false);
                    strings += usize::from(matches!(st.cfgs[..], [Cfg { lex: Lex::Str { .. } | Lex::Key { .. }, .. }]));
                    checked += 1;
                    assert!(fast == slow, "masks differ after {:?}", &doc[..at]);
                }
            }
        }
        assert!(strings > 300, "{strings} of {checked} states in strings or keys");
    }
}
