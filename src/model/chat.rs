//! Chat templates: a model's own Jinja `chat_template` (from `tokenizer_config.json` or the GGUF
//! key `tokenizer.chat_template`), rendered with minijinja set up the way HF transformers sets
//! up Jinja for `apply_chat_template` (`render_jinja_template` in transformers 5): `trim_blocks`
//! and `lstrip_blocks` on, loop controls, the `{% generation %}` block, Python string/dict methods
//! (`.strip()`, `.title()`, `.items()`, `.get()`...) through minijinja-contrib's pycompat with
//! Python's own `strip`/`title`, the globals `raise_exception` and `strftime_now`, and
//! transformers' `tojson` (`json.dumps` with `ensure_ascii=False`, its `indent`, `separators`
//! and `sort_keys`). The template sees `messages` (with transformers' normalization: keys whose
//! value is null dropped, reasoning fields aliased), `add_generation_prompt`, the special tokens
//! the tokenizer has (`bos_token`, `eos_token`, `unk_token`, `pad_token`), `tools = none` and
//! `documents = none`, like transformers when the caller passes none. A model with no template
//! gets ChatML.
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
        env.set_unknown_method_callback(py_method);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_filter("trim", py_trim);
        env.add_filter("wordcount", wordcount);
        env.add_filter("center", center);
        env.add_filter("truncate", truncate);
        env.add_filter("striptags", minijinja_contrib::filters::striptags);
        env.add_function("cycler", minijinja_contrib::globals::cycler);
        env.add_function("joiner", minijinja_contrib::globals::joiner);
        env.add_test("callable", is_callable);
        env.add_test("escaped", is_escaped);
        env.add_test("sequence", is_sequence);
        env.add_test("none", is_none_test);
        env.add_filter("escape", py_escape);
        env.add_filter("e", py_escape);
        env.set_formatter(py_formatter);
        env.add_template_owned(NAME, without_generation_tags(source))
            .map_err(|e| template_err("does not compile", &e))?;
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
    /// gives [`Error::Invalid`] with its message, as does an empty conversation (transformers
    /// refuses it too).
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_with(messages, add_generation_prompt, &[])
    }

    /// [`render`](Self::render) for messages of any shape and with more template variables.
    /// `messages` are any serializable maps: [`ChatMessage`]s, or JSON objects with more keys than
    /// `role` and `content` (`name`, `tool_calls`, `reasoning_content`...), which the template sees
    /// in their own key order. `extra` are variables as transformers' `apply_chat_template(...,
    /// **kwargs)` passes them (`tools`, `documents`, `date_string`, `tools_in_user_message`...);
    /// they override the defaults (`tools = none`...).
    pub fn render_with<M: serde::Serialize>(
        &self,
        messages: &[M],
        add_generation_prompt: bool,
        extra: &[(&str, Value)],
    ) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::Invalid(
                "Cannot apply chat template to an empty conversation. Provide at least one message.".into(),
            ));
        }
        let tmpl = self.env.get_template(NAME).map_err(|e| template_err("is missing", &e))?;
        let mut ctx: Vec<(&str, Value)> = vec![
            ("messages", template_messages(messages)?),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
            ("tools", py_none()),
            ("documents", py_none()),
        ];
        // transformers passes only the special tokens the tokenizer has: the others are undefined.
        if let Some(t) = &self.unk_token {
            ctx.push(("unk_token", Value::from(t.as_str())));
        }
        if let Some(t) = &self.pad_token {
            ctx.push(("pad_token", Value::from(t.as_str())));
        }
        for (k, v) in extra {
            ctx.retain(|(name, _)| name != k);
            ctx.push((k, if v.is_none() { py_none() } else { v.clone() }));
        }
        let ctx = Value::from_pairs(ctx);
        tmpl.render(ctx).map_err(|e| match e.kind() {
            ErrorKind::InvalidOperation if e.detail().is_some_and(|d| d.starts_with(RAISED)) => Error::Invalid(
                format!("chat template refused the conversation: {}", &e.detail().unwrap_or_default()[RAISED.len()..]),
            ),
            // Jinja refuses to iterate None (`{% for tool in tools %}` without tools).
            ErrorKind::InvalidOperation if e.detail() == Some(PY_NONE_ITER) => Error::Invalid(format!(
                "chat template failed to render: 'NoneType' object is not iterable (tools or documents are none){}",
                e.line().map(|l| format!(" (template line {l})")).unwrap_or_default()
            )),
            // Python's words for it, as transformers reports a template recursing without end.
            ErrorKind::InvalidOperation if e.detail() == Some("recursion limit exceeded") => Error::Invalid(format!(
                "chat template failed to render: maximum recursion depth exceeded (recursion limit exceeded){}",
                e.line().map(|l| format!(" (template line {l})")).unwrap_or_default()
            )),
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
        self.encode_within_with(tok, messages, add_generation_prompt, &[], limit)
    }

    /// [`encode_within`](Self::encode_within) with more template variables ([`render_with`](Self::render_with)'s
    /// `extra`: the request's `tools`...).
    pub fn encode_within_with(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        extra: &[(&str, Value)],
        limit: usize,
    ) -> Result<std::result::Result<Vec<u32>, usize>> {
        let text = self.render_with(messages, add_generation_prompt, extra)?;
        let has_bos = !self.bos_token.is_empty() && text.starts_with(&self.bos_token);
        tok.encode_within(&text, !has_bos, limit)
    }
}

/// The names a message's reasoning comes under, the standard one (what templates read) first.
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// The conversation as transformers hands it to the template: each message a map in its own key
/// order, keys whose value is null dropped (`apply_chat_template` drops them: OpenAI-style
/// `content: null` or `tool_calls: null`), and reasoning under any of [`REASONING_FIELDS`] also
/// given as `thinking` (first) and `reasoning_content` (last), as `_alias_reasoning_fields` does.
fn template_messages<M: serde::Serialize>(messages: &[M]) -> Result<Value> {
    let bad = |i: usize, what: &str| Error::Invalid(format!("chat message {i} {what}"));
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let v = Value::from(minijinja::value::Serde(m));
        if v.kind() != minijinja::value::ValueKind::Map {
            return Err(bad(i, "is not an object (a map with role and content)"));
        }
        let mut entries = Vec::new();
        for k in v.try_iter().map_err(|e| bad(i, &e.to_string()))? {
            let x = v.get_item(&k).map_err(|e| bad(i, &e.to_string()))?;
            if !x.is_none() && !x.is_undefined() {
                entries.push((k, x));
            }
        }
        let field = |entries: &[(Value, Value)], name: &str| {
            entries.iter().find(|(k, _)| k.as_str() == Some(name)).map(|(_, x)| x.clone())
        };
        if let Some(r) = REASONING_FIELDS.iter().find_map(|f| field(&entries, f)) {
            // {"thinking": r, **message, "reasoning_content": r}
            let mut merged = vec![(Value::from("thinking"), r.clone())];
            for (k, x) in entries {
                match merged.iter_mut().find(|(k2, _)| *k2 == k) {
                    Some(slot) => slot.1 = x,
                    None => merged.push((k, x)),
                }
            }
            match merged.iter_mut().find(|(k, _)| k.as_str() == Some("reasoning_content")) {
                Some(slot) => slot.1 = r,
                None => merged.push((Value::from("reasoning_content"), r)),
            }
            entries = merged;
        }
        out.push(Value::from_pairs(entries));
    }
    Ok(Value::from(out))
}

/// transformers' `{% generation %}...{% endgeneration %}` block (it marks the assistant's tokens for
/// `return_assistant_tokens_mask`) renders its body unchanged: here it becomes `{% if true %}...{%
/// endif %}`, keeping the tags' whitespace control.
fn without_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let open_ctl = inner.strip_prefix(['-', '+']).map(|_| &inner[..1]).unwrap_or("");
        let body = &inner[open_ctl.len()..];
        let close_ctl = if body.ends_with(['-', '+']) { &body[body.len() - 1..] } else { "" };
        let word = body[..body.len() - close_ctl.len()].trim();
        let replacement = match word {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(r) => out.push_str(&format!("{{%{open_ctl} {r} {close_ctl}%}}")),
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Python's `str.isspace()`: Unicode White_Space plus the ASCII separators U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.title()`: a cased character right after another cased one is lowercased, any other
/// is uppercased (so `"don't"` becomes `"Don'T"`, unlike Jinja's `|title` filter).
fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        if prev_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_cased = c.is_lowercase() || c.is_uppercase();
    }
    out
}

/// Python methods on values (`.strip()`, `.items()`, `.get()`...): minijinja-contrib's pycompat, with
/// Python's whitespace for argument-less `strip`/`lstrip`/`rstrip` and Python's `str.title()`.
fn py_method(
    state: &mut minijinja::State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    if let (Some(s), []) = (value.as_str(), args) {
        match method {
            "strip" => return Ok(Value::from(s.trim_matches(py_space))),
            "lstrip" => return Ok(Value::from(s.trim_start_matches(py_space))),
            "rstrip" => return Ok(Value::from(s.trim_end_matches(py_space))),
            "title" => return Ok(Value::from(py_title(s))),
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Jinja's `|trim(chars=None)`: Python's `str(value).strip(chars)`.
fn py_trim(value: Value, chars: Option<String>) -> String {
    let s = if value.is_undefined() { String::new() } else { value.to_string() };
    match chars {
        Some(c) => s.trim_matches(|x| c.contains(x)).to_string(),
        None => s.trim_matches(py_space).to_string(),
    }
}

/// Jinja's `|center(width=80)`: Python's `str.center` (an odd margin's extra space goes left when
/// `width` is odd).
fn center(value: Value, width: Option<usize>) -> String {
    let s = if value.is_undefined() { String::new() } else { value.to_string() };
    let width = width.unwrap_or(80);
    let len = s.chars().count();
    if len >= width {
        return s;
    }
    let margin = width - len;
    let left = margin / 2 + (margin & width & 1);
    format!("{}{s}{}", " ".repeat(left), " ".repeat(margin - left))
}

/// Jinja's `|truncate(length=255, killwords=False, end='...', leeway=5)`, arguments by position or
/// name (`leeway` by name only).
fn truncate(
    value: Value,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
    kwargs: Kwargs,
) -> std::result::Result<String, minijinja::Error> {
    let length = kwargs.get::<Option<usize>>("length")?.or(length).unwrap_or(255);
    let killwords = kwargs.get::<Option<bool>>("killwords")?.or(killwords).unwrap_or(false);
    let end = kwargs.get::<Option<String>>("end")?.or(end).unwrap_or_else(|| "...".into());
    let leeway = kwargs.get::<Option<usize>>("leeway")?.unwrap_or(5);
    kwargs.assert_all_used()?;
    let s = if value.is_undefined() { String::new() } else { value.to_string() };
    let chars: Vec<char> = s.chars().collect();
    let end_len = end.chars().count();
    if length < end_len {
        return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "truncate: length shorter than end"));
    }
    if chars.len() <= length + leeway {
        return Ok(s);
    }
    let head: String = chars[..length - end_len].iter().collect();
    if killwords {
        return Ok(head + &end);
    }
    let kept = head.rsplit_once(' ').map(|(a, _)| a.to_string()).unwrap_or(head);
    Ok(kept + &end)
}

/// Jinja's `|wordcount`: the number of `\w+` runs.
fn wordcount(value: Value) -> usize {
    let s = if value.is_undefined() { String::new() } else { value.to_string() };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    s.split(|c: char| !word(c)).filter(|w| !w.is_empty()).count()
}

/// Python's `None` where transformers passes it (`tools`, `documents` and other none arguments):
/// `is none`, false, prints `None`, `tojson` gives `null`, and, as in Jinja, it cannot be iterated
/// (minijinja's own none iterates as empty, so a template looping over `tools` without checking
/// would render where transformers fails).
#[derive(Debug)]
struct PyNone;

impl minijinja::value::Object for PyNone {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn is_true(self: &std::sync::Arc<Self>) -> bool {
        false
    }

    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("None")
    }
}

/// What minijinja says when asked to iterate a [`PyNone`].
const PY_NONE_ITER: &str = "plain object is not iterable";

fn py_none() -> Value {
    Value::from_object(PyNone)
}

fn is_py_none(v: &Value) -> bool {
    v.is_none() || v.downcast_object_ref::<PyNone>().is_some()
}

/// Jinja's `is none`, true for [`PyNone`] too.
fn is_none_test(v: Value) -> bool {
    is_py_none(&v)
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

/// `strftime_now(format)`: the current local time formatted like Python's `datetime.now().strftime`
/// (glibc's fields: `%d %m %Y %y %b %B %a %A %H %M %S %j %e %I %p %F %D %T %R %u %w %%`..., glibc's
/// `-` flag for no padding, and `%z`/`%Z` empty: `datetime.now()` is naive), as transformers
/// provides it to templates.
fn strftime_now(format: String) -> std::result::Result<Value, minijinja::Error> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let offset = local_offset(secs as i64);
    Ok(Value::from(strftime(secs as i64 + offset, offset, &format)))
}

/// The local time zone's offset from UTC at `unix` (seconds east), as `localtime_r` gives it.
#[cfg(unix)]
fn local_offset(unix: i64) -> i64 {
    let t = unix as libc::time_t;
    // SAFETY: `localtime_r` only writes into the `tm` we own.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i64
    }
}

#[cfg(not(unix))]
fn local_offset(_unix: i64) -> i64 {
    0
}

/// Formats the wall-clock time `local` (seconds since 1970-01-01 in the local zone, which is
/// `offset` seconds east of UTC) as a naive Python datetime's `strftime` does.
fn strftime(local: i64, offset: i64, format: &str) -> String {
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
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
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
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday; 0 = Monday
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // glibc's `%-d`: no padding.
        let unpadded = chars.peek() == Some(&'-');
        if unpadded {
            chars.next();
        }
        let num = |n: i64, width: usize, pad: char| match (unpadded, pad) {
            (true, _) => n.to_string(),
            (false, ' ') => format!("{n:>width$}"),
            _ => format!("{n:0width$}"),
        };
        let month_name = MONTHS[(month - 1) as usize];
        match chars.next() {
            Some('d') => out += &num(day, 2, '0'),
            Some('e') => out += &num(day, 2, ' '),
            Some('m') => out += &num(month, 2, '0'),
            Some('Y') => out += &year.to_string(),
            Some('y') => out += &num(year.rem_euclid(100), 2, '0'),
            Some('C') => out += &num(year.div_euclid(100), 2, '0'),
            Some('b') | Some('h') => out += &month_name[..3],
            Some('B') => out += month_name,
            Some('a') => out += &DAYS[weekday][..3],
            Some('A') => out += DAYS[weekday],
            Some('u') => out += &(weekday + 1).to_string(),
            Some('w') => out += &((weekday + 1) % 7).to_string(),
            Some('H') => out += &num(hour, 2, '0'),
            Some('k') => out += &num(hour, 2, ' '),
            Some('I') => out += &num(hour12, 2, '0'),
            Some('l') => out += &num(hour12, 2, ' '),
            Some('M') => out += &num(minute, 2, '0'),
            Some('S') => out += &num(second, 2, '0'),
            Some('p') => out += if hour < 12 { "AM" } else { "PM" },
            Some('j') => out += &num(yday, 3, '0'),
            Some('F') => out += &format!("{year}-{month:02}-{day:02}"),
            Some('D') | Some('x') => out += &format!("{month:02}/{day:02}/{:02}", year.rem_euclid(100)),
            Some('T') | Some('X') => out += &format!("{hour:02}:{minute:02}:{second:02}"),
            Some('R') => out += &format!("{hour:02}:{minute:02}"),
            Some('r') => out += &format!("{hour12:02}:{minute:02}:{second:02} {}", if hour < 12 { "AM" } else { "PM" }),
            Some('c') => {
                out += &format!(
                    "{} {} {day:>2} {hour:02}:{minute:02}:{second:02} {year}",
                    &DAYS[weekday][..3],
                    &month_name[..3]
                )
            }
            Some('s') => out += &(local - offset).to_string(),
            // A naive datetime has no zone.
            Some('z') | Some('Z') => {}
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `tojson` as transformers defines it: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`, i.e. Python's separators (`", "` and `": "`, or `","`
/// between items when indenting) and no HTML escaping.
fn tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let invalid = |m: String| minijinja::Error::new(ErrorKind::InvalidOperation, m);
    // Python takes an int (spaces) or a string (itself) as the indent; none is no indent.
    let indent: Option<String> = match indent {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => match (v.as_str(), i64::try_from(v.clone())) {
            (Some(s), _) => Some(s.to_string()),
            (None, Ok(n)) => Some(" ".repeat(n.max(0) as usize)),
            _ => return Err(invalid(format!("tojson: indent must be an int or a string, not {v}"))),
        },
    };
    let (item_sep, key_sep) = match separators.as_deref() {
        Some([a, b]) => (a.clone(), b.clone()),
        Some(_) => return Err(invalid("tojson: separators must be a pair (item, key)".into())),
        None => ((if indent.is_some() { "," } else { ", " }).to_string(), ": ".to_string()),
    };
    let fmt = JsonFormat {
        indent,
        item_sep,
        key_sep,
        ensure_ascii: ensure_ascii.unwrap_or(false),
        sort_keys: sort_keys.unwrap_or(false),
    };
    let mut out = String::new();
    write_py_json(&value, &fmt, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

/// How Python's `json.dumps` was asked to lay its output out.
struct JsonFormat {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    ensure_ascii: bool,
    sort_keys: bool,
}

/// `json.dumps` of a template value, keys in the value's own order (or sorted with `sort_keys`).
fn write_py_json(
    v: &Value,
    fmt: &JsonFormat,
    depth: usize,
    out: &mut String,
) -> std::result::Result<(), minijinja::Error> {
    use minijinja::value::ValueKind as K;
    let newline = |out: &mut String, depth: usize| {
        if let Some(unit) = &fmt.indent {
            out.push('\n');
            out.push_str(&unit.repeat(depth));
        }
    };
    let err = |what: String| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {what}"));
    match v.kind() {
        K::Undefined => return Err(err("Object of type Undefined is not JSON serializable".into())),
        _ if is_py_none(v) => out.push_str("null"),
        K::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        K::Number => out.push_str(&py_json_number(v)),
        K::String => write_py_str(v.as_str().unwrap_or_default(), fmt.ensure_ascii, out),
        K::Map => {
            let mut entries = Vec::new();
            for k in v.try_iter()? {
                let x = v.get_item(&k)?;
                let key = match k.kind() {
                    K::String => k.as_str().unwrap_or_default().to_string(),
                    K::None => "null".into(),
                    K::Bool => (if k.is_true() { "true" } else { "false" }).into(),
                    K::Number => py_json_number(&k),
                    _ => return Err(err(format!("keys must be str, int, float, bool or None, not {k}"))),
                };
                entries.push((key, x));
            }
            if fmt.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&fmt.item_sep);
                }
                newline(out, depth + 1);
                write_py_str(k, fmt.ensure_ascii, out);
                out.push_str(&fmt.key_sep);
                write_py_json(x, fmt, depth + 1, out)?;
            }
            newline(out, depth);
            out.push('}');
        }
        K::Seq | K::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&fmt.item_sep);
                }
                newline(out, depth + 1);
                write_py_json(x, fmt, depth + 1, out)?;
            }
            newline(out, depth);
            out.push(']');
        }
        _ => return Err(err(format!("Object of type {} is not JSON serializable", v.kind()))),
    }
    Ok(())
}

/// A number as Python's `json.dumps` writes it: ints as they are, floats as `repr(float)` (`1.0`,
/// `1e+16`, `1e-05`), `NaN`, `Infinity`.
fn py_json_number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match py_float_repr(v).as_str() {
        "nan" => "NaN".into(),
        "inf" => "Infinity".into(),
        "-inf" => "-Infinity".into(),
        r => r.to_string(),
    }
}

/// How `{{ value }}` prints, as Python's `str()` does: minijinja's own (already Python-like: `None`,
/// `True`, `[1, 'a']`) except floats, which print as `repr(float)` (`1e+16`, `1e-05`), and lists and
/// dicts, whose strings are escaped as Python's `repr` escapes them (only unprintable characters:
/// minijinja escapes like Rust's `Debug`, e.g. emoji variation selectors).
fn py_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    use minijinja::value::ValueKind as K;
    let text = match value.kind() {
        K::Number if !value.is_integer() => py_float_repr(value),
        K::Seq | K::Map => {
            let mut s = String::new();
            py_repr(value, &mut s);
            s
        }
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(&text).map_err(|e| minijinja::Error::new(ErrorKind::WriteFailure, e.to_string()))
}

/// Python's `repr()` of a template value.
fn py_repr(v: &Value, out: &mut String) {
    use minijinja::value::ValueKind as K;
    match v.kind() {
        K::String => py_repr_str(v.as_str().unwrap_or_default(), out),
        K::Number if !v.is_integer() => out.push_str(&py_float_repr(v)),
        K::Seq | K::Iterable => {
            // minijinja keeps tuples (`dictsort`, `items`) apart and prints them with parentheses.
            let tuple = v.to_string().starts_with('(');
            let items: Vec<Value> = v.try_iter().into_iter().flatten().collect();
            out.push(if tuple { '(' } else { '[' });
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(x, out);
            }
            if tuple && items.len() == 1 {
                out.push(',');
            }
            out.push(if tuple { ')' } else { ']' });
        }
        K::Map => {
            out.push('{');
            for (i, k) in v.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(&k, out);
                out.push_str(": ");
                py_repr(&v.get_item(&k).unwrap_or_default(), out);
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`; `\\`, the quote, `\t`, `\n`,
/// `\r` and unprintable characters escaped (`\xNN`, `\uNNNN`, `\UNNNNNNNN`).
fn py_repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if py_printable(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable()` for one character: not a control, format, private-use, line or
/// paragraph separator, or space other than ' ' (the common code points of those categories;
/// unassigned ones beyond the noncharacters are not known here).
fn py_printable(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || py_space(c) {
        return false;
    }
    let format = matches!(u, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb
        | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001
        | 0xe0020..=0xe007f);
    let private = matches!(u, 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd);
    let nonchar = matches!(u, 0xfdd0..=0xfdef) || (u & 0xfffe) == 0xfffe;
    !(format || private || nonchar)
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for exponents -4..16
/// (always with a fraction: `1.0`), scientific otherwise with a signed two-digit exponent
/// (`1e+16`, `1.5e-05`); `nan`, `inf`.
fn py_float_repr(v: &Value) -> String {
    let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return (if f > 0.0 { "inf" } else { "-inf" }).into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            s + ".0"
        }
    } else {
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// Jinja's `is callable`: functions and macros.
fn is_callable(v: Value) -> bool {
    use minijinja::value::ValueKind as K;
    !matches!(v.kind(), K::Undefined | K::None | K::Bool | K::Number | K::String | K::Bytes | K::Seq | K::Map)
        && v.as_object().is_some_and(|o| matches!(o.repr(), minijinja::value::ObjectRepr::Plain))
}

/// Jinja's `is sequence`: anything with a length and items (strings and dicts too).
fn is_sequence(v: Value) -> bool {
    use minijinja::value::ValueKind as K;
    matches!(v.kind(), K::String | K::Bytes | K::Seq | K::Map)
}

/// Jinja's `|escape` / `|e` (markupsafe): `&`, `<`, `>`, `"` and `'` as `&amp;`, `&lt;`, `&gt;`, `&#34;`
/// and `&#39;`; a safe string stays as it is.
fn py_escape(v: Value) -> Value {
    if v.is_safe() {
        return v;
    }
    let s = if v.is_undefined() { String::new() } else { v.to_string() };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Value::from_safe_string(out)
}

/// Jinja's `is escaped`: marked safe.
fn is_escaped(v: Value) -> bool {
    v.is_safe()
}

/// A JSON string as Python writes it: control characters escaped (`\n`, `\u001f`...), and with
/// `ensure_ascii` everything outside printable ASCII as `\uXXXX` (astral characters as surrogate pairs).
fn write_py_str(s: &str, ensure_ascii: bool, out: &mut String) {
    if !ensure_ascii {
        out.push_str(&serde_json::Value::String(s.to_string()).to_string());
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
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
        let hi = [ChatMessage::user("hi")];
        match t.render(&hi, false) {
            Err(Error::Invalid(m)) => assert!(m.contains("roles must alternate"), "{m}"),
            other => panic!("{other:?}"),
        }
        // As transformers: no messages is an error, whatever the template.
        match ChatTemplate::chatml().render(&[], true) {
            Err(Error::Invalid(m)) => assert!(m.contains("empty conversation"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(ChatTemplate::new("{% for %}", "", ""), Err(Error::Invalid(_))));
        assert!(ChatTemplate::new("{{ undefined_fn() }}", "", "").unwrap().render(&hi, false).is_err());
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
    fn generation_blocks_keep_their_whitespace_control() {
        assert_eq!(
            without_generation_tags("a{%- generation -%} b {%+endgeneration%}{% if x %}{{ '{%' }}"),
            "a{%- if true -%} b {%+ endif %}{% if x %}{{ '{%' }}"
        );
        let t = ChatTemplate::new(
            "{% for m in messages %}{% generation %}<{{ m.content }}>{% endgeneration %}{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(t.render(&[ChatMessage::user("a"), ChatMessage::assistant("b")], false).unwrap(), "<a><b>");
    }

    #[test]
    fn python_reprs() {
        let f = |x: f64| py_float_repr(&Value::from(x));
        assert_eq!(
            [f(1.0), f(2.5), f(1e16), f(1e15), f(1e-5), f(0.0001), f(-0.0)],
            ["1.0", "2.5", "1e+16", "1000000000000000.0", "1e-05", "0.0001", "-0.0"]
        );
        assert_eq!(py_title("don't stop_me NOW"), "Don'T Stop_Me Now");
        let mut s = String::new();
        py_repr_str("it's \u{200d}\u{fe0f}\n", &mut s);
        assert_eq!(s, "\"it's \\u200d\u{fe0f}\\n\"");
    }

    #[test]
    fn messages_keep_their_keys_and_drop_nulls() {
        let t = ChatTemplate::new("{% for m in messages %}{{ m|tojson }}{% endfor %}", "", "").unwrap();
        let m = serde_json::json!([{"role": "assistant", "content": null, "reasoning": "r"}]);
        let msgs: Vec<serde_json::Value> = serde_json::from_value(m).unwrap();
        assert_eq!(
            t.render_with(&msgs, false, &[]).unwrap(),
            r#"{"thinking": "r", "role": "assistant", "reasoning": "r", "reasoning_content": "r"}"#
        );
        let tools = Value::from(minijinja::value::Serde(serde_json::json!([{"b": 1, "a": "é"}])));
        let t = ChatTemplate::new("{{ tools|tojson(indent=2, ensure_ascii=true) }}", "", "").unwrap();
        assert_eq!(
            t.render_with(&[ChatMessage::user("x")], false, &[("tools", tools)]).unwrap(),
            "[\n  {\n    \"b\": 1,\n    \"a\": \"\\u00e9\"\n  }\n]"
        );
    }

    #[test]
    fn strftime_by_hand() {
        // 2024-07-26 13:05:09 UTC was a Friday, day 208 of a leap year.
        assert_eq!(
            strftime(1_721_999_109, 0, "%d %b %Y %H:%M:%S %a %j %B %y %%"),
            "26 Jul 2024 13:05:09 Fri 208 July 24 %"
        );
        assert_eq!(strftime(0, 0, "%Y-%m-%d %A %u %w [%Z%z]"), "1970-01-01 Thursday 4 4 []");
        // glibc's extras, as Python's strftime passes them through on Linux.
        assert_eq!(
            strftime(1_721_999_109 + 7200, 7200, "%-d %e|%I %p|%F %T|%D %R|%c|%-j|%s|%Q"),
            "26 26|03 PM|2024-07-26 15:05:09|07/26/24 15:05|Fri Jul 26 15:05:09 2024|208|1721999109|%Q"
        );
    }
}
