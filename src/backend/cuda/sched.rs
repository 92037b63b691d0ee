//! Host-side bookkeeping of the CUDA engine, kept free of GPU calls so it is tested on CPU:
//! decode graph buckets, splitting a request into passes that fit the scratch buffers, and the
//! per-pass metadata the kernels read.
use crate::backend::Logits;

/// Batch sizes a decode step is captured for; a step of n sequences replays the smallest bucket
/// >= n with the extra rows pointed at a dummy cache slot.
pub fn buckets(max_batch: usize) -> Vec<usize> {
    let mut v = vec![];
    let mut b = 1;
    while b < max_batch {
        v.push(b);
        b *= 2;
    }
    v.push(max_batch);
    v
}

pub fn bucket_for(n: usize, max_batch: usize) -> Option<usize> {
    buckets(max_batch).into_iter().find(|&b| b >= n)
}

/// Rows a paged (serve) non-decode pass of `rows` rows runs its GEMMs at: the next power of two
/// up to 64 (the decode buckets' shapes), then multiples of 64 up to 256, of 128 up to 1024 and
/// of 256 beyond, never more than `max_rows` (the scratch buffers' rows). A serving step's row
/// count (decodes + prompt chunks) takes almost any value; cuBLAS picks an algorithm (and may
/// load kernels) for each new shape, which a fresh server paid inside its first steps. Below
/// ~256 rows the GEMMs are bound by the weight reads, so the padding is nearly free.
pub fn gemm_rows(rows: usize, max_rows: usize) -> usize {
    let b = match rows {
        0..=64 => rows.next_power_of_two(),
        65..=256 => rows.div_ceil(64) * 64,
        257..=1024 => rows.div_ceil(128) * 128,
        _ => rows.div_ceil(256) * 256,
    };
    b.min(max_rows).max(rows)
}

/// Every row count [`gemm_rows`] gives for passes of `min_rows ..= max_rows` rows.
pub fn gemm_row_buckets(min_rows: usize, max_rows: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (min_rows.max(1)..=max_rows).map(|r| gemm_rows(r, max_rows)).collect();
    v.dedup();
    v
}

/// A piece of one sequence's new tokens inside a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Index of the chunk in the request.
    pub chunk: usize,
    pub slot: usize,
    /// Tokens already cached for the slot before this piece.
    pub start: usize,
    /// Range of the chunk's tokens in this piece.
    pub from: usize,
    pub n: usize,
    /// Rows of this piece whose logits are returned (offsets within the piece).
    pub out: Vec<usize>,
}

/// Splits chunks (slot, cached length, new tokens) into passes of at most `max_tokens` rows.
/// Later pieces of one sequence follow earlier ones, so causal attention over the cache is exact.
pub fn split_passes(chunks: &[(usize, usize, usize)], max_tokens: usize, want: Logits) -> Vec<Vec<Piece>> {
    let mut passes: Vec<Vec<Piece>> = vec![];
    let mut cur: Vec<Piece> = vec![];
    let mut room = max_tokens;
    for (ci, &(slot, start, n)) in chunks.iter().enumerate() {
        let mut from = 0;
        while from < n {
            if room == 0 || cur.iter().any(|p| p.slot == slot) {
                passes.push(std::mem::take(&mut cur));
                room = max_tokens;
            }
            let take = (n - from).min(room);
            let out = match want {
                Logits::All => (0..take).collect(),
                Logits::Last if from + take == n => vec![take - 1],
                Logits::Last => vec![],
            };
            cur.push(Piece { chunk: ci, slot, start: start + from, from, n: take, out });
            from += take;
            room -= take;
        }
    }
    if !cur.is_empty() {
        passes.push(cur);
    }
    passes
}

/// Offsets (in i32 elements) of the metadata arrays inside the engine's one metadata buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaLayout {
    pub max_tokens: usize,
    pub max_seqs: usize,
}

impl MetaLayout {
    pub fn tokens(&self) -> usize {
        0
    }
    pub fn row_pos(&self) -> usize {
        self.max_tokens
    }
    pub fn row_slot(&self) -> usize {
        2 * self.max_tokens
    }
    pub fn out_rows(&self) -> usize {
        3 * self.max_tokens
    }
    pub fn seq_slot(&self) -> usize {
        4 * self.max_tokens
    }
    pub fn seq_start(&self) -> usize {
        4 * self.max_tokens + self.max_seqs
    }
    pub fn seq_row0(&self) -> usize {
        4 * self.max_tokens + 2 * self.max_seqs
    }
    pub fn seq_n(&self) -> usize {
        4 * self.max_tokens + 3 * self.max_seqs
    }
    pub fn len(&self) -> usize {
        4 * self.max_tokens + 4 * self.max_seqs
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Host image of a pass's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassMeta {
    pub tokens: Vec<i32>,
    pub row_pos: Vec<i32>,
    pub row_slot: Vec<i32>,
    pub out_rows: Vec<i32>,
    pub seq_slot: Vec<i32>,
    pub seq_start: Vec<i32>,
    pub seq_row0: Vec<i32>,
    pub seq_n: Vec<i32>,
}

impl PassMeta {
    /// Metadata of a pass; `tokens_of(chunk)` gives a chunk's token ids.
    pub fn build<'a>(pieces: &[Piece], tokens_of: impl Fn(usize) -> &'a [u32]) -> PassMeta {
        let mut m = PassMeta {
            tokens: vec![],
            row_pos: vec![],
            row_slot: vec![],
            out_rows: vec![],
            seq_slot: vec![],
            seq_start: vec![],
            seq_row0: vec![],
            seq_n: vec![],
        };
        for p in pieces {
            let row0 = m.tokens.len();
            let toks = &tokens_of(p.chunk)[p.from..p.from + p.n];
            m.tokens.extend(toks.iter().map(|&t| t as i32));
            m.row_pos.extend((p.start..p.start + p.n).map(|x| x as i32));
            m.row_slot.extend(std::iter::repeat_n(p.slot as i32, p.n));
            m.out_rows.extend(p.out.iter().map(|&o| (row0 + o) as i32));
            m.seq_slot.push(p.slot as i32);
            m.seq_start.push(p.start as i32);
            m.seq_row0.push(row0 as i32);
            m.seq_n.push(p.n as i32);
        }
        m
    }

    pub fn rows(&self) -> usize {
        self.tokens.len()
    }
    /// Every piece is one token: the decode kernels apply.
    pub fn is_decode(&self) -> bool {
        self.seq_n.iter().all(|&n| n == 1)
    }
    /// Logits are wanted for every row, in order: no row selection needed.
    pub fn selects_all(&self) -> bool {
        self.out_rows.len() == self.rows() && self.out_rows.iter().enumerate().all(|(i, &r)| r as usize == i)
    }

    /// Pads a decode pass to `rows` rows that point at `dummy_slot`, position 0.
    pub fn pad_decode(&mut self, rows: usize, dummy_slot: usize) {
        while self.rows() < rows {
            let r = self.rows() as i32;
            self.tokens.push(0);
            self.row_pos.push(0);
            self.row_slot.push(dummy_slot as i32);
            self.out_rows.push(r);
            self.seq_slot.push(dummy_slot as i32);
            self.seq_start.push(0);
            self.seq_row0.push(r);
            self.seq_n.push(1);
        }
    }

    /// The i32 image of the metadata buffer, laid out by `l`.
    pub fn image(&self, l: &MetaLayout) -> Vec<i32> {
        let mut v = vec![0i32; l.len()];
        let mut put = |off: usize, xs: &[i32]| v[off..off + xs.len()].copy_from_slice(xs);
        put(l.tokens(), &self.tokens);
        put(l.row_pos(), &self.row_pos);
        put(l.row_slot(), &self.row_slot);
        put(l.out_rows(), &self.out_rows);
        put(l.seq_slot(), &self.seq_slot);
        put(l.seq_start(), &self.seq_start);
        put(l.seq_row0(), &self.seq_row0);
        put(l.seq_n(), &self.seq_n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_up_to_max() {
        assert_eq!(buckets(1), vec![1]);
        assert_eq!(buckets(64), vec![1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(buckets(6), vec![1, 2, 4, 6]);
        assert_eq!(bucket_for(5, 64), Some(8));
        assert_eq!(bucket_for(65, 64), None);
    }

    #[test]
    fn gemm_rows_buckets_cover_every_row_count() {
        assert_eq!(gemm_rows(9, 2048), 16);
        assert_eq!(gemm_rows(64, 2048), 64);
        assert_eq!(gemm_rows(65, 2048), 128);
        assert_eq!(gemm_rows(131, 2048), 192);
        assert_eq!(gemm_rows(257, 2048), 384);
        assert_eq!(gemm_rows(1025, 2048), 1280);
        assert_eq!(gemm_rows(2000, 2048), 2048);
        assert_eq!(gemm_rows(300, 300), 300); // capped by the buffers
        let b = gemm_row_buckets(9, 2048);
        assert_eq!(b, vec![16, 32, 64, 128, 192, 256, 384, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048]);
        for r in 9..=2048 {
            let g = gemm_rows(r, 2048);
            assert!(g >= r && b.contains(&g), "{r} -> {g}");
        }
        assert_eq!(gemm_row_buckets(9, 100), vec![16, 32, 64, 100]);
    }

    #[test]
    fn passes_split_long_chunks_and_keep_last_rows() {
        // slot 0: 5 tokens after 2 cached, slot 1: 3 new; passes of 4 rows
        let p = split_passes(&[(0, 2, 5), (1, 0, 3)], 4, Logits::Last);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0], vec![Piece { chunk: 0, slot: 0, start: 2, from: 0, n: 4, out: vec![] }]);
        assert_eq!(p[1][0], Piece { chunk: 0, slot: 0, start: 6, from: 4, n: 1, out: vec![0] });
        assert_eq!(p[1][1], Piece { chunk: 1, slot: 1, start: 0, from: 0, n: 3, out: vec![2] });
        let all = split_passes(&[(0, 0, 3)], 8, Logits::All);
        assert_eq!(all[0][0].out, vec![0, 1, 2]);
        let total: usize =
            split_passes(&[(0, 0, 100), (3, 7, 9)], 16, Logits::All).iter().flatten().map(|p| p.out.len()).sum();
        assert_eq!(total, 109);
    }

    #[test]
    fn meta_rows_and_padding() {
        let toks = [vec![5u32, 6, 7], vec![9u32]];
        let pieces = split_passes(&[(2, 4, 3), (0, 10, 1)], 64, Logits::Last);
        let mut m = PassMeta::build(&pieces[0], |c| &toks[c]);
        assert_eq!(m.tokens, vec![5, 6, 7, 9]);
        assert_eq!(m.row_pos, vec![4, 5, 6, 10]);
        assert_eq!(m.row_slot, vec![2, 2, 2, 0]);
        assert_eq!(m.out_rows, vec![2, 3]);
        assert!(!m.is_decode() && !m.selects_all());
        let dec = split_passes(&[(1, 3, 1), (0, 8, 1)], 64, Logits::Last);
        let mut d = PassMeta::build(&dec[0], |_| &toks[1]);
        assert!(d.is_decode() && d.selects_all());
        d.pad_decode(4, 9);
        assert_eq!(d.row_slot, vec![1, 0, 9, 9]);
        assert!(d.selects_all());
        let l = MetaLayout { max_tokens: 8, max_seqs: 5 };
        let img = d.image(&l);
        assert_eq!(img.len(), 52);
        assert_eq!(img[l.row_pos()..l.row_pos() + 2], [3, 8]);
        m.pad_decode(0, 0); // no-op when already long enough
        assert_eq!(m.rows(), 4);
    }
}
