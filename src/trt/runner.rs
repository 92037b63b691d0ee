//! Running an engine: device buffers, shapes, enqueue. (filled in below)
