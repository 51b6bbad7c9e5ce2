//! frontdesk: a self-hosted support chat server. A bot answers customers from a markdown knowledge
//! base and hands conversations it should not handle to human agents.
//!
//! # Layout
//! - [`settings`]: typed, layered configuration (defaults → `frontdesk.toml` → `FRONTDESK_*`).
//! - [`kb`]: markdown articles → sections → tantivy (BM25) + embeddings; file watching; lint.
//! - [`nlu`]: the sentence encoder behind a batching worker; the embedding cache.
//! - [`bot`]: the dialogue policy: answer with a source, ask which article, or say "I don't know".
//! - [`conversation`]: sessions, sequence numbers, idempotency, resume, fan-out; the wire protocol;
//!   ownership transitions (bot → queued → agent → resolved), the context packet.
//! - [`escalation`]: the escalation policy (when a person takes over, and why) and the seam where
//!   language understanding plugs in.
//! - [`handoff`]: agents (accounts, presence, capacity), the queue, assignment, timers.
//! - [`store`]: persistence (SQLite by default).
//! - [`reports`]: what editors read: the questions the knowledge base did not answer, grouped.
//! - [`http`]: axum routes, the only module that knows axum.
//! - [`startup`]: wires it all together into an [`App`] that serves.
//!
//! `ARCHITECTURE.md` walks through the path of one customer message.

pub mod bot;
pub mod conversation;
pub mod escalation;
pub mod handoff;
pub mod http;
pub mod kb;
pub mod nlu;
pub mod reports;
pub mod settings;
pub mod startup;
pub mod store;

pub use settings::Settings;
pub use startup::App;
pub mod eval;
