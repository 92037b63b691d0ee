//! `trtforge serve`: an OpenAI-compatible server with in-flight batching over a paged KV cache.
//!
//! - [`block_manager`]: free list, refcounts and the prefix cache of KV blocks.
//! - [`scheduler`]: continuous batching with chunked prefill and preemption; no HTTP, no kernels.
pub mod block_manager;
pub mod scheduler;
