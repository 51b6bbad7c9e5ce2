//! Language understanding seen from outside: the server classifies what customers write, notices
//! when they are upset or off-topic, and finds articles by meaning rather than shared words.

mod common;

use common::{root, spawn_app, spawn_app_with};
use serde_json::{json, Value};

async fn explain(app: &common::TestApp, q: &str) -> Value {
    let url = reqwest::Url::parse_with_params(&app.http("/api/explain"), [("q", q)]).unwrap();
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(app.editor_token().await)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// How much the message needs a person (the strongest of upset, urgent and asking for one) and
/// the threshold at which the escalation policy hands the chat over.
fn upset(body: &Value) -> (f64, f64) {
    let threshold = frontdesk::settings::EscalationSettings::default().upset_threshold as f64;
    let u = &body["understanding"];
    let need = ["upset", "urgent", "asks_for_person"]
        .iter()
        .map(|k| u[*k].as_f64().unwrap_or(0.0))
        .fold(0.0, f64::max);
    (need, threshold)
}

#[tokio::test]
async fn an_angry_message_is_flagged_upset_and_a_polite_one_is_not() {
    let app = spawn_app().await;
    for angry in [
        "This is the THIRD time I'm asking. Where is my refund?!",
        "Your brewer broke after two days and nobody answers my emails. Absolutely unacceptable.",
        "I am so fed up with being charged for a subscription I cancelled",
    ] {
        let body = explain(&app, angry).await;
        let (score, threshold) = upset(&body);
        assert!(score >= threshold, "{angry:?} scored {score} < {threshold}");
        let reasons = body["decision"]["reasons"].to_string();
        assert!(
            reasons.contains("\"kind\":\"upset\""),
            "{angry:?}: {reasons}"
        );
    }
    for polite in [
        "Hi, could you tell me when my order will arrive? Thanks!",
        "How do I change the grind size on my brewer?",
        "Thanks so much, that fixed it",
    ] {
        let (score, threshold) = upset(&explain(&app, polite).await);
        assert!(
            score < threshold,
            "{polite:?} scored {score} >= {threshold}"
        );
    }
}

#[tokio::test]
async fn intents_carry_their_team_and_policy() {
    let app = spawn_app().await;
    let body = explain(
        &app,
        "I'd like my money back for the beans, they arrived stale",
    )
    .await;
    let intent = &body["reply"]["understanding"]["intent"];
    assert_eq!(intent["name"], "refund", "{body}");
    assert_eq!(intent["always_human"], true);
    assert_eq!(intent["team"], "billing");

    let body = explain(&app, "can I speak to a real human please").await;
    assert_eq!(
        body["reply"]["understanding"]["intent"]["name"], "human_request",
        "{body}"
    );
}

#[tokio::test]
async fn a_paraphrase_with_no_shared_keywords_finds_the_right_article() {
    let app = spawn_app().await;
    // None of these words is in the article on double charges, so keyword search cannot find it.
    let q = "debited repeatedly for a single purchase";
    let body = explain(&app, q).await;
    let best = &body["reply"]["candidates"][0];
    // Answered, or offered first among the articles that fit ("Which of these is it?").
    let outcome = body["reply"]["outcome"].as_str();
    assert!(matches!(outcome, Some("answered" | "clarify")), "{body}");
    assert_eq!(best["path"], "billing/charged-twice.md", "{body}");
    assert_eq!(
        body["reply"]["sources"][0]["title"], "Why was I charged twice?",
        "{body}"
    );
    assert!(
        best["bm25_rank"].is_null(),
        "the article was found by keywords after all: {best}"
    );
}

#[tokio::test]
async fn an_unrelated_question_is_out_of_scope_and_the_bot_says_it_does_not_know() {
    let app = spawn_app().await;
    for q in [
        "what's the weather like in Lisbon tomorrow?",
        "who won the world cup in 2010",
    ] {
        let body = explain(&app, q).await;
        let understanding = &body["reply"]["understanding"];
        assert_eq!(understanding["out_of_scope"], true, "{q}: {body}");
        assert!(understanding["intent"].is_null());
        assert_eq!(body["reply"]["outcome"], "dont_know", "{q}: {body}");
    }
}

#[tokio::test]
async fn a_greeting_is_answered_in_kind_over_the_socket() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let (_, reply) = customer.ask("c1", "hello there!").await;
    assert_eq!(reply["from"], "bot");
    assert!(
        reply["text"].as_str().unwrap().starts_with("Hi!"),
        "{reply}"
    );
}

/// Thanks right after an answer are thanks for it, whatever the classifier reads in their words
/// ("thanks that fixed it!" reads as a technical problem, and was answered with more of the same
/// article); thanks that say it did not help get neither "You're welcome!" nor the same article
/// again; thanks with news besides are not taken for thanks alone.
#[tokio::test]
async fn thanks_after_an_answer_are_answered_in_kind_and_a_failed_fix_is_not() {
    let app = spawn_app().await;
    let after_an_answer = |question: &'static str, then: &'static str| {
        let app = &app;
        async move {
            let mut customer = app.client().await;
            customer.hello(None, None).await;
            let (_, answer) = customer.ask("c1", question).await;
            assert!(
                !answer["sources"].as_array().unwrap().is_empty(),
                "{question:?} was not answered: {answer}"
            );
            let (_, reply) = customer.ask("c2", then).await;
            (answer, reply)
        }
    };
    let welcome = |reply: &serde_json::Value| {
        reply["text"]
            .as_str()
            .unwrap()
            .starts_with("You're welcome")
    };
    for (question, thanks) in [
        (
            "the machine is leaking water all over my kitchen counter",
            "thanks that fixed it!",
        ),
        (
            "how do i reset my password",
            "thank you so much, the reset worked",
        ),
    ] {
        let (_, reply) = after_an_answer(question, thanks).await;
        assert!(welcome(&reply), "{thanks:?} after {question:?}: {reply}");
    }
    for failed in [
        "thanks but that didn't work",
        "thanks, but it still shows the warning",
    ] {
        let (answer, reply) = after_an_answer("how do i descale the brewer", failed).await;
        assert!(!welcome(&reply), "{failed:?}: {reply}");
        assert_ne!(reply["text"], answer["text"], "{failed:?}: the same again");
        assert!(
            reply["quick_replies"].to_string().contains("request_human"),
            "{failed:?}: no offer of a person: {reply}"
        );
    }
    let (_, reply) = after_an_answer(
        "where is my order",
        "thanks, the parcel arrived. the lid is cracked",
    )
    .await;
    assert!(!welcome(&reply), "news taken for thanks: {reply}");
}

#[tokio::test]
async fn a_stale_intent_model_is_retrained_at_start_up() {
    // An editor adds a phrasing to the demo shop's own intents, beside its articles: the model
    // trained on the general and the shop's intents no longer matches, and is retrained.
    let edited = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = edited.clone();
    let app = spawn_app_with(move |s| {
        let own = s.kb.dir.join(".frontdesk/intents.yaml");
        let text = std::fs::read_to_string(&own).unwrap();
        let text = text.replacen(
            "      - \"hey tidewater\"\n",
            "      - \"hey tidewater\"\n      - \"ahoy there\"\n",
            1,
        );
        std::fs::write(&own, text).unwrap();
        let model = s.kb.dir.join(".frontdesk/intents.model.json");
        *seen.lock().unwrap() = Some((model.clone(), std::fs::read_to_string(&model).unwrap()));
        s.nlu.retrain_stale = true;
    })
    .await;
    let (model, before) = edited.lock().unwrap().take().unwrap();
    let after = std::fs::read_to_string(&model).unwrap();
    assert_ne!(before, after, "the model was not retrained");
    let saved: Value = serde_json::from_str(&after).unwrap();
    let general: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/intents.model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved["manifest"]["examples"][0][1].as_u64().unwrap(),
        general["manifest"]["examples"][0][1].as_u64().unwrap() + 2,
        "greeting: the general phrasings, the shop's one and the new one"
    );
    let body = explain(&app, "hi, good morning").await;
    assert_eq!(body["reply"]["understanding"]["intent"]["name"], "greeting");
}

#[tokio::test]
async fn a_help_centre_gets_the_general_intents_and_the_demo_shop_keeps_its_own() {
    let message = "where is my order? it should have arrived by now";
    let shop = spawn_app().await;
    let body = explain(&shop, message).await;
    assert_eq!(
        body["reply"]["understanding"]["intent"]["name"], "order_status",
        "{body}"
    );
    // Another help centre, with no intents of its own: the shop's are not carried into it.
    let other = common::spawn_app_with_files(&[(
        "tracking.md",
        "# Tracking\n\nAdd the script to your site to count visitors.",
    )])
    .await;
    let body = explain(&other, message).await;
    let intent = body["reply"]["understanding"]["intent"]["name"].as_str();
    assert!(
        !matches!(intent, Some("order_status" | "shipping")),
        "{body}"
    );
    let body = explain(&other, "I want to cancel my subscription").await;
    assert_eq!(
        body["reply"]["understanding"]["intent"]["name"], "cancel_subscription",
        "{body}"
    );
}

#[tokio::test]
async fn a_setting_that_names_an_intent_the_intents_file_lacks_stops_the_start_with_what_to_fix() {
    let (kb, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut settings = common::test_settings(kb.path(), data.path());
    settings
        .bot
        .small_talk
        .insert("wave".into(), "Hello back!".into());
    let (encoder, cache) = common::nlu();
    let error = match frontdesk::App::build_with(settings, encoder, cache).await {
        Ok(_) => panic!("the server started with a small-talk reply for an unknown intent"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("bot.small_talk uses the intent `wave`") && error.contains("greeting"),
        "{error}"
    );
}

/// Each message, in a conversation of its own, is answered by the bot, not handed over.
async fn each_stays_with_the_bot(app: &common::TestApp, messages: &[&str]) {
    for (i, text) in messages.iter().enumerate() {
        let mut customer = app.client().await;
        customer.hello(None, None).await;
        let frame = customer.outcome(&format!("b{i}"), text).await;
        assert_eq!(
            frame["type"], "message",
            "{text:?} was handed over: {frame}"
        );
        assert_eq!(frame["from"], "bot", "{text:?}: {frame}");
    }
}

/// A server on the Plausible help centre, or None (with a printed reason) without ../shared.
async fn plausible_app(test: &str) -> Option<common::TestApp> {
    common::spawn_plausible_app(test, |s| s.limits.queued_per_address = 10).await
}

/// Each message (issue 14's examples and others, as customers write them; none is in the training
/// set) reaches a person in a conversation of its own.
async fn each_reaches_a_person(app: &common::TestApp, messages: &[&str]) {
    for (i, text) in messages.iter().enumerate() {
        let mut customer = app.client().await;
        customer.hello(None, None).await;
        let frame = customer.outcome(&format!("m{i}"), text).await;
        assert_eq!(
            frame["type"], "status",
            "{text:?} was answered by the bot: {frame}"
        );
        assert_eq!(frame["state"], "queued", "{text:?}: {frame}");
        let why = explain(app, text).await;
        let reasons = why["decision"]["reasons"].to_string();
        assert!(
            ["upset", "urgent", "human_request"]
                .iter()
                .any(|k| reasons.contains(&format!("\"kind\":\"{k}\""))),
            "{text:?}: {reasons}"
        );
    }
}

#[tokio::test]
async fn upset_threatening_and_asking_customers_reach_a_person_over_the_socket() {
    // Every test customer comes from 127.0.0.1: let them all wait in the queue.
    let app = spawn_app_with(|s| s.limits.queued_per_address = 16).await;
    each_reaches_a_person(
        &app,
        &[
            "this is ridiculous, my brewer has shown E31 for a week and nobody helps me",
            "there's a payment from you on my credit card that i never agreed to. i'll dispute it with my card company if i don't hear back today",
            "this is absurd. fourth email about this. the graphs have been empty for days and no one answers",
            "I ALREADY reinstalled the script. I ALREADY checked the domain. STILL zero visitors. stop linking me the same page",
            "is there a real human I could speak to",
            "thanks a lot for wasting my time",
            // Kept by the bot while "20mins" was one word that no deadline cue matched.
            "need this fixed in 20mins",
            // Kept (read 0.47–0.58, under the bar without a cue) while a regulator, a strong
            // feeling and a time limit on a day were no cues.
            "I'll be contacting the regulator about these charges",
            "I'm so disappointed, the order was for my mum's birthday",
            "need the invoices fixed by friday or our audit fails",
            // Kept (read 0.37–0.48) while leaving for elsewhere, contact on listed dates and
            // "not ok" were no cues.
            "the subscription shipped decaf instead of the espresso blend. if the next bag is wrong as well, we'll cancel and order our coffee elsewhere",
            "I wrote about the grinder on the 4th, the 11th and the 19th and got a different answer every time",
            "the milk frother stopped after two weeks, which is not ok for a machine this price",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_calm_question_sharing_their_words_stays_with_the_bot() {
    let app = spawn_app().await;
    each_stays_with_the_bot(
        &app,
        &[
            "I was charged twice for one order, can you check?",
            "thanks, that fixed it",
        ],
    )
    .await;
}

/// Thanks for something that went right is no complaint, though thanks are sarcasm's words too
/// and the readers read some as upset ("…fixed the boiler" 0.71); "request" is the intent of
/// asking for a person's word, not a request for one.
#[tokio::test]
async fn thanks_and_a_request_for_something_else_stay_with_the_bot() {
    let app = spawn_app().await;
    each_stays_with_the_bot(
        &app,
        &[
            // Handed over as sarcasm ("lovely,") until messages of thanks were told apart.
            "the courier was lovely, thanks",
            "thank you, the engineer fixed the boiler this morning",
            // Handed over as asking for a person (intent human_request 0.62).
            "how do I request a wheelchair at the airport",
        ],
    )
    .await;
}

/// Customers paste tracking links, addresses and reference numbers; the models read them as
/// words, so a pasted string never makes a calm customer look furious.
#[tokio::test]
async fn a_calm_message_with_a_pasted_link_or_reference_stays_with_the_bot() {
    let app = spawn_app().await;
    each_stays_with_the_bot(
        &app,
        &[
            "where is my order? https://track.example.com/a8f7s6d5f4g3h2j1k0l9 says nothing",
            "where is my order averyveryveryveryveryveryverylongwordwithoutanyspacesatall",
            "my order 8f14e45fceea167a5a36dedd4bea2543 has not arrived, jane.doe+shop@mail.example.org",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_sarcastic_message_is_not_answered_as_small_talk() {
    let app = spawn_app_with(|s| s.limits.queued_per_address = 10).await;
    let small_talk = frontdesk::settings::BotSettings::default().small_talk;
    for (i, text) in [
        "oh wonderful, thanks so much for the help. my order is still lost",
        "wow, great service, thanks for nothing",
        // Answered "You're welcome!" (read 0.25) until the sarcasm cue held "sure, because".
        "sure, because that worked so well last time",
    ]
    .iter()
    .enumerate()
    {
        // Each in a conversation of its own: handed over, or answered, but never "You're welcome!".
        let mut customer = app.client().await;
        customer.hello(None, None).await;
        let frame = customer.outcome(&format!("s{i}"), text).await;
        assert!(
            !small_talk.values().any(|t| frame["text"] == *t.as_str()),
            "{text:?}: {frame}"
        );
    }
}

#[tokio::test]
async fn on_the_plausible_docs_upset_customers_reach_a_person() {
    let Some(app) = plausible_app("on_the_plausible_docs_upset_customers_reach_a_person").await
    else {
        return;
    };
    each_reaches_a_person(
        &app,
        &[
            "this is absurd. fourth email about this. the graphs have been empty for days and no one answers",
            "I ALREADY reinstalled the script. I ALREADY checked the domain. STILL zero visitors. stop linking me the same page",
            "there's a payment from you on my credit card that i never agreed to. i'll dispute it with my card company if i don't hear back today",
        ],
    )
    .await;
}

/// Calm how-to questions on an access topic the help centre answers: kept by the bot, with the
/// offer of a person, not handed over because the topic sounds like security.
#[tokio::test]
async fn on_the_plausible_docs_sensitive_how_tos_are_answered() {
    let Some(app) = plausible_app("on_the_plausible_docs_sensitive_how_tos_are_answered").await
    else {
        return;
    };
    let questions = [
        "a colleague left the company, how do i remove their access to our dashboards",
        "can i see a log of who changed our site settings",
    ];
    for (i, text) in questions.iter().enumerate() {
        let mut customer = app.client().await;
        customer.hello(None, None).await;
        let frame = customer.outcome(&format!("h{i}"), text).await;
        assert_eq!(frame["from"], "bot", "{text:?} was handed over: {frame}");
        assert!(
            frame["quick_replies"]
                .as_array()
                .is_some_and(|q| q.iter().any(|b| b["action"] == "request_human")),
            "{text:?}: no offer of a person in {frame}"
        );
    }
    for text in questions {
        let why = explain(&app, text).await;
        assert!(
            !why["decision"]["escalate"].as_bool().unwrap_or(true),
            "{text:?}: {}",
            why["decision"]
        );
    }
}

/// A stand-in for the models whose readings the message itself states ("upset=0.25 person=0.4"),
/// so a conversation can be given any course of readings over the real socket.
fn stated(text: &str) -> frontdesk::nlu::Understanding {
    let mut u = frontdesk::nlu::Understanding::default();
    for word in text.split_whitespace() {
        if let Some((name, value)) = word.split_once('=') {
            let Ok(v) = value.parse::<f32>() else {
                continue;
            };
            match name {
                "upset" => u.upset = v,
                "urgent" => u.urgent = v,
                "person" => u.asks_for_person = v,
                _ => {}
            }
        }
    }
    u
}

/// Sends `turns` in one conversation: every turn but the last is answered by the bot; the last
/// hands the conversation over, and the agents' queue shows why.
async fn handed_over_on_the_last_turn(turns: &[String]) -> Value {
    // Not assigned on its own: the hand-off waits in the queue, where the agent reads why.
    let app = common::spawn_app_understanding(|s| s.handoff.auto_assign = false, stated).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let (last, earlier) = turns.split_last().unwrap();
    for (i, text) in earlier.iter().enumerate() {
        let frame = customer.outcome(&format!("t{i}"), text).await;
        assert_eq!(
            (frame["type"].as_str(), frame["from"].as_str()),
            (Some("message"), Some("bot")),
            "turn {i} {text:?} was handed over already: {frame}"
        );
    }
    let frame = customer.outcome("last", last).await;
    assert_eq!(
        (frame["type"].as_str(), frame["state"].as_str()),
        (Some("status"), Some("queued")),
        "{last:?} was not handed over: {frame}"
    );
    let queue = sam.wait_queue(|q| !q.is_empty()).await;
    queue[0]["reasons"][0].clone()
}

#[tokio::test]
async fn upset_rising_over_three_turns_hands_the_chat_over_though_no_turn_passes_alone() {
    let s = frontdesk::settings::EscalationSettings::default();
    // Each reading under the threshold; together they rise by more than `upset_rise`.
    // (How-to questions carry no cue, so the bar for each turn alone is the one without a cue.)
    let readings = [0.1, 0.3, 0.7].map(|f| f * s.upset_threshold_without_cue);
    assert!(readings[2] - readings[0] >= s.upset_rise && readings[2] >= s.upset_rising_floor);
    let questions = [
        "how do i descale the brewer",
        "what grind size for espresso",
        "how do i track my order",
    ];
    let turns: Vec<String> = questions
        .iter()
        .zip(readings)
        .map(|(q, r)| format!("{q} upset={r:.3}"))
        .collect();
    let reason = handed_over_on_the_last_turn(&turns).await;
    assert_eq!(reason["kind"], "upset_rising", "{reason}");
}

#[tokio::test]
async fn a_soft_ask_for_a_person_made_twice_is_heard_the_second_time() {
    let s = frontdesk::settings::EscalationSettings::default();
    // Each ask above half the threshold and under the threshold: too soft alone.
    let soft = 0.6 * s.upset_threshold;
    let turns = [
        format!("how do i descale the brewer person={soft:.3}"),
        format!("what grind size for espresso person={soft:.3}"),
    ];
    let reason = handed_over_on_the_last_turn(&turns).await;
    assert_eq!(reason["kind"], "human_request", "{reason}");
    assert!(
        reason["detail"].as_str().unwrap_or("").contains("again"),
        "{reason}"
    );
}

/// A chat a person resolved starts over with the bot: a soft ask for a person before the person
/// and one after are not "asked again" (in one stretch they are: the test above).
#[tokio::test]
async fn a_chat_back_with_the_bot_after_a_person_resolved_it_starts_over() {
    let s = frontdesk::settings::EscalationSettings::default();
    let soft = 0.6 * s.upset_threshold;
    let app = common::spawn_app_understanding(|s| s.handoff.auto_assign = false, stated).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let first = customer
        .outcome(
            "s1",
            &format!("how do i descale the brewer person={soft:.3}"),
        )
        .await;
    assert_eq!(first["from"], "bot", "{first}");
    common::request_claim_and_resolve(&mut customer, &mut sam, &id).await;
    // Back with the bot: a `state: bot` status first, then the outcome.
    let text = format!("what grind size for espresso person={soft:.3}");
    customer
        .send(json!({"type": "message", "client_id": "s2", "text": text}))
        .await;
    let again = loop {
        let frame = customer.recv().await;
        let status = frame["type"] == "status" && frame["state"] != "bot";
        if frame["type"] == "message" || status {
            break frame;
        }
    };
    assert_eq!(
        (again["type"].as_str(), again["from"].as_str()),
        (Some("message"), Some("bot")),
        "handed over on the ask before the person: {again}"
    );
    // The new stretch has its own history: asked softly again, now it is heard.
    let third = customer
        .outcome("s3", &format!("how do i track my order person={soft:.3}"))
        .await;
    assert_eq!(
        (third["type"].as_str(), third["state"].as_str()),
        (Some("status"), Some("queued")),
        "the second soft ask after the person was not heard: {third}"
    );
}

/// Issue 14 item 5: an always-human intent confident for the message, on a question the
/// knowledge base answers, is answered (with the offer of a person) rather than handed over.
#[tokio::test]
async fn a_question_on_a_sensitive_topic_the_base_answers_is_answered_with_the_offer_of_a_person() {
    let app = spawn_app().await;
    for (i, (text, page)) in [
        (
            "i want to quit the subscription",
            "billing/cancel-subscription",
        ),
        (
            "do subscriptions renew automatically",
            "policies/subscription-terms",
        ),
    ]
    .iter()
    .enumerate()
    {
        // The policy had its say: the classifier was confident of the sensitive intent.
        let why = explain(&app, text).await;
        assert_eq!(
            why["understanding"]["intent"]["always_human"], true,
            "{text:?}: {}",
            why["understanding"]
        );
        let mut customer = app.client().await;
        customer.hello(None, None).await;
        let frame = customer.outcome(&format!("q{i}"), text).await;
        assert_eq!(
            frame["type"], "message",
            "{text:?} was handed over: {frame}"
        );
        assert_eq!(frame["from"], "bot", "{text:?}: {frame}");
        assert!(
            frame["sources"][0]["url"]
                .as_str()
                .is_some_and(|u| u.contains(page)),
            "{text:?} should cite {page}: {frame}"
        );
        assert!(
            frame["quick_replies"]
                .as_array()
                .is_some_and(|q| q.iter().any(|b| b["action"] == "request_human")),
            "{text:?}: no offer of a person in {frame}"
        );
    }
}

/// The other side of item 5: the operator's always-human policy still holds when the customer
/// asks the company to act or reports a compromised account, though the base has an article.
#[tokio::test]
async fn a_request_to_act_or_a_compromise_report_on_a_sensitive_topic_reaches_a_person() {
    let app = spawn_app_with(|s| s.limits.queued_per_address = 10).await;
    for (i, text) in [
        "I want to cancel, do it for me",
        "cancel it for me, now",
        "i think my account got hacked, how do i see what they did",
    ]
    .iter()
    .enumerate()
    {
        let mut customer = app.client().await;
        customer.hello(None, None).await;
        let frame = customer.outcome(&format!("a{i}"), text).await;
        assert_eq!(frame["type"], "status", "{text:?} was answered: {frame}");
        assert_eq!(frame["state"], "queued", "{text:?}: {frame}");
        let why = explain(&app, text).await;
        let reasons = why["decision"]["reasons"].to_string();
        assert!(
            reasons.contains("\"kind\":\"sensitive\"")
                && (reasons.contains("asks the company to act")
                    || reasons.contains("reports an incident")),
            "{text:?}: {reasons}"
        );
    }
}

/// Sends `turns` (text, whether to mark the bot's reply not helpful) in one conversation whose
/// every turn but the last the bot handles, and returns what the last one got: the bot's reply,
/// or the `queued` status and the agents' first reason.
async fn course_of_failed_answers(turns: &[(String, bool)]) -> (Value, Option<Value>) {
    let app = common::spawn_app_understanding(|s| s.handoff.auto_assign = false, stated).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let (last, earlier) = turns.split_last().unwrap();
    for (i, (text, unhelpful)) in earlier.iter().enumerate() {
        let frame = customer.outcome(&format!("f{i}"), text).await;
        assert_eq!(
            (frame["type"].as_str(), frame["from"].as_str()),
            (Some("message"), Some("bot")),
            "turn {i} {text:?} was handed over already: {frame}"
        );
        if *unhelpful {
            let seq = frame["seq"].clone();
            customer
                .send(serde_json::json!({"type": "feedback", "seq": seq, "helpful": false}))
                .await;
            let ack = customer.recv().await;
            assert_eq!(ack["type"], "feedback_ack", "{ack}");
        }
    }
    let frame = customer.outcome("last", &last.0).await;
    if frame["type"] == "status" {
        let queue = sam.wait_queue(|q| !q.is_empty()).await;
        return (frame, Some(queue[0]["reasons"][0].clone()));
    }
    (frame, None)
}

/// Issue 14 item 4, conversation-level: bot answers that failed (one marked not helpful, two
/// "I don't know"s, never two in a row) hand the chat over once the customer grows impatient,
/// though the impatient message is under the threshold on its own; a calm customer after the
/// same failures stays with the bot.
#[tokio::test]
async fn failed_answers_hand_an_impatient_customer_over_and_keep_a_calm_one() {
    let s = frontdesk::settings::EscalationSettings::default();
    assert!(
        s.unanswered_turns <= 3,
        "the course below fails three answers"
    );
    // Above half the threshold (impatient), under the threshold (not enough alone).
    let impatient = 0.6 * s.upset_threshold;
    let course = |last: String| {
        vec![
            ("how do i descale the brewer".to_owned(), true),
            ("what is the boiling point of mercury".to_owned(), false),
            (
                "what grind size should i use for espresso".to_owned(),
                false,
            ),
            ("who won the football world cup in 1998".to_owned(), false),
            (last, false),
        ]
    };
    let (frame, reason) = course_of_failed_answers(&course(format!(
        "how do i track my order upset={impatient:.3}"
    )))
    .await;
    assert_eq!(frame["state"], "queued", "{frame}");
    let reason = reason.expect("a reason in the queue");
    assert_eq!(reason["kind"], "repeated_failure", "{reason}");
    assert!(
        reason["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("3 bot answers did not help"),
        "{reason}"
    );

    let (frame, _) = course_of_failed_answers(&course("how do i track my order".into())).await;
    assert_eq!(
        (frame["type"].as_str(), frame["from"].as_str()),
        (Some("message"), Some("bot")),
        "a calm customer was handed over after the same failures: {frame}"
    );
}

/// Issue 14 item 4: a customer describing a fault calmly, or stating a preference or an account
/// request, wants the fix, not a queue (each was handed over by the signals before 2026-12-03,
/// with no cue behind the reading: "theres a puddle…" urgent 0.92).
#[tokio::test]
async fn a_calm_fault_report_or_preference_stays_with_the_bot() {
    let app = spawn_app().await;
    each_stays_with_the_bot(
        &app,
        &[
            "the machine is leaking",
            "theres a puddle under the machine every morning",
            "foam goes flat after like 10 seconds",
            "too many texts from you, i only want the shipping ones",
            "my visa got replaced by the bank, new number, what do i do so the coffee keeps coming",
            "update got stuck halfway and the screen is frozen",
            "i want you guys to wipe everything you have on me",
        ],
    )
    .await;
}

/// `nlu.signal_reader = "both"` (the default, set here so the test holds whatever the default
/// becomes), built as an operator's settings are: the server loads the tuned layers
/// with its encoder, and over the socket an upset or person-asking customer reaches a person while
/// calm questions, a plain billing report among them, stay with the bot.
#[tokio::test]
async fn with_both_signal_readers_upset_customers_reach_a_person_and_calm_ones_stay() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&root().join("knowledge_base"), data.path());
    settings.kb.watch = false;
    settings.nlu.signal_reader = frontdesk::settings::SignalReader::Both;
    settings.follow_signal_reader();
    let app = frontdesk::App::build(settings)
        .await
        .expect("the app builds with the tuned layers");
    let port = app.port();
    let server = tokio::spawn(app.run_until_stopped());
    for (i, (text, handed_over)) in [
        (
            "this is the third time im writing. charged twice AGAIN and nobody answers. fix it today",
            true,
        ),
        ("can i talk to a real person please", true),
        ("how long do i have to send the brewer back if i dont like it", false),
        ("I was charged twice for one order", false),
    ]
    .iter()
    .enumerate()
    {
        let mut customer = common::Client::connect(port).await;
        customer.hello(None, None).await;
        let frame = customer.outcome(&format!("r{i}"), text).await;
        let expected = if *handed_over { "status" } else { "message" };
        assert_eq!(frame["type"], expected, "{text:?}: {frame}");
    }
    server.abort();
}

/// `reply` is the bot's message thanking the customer in kind (the default small talk for thanks).
fn assert_thanked_in_kind(reply: &Value) {
    let settings = frontdesk::settings::BotSettings::default();
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["from"].as_str(),
            reply["text"].as_str()
        ),
        (
            Some("message"),
            Some("bot"),
            settings
                .small_talk
                .get("thanks_goodbye")
                .map(String::as_str)
        ),
        "{reply}"
    );
}

/// A message of thanks (`thanks`, as `signals::is_thanks` reads them) the classifier reads as
/// `intent`.
fn thanks_read_as(intent: &str, always_human: bool) -> frontdesk::nlu::Understanding {
    frontdesk::nlu::Understanding {
        intent: Some(frontdesk::nlu::IntentMatch {
            name: intent.into(),
            confidence: 0.9,
            team: None,
            always_human,
            confident_at: 0.5,
        }),
        thanks: true,
        ..frontdesk::nlu::Understanding::default()
    }
}

/// The bot's reply to `text`, the first message of a chat, understood as `script` says.
async fn reply_to(script: fn(&str) -> frontdesk::nlu::Understanding, text: &str) -> Value {
    let app = common::spawn_app_understanding(|_| {}, script).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    customer.outcome("t1", text).await
}

/// A message of thanks the classifier reads as asking for a person (the intent's own words,
/// "your team"): the hand-off policy does not pass thanks on as a request, and the bot answers
/// them in kind rather than with "I don't know".
#[tokio::test]
async fn thanks_read_as_asking_for_a_person_are_answered_in_kind() {
    let reply = reply_to(
        |_| thanks_read_as(frontdesk::nlu::HUMAN_REQUEST_INTENT, true),
        "thanks so much, your team was lovely today",
    )
    .await;
    assert_thanked_in_kind(&reply);
}

/// A message of thanks for something that went right, read as thanks, whose words an article fits
/// well (the descaling guide): answered in kind, not with the article it no longer needs.
#[tokio::test]
async fn thanks_whose_words_an_article_fits_are_answered_in_kind() {
    let reply = reply_to(
        |_| thanks_read_as("thanks_goodbye", false),
        "thanks, running the descaling program to descale the brewer worked",
    )
    .await;
    assert_thanked_in_kind(&reply);
}
