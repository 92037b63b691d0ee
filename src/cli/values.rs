//! Range checks for every numeric flag, run by clap at parse time: a bad value is a usage error
//! naming the flag (`invalid value '0' for '--ctx <CTX>': must be 2..=1048576`), before any work.
//! The bounds are the engine-independent ones; limits that depend on an engine are checked by the
//! command before it loads anything heavy.
use crate::engine_dir::config::{MAX_BATCH, MAX_SEQ};

/// Largest `--threads`: more threads than this only slows a 2-to-256-core machine down, and an
/// absurd count would spend minutes spawning them.
pub const MAX_THREADS: usize = 1024;
/// Largest `--runs` / `--warmup` / `--windows`.
pub const MAX_REPEATS: usize = 100_000;

fn int_in<T>(s: &str, lo: T, hi: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = s.trim().parse().map_err(|_| format!("expected a whole number in {lo}..={hi}"))?;
    if v < lo || v > hi {
        return Err(format!("must be {lo}..={hi}"));
    }
    Ok(v)
}

macro_rules! usize_range {
    ($($(#[$doc:meta])* $name:ident: $lo:expr, $hi:expr;)*) => {$(
        $(#[$doc])*
        pub fn $name(s: &str) -> Result<usize, String> {
            int_in(s, $lo, $hi)
        }
    )*};
}

usize_range! {
    /// `--threads`.
    threads: 1, MAX_THREADS;
    /// Token counts that may be zero (`--max-new-tokens`, `--top-k`).
    tokens0: 0, MAX_SEQ;
    /// Token counts of at least one (`--output-len`, `--input-lens`, `--quality-tokens`, ...).
    tokens1: 1, MAX_SEQ;
    /// A perplexity window (`--ctx`, `--eval-ctx`): at least two tokens, one predicting the next.
    window: 2, MAX_SEQ;
    /// Batch sizes.
    batch: 1, MAX_BATCH;
    /// `--runs`, `--windows`, `--eval-windows`.
    repeats1: 1, MAX_REPEATS;
    /// `--warmup`.
    repeats0: 0, MAX_REPEATS;
    /// `--group-size` of the CUDA int4 path (multiple of 32 checked by [`group_size`]).
    group_range: 1, 4096;
}

/// `--group-size`: a positive multiple of 32.
pub fn group_size(s: &str) -> Result<usize, String> {
    let g = group_range(s)?;
    if g % 32 != 0 {
        return Err("must be a positive multiple of 32 (32, 64 or 128)".into());
    }
    Ok(g)
}

fn float_in(s: &str, lo: f32, lo_open: bool, hi: f32) -> Result<f32, String> {
    let v: f32 = s.trim().parse().map_err(|_| "expected a number".to_string())?;
    let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
    if !ok {
        return Err(format!("must be {} {lo} and at most {hi}", if lo_open { "above" } else { "at least" }));
    }
    Ok(v)
}

/// `--temperature`: 0 (greedy) to 100.
pub fn temperature(s: &str) -> Result<f32, String> {
    float_in(s, 0.0, false, 100.0)
}

/// `--top-p`: (0, 1].
pub fn top_p(s: &str) -> Result<f32, String> {
    float_in(s, 0.0, true, 1.0)
}

/// `--repetition-penalty`: (0, 100].
pub fn penalty(s: &str) -> Result<f32, String> {
    float_in(s, 0.0, true, 100.0)
}

/// `--opt-level`: TensorRT builder optimization level.
pub fn opt_level(s: &str) -> Result<u8, String> {
    int_in(s, 0u8, 5u8)
}

/// `--trt-log`: a TensorRT message severity.
pub fn trt_log(s: &str) -> Result<String, String> {
    let l = s.trim().to_ascii_lowercase();
    if crate::engine_dir::config::LOG_LEVELS.contains(&l.as_str()) {
        Ok(l)
    } else {
        Err(format!("must be one of {}", crate::engine_dir::config::LOG_LEVELS.join(", ")))
    }
}

/// `--stop`: a non-empty string (an empty one would stop before the first token).
pub fn stop_string(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_string())
}

/// `--precision` of `--backend cuda --model`.
pub fn cuda_precision(s: &str) -> Result<String, String> {
    match s {
        "fp32" | "f32" | "fp16" | "f16" | "int8" | "int4" | "int4_rtn" | "int4_awq" | "fp8" => Ok(s.to_string()),
        _ => Err("must be fp32, fp16, int8, int4 or fp8".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(threads("0").is_err() && threads("100000").is_err() && threads("4") == Ok(4));
        assert!(tokens0("18446744073709551615").is_err() && tokens0("-1").is_err() && tokens0("0") == Ok(0));
        assert!(window("1").is_err() && window("2") == Ok(2));
        assert!(group_size("0").is_err() && group_size("48").is_err() && group_size("64") == Ok(64));
        for bad in ["-1", "nan", "inf", "101", "x"] {
            assert!(temperature(bad).is_err(), "{bad}");
        }
        assert!(top_p("0").is_err() && top_p("1.5").is_err() && top_p("1") == Ok(1.0));
        assert!(penalty("0").is_err() && penalty("1.1").is_ok());
        assert!(opt_level("9").is_err() && opt_level("5") == Ok(5));
        assert!(trt_log("loud").is_err() && trt_log("INFO") == Ok("info".into()));
        assert!(stop_string("").is_err());
    }
}
