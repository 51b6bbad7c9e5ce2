//! Keeps the knowledge base in step with its folder: any file event starts a short quiet period
//! (editors and `git checkout` write several files at once), then one [`KnowledgeBase::sync`].

use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

use super::KnowledgeBase;

/// How long to wait for more events before re-indexing.
const QUIET: Duration = Duration::from_millis(100);

/// Watches the knowledge-base folder while it lives; dropping it stops the watching.
pub struct Watcher {
    _watcher: notify::RecommendedWatcher,
}

impl Watcher {
    /// Starts watching `kb`'s folder.
    pub fn start(kb: &KnowledgeBase) -> notify::Result<Self> {
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(kb.dir(), RecursiveMode::Recursive)?;
        let weak = std::sync::Arc::downgrade(&kb.inner);
        std::thread::Builder::new()
            .name("kb-watch".into())
            .spawn(move || {
                // Ends when the watcher (and so the sender) is dropped.
                while rx.recv().is_ok() {
                    while rx.recv_timeout(QUIET).is_ok() {}
                    let Some(inner) = weak.upgrade() else { break };
                    let kb = KnowledgeBase { inner };
                    match kb.sync() {
                        Ok(r) => {
                            if !r.indexed.is_empty() || !r.removed.is_empty() {
                                tracing::info!(indexed = ?r.indexed, removed = ?r.removed, embedded = r.embedded, "knowledge base updated");
                            }
                            for p in &r.problems {
                                tracing::warn!("knowledge base: {p}");
                            }
                        }
                        Err(e) => tracing::error!("knowledge base sync failed: {e}"),
                    }
                }
            })
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(Self { _watcher: watcher })
    }
}
