//! Writes results.json, results.csv, report.md and SVG plots into the output directory.
use super::{BenchResults, SpeedResult, Status};
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The files [`write_all`] writes.
pub const REPORT_FILES: [&str; 7] = [
    "results.json",
    "results.csv",
    "report.md",
    "tok_s_vs_batch.svg",
    "ttft_vs_input.svg",
    "memory.svg",
    "quality_vs_speed.svg",
];

/// A new id for a run. Every file of its report carries it (results.json's `run_id`, results.csv's
/// `run_id` column, a first-line comment in the Markdown and SVG files), so that files of two runs
/// are told apart: a report whose files disagree is one an interrupted write left mixed.
pub fn new_run_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{t:x}-{:x}", std::process::id())
}

/// `text` with its run id as a first-line comment (Markdown and SVG both take `<!-- -->`).
pub fn mark(text: &str, run_id: &str) -> String {
    format!("<!-- trtforge-run:{run_id} -->\n{text}")
}

/// The run id a report file carries (see [`new_run_id`]), or None if it carries none (a file of
/// an older trtforge, or not trtforge's). Reads at most what it needs.
fn run_id_of(path: &Path) -> Option<String> {
    use std::io::Read;
    let name = path.file_name()?.to_str()?;
    let limit = if name.ends_with(".json") { 256 << 20 } else { 64 << 10 };
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(limit).read_to_end(&mut bytes).ok()?;
    if name.ends_with(".json") {
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        return v.get("run_id")?.as_str().filter(|s| !s.is_empty()).map(String::from);
    }
    let text = String::from_utf8_lossy(&bytes);
    if name.ends_with(".csv") {
        let mut lines = text.lines();
        if !lines.next()?.ends_with(",run_id") {
            return None;
        }
        return Some(lines.next().and_then(|r| r.rsplit(',').next()).unwrap_or("").to_string());
    }
    let rest = text.strip_prefix("<!-- trtforge-run:")?;
    Some(rest[..rest.find(" -->")?].to_string())
}

/// Whether `dir` may take a report made of `files`, whose first is its JSON: it does not exist yet,
/// or it is a directory that is not an engine directory and where every one of `files` that exists
/// belongs to a trtforge report (a report written before, which a new run replaces whole). A user's
/// files of the same names are never overwritten. Returns whether the report there is mixed: files
/// of more than one run, as an interrupted write leaves it.
pub fn check_report_dir(dir: &Path, files: &[&str]) -> Result<bool> {
    let md = match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        r => r.map_err(|e| Error::io(dir, e))?,
    };
    let refuse = |why: String| {
        Err(Error::Invalid(format!("--out {} {why}; choose a new or empty directory for the report", dir.display())))
    };
    if !md.is_dir() {
        return refuse("is not a directory".into());
    }
    if dir.join(crate::engine_dir::manifest::MANIFEST_FILE).exists() {
        return refuse("is an engine directory".into());
    }
    let json = dir.join(files[0]);
    let json_doc = std::fs::read(&json).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let json_ours = json_doc.as_ref().is_some_and(|v| v.get("trtforge_version").is_some_and(|x| x.is_string()));
    let taken: Vec<&str> = files.iter().copied().filter(|f| dir.join(f).exists()).collect();
    let json_id = json_ours.then(|| run_id_of(&json)).flatten();
    if json_ours && json_id.is_none() {
        // A report of a trtforge that wrote no run ids: replaced as it always was.
        return Ok(false);
    }
    // Every other file of the report must carry a run id; the JSON, if there, must be ours.
    let ids: Vec<(&str, Option<String>)> = taken.iter().map(|f| (*f, run_id_of(&dir.join(f)))).collect();
    let foreign: Vec<&str> =
        ids.iter().filter(|(f, id)| id.is_none() && !(*f == files[0] && json_ours)).map(|(f, _)| *f).collect();
    if !foreign.is_empty() {
        return refuse(format!("holds {foreign:?}, which are not a trtforge report and would be overwritten"));
    }
    let runs: std::collections::BTreeSet<&str> = ids.iter().filter_map(|(_, id)| id.as_deref()).collect();
    Ok(runs.len() > 1 || (!taken.is_empty() && json_id.is_none()))
}

/// Installs a report's files (`written`, a subset of `names`, whose first is the JSON) into `dir`
/// as one unit: checked again ([`check_report_dir`]), every file written in full first, files of
/// the earlier report that this one does not write removed, and the JSON, which readers and the
/// check go by, renamed in last (`util::atomic::write_set_atomic`).
pub fn install(dir: &Path, names: &[&str], written: &[(&str, String)]) -> Result<Vec<PathBuf>> {
    if check_report_dir(dir, names)? {
        crate::util::errln!(
            "note: {} held a report mixed from more than one run (an interrupted write); all of it is replaced",
            dir.display()
        );
    }
    let stale: Vec<&str> =
        names.iter().copied().filter(|n| !written.iter().any(|(w, _)| w == n) && dir.join(n).exists()).collect();
    let mut ordered: Vec<(&str, &[u8])> =
        written.iter().filter(|(n, _)| *n != names[0]).map(|(n, t)| (*n, t.as_bytes())).collect();
    ordered.extend(written.iter().filter(|(n, _)| *n == names[0]).map(|(n, t)| (*n, t.as_bytes())));
    crate::util::atomic::write_set_atomic(dir, &ordered, &stale)
}

/// A run's report directory, claimed before the run: `--out` checked ([`check_report_dir`]) and
/// made if missing, or a new `reports/<prefix><UTC time>` made for this run alone; proven writable;
/// and locked, so that a second bench writing into the same directory is refused instead of
/// mixing its files with this one's.
pub struct ReportDir {
    pub path: PathBuf,
    /// The outermost directory this run made: `path` itself, or a parent made for it (`reports/`, the missing
    /// folders above an `--out`); what [`ReportDir::abandon`] removes again, down from `path`, where empty.
    created: Option<PathBuf>,
    _lock: Option<crate::util::atomic::DirLock>,
}

impl ReportDir {
    pub fn claim(out: Option<&Path>, prefix: &str, names: &[&str]) -> Result<Self> {
        let (path, created) = match out {
            Some(o) => {
                check_report_dir(o, names)?;
                let above = match o.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(p) => create_missing_dirs(p)?,
                    None => None,
                };
                match std::fs::create_dir(o) {
                    Ok(()) => (o.to_path_buf(), Some(above.unwrap_or_else(|| o.to_path_buf()))),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (o.to_path_buf(), above),
                    Err(e) => {
                        remove_made(o, above.as_deref());
                        return Err(Error::io(o, e));
                    }
                }
            }
            None => {
                let (p, made) = new_report_dir(Path::new("reports"), prefix)?;
                (p, Some(made))
            }
        };
        let lock = crate::util::atomic::lock_dir(&path).map_err(|_| {
            Error::Invalid(format!(
                "--out {}: another trtforge bench is writing its report there; wait for it or choose another --out",
                path.display()
            ))
        })?;
        let dir = ReportDir { path, created, _lock: lock };
        if let Err(e) = crate::util::atomic::check_writable(&dir.path) {
            dir.abandon();
            return Err(e);
        }
        Ok(dir)
    }

    /// After a run that wrote nothing: removes the directories this run made (the report directory and the
    /// parents made for it), each only if empty.
    pub fn abandon(self) {
        let ReportDir { path, created, _lock } = self;
        drop(_lock);
        remove_made(&path, created.as_deref());
    }
}

/// Makes `dir` and whatever is missing above it; returns the outermost directory made (None: `dir` existed).
fn create_missing_dirs(dir: &Path) -> Result<Option<PathBuf>> {
    let outermost =
        dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).last().map(Path::to_path_buf);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Ok(outermost)
}

/// Removes `dir` and its parents up to `outermost` (the outermost one a run made), each only while empty; nothing
/// when `outermost` is None.
fn remove_made(dir: &Path, outermost: Option<&Path>) {
    let Some(top) = outermost else { return };
    for d in dir.ancestors() {
        if std::fs::remove_dir(d).is_err() || d == top {
            break;
        }
    }
}

/// A new directory `base/<prefix><UTC time>`, made by this call (created exclusively; `-2`, `-3`...
/// appended while the name is taken, so two runs in the same second never share one), with `base` and whatever is
/// missing above it; also returns the outermost directory made (`base` or above where they were missing, else the new
/// one). A call that fails removes what it made.
fn new_report_dir(base: &Path, prefix: &str) -> Result<(PathBuf, PathBuf)> {
    let above = create_missing_dirs(base)?;
    let ts = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
    let err = 'names: {
        for n in 1..=10_000 {
            let p = base.join(if n == 1 { format!("{prefix}{ts}") } else { format!("{prefix}{ts}-{n}") });
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok((p.clone(), above.unwrap_or(p))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => break 'names Error::io(p, e),
            }
        }
        Error::Invalid(format!("{} holds 10000 reports of this second; give --out", base.display()))
    };
    remove_made(base, above.as_deref());
    Err(err)
}

/// Writes every report file as one unit ([`install`]), each carrying the run's id.
pub fn write_all(res: &BenchResults, out: &Path) -> Result<Vec<PathBuf>> {
    let json = serde_json::to_string_pretty(res).map_err(|e| Error::Invalid(format!("results.json: {e}")))?;
    let mut files =
        vec![("results.json", json), ("results.csv", csv(res)), ("report.md", mark(&markdown(res), &res.run_id))];
    for (name, svg) in plots(res) {
        debug_assert!(REPORT_FILES.contains(&name));
        files.push((name, mark(&svg, &res.run_id)));
    }
    install(out, &REPORT_FILES, &files)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Unavailable => "unavailable",
        Status::Oom => "OOM",
        Status::Error => "error",
        Status::Interrupted => "interrupted",
    }
}

pub fn csv(res: &BenchResults) -> String {
    let mut s = String::from(
        "engine,backend,batch,input_len,output_len,status,ttft_ms_median,itl_ms_mean,itl_ms_p50,itl_ms_p99,decode_tok_s_median,decode_tok_s_min,decode_tok_s_max,prefill_tok_s_median,e2e_tok_s_median,weights_bytes,kv_cache_bytes,device_peak_bytes,host_peak_rss_bytes,reason,run_id\n",
    );
    for r in &res.speed {
        let m = r.memory.unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\",{}",
            r.engine,
            r.backend,
            r.batch,
            r.input_len,
            r.output_len,
            status_name(r.status),
            opt(r.ttft_ms.map(|x| x.median), 3),
            opt(r.itl_ms.map(|x| x.mean), 3),
            opt(r.itl_ms.map(|x| x.p50), 3),
            opt(r.itl_ms.map(|x| x.p99), 3),
            opt(r.decode_tok_s.map(|x| x.median), 2),
            opt(r.decode_tok_s.map(|x| x.min), 2),
            opt(r.decode_tok_s.map(|x| x.max), 2),
            opt(r.prefill_tok_s.map(|x| x.median), 2),
            opt(r.e2e_tok_s.map(|x| x.median), 2),
            if r.memory.is_some() { m.weights_bytes.to_string() } else { String::new() },
            if r.memory.is_some() { m.kv_cache_bytes.to_string() } else { String::new() },
            m.device_peak_bytes.map(|x| x.to_string()).unwrap_or_default(),
            r.host_peak_rss_bytes.map(|x| x.to_string()).unwrap_or_default(),
            r.reason.clone().unwrap_or_default().replace('"', "'"),
            res.run_id
        );
    }
    s
}

fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / 1e6)
}

pub fn markdown(res: &BenchResults) -> String {
    let mut s = String::new();
    let m = &res.machine;
    let _ = writeln!(s, "# trtforge bench report\n");
    let _ = writeln!(s, "- date: {}", res.created);
    let _ = writeln!(s, "- command: `{}`", res.command);
    let _ = writeln!(s, "- trtforge {} (git {})", res.trtforge_version, res.git_commit);
    let _ = writeln!(
        s,
        "- machine: {} — {} × {}, {:.0} GiB RAM, {}",
        m.hostname,
        m.cores,
        m.cpu,
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        m.os
    );
    let _ = writeln!(
        s,
        "- GPU: {}; driver {}; CUDA {}; TensorRT {}",
        m.gpu.as_deref().unwrap_or("none"),
        m.driver.as_deref().unwrap_or("-"),
        m.cuda.as_deref().unwrap_or("-"),
        m.tensorrt.as_deref().unwrap_or("-")
    );
    let st = &res.settings;
    let _ = writeln!(
        s,
        "- settings: batch {:?} × input {:?}, {} new tokens, {} runs after {} warm-up (median, [min–max]), seed {}",
        st.batch_sizes, st.input_lens, st.output_len, st.runs, st.warmup, st.seed
    );
    if res.interrupted {
        let _ = writeln!(s, "\n**Interrupted (Ctrl-C): the tables hold what was measured before the stop.**");
    }
    let _ = writeln!(
        s,
        "\n## Engines\n\n| engine | precision | parameters | size on disk (MB) | KV cache | KV bytes/token |\n|---|---|---:|---:|---|---:|"
    );
    for e in &res.engines {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} M | {} | {} | {:.0} |",
            e.name,
            e.precision,
            e.parameters as f64 / 1e6,
            mb(e.size_bytes),
            e.kv_cache,
            e.kv_bytes_per_token
        );
    }
    // Speed-up baselines: the fp16 engine on the same backend, and the --baseline rows.
    let fp16 = res.engines.iter().find(|e| e.precision == "fp16").map(|e| e.name.clone());
    let base_rows: Vec<&SpeedResult> = res.speed.iter().filter(|r| r.backend.starts_with("hf")).collect();
    let _ = writeln!(s, "\n## Speed\n");
    let _ = writeln!(
        s,
        "The `cpu` backend is the f32 reference: it runs a float engine's source weights, and a quantized engine's stored weights dequantized to f32.\n"
    );
    let _ = writeln!(
        s,
        "| engine | backend | batch | input | TTFT ms | ITL ms mean / p50 / p99 | decode tok/s | prefill tok/s | e2e tok/s | × fp16 | × baseline | KV cache MB | status |\n|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in res.speed.iter().filter(|r| r.status != Status::Unavailable) {
        let dec = r.decode_tok_s.map(|x| x.median);
        let vs = |other: Option<&SpeedResult>| -> String {
            match (dec, other.and_then(|o| o.decode_tok_s.map(|x| x.median))) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => String::new(),
            }
        };
        let same_shape = |o: &&SpeedResult| o.batch == r.batch && o.input_len == r.input_len;
        let f16 = fp16
            .as_ref()
            .and_then(|n| res.speed.iter().filter(same_shape).find(|o| &o.engine == n && o.backend == r.backend));
        let base = base_rows
            .iter()
            .copied()
            .filter(same_shape)
            .find(|o| o.backend == "hf-eager" || o.backend.starts_with("hf"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.engine,
            r.backend,
            r.batch,
            r.input_len,
            opt(r.ttft_ms.map(|x| x.median), 1),
            r.itl_ms.map(|l| format!("{:.2} / {:.2} / {:.2}", l.mean, l.p50, l.p99)).unwrap_or_default(),
            r.decode_tok_s.map(|x| format!("{:.1} [{:.1}–{:.1}]", x.median, x.min, x.max)).unwrap_or_default(),
            opt(r.prefill_tok_s.map(|x| x.median), 0),
            opt(r.e2e_tok_s.map(|x| x.median), 1),
            vs(f16),
            vs(base),
            r.memory.map(|m| mb(m.kv_cache_bytes)).unwrap_or_default(),
            match (&r.status, &r.reason) {
                (Status::Ok, _) => "ok".to_string(),
                (st, Some(why)) => format!("{}: {}", status_name(*st), why.replace('|', "/")),
                (st, None) => status_name(*st).to_string(),
            }
        );
    }
    let _ = writeln!(s, "\n## Quality\n");
    // The context actually used: --eval-ctx capped by each engine.
    let mut used: Vec<usize> = res.quality.iter().filter_map(|q| q.perplexity_ctx).collect();
    used.sort_unstable();
    used.dedup();
    let ctx = match used.as_slice() {
        [] => format!("ctx {}", st.eval_ctx),
        [c] if *c == st.eval_ctx => format!("ctx {c}"),
        cs => format!(
            "ctx {} (--eval-ctx {} capped by the engines' lengths)",
            cs.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" / "),
            st.eval_ctx
        ),
    };
    let _ = writeln!(
        s,
        "Perplexity on `{}` ({ctx}, {} windows); greedy agreement and BLEU-4 against the reference engine over {} tokens of {} fixed prompts.\n",
        st.eval_text.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
        st.eval_windows,
        st.quality_tokens,
        super::QUALITY_PROMPTS.len()
    );
    let _ = writeln!(s, "| engine | backend | perplexity | reference | greedy agreement | mean common prefix | BLEU | status |\n|---|---|---:|---|---:|---:|---:|---|");
    for q in res.quality.iter().filter(|q| q.status != Status::Unavailable) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            q.engine,
            q.backend,
            opt(q.perplexity, 4),
            q.reference_engine.clone().unwrap_or_default(),
            q.greedy_agreement.map(|a| format!("{:.1} %", a * 100.0)).unwrap_or_default(),
            opt(q.greedy_prefix_mean, 1),
            opt(q.bleu, 1),
            match (&q.status, &q.reason) {
                (Status::Ok, _) => "ok".to_string(),
                (st, Some(why)) => format!("{}: {}", status_name(*st), why.replace('|', "/")),
                (st, None) => status_name(*st).to_string(),
            }
        );
    }
    if !res.memory_sweep.is_empty() {
        let _ = writeln!(s, "\n## Memory sweep (one full prefill per cell)\n\n| engine | backend | batch | seq | weights MB | KV cache MB | device peak MB | host peak RSS MB | prefill ms | status |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in res.memory_sweep.iter().filter(|r| r.status != Status::Unavailable) {
            let m = r.memory.unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.engine,
                r.backend,
                r.batch,
                r.seq_len,
                if r.memory.is_some() { mb(m.weights_bytes) } else { String::new() },
                if r.memory.is_some() { mb(m.kv_cache_bytes) } else { String::new() },
                m.device_peak_bytes.map(mb).unwrap_or_default(),
                r.host_peak_rss_bytes.map(mb).unwrap_or_default(),
                opt(r.prefill_ms, 1),
                match (&r.status, &r.reason) {
                    (Status::Ok, _) => "ok".to_string(),
                    (st, Some(why)) => format!("{}: {}", status_name(*st), why.replace('|', "/")),
                    (st, None) => status_name(*st).to_string(),
                }
            );
        }
    }
    let _ = writeln!(s, "\n## Plots\n\n![decode tok/s vs batch](tok_s_vs_batch.svg)\n![TTFT vs input length](ttft_vs_input.svg)\n![memory](memory.svg)\n![quality vs speed](quality_vs_speed.svg)");
    let unavailable: Vec<String> = res
        .speed
        .iter()
        .filter(|r| r.status == Status::Unavailable)
        .map(|r| (&r.engine, &r.backend, &r.reason))
        .chain(
            res.quality.iter().filter(|q| q.status == Status::Unavailable).map(|q| (&q.engine, &q.backend, &q.reason)),
        )
        .chain(
            res.memory_sweep
                .iter()
                .filter(|r| r.status == Status::Unavailable)
                .map(|r| (&r.engine, &r.backend, &r.reason)),
        )
        .map(|(e, b, why)| format!("- {e} / {b}: {}", why.clone().unwrap_or_default()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unavailable.is_empty() {
        let _ = writeln!(s, "\n## Not run here\n\n{}", unavailable.join("\n"));
    }
    s
}

/// One series per engine × backend.
pub(crate) type Series = (String, Vec<(f64, f64)>);

fn series(
    res: &BenchResults,
    x: impl Fn(&SpeedResult) -> f64,
    y: impl Fn(&SpeedResult) -> Option<f64>,
    filter: impl Fn(&SpeedResult) -> bool,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in res.speed.iter().filter(|r| r.status == Status::Ok && filter(r)) {
        let Some(yv) = y(r) else { continue };
        let key = format!("{} / {}", r.engine, r.backend);
        match out.iter_mut().find(|s| s.0 == key) {
            Some(s) => s.1.push((x(r), yv)),
            None => out.push((key, vec![(x(r), yv)])),
        }
    }
    for s in &mut out {
        s.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

pub(crate) fn line_chart(title: &str, xlabel: &str, ylabel: &str, data: &[Series]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let pts = data.iter().flat_map(|s| s.1.iter());
        let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        if data.is_empty() || x0 > x1 {
            let _ = root.draw(&Text::new(format!("{title}: no data"), (20, 20), ("sans-serif", 18)));
            let _ = root.present();
            drop(root);
            return svg;
        }
        if x0 == x1 {
            x0 -= 0.5;
            x1 += 0.5;
        }
        let chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0.0..y1 * 1.1 + 1e-9);
        if let Ok(mut chart) = chart {
            let _ = chart.configure_mesh().x_desc(xlabel).y_desc(ylabel).draw();
            for (i, (name, pts)) in data.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let _ = chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2))).map(|s| {
                    s.label(name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color))
                });
                let _ = chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())));
            }
            let _ = chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw();
        }
        let _ = root.present();
    }
    svg
}

pub fn plots(res: &BenchResults) -> Vec<(&'static str, String)> {
    let first_in = res.settings.input_lens.first().copied().unwrap_or(0);
    let first_b = res.settings.batch_sizes.first().copied().unwrap_or(1);
    let tok = series(res, |r| r.batch as f64, |r| r.decode_tok_s.map(|x| x.median), |r| r.input_len == first_in);
    let ttft = series(res, |r| r.input_len as f64, |r| r.ttft_ms.map(|x| x.median), |r| r.batch == first_b);
    let mut mem: Vec<Series> = Vec::new();
    for r in res.memory_sweep.iter().filter(|r| r.status == Status::Ok) {
        let Some(m) = r.memory else { continue };
        let bytes = m.device_peak_bytes.or(r.host_peak_rss_bytes).unwrap_or(m.weights_bytes + m.kv_cache_bytes);
        let key = format!("{} / {} seq {}", r.engine, r.backend, r.seq_len);
        match mem.iter_mut().find(|s| s.0 == key) {
            Some(s) => s.1.push((r.batch as f64, bytes as f64 / 1e6)),
            None => mem.push((key, vec![(r.batch as f64, bytes as f64 / 1e6)])),
        }
    }
    if mem.is_empty() {
        // Without a sweep, plot weights + KV cache of the speed cells.
        for r in res.speed.iter().filter(|r| r.status == Status::Ok && r.input_len == first_in) {
            let Some(m) = r.memory else { continue };
            let key = format!("{} / {}", r.engine, r.backend);
            let v = (r.batch as f64, (m.weights_bytes + m.kv_cache_bytes) as f64 / 1e6);
            match mem.iter_mut().find(|s| s.0 == key) {
                Some(s) => s.1.push(v),
                None => mem.push((key, vec![v])),
            }
        }
    }
    // Quality vs speed: one point per engine × backend (decode tok/s at the first cell, perplexity).
    let mut qs: Vec<Series> = Vec::new();
    for q in res.quality.iter().filter(|q| q.perplexity.is_some()) {
        let speed = res
            .speed
            .iter()
            .find(|r| r.engine == q.engine && r.backend == q.backend && r.batch == first_b && r.input_len == first_in)
            .and_then(|r| r.decode_tok_s.map(|x| x.median));
        if let (Some(sp), Some(p)) = (speed, q.perplexity) {
            qs.push((format!("{} / {}", q.engine, q.backend), vec![(sp, p)]));
        }
    }
    vec![
        (
            "tok_s_vs_batch.svg",
            line_chart(&format!("decode tok/s vs batch (input {first_in})"), "batch size", "tok/s", &tok),
        ),
        (
            "ttft_vs_input.svg",
            line_chart(&format!("TTFT vs input length (batch {first_b})"), "input tokens", "TTFT (ms)", &ttft),
        ),
        ("memory.svg", line_chart("memory vs batch", "batch size", "MB", &mem)),
        ("quality_vs_speed.svg", line_chart("perplexity vs decode tok/s (batch 1)", "decode tok/s", "perplexity", &qs)),
    ]
}
