//! Building an ONNX graph: named values, nodes, initializers (inline or in an external data file),
//! and the small protobuf helpers both attention forms use.
use crate::proto as pb;
use half::f16;

/// File holding the initializers when they are stored outside the protobuf.
pub const EXTERNAL_DATA_FILE: &str = "model.onnx.data";
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
}

impl FloatType {
    pub fn onnx(self) -> i32 {
        match self {
            FloatType::F32 => pb::tensor_proto::DataType::Float as i32,
            FloatType::F16 => pb::tensor_proto::DataType::Float16 as i32,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            FloatType::F32 => "float32",
            FloatType::F16 => "float16",
        }
    }
}

pub fn d(name: &str) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimParam(name.into())),
        ..Default::default()
    }
}
pub fn dv(n: i64) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)),
        ..Default::default()
    }
}

pub fn value_info(name: &str, elem: i32, dims: Vec<pb::tensor_shape_proto::Dimension>) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(pb::TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn attr_i(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(pb::attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}
pub fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(pb::attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// Accumulates nodes and initializers; names every value uniquely.
#[derive(Default)]
pub struct GraphBuilder {
    pub nodes: Vec<pb::NodeProto>,
    pub inits: Vec<pb::TensorProto>,
    /// Some: initializer bytes go here (external data) instead of into the protobuf.
    pub external: Option<Vec<u8>>,
    counter: usize,
}

impl GraphBuilder {
    /// An empty graph; `external` puts initializer bytes into an external data file.
    pub fn new(external: bool) -> Self {
        GraphBuilder { external: external.then(Vec::new), ..Default::default() }
    }

    /// (b, s, n·hd) → (b, n, s, hd): the per-head view both attention forms start from.
    pub fn split_heads(&mut self, x: &str, n: i64, hd: i64) -> String {
        let s = self.const_i64(&[0, 0, n, hd]);
        let r = self.op("Reshape", &[x, &s], vec![]);
        self.op("Transpose", &[&r], vec![attr_ints("perm", &[0, 2, 1, 3])])
    }
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> String {
        self.counter += 1;
        let out = format!("{}_{}", op.to_ascii_lowercase(), self.counter);
        self.op_to(op, inputs, attrs, &out);
        out
    }

    pub fn op_to(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>, out: &str) {
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name: Some(format!("n_{out}")),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Adds an initializer from raw little-endian bytes.
    pub fn init_raw(&mut self, name: &str, dims: &[usize], data_type: i32, bytes: Vec<u8>) -> String {
        let mut t = pb::TensorProto {
            name: Some(name.into()),
            dims: dims.iter().map(|&x| x as i64).collect(),
            data_type: Some(data_type),
            ..Default::default()
        };
        match self.external.as_mut() {
            // Small tensors stay inline: they are shapes and constants, not weights.
            Some(ext) if bytes.len() >= 1024 => {
                // Keep every tensor 64-byte aligned in the data file (mmap-friendly).
                while ext.len() % 64 != 0 {
                    ext.push(0);
                }
                let kv = |k: &str, v: String| pb::StringStringEntryProto { key: Some(k.into()), value: Some(v) };
                t.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
                t.external_data = vec![
                    kv("location", EXTERNAL_DATA_FILE.into()),
                    kv("offset", ext.len().to_string()),
                    kv("length", bytes.len().to_string()),
                ];
                ext.extend_from_slice(&bytes);
            }
            _ => t.raw_data = Some(bytes),
        }
        self.inits.push(t);
        name.to_string()
    }

    pub fn init_float(&mut self, name: &str, dims: &[usize], data: &[f32], dt: FloatType) -> String {
        let bytes: Vec<u8> = match dt {
            FloatType::F32 => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            FloatType::F16 => data.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect(),
        };
        self.init_raw(name, dims, dt.onnx(), bytes)
    }

    pub fn init_i64(&mut self, name: &str, dims: &[usize], vals: &[i64]) -> String {
        let bytes = vals.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init_raw(name, dims, pb::tensor_proto::DataType::Int64 as i32, bytes)
    }

    pub fn const_i64(&mut self, vals: &[i64]) -> String {
        self.counter += 1;
        let name = format!("const_i64_{}", self.counter);
        self.init_i64(&name, &[vals.len()], vals)
    }

    pub fn scalar_f(&mut self, v: f32, dt: FloatType) -> String {
        self.counter += 1;
        let name = format!("const_f_{}", self.counter);
        self.init_float(&name, &[], &[v], dt)
    }
}
