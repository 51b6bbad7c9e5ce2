//! The two sentence encoders side by side in one run (`nlu.encoder = "torch"` and `"onnx-int8"`):
//! how far the int8 model's vectors are from libtorch's (cosine per text), whether retrieval picks
//! the same section with each, and what a sentence costs alone and in batches of 32 (the int8
//! encoder runs each text of a batch alone: its activations are quantized per call).
//!
//! ```sh
//! cargo run --release --example encoder_backends            # demo base + ../shared/data's Plausible docs
//! cargo run --release --example encoder_backends -- --sections 500 --rounds 3
//! ```
//!
//! Texts: the knowledge-base sections as the index embeds them (title, headings, text), and the
//! development questions of `tests/questions/dev/*.yaml` (never the blind sets), each against its
//! own base: `plausible*.yaml` against `../shared/data/plausible_docs/docs`, the others against
//! `knowledge_base/`. Timing is wall-clock on whatever else the machine runs: say how loaded it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use frontdesk::nlu::{cosine, for_models, Embedding, Encoder};
use frontdesk::settings::{EncoderBackend, NluSettings};

struct Base {
    name: &'static str,
    /// (article path, text the index embeds) per section.
    sections: Vec<(String, String)>,
}

struct Question {
    text: String,
    base: usize,
    pages: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut max_sections, mut rounds) = (usize::MAX, 2usize);
    while let Some(a) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match a.as_str() {
            "--sections" => max_sections = value()?.parse()?,
            "--rounds" => rounds = value()?.parse()?,
            _ => anyhow::bail!("usage: encoder_backends [--sections N] [--rounds N]"),
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut bases = vec![load_base(
        "demo",
        &root.join("knowledge_base"),
        max_sections,
    )?];
    let plausible = root.join("../shared/data/plausible_docs/docs");
    if plausible.is_dir() {
        bases.push(load_base("plausible", &plausible, max_sections)?);
    } else {
        eprintln!("{} is absent: the demo base only", plausible.display());
    }
    let questions = load_questions(&root.join("tests/questions/dev"), &bases)?;

    let settings = |encoder| NluSettings {
        encoder,
        model_dir: root.join("models/all-MiniLM-L6-v2"),
        onnx_model_dir: root.join("models/all-MiniLM-L6-v2-int8"),
        onnx_runtime: root.join(".onnxruntime/libonnxruntime.so"),
        ..Default::default()
    };
    let backends = [EncoderBackend::Torch, EncoderBackend::OnnxInt8];
    let encoders: Vec<Encoder> = backends
        .iter()
        .map(|&b| Encoder::load(&settings(b)).context("run scripts/setup.sh first"))
        .collect::<Result<_, _>>()?;
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "encoders: {} (1 inference thread each, as nlu.threads = 1); {threads} CPUs; load average {}",
        backends.map(|b| b.name()).join(" vs "),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );

    // Section vectors: the bulk path (batches of nlu.max_batch = 32), timed per backend.
    let texts: Vec<String> = bases
        .iter()
        .flat_map(|b| b.sections.iter().map(|(_, t)| t.clone()))
        .collect();
    let mut section_vectors = Vec::new();
    let mut batch_ms = Vec::new();
    for encoder in &encoders {
        let start = Instant::now();
        section_vectors.push(encoder.embed_blocking(texts.clone())?);
        batch_ms.push(start.elapsed().as_secs_f64() * 1e3 / texts.len() as f64);
    }

    // Question vectors: one at a time (a chat message alone), rounds interleaved between backends
    // so that both see the same background load.
    let qtexts: Vec<String> = questions
        .iter()
        .map(|q| for_models(&q.text).into_owned())
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut alone_ms: Vec<Vec<f64>> = vec![Vec::new(); encoders.len()];
    let mut question_vectors: Vec<Vec<Embedding>> = vec![Vec::new(); encoders.len()];
    for _ in 0..rounds {
        for (i, encoder) in encoders.iter().enumerate() {
            question_vectors[i].clear();
            for q in &qtexts {
                let start = Instant::now();
                question_vectors[i].push(runtime.block_on(encoder.embed_one(q))?);
                alone_ms[i].push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }

    println!(
        "\n{} section texts ({}), {} dev questions",
        texts.len(),
        bases
            .iter()
            .map(|b| format!("{} {}", b.name, b.sections.len()))
            .collect::<Vec<_>>()
            .join(", "),
        questions.len()
    );
    println!("\ncosine(torch, onnx-int8) per text:");
    for (what, a, b) in [
        ("sections", &section_vectors[0], &section_vectors[1]),
        ("questions", &question_vectors[0], &question_vectors[1]),
    ] {
        let mut c: Vec<f32> = a.iter().zip(b.iter()).map(|(x, y)| cosine(x, y)).collect();
        c.sort_by(f32::total_cmp);
        let at = |p: f64| c[((c.len() - 1) as f64 * p).round() as usize];
        let mean = c.iter().sum::<f32>() / c.len() as f32;
        println!(
            "  {what:<9} n={:<5} mean {mean:.4}  min {:.4}  p1 {:.4}  p5 {:.4}  median {:.4}",
            c.len(),
            c[0],
            at(0.01),
            at(0.05),
            at(0.5)
        );
    }

    // Retrieval by vectors alone: the best section of the question's own base, per backend.
    let mut offsets = vec![0];
    for b in &bases {
        offsets.push(offsets.last().unwrap() + b.sections.len());
    }
    let mut same_top = 0;
    let mut right = [0usize; 2];
    for (qi, q) in questions.iter().enumerate() {
        let range = offsets[q.base]..offsets[q.base + 1];
        let top: Vec<usize> = (0..2)
            .map(|e| {
                range
                    .clone()
                    .max_by(|&x, &y| {
                        cosine(&question_vectors[e][qi], &section_vectors[e][x])
                            .total_cmp(&cosine(&question_vectors[e][qi], &section_vectors[e][y]))
                    })
                    .expect("a base with sections")
            })
            .collect();
        same_top += usize::from(top[0] == top[1]);
        for e in 0..2 {
            let page = &bases[q.base].sections[top[e] - offsets[q.base]].0;
            right[e] += usize::from(q.pages.contains(page));
        }
    }
    let answerable = questions.iter().filter(|q| !q.pages.is_empty()).count();
    println!(
        "\nvector-only retrieval over each question's base: same best section {same_top}/{}; \
         best section in an expected page: torch {}/{answerable}, onnx-int8 {}/{answerable}",
        questions.len(),
        right[0],
        right[1]
    );

    println!("\ncost per sentence (ms):");
    for (i, b) in backends.iter().enumerate() {
        let a = &mut alone_ms[i];
        a.sort_by(f64::total_cmp);
        let at = |p: f64| a[((a.len() - 1) as f64 * p).round() as usize];
        println!(
            "  {:<9} alone (a question, {} calls): p50 {:.2}  p90 {:.2}  p99 {:.2}   in batches of 32 (sections): {:.2}",
            b.name(),
            a.len(),
            at(0.5),
            at(0.9),
            at(0.99),
            batch_ms[i]
        );
    }
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}

fn load_base(name: &'static str, dir: &Path, max: usize) -> anyhow::Result<Base> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_dir() && !hidden {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut sections = Vec::new();
    for path in files {
        let rel = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        let article = frontdesk::kb::parse(&rel, &std::fs::read_to_string(&path)?)?;
        for s in &article.sections {
            let mut text = article.title.clone();
            for h in &s.heading_path {
                text.push_str(". ");
                text.push_str(h);
            }
            text.push_str(". ");
            text.push_str(&s.text);
            sections.push((rel.clone(), text));
        }
    }
    sections.truncate(max);
    Ok(Base { name, sections })
}

/// The dev sets' questions whose base was loaded; pages kept only when they are among its sections.
fn load_questions(dir: &Path, bases: &[Base]) -> anyhow::Result<Vec<Question>> {
    let mut by_file = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            by_file.insert(path.clone(), std::fs::read_to_string(&path)?);
        }
    }
    let mut questions = Vec::new();
    for (path, source) in by_file {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let base_name = if stem.starts_with("plausible") {
            "plausible"
        } else {
            "demo"
        };
        let Some(base) = bases.iter().position(|b| b.name == base_name) else {
            continue;
        };
        let doc: serde_yaml::Value = serde_yaml::from_str(&source)?;
        for q in doc["questions"].as_sequence().into_iter().flatten() {
            let Some(text) = q["text"].as_str() else {
                continue;
            };
            let pages = q["pages"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .filter(|p| bases[base].sections.iter().any(|(a, _)| a == p))
                .collect();
            questions.push(Question {
                text: text.to_owned(),
                base,
                pages,
            });
        }
    }
    Ok(questions)
}
