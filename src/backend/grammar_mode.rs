//! vLLM's `guided_grammar` / `structured_outputs.grammar`: a choice's whole text is a sentence of a context-free
//! grammar written in GBNF, the EBNF of llama.cpp that vLLM's default backend (xgrammar) reads too:
//!
//! ```text
//! root   ::= answer ("," ws answer)*        # the start rule is `root`
//! answer ::= "yes" | "no" | [0-9]{1,3}      # "literals", [classes], [^negated], ., rule names,
//! ws     ::= [ \t\n]?                       # ( groups ), x* x+ x? x{m} x{m,} x{m,n} x{,n}
//! ```
//!
//! [`Gbnf::new`] parses a grammar into rules of alternatives of sequences; groups and repetitions become rules of
//! their own (`x*` a right-recursive rule, `x{m,n}` m copies and a chain of optional ones), literals become bytes.
//! Alternatives that can never finish (rules with no finite text) are dropped; a grammar whose `root` has no finite
//! text, an undefined rule, a rule defined twice or a left-recursive rule is an error, never a stuck choice.
//!
//! A text prefix is read as llama.cpp reads it: [`GbnfState`] holds the prefix's readings, each a stack of grammar
//! positions whose top is the terminal it waits for (a byte of a literal, or a character class, with the bytes of
//! a character begun but not finished). Right recursion does not grow a stack (a rule's last element returns
//! directly), so `x*` runs in constant depth. Every reading can still be finished: its classes are non-empty, a
//! character begun can still become one the class takes, and its rules all have finite texts.
//! [`GrammarConstraint`] keeps the mask of each state met: the tokens whose bytes leave at least one reading, the
//! end tokens only where a reading is finished.
use super::json_mode::{apply_mask, kept_mask, JsonVocab, TokenConstraint};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Longest grammar a request may give, in bytes.
pub const MAX_GRAMMAR_BYTES: usize = 64 << 10;
/// Most grammar elements after repetitions are expanded.
const MAX_ELEMS: usize = 200_000;
/// Deepest nesting of groups `( ... )` (the parser recurses into each).
const MAX_NEST: usize = 128;
/// Largest count of a repetition `x{m,n}`.
const MAX_REPEAT: u32 = 1_000;
/// Deepest stack of one reading (nesting of rules that are not in tail position).
const MAX_STACK: usize = 256;
/// Most readings a prefix keeps (an ambiguous grammar reads a prefix many ways).
const MAX_READINGS: usize = 1_024;
/// Most expansion steps one byte may take (a grammar can be ambiguous enough to read a text in exponentially many
/// ways, e.g. rules of two optional copies of the next nested 40 deep): past it, the readings found so far.
const MAX_WORK: usize = 1 << 16;
/// Largest code point.
const MAX_CP: u32 = 0x10FFFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    /// One byte of a literal.
    Byte(u8),
    /// One character of class `k` (sorted, disjoint code point ranges, no surrogates).
    Class(u32),
    /// A reference to rule `r`.
    Rule(u32),
    /// The end of an alternative.
    End,
}

/// A compiled grammar.
pub struct Gbnf {
    elems: Vec<Elem>,
    /// Each rule's alternatives, as positions in `elems` (those that cannot finish are left out).
    alts: Vec<Vec<u32>>,
    classes: Vec<Vec<(u32, u32)>>,
    root: u32,
    source: String,
}

impl std::fmt::Debug for Gbnf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gbnf({} rules, {} elements)", self.alts.len(), self.elems.len())
    }
}

/// A character begun: `left` more bytes, each in `lo..=hi` (then any continuation byte), the code point's bits so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
struct Part {
    left: u8,
    lo: u8,
    hi: u8,
    cp: u32,
}

/// One reading of a prefix: the positions to return to, the last the terminal it waits for (empty: the text is a
/// whole sentence), and the character begun at that terminal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Reading {
    stack: Vec<u32>,
    part: Part,
}

/// A text prefix under a grammar: its readings (sorted, distinct). Empty: the prefix left the grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GbnfState {
    rs: Vec<Reading>,
}

/// Where in the grammar's text, for errors.
fn line_col(src: &str, at: usize) -> String {
    let before = &src[..at.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col}")
}

fn ranges_contain(r: &[(u32, u32)], cp: u32) -> bool {
    let i = r.partition_point(|&(_, hi)| hi < cp);
    i < r.len() && r[i].0 <= cp
}

fn ranges_meet(r: &[(u32, u32)], lo: u32, hi: u32) -> bool {
    let i = r.partition_point(|&(_, h)| h < lo);
    i < r.len() && r[i].0 <= hi
}

/// Sorted, merged ranges (`neg`: their complement), surrogates left out (UTF-8 cannot hold them).
fn normalize(mut r: Vec<(u32, u32)>, neg: bool) -> Vec<(u32, u32)> {
    r.sort_unstable();
    let mut m: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in r {
        match m.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => m.push((lo, hi)),
        }
    }
    if neg {
        let mut c = Vec::new();
        let mut next = 0u32;
        for &(lo, hi) in &m {
            if lo > next {
                c.push((next, lo - 1));
            }
            next = hi.saturating_add(1);
        }
        if next <= MAX_CP {
            c.push((next, MAX_CP));
        }
        m = c;
    }
    let mut out = Vec::new();
    for (lo, hi) in m {
        let hi = hi.min(MAX_CP);
        if lo > hi {
            continue;
        }
        if hi < 0xD800 || lo > 0xDFFF {
            out.push((lo, hi));
        } else {
            if lo < 0xD800 {
                out.push((lo, 0xD7FF));
            }
            if hi > 0xDFFF {
                out.push((0xE000, hi));
            }
        }
    }
    out
}

/// The rules that some alternative `(rule, the rules it uses)` makes true once all the rules it uses are: a worklist,
/// linear in the alternatives' sizes.
fn closure(rules: usize, alts: impl Iterator<Item = (u32, Vec<u32>)>) -> Vec<bool> {
    let alts: Vec<(u32, Vec<u32>)> = alts.collect();
    let mut done = vec![false; rules];
    let mut need: Vec<usize> = alts.iter().map(|a| a.1.len()).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); rules];
    for (i, (_, deps)) in alts.iter().enumerate() {
        for &d in deps {
            users[d as usize].push(i);
        }
    }
    let mut todo: Vec<u32> = Vec::new();
    let mark = |r: u32, done: &mut Vec<bool>, todo: &mut Vec<u32>| {
        if !done[r as usize] {
            done[r as usize] = true;
            todo.push(r);
        }
    };
    for (i, (r, _)) in alts.iter().enumerate() {
        if need[i] == 0 {
            mark(*r, &mut done, &mut todo);
        }
    }
    while let Some(s) = todo.pop() {
        for &i in &users[s as usize] {
            need[i] -= 1;
            if need[i] == 0 {
                mark(alts[i].0, &mut done, &mut todo);
            }
        }
    }
    done
}

/// The grammar's text read into rules (alternatives of sequences of elements, no `End`s yet).
struct Parser<'a> {
    src: &'a str,
    s: &'a [u8],
    i: usize,
    rules: Vec<Vec<Vec<Elem>>>,
    names: Vec<String>,
    index: HashMap<String, u32>,
    defined: Vec<bool>,
    /// Where each rule was first used (for "not defined").
    used_at: Vec<usize>,
    /// The rule written in the grammar that each rule comes from (itself, or the one a group or repetition is in).
    origin: Vec<u32>,
    classes: Vec<Vec<(u32, u32)>>,
    class_ids: HashMap<Vec<(u32, u32)>, u32>,
    elems: usize,
    /// Groups open at the parser's position.
    nest: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl<'a> Parser<'a> {
    fn err<T>(&self, at: usize, m: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("{m} at {}", line_col(self.src, at)))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Spaces, tabs, line breaks and `#` comments.
    fn skip(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'#' => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_word) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.src[start..self.i])
    }

    /// Whether a rule definition (`name ::=`) starts here.
    fn at_definition(&self) -> bool {
        let mut j = self.i;
        while j < self.s.len() && is_word(self.s[j]) {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while j < self.s.len() && matches!(self.s[j], b' ' | b'\t' | b'\r' | b'\n') {
            j += 1;
        }
        self.s[j..].starts_with(b"::=")
    }

    fn rule_id(&mut self, name: &str, at: usize) -> u32 {
        if let Some(&r) = self.index.get(name) {
            return r;
        }
        let r = self.rules.len() as u32;
        self.rules.push(Vec::new());
        self.names.push(name.to_string());
        self.defined.push(false);
        self.used_at.push(at);
        self.origin.push(r);
        self.index.insert(name.to_string(), r);
        r
    }

    /// A new rule with these alternatives (a group or a repetition), named after `base`.
    fn new_rule(&mut self, base: u32, alts: Vec<Vec<Elem>>) -> Result<u32, String> {
        self.count(alts.iter().map(|a| a.len() + 1).sum())?;
        let r = self.rules.len() as u32;
        self.names.push(format!("{}_{}", self.names[self.origin[base as usize] as usize], r));
        self.rules.push(alts);
        self.defined.push(true);
        self.used_at.push(self.i);
        self.origin.push(self.origin[base as usize]);
        Ok(r)
    }

    fn count(&mut self, n: usize) -> Result<(), String> {
        self.elems += n;
        if self.elems > MAX_ELEMS {
            return self.err(self.i, format!("the grammar expands to more than {MAX_ELEMS} elements"));
        }
        Ok(())
    }

    fn parse(&mut self) -> Result<(), String> {
        loop {
            self.skip();
            let at = self.i;
            let Some(b) = self.peek() else { return Ok(()) };
            let Some(name) = self.name() else {
                return self.err(at, format!("expected a rule name, found {:?}", b as char));
            };
            self.skip();
            if !self.s[self.i..].starts_with(b"::=") {
                return self.err(self.i, format!("expected '::=' after rule name '{name}'"));
            }
            self.i += 3;
            let r = self.rule_id(name, at);
            if self.defined[r as usize] {
                return self.err(at, format!("rule '{name}' is defined twice"));
            }
            self.defined[r as usize] = true;
            let alts = self.alternates(r, false)?;
            self.count(alts.iter().map(|a| a.len() + 1).sum())?;
            self.rules[r as usize] = alts;
        }
    }

    fn alternates(&mut self, r: u32, nested: bool) -> Result<Vec<Vec<Elem>>, String> {
        let mut alts = vec![self.sequence(r, nested)?];
        while self.peek() == Some(b'|') {
            self.i += 1;
            alts.push(self.sequence(r, nested)?);
        }
        Ok(alts)
    }

    fn sequence(&mut self, r: u32, nested: bool) -> Result<Vec<Elem>, String> {
        let mut seq: Vec<Elem> = Vec::new();
        // Where the last atom (what a repetition applies to) starts in `seq`.
        let mut last: Option<usize> = None;
        loop {
            self.skip();
            let at = self.i;
            let Some(b) = self.peek() else { break };
            match b {
                b'"' | b'\'' => {
                    self.i += 1;
                    let start = seq.len();
                    loop {
                        match self.peek() {
                            None => return self.err(at, "unterminated literal"),
                            Some(q) if q == b => {
                                self.i += 1;
                                break;
                            }
                            Some(_) => {
                                let c = self.char()?;
                                let mut buf = [0u8; 4];
                                seq.extend(c.encode_utf8(&mut buf).bytes().map(Elem::Byte));
                            }
                        }
                    }
                    if seq.len() == start {
                        // An empty literal matches the empty text: nothing to read (a repetition of it is empty too).
                        last = None;
                        continue;
                    }
                    last = Some(start);
                }
                b'[' => {
                    self.i += 1;
                    let neg = self.peek() == Some(b'^');
                    if neg {
                        self.i += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        match self.peek() {
                            None => return self.err(at, "unterminated character class"),
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            Some(_) => {
                                let lo = self.char()? as u32;
                                let hi = if self.peek() == Some(b'-') && self.s.get(self.i + 1) != Some(&b']') {
                                    self.i += 1;
                                    if self.peek().is_none() {
                                        return self.err(at, "unterminated character class");
                                    }
                                    self.char()? as u32
                                } else {
                                    lo
                                };
                                if lo > hi {
                                    return self.err(at, "a character range's end is below its start");
                                }
                                ranges.push((lo, hi));
                            }
                        }
                    }
                    last = Some(seq.len());
                    seq.push(self.class(normalize(ranges, neg)));
                }
                b'.' => {
                    self.i += 1;
                    last = Some(seq.len());
                    seq.push(self.class(normalize(vec![(0, MAX_CP)], false)));
                }
                b'(' => {
                    self.i += 1;
                    self.nest += 1;
                    if self.nest > MAX_NEST {
                        return self.err(at, format!("groups nested deeper than {MAX_NEST}"));
                    }
                    let alts = self.alternates(r, true)?;
                    self.nest -= 1;
                    self.skip();
                    if self.peek() != Some(b')') {
                        return self.err(at, "'(' is not closed");
                    }
                    self.i += 1;
                    let g = self.new_rule(r, alts)?;
                    last = Some(seq.len());
                    seq.push(Elem::Rule(g));
                }
                b'*' | b'+' | b'?' | b'{' => {
                    let Some(start) = last.take() else {
                        return self.err(at, format!("'{}' follows nothing it could repeat", b as char));
                    };
                    self.i += 1;
                    let (min, max) = match b {
                        b'*' => (0, None),
                        b'+' => (1, None),
                        b'?' => (0, Some(1)),
                        _ => self.braces(at)?,
                    };
                    let atom = seq.split_off(start);
                    let rep = self.repeat(r, atom, min, max)?;
                    seq.extend(rep);
                }
                b'|' | b')' => break,
                _ if is_word(b) => {
                    if !nested && self.at_definition() {
                        break;
                    }
                    let name = self.name().expect("a word byte");
                    let id = self.rule_id(name, at);
                    last = Some(seq.len());
                    seq.push(Elem::Rule(id));
                }
                b'<' => return self.err(at, "token references ('<...>') are not supported"),
                _ => {
                    let c = self.src[at..].chars().next().unwrap_or('?');
                    return self.err(at, format!("unexpected {c:?}"));
                }
            }
        }
        if nested && self.peek().is_none() {
            return self.err(self.i, "'(' is not closed");
        }
        Ok(seq)
    }

    /// `{m}`, `{m,}`, `{m,n}` or `{,n}` after the `{`.
    fn braces(&mut self, at: usize) -> Result<(u32, Option<u32>), String> {
        let num = |p: &mut Self| -> Result<Option<u32>, String> {
            p.skip();
            let start = p.i;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.i += 1;
            }
            if p.i == start {
                return Ok(None);
            }
            match p.src[start..p.i].parse::<u32>() {
                Ok(n) if n <= MAX_REPEAT => Ok(Some(n)),
                _ => p.err(start, format!("a repetition count above {MAX_REPEAT}")),
            }
        };
        let m = num(self)?;
        self.skip();
        let (min, max) = if self.peek() == Some(b',') {
            self.i += 1;
            (m.unwrap_or(0), num(self)?)
        } else {
            match m {
                Some(m) => (m, Some(m)),
                None => return self.err(at, "expected a count in '{...}'"),
            }
        };
        self.skip();
        if self.peek() != Some(b'}') {
            return self.err(at, "expected '}'");
        }
        self.i += 1;
        if max.is_some_and(|x| x < min) {
            return self.err(at, "a repetition's maximum is below its minimum");
        }
        Ok((min, max))
    }

    /// `atom` `min` times, then up to `max` (None: any number).
    fn repeat(&mut self, r: u32, atom: Vec<Elem>, min: u32, max: Option<u32>) -> Result<Vec<Elem>, String> {
        let copies = min as usize * atom.len();
        self.count(copies)?;
        let mut out = Vec::with_capacity(copies + 1);
        for _ in 0..min {
            out.extend_from_slice(&atom);
        }
        match max {
            None => {
                // star ::= atom star | (empty)
                let star = self.new_rule(r, vec![Vec::new(), Vec::new()])?;
                let mut a = atom;
                a.push(Elem::Rule(star));
                self.rules[star as usize][0] = a;
                out.push(Elem::Rule(star));
            }
            Some(max) if max > min => {
                // opt_1 ::= atom | (empty); opt_k ::= atom opt_{k-1} | (empty): at most max - min more, in one reading.
                let mut prev: Option<u32> = None;
                for _ in min..max {
                    let mut a = atom.clone();
                    a.extend(prev.map(Elem::Rule));
                    prev = Some(self.new_rule(r, vec![a, Vec::new()])?);
                }
                out.extend(prev.map(Elem::Rule));
            }
            Some(_) => {}
        }
        Ok(out)
    }

    fn class(&mut self, ranges: Vec<(u32, u32)>) -> Elem {
        let next = self.classes.len() as u32;
        let k = *self.class_ids.entry(ranges).or_insert_with_key(|r| {
            self.classes.push(r.clone());
            next
        });
        Elem::Class(k)
    }

    /// One character of a literal or class, escapes read.
    fn char(&mut self) -> Result<char, String> {
        let at = self.i;
        let c = self.src[at..].chars().next().expect("not at the end");
        self.i += c.len_utf8();
        if c != '\\' {
            return Ok(c);
        }
        let Some(e) = self.peek() else { return self.err(at, "a '\\' at the end") };
        self.i += 1;
        let hex = |p: &mut Self, n: usize| -> Result<char, String> {
            let digits = p.src.get(p.i..p.i + n).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
            let Some(d) = digits else { return p.err(at, format!("expected {n} hex digits after '\\{}'", e as char)) };
            p.i += n;
            match char::from_u32(u32::from_str_radix(d, 16).expect("hex digits")) {
                Some(c) => Ok(c),
                None => p.err(at, "an escape that is no character (a surrogate or beyond U+10FFFF)"),
            }
        };
        Ok(match e {
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'0' => '\0',
            b'\\' | b'"' | b'\'' | b'[' | b']' | b'-' | b'^' | b'/' | b'.' | b'(' | b')' | b'|' | b'*' | b'+'
            | b'?' => e as char,
            b'x' => hex(self, 2)?,
            b'u' => hex(self, 4)?,
            b'U' => hex(self, 8)?,
            _ => return self.err(at, format!("unknown escape '\\{}'", e as char)),
        })
    }
}

impl Gbnf {
    /// Compiles a GBNF grammar whose start rule is `root`, or says why it cannot be enforced.
    pub fn new(src: &str) -> Result<Gbnf, String> {
        if src.len() > MAX_GRAMMAR_BYTES {
            return Err(format!("the grammar has {} bytes, more than {MAX_GRAMMAR_BYTES}", src.len()));
        }
        if !src.contains("::=") {
            return Err("the grammar has no rule ('name ::= ...'): GBNF grammars are taken (llama.cpp's, xgrammar's \
                        EBNF), not Lark's 'name: ...'"
                .into());
        }
        let mut p = Parser {
            src,
            s: src.as_bytes(),
            i: 0,
            rules: Vec::new(),
            names: Vec::new(),
            index: HashMap::new(),
            defined: Vec::new(),
            used_at: Vec::new(),
            origin: Vec::new(),
            classes: Vec::new(),
            class_ids: HashMap::new(),
            elems: 0,
            nest: 0,
        };
        p.parse()?;
        if let Some(r) = (0..p.rules.len()).find(|&r| !p.defined[r]) {
            return Err(format!("rule '{}' is used but not defined, at {}", p.names[r], line_col(src, p.used_at[r])));
        }
        let Some(&root) = p.index.get("root") else {
            return Err("the grammar has no 'root' rule (its start rule)".into());
        };
        let (rules, names, origin, classes) = (p.rules, p.names, p.origin, p.classes);
        // Rules with a finite text, found from the terminals up; alternatives through the others can never finish.
        let term_ok = |e: &Elem| match *e {
            Elem::Class(k) => !classes[k as usize].is_empty(),
            _ => true,
        };
        let deps = |a: &[Elem]| a.iter().filter_map(|e| if let Elem::Rule(s) = *e { Some(s) } else { None }).collect();
        let fin = closure(
            rules.len(),
            rules
                .iter()
                .enumerate()
                .flat_map(|(r, alts)| alts.iter().filter(|a| a.iter().all(term_ok)).map(move |a| (r as u32, deps(a)))),
        );
        if !fin[root as usize] {
            return Err("no text is a sentence of the grammar (its 'root' has no finite text)".into());
        }
        let alive = |a: &Vec<Elem>| {
            a.iter().all(|e| match *e {
                Elem::Rule(s) => fin[s as usize],
                ref t => term_ok(t),
            })
        };
        // Left recursion: a rule that reaches itself before reading a byte would expand forever.
        let nullable = closure(
            rules.len(),
            rules.iter().enumerate().flat_map(|(r, alts)| {
                alts.iter()
                    .filter(|a| alive(a) && a.iter().all(|e| matches!(e, Elem::Rule(_))))
                    .map(move |a| (r as u32, deps(a)))
            }),
        );
        let left: Vec<Vec<u32>> = rules
            .iter()
            .map(|alts| {
                let mut to = Vec::new();
                for a in alts.iter().filter(|a| alive(a)) {
                    for e in a {
                        match *e {
                            Elem::Rule(s) => {
                                to.push(s);
                                if !nullable[s as usize] {
                                    break;
                                }
                            }
                            _ => break,
                        }
                    }
                }
                to
            })
            .collect();
        // Iterative DFS over the rules reachable from root (0 new, 1 on the path, 2 done).
        let mut mark = vec![0u8; rules.len()];
        for start in 0..rules.len() {
            if mark[start] != 0 {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = 1;
            while let Some(&mut (r, ref mut k)) = path.last_mut() {
                if let Some(&s) = left[r].get(*k) {
                    *k += 1;
                    match mark[s as usize] {
                        0 => {
                            mark[s as usize] = 1;
                            path.push((s as usize, 0));
                        }
                        1 => {
                            return Err(format!(
                                "rule '{}' is left-recursive (it can reach itself before reading a character); \
                                 write the repetition with '*' or '+' instead",
                                names[origin[s as usize] as usize]
                            ));
                        }
                        _ => {}
                    }
                } else {
                    mark[r] = 2;
                    path.pop();
                }
            }
        }
        let mut elems = Vec::new();
        let mut alts = Vec::with_capacity(rules.len());
        for r in &rules {
            let mut starts = Vec::new();
            for a in r.iter().filter(|a| alive(a)) {
                starts.push(elems.len() as u32);
                elems.extend_from_slice(a);
                elems.push(Elem::End);
            }
            alts.push(starts);
        }
        Ok(Gbnf { elems, alts, classes, root, source: src.to_string() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The readings before any byte.
    pub fn start(&self) -> GbnfState {
        let (mut rs, mut work) = (Vec::new(), 0);
        for &a in &self.alts[self.root as usize] {
            self.settle(vec![a], &mut rs, &mut work);
        }
        GbnfState::sorted(rs)
    }

    /// Expands `stack` until its top is a terminal (or it is empty), each reading into `out`.
    fn settle(&self, stack: Vec<u32>, out: &mut Vec<Reading>, work: &mut usize) {
        // Depth first with a list of its own (the choices of rules of empty alternatives can nest deeply).
        let mut todo = vec![stack];
        while let Some(mut stack) = todo.pop() {
            loop {
                *work += 1;
                if *work > MAX_WORK {
                    return;
                }
                let Some(&p) = stack.last() else {
                    out.push(Reading { stack, part: Part::default() });
                    break;
                };
                match self.elems[p as usize] {
                    Elem::End => {
                        stack.pop();
                    }
                    Elem::Byte(_) | Elem::Class(_) => {
                        out.push(Reading { stack, part: Part::default() });
                        break;
                    }
                    Elem::Rule(r) => {
                        stack.pop();
                        // The position after the reference, unless it ends the alternative (no growth in tail position).
                        if self.elems[p as usize + 1] != Elem::End {
                            stack.push(p + 1);
                        }
                        let alts = &self.alts[r as usize];
                        let Some((&last, rest)) = alts.split_last() else { break };
                        if stack.len() >= MAX_STACK {
                            break;
                        }
                        for &a in rest.iter().rev() {
                            let mut s = stack.clone();
                            s.push(a);
                            todo.push(s);
                        }
                        stack.push(last);
                    }
                }
            }
        }
    }

    /// The readings of `r` after byte `b`, into `out`.
    fn step(&self, r: &Reading, b: u8, out: &mut Vec<Reading>, work: &mut usize) {
        let Some(&p) = r.stack.last() else { return };
        let mut advance = |out: &mut Vec<Reading>| {
            let mut s = r.stack.clone();
            *s.last_mut().expect("a top") = p + 1;
            self.settle(s, out, work);
        };
        match self.elems[p as usize] {
            Elem::Byte(c) => {
                if c == b {
                    advance(out);
                }
            }
            Elem::Class(k) => {
                let cls = &self.classes[k as usize];
                let part = r.part;
                let (left, lo, hi, cp) = if part.left == 0 {
                    match b {
                        0x00..=0x7F => (0, 0, 0, b as u32),
                        0xC2..=0xDF => (1, 0x80, 0xBF, (b & 0x1F) as u32),
                        0xE0 => (2, 0xA0, 0xBF, 0),
                        0xED => (2, 0x80, 0x9F, 0xD),
                        0xE1..=0xEF => (2, 0x80, 0xBF, (b & 0x0F) as u32),
                        0xF0 => (3, 0x90, 0xBF, 0),
                        0xF1..=0xF3 => (3, 0x80, 0xBF, (b & 0x07) as u32),
                        0xF4 => (3, 0x80, 0x8F, 4),
                        _ => return,
                    }
                } else {
                    if !(part.lo..=part.hi).contains(&b) {
                        return;
                    }
                    (part.left - 1, 0x80, 0xBF, part.cp << 6 | (b & 0x3F) as u32)
                };
                if left == 0 {
                    if ranges_contain(cls, cp) {
                        advance(out);
                    }
                } else {
                    // The characters the bytes so far can still become: the next byte in lo..=hi, any after it.
                    let rest = 6 * (left as u32 - 1);
                    let (first, last) =
                        ((cp << 6 | (lo & 0x3F) as u32) << rest, (cp << 6 | (hi & 0x3F) as u32) << rest);
                    if ranges_meet(cls, first, last | ((1 << rest) - 1)) {
                        out.push(Reading { stack: r.stack.clone(), part: Part { left, lo, hi, cp } });
                    }
                }
            }
            Elem::Rule(_) | Elem::End => unreachable!("readings settle on terminals"),
        }
    }
}

impl GbnfState {
    fn sorted(mut rs: Vec<Reading>) -> GbnfState {
        rs.sort_unstable();
        rs.dedup();
        rs.truncate(MAX_READINGS);
        GbnfState { rs }
    }

    /// The state after byte `b`; false (and no readings) when no reading takes it.
    pub fn feed(&mut self, g: &Gbnf, b: u8) -> bool {
        let (mut out, mut work) = (Vec::new(), 0);
        for r in &self.rs {
            g.step(r, b, &mut out, &mut work);
        }
        *self = GbnfState::sorted(out);
        !self.rs.is_empty()
    }

    pub fn feed_all(&mut self, g: &Gbnf, bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| self.feed(g, b))
    }

    /// Whether the text so far is a whole sentence.
    pub fn can_end(&self) -> bool {
        self.rs.iter().any(|r| r.stack.is_empty() && r.part.left == 0)
    }

    pub fn is_empty(&self) -> bool {
        self.rs.is_empty()
    }
}

impl Gbnf {
    /// Whether the whole of `text` is a sentence.
    pub fn is_match(&self, text: &[u8]) -> bool {
        let mut s = self.start();
        s.feed_all(self, text) && s.can_end()
    }
}

/// Most text states a constraint keeps (then it drops them all and starts again).
const STATES_KEPT: usize = 4_096;

/// The constraint of one grammar over a vocabulary.
pub struct GrammarConstraint {
    grammar: Arc<Gbnf>,
    vocab: Arc<JsonVocab>,
    masks: Mutex<HashMap<GbnfState, Arc<Vec<u64>>>>,
    /// The states of recent texts by a hash of their tokens: a sequence's next step reads only its newest token
    /// (reading a whole text again costs ≈ 0.1 µs a byte, each step).
    states: Mutex<HashMap<u64, GbnfState>>,
}

fn tokens_key(tokens: &[u32]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tokens.hash(&mut h);
    h.finish()
}

impl std::fmt::Debug for GrammarConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrammarConstraint({:?}, {:?})", self.grammar, self.vocab)
    }
}

impl GrammarConstraint {
    pub fn new(grammar: Arc<Gbnf>, vocab: Arc<JsonVocab>) -> Self {
        GrammarConstraint { grammar, vocab, masks: Mutex::default(), states: Mutex::default() }
    }

    /// The state after `generated` (no readings: the text left the grammar): the state of all but its last token,
    /// kept from the step before, and that token's bytes; else the whole text read.
    fn state(&self, generated: &[u32]) -> GbnfState {
        let g = &*self.grammar;
        let lock = || self.states.lock().unwrap_or_else(|e| e.into_inner());
        let before = generated.split_last().and_then(|(&t, rest)| Some((lock().get(&tokens_key(rest))?.clone(), t)));
        let s = match before {
            Some((mut s, t)) => {
                s.feed_all(g, self.vocab.token(t));
                s
            }
            None => {
                let mut s = g.start();
                s.feed_all(g, &self.vocab.text(generated));
                s
            }
        };
        let mut kept = lock();
        if kept.len() >= STATES_KEPT {
            kept.clear();
        }
        kept.insert(tokens_key(generated), s.clone());
        s
    }

    /// The tokens whose bytes leave a reading of `s` (a bit each); tokens whose first byte no reading takes are
    /// refused without a walk.
    fn allowed(&self, s: &GbnfState) -> Arc<Vec<u64>> {
        let g = &*self.grammar;
        kept_mask(&self.masks, s, || {
            let mut first = [false; 256];
            for (b, ok) in first.iter_mut().enumerate() {
                *ok = s.clone().feed(g, b as u8);
            }
            self.vocab.bits_where(|t| !t.is_empty() && first[t[0] as usize] && s.clone().feed_all(g, t))
        })
    }
}

impl TokenConstraint for GrammarConstraint {
    fn mask(&self, generated: &[u32], end: &[u32], logits: &mut [f32]) {
        let s = self.state(generated);
        if !s.is_empty() {
            apply_mask(&self.allowed(&s), s.can_end(), end, logits);
        } else {
            // The text already left the grammar (it cannot under this mask): only the end tokens.
            apply_mask(&[], false, end, logits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::json_mode::testing::{masked_walk, vocab};
    use super::*;

    #[test]
    fn sentences_and_prefixes() {
        let g = Gbnf::new(
            r#"
            # a comment
            root ::= item ("," " "? item)*
            item ::= "yes" | "no" | [0-9]{1,3} | "<" [^<>]+ ">"
            "#,
        )
        .unwrap();
        for ok in ["yes", "no,yes", "7, 123,no", "<héllo wörld>", "<a>, 0"] {
            assert!(g.is_match(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "ye", "1234", "yes,", "<>", "yes ,no", "maybe", "<a<b>"] {
            assert!(!g.is_match(bad.as_bytes()), "{bad}");
        }
        let mut s = g.start();
        assert!(s.feed_all(&g, b"12") && s.can_end());
        assert!(s.feed_all(&g, b", <") && !s.can_end());
        // A token may end inside a character; a character the class refuses is refused at its first byte if no
        // character with that first byte is in the class.
        let u = Gbnf::new(r#"root ::= [à-ÿ]+"#).unwrap();
        let mut s = u.start();
        assert!(s.feed(&u, "é".as_bytes()[0]) && !s.can_end());
        assert!(s.feed(&u, "é".as_bytes()[1]) && s.can_end());
        assert!(!u.start().feed(&u, "ā".as_bytes()[0])); // U+0101: lead byte 0xC4, beyond ÿ (U+00FF, lead 0xC3)
    }

    #[test]
    fn adversarial_grammars_stay_bounded() {
        // 40 levels of rules of two optional copies of the next: 2^40 ways to expand the start; the work a byte is
        // bounded, and what is found still reads the text.
        let mut g = String::from("root ::= l0 \"!\"\n");
        for i in 0..40 {
            g += &format!("l{i} ::= l{}? l{}?\n", i + 1, i + 1);
        }
        g += "l40 ::= \"a\"\n";
        let t = std::time::Instant::now();
        let g = Gbnf::new(&g).unwrap();
        let mut s = g.start();
        assert!(!s.is_empty() && s.rs.len() <= MAX_READINGS);
        let _ = s.feed_all(&g, b"aaa!"); // what it reads is cut at MAX_WORK a byte (2^40 readings of "a")
        assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
        // Without the ambiguity (one optional copy a level) the same depth reads exactly.
        let mut one = String::from("root ::= l0 \"!\"\n");
        for i in 0..40 {
            one += &format!("l{i} ::= l{}?\n", i + 1);
        }
        one += "l40 ::= \"a\"\n";
        let one = Gbnf::new(&one).unwrap();
        assert!(one.is_match(b"a!") && one.is_match(b"!") && !one.is_match(b"aa!"));
        // A chain of 20,000 rules, each used before it is defined: compiled in linear time.
        let mut chain = String::from("root ::= r0\n");
        for i in 0..20_000 {
            chain += &format!("r{i} ::= \"x\" r{} | \"y\"\n", i + 1);
        }
        chain += "r20000 ::= \"z\"\n";
        let t = std::time::Instant::now();
        let c = Gbnf::new(&chain[..chain.len().min(MAX_GRAMMAR_BYTES)]);
        assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
        assert!(c.is_err()); // cut at 64 KiB: a rule used but not defined
        let short: String =
            chain.lines().rev().take(2_001).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        let c = Gbnf::new(&format!("root ::= r18000\n{short}")).unwrap();
        assert!(c.is_match(b"xxxy") && c.is_match(&[b"x".repeat(2_000), b"z".to_vec()].concat()));
    }

    #[test]
    fn recursion_and_repetition_counts() {
        // Nested brackets (not regular), and right recursion: a long list keeps a short stack.
        let g = Gbnf::new("root ::= \"(\" root* \")\"").unwrap();
        assert!(g.is_match(b"(()(()))") && !g.is_match(b"(()") && !g.is_match(b"())"));
        let list = Gbnf::new("root ::= [a-z] (\",\" [a-z])*").unwrap();
        let text = "a,".repeat(5000) + "z";
        let mut s = list.start();
        assert!(s.feed_all(&list, text.as_bytes()) && s.can_end());
        assert!(s.rs.iter().all(|r| r.stack.len() <= 2), "{:?}", s.rs);
        let c = Gbnf::new("root ::= \"x\"{2,4} \"y\"{3} \"z\"{,2} \"w\"{1,}").unwrap();
        for (t, ok) in
            [("xxyyyw", true), ("xxxxyyyzzww", true), ("xyyyw", false), ("xxxxxyyyw", false), ("xxyyyzzz w", false)]
        {
            assert_eq!(c.is_match(t.as_bytes()), ok, "{t}");
        }
    }

    #[test]
    fn grammars_that_cannot_be_enforced_are_refused() {
        for (bad, why) in [
            ("root ::= root \"a\" | \"b\"", "left-recursive"),
            ("root ::= x\nx ::= e root | \"a\"\ne ::= \"b\"?", "left-recursive"),
            ("root ::= \"a\" root", "no finite text"),
            ("root ::= undefined", "not defined"),
            ("item ::= \"a\"", "no 'root'"),
            ("root ::= \"a\"\nroot ::= \"b\"", "defined twice"),
            ("root ::= \"a", "unterminated"),
            ("root ::= [a-", "unterminated"),
            ("root ::= (\"a\"", "not closed"),
            ("root ::= *", "repeat"),
            ("root ::= \"a\"{3,2}", "below its minimum"),
            ("root ::= \"a\"{5000}", "above"),
            ("root ::= [z-a]", "below its start"),
            ("root ::= \"\\q\"", "unknown escape"),
            ("root ::= <token>", "token references"),
            ("root = \"a\"", "no rule"),
            ("root ::= [^\\x00-\\U0010FFFF]", "no finite text"),
        ] {
            let e = Gbnf::new(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(Gbnf::new(&format!("root ::= \"{}\"", "a".repeat(MAX_GRAMMAR_BYTES)))
            .unwrap_err()
            .contains("more than"));
        // 32,000 nested groups: refused (the parser recurses into each), not a stack overflow.
        let deep = format!("root ::= {}\"a\"{}", "(".repeat(32_000), ")".repeat(32_000));
        assert!(Gbnf::new(&deep).unwrap_err().contains("nested deeper"));
        assert!(Gbnf::new(&format!("root ::= {}\"a\"{}", "(".repeat(100), ")".repeat(100))).unwrap().is_match(b"a"));
        let long = format!("root ::= (\"{}\"{{1000}})+", "a".repeat(300));
        assert!(Gbnf::new(&long).unwrap_err().contains("more than"));
        // A dead alternative is left out, the rest of the rule stays.
        let g = Gbnf::new("root ::= \"a\" | loop\nloop ::= \"b\" loop").unwrap();
        assert!(g.is_match(b"a") && !g.is_match(b"b"));
        let e = Gbnf::new("root ::= \"a\"\n  x ::= \"b\" ]").unwrap_err();
        assert!(e.contains("line 2, column 13"), "{e}");
    }

    #[test]
    fn the_mask_keeps_tokens_that_can_continue_and_ends_only_on_a_sentence() {
        // tokens: 0 "(", 1 ")", 2 "()", 3 "((", 4 "x", 5 ")(", 6 "" (special), 7 end
        let v = vocab(&["(", ")", "()", "((", "x", ")(", "", "</s>"]);
        let c = GrammarConstraint::new(Arc::new(Gbnf::new("root ::= \"(\" root* \")\"").unwrap()), v);
        let end = [7u32];
        let run = |gen: &[u32]| {
            let mut l = vec![0f32; 8];
            c.mask(gen, &end, &mut l);
            (0..8).filter(|&t| l[t] > f32::NEG_INFINITY).collect::<Vec<usize>>()
        };
        assert_eq!(run(&[]), vec![0, 2, 3]);
        assert_eq!(run(&[0]), vec![0, 1, 2, 3]); // ")(" would start a second root
        assert_eq!(run(&[2]), vec![7]); // "()" is whole: only the end (")(" would leave a second root)
        assert_eq!(run(&[3, 1]), vec![0, 1, 2, 3]);
        // The state kept from the step before and a whole read agree (a fresh constraint reads the whole text).
        let fresh = GrammarConstraint::new(c.grammar.clone(), c.vocab.clone());
        for gen in [&[3u32, 1, 0][..], &[3, 1, 0, 1], &[3, 1, 0, 1, 4]] {
            assert_eq!(c.state(gen), fresh.state(gen));
            fresh.states.lock().unwrap().clear();
        }
        assert!(c.state(&[3, 1, 0, 1, 4]).is_empty() && c.state(&[4, 0]).is_empty());
    }

    #[test]
    fn a_regular_grammar_accepts_what_the_equivalent_regex_matches() {
        // The `regex` crate as the reference: random texts over the alphabet, and masked random walks.
        let g = Gbnf::new("root ::= (\"ab\" | \"ba\")+ \"-\" [01]{2,4} ([a-b] \"!\")?").unwrap();
        let re = regex::Regex::new(r"^(?:(ab|ba)+-[01]{2,4}([a-b]!)?)$").unwrap();
        let alphabet = ["a", "b", "-", "0", "1", "!", "ab", "ba"];
        let mut rng = crate::util::SplitMix64(66);
        let mut matched = 0;
        for _ in 0..20_000 {
            let n = 1 + rng.next_u64() % 8;
            let text: String = (0..n).map(|_| alphabet[(rng.next_u64() % 8) as usize]).collect();
            assert_eq!(g.is_match(text.as_bytes()), re.is_match(&text), "{text}");
            matched += re.is_match(&text) as usize;
        }
        assert!(matched >= 5, "{matched} texts matched");
        let toks = ["a", "b", "ab", "ba", "0", "1", "01", "-", "--", "z", "!", "a!", "</s>"];
        let c = GrammarConstraint::new(Arc::new(g), vocab(&toks));
        for _ in 0..200 {
            let text = masked_walk(&c, &toks, 12, &mut rng);
            assert!(re.is_match(&text), "{text}");
        }
    }
}
