#![allow(missing_docs)] // criterion_group! generates an undocumented public function
//! The bot's answer step alone, as a turn runs it once the question is understood: the hybrid
//! search, the decision over the passages found, the reply (`Bot::answer`); and the search alone
//! beside it, so the decision's share shows. On the Plausible help centre when `../shared/data`
//! is beside the repository (else the demo base), with the shipped settings and models. Run:
//! `cargo bench --bench answer`. The first run embeds the base into `data/embeddings.cache` (a
//! few minutes); later runs read it.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};

mod common;
use frontdesk::settings::Settings;

/// Questions as customers write them: answerable, asked badly, and not answerable at all.
const QUESTIONS: [&str; 8] = [
    "do you accept paypal? finance doesnt want the company card on file",
    "how do i export my stats as csv",
    "a colleague left the company, how do i remove their access to our dashboards",
    "the graphs have been empty for days",
    "can i see a log of who changed our site settings",
    "is there a discount for nonprofits",
    "whats the weather like in berlin tomorrow",
    "my script is installed but no visitors show up, i checked the domain twice",
];

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (name, dir) = common::knowledge_base();
    let mut settings = Settings::default();
    settings.kb.dir = dir;
    settings.kb.watch = false;
    settings.kb.embedding_cache = root.join("data/embeddings.cache");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (bot, analyses) = runtime.block_on(async {
        let bot = frontdesk::startup::open_bot(&settings)
            .await
            .expect("the bot (run scripts/setup.sh first)");
        let mut analyses = Vec::new();
        for q in QUESTIONS {
            analyses.push(bot.understand(q).await.expect("understood"));
        }
        (bot, analyses)
    });

    let mut group = c.benchmark_group(format!("answer ({name} base, 8 questions)"));
    group.bench_function("search alone", |b| {
        let kb = bot.kb();
        b.iter(|| {
            for (q, a) in QUESTIONS.iter().zip(&analyses) {
                kb.search_with(q, &a.embedding, 10, kb.keyword_weight())
                    .expect("searches");
            }
        })
    });
    group.bench_function("answer (search, decision, reply)", |b| {
        b.iter(|| {
            for (q, a) in QUESTIONS.iter().zip(&analyses) {
                bot.answer(q, a).expect("answers");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
