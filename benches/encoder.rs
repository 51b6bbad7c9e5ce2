#![allow(missing_docs)] // criterion_group! generates an undocumented public function
//! Encoder throughput: one sentence at a time, against the same sentences sent by many concurrent
//! callers (the worker batches whatever is waiting). Run: `cargo bench --bench encoder`.
//! Per-sentence cost = reported time / sentences per iteration (printed in the group name).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use frontdesk::nlu::Encoder;
use frontdesk::settings::NluSettings;

const SENTENCES: [&str; 8] = [
    "I was charged twice for one order",
    "my brewer shows E31 after I changed my router",
    "how do I pause my subscription while I'm on holiday?",
    "the package says delivered but it's not here",
    "can I change the grind size for my next delivery",
    "I can't log in, the reset email never arrives",
    "This is the third time I'm asking where my refund is!!",
    "do you ship to Canada and how long does it take",
];

fn encoder() -> Encoder {
    encoder_with(false)
}

/// `tuned`: the support signals' tuned layers run on every customer's message too.
fn encoder_with(tuned: bool) -> Encoder {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let settings = NluSettings {
        model_dir: root.join("models/all-MiniLM-L6-v2"),
        signal_reader: if tuned {
            frontdesk::settings::SignalReader::Tuned
        } else {
            frontdesk::settings::SignalReader::Head
        },
        tuned_signals_dir: root.join("models/signals-tuned"),
        ..Default::default()
    };
    Encoder::load(&settings).expect("run scripts/setup.sh first")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let encoder = runtime.block_on(async { tokio::task::spawn_blocking(encoder).await.unwrap() });

    let mut group = c.benchmark_group("encoder");
    group.sample_size(20);
    group.throughput(Throughput::Elements(SENTENCES.len() as u64));
    group.bench_function("alone: 8 sentences, one request at a time", |b| {
        b.to_async(&runtime).iter(|| async {
            for s in SENTENCES {
                encoder.embed_one(s).await.unwrap();
            }
        })
    });
    for callers in [8usize, 32, 128] {
        group.throughput(Throughput::Elements(callers as u64));
        group.bench_function(
            format!("concurrent: {callers} callers, one sentence each"),
            |b| {
                b.to_async(&runtime).iter(|| async {
                    let tasks: Vec<_> = (0..callers)
                        .map(|i| {
                            let encoder = encoder.clone();
                            tokio::spawn(async move {
                                encoder
                                    .embed_one(SENTENCES[i % SENTENCES.len()])
                                    .await
                                    .unwrap()
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            },
        );
    }
    group.finish();

    // What the tuned layers add to a customer's message (both in one run: compare the
    // two as a ratio).
    let (plain, tuned) = runtime.block_on(async {
        (
            tokio::task::spawn_blocking(|| encoder_with(false))
                .await
                .unwrap(),
            tokio::task::spawn_blocking(|| encoder_with(true))
                .await
                .unwrap(),
        )
    });
    let mut group = c.benchmark_group("customer message");
    group.sample_size(20);
    group.throughput(Throughput::Elements(SENTENCES.len() as u64));
    for (name, encoder) in [
        ("8 messages: shared encoder only", &plain),
        ("8 messages: with the tuned signal layers", &tuned),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                for s in SENTENCES {
                    encoder.embed_one_full(s).await.unwrap();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
