//! Safetensors table-of-contents parser on arbitrary bytes: Ok or Err, never a panic. Every
//! tensor range it accepts lies inside the input and decodes (F32/F16/BF16) without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = trtforge::model::hf::parse_shard(Path::new("fuzz.safetensors"), data) {
        for e in entries.values() {
            assert!(e.range.start <= e.range.end && e.range.end <= data.len());
            let _ = trtforge::model::hf::decode_f32(e.dtype, &data[e.range.clone()]);
        }
    }
});
