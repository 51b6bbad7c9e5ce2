//! Unique customer questions about a knowledge base: the topics are its headings, put into a few
//! openings and endings by a mixed-radix counter, so question `n` is never asked twice in a run and
//! no cache can answer it (every question costs the server a full bot turn).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::bail;

const OPENINGS: [&str; 8] = [
    "how do I",
    "quick question, can you explain",
    "where can I find",
    "I'm stuck with",
    "is there a guide for",
    "what's the right way to handle",
    "can someone help me understand",
    "any tips on",
];

const ENDINGS: [&str; 8] = [
    "",
    " on my site",
    " for our team",
    " please",
    " today",
    " in the dashboard",
    " for a client",
    " after the update",
];

const CONTEXTS: [&str; 6] = [
    "",
    "We just signed up. ",
    "Sorry if this is obvious. ",
    "Hi there! ",
    "Following up on last week: ",
    "Hello, ",
];

/// Generates question `n` of a run.
pub struct Questions {
    topics: Vec<String>,
}

impl Questions {
    /// Topics from every markdown heading and title under `kb` (`.md` and `.mdx`).
    pub fn from_kb(kb: &Path) -> anyhow::Result<Self> {
        let mut topics = BTreeSet::new();
        collect(kb, &mut topics)?;
        if topics.len() < 5 {
            bail!(
                "{} has only {} headings: the questions need a knowledge base with a few articles",
                kb.display(),
                topics.len()
            );
        }
        Ok(Self {
            topics: topics.into_iter().collect(),
        })
    }

    /// How many different questions there are.
    pub fn len(&self) -> usize {
        self.topics.len() * OPENINGS.len() * ENDINGS.len() * CONTEXTS.len()
    }

    /// Question `n` (different for every `n` below [`Questions::len`]).
    pub fn get(&self, n: usize) -> String {
        let mut rest = n % self.len();
        let mut digit = |base: usize| {
            let d = rest % base;
            rest /= base;
            d
        };
        let topic = &self.topics[digit(self.topics.len())];
        let opening = OPENINGS[digit(OPENINGS.len())];
        let ending = ENDINGS[digit(ENDINGS.len())];
        let context = CONTEXTS[digit(CONTEXTS.len())];
        format!("{context}{opening} {topic}{ending}?")
    }
}

fn collect(dir: &Path, topics: &mut BTreeSet<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, topics)?;
            continue;
        }
        let markdown = path.extension().is_some_and(|e| e == "md" || e == "mdx");
        if !markdown {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            let heading = line
                .strip_prefix('#')
                .map(|h| h.trim_start_matches('#'))
                .or_else(|| line.strip_prefix("title:"));
            if let Some(topic) = heading.map(clean).filter(|t| t.len() >= 4 && t.len() <= 80) {
                topics.insert(topic);
            }
        }
    }
    Ok(())
}

fn clean(heading: &str) -> String {
    heading
        .trim()
        .trim_matches(['"', '\''])
        .trim_end_matches(['?', '.', ':'])
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_question_of_a_run_is_different() {
        let dir = tempfile::tempdir().unwrap();
        let text = "---\ntitle: \"Refunds\"\n---\n# Billing\n## Change your card\n## Invoices?\n### Taxes and VAT\n";
        std::fs::write(dir.path().join("a.md"), text).unwrap();
        std::fs::write(dir.path().join("b.mdx"), "# Export data\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "# Not an article\n").unwrap();
        let q = Questions::from_kb(dir.path()).unwrap();
        assert_eq!(q.topics.len(), 6, "{:?}", q.topics);
        let all: BTreeSet<String> = (0..q.len()).map(|n| q.get(n)).collect();
        assert_eq!(all.len(), q.len());
        assert!(q.get(0).ends_with('?'));
    }

    #[test]
    fn a_base_without_headings_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), "no headings here\n").unwrap();
        assert!(Questions::from_kb(dir.path()).is_err());
    }
}
