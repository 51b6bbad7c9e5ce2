//! The sentence encoder under indexing load: a customer's message waits for at most one batch of a
//! large re-index, never for all of it, and two indexers of the same texts encode them once.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use frontdesk::nlu::EmbeddingCache;

/// Texts unlike any other test's, so no cache anywhere already holds them.
fn passages(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{tag} passage {i}: the {} settings of site {}",
                i * 7,
                i % 13
            )
        })
        .collect()
}

#[test]
fn a_customers_message_is_encoded_between_the_batches_of_a_large_index() {
    let (encoder, _) = common::nlu();
    let texts = passages("re-index", 1200);
    let total = texts.len() as i64;
    let finished = Arc::new(AtomicBool::new(false));
    let indexer = {
        let (encoder, finished) = (encoder.clone(), finished.clone());
        std::thread::spawn(move || {
            let vectors = encoder.embed_blocking(texts).expect("the index is encoded");
            finished.store(true, Ordering::SeqCst);
            vectors.len()
        })
    };
    // The re-index is in the encoder's hands, less than half done, when the customer writes.
    while encoder.waiting() <= total / 2 {
        assert!(
            !finished.load(Ordering::SeqCst),
            "the re-index was never seen waiting"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = runtime
        .block_on(encoder.embed_one("where is my order? it has been a week"))
        .expect("the message is encoded");
    assert_eq!(reply.len(), 384);
    // Encoded ahead of the rest of the re-index, which is still waiting (in arrival order the
    // message would have come after all of it).
    let left = encoder.waiting();
    assert!(
        !finished.load(Ordering::SeqCst) && left > 0,
        "the message waited for the re-index ({left} of {total} texts still waiting)"
    );
    assert_eq!(indexer.join().unwrap() as i64, total);
}

#[test]
fn two_indexers_of_the_same_texts_encode_each_text_once() {
    let (encoder, _) = common::nlu();
    let cache = EmbeddingCache::in_memory();
    let texts = passages("twice", 200);
    let fresh: Vec<usize> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| cache.embed_blocking(&encoder, &texts).expect("encoded").1))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(fresh.iter().sum::<usize>(), texts.len(), "{fresh:?}");
    assert_eq!(cache.len(), texts.len());
}
