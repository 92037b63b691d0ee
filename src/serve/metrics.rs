//! Server metrics in the Prometheus text exposition format (hand-written: a handful of counters,
//! gauges and histograms do not need a metrics crate).
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latency buckets in seconds (upper bounds), shared by TTFT, ITL and end-to-end histograms.
const BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Window of the tokens/s gauge.
const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>, // (BUCKETS) non-cumulative
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        if let Some(i) = BUCKETS.iter().position(|&b| v <= b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// Everything /metrics shows. Updated by the engine thread after each step and by the HTTP layer.
#[derive(Debug, Default)]
pub struct MetricsState {
    /// Requests by final outcome: "stop", "length", "abort", "error", plus rejected ones
    /// ("rejected_overload", "rejected_invalid").
    pub requests: BTreeMap<&'static str, u64>,
    pub running: usize,
    /// Most sequences ever running at once, and most KV blocks ever held (admission capacity).
    pub running_max: usize,
    pub kv_blocks_used_max: usize,
    pub waiting: usize,
    pub kv_blocks_used: usize,
    pub kv_blocks_total: usize,
    pub kv_blocks_cached: usize,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    pub prefix_hit_tokens: u64,
    pub preemptions: u64,
    pub steps: u64,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub e2e: Histogram,
    recent: VecDeque<(Instant, u64)>, // (step end, tokens generated)
}

impl MetricsState {
    pub fn count_request(&mut self, outcome: &'static str) {
        *self.requests.entry(outcome).or_default() += 1;
    }
    pub fn record_step_tokens(&mut self, now: Instant, n: u64) {
        self.recent.push_back((now, n));
        while self.recent.front().is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW) {
            self.recent.pop_front();
        }
    }
    /// Generated tokens per second over the last 10 s.
    pub fn tokens_per_second(&self, now: Instant) -> f64 {
        let n: u64 = self.recent.iter().filter(|(t, _)| now.duration_since(*t) <= RATE_WINDOW).map(|(_, n)| n).sum();
        n as f64 / RATE_WINDOW.as_secs_f64()
    }

    pub fn render(&self, now: Instant) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# HELP trtforge_requests_total Finished or rejected requests by outcome.");
        let _ = writeln!(o, "# TYPE trtforge_requests_total counter");
        for k in ["stop", "length", "abort", "error", "rejected_overload", "rejected_invalid"] {
            let _ = writeln!(
                o,
                "trtforge_requests_total{{outcome=\"{k}\"}} {}",
                self.requests.get(k).copied().unwrap_or(0)
            );
        }
        let gauges: [(&str, &str, f64); 9] = [
            ("trtforge_num_requests_running", "Sequences in the running batch.", self.running as f64),
            (
                "trtforge_num_requests_running_max",
                "Most sequences in the running batch at once since the server started.",
                self.running_max as f64,
            ),
            (
                "trtforge_kv_blocks_used_max",
                "Most KV cache blocks held by sequences at once since the server started.",
                self.kv_blocks_used_max as f64,
            ),
            ("trtforge_num_requests_waiting", "Sequences queued for admission.", self.waiting as f64),
            ("trtforge_kv_blocks_used", "KV cache blocks held by sequences.", self.kv_blocks_used as f64),
            ("trtforge_kv_blocks_total", "KV cache blocks in the pool.", self.kv_blocks_total as f64),
            (
                "trtforge_kv_blocks_cached",
                "Free KV blocks still holding a reusable prefix.",
                self.kv_blocks_cached as f64,
            ),
            (
                "trtforge_kv_cache_usage_ratio",
                "Fraction of KV blocks in use.",
                self.kv_blocks_used as f64 / self.kv_blocks_total.max(1) as f64,
            ),
            (
                "trtforge_generation_tokens_per_second",
                "Generated tokens per second over the last 10 s.",
                self.tokens_per_second(now),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters: [(&str, &str, u64); 5] = [
            (
                "trtforge_prompt_tokens_total",
                "Prompt tokens computed (prefix-cache hits excluded).",
                self.prompt_tokens,
            ),
            ("trtforge_generation_tokens_total", "Tokens generated.", self.generation_tokens),
            (
                "trtforge_prefix_cache_hit_tokens_total",
                "Prompt tokens served from cached KV blocks.",
                self.prefix_hit_tokens,
            ),
            ("trtforge_preemptions_total", "Sequences preempted for KV blocks (recomputed later).", self.preemptions),
            ("trtforge_engine_steps_total", "Batched forward steps.", self.steps),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        self.ttft.render(&mut o, "trtforge_time_to_first_token_seconds", "Arrival to first generated token.");
        self.itl.render(
            &mut o,
            "trtforge_inter_token_latency_seconds",
            "Time between consecutive tokens of a sequence.",
        );
        self.e2e.render(&mut o, "trtforge_e2e_request_latency_seconds", "Arrival to last token.");
        o
    }
}

pub type Metrics = Mutex<MetricsState>;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::default();
        for v in [0.0005, 0.02, 0.02, 100.0] {
            h.observe(v);
        }
        let mut s = String::new();
        h.render(&mut s, "x", "help");
        assert!(s.contains("x_bucket{le=\"0.001\"} 1\n"));
        assert!(s.contains("x_bucket{le=\"0.025\"} 3\n"));
        assert!(s.contains("x_bucket{le=\"60\"} 3\n"));
        assert!(s.contains("x_bucket{le=\"+Inf\"} 4\n"));
        assert!(s.contains("x_count 4\n"));
    }
}
