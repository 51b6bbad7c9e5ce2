//! Any text frame a widget or an agent's console sends: decoding refuses it or yields a frame,
//! and a decoded message passes or fails the message check, without a panic.
#![no_main]

use frontdesk::protocol::{self, agent::AgentFrame, customer};
use frontdesk::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(customer::ClientFrame::Message {
        client_id, text, ..
    }) = protocol::decode::<customer::ClientFrame>(text, 16 * 1024)
    {
        let _ = customer::check_message(
            &client_id,
            &text,
            Settings::default().limits.max_message_chars,
        );
    }
    // The agent socket's limit (`MAX_AGENT_FRAME` in http/agent_socket.rs).
    let _ = protocol::decode::<AgentFrame>(text, 64 * 1024);
});
