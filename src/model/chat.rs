//! Chat templates: a model's own Jinja `chat_template` (from `tokenizer_config.json` or the GGUF
//! key `tokenizer.chat_template`), rendered with minijinja set up the way HF transformers sets
//! up Jinja for `apply_chat_template`: `trim_blocks` and `lstrip_blocks` on, loop controls,
//! Python string/dict methods (`.strip()`, `.items()`...) through minijinja-contrib's pycompat,
//! the globals `raise_exception` and `strftime_now`, and a Python-style `tojson`. The template
//! sees `messages`, `add_generation_prompt`, `bos_token`, `eos_token` (and `unk_token`,
//! `pad_token`, `tools = none`, `documents = none`). A model with no template gets ChatML.
use super::tokenizer::Tokenizer;
use crate::error::{Error, Result};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, ErrorKind};

pub use super::tokenizer::ChatMessage;

/// The fallback for models without a template (and what SmolLM2-style models use).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + \
     message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ \
     '<|im_start|>assistant\\n' }}{% endif %}";

/// Name of the one template in a [`ChatTemplate`]'s environment.
const NAME: &str = "chat_template";

/// A compiled chat template plus the special-token strings it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
    unk_token: Option<String>,
    pad_token: Option<String>,
    fallback: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("fallback", &self.fallback)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token` / `eos_token` are the strings the template may print.
    /// A syntax error is reported with its line.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::Invalid(format!("chat template syntax config: {e}")))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source.to_string()).map_err(|e| template_err("does not compile", &e))?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            unk_token: None,
            pad_token: None,
            fallback: false,
        })
    }

    /// ChatML, for models that ship no template.
    pub fn chatml() -> Self {
        let mut t = Self::new(CHATML_TEMPLATE, "", "").expect("the built-in ChatML template compiles");
        t.fallback = true;
        t
    }

    /// The template a model's tokenizer carries (`tokenizer_config.json` `chat_template`, or the
    /// GGUF `tokenizer.chat_template`), with its bos/eos/unk/pad strings; ChatML when it has none.
    pub fn from_model(tok: &Tokenizer) -> Result<Self> {
        let name = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i));
        let Some(source) = tok.chat_template() else {
            let mut t = Self::chatml();
            t.bos_token = name(tok.bos_id()).unwrap_or_default();
            t.eos_token = name(tok.eos_id()).unwrap_or_default();
            return Ok(t);
        };
        let mut t =
            Self::new(source, &name(tok.bos_id()).unwrap_or_default(), &name(tok.eos_id()).unwrap_or_default())?;
        t.unk_token = name(tok.unk_id());
        t.pad_token = name(tok.pad_id());
        Ok(t)
    }

    /// Whether this is the ChatML fallback rather than the model's own template.
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation; with `add_generation_prompt` the text ends where the assistant's
    /// reply begins. A template that calls `raise_exception` (e.g. roles that do not alternate)
    /// gives [`Error::Invalid`] with its message.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self.env.get_template(NAME).map_err(|e| template_err("is missing", &e))?;
        let ctx = minijinja::context! {
            messages => Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            unk_token => &self.unk_token,
            pad_token => &self.pad_token,
            tools => Value::from(()),
            documents => Value::from(()),
        };
        tmpl.render(ctx).map_err(|e| match e.kind() {
            ErrorKind::InvalidOperation if e.detail().is_some_and(|d| d.starts_with(RAISED)) => Error::Invalid(
                format!("chat template refused the conversation: {}", &e.detail().unwrap_or_default()[RAISED.len()..]),
            ),
            _ => template_err("failed to render", &e),
        })
    }
}

impl ChatTemplate {
    /// Token ids of the rendered conversation. Special tokens the template writes (`<s>`,
    /// `<|im_start|>`...) become their ids; bos is prepended when the tokenizer adds one,
    /// unless the template already wrote it (llama.cpp's rule, so a Llama 2/3 or Mistral
    /// template does not get two).
    pub fn encode(&self, tok: &Tokenizer, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<Vec<u32>> {
        // No limit: never cut short.
        Ok(self.encode_within(tok, messages, add_generation_prompt, usize::MAX)?.unwrap_or_default())
    }

    /// [`encode`](Self::encode) through [`Tokenizer::encode_within`]: `Ok(Err(n))` when the rendered
    /// conversation surely has more than `limit` tokens (at least `n`).
    pub fn encode_within(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        limit: usize,
    ) -> Result<std::result::Result<Vec<u32>, usize>> {
        let text = self.render(messages, add_generation_prompt)?;
        let has_bos = !self.bos_token.is_empty() && text.starts_with(&self.bos_token);
        tok.encode_within(&text, !has_bos, limit)
    }
}

/// Marks errors raised by the template itself (`raise_exception`).
const RAISED: &str = "raise_exception: ";

fn template_err(what: &str, e: &minijinja::Error) -> Error {
    let mut msg = format!("chat template {what}: {e}");
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (template line {line})"));
    }
    Error::Invalid(msg)
}

fn raise_exception(msg: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("{RAISED}{msg}")))
}

/// `strftime_now(format)`: the current UTC time formatted with the common strftime fields
/// (`%d %m %Y %y %b %B %a %A %H %M %S %j %%`), as transformers provides it to templates.
fn strftime_now(format: String) -> std::result::Result<Value, minijinja::Error> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok(Value::from(strftime(secs as i64, &format)))
}

fn strftime(unix: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out += &format!("{day:02}"),
            Some('m') => out += &format!("{month:02}"),
            Some('Y') => out += &year.to_string(),
            Some('y') => out += &format!("{:02}", year.rem_euclid(100)),
            Some('b') => out += &MONTHS[(month - 1) as usize][..3],
            Some('B') => out += MONTHS[(month - 1) as usize],
            Some('a') => out += &DAYS[weekday][..3],
            Some('A') => out += DAYS[weekday],
            Some('H') => out += &format!("{:02}", secs / 3600),
            Some('M') => out += &format!("{:02}", secs / 60 % 60),
            Some('S') => out += &format!("{:02}", secs % 60),
            Some('j') => out += &format!("{yday:03}"),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `tojson` as transformers defines it: `json.dumps(x, ensure_ascii=False, indent=indent)`, i.e.
/// Python's separators (`", "` and `": "`) and no HTML escaping.
fn tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut v = serde_json::to_value(&value)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    if sort_keys == Some(true) {
        sort_json(&mut v);
    }
    let mut out = String::new();
    write_py_json(&v, indent, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

fn sort_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = std::mem::take(m).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut x) in entries {
                sort_json(&mut x);
                m.insert(k, x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(sort_json),
        _ => {}
    }
}

fn write_py_json(v: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value as J;
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Array(a) if a.is_empty() => out.push_str("[]"),
        J::Object(m) if m.is_empty() => out.push_str("{}"),
        J::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_py_json(x, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        J::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&J::String(k.clone()).to_string());
                out.push_str(": ");
                write_py_json(x, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders() {
        let t = ChatTemplate::chatml();
        assert!(t.is_fallback());
        let s = t.render(&[ChatMessage::system("S"), ChatMessage::user("hi")], true).unwrap();
        assert_eq!(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_errors() {
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "<s>", "</s>").unwrap();
        match t.render(&[], false) {
            Err(Error::Invalid(m)) => assert!(m.contains("roles must alternate"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(ChatTemplate::new("{% for %}", "", ""), Err(Error::Invalid(_))));
        assert!(matches!(ChatTemplate::new("{{ undefined_fn() }}", "", "").unwrap().render(&[], false), Err(_)));
    }

    #[test]
    fn python_methods_and_tojson() {
        let t = ChatTemplate::new(
            "{{ messages[0]['content'].strip() }}|{{ messages[0].content.upper() }}|{{ {'a': [1, 'é']} | tojson }}|\
             {{ tools is none }}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(t.render(&[ChatMessage::user("  hi ")], false).unwrap(), "hi|  HI |{\"a\": [1, \"é\"]}|True");
    }

    #[test]
    fn strftime_by_hand() {
        // 2024-07-26 13:05:09 UTC was a Friday, day 208 of a leap year.
        assert_eq!(
            strftime(1_721_999_109, "%d %b %Y %H:%M:%S %a %j %B %y %%"),
            "26 Jul 2024 13:05:09 Fri 208 July 24 %"
        );
        assert_eq!(strftime(0, "%Y-%m-%d %A"), "1970-01-01 Thursday");
    }
}
