#![allow(missing_docs)] // criterion_group! generates an undocumented public function
//! One hybrid search of the knowledge base (the question already embedded, as the bot searches),
//! with and without matching long sections by their pieces, on the Plausible help centre when
//! `../shared/data` is beside the repository (else the demo base). Run: `cargo bench --bench
//! search`. The first run embeds the base into `data/embeddings.cache` (a few minutes); later
//! runs read it.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};

mod common;
use frontdesk::kb::KnowledgeBase;
use frontdesk::nlu::{EmbeddingCache, Encoder};
use frontdesk::settings::NluSettings;

const QUESTIONS: [&str; 4] = [
    "do you accept paypal? finance doesnt want the company card on file",
    "how do i export my stats as csv",
    "a colleague left the company, how do i remove their access to our dashboards",
    "the graphs have been empty for days",
];

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (name, dir) = common::knowledge_base();
    let settings = NluSettings {
        model_dir: root.join("models/all-MiniLM-L6-v2"),
        ..Default::default()
    };
    let encoder = Encoder::load(&settings).expect("run scripts/setup.sh first");
    let cache = EmbeddingCache::open(&root.join("data/embeddings.cache")).expect("cache");
    let (kb, _) = KnowledgeBase::open(Path::new(&dir), encoder.clone(), cache).expect("kb");
    let vectors: Vec<_> = QUESTIONS
        .iter()
        .map(|q| {
            encoder
                .embed_blocking(vec![(*q).to_owned()])
                .expect("embeds")[0]
                .clone()
        })
        .collect();

    let mut group = c.benchmark_group(format!("search ({name} base, 4 questions)"));
    for pieces in [false, true] {
        kb.set_pieces(pieces);
        group.bench_function(
            if pieces {
                "with pieces"
            } else {
                "sections only"
            },
            |b| {
                b.iter(|| {
                    for (q, v) in QUESTIONS.iter().zip(&vectors) {
                        kb.search_with(q, v, 10, kb.keyword_weight())
                            .expect("searches");
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
