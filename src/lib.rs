//! frontdesk: a self-hosted support chat server. A bot answers customers from a markdown knowledge
//! base and hands conversations it should not handle to human agents.
//!
//! # Layout
//! One module per concept; dependencies point one way (`ARCHITECTURE.md` has the map, and
//! `tests/module_map.rs` keeps the code to it).
//! - [`settings`]: typed, layered configuration (defaults → `frontdesk.toml` → `FRONTDESK_*`).
//! - [`ids`], [`clock`]: identifier types (`ConversationId`, `AgentId`) and the time.
//! - [`store`]: persistence (SQLite by default).
//! - [`nlu`]: the sentence encoder behind a batching worker; intents, out of scope, upset.
//! - [`kb`]: markdown articles → sections → tantivy (BM25) + embeddings; file watching; lint.
//! - [`bot`]: the dialogue policy: answer with a source, ask which article, or say "I don't know".
//! - [`escalation`]: when a person takes over, and why; the seam where understanding plugs in.
//! - [`accounts`]: who signs in (agents, admins, editors), roles, tokens.
//! - [`queue`]: the agents' desk in memory: presence, the queue, who holds what, timers.
//! - [`protocol`]: every frame on the wire, the context packet, error and close codes.
//! - [`cluster`]: several nodes: the Redis link that tells every node what the others did.
//! - [`fanout`]: who receives which frames (here and, through [`cluster`], on other nodes);
//!   each socket's bounded outbox.
//! - [`admission`]: socket slots (customers and agents apart), per-address limits.
//! - [`conversation`]: the state machine bot → queued → agent → resolved, the sequenced log.
//! - [`metrics`]: what operators scrape at `/metrics` (Prometheus text), one registry per server.
//! - [`reports`]: what editors read: the questions the knowledge base did not answer, grouped.
//! - [`eval`]: the benchmarks behind `frontdesk eval`.
//! - [`http`]: axum routes, the only module that knows axum.
//! - [`startup`]: wires it all together into an [`App`] that serves.
//!
//! `ARCHITECTURE.md` walks through the path of one customer message.

// A server must not panic on bad input: `unwrap` only in tests (clippy checks it; `expect` with
// a reason where a value is certain by construction).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod accounts;
pub mod admission;
pub mod bot;
pub mod clock;
pub mod cluster;
pub mod conversation;
pub mod escalation;
pub mod eval;
pub mod fanout;
pub mod http;
pub mod ids;
pub mod kb;
pub mod metrics;
pub mod nlu;
pub mod protocol;
pub mod queue;
pub mod reports;
pub mod settings;
pub mod startup;
pub mod store;

pub use settings::Settings;
pub use startup::App;
