//! The bot's answer decision on a help centre it was not fitted on (the Plausible docs in
//! ../shared/data; skipped when absent): the right article cited first or among the choices, the
//! right section quoted, and "I don't know" for what the docs do not answer (issue 14).

mod common;

use common::spawn_plausible_app;
use serde_json::Value;

async fn plausible_app(test: &str) -> Option<common::TestApp> {
    spawn_plausible_app(test, |_| {}).await
}

/// The bot's reply to `text`, asked as the first message of a conversation of its own.
async fn reply(app: &common::TestApp, text: &str) -> Value {
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let (_, reply) = customer.ask("q1", text).await;
    customer.close().await;
    reply
}

/// The knowledge-base pages (and sections) the reply cites, first the one it answers from.
fn cited(reply: &Value) -> Vec<(String, String)> {
    reply["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let url = s["url"].as_str().unwrap_or_default();
            let page = url
                .strip_prefix("/kb/")
                .unwrap_or(url)
                .split('#')
                .next()
                .unwrap_or_default();
            (
                page.to_owned(),
                s["section"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn is_answer(reply: &Value) -> bool {
    reply["quick_replies"]
        .as_array()
        .is_some_and(|q| q.iter().any(|r| r["action"] == "helpful"))
}

#[tokio::test]
async fn on_the_plausible_docs_the_right_page_is_cited_first_or_among_choices() {
    let Some(app) =
        plausible_app("on_the_plausible_docs_the_right_page_is_cited_first_or_among_choices").await
    else {
        return;
    };
    // No shared word with "Billing FAQ"; it declined this before the learned decision.
    let text = "do you accept paypal? finance doesnt want the company card on file";
    let r = reply(&app, text).await;
    let pages = cited(&r);
    let found = if is_answer(&r) {
        pages.first().is_some_and(|(p, _)| p == "billing.md")
    } else {
        pages.iter().any(|(p, _)| p == "billing.md")
    };
    assert!(found, "{text:?}: {r}");
}

/// A short question whose one fitting page stands far out from the rest of the base is answered,
/// though its cosine (0.55) is middling: the decision weighs how far the passage stands out from
/// the question's similarity to every section (`standing`), not the cosine alone. Declined before.
#[tokio::test]
async fn on_the_plausible_docs_a_page_that_stands_out_is_answered_though_its_cosine_is_middling() {
    let Some(app) = plausible_app(
        "on_the_plausible_docs_a_page_that_stands_out_is_answered_though_its_cosine_is_middling",
    )
    .await
    else {
        return;
    };
    let text = "is there dark mode";
    let r = reply(&app, text).await;
    assert!(is_answer(&r), "{text:?} was not answered: {r}");
    assert_eq!(
        cited(&r).first().map(|(p, _)| p.as_str()),
        Some("dashboard-appearance.md"),
        "{r}"
    );
}

#[tokio::test]
async fn on_the_plausible_docs_csv_export_cites_the_export_page_not_the_api() {
    let Some(app) =
        plausible_app("on_the_plausible_docs_csv_export_cites_the_export_page_not_the_api").await
    else {
        return;
    };
    let text = "how do i export my stats as csv";
    let r = reply(&app, text).await;
    // Answered from the export page, or that page offered among the choices (CSV import is a
    // fair second guess); either way with an export section, not the stats API's.
    let pages = cited(&r);
    let export = if is_answer(&r) {
        pages.first().filter(|(p, _)| p == "export-stats.md")
    } else {
        pages.iter().find(|(p, _)| p == "export-stats.md")
    };
    let (_, section) =
        export.unwrap_or_else(|| panic!("{text:?} did not cite the export page: {r}"));
    assert!(
        !section.to_lowercase().contains("api"),
        "quoted the stats API section, not the CSV export: {r}"
    );
}

#[tokio::test]
async fn on_the_plausible_docs_a_question_they_do_not_answer_gets_i_dont_know() {
    let Some(app) =
        plausible_app("on_the_plausible_docs_a_question_they_do_not_answer_gets_i_dont_know").await
    else {
        return;
    };
    let text = "do you have an iphone app with push notifications";
    let r = reply(&app, text).await;
    assert!(cited(&r).is_empty(), "{text:?} cited an article: {r}");
    assert!(
        r["text"]
            .as_str()
            .unwrap_or_default()
            .contains("don't know"),
        "{r}"
    );
    assert!(
        r["quick_replies"]
            .as_array()
            .is_some_and(|q| q.iter().any(|b| b["action"] == "request_human")),
        "a person is offered: {r}"
    );
}

/// With `bot.rerank.enabled`, the bot quotes, from the article it answers with, the passage the
/// cross-encoder scores best among the ones it rescored, whatever the first-stage search's order.
#[tokio::test]
async fn with_the_reranker_the_bot_quotes_the_passage_the_reranker_scores_best() {
    let app = common::spawn_app_with(|s| s.bot.rerank.enabled = true).await;
    let settings = frontdesk::settings::RerankSettings::default();
    let reranker = frontdesk::kb::Reranker::load(
        &common::root().join("models/reranker"),
        settings.top,
        settings.max_len,
    )
    .expect("models/reranker loads");
    let question = "if i cancel now will the coffee that is already on its way still arrive";
    let (status, body) = app
        .api(&format!("/api/explain?q={}", question.replace(' ', "+")))
        .await;
    assert_eq!(status, 200, "{body}");
    let reply = &body["reply"];
    let cited = reply["sources"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{question:?} was answered from no article: {reply}"));
    let candidates: Vec<&Value> = reply["candidates"]
        .as_array()
        .expect("the reply lists its candidates")
        .iter()
        .take(settings.top)
        .collect();
    let texts: Vec<String> = candidates
        .iter()
        .map(|p| {
            let headings: Vec<String> = p["heading_path"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h.as_str().map(str::to_owned))
                .collect();
            frontdesk::kb::passage_text(
                p["title"].as_str().unwrap_or_default(),
                &headings,
                p["text"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let q = question.to_owned();
    let scores = tokio::task::spawn_blocking(move || reranker.score_texts(&q, texts))
        .await
        .unwrap()
        .expect("the reranker scores");
    let page = cited.split('#').next().unwrap_or_default();
    let best = candidates
        .iter()
        .zip(&scores)
        .filter(|(p, _)| p["link"].as_str().unwrap_or_default().split('#').next() == Some(page))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(p, _)| p["link"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        best.as_deref(),
        Some(cited),
        "scores {scores:?} of {candidates:?}"
    );
}

/// A follow-up that another section of the same article answers ("…on it too") is answered, not
/// taken for the same question asked again and handed to a person (issue 14, multi-turn).
#[tokio::test]
async fn a_follow_up_answered_from_the_same_article_stays_with_the_bot() {
    let app = common::spawn_app().await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let first = customer
        .outcome("f1", "need an invoice for my company")
        .await;
    assert!(is_answer(&first), "{first}");
    assert!(
        cited(&first)[0].0.contains("invoices-and-vat-receipts"),
        "{first}"
    );
    let second = customer
        .outcome("f2", "can you put our VAT number on it too")
        .await;
    assert_eq!(second["type"], "message", "handed over: {second}");
    assert!(is_answer(&second), "{second}");
    assert!(
        cited(&second)[0].0.contains("invoices-and-vat-receipts"),
        "{second}"
    );
    customer.close().await;
}

/// An error code the customer quotes is answered from the section that lists it, not from a
/// section that reads closer ("brewer says E40" quoted the error-code page's introduction), and
/// answered at all when the sentence encoder makes little of the code ("hey, brewer is showing
/// E60" and "E25 on the display what do i do" were declined: the one article listing the code
/// was not probable enough on its own); a code two articles list is offered from both, each with
/// the one line that lists it.
#[tokio::test]
async fn the_section_listing_a_quoted_error_code_is_the_one_quoted() {
    let app = common::spawn_app().await;
    for (question, section, code) in [
        ("brewer says E40", "Maintenance and water flow", "E40"),
        ("my brewer shows E51", "Errors that need our help", "E51"),
        (
            "hey, brewer is showing E60",
            "Errors that need our help",
            "E60",
        ),
        (
            "E25 on the display what do i do",
            "Water, beans and parts",
            "E25",
        ),
    ] {
        let answer = reply(&app, question).await;
        assert!(is_answer(&answer), "{question:?}: {answer}");
        let (page, quoted) = &cited(&answer)[0];
        assert!(page.contains("error-codes"), "{question:?}: {answer}");
        assert_eq!(quoted, section, "{question:?}: {answer}");
        assert!(
            answer["text"].as_str().unwrap_or_default().contains(code),
            "{question:?}: {answer}"
        );
    }
    // A code two articles list (the error-code page and the Wi-Fi article's heading): both are
    // offered to choose from, each from where it lists the code (it was "I don't know").
    let offer = reply(&app, "hello! my machine says E31").await;
    assert!(!is_answer(&offer), "{offer}");
    let pages: Vec<String> = cited(&offer).into_iter().map(|(page, _)| page).collect();
    assert_eq!(pages.len(), 2, "{offer}");
    assert!(pages[0].ends_with("/error-codes"), "{offer}");
    assert!(pages[1].ends_with("/wifi-connection-fails"), "{offer}");
    // Each shown with one line: the error-code list's E31 item, not the E32 item after it.
    let list_line = offer["quick_replies"][0]["choice"]["line"]
        .as_str()
        .unwrap_or_default();
    assert!(list_line.starts_with("E31 – "), "{offer}");
    let text = offer["text"].as_str().unwrap_or_default();
    assert!(!text.contains("E32"), "{offer}");
}

/// Another question the same article answers ("how long does the descaling take" after "how do i
/// descale my brewer") stays with the bot; the same question in other words, answered from the
/// same article again, goes to a person: the first answer did not help (issue 14, multi-turn).
#[tokio::test]
async fn another_question_on_the_same_article_is_not_taken_for_the_same_one_asked_again() {
    let app = common::spawn_app_with(|s| s.handoff.auto_assign = false).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let first = customer.outcome("d1", "how do i descale my brewer").await;
    assert!(is_answer(&first), "{first}");
    assert!(cited(&first)[0].0.contains("descale"), "{first}");
    let second = customer
        .outcome("d2", "how long does the descaling take")
        .await;
    assert_eq!(second["type"], "message", "handed over: {second}");
    assert!(is_answer(&second), "{second}");
    assert!(cited(&second)[0].0.contains("descale"), "{second}");
    customer.close().await;

    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let first = customer
        .outcome("p1", "how do i pause my deliveries for a few weeks")
        .await;
    assert!(is_answer(&first), "{first}");
    assert!(cited(&first)[0].0.contains("pause"), "{first}");
    let again = customer
        .outcome("p2", "can i put my deliveries on hold while i'm away")
        .await;
    assert_eq!(
        (again["type"].as_str(), again["state"].as_str()),
        (Some("status"), Some("queued")),
        "the same question again was not handed over: {again}"
    );
    // The agent sees why: the same question asked again, not upset or a sensitive topic.
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let queue = sam.wait_queue(|q| !q.is_empty()).await;
    assert_eq!(queue[0]["reasons"][0]["kind"], "rephrased", "{queue:?}");
    customer.close().await;
}

/// A follow-up that only makes sense after the previous question ("…clean it") is searched
/// together with it, and the article about what was being discussed is cited (answered, or first
/// among the choices); asked alone, in a conversation of its own, the same words cite no such
/// article (issue 14, multi-turn).
#[tokio::test]
async fn a_follow_up_that_points_back_is_searched_with_the_previous_question() {
    let app = common::spawn_app().await;
    let follow_up = "how often am i supposed to clean it properly";
    let frother = |r: &Value| {
        cited(r)
            .first()
            .is_some_and(|(page, _)| page.contains("clean-the-milk-frother"))
    };
    let alone = reply(&app, follow_up).await;
    assert!(
        !frother(&alone),
        "alone, it already finds the frother article, so this test shows nothing: {alone}"
    );
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let first = customer
        .outcome("c1", "the frother barely makes any foam anymore")
        .await;
    assert_eq!(first["type"], "message", "handed over: {first}");
    let second = customer.outcome("c2", follow_up).await;
    assert_eq!(second["type"], "message", "handed over: {second}");
    assert!(frother(&second), "{second}");
    customer.close().await;
}

/// A question that stands alone and that the base cannot answer is not answered with the previous
/// answer's article because the previous question, searched with it, finds that article again.
#[tokio::test]
async fn an_unanswerable_question_after_an_answer_is_not_given_the_same_article_again() {
    let app = common::spawn_app().await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let first = customer
        .outcome("c1", "what grind size should i use for espresso")
        .await;
    assert_eq!(first["type"], "message", "handed over: {first}");
    let given: Vec<String> = cited(&first).into_iter().map(|(page, _)| page).collect();
    assert!(
        !given.is_empty(),
        "the first question cites nothing: {first}"
    );
    let second = customer
        .outcome("c2", "who won the football world cup in 1998")
        .await;
    assert_eq!(second["type"], "message", "handed over: {second}");
    let again: Vec<String> = cited(&second).into_iter().map(|(page, _)| page).collect();
    assert!(
        again.iter().all(|page| !given.contains(page)),
        "answered with the previous article again: {second}"
    );
    customer.close().await;
}

/// A note-taking app's help centre of our own.
const NOTES_BASE: &[(&str, &str)] = &[
    ("import-from-notion.md", IMPORT_FROM_NOTION),
    ("import-markdown.md", IMPORT_MARKDOWN),
    ("sync.md", SYNC),
    ("refunds.md", REFUNDS),
    ("themes.md", THEMES),
    ("backup.md", BACKUP),
];

const IMPORT_FROM_NOTION: &str = r#"---
title: Import from Notion
---
Move your pages from Notion into your vault with the importer. Export your workspace from Notion first, then point the importer at the exported file.

## Export your workspace
In Notion, open Settings, choose Export all workspace content, pick HTML as the format and include subpages. Notion emails you a zip file.

## Run the importer
Open the importer, choose Notion as the source, select the zip file and choose a folder in your vault. Large workspaces take a few minutes.

## What carries over
Pages become notes and links between pages keep working. Databases become tables in a note of their own, with one note per row. Comments and page history stay in Notion.
"#;

const IMPORT_MARKDOWN: &str = r#"---
title: Import Markdown files
---
Copy a folder of Markdown files into your vault folder and they appear as notes. Front matter and links in the usual formats are read as they are.
"#;

const SYNC: &str = r#"---
title: Sync your notes across devices
---
Turn on Sync in Settings to keep your vault the same on your laptop and your phone. Sync encrypts your notes end to end.

## Set up a second device
Install the app, sign in, open Settings, choose Sync and connect to your remote vault.
"#;

const REFUNDS: &str = r#"---
title: Refund policy
---
You can ask for a refund within 14 days of buying a subscription. Write to us from the email address on your account.
"#;

const THEMES: &str = r#"---
title: Change the theme
---
Open Settings, choose Appearance and pick a theme. Dark mode follows your system unless you choose light or dark.
"#;

const BACKUP: &str = r#"---
title: Back up your vault
---
Your vault is a folder of plain files. Copy it to another drive or a cloud folder to keep a backup, or use any backup tool you already have.
"#;

/// A question in a chat that opens like a thank-you ("hmm ok so it just follows my phone then?",
/// "ok thanks! so the comments stay behind?") was answered "You're welcome!": a question in words
/// of its own is answered; a plain greeting that asks after the customer's day is still greeted.
#[tokio::test]
async fn a_question_that_opens_like_thanks_is_answered() {
    let app = common::spawn_app_with_files(NOTES_BASE).await;
    let small_talk = frontdesk::settings::BotSettings::default().small_talk;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let first = customer.outcome("t1", "how do i turn on dark mode").await;
    assert!(is_answer(&first), "{first}");
    let then = customer
        .outcome("t2", "hmm ok so it just follows my phone then?")
        .await;
    assert!(
        !small_talk.values().any(|t| then["text"] == *t.as_str()),
        "answered as small talk: {then}"
    );
    assert!(is_answer(&then), "{then}");
    assert_eq!(cited(&then)[0].0, "themes.md", "{then}");
    let first = customer
        .outcome("t3", "how do i import my notion workspace")
        .await;
    assert!(is_answer(&first), "{first}");
    let then = customer
        .outcome("t4", "ok thanks! so the comments stay behind?")
        .await;
    assert!(is_answer(&then), "{then}");
    assert_eq!(cited(&then)[0].0, "import-from-notion.md", "{then}");
    customer.close().await;

    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let hello = customer.outcome("h1", "hi! how are you doing today?").await;
    assert_eq!(hello["text"], small_talk["greeting"].as_str(), "{hello}");
    customer.close().await;
}

/// A follow-up on a follow-up ("lol ok. where do i get the zip from" after "hmm ok, does it take
/// long?", after "how do i import my notion workspace") is searched with the question that named
/// the topic, not only with the one just before it, which names none: the same two follow-ups in a
/// conversation of their own get no such article.
#[tokio::test]
async fn a_follow_up_on_a_follow_up_is_searched_with_the_question_that_named_the_topic() {
    let app = common::spawn_app_with_files(NOTES_BASE).await;
    let (then, after_that) = (
        "hmm ok, does it take long?",
        "lol ok. where do i get the zip from",
    );
    let notion = |r: &Value| {
        cited(r)
            .first()
            .is_some_and(|(page, _)| page == "import-from-notion.md")
    };
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    customer.outcome("n1", then).await;
    let without_topic = customer.outcome("n2", after_that).await;
    assert!(
        !notion(&without_topic),
        "without the topic it already finds the article, so this test shows nothing: {without_topic}"
    );
    customer.close().await;

    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let first = customer
        .outcome("t1", "how do i import my notion workspace")
        .await;
    assert!(notion(&first), "{first}");
    let second = customer.outcome("t2", then).await;
    assert!(notion(&second), "{second}");
    let third = customer.outcome("t3", after_that).await;
    assert_eq!(third["type"], "message", "handed over: {third}");
    assert!(notion(&third), "{third}");
    customer.close().await;
}
