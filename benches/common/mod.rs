//! What the benchmarks share: the knowledge base they search.

use std::path::PathBuf;

/// The Plausible help centre when `../shared/data` is beside the repository, else the demo
/// base: its name and folder.
pub fn knowledge_base() -> (&'static str, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let plausible = root.join("../shared/data/plausible_docs/docs");
    if plausible.is_dir() {
        ("plausible", plausible)
    } else {
        ("demo", root.join("knowledge_base"))
    }
}
