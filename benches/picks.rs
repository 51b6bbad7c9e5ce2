#![allow(missing_docs)] // criterion_group! generates an undocumented public function
//! What an unsure question costs the bot when it looks for a lesson among customers' picks
//! (`bot::Picks::learned`): a scan of every remembered press, at the bound
//! (`bot::MAX_PICKS`, 10,000) and at a tenth of it. Run: `cargo bench --bench picks`.

use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk::bot::{Pick, Picks, Press, MAX_PICKS};

/// A deterministic unit vector of 384 dimensions (the encoder's size).
fn vector(seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v: Vec<f32> = (0..384)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("picks: one unsure question looks for a lesson");
    for n in [MAX_PICKS / 10, MAX_PICKS] {
        let picks = Picks::new();
        for i in 0..n {
            picks.remember(
                Pick {
                    press: Press {
                        conversation: format!("c{i}"),
                        offer_seq: 1,
                        question: format!("question {i}"),
                        passage: Some(format!("article-{}.md", i % 50)),
                        quote_from: 0,
                    },
                    embedding: vector(i as u64).into(),
                },
                picks.ticket(),
            );
        }
        let question = vector(u64::MAX);
        group.bench_function(format!("{n} picks"), |b| {
            b.iter(|| picks.learned(&question, &[], |_| true, 0.80, 2))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
