//! vLLM's `guided_regex` / `structured_outputs.regex`: a choice's whole text matches a regular expression.
//!
//! The pattern is compiled once into a dense DFA over bytes (regex-automata: anchored at the start, UTF-8), with
//! size limits so that a request cannot make the server build an unbounded automaton. Each step's mask walks every
//! token's bytes from the DFA state of the text so far and keeps the tokens that end in a *live* state (one from
//! which the pattern can still match); the end tokens stay only where the text so far matches. The masks of the
//! states met are kept (most states repeat from step to step).
use super::json_mode::{apply_mask, kept_mask, JsonVocab, TokenConstraint};
use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};
use regex_automata::Anchored;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Longest pattern a request may give, in bytes.
pub const MAX_REGEX_BYTES: usize = 4096;
/// Most heap the DFA of one pattern (and its determinization) may take.
const DFA_BYTES: usize = 16 << 20;

/// A compiled pattern: its DFA, start state, and which states are live.
pub struct Pattern {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    source: String,
    /// The live states (a match is still reachable from them), all found at compile time.
    live: HashSet<StateID>,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({:?}, {} bytes of DFA)", self.source, self.dfa.memory_usage())
    }
}

impl Pattern {
    /// Compiles `pattern` (Rust `regex` syntax, close to Python's `re` without look-around and back-references), or
    /// says why it cannot be enforced.
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        if pattern.len() > MAX_REGEX_BYTES {
            return Err(format!("the pattern has {} bytes, more than {MAX_REGEX_BYTES}", pattern.len()));
        }
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(DFA_BYTES))
                    .determinize_size_limit(Some(DFA_BYTES)),
            )
            .syntax(syntax::Config::new().utf8(true).unicode(true))
            .build(pattern)
            .map_err(|e| match e.to_string() {
                m if m.contains("exceeded") || m.contains("limit") => {
                    format!("the pattern's automaton is larger than {} MiB ({m})", DFA_BYTES >> 20)
                }
                m => m,
            })?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| format!("the pattern has no anchored start: {e}"))?;
        let live = live_states(&dfa, start);
        let p = Pattern { dfa, start, source: pattern.to_string(), live };
        if !p.is_live(start) {
            return Err("no text matches the pattern".into());
        }
        Ok(p)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The state after `bytes` from `s`; None once no match can follow.
    fn feed(&self, mut s: StateID, bytes: &[u8]) -> Option<StateID> {
        for &b in bytes {
            s = self.dfa.next_state(s, b);
            if self.dfa.is_dead_state(s) || self.dfa.is_quit_state(s) {
                return None;
            }
        }
        Some(s)
    }

    /// Whether the text that led to `s` matches the whole pattern.
    fn matches(&self, s: StateID) -> bool {
        self.dfa.is_match_state(self.dfa.next_eoi_state(s))
    }

    /// Whether some continuation from `s` (the empty one included) matches.
    fn is_live(&self, s: StateID) -> bool {
        self.live.contains(&s)
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &[u8]) -> bool {
        self.feed(self.start, text).is_some_and(|s| self.matches(s))
    }
}

/// The states reachable from `start` from which a match is reachable: the states met from `start` (one byte of each
/// byte class), then back from the matching ones along the reversed transitions — linear in the DFA's transitions.
fn live_states(dfa: &dense::DFA<Vec<u32>>, start: StateID) -> HashSet<StateID> {
    let bytes: Vec<u8> = dfa.byte_classes().representatives(0..=255).filter_map(|u| u.as_u8()).collect();
    let mut index = HashMap::from([(start, 0usize)]);
    let (mut states, mut rev): (Vec<StateID>, Vec<Vec<u32>>) = (vec![start], vec![Vec::new()]);
    let mut i = 0;
    while i < states.len() {
        let x = states[i];
        for &b in &bytes {
            let y = dfa.next_state(x, b);
            if dfa.is_dead_state(y) || dfa.is_quit_state(y) {
                continue;
            }
            let j = *index.entry(y).or_insert_with(|| {
                states.push(y);
                rev.push(Vec::new());
                states.len() - 1
            });
            if rev[j].last() != Some(&(i as u32)) {
                rev[j].push(i as u32);
            }
        }
        i += 1;
    }
    let mut live = vec![false; states.len()];
    let mut todo: Vec<usize> =
        (0..states.len()).filter(|&k| dfa.is_match_state(dfa.next_eoi_state(states[k]))).collect();
    for &k in &todo {
        live[k] = true;
    }
    while let Some(k) = todo.pop() {
        for &p in &rev[k] {
            if !live[p as usize] {
                live[p as usize] = true;
                todo.push(p as usize);
            }
        }
    }
    states.into_iter().zip(live).filter(|x| x.1).map(|x| x.0).collect()
}

/// The constraint of one pattern over a vocabulary.
pub struct RegexConstraint {
    pattern: Arc<Pattern>,
    vocab: Arc<JsonVocab>,
    masks: Mutex<HashMap<StateID, Arc<Vec<u64>>>>,
}

impl std::fmt::Debug for RegexConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegexConstraint({:?}, {:?})", self.pattern, self.vocab)
    }
}

impl RegexConstraint {
    pub fn new(pattern: Arc<Pattern>, vocab: Arc<JsonVocab>) -> Self {
        RegexConstraint { pattern, vocab, masks: Mutex::default() }
    }

    /// The tokens whose bytes lead from `s` to a live state (a bit each).
    fn allowed(&self, s: StateID) -> Arc<Vec<u64>> {
        let p = &*self.pattern;
        kept_mask(&self.masks, &s, || self.vocab.bits_where(|b| p.feed(s, b).is_some_and(|e| p.is_live(e))))
    }
}

impl TokenConstraint for RegexConstraint {
    fn mask(&self, generated: &[u32], end: &[u32], logits: &mut [f32]) {
        let p = &*self.pattern;
        match p.feed(p.start, &self.vocab.text(generated)) {
            Some(s) => apply_mask(&self.allowed(s), p.matches(s), end, logits),
            // The text already left the pattern (it cannot under this mask): only the end tokens (as Constraint).
            None => apply_mask(&[], false, end, logits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::json_mode::testing::{masked_walk, vocab};
    use super::*;

    #[test]
    fn whole_texts_match_and_prefixes_stay_live() {
        let p = Pattern::new(r"[0-9]{3}-[a-z]+").unwrap();
        assert!(p.is_match(b"123-abc"));
        assert!(!p.is_match(b"123-"));
        assert!(!p.is_match(b"123-abc!"));
        let s = p.feed(p.start, b"12").unwrap();
        assert!(p.is_live(s) && !p.matches(s));
        assert!(p.feed(p.start, b"1x").is_none());
        // Python's re.fullmatch semantics: the pattern is anchored at both ends, alternations included.
        let a = Pattern::new("yes|no").unwrap();
        assert!(a.is_match(b"yes") && a.is_match(b"no") && !a.is_match(b"yesno"));
        // UTF-8: a token may end inside a character.
        let u = Pattern::new("é+").unwrap();
        let half = u.feed(u.start, &"é".as_bytes()[..1]).unwrap();
        assert!(u.is_live(half) && !u.matches(half));
        // A long chain of states: liveness is found once, back from the match (not a search per state).
        let long = Pattern::new("[0-9]{3000}x").unwrap();
        let text = format!("{}x", "7".repeat(3000));
        assert!(long.is_match(text.as_bytes()) && !long.is_match(&text.as_bytes()[1..]));
        assert!(long.feed(long.start, &text.as_bytes()[..2999]).is_some_and(|s| long.is_live(s)));
    }

    #[test]
    fn patterns_that_cannot_be_enforced_are_refused() {
        for bad in [r"(a", r"(?=a)b", r"(a)\1", r"[^\x00-\x{10FFFF}]"] {
            assert!(Pattern::new(bad).is_err(), "{bad}");
        }
        assert!(Pattern::new(&"a".repeat(MAX_REGEX_BYTES + 1)).unwrap_err().contains("more than"));
        let e = Pattern::new(r"\w{200}[0-9a-f]{30}\w{200}").unwrap_err();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn the_mask_keeps_tokens_that_can_still_match_and_ends_only_on_a_match() {
        // tokens: 0 "1", 1 "12", 2 "-", 3 "a", 4 "ab", 5 "x", 6 "1-", 7 "" (special), 8 end
        let v = vocab(&["1", "12", "-", "a", "ab", "x", "1-", "", "</s>"]);
        let c = RegexConstraint::new(Arc::new(Pattern::new(r"[0-9]{2}-a+").unwrap()), v);
        let end = [8u32];
        let run = |gen: &[u32]| {
            let mut l = vec![0f32; 9];
            c.mask(gen, &end, &mut l);
            (0..9).filter(|&t| l[t] > f32::NEG_INFINITY).collect::<Vec<usize>>()
        };
        assert_eq!(run(&[]), vec![0, 1]); // "1" and "12" ("1-" would leave: one digit)
        assert_eq!(run(&[0]), vec![0, 6]); // "1" then "1" or "1-"
        assert_eq!(run(&[1]), vec![2]); // "12" then "-"
        assert_eq!(run(&[1, 2]), vec![3]); // "12-" then "a" ("ab" leaves)
        assert_eq!(run(&[1, 2, 3]), vec![3, 8]); // "12-a": more a's or the end
    }

    #[test]
    fn every_masked_walk_ends_in_a_match() {
        // A random walk under the mask, always ending with the end token when it is allowed and a coin says so:
        // each finished text matches (the `regex` crate's full match as the reference).
        let toks = ["a", "b", "ab", "ba", "0", "1", "01", "-", "--", "z", "</s>"];
        let v = vocab(&toks);
        let pat = r"(ab|ba)+-[01]{2,4}";
        let c = RegexConstraint::new(Arc::new(Pattern::new(pat).unwrap()), v);
        let re = regex::Regex::new(&format!("^(?:{pat})$")).unwrap();
        let mut rng = crate::util::SplitMix64(65);
        for _ in 0..200 {
            let text = masked_walk(&c, &toks, 10, &mut rng);
            assert!(re.is_match(&text), "{text}");
        }
    }
}
