//! STAND-IN for `crate::model::chat` (helper B's chat templates, not merged yet), with the agreed
//! signature: `ChatMessage { role, content }`, `ChatTemplate::from_model(..)`,
//! `render(&self, &[ChatMessage], add_generation_prompt) -> Result<String>`.
//! It renders ChatML through the tokenizer (SmolLM2's default system prompt included), exactly as
//! `trtforge generate --chat` does. When `model::chat` lands, replace this module's use in
//! src/serve/mod.rs (`pub use crate::model::chat;`) and delete the file.
use crate::error::Result;
use crate::model::tokenizer::Tokenizer;

pub use crate::model::tokenizer::ChatMessage;

/// A model's chat template (here: always ChatML).
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    tokenizer: Tokenizer,
}

impl ChatTemplate {
    pub fn from_model(tokenizer: &Tokenizer) -> Result<Self> {
        Ok(ChatTemplate { tokenizer: tokenizer.clone() })
    }

    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        Ok(self.tokenizer.apply_chat_template(messages, add_generation_prompt))
    }
}
