//! Continuous batching: which sequences run in the next step and with how many tokens.
//!
//! Every step the scheduler (1) gives each running sequence that is decoding its one token,
//! (2) continues running prefills in chunks, and (3) admits waiting sequences first come, first
//! served, all within `max_num_batched_tokens` tokens and `max_num_seqs` sequences. A long prompt
//! is split into chunks, so it never stalls the running decodes for more than one step.
//!
//! It owns the sequences and their KV blocks ([`BlockManager`]) and knows nothing of HTTP or of
//! kernels: the engine turns a [`Plan`] into a [`PagedBackend`](crate::backend::paged::PagedBackend)
//! step and feeds the sampled tokens back through [`Scheduler::update`].
//!
//! When the pool runs out of blocks, the newest running sequence is preempted: its blocks are
//! freed and it goes back to the front of the queue with everything it generated so far, to be
//! recomputed (its full blocks usually come straight back from the prefix cache).
use super::block_manager::{BlockHash, BlockManager};
use crate::backend::paged::{LogitShaping, NextSeq, PagedSeq, PromptScore, TokenSampling, BLOCK_SIZE};
use std::collections::VecDeque;

pub type SeqId = u64;

/// Scheduler limits.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub max_num_seqs: usize,
    pub max_num_batched_tokens: usize,
    /// Longest prompt + output a sequence may reach.
    pub max_model_len: usize,
    pub num_blocks: usize,
    pub prefix_caching: bool,
    /// Most prefill tokens in a step that also decodes (None: only `max_num_batched_tokens`), so
    /// arriving prompts are spread over steps that stay close to a decode step's cost
    /// (TRTFORGE_SERVE_PREFILL_CAP).
    pub max_prefill_with_decodes: Option<usize>,
}

/// What a new sequence asks for.
#[derive(Debug, Clone)]
pub struct SeqRequest {
    pub prompt: Vec<u32>,
    pub sampling: TokenSampling,
    /// New tokens at most (>= 1).
    pub max_tokens: usize,
    /// Tokens that end the sequence (not included in the output).
    pub stop_ids: Vec<u32>,
    /// `Some(n)`: the prompt's log-probabilities (each token after the first, with the `n` most likely
    /// alternatives), computed once as the prompt is prefilled; such a prompt is not taken from the prefix cache.
    pub prompt_logprobs: Option<u8>,
    /// `logit_bias` and the presence / frequency penalties, if any.
    pub shaping: Option<LogitShaping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token (or, decided by the caller, a stop string).
    Stop,
    /// `max_tokens` or the model length reached.
    Length,
}

/// One sampled token of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqEvent {
    pub id: SeqId,
    /// The new token; None when the sequence ended on a stop token.
    pub token: Option<u32>,
    pub finished: Option<FinishReason>,
}

#[derive(Debug)]
struct Sequence {
    id: SeqId,
    tokens: Vec<u32>, // prompt + generated
    prompt_len: usize,
    /// Tokens whose K/V are in the cache.
    computed: usize,
    table: Vec<i32>, // block ids, in position order
    /// Leading blocks registered in the prefix cache, and the hash of the last of them.
    hashed: usize,
    last_hash: BlockHash,
    sampling: TokenSampling,
    max_tokens: usize,
    stop_ids: Vec<u32>,
    prompt_logprobs: Option<u8>,
    shaping: Option<LogitShaping>,
    /// First prompt position whose log-probability is not computed yet (position 0 has none; a
    /// recomputed prefill after preemption does not score a position twice).
    scored: usize,
}

impl Sequence {
    fn generated(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    /// Prompt positions `lo ..= hi` that a chunk at `start` of `n` tokens scores (row `q - 1 - start`
    /// scores position `q`), if any.
    fn score_range(&self, start: usize, n: usize) -> Option<(usize, usize)> {
        self.prompt_logprobs?;
        let lo = self.scored.max(start + 1);
        let hi = (start + n).min(self.prompt_len.saturating_sub(1));
        (lo <= hi).then_some((lo, hi))
    }

    /// Whether the prompt still has positions to score: then its prefix is recomputed, not reused.
    fn scoring(&self) -> bool {
        self.prompt_logprobs.is_some() && self.scored < self.prompt_len
    }
}

/// One sequence's part of a step: `tokens[start .. start + n]` of it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub id: SeqId,
    pub start: usize,
    pub n: usize,
    /// The chunk reaches the end of the known tokens: a token is sampled after it.
    pub sample: bool,
}

/// The sequences of one step, in the order the backend sees them.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn num_tokens(&self) -> usize {
        self.entries.iter().map(|e| e.n).sum()
    }
}

/// Counters for /metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedulerCounters {
    pub preemptions: u64,
    pub prefix_hit_tokens: u64,
    pub prompt_tokens_computed: u64,
}

pub struct Scheduler {
    cfg: SchedulerConfig,
    bm: BlockManager,
    waiting: VecDeque<Sequence>,
    running: Vec<Sequence>, // in admission order: the last is the newest
    pub counters: SchedulerCounters,
}

/// Why a request cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddError {
    EmptyPrompt,
    TooLong { prompt: usize, max_tokens: usize, max_model_len: usize },
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::EmptyPrompt => write!(f, "the prompt is empty"),
            AddError::TooLong { prompt, max_tokens, max_model_len } => write!(
                f,
                "this model's maximum context length is {max_model_len} tokens, but {prompt} prompt tokens + {max_tokens} max_tokens were requested"
            ),
        }
    }
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig) -> Self {
        let bm = BlockManager::new(cfg.num_blocks, cfg.prefix_caching);
        Scheduler { cfg, bm, waiting: VecDeque::new(), running: Vec::new(), counters: SchedulerCounters::default() }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }
    pub fn num_running(&self) -> usize {
        self.running.len()
    }
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }
    /// True while the sequence is in the running batch.
    pub fn is_running(&self, id: SeqId) -> bool {
        self.running.iter().any(|s| s.id == id)
    }
    pub fn has_work(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty()
    }
    pub fn blocks(&self) -> &BlockManager {
        &self.bm
    }

    /// Queues a sequence. Its whole length must fit the model (and therefore the pool).
    pub fn add(&mut self, id: SeqId, r: SeqRequest) -> Result<(), AddError> {
        if r.prompt.is_empty() {
            return Err(AddError::EmptyPrompt);
        }
        let max_tokens = r.max_tokens.max(1);
        if r.prompt.len() + max_tokens > self.cfg.max_model_len {
            return Err(AddError::TooLong {
                prompt: r.prompt.len(),
                max_tokens,
                max_model_len: self.cfg.max_model_len,
            });
        }
        self.waiting.push_back(Sequence {
            id,
            prompt_len: r.prompt.len(),
            tokens: r.prompt,
            computed: 0,
            table: Vec::new(),
            hashed: 0,
            last_hash: 0,
            sampling: r.sampling,
            max_tokens,
            stop_ids: r.stop_ids,
            prompt_logprobs: r.prompt_logprobs,
            shaping: r.shaping,
            scored: 1,
        });
        Ok(())
    }

    /// Removes a sequence wherever it is and frees its blocks at once. False if unknown.
    pub fn abort(&mut self, id: SeqId) -> bool {
        if let Some(i) = self.running.iter().position(|s| s.id == id) {
            let s = self.running.remove(i);
            self.free_blocks(&s.table);
            return true;
        }
        if let Some(i) = self.waiting.iter().position(|s| s.id == id) {
            if let Some(s) = self.waiting.remove(i) {
                self.free_blocks(&s.table);
            }
            return true;
        }
        false
    }

    fn free_blocks(&mut self, table: &[i32]) {
        // Tail first, so the prefix blocks stay cached longest.
        for &b in table.iter().rev() {
            self.bm.release(b as u32);
        }
    }

    fn preempt(&mut self, idx: usize, plan: &mut Plan, budget: &mut usize) {
        let mut s = self.running.remove(idx);
        if let Some(i) = plan.entries.iter().position(|e| e.id == s.id) {
            *budget += plan.entries.remove(i).n;
        }
        self.free_blocks(&s.table);
        s.table.clear();
        s.computed = 0;
        s.hashed = 0;
        s.last_hash = 0;
        self.counters.preemptions += 1;
        self.waiting.push_front(s);
    }

    /// Blocks sequence `s` needs to hold `computed + n` tokens.
    fn blocks_needed(s: &Sequence, n: usize) -> usize {
        (s.computed + n).div_ceil(BLOCK_SIZE).saturating_sub(s.table.len())
    }

    /// Tokens a prefill chunk may still take in `plan`: the step's budget, capped by
    /// `max_prefill_with_decodes` (less the prefill already planned) when the step decodes.
    fn prefill_room(&self, plan: &Plan, budget: usize) -> usize {
        let Some(cap) = self.cfg.max_prefill_with_decodes else { return budget };
        let decodes = plan.entries.iter().filter(|e| e.n == 1 && e.start + 1 == self.len_of(e.id)).count();
        if decodes == 0 {
            return budget;
        }
        let prefill: usize = plan.entries.iter().map(|e| e.n).sum::<usize>() - decodes;
        budget.min(cap.saturating_sub(prefill))
    }

    fn len_of(&self, id: SeqId) -> usize {
        self.running.iter().find(|s| s.id == id).map_or(0, |s| s.tokens.len())
    }

    /// Chooses the next step. Empty when there is nothing to run.
    pub fn schedule(&mut self) -> Plan {
        let mut plan = Plan::default();
        let mut budget = self.cfg.max_num_batched_tokens;
        // Running sequences: decodes first, then prefill chunks, each in admission order.
        for decode_phase in [true, false] {
            let mut i = 0;
            while i < self.running.len() {
                let s = &self.running[i];
                let remaining = s.tokens.len() - s.computed;
                if (remaining == 1) != decode_phase || plan.entries.iter().any(|e| e.id == s.id) {
                    i += 1;
                    continue;
                }
                let n = remaining.min(if decode_phase { budget } else { self.prefill_room(&plan, budget) });
                if n == 0 {
                    break;
                }
                // Make room, preempting the newest running sequence (possibly this one).
                let mut preempted_self = false;
                while self.bm.num_free() < Self::blocks_needed(&self.running[i], n) {
                    let victim = self.running.len() - 1;
                    self.preempt(victim, &mut plan, &mut budget);
                    if victim == i {
                        preempted_self = true;
                        break;
                    }
                }
                if preempted_self {
                    break; // every newer sequence is gone too
                }
                let s = &mut self.running[i];
                for _ in 0..Self::blocks_needed(s, n) {
                    let b = self.bm.allocate().expect("free blocks were counted");
                    s.table.push(b as i32);
                }
                let sample = s.computed + n == s.tokens.len();
                plan.entries.push(PlanEntry { id: s.id, start: s.computed, n, sample });
                budget -= n;
                i += 1;
            }
        }
        // Admit waiting sequences, first come first served.
        while self.prefill_room(&plan, budget) > 0 && self.running.len() < self.cfg.max_num_seqs {
            let Some(mut s) = self.waiting.pop_front() else { break };
            if s.table.is_empty() && s.computed == 0 && !s.scoring() {
                // Reuse cached full blocks of the prefix; the last token is always computed.
                let (blocks, h) = self.bm.match_prefix(&s.tokens[..s.tokens.len() - 1]);
                s.computed = blocks.len() * BLOCK_SIZE;
                s.hashed = blocks.len();
                s.last_hash = h;
                s.table = blocks.iter().map(|&b| b as i32).collect();
            }
            let n = (s.tokens.len() - s.computed).min(self.prefill_room(&plan, budget));
            if self.bm.num_free() < Self::blocks_needed(&s, n) {
                // Not now: give the prefix blocks back (they stay cached) and keep the order.
                self.free_blocks(&s.table);
                s.table.clear();
                s.computed = 0;
                s.hashed = 0;
                s.last_hash = 0;
                self.waiting.push_front(s);
                break;
            }
            self.counters.prefix_hit_tokens += s.computed as u64;
            for _ in 0..Self::blocks_needed(&s, n) {
                let b = self.bm.allocate().expect("free blocks were counted");
                s.table.push(b as i32);
            }
            let sample = s.computed + n == s.tokens.len();
            plan.entries.push(PlanEntry { id: s.id, start: s.computed, n, sample });
            budget -= n;
            self.running.push(s);
        }
        plan
    }

    /// The backend's view of a plan: token slices and block tables borrowed from the sequences.
    pub fn paged_seqs(&self, plan: &Plan) -> Vec<PagedSeq<'_>> {
        plan.entries
            .iter()
            .filter_map(|e| {
                let s = self.running.iter().find(|s| s.id == e.id)?;
                let score = s.score_range(e.start, e.n).map(|(lo, hi)| PromptScore {
                    from_row: lo - 1 - e.start,
                    targets: &s.tokens[lo..=hi],
                    top: s.prompt_logprobs.unwrap_or(0),
                });
                Some(PagedSeq {
                    tokens: &s.tokens[e.start..e.start + e.n],
                    start: e.start,
                    block_table: &s.table,
                    sample: e.sample.then_some(s.sampling),
                    score,
                    shaping: s.shaping.as_ref().map(|x| x.view(&s.tokens[..s.prompt_len], &s.tokens[s.prompt_len..])),
                })
            })
            .collect()
    }

    /// The decode step after `plan` while `plan` is still in flight (its tokens unknown): the same
    /// sequences in the same order, one position further, fed the tokens `plan` samples (the
    /// backend keeps them: [`PagedBackend::launch_next`](crate::backend::paged::PagedBackend::launch_next)).
    /// Only when nothing could change that batch: every running sequence decodes in `plan`, none
    /// reaches its length limit there, no waiting sequence could be admitted, and the pool has the
    /// blocks (no preemption). Allocates them. A sequence that `plan` ends with a stop token is
    /// removed by [`update`](Self::update) as usual and its token of this step is dropped.
    pub fn plan_next(&mut self, plan: &Plan) -> Option<Plan> {
        if plan.entries.len() != self.running.len() || plan.is_empty() {
            return None;
        }
        // A sequence whose logits depend on its latest token (penalties) cannot be fed a token the host has not seen.
        if self.running.iter().any(|s| s.shaping.is_some()) {
            return None;
        }
        if !self.waiting.is_empty() && self.running.len() < self.cfg.max_num_seqs {
            return None;
        }
        let mut need = 0;
        for (e, s) in plan.entries.iter().zip(&self.running) {
            let decode = e.n == 1 && e.sample && s.computed == e.start && e.start + 1 == s.tokens.len();
            if s.id != e.id || !decode {
                return None;
            }
            // After `plan`: one more token, and the new step writes position e.start + 1.
            if s.generated() + 1 >= s.max_tokens || s.tokens.len() + 1 >= self.cfg.max_model_len {
                return None;
            }
            need += (e.start + 2).div_ceil(BLOCK_SIZE).saturating_sub(s.table.len());
        }
        if self.bm.num_free() < need {
            return None;
        }
        let mut next = Plan::default();
        for (e, s) in plan.entries.iter().zip(self.running.iter_mut()) {
            for _ in 0..(e.start + 2).div_ceil(BLOCK_SIZE).saturating_sub(s.table.len()) {
                let b = self.bm.allocate().expect("free blocks were counted");
                s.table.push(b as i32);
            }
            next.entries.push(PlanEntry { id: e.id, start: e.start + 1, n: 1, sample: true });
        }
        Some(next)
    }

    /// The backend's view of a [`plan_next`](Self::plan_next) plan.
    pub fn next_seqs(&self, plan: &Plan) -> Vec<NextSeq<'_>> {
        plan.entries
            .iter()
            .filter_map(|e| {
                let s = self.running.iter().find(|s| s.id == e.id)?;
                Some(NextSeq { start: e.start, block_table: &s.table, sample: s.sampling })
            })
            .collect()
    }

    /// Applies a finished step: `sampled` has one token per entry with `sample`, in plan order.
    /// Finished sequences are removed and their blocks freed.
    pub fn update(&mut self, plan: &Plan, sampled: &[u32]) -> Vec<SeqEvent> {
        let mut events = Vec::new();
        let mut next = sampled.iter();
        let max_len = self.cfg.max_model_len;
        for e in &plan.entries {
            let Some(i) = self.running.iter().position(|s| s.id == e.id) else {
                if e.sample {
                    next.next();
                }
                continue;
            };
            let s = &mut self.running[i];
            if let Some((_, hi)) = s.score_range(e.start, e.n) {
                s.scored = hi + 1;
            }
            s.computed = e.start + e.n;
            // Register the blocks this step filled.
            let mut reg = Vec::new();
            while s.hashed < s.computed / BLOCK_SIZE {
                let b = s.hashed;
                reg.push((s.table[b] as u32, b));
                s.hashed += 1;
            }
            for (blk, b) in reg {
                let s = &self.running[i];
                let h = self.bm.register(blk, s.last_hash, &s.tokens[b * BLOCK_SIZE..(b + 1) * BLOCK_SIZE]);
                self.running[i].last_hash = h;
            }
            if e.start < self.running[i].prompt_len {
                self.counters.prompt_tokens_computed +=
                    (self.running[i].prompt_len.min(e.start + e.n) - e.start) as u64;
            }
            if !e.sample {
                continue;
            }
            let Some(&tok) = next.next() else { break };
            let s = &mut self.running[i];
            let finished = if s.stop_ids.contains(&tok) {
                events.push(SeqEvent { id: s.id, token: None, finished: Some(FinishReason::Stop) });
                true
            } else {
                s.tokens.push(tok);
                let done = s.generated() >= s.max_tokens || s.tokens.len() >= max_len;
                let finished = done.then_some(FinishReason::Length);
                events.push(SeqEvent { id: s.id, token: Some(tok), finished });
                done
            };
            if finished {
                let id = s.id;
                self.abort(id);
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::paged::{block_bytes, CpuPagedBackend, PagedBackend};
    use crate::backend::sampling::TokenLogprobs;
    use crate::model::{LlamaConfig, ModelWeights};
    use std::collections::HashMap;
    use std::sync::Arc;

    fn backend(blocks: usize) -> CpuPagedBackend {
        let mut c = LlamaConfig::preset("tiny").unwrap();
        c.max_position_embeddings = 512;
        let w = Arc::new(ModelWeights::random(c, 3).unwrap());
        let bytes = block_bytes(&w.config, 4) as u64 * blocks as u64;
        CpuPagedBackend::new(w, bytes).unwrap()
    }

    fn cfg(b: &CpuPagedBackend, seqs: usize, tokens: usize) -> SchedulerConfig {
        SchedulerConfig {
            max_num_seqs: seqs,
            max_num_batched_tokens: tokens,
            max_model_len: b.max_model_len(),
            num_blocks: b.num_blocks(),
            prefix_caching: true,
            max_prefill_with_decodes: None,
        }
    }

    #[test]
    fn prefill_is_capped_while_decoding() {
        let mut b = backend(64);
        let mut s = Scheduler::new(SchedulerConfig { max_prefill_with_decodes: Some(8), ..cfg(&b, 8, 64) });
        s.add(0, req(prompt(0, 5), 30)).unwrap();
        let plan = s.schedule(); // no decodes yet: the whole prompt
        assert_eq!(plan.num_tokens(), 5);
        s.update(&plan, &b.step(&s.paged_seqs(&plan)).unwrap());
        s.add(1, req(prompt(1, 20), 4)).unwrap();
        s.add(2, req(prompt(2, 20), 4)).unwrap();
        let plan = s.schedule(); // one decode + at most 8 prefill tokens
        assert_eq!(plan.entries.len(), 2);
        assert_eq!((plan.entries[0].n, plan.entries[1].n), (1, 8));
        s.update(&plan, &b.step(&s.paged_seqs(&plan)).unwrap());
        let plan = s.schedule();
        assert_eq!(plan.num_tokens(), 1 + 8);
        s.update(&plan, &b.step(&s.paged_seqs(&plan)).unwrap());
        let together = drive(&mut s, &mut b);
        assert_eq!(together.len(), 3);
    }

    fn prompt(i: usize, len: usize) -> Vec<u32> {
        (0..len).map(|j| ((i * 31 + j * 7) % 250) as u32 + 2).collect()
    }

    fn req(p: Vec<u32>, max_tokens: usize) -> SeqRequest {
        SeqRequest {
            prompt: p,
            sampling: TokenSampling::GREEDY,
            max_tokens,
            stop_ids: vec![],
            prompt_logprobs: None,
            shaping: None,
        }
    }

    /// Runs until every sequence finishes; returns each one's generated tokens.
    fn drive(s: &mut Scheduler, b: &mut CpuPagedBackend) -> HashMap<SeqId, Vec<u32>> {
        let mut out: HashMap<SeqId, Vec<u32>> = HashMap::new();
        let mut steps = 0;
        while s.has_work() {
            let plan = s.schedule();
            assert!(!plan.is_empty(), "scheduler stalled with work queued");
            assert!(plan.num_tokens() <= s.cfg.max_num_batched_tokens);
            let sampled = b.step(&s.paged_seqs(&plan)).unwrap();
            for e in s.update(&plan, &sampled) {
                if let Some(t) = e.token {
                    out.entry(e.id).or_default().push(t);
                }
            }
            steps += 1;
            assert!(steps < 10_000);
        }
        assert_eq!(s.blocks().num_used(), 0, "blocks leaked");
        out
    }

    #[test]
    fn batched_equals_alone_with_chunking_prefix_reuse_and_preemption() {
        let lens = [3usize, 40, 17, 64, 5, 33, 90, 16];
        // Alone: a big pool, one sequence at a time, whole prompts.
        let mut b = backend(64);
        let mut alone = HashMap::new();
        for (i, &l) in lens.iter().enumerate() {
            let mut s = Scheduler::new(SchedulerConfig { prefix_caching: false, ..cfg(&b, 1, 4096) });
            s.add(i as u64, req(prompt(i, l), 20)).unwrap();
            alone.extend(drive(&mut s, &mut b));
        }
        // Together, through small chunks and a pool too small for all of them at once (forces
        // preemption), with prefix caching on.
        let mut b = backend(14);
        let mut s = Scheduler::new(cfg(&b, 8, 24));
        for (i, &l) in lens.iter().enumerate() {
            s.add(i as u64, req(prompt(i, l), 20)).unwrap();
        }
        let together = drive(&mut s, &mut b);
        assert!(s.counters.preemptions > 0, "the test should exercise preemption");
        assert_eq!(together, alone);
    }

    /// Runs until every sequence finishes; returns each one's prompt log-probabilities, gathered as the
    /// engine does (`take_prompt_logprobs` after each step, by plan entry).
    fn drive_scored(s: &mut Scheduler, b: &mut CpuPagedBackend) -> HashMap<SeqId, Vec<TokenLogprobs>> {
        let mut out: HashMap<SeqId, Vec<TokenLogprobs>> = HashMap::new();
        while s.has_work() {
            let plan = s.schedule();
            let sampled = b.step(&s.paged_seqs(&plan)).unwrap();
            for (e, v) in plan.entries.iter().zip(b.take_prompt_logprobs()) {
                out.entry(e.id).or_default().extend(v);
            }
            s.update(&plan, &sampled);
        }
        assert_eq!(s.blocks().num_used(), 0, "blocks leaked");
        out
    }

    #[test]
    fn prompt_logprobs_once_each_in_chunks_with_prefix_reuse_and_preemption() {
        let lens = [3usize, 40, 17, 64, 5, 33, 90, 16, 40];
        let scored = |i: usize, l: usize| SeqRequest { prompt_logprobs: Some(3), ..req(prompt(i % 8, l), 20) };
        let mut b = backend(64);
        let mut alone = HashMap::new();
        for (i, &l) in lens.iter().enumerate() {
            let mut s = Scheduler::new(SchedulerConfig { prefix_caching: false, ..cfg(&b, 1, 4096) });
            s.add(i as u64, scored(i, l)).unwrap();
            alone.extend(drive_scored(&mut s, &mut b));
        }
        // Together: chunks of at most 24, a pool that forces preemption, prefix caching on (sequence 8
        // repeats sequence 0's prompt: a scored prompt is computed, not taken from the cache).
        let mut b = backend(14);
        let mut s = Scheduler::new(cfg(&b, 8, 24));
        for (i, &l) in lens.iter().enumerate() {
            s.add(i as u64, scored(i, l)).unwrap();
        }
        let together = drive_scored(&mut s, &mut b);
        assert!(s.counters.preemptions > 0, "the test should exercise preemption");
        for (i, &l) in lens.iter().enumerate() {
            let (a, t) = (&alone[&(i as u64)], &together[&(i as u64)]);
            let want: Vec<u32> = prompt(i % 8, l)[1..].to_vec();
            assert_eq!(a.iter().map(|x| x.token).collect::<Vec<_>>(), want, "sequence {i}: once per prompt token");
            assert_eq!(t.iter().map(|x| x.token).collect::<Vec<_>>(), want, "sequence {i}: once per prompt token");
            for (x, y) in a.iter().zip(t) {
                assert!((x.logprob - y.logprob).abs() < 1e-4 && x.top.len() == 3, "sequence {i}: {x:?} {y:?}");
            }
        }
    }

    /// The engine's loop with TRTFORGE_SERVE_AHEAD: a step in flight, the next decode step of the
    /// same batch queued behind it before its tokens are read. Returns the tokens and the number
    /// of steps queued that way.
    fn drive_ahead(
        s: &mut Scheduler,
        b: &mut CpuPagedBackend,
        stop_at: Option<u32>,
    ) -> (HashMap<SeqId, Vec<u32>>, usize) {
        let mut out: HashMap<SeqId, Vec<u32>> = HashMap::new();
        let mut inflight: Option<Plan> = None;
        let (mut steps, mut chained) = (0, 0);
        while s.has_work() || inflight.is_some() {
            let mut events = vec![];
            let mut queued = None;
            if let Some(plan) = inflight.take() {
                if let Some(next) = s.plan_next(&plan) {
                    if b.launch_next(&s.next_seqs(&next)).unwrap() {
                        queued = Some(next);
                        chained += 1;
                    }
                }
                events = s.update(&plan, &b.collect().unwrap());
            }
            if queued.is_some() {
                inflight = queued;
            } else {
                let plan = s.schedule();
                if !plan.is_empty() {
                    match b.launch(&s.paged_seqs(&plan)).unwrap() {
                        None => inflight = Some(plan),
                        Some(t) => events.extend(s.update(&plan, &t)),
                    }
                }
            }
            for e in events {
                if let Some(t) = e.token {
                    out.entry(e.id).or_default().push(t);
                    // A stop string seen by the engine: the sequence ends with its step behind it in flight.
                    if Some(t) == stop_at {
                        s.abort(e.id);
                    }
                }
            }
            steps += 1;
            assert!(steps < 10_000);
        }
        assert_eq!(s.blocks().num_used(), 0, "blocks leaked");
        (out, chained)
    }

    #[test]
    fn steps_queued_ahead_give_the_same_tokens() {
        let lens = [3usize, 40, 17, 64, 5, 33, 90, 16];
        let mut b = backend(64);
        let mut alone = HashMap::new();
        for (i, &l) in lens.iter().enumerate() {
            let mut s = Scheduler::new(SchedulerConfig { prefix_caching: false, ..cfg(&b, 1, 4096) });
            s.add(i as u64, req(prompt(i, l), 24 + i)).unwrap();
            alone.extend(drive(&mut s, &mut b));
        }
        // Different max_tokens end sequences at different steps; a waiting sequence (more than
        // max_num_seqs) and stop tokens interrupt the chains.
        let mut b = backend(40);
        let mut s = Scheduler::new(cfg(&b, 6, 64));
        for (i, &l) in lens.iter().enumerate() {
            s.add(i as u64, req(prompt(i, l), 24 + i)).unwrap();
        }
        let (together, chained) = drive_ahead(&mut s, &mut b, None);
        assert!(chained > 40, "steps should be queued ahead ({chained})");
        assert_eq!(together, alone);
        // Stop tokens: a sequence that stops keeps its output up to the stop token; the step
        // queued behind it is dropped and its blocks come back.
        let stop = alone[&3][5];
        let mut s = Scheduler::new(cfg(&b, 8, 512));
        for (i, &l) in lens.iter().enumerate() {
            s.add(i as u64, SeqRequest { stop_ids: vec![stop], ..req(prompt(i, l), 24 + i) }).unwrap();
        }
        let (got, _) = drive_ahead(&mut s, &mut b, None);
        for (id, toks) in &alone {
            let want: Vec<u32> = toks.iter().copied().take_while(|&t| t != stop).collect();
            assert_eq!(got.get(id).cloned().unwrap_or_default(), want, "sequence {id}");
        }
        // Aborted by the caller (stop string) while the next step is queued.
        let mut s = Scheduler::new(cfg(&b, 8, 512));
        for (i, &l) in lens.iter().enumerate() {
            s.add(i as u64, req(prompt(i, l), 24 + i)).unwrap();
        }
        let (got, _) = drive_ahead(&mut s, &mut b, Some(stop));
        for (id, toks) in &alone {
            let end = toks.iter().position(|&t| t == stop).map_or(toks.len(), |p| p + 1);
            assert_eq!(got[id], toks[..end].to_vec(), "sequence {id}");
        }
    }

    #[test]
    fn shared_prefix_is_reused() {
        let mut b = backend(32);
        let mut s = Scheduler::new(cfg(&b, 4, 512));
        let mut p1 = prompt(0, 48);
        s.add(1, req(p1.clone(), 4)).unwrap();
        let first = drive(&mut s, &mut b);
        p1.extend([7, 8, 9]);
        s.add(2, req(p1.clone(), 4)).unwrap();
        let plan = s.schedule();
        assert_eq!(plan.entries[0].start, 48, "three full blocks come from the cache");
        assert_eq!(s.counters.prefix_hit_tokens, 48);
        let sampled = b.step(&s.paged_seqs(&plan)).unwrap();
        s.update(&plan, &sampled);
        s.abort(2);
        assert_eq!(s.blocks().num_used(), 0);
        // The same prompt again gives the same tokens from cached blocks.
        s.add(3, req(prompt(0, 48), 4)).unwrap();
        assert_eq!(drive(&mut s, &mut b)[&3], first[&1]);
    }

    #[test]
    fn limits_stop_tokens_and_abort() {
        let mut b = backend(8);
        let mut s = Scheduler::new(cfg(&b, 2, 8));
        assert_eq!(s.add(0, req(vec![], 1)), Err(AddError::EmptyPrompt));
        assert!(matches!(s.add(0, req(prompt(0, 120), 10)), Err(AddError::TooLong { .. })));
        for i in 0..4 {
            s.add(i, req(prompt(i as usize, 10), 30)).unwrap();
        }
        let plan = s.schedule();
        assert!(plan.entries.len() <= 2 && plan.num_tokens() <= 8);
        let sampled = b.step(&s.paged_seqs(&plan)).unwrap();
        s.update(&plan, &sampled);
        for i in 0..4 {
            s.abort(i);
        }
        assert!(!s.has_work());
        assert_eq!(s.blocks().num_used(), 0);
        // A stop token ends a sequence without being part of its output.
        let first = {
            s.add(9, req(prompt(1, 5), 3)).unwrap();
            drive(&mut s, &mut b)[&9].clone()
        };
        s.add(10, SeqRequest { stop_ids: vec![first[1]], ..req(prompt(1, 5), 3) }).unwrap();
        let got = drive(&mut s, &mut b);
        assert_eq!(got[&10], first[..1].to_vec());
    }
}
