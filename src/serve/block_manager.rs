//! KV block accounting: which blocks of the paged pool are free, who holds the others, and which
//! full blocks can be shared by sequences with the same prefix.
//!
//! A block is *used* while at least one sequence holds it (refcount > 0). A full block is
//! registered under a hash of its 16 tokens and of the hash of the block before it, so two
//! sequences with the same prompt prefix find the same chain of blocks. When its last holder
//! lets go, a registered block goes to the back of the free queue but keeps its contents and
//! hash: a later request with that prefix takes it back; an allocation that reaches it first
//! evicts it (least recently freed first).
use crate::backend::paged::BLOCK_SIZE;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// Identity of a full block: the hash chain up to and including it.
pub type BlockHash = u64;

/// Hash of the chain for a full block of `tokens` after the block hashed `parent` (0 for the first).
pub fn chain_hash(parent: BlockHash, tokens: &[u32]) -> BlockHash {
    // SipHash with fixed keys: stable across runs, and collisions are also ruled out by comparing
    // the stored tokens and parent on every hit.
    let mut h = std::hash::DefaultHasher::new();
    parent.hash(&mut h);
    tokens.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone)]
struct BlockMeta {
    refcount: u32,
    /// Bumped on every free; a free-queue entry is valid only with the current generation.
    generation: u32,
    /// Set while the block is registered in the prefix cache.
    key: Option<(BlockHash, BlockHash, [u32; BLOCK_SIZE])>, // (hash, parent hash, tokens)
}

/// Free-list and prefix cache over `num_blocks` blocks.
#[derive(Debug)]
pub struct BlockManager {
    blocks: Vec<BlockMeta>,
    free: VecDeque<(u32, u32)>, // (block, generation), least recently freed first
    num_free: usize,
    /// Free blocks that still hold a registered prefix (kept up to date: /metrics reads it
    /// after every step, and a scan of a pool of 20k+ blocks took a good part of a step).
    num_cached_free: usize,
    cache: HashMap<BlockHash, u32>,
    prefix_caching: bool,
}

impl BlockManager {
    pub fn new(num_blocks: usize, prefix_caching: bool) -> Self {
        BlockManager {
            blocks: vec![BlockMeta { refcount: 0, generation: 0, key: None }; num_blocks],
            free: (0..num_blocks as u32).map(|b| (b, 0)).collect(),
            num_free: num_blocks,
            num_cached_free: 0,
            cache: HashMap::new(),
            prefix_caching,
        }
    }

    pub fn num_total(&self) -> usize {
        self.blocks.len()
    }
    /// Blocks available to allocate (including cached ones that would be evicted).
    pub fn num_free(&self) -> usize {
        self.num_free
    }
    /// Blocks held by at least one sequence.
    pub fn num_used(&self) -> usize {
        self.blocks.len() - self.num_free
    }
    /// Free blocks that still hold a registered prefix.
    pub fn num_cached_free(&self) -> usize {
        debug_assert_eq!(
            self.num_cached_free,
            self.blocks.iter().filter(|b| b.refcount == 0 && b.key.is_some()).count()
        );
        self.num_cached_free
    }

    /// Takes a free block (evicting its cached prefix, if any); None when the pool is exhausted.
    pub fn allocate(&mut self) -> Option<u32> {
        while let Some((b, generation)) = self.free.pop_front() {
            let m = &mut self.blocks[b as usize];
            if m.refcount != 0 || m.generation != generation {
                continue; // stale entry: the block was taken back from the cache
            }
            if let Some((hash, _, _)) = m.key.take() {
                self.num_cached_free -= 1;
                if self.cache.get(&hash) == Some(&b) {
                    self.cache.remove(&hash);
                }
            }
            m.refcount = 1;
            self.num_free -= 1;
            return Some(b);
        }
        None
    }

    /// Drops one reference; the block becomes free when nobody holds it.
    pub fn release(&mut self, b: u32) {
        let m = &mut self.blocks[b as usize];
        debug_assert!(m.refcount > 0, "block {b} released while free");
        if m.refcount == 0 {
            return;
        }
        m.refcount -= 1;
        if m.refcount == 0 {
            m.generation = m.generation.wrapping_add(1);
            self.free.push_back((b, m.generation));
            self.num_free += 1;
            self.num_cached_free += m.key.is_some() as usize;
        }
    }

    /// The longest chain of cached full blocks that starts `tokens`, each taken with one more
    /// reference. Returns the blocks and the hash of the last one.
    pub fn match_prefix(&mut self, tokens: &[u32]) -> (Vec<u32>, BlockHash) {
        let mut out = Vec::new();
        let mut parent = 0;
        if !self.prefix_caching {
            return (out, parent);
        }
        for chunk in tokens.chunks_exact(BLOCK_SIZE) {
            let h = chain_hash(parent, chunk);
            let Some(&b) = self.cache.get(&h) else { break };
            let m = &mut self.blocks[b as usize];
            match &m.key {
                Some((kh, kp, kt)) if *kh == h && *kp == parent && kt[..] == chunk[..] => {}
                _ => break,
            }
            if m.refcount == 0 {
                self.num_free -= 1; // its free-queue entry goes stale (refcount check)
                self.num_cached_free -= 1;
            }
            m.refcount += 1;
            out.push(b);
            parent = h;
        }
        (out, parent)
    }

    /// Records that `b` now holds the full block `tokens` following the block hashed `parent`;
    /// returns its hash. A chain already cached under another block keeps that block.
    pub fn register(&mut self, b: u32, parent: BlockHash, tokens: &[u32]) -> BlockHash {
        let h = chain_hash(parent, tokens);
        if !self.prefix_caching || tokens.len() != BLOCK_SIZE {
            return h;
        }
        if self.cache.contains_key(&h) || self.blocks[b as usize].key.is_some() {
            return h;
        }
        let mut t = [0u32; BLOCK_SIZE];
        t.copy_from_slice(tokens);
        self.blocks[b as usize].key = Some((h, parent, t));
        self.num_cached_free += (self.blocks[b as usize].refcount == 0) as usize;
        self.cache.insert(h, b);
        h
    }

    /// Forgets every cached prefix (their blocks stay free).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        for m in &mut self.blocks {
            m.key = None;
        }
        self.num_cached_free = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_release_and_exhaustion() {
        let mut bm = BlockManager::new(3, true);
        let a: Vec<u32> = (0..3).map(|_| bm.allocate().unwrap()).collect();
        assert_eq!(bm.allocate(), None);
        assert_eq!(bm.num_used(), 3);
        for b in a {
            bm.release(b);
        }
        assert_eq!(bm.num_used(), 0);
        assert_eq!(bm.num_free(), 3);
    }

    #[test]
    fn prefix_blocks_are_shared_and_evicted_last_freed_last() {
        let mut bm = BlockManager::new(4, true);
        let toks: Vec<u32> = (0..40).collect();
        let b0 = bm.allocate().unwrap();
        let b1 = bm.allocate().unwrap();
        let h0 = bm.register(b0, 0, &toks[..16]);
        bm.register(b1, h0, &toks[16..32]);
        // A second sequence with the same 32-token prefix shares both blocks.
        let (m, _) = bm.match_prefix(&toks[..39]);
        assert_eq!(m, vec![b0, b1]);
        assert_eq!(bm.num_used(), 2);
        // A different second block only matches the first.
        let mut other = toks.clone();
        other[20] = 999;
        let (m2, _) = bm.match_prefix(&other);
        assert_eq!(m2, vec![b0]);
        for b in [b0, b1, b0, b1, b0] {
            bm.release(b);
        }
        assert_eq!(bm.num_used(), 0);
        assert_eq!(bm.num_cached_free(), 2);
        // Freed cached blocks come back on a match...
        let (m3, _) = bm.match_prefix(&toks);
        assert_eq!(m3, vec![b0, b1]);
        assert_eq!(bm.num_used(), 2);
        bm.release(b1);
        bm.release(b0);
        // ...and are evicted only after never-cached free blocks.
        let got: Vec<u32> = (0..4).map(|_| bm.allocate().unwrap()).collect();
        assert_eq!(&got[2..], &[b1, b0]);
        assert_eq!(bm.num_cached_free(), 0);
        assert_eq!(bm.match_prefix(&toks).0, Vec::<u32>::new());
    }

    #[test]
    fn no_sharing_when_disabled() {
        let mut bm = BlockManager::new(2, false);
        let toks: Vec<u32> = (0..16).collect();
        let b = bm.allocate().unwrap();
        bm.register(b, 0, &toks);
        assert!(bm.match_prefix(&toks).0.is_empty());
    }
}
