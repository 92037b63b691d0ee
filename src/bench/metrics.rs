//! Small statistics and text-similarity helpers for benchmark reports.
use serde::{Deserialize, Serialize};

/// Median and spread of repeated measurements.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    pub fn of(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let mut v = xs.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        Some(Summary { median: percentile_sorted(&v, 50.0), min: v[0], max: v[v.len() - 1], n: v.len() })
    }
}

/// Inter-token latency distribution.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
}

impl Latency {
    pub fn of(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let mut v = xs.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        Some(Latency {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: percentile_sorted(&v, 50.0),
            p99: percentile_sorted(&v, 99.0),
        })
    }
}

/// Linear-interpolated percentile of sorted data.
pub fn percentile_sorted(v: &[f64], p: f64) -> f64 {
    if v.len() == 1 {
        return v[0];
    }
    let rank = p / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
}

/// Corpus BLEU-4 of candidate token sequences against one reference each, with the brevity
/// penalty and add-one smoothing of the n > 1 precisions (Lin & Och 2004), in [0, 100].
pub fn bleu(candidates: &[Vec<String>], references: &[Vec<String>]) -> f64 {
    use std::collections::HashMap;
    let (mut matched, mut total) = ([0usize; 4], [0usize; 4]);
    let (mut c_len, mut r_len) = (0usize, 0usize);
    for (c, r) in candidates.iter().zip(references) {
        c_len += c.len();
        r_len += r.len();
        for n in 1..=4 {
            if c.len() < n {
                continue;
            }
            let mut ref_counts: HashMap<&[String], usize> = HashMap::new();
            for g in r.windows(n) {
                *ref_counts.entry(g).or_default() += 1;
            }
            for g in c.windows(n) {
                total[n - 1] += 1;
                if let Some(k) = ref_counts.get_mut(g) {
                    if *k > 0 {
                        *k -= 1;
                        matched[n - 1] += 1;
                    }
                }
            }
        }
    }
    if c_len == 0 || total[0] == 0 || matched[0] == 0 {
        return 0.0;
    }
    let mut log_p = 0.0;
    for n in 0..4 {
        let (m, t) = if n == 0 {
            (matched[n] as f64, total[n] as f64)
        } else {
            (matched[n] as f64 + 1.0, total[n] as f64 + 1.0)
        };
        log_p += (m / t).ln() / 4.0;
    }
    let bp = if c_len >= r_len { 1.0 } else { (1.0 - r_len as f64 / c_len as f64).exp() };
    100.0 * bp * log_p.exp()
}

/// Fraction of positions where two token sequences agree (over the shorter length), and the
/// length of their common prefix.
pub fn agreement(a: &[u32], b: &[u32]) -> (f64, usize) {
    let n = a.len().min(b.len());
    if n == 0 {
        return (0.0, 0);
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    (same as f64 / n as f64, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn bleu_identical_is_100_and_disjoint_is_0() {
        let a = vec![toks("the cat sat on the mat today")];
        assert!((bleu(&a, &a) - 100.0).abs() < 1e-9);
        assert_eq!(bleu(&[toks("x y z w")], &[toks("a b c d")]), 0.0);
    }

    #[test]
    fn bleu_matches_a_hand_computed_value() {
        // cand "the cat sat" vs ref "the cat sat down": p1 = 3/3, p2 = (2+1)/(2+1), p3 = (1+1)/(1+1),
        // p4 = (0+1)/(0+1); BP = exp(1 - 4/3). BLEU = 100 · e^(−1/3) = 71.653…
        let b = bleu(&[toks("the cat sat")], &[toks("the cat sat down")]);
        assert!((b - 100.0 * (-1.0f64 / 3.0).exp()).abs() < 1e-9, "{b}");
    }

    #[test]
    fn percentiles_and_agreement() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile_sorted(&v, 50.0), 3.0);
        assert!((percentile_sorted(&v, 99.0) - 4.96).abs() < 1e-12);
        assert_eq!(agreement(&[1, 2, 3, 4], &[1, 2, 9, 4]), (0.75, 2));
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
    }
}
