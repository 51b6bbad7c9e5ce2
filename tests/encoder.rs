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

/// Threads of this process named `name`, with their niceness (Linux's /proc).
fn niceness_of_threads(name: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc is mounted") {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue; // the thread ended
        };
        let (head, rest) = stat.rsplit_once(')').expect("stat has (comm)");
        if head.split_once('(').map(|(_, comm)| comm) == Some(name) {
            // Fields after the name start at the third (state); niceness is the 19th.
            out.push(rest.split_whitespace().nth(16).unwrap().parse().unwrap());
        }
    }
    out
}

/// Several workers (`nlu.workers`) share one bulk job's batches and customers' messages: every
/// caller gets its own vectors, in the order of its texts, the same as one worker would give; the
/// workers run at `nlu.worker_nice`.
#[test]
fn several_workers_share_the_work_and_each_caller_gets_its_own_vectors_in_order() {
    let (one, _) = common::nlu();
    let settings = frontdesk::settings::NluSettings {
        model_dir: common::root().join("models/all-MiniLM-L6-v2"),
        workers: 3,
        worker_nice: 7,
        max_batch: 8,
        ..Default::default()
    };
    let three = frontdesk::nlu::Encoder::load(&settings).expect("three workers load");
    let at_seven = niceness_of_threads("encoder")
        .into_iter()
        .filter(|&n| n == 7)
        .count();
    assert!(
        at_seven >= 3,
        "{at_seven} encoder threads run at niceness 7, not three"
    );
    let bulk = passages("shared bulk", 100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let messages: Vec<String> = (0..40)
        .map(|i| format!("order {i} has not arrived, it was due {} days ago", i % 9))
        .collect();
    let (indexed, answered) = std::thread::scope(|scope| {
        let indexer = scope.spawn(|| three.embed_blocking(bulk.clone()).expect("bulk encoded"));
        let answered: Vec<_> = runtime.block_on(async {
            let calls = messages.iter().map(|m| {
                let three = three.clone();
                let m = m.clone();
                tokio::spawn(async move { three.embed_one(&m).await })
            });
            let mut out = Vec::new();
            for call in calls.collect::<Vec<_>>() {
                out.push(call.await.unwrap().expect("message encoded"));
            }
            out
        });
        (indexer.join().unwrap(), answered)
    });
    assert_eq!(indexed.len(), bulk.len());
    assert_eq!(three.waiting(), 0, "nothing is left counted as waiting");
    let same = |text: &str, got: &[f32]| {
        let alone = one.embed_blocking(vec![text.to_owned()]).unwrap();
        let cos = frontdesk::nlu::cosine(&alone[0], got);
        assert!(
            cos > 0.999,
            "{text:?} got another text's vector (cosine {cos})"
        );
    };
    for (text, v) in bulk.iter().zip(&indexed) {
        same(text, v);
    }
    for (text, v) in messages.iter().zip(&answered) {
        same(text, v);
    }
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap_or(0)
}

#[test]
fn the_tuned_layers_read_how_a_customer_writes() {
    let dir = common::root().join("models/signals-tuned");
    let settings = frontdesk::settings::NluSettings {
        model_dir: common::root().join("models/all-MiniLM-L6-v2"),
        signal_reader: frontdesk::settings::SignalReader::Tuned,
        tuned_signals_dir: dir.clone(),
        ..Default::default()
    };
    let encoder =
        frontdesk::nlu::Encoder::load(&settings).expect("the encoder and its tuned layers load");
    // What the Python model they were trained as made of these texts, one at a time.
    let references = frontdesk::nlu::tuned::read_manifest(&dir)
        .expect("tuned.json")
        .reference;
    assert!(
        references.len() >= 4,
        "tuned.json holds its reference readings"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in &references {
        let encoded = runtime
            .block_on(encoder.embed_one_full(&r.text))
            .expect("encoded");
        let read = encoded
            .tuned
            .expect("the tuned layers read a customer's message");
        assert!(
            (read.goemotions_upset - r.goemotions_upset).abs() < 0.01,
            "{:?}: {read:?} against {r:?}",
            r.text
        );
        for (a, b) in read.support.iter().zip(r.support) {
            assert!((a - b).abs() < 0.01, "{:?}: {read:?} against {r:?}", r.text);
        }
    }
    // And they tell the kinds apart: calm, upset, asking for a person, urgent
    // (frontdesk::nlu::signals::CLASSES).
    let texts = [
        "how do i export my stats as csv",
        "THIRD time asking, where is my refund?? this is ridiculous",
        "can i talk to a real person please",
        "our launch starts in two hours and the checkout page is down",
    ];
    let encoded = encoder
        .embed_blocking_full(texts.iter().map(|t| t.to_string()).collect())
        .expect("encoded");
    let classes: Vec<usize> = encoded
        .iter()
        .map(|e| argmax(&e.tuned.expect("read in a batch too").support))
        .collect();
    assert_eq!(classes, [0, 1, 3, 2]);
    // A search gets the shared encoder's embedding, the same whoever else reads the text.
    let plain = runtime
        .block_on(encoder.embed_one(texts[0]))
        .expect("encoded");
    let same = frontdesk::nlu::cosine(&plain, &encoded[0].sentence);
    assert!(same > 0.9999, "cosine {same}");
}
