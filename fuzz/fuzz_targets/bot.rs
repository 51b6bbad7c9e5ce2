//! Whatever a customer asks, the bot's whole turn on the demo knowledge base — understanding
//! (intent, signals, the encoder), the corrected search, the decision, the quote and the choices,
//! the hand-off policy's explanation — and a pick of any passage id answer without a panic. Slow
//! (the real models). It moves to the repository root to find them, so its corpus path must be
//! absolute (scripts/fuzz.sh gives one).
#![no_main]

use std::sync::OnceLock;

use frontdesk::bot::Bot;
use frontdesk::escalation::{self, Policy};
use frontdesk::protocol::customer;
use frontdesk::Settings;
use libfuzzer_sys::fuzz_target;

struct Demo {
    runtime: tokio::runtime::Runtime,
    bot: Bot,
    policy: Policy,
    threshold: f32,
    max_chars: usize,
}

/// The bot as `frontdesk ask` builds it, once per process, from the repository's settings.
fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .expect("the repository beside fuzz/");
        let settings = Settings::load(None).expect("the settings");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let bot = runtime
            .block_on(frontdesk::startup::open_bot(&settings))
            .expect("the bot on the demo knowledge base (run `make setup`)");
        Demo {
            runtime,
            bot,
            policy: Policy::new(settings.escalation.clone()),
            threshold: settings.bot.answer_threshold,
            max_chars: settings.limits.max_message_chars,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let demo = demo();
    // As the server takes a message: trimmed, within the message limit.
    if let Ok(question) = customer::check_message("c1", text, demo.max_chars) {
        let reply = demo
            .runtime
            .block_on(demo.bot.reply(question))
            .expect("a reply");
        let _ = escalation::explain(
            &demo.policy,
            question,
            &reply.understanding,
            &reply,
            demo.threshold,
        );
    }
    // A pick of whatever passage id a client names, quoted from any offset.
    let _ = demo.bot.answer_chosen(Some(text), text.len());
});
