//! From the one graph definition to a launch plan.
//!
//! [`trace`] walks [`crate::model::graph::forward`] with a recording [`LlamaOps`] implementor, so the
//! engine runs exactly the ops the graph says. [`lower`] then fuses the recorded ops into the
//! engine's steps: RMSNorm becomes the prologue of the linear layers that read it, Q/K/V become one
//! linear whose epilogue applies RoPE and appends to the KV cache, gate/up become one linear with a
//! SwiGLU epilogue, and a linear followed by the residual add writes into the residual stream.
//! A graph this lowering does not recognize is an error naming the op, never a silent miscompute.
use super::kernels::Role;
use crate::error::{Error, Result};
use crate::model::graph::{forward, LlamaOps};
use crate::model::{LlamaConfig, Param};

/// Index of a recorded value (the op that produced it).
pub type Val = usize;

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Embed,
    RmsNorm { x: Val, w: Param },
    Linear { x: Val, w: Param },
    Rope { x: Val, n_heads: usize },
    Attention { layer: usize, q: Val, k: Val, v: Val },
    Swiglu { g: Val, u: Val },
    Add { a: Val, b: Val },
    Select { x: Val },
}

/// The recorded ops and the value the graph returns.
#[derive(Debug, Clone)]
pub struct Trace {
    pub ops: Vec<Op>,
    pub output: Val,
}

struct Tracer {
    ops: Vec<Op>,
}

impl Tracer {
    fn push(&mut self, op: Op) -> Result<Val> {
        self.ops.push(op);
        Ok(self.ops.len() - 1)
    }
}

impl LlamaOps for Tracer {
    type T = Val;
    fn embed(&mut self) -> Result<Val> {
        self.push(Op::Embed)
    }
    fn rms_norm(&mut self, x: &Val, w: Param) -> Result<Val> {
        self.push(Op::RmsNorm { x: *x, w })
    }
    fn linear(&mut self, x: &Val, w: Param) -> Result<Val> {
        self.push(Op::Linear { x: *x, w })
    }
    fn rope(&mut self, x: &Val, n_heads: usize) -> Result<Val> {
        self.push(Op::Rope { x: *x, n_heads })
    }
    fn attention(&mut self, layer: usize, q: &Val, k: &Val, v: &Val) -> Result<Val> {
        self.push(Op::Attention { layer, q: *q, k: *k, v: *v })
    }
    fn swiglu(&mut self, g: &Val, u: &Val) -> Result<Val> {
        self.push(Op::Swiglu { g: *g, u: *u })
    }
    fn add(&mut self, a: &Val, b: &Val) -> Result<Val> {
        self.push(Op::Add { a: *a, b: *b })
    }
    fn select_outputs(&mut self, x: &Val) -> Result<Val> {
        self.push(Op::Select { x: *x })
    }
}

/// Records the graph's ops for `cfg`.
pub fn trace(cfg: &LlamaConfig) -> Result<Trace> {
    let mut t = Tracer { ops: Vec::new() };
    let output = forward(cfg, &mut t)?;
    Ok(Trace { ops: t.ops, output })
}

/// One fused linear layer: its parameters (concatenated along the output dim, in this order),
/// the RMSNorm weight of its prologue if any, and its role (which fixes prologue and epilogue).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearStep {
    pub role: Role,
    pub params: Vec<Param>,
    pub norm: Option<Param>,
    pub layer: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// tokens -> residual stream h (T, hidden)
    Embed,
    Linear(LinearStep),
    /// q from the preceding QKV step, k/v already in the cache -> attention output (T, q_dim)
    Attention {
        layer: usize,
    },
    /// keeps the rows whose logits are wanted
    Select,
}

fn unsupported(i: usize, op: &Op, why: &str) -> Error {
    Error::Unsupported(format!("CUDA engine cannot lower graph op #{i} {op:?}: {why}"))
}

/// Fuses a trace into steps (see the module docs).
pub fn lower(tr: &Trace) -> Result<Vec<Step>> {
    let ops = &tr.ops;
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for (i, op) in ops.iter().enumerate() {
        let ins: Vec<Val> = match op {
            Op::Embed => vec![],
            Op::RmsNorm { x, .. } | Op::Linear { x, .. } | Op::Rope { x, .. } | Op::Select { x } => vec![*x],
            Op::Attention { q, k, v, .. } => vec![*q, *k, *v],
            Op::Swiglu { g, u } => vec![*g, *u],
            Op::Add { a, b } => vec![*a, *b],
        };
        for v in ins {
            users[v].push(i);
        }
    }
    let only_user = |v: Val| -> Option<usize> { (users[v].len() == 1).then(|| users[v][0]) };
    let mut done = vec![false; ops.len()];
    let mut steps = Vec::new();
    let mut resid: Option<Val> = None; // current value of the residual stream
                                       // A linear whose only user adds it to the residual stream: returns the add.
    let resid_add = |lin: Val, resid: Option<Val>| -> Option<Val> {
        let add = only_user(lin)?;
        match ops[add] {
            Op::Add { a, b } if (a == lin && Some(b) == resid) || (b == lin && Some(a) == resid) => Some(add),
            _ => None,
        }
    };
    for i in 0..ops.len() {
        if done[i] {
            continue;
        }
        let op = &ops[i];
        match op {
            Op::Embed => {
                steps.push(Step::Embed);
                resid = Some(i);
                done[i] = true;
            }
            Op::Select { x } if Some(*x) == resid => {
                steps.push(Step::Select);
                resid = Some(i);
                done[i] = true;
            }
            Op::RmsNorm { x, w } if Some(*x) == resid => {
                done[i] = true;
                let lins: Vec<(usize, Param)> = users[i]
                    .iter()
                    .map(|&u| match ops[u] {
                        Op::Linear { w, .. } => Ok((u, w)),
                        _ => Err(unsupported(u, &ops[u], "an RMSNorm output may only feed linear layers")),
                    })
                    .collect::<Result<_>>()?;
                let params: Vec<Param> = lins.iter().map(|l| l.1).collect();
                match params.as_slice() {
                    [Param::Wq(l), Param::Wk(_), Param::Wv(_)] => {
                        let (q, k, v) = (lins[0].0, lins[1].0, lins[2].0);
                        let (Some(rq), Some(rk), Some(at)) = (only_user(q), only_user(k), only_user(v)) else {
                            return Err(unsupported(q, &ops[q], "q/k/v must each have one user"));
                        };
                        let attn_ok = matches!(ops[rq], Op::Rope { .. })
                            && matches!(ops[rk], Op::Rope { .. })
                            && only_user(rq) == Some(at)
                            && only_user(rk) == Some(at)
                            && ops[at] == Op::Attention { layer: *l, q: rq, k: rk, v };
                        if !attn_ok {
                            return Err(unsupported(at, &ops[at], "expected attention(rope(q), rope(k), v)"));
                        }
                        let wo = only_user(at).ok_or_else(|| unsupported(at, &ops[at], "one user expected"))?;
                        let Op::Linear { w: Param::Wo(_), .. } = ops[wo] else {
                            return Err(unsupported(wo, &ops[wo], "attention must feed the output projection"));
                        };
                        let add = resid_add(wo, resid)
                            .ok_or_else(|| unsupported(wo, &ops[wo], "o_proj must be added to the residual"))?;
                        steps.push(Step::Linear(LinearStep {
                            role: Role::Qkv,
                            params: params.clone(),
                            norm: Some(*w),
                            layer: Some(*l),
                        }));
                        steps.push(Step::Attention { layer: *l });
                        steps.push(Step::Linear(LinearStep {
                            role: Role::O,
                            params: vec![Param::Wo(*l)],
                            norm: None,
                            layer: Some(*l),
                        }));
                        for d in [q, k, v, rq, rk, at, wo, add] {
                            done[d] = true;
                        }
                        resid = Some(add);
                    }
                    [Param::WGate(l), Param::WUp(_)] => {
                        let (g, u) = (lins[0].0, lins[1].0);
                        let sw = only_user(g).filter(|&s| only_user(u) == Some(s) && ops[s] == Op::Swiglu { g, u });
                        let sw = sw.ok_or_else(|| unsupported(g, &ops[g], "expected swiglu(gate, up)"))?;
                        let down = only_user(sw).ok_or_else(|| unsupported(sw, &ops[sw], "one user expected"))?;
                        let Op::Linear { w: Param::WDown(_), .. } = ops[down] else {
                            return Err(unsupported(down, &ops[down], "swiglu must feed down_proj"));
                        };
                        let add = resid_add(down, resid)
                            .ok_or_else(|| unsupported(down, &ops[down], "down_proj must be added to the residual"))?;
                        steps.push(Step::Linear(LinearStep {
                            role: Role::GateUp,
                            params: params.clone(),
                            norm: Some(*w),
                            layer: Some(*l),
                        }));
                        steps.push(Step::Linear(LinearStep {
                            role: Role::Down,
                            params: vec![Param::WDown(*l)],
                            norm: None,
                            layer: Some(*l),
                        }));
                        for d in [g, u, sw, down, add] {
                            done[d] = true;
                        }
                        resid = Some(add);
                    }
                    [Param::LmHead] if lins[0].0 == tr.output => {
                        steps.push(Step::Linear(LinearStep {
                            role: Role::Head,
                            params: params.clone(),
                            norm: Some(*w),
                            layer: None,
                        }));
                        done[lins[0].0] = true;
                    }
                    _ => return Err(unsupported(i, op, "no fused kernel for this group of linear layers")),
                }
            }
            _ => return Err(unsupported(i, op, "not part of a recognized pattern")),
        }
    }
    match steps.last() {
        Some(Step::Linear(LinearStep { role: Role::Head, .. })) => Ok(steps),
        _ => Err(Error::Unsupported("CUDA engine: the graph must end with the LM head".into())),
    }
}

/// Trace + lower in one call.
pub fn plan(cfg: &LlamaConfig) -> Result<Vec<Step>> {
    lower(&trace(cfg)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_plan_fuses_every_layer_into_five_steps() {
        let cfg = LlamaConfig::preset("tiny").unwrap();
        let tr = trace(&cfg).unwrap();
        assert_eq!(tr.ops.len(), 1 + 15 * cfg.num_hidden_layers + 3);
        let steps = lower(&tr).unwrap();
        assert_eq!(steps.len(), 1 + 5 * cfg.num_hidden_layers + 2);
        assert_eq!(steps[0], Step::Embed);
        let roles: Vec<Role> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Linear(l) => Some(l.role),
                _ => None,
            })
            .collect();
        assert_eq!(&roles[..4], &[Role::Qkv, Role::O, Role::GateUp, Role::Down]);
        assert_eq!(*roles.last().unwrap(), Role::Head);
        assert_eq!(steps[2], Step::Attention { layer: 0 });
        let Step::Linear(qkv) = &steps[1] else { panic!() };
        assert_eq!(qkv.params, vec![Param::Wq(0), Param::Wk(0), Param::Wv(0)]);
        assert_eq!(qkv.norm, Some(Param::AttnNorm(0)));
        assert_eq!(steps[steps.len() - 2], Step::Select);
    }

    #[test]
    fn unknown_pattern_is_an_error() {
        // A residual add of the wrong operand cannot be lowered.
        let mut tr = trace(&LlamaConfig::preset("tiny").unwrap()).unwrap();
        let add = tr.ops.iter().position(|o| matches!(o, Op::Add { .. })).unwrap();
        if let Op::Add { a, .. } = tr.ops[add].clone() {
            tr.ops[add] = Op::Add { a, b: a };
        }
        let e = lower(&tr).unwrap_err().to_string();
        assert!(e.contains("cannot lower"), "{e}");
    }
}
