//! GGUF header parser on arbitrary bytes: it must return Ok or Err, never panic, hang or allocate
//! without bound. A parsed header's tensors must lie inside the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = trtforge::model::gguf::parse_header(Path::new("fuzz.gguf"), data) {
        assert!(h.alignment.is_power_of_two());
        for t in &h.tensors {
            let _ = t.shape();
        }
        for v in h.metadata.values() {
            let _ = (v.as_u64(), v.as_i64(), v.as_f32(), v.as_str(), v.type_name());
        }
    }
});
