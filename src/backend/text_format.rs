//! What a constrained text must be, compiled once and made a [`TokenConstraint`] over a vocabulary: a sentence of a
//! GBNF grammar (grammar_mode), an instance of a JSON Schema (json_mode) or a whole match of a regular expression
//! (regex_mode). `generate`'s `--grammar` / `--json-schema` / `--regex` and serve's `guided_*` /
//! `structured_outputs` / `response_format` json_schema share it.
use super::grammar_mode::{Gbnf, GrammarConstraint};
use super::json_mode::{Constraint, Grammar, JsonVocab, TokenConstraint};
use super::regex_mode::{Pattern, RegexConstraint};
use std::sync::Arc;

/// A compiled text format.
#[derive(Debug, Clone)]
pub enum TextFormat {
    Grammar(Arc<Gbnf>),
    /// A compiled schema and its JSON text (what tells two schemas apart).
    JsonSchema {
        grammar: Arc<Grammar>,
        text: String,
    },
    Regex(Arc<Pattern>),
}

/// How a [`TextFormat`]'s text is written.
#[derive(Debug, Clone, Copy)]
pub enum FormatKind {
    /// GBNF (llama.cpp's EBNF; the start rule is `root`).
    Grammar,
    /// A JSON Schema as JSON text (`{}`: any JSON value).
    JsonSchema,
    /// A regular expression (Rust `regex` syntax) the whole text matches.
    Regex,
}

impl TextFormat {
    /// Compiles `text`, or says why it cannot be ("is not JSON: ..." / "cannot be enforced: ...").
    pub fn compile(kind: FormatKind, text: &str) -> Result<TextFormat, String> {
        let why = |e: String| format!("cannot be enforced: {e}");
        Ok(match kind {
            FormatKind::JsonSchema => {
                let schema: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
                TextFormat::schema(&schema).map_err(why)?
            }
            FormatKind::Regex => TextFormat::Regex(Arc::new(Pattern::new(text).map_err(why)?)),
            FormatKind::Grammar => TextFormat::Grammar(Arc::new(Gbnf::new(text).map_err(why)?)),
        })
    }

    /// A JSON Schema compiled (the error: what in it cannot be enforced).
    pub fn schema(schema: &serde_json::Value) -> Result<TextFormat, String> {
        Ok(TextFormat::JsonSchema { grammar: Arc::new(Grammar::from_schema(schema)?), text: schema.to_string() })
    }

    /// The format's kind and text: equal keys, the same constraint.
    pub fn key(&self) -> String {
        match self {
            TextFormat::Grammar(g) => format!("grammar:{}", g.source()),
            TextFormat::JsonSchema { text, .. } => format!("schema:{text}"),
            TextFormat::Regex(p) => format!("regex:{}", p.source()),
        }
    }

    /// The constraint over `vocab` (its masks are kept as the states come).
    pub fn over(&self, vocab: Arc<JsonVocab>) -> Arc<dyn TokenConstraint> {
        match self {
            TextFormat::Grammar(g) => Arc::new(GrammarConstraint::new(g.clone(), vocab)),
            TextFormat::JsonSchema { grammar, .. } => Arc::new(Constraint::new(grammar.clone(), vocab)),
            TextFormat::Regex(p) => Arc::new(RegexConstraint::new(p.clone(), vocab)),
        }
    }
}
