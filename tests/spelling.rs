//! Customers type on phones: a question with a typo in its key word finds the article it finds
//! without the typo, because misspelt words are corrected against the knowledge base's own words
//! (src/kb/spelling.rs); and the correction follows the base as editors change it.

mod common;

use common::{nlu, spawn_app, spawn_app_with};
use frontdesk::kb::KnowledgeBase;
use serde_json::Value;

/// The first page the reply cites and whether it answered (rather than offered choices).
fn first_page(reply: &Value) -> (String, bool) {
    let page = reply["sources"][0]["url"]
        .as_str()
        .unwrap_or_default()
        .split('#')
        .next()
        .unwrap_or_default()
        .to_owned();
    let answered = reply["quick_replies"]
        .as_array()
        .is_some_and(|q| q.iter().any(|r| r["action"] == "helpful"));
    (page, answered)
}

async fn reply(app: &common::TestApp, text: &str) -> Value {
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let reply = customer.outcome("q1", text).await;
    customer.close().await;
    reply
}

#[tokio::test]
async fn a_question_with_typos_in_its_key_words_gets_the_article_it_gets_without_them() {
    let app = spawn_app().await;
    let clean = reply(&app, "where is my package").await;
    let typos = reply(&app, "wher is my pakage").await;
    let (page, answered) = first_page(&clean);
    assert!(!page.is_empty(), "the clean question cites a page: {clean}");
    assert_eq!(
        first_page(&typos),
        (page, answered),
        "clean: {clean}\ntypos: {typos}"
    );
}

#[tokio::test]
async fn without_correction_the_typos_cost_the_article() {
    // The same question as above with `kb.spelling` off: the check that the test above measures
    // the correction and not a forgiving encoder.
    let app = spawn_app_with(|s| s.kb.spelling = false).await;
    let clean = reply(&app, "where is my package").await;
    let typos = reply(&app, "wher is my pakage").await;
    assert_ne!(
        first_page(&typos),
        first_page(&clean),
        "clean: {clean}\ntypos: {typos}"
    );
}

#[tokio::test]
async fn correction_uses_the_words_of_the_base_as_it_is_now() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("frother.md"),
        "---\ntitle: Clean the frother\n---\n\nRinse the frother after each use.\n",
    )
    .unwrap();
    let (encoder, cache) = nlu();
    let path = dir.path().to_owned();
    let (kb, _) =
        tokio::task::spawn_blocking(move || KnowledgeBase::open(&path, encoder, cache).unwrap())
            .await
            .unwrap();
    // "Frothmatic" is no English word and not yet a word of this base: nothing to correct to.
    assert_eq!(
        kb.correct("my frothmatc is broken"),
        "my frothmatc is broken"
    );
    assert_eq!(
        kb.correct("how do i clean the frothr"),
        "how do i clean the frother"
    );

    std::fs::write(
        dir.path().join("frothmatic.md"),
        "---\ntitle: The Frothmatic\n---\n\nThe Frothmatic heats and froths milk.\n",
    )
    .unwrap();
    let synced = kb.clone();
    tokio::task::spawn_blocking(move || synced.sync().unwrap())
        .await
        .unwrap();
    assert_eq!(
        kb.correct("my frothmatc is broken"),
        "my frothmatic is broken"
    );
    // Codes, numbers, links and addresses are never touched.
    for text in [
        "error E31 on the frothmatc3",
        "see https://example.com/frothmatc",
        "mail frothmatc@example.com",
    ] {
        assert_eq!(kb.correct(text), text);
    }

    let found = kb.search("my frothmatc is broken", 3).await.unwrap();
    assert_eq!(found[0].path, "frothmatic.md", "{found:?}");
    kb.set_spelling(false);
    assert_eq!(
        kb.correct("my frothmatc is broken"),
        "my frothmatc is broken"
    );
}
