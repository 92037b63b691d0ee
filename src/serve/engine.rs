//! The engine thread: owns the paged backend and the scheduler, runs one batched step after
//! another, and turns sampled tokens into text deltas for each request.
//!
//! HTTP handlers talk to it through a channel of [`Command`]s and get [`Output`]s back on a
//! per-request channel. A request whose output channel is gone (client disconnected) is aborted
//! and its KV blocks are freed before the next step.
use super::metrics::Metrics;
use super::scheduler::{FinishReason, Scheduler, SchedulerConfig, SeqId, SeqRequest};
use crate::backend::paged::PagedBackend;
use crate::backend::sampling::TokenLogprobs;
use crate::model::tokenizer::{StreamDecoder, Tokenizer};
use crate::util::errln;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// How long the idle engine waits for a command before checking its deadlines again.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Why a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneReason {
    /// A stop token or stop string.
    Stop,
    /// `max_tokens` or the model length.
    Length,
    /// Cancelled by the server (shutdown).
    Abort,
}

impl DoneReason {
    /// OpenAI's `finish_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            DoneReason::Stop => "stop",
            DoneReason::Length => "length",
            DoneReason::Abort => "abort",
        }
    }
}

/// What a request receives, in order: one `Token` per generated token, then `Done` or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A generated token and the text it makes available (empty while a UTF-8 character or a
    /// possible stop string is incomplete).
    Token {
        id: u32,
        text: String,
        /// When the request asked (`TokenSampling::logprobs`): the log-probabilities of the tokens whose text
        /// `text` begins or completes (held back with it; those after a stop string are never sent).
        logprobs: Vec<GenLogprob>,
    },
    /// The prompt's log-probabilities (`SeqRequest::prompt_logprobs`), positions 1.. of the prompt: sent
    /// once, before the first `Token`.
    PromptLogprobs(Vec<TokenLogprobs>),
    /// The end: text still held back (and its tokens' log-probabilities), and usage counts
    /// (`completion_tokens` excludes a stop token).
    Done {
        reason: DoneReason,
        text: String,
        logprobs: Vec<GenLogprob>,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
    Error(String),
}

/// A generated token's log-probabilities with where its text lies in the generated text.
#[derive(Debug, Clone, PartialEq)]
pub struct GenLogprob {
    pub lp: TokenLogprobs,
    /// The text this token adds to the output in context (incremental decoding): "" for a token that only
    /// begins a character, the whole character for the one that completes it.
    pub piece: String,
    /// Characters of the generated text before this token's text (a character's first token: where it begins).
    pub offset: usize,
}

/// A request as the engine sees it: tokens in, sampling and stop settings.
#[derive(Debug, Clone)]
pub struct Submit {
    pub seq: SeqRequest,
    pub stop_strings: Vec<String>,
    /// Keep generating past the model's stop tokens (benchmarks: exact output lengths).
    pub ignore_eos: bool,
}

enum Command {
    Add {
        id: SeqId,
        req: Box<Submit>,
        out: UnboundedSender<Output>,
        arrival: Instant,
    },
    Abort(SeqId),
    /// Abort queued requests now and running ones at the deadline.
    Drain(Instant),
}

/// Handle to the engine thread, shared by the HTTP handlers.
pub struct Engine {
    tx: std::sync::Mutex<mpsc::Sender<Command>>,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    pub max_model_len: usize,
    pub tokenizer: &'static Tokenizer,
    pub backend_name: &'static str,
    /// Whether the backend returns log-probabilities (`PagedBackend::supports_logprobs`).
    pub logprobs: bool,
    /// Whether the backend applies `logit_bias` and penalties (`PagedBackend::supports_shaping`).
    pub shaping: bool,
    /// The model's vocabulary (logits per row).
    pub vocab_size: usize,
}

impl Engine {
    /// Starts the engine thread. `stop_ids` end every sequence (eos, `<|im_end|>`).
    pub fn start(
        backend: Box<dyn PagedBackend>,
        tokenizer: &'static Tokenizer,
        sched: SchedulerConfig,
        stop_ids: Vec<u32>,
    ) -> std::io::Result<Engine> {
        let (tx, rx) = mpsc::channel();
        let metrics = Arc::new(Metrics::default());
        let alive = Arc::new(AtomicBool::new(true));
        let max_model_len = sched.max_model_len;
        let backend_name = backend.name();
        let logprobs = backend.supports_logprobs();
        let shaping = backend.supports_shaping();
        let vocab_size = backend.config().vocab_size;
        {
            let mut m = metrics.lock().unwrap_or_else(|e| e.into_inner());
            m.kv_blocks_total = sched.num_blocks;
        }
        let mut worker = Worker {
            backend,
            sched: Scheduler::new(sched),
            tokenizer,
            stop_ids,
            active: HashMap::new(),
            metrics: metrics.clone(),
            drain_deadline: None,
            profile: std::env::var_os("TRTFORGE_SERVE_PROFILE").map(|_| StepProfile::new()),
            inflight: None,
            ahead: crate::backend::paged::ahead_requested(),
        };
        let alive2 = alive.clone();
        std::thread::Builder::new().name("trtforge-engine".into()).spawn(move || {
            struct Dead(Arc<AtomicBool>);
            impl Drop for Dead {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::SeqCst);
                }
            }
            let _dead = Dead(alive2);
            worker.run(rx);
        })?;
        Ok(Engine {
            tx: std::sync::Mutex::new(tx),
            next_id: AtomicU64::new(1),
            alive,
            metrics,
            max_model_len,
            tokenizer,
            backend_name,
            logprobs,
            shaping,
            vocab_size,
        })
    }

    /// True while the engine thread runs.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    fn send(&self, c: Command) -> bool {
        self.tx.lock().map(|tx| tx.send(c).is_ok()).unwrap_or(false)
    }

    /// Queues a request; outputs arrive on the returned channel. None when the engine is gone.
    pub fn submit(&self, req: Submit) -> Option<(SeqId, tokio::sync::mpsc::UnboundedReceiver<Output>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (out, rx) = tokio::sync::mpsc::unbounded_channel();
        self.send(Command::Add { id, req: Box::new(req), out, arrival: Instant::now() }).then_some((id, rx))
    }

    /// Cancels a request and frees its blocks (no-op if it already finished).
    pub fn abort(&self, id: SeqId) {
        self.send(Command::Abort(id));
    }

    /// Stops queued requests now; running ones may finish until `grace` has passed.
    pub fn drain(&self, grace: Duration) {
        self.send(Command::Drain(Instant::now() + grace));
    }
}

/// Where the engine thread's time goes (TRTFORGE_SERVE_PROFILE=1 prints it every 2 s).
struct StepProfile {
    since: Instant,
    steps: u64,
    seqs: u64,
    tokens: u64,
    busy: f64,
    schedule: f64,
    backend: f64,
    /// schedule + backend of the steps so far (the rest of step() is `after`).
    pre_after: f64,
    /// Steps queued behind the one in flight (TRTFORGE_SERVE_AHEAD).
    chained: u64,
}

impl StepProfile {
    fn new() -> Self {
        StepProfile {
            since: Instant::now(),
            steps: 0,
            seqs: 0,
            tokens: 0,
            busy: 0.0,
            schedule: 0.0,
            backend: 0.0,
            pre_after: 0.0,
            chained: 0,
        }
    }
}

/// Per-request state kept by the engine thread.
struct Active {
    out: UnboundedSender<Output>,
    detok: StreamDecoder<'static>,
    text: String,
    /// Bytes of `text` already sent.
    sent: usize,
    stop: Vec<String>,
    prompt_tokens: usize,
    completion_tokens: usize,
    arrival: Instant,
    last_token: Option<Instant>,
    /// Prompt log-probabilities gathered over the prompt's chunks, until all are there.
    prompt_lps: Vec<TokenLogprobs>,
    /// Characters in `text`.
    chars: usize,
    /// Log-probabilities of tokens whose text is not sent yet, with the byte of `text` where it begins.
    held_lps: VecDeque<(usize, GenLogprob)>,
}

impl Active {
    /// Appends decoded text; returns the part that can be sent and whether a stop string ended it.
    /// Text that could be the start of a stop string is held back until it cannot be (or `last`).
    fn push_text(&mut self, new: &str, last: bool) -> (String, bool) {
        self.text.push_str(new);
        let start = self.sent;
        // A stop string cannot begin in text already sent: that text was held back while it
        // could have been a stop string's beginning.
        if let Some(at) = self.stop.iter().filter_map(|s| self.text[start..].find(s.as_str())).min() {
            let end = start + at;
            self.text.truncate(end);
            self.sent = end;
            return (self.text[start..end].to_string(), true);
        }
        let end = if last { self.text.len() } else { self.text.len() - self.held_back() };
        self.sent = end.max(start);
        (self.text[start..self.sent].to_string(), false)
    }

    /// Appends a token's decoded `delta` (and its log-probabilities) and returns the text that can be
    /// sent with the log-probabilities of the tokens it covers, and whether a stop string ended it: a
    /// token's log-probabilities go out with the first text of its own; at a stop string, those of tokens
    /// wholly after it are dropped, as their text is.
    fn push_token(&mut self, delta: &str, lp: Option<TokenLogprobs>, last: bool) -> (String, Vec<GenLogprob>, bool) {
        let (start, offset) = (self.text.len(), self.chars);
        self.chars += delta.chars().count();
        if let Some(lp) = lp {
            self.held_lps.push_back((start, GenLogprob { lp, piece: delta.to_string(), offset }));
        }
        let (text, hit) = self.push_text(delta, last);
        let lps = self.release(last && !hit);
        if hit {
            self.held_lps.clear();
        }
        (text, lps, hit)
    }

    /// The held log-probabilities whose text has been sent (`all`: every one left, at the end).
    fn release(&mut self, all: bool) -> Vec<GenLogprob> {
        let mut out = Vec::new();
        while let Some((start, _)) = self.held_lps.front() {
            if !all && *start >= self.sent {
                break;
            }
            out.extend(self.held_lps.pop_front().map(|(_, g)| g));
        }
        out
    }

    /// Length of the longest tail of the unsent text that is a proper prefix of a stop string.
    fn held_back(&self) -> usize {
        let tail = &self.text[self.sent..];
        let mut best = 0;
        for s in &self.stop {
            for (i, _) in s.char_indices().skip(1) {
                if i > best && tail.ends_with(&s[..i]) {
                    best = i;
                }
            }
        }
        best
    }
}

struct Worker {
    backend: Box<dyn PagedBackend>,
    sched: Scheduler,
    tokenizer: &'static Tokenizer,
    stop_ids: Vec<u32>,
    active: HashMap<SeqId, Active>,
    metrics: Arc<Metrics>,
    drain_deadline: Option<Instant>,
    /// TRTFORGE_SERVE_PROFILE: per-step timing printed every 2 s.
    profile: Option<StepProfile>,
    /// The plan of the step the backend still computes (`PagedBackend::launch` returned None).
    inflight: Option<super::scheduler::Plan>,
    /// Queue the next decode step of an unchanged batch before waiting for the one in flight
    /// (`Scheduler::plan_next`, `PagedBackend::launch_next`; the default, TRTFORGE_SERVE_AHEAD=0
    /// turns it off).
    ahead: bool,
}

impl Worker {
    fn run(&mut self, rx: mpsc::Receiver<Command>) {
        loop {
            // Block only when idle; otherwise take what has arrived and step.
            if !self.sched.has_work() && self.inflight.is_none() {
                match rx.recv_timeout(IDLE_POLL) {
                    Ok(c) => self.handle(c),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(c) => self.handle(c),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.abort_all("the server is shutting down");
                        return;
                    }
                }
            }
            if self.drain_deadline.is_some_and(|d| Instant::now() >= d) {
                self.abort_all("");
            }
            self.step();
            self.publish();
        }
    }

    fn handle(&mut self, c: Command) {
        match c {
            Command::Add { id, req, out, arrival } => {
                if self.drain_deadline.is_some() {
                    let _ = out.send(Output::Error("the server is shutting down".into()));
                    return;
                }
                let prompt_tokens = req.seq.prompt.len();
                let mut seq = req.seq;
                for &t in self.stop_ids.iter().filter(|_| !req.ignore_eos) {
                    if !seq.stop_ids.contains(&t) {
                        seq.stop_ids.push(t);
                    }
                }
                // JSON mode and schemas end the choice with one of its stop tokens once the value is complete,
                // min_tokens masks them until then.
                if let Some(s) = seq.shaping.as_mut() {
                    if s.json.is_some() && seq.stop_ids.is_empty() {
                        let _ = out.send(Output::Error(
                            "a JSON 'response_format' needs a stop token to end the choice when its value is \
complete; this model's tokenizer has none: give 'stop_token_ids'"
                                .into(),
                        ));
                        return;
                    }
                    s.end = seq.stop_ids.clone();
                }
                if let Err(e) = self.sched.add(id, seq) {
                    let _ = out.send(Output::Error(e.to_string()));
                    return;
                }
                self.active.insert(
                    id,
                    Active {
                        out,
                        detok: self.tokenizer.stream_decoder(true),
                        text: String::new(),
                        sent: 0,
                        stop: req.stop_strings,
                        prompt_tokens,
                        completion_tokens: 0,
                        arrival,
                        last_token: None,
                        prompt_lps: Vec::new(),
                        chars: 0,
                        held_lps: VecDeque::new(),
                    },
                );
            }
            Command::Abort(id) => {
                if self.sched.abort(id) | self.active.remove(&id).is_some() {
                    self.lock_metrics().count_request("abort");
                }
            }
            Command::Drain(deadline) => {
                self.drain_deadline = Some(deadline);
                // Queued requests have produced nothing yet: end them now.
                let queued: Vec<SeqId> = self.active.keys().copied().filter(|id| !self.sched.is_running(*id)).collect();
                for id in queued {
                    self.finish_abort(id, "the server is shutting down");
                }
            }
        }
    }

    fn lock_metrics(&self) -> std::sync::MutexGuard<'_, super::metrics::MetricsState> {
        self.metrics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a request with `Done { Abort }` (or an error message when `msg` is not empty).
    fn finish_abort(&mut self, id: SeqId, msg: &str) {
        self.sched.abort(id);
        if let Some(a) = self.active.remove(&id) {
            let _ = a.out.send(if msg.is_empty() {
                Output::Done {
                    reason: DoneReason::Abort,
                    text: String::new(),
                    logprobs: Vec::new(),
                    prompt_tokens: a.prompt_tokens,
                    completion_tokens: a.completion_tokens,
                }
            } else {
                Output::Error(msg.to_string())
            });
            self.lock_metrics().count_request("abort");
        }
    }

    fn abort_all(&mut self, msg: &str) {
        let ids: Vec<SeqId> = self.active.keys().copied().collect();
        for id in ids {
            self.finish_abort(id, msg);
        }
    }

    /// Ends every request of a failed step with the backend's error.
    fn fail_plan(&mut self, plan: &super::scheduler::Plan, e: &crate::error::Error) {
        let msg = format!("the {} backend failed: {e}", self.backend.name());
        errln!("error: {msg}");
        for entry in &plan.entries {
            self.sched.abort(entry.id);
            if let Some(a) = self.active.remove(&entry.id) {
                let _ = a.out.send(Output::Error(msg.clone()));
                self.lock_metrics().count_request("error");
            }
        }
    }

    fn step(&mut self) {
        let t0 = Instant::now();
        let ran = self.step_inner();
        if let Some(p) = self.profile.as_mut() {
            if ran {
                p.steps += 1;
                p.busy += t0.elapsed().as_secs_f64();
            }
            if p.steps == 0 && p.since.elapsed() >= Duration::from_secs(2) {
                *p = StepProfile::new(); // idle: nothing to report
            } else if p.since.elapsed() >= Duration::from_secs(2) {
                let per = |s: f64| s * 1e6 / p.steps.max(1) as f64;
                let wall = p.since.elapsed().as_secs_f64();
                errln!(
                    "profile: {} steps in {wall:.2} s ({:.0} µs/step), {} queued ahead, {:.1} seqs and {:.1} tokens a step; per step: schedule {:.0} µs, backend {:.0} µs, after {:.0} µs, outside steps (idle, commands, metrics) {:.0} µs",
                    p.steps,
                    per(wall),
                    p.chained,
                    p.seqs as f64 / p.steps.max(1) as f64,
                    p.tokens as f64 / p.steps.max(1) as f64,
                    per(p.schedule),
                    per(p.backend),
                    per(p.busy - p.pre_after),
                    per(wall - p.busy),
                );
                if let Some(b) = self.backend.take_profile() {
                    errln!("profile: {b}");
                }
                *p = StepProfile::new();
            }
        }
    }

    /// One step; false when there was nothing to run.
    fn step_inner(&mut self) -> bool {
        let t0 = Instant::now();
        let mut events = Vec::new();
        // Log-probabilities of this step's tokens, per sequence in the order of its events.
        let mut lps: HashMap<SeqId, VecDeque<TokenLogprobs>> = HashMap::new();
        let mut ran = false;
        // The step left in flight (TRTFORGE_SERVE_OVERLAP): its tokens go to the scheduler before
        // the next step is planned. Sequences aborted meanwhile (stop string, client gone) are
        // skipped by `update`; their blocks are not reused before this point.
        let mut queued = None;
        if let Some(plan) = self.inflight.take() {
            ran = true;
            // The same batch one position further goes to the GPU before this step's tokens are
            // read, so the GPU never waits for the host between such steps.
            if self.ahead {
                if let Some(next) = self.sched.plan_next(&plan) {
                    let r = {
                        let seqs = self.sched.next_seqs(&next);
                        self.backend.launch_next(&seqs)
                    };
                    // Ok(false): not chained; the blocks it took stay with their sequences.
                    match r {
                        Ok(true) => queued = Some(next),
                        Ok(false) => {}
                        Err(e) => self.fail_plan(&next, &e),
                    }
                }
            }
            match self.backend.collect() {
                Ok(sampled) => {
                    self.take_logprobs(&plan, &mut lps);
                    self.send_prompt_logprobs(&plan);
                    events = self.sched.update(&plan, &sampled)
                }
                Err(e) => self.fail_plan(&plan, &e),
            }
        }
        let t1 = Instant::now();
        // Requests whose client went away are dropped before they cost another step.
        let gone: Vec<SeqId> = self.active.iter().filter(|(_, a)| a.out.is_closed()).map(|(id, _)| *id).collect();
        for id in gone {
            self.sched.abort(id);
            self.active.remove(&id);
            self.lock_metrics().count_request("abort");
        }
        let chained = queued.is_some();
        if let Some(next) = queued {
            if let Some(p) = self.profile.as_mut() {
                p.seqs += next.entries.len() as u64;
                p.tokens += next.num_tokens() as u64;
                p.chained += 1;
            }
            self.inflight = Some(next);
        }
        let plan = if chained { Default::default() } else { self.sched.schedule() };
        let t2 = Instant::now();
        let mut t3 = t2;
        if !plan.is_empty() {
            ran = true;
            let result = {
                let seqs = self.sched.paged_seqs(&plan);
                self.backend.launch(&seqs)
            };
            t3 = Instant::now();
            if let Some(p) = self.profile.as_mut() {
                p.seqs += plan.entries.len() as u64;
                p.tokens += plan.num_tokens() as u64;
            }
            match result {
                // In flight: this step's tokens are processed after the next launch.
                Ok(None) => self.inflight = Some(plan),
                Ok(Some(sampled)) => {
                    self.take_logprobs(&plan, &mut lps);
                    self.send_prompt_logprobs(&plan);
                    events.extend(self.sched.update(&plan, &sampled))
                }
                Err(e) => self.fail_plan(&plan, &e),
            }
        }
        if let Some(p) = self.profile.as_mut() {
            p.schedule += (t2 - t1).as_secs_f64();
            p.backend += (t1 - t0).as_secs_f64() + (t3 - t2).as_secs_f64();
            p.pre_after += (t3 - t0).as_secs_f64();
        }
        if !ran {
            return false;
        }
        let now = Instant::now();
        let mut new_tokens = 0u64;
        for ev in events {
            let Some(a) = self.active.get_mut(&ev.id) else { continue };
            let mut stopped = false;
            let mut sent_ok = true;
            if let Some(t) = ev.token {
                new_tokens += 1;
                a.completion_tokens += 1;
                {
                    let mut m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
                    match a.last_token {
                        None => m.ttft.observe(now.duration_since(a.arrival).as_secs_f64()),
                        Some(prev) => m.itl.observe(now.duration_since(prev).as_secs_f64()),
                    }
                }
                a.last_token = Some(now);
                let mut delta = a.detok.step(t).unwrap_or_default();
                let last = ev.finished.is_some();
                if last {
                    delta.push_str(&a.detok.finish().unwrap_or_default());
                }
                let lp = lps.get_mut(&ev.id).and_then(VecDeque::pop_front).filter(|l| l.token == t);
                let (text, logprobs, hit) = a.push_token(&delta, lp, last);
                stopped = hit;
                sent_ok = a.out.send(Output::Token { id: t, text, logprobs }).is_ok();
            }
            let reason = if stopped {
                Some(DoneReason::Stop)
            } else {
                match ev.finished {
                    Some(FinishReason::Stop) => Some(DoneReason::Stop),
                    Some(FinishReason::Length) => Some(DoneReason::Length),
                    None => None,
                }
            };
            if !sent_ok {
                self.sched.abort(ev.id);
                self.active.remove(&ev.id);
                self.lock_metrics().count_request("abort");
                continue;
            }
            if let Some(r) = reason {
                // Flush what the decoder held (a stop token ends the text here).
                let (rest, logprobs) = if ev.token.is_none() {
                    let tail = a.detok.finish().unwrap_or_default();
                    let (t, hit) = a.push_text(&tail, true);
                    (t, if hit { Vec::new() } else { a.release(true) })
                } else {
                    (String::new(), Vec::new())
                };
                let done = Output::Done {
                    reason: r,
                    text: rest,
                    logprobs,
                    prompt_tokens: a.prompt_tokens,
                    completion_tokens: a.completion_tokens,
                };
                let _ = a.out.send(done);
                let e2e = now.duration_since(a.arrival).as_secs_f64();
                self.sched.abort(ev.id); // no-op unless a stop string ended it
                self.active.remove(&ev.id);
                let mut m = self.lock_metrics();
                m.e2e.observe(e2e);
                m.count_request(r.as_str());
            }
        }
        let mut m = self.lock_metrics();
        m.steps += 1;
        m.generation_tokens += new_tokens;
        m.record_step_tokens(now, new_tokens);

        true
    }

    /// The backend's log-probabilities of the step of `plan` just collected, by sequence.
    fn take_logprobs(&mut self, plan: &super::scheduler::Plan, lps: &mut HashMap<SeqId, VecDeque<TokenLogprobs>>) {
        let got = self.backend.take_logprobs();
        for (e, l) in plan.entries.iter().filter(|e| e.sample).zip(got) {
            if let Some(l) = l {
                lps.entry(e.id).or_default().push_back(l);
            }
        }
    }

    /// Passes the prompt log-probabilities of the step of `plan` just returned to their requests; a
    /// prompt scored over several chunks sends them once, when the last of them is done.
    fn send_prompt_logprobs(&mut self, plan: &super::scheduler::Plan) {
        let got = self.backend.take_prompt_logprobs();
        for (e, v) in plan.entries.iter().zip(got) {
            if v.is_empty() {
                continue;
            }
            if let Some(a) = self.active.get_mut(&e.id) {
                a.prompt_lps.extend(v);
                if a.prompt_lps.len() + 1 >= a.prompt_tokens {
                    let _ = a.out.send(Output::PromptLogprobs(std::mem::take(&mut a.prompt_lps)));
                }
            }
        }
    }

    fn publish(&self) {
        let c = self.sched.counters;
        let bm = self.sched.blocks();
        let (used, cached) = (bm.num_used(), bm.num_cached_free());
        let mut m = self.lock_metrics();
        m.running = self.sched.num_running();
        m.running_max = m.running_max.max(m.running);
        m.waiting = self.sched.num_waiting();
        m.kv_blocks_used = used;
        m.kv_blocks_used_max = m.kv_blocks_used_max.max(used);
        m.kv_blocks_cached = cached;
        m.preemptions = c.preemptions;
        m.prefix_hit_tokens = c.prefix_hit_tokens;
        m.prompt_tokens = c.prompt_tokens_computed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(stop: &[&str]) -> Active {
        static TOK: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
        let tok = TOK.get_or_init(|| {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_tokenizer.json");
            Tokenizer::from_file(&p).unwrap()
        });
        let (out, _rx) = tokio::sync::mpsc::unbounded_channel();
        Active {
            out,
            detok: tok.stream_decoder(true),
            text: String::new(),
            sent: 0,
            stop: stop.iter().map(|s| s.to_string()).collect(),
            prompt_tokens: 0,
            completion_tokens: 0,
            arrival: Instant::now(),
            last_token: None,
            prompt_lps: Vec::new(),
            chars: 0,
            held_lps: VecDeque::new(),
        }
    }

    #[test]
    fn stop_strings_never_leak() {
        let mut a = active(&["END", "\n\n"]);
        assert_eq!(a.push_text("hello E", false), ("hello ".into(), false));
        assert_eq!(a.push_text("N", false), ("".into(), false));
        assert_eq!(a.push_text("X more", false), ("ENX more".into(), false));
        assert_eq!(a.push_text("\n", false), ("".into(), false));
        assert_eq!(a.push_text("\nafter", false), ("".into(), true));
        assert_eq!(a.text, "hello ENX more");
        let mut b = active(&["stop"]);
        assert_eq!(b.push_text("no st", true), ("no st".into(), false));
        let mut c = active(&["ab"]);
        assert_eq!(c.push_text("xxa", false), ("xx".into(), false));
        assert_eq!(c.push_text("bc", false), ("".into(), true));
        assert_eq!(c.text, "xx");
    }

    /// Log-probabilities travel with their tokens' text: held while it is held, dropped past a stop string;
    /// the tokens of one character (the first decodes to "") share its offset.
    #[test]
    fn token_logprobs_follow_their_text() {
        let lp = |t: u32| Some(TokenLogprobs { token: t, logprob: -(t as f32), top: Vec::new() });
        let got = |v: &[GenLogprob]| v.iter().map(|g| (g.lp.token, g.piece.clone(), g.offset)).collect::<Vec<_>>();
        let mut a = active(&["6, 7"]);
        let (t, l, hit) = a.push_token(" 5,", lp(1), false);
        assert_eq!((t.as_str(), got(&l), hit), (" 5,", vec![(1, " 5,".into(), 0)], false));
        // " 6" could begin the stop string: its text and log-probabilities wait.
        let (t, l, _) = a.push_token(" 6", lp(2), false);
        assert_eq!((t.as_str(), l.len()), (" ", 1)); // the space is sent, and the token it begins with it
        let (t, l, hit) = a.push_token(",", lp(3), false);
        assert_eq!((t.as_str(), l.len(), hit), ("", 0, false));
        let (t, l, hit) = a.push_token(" 7", lp(4), false);
        // The stop string began inside token 2's text (sent with it); tokens 3 and 4 lie wholly after it.
        assert_eq!((t.as_str(), l.len(), hit), ("", 0, true));
        assert_eq!(a.text, " 5, ");
        // A character in two tokens: the first adds "" and waits for the character; both carry its offset.
        let mut b = active(&[]);
        b.push_token("ab", lp(1), false);
        let (t, l, _) = b.push_token("", lp(2), false);
        assert_eq!((t.as_str(), l.len()), ("", 0));
        let (t, l, _) = b.push_token("🌟", lp(3), false);
        assert_eq!((t.as_str(), got(&l)), ("🌟", vec![(2, String::new(), 2), (3, "🌟".into(), 2)]));
        let (_, l, _) = b.push_token("c", lp(4), true);
        assert_eq!(got(&l), vec![(4, "c".into(), 3)]);
    }
}
