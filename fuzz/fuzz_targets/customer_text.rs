//! Whatever a customer types (any Unicode, any length up to the message limit): the word and cue
//! readers, the follow-up rules, the corrector, the agent's summary and the message check never
//! panic.
#![no_main]

use std::sync::Arc;

use frontdesk::bot::{follow_up, refers_back, thread};
use frontdesk::conversation::summarise;
use frontdesk::kb::{self, English, Speller};
use frontdesk::nlu::{self, signals};
use frontdesk::protocol::{self, customer};
use frontdesk::Settings;
use libfuzzer_sys::fuzz_target;

const BASE: &str = "---\ntitle: Billing\n---\n# Billing\n\n## Refunds\n\nRefunds reach your card \
    within five days. Cancel the subscription from the account page.\n\n## Errors\n\nE31 means \
    the Wi-Fi password was wrong.\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = customer::check_message("c1", text, Settings::default().limits.max_message_chars);
    let _ = protocol::cut(text, text.len() / 2);
    let _ = nlu::codes(text);
    let _ = nlu::phrase_text(text);
    let _ = nlu::for_models(text);
    let _ = nlu::question_key(text);
    let _ = nlu::content_words(text).count();
    let _ = nlu::asks(text);
    let _ = nlu::has_words(text, "the order");
    let _ = nlu::has_word_start(text, "refund");
    let (_, cues) = signals::support_cues(text);
    let _ = signals::is_thanks(text, &cues);
    let _ = signals::names_someone(text);
    let _ = signals::asks_how_to(text);
    let _ = signals::has_evidence_cue(text);
    let _ = follow_up(text);
    let _ = refers_back(text);
    // The text split in two messages: the earlier one and a follow-up.
    let mid = (0..=text.len() / 2)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let (first, second) = text.split_at(mid);
    let _ = thread(&[first, second]);
    let _ = summarise(
        &[(1, first.to_owned()), (3, second.to_owned())],
        &["billing".to_owned()],
    );
    if let Ok(article) = kb::parse("billing.md", BASE) {
        let english = Arc::new(English::from_tokens([
            "the", "my", "card", "was", "charged",
        ]));
        let speller = Speller::build(std::iter::once(&article), english);
        let _ = speller.correct(text);
    }
});
