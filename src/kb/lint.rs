//! `frontdesk kb lint`: what an editor should fix, before customers notice.

use std::collections::HashMap;
use std::path::Path;

use super::{article, markdown_files, KbError};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look; the article still serves.
    Warning,
    /// Customers get a worse answer or a dead link until it is fixed.
    Error,
}

/// One thing wrong with one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// Path relative to the knowledge base.
    pub path: String,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong and what to do.
    pub message: String,
}

/// Checks every article in `dir`: front matter, empty sections, duplicate titles, broken relative
/// links. Findings come sorted by path.
pub fn lint(dir: &Path) -> Result<Vec<Finding>, KbError> {
    let files = markdown_files(dir)?;
    let mut findings = Vec::new();
    let mut titles: HashMap<String, Vec<String>> = HashMap::new();
    let mut add = |path: &str, severity, message: String| {
        findings.push(Finding {
            path: path.to_owned(),
            severity,
            message,
        });
    };
    for (rel, full) in &files {
        let source = match std::fs::read_to_string(full) {
            Ok(s) => s,
            Err(e) => {
                add(
                    rel,
                    Severity::Error,
                    format!("cannot be read as UTF-8 text ({e})"),
                );
                continue;
            }
        };
        let parsed = match article::parse(rel, &source) {
            Ok(a) => a,
            Err(KbError::Article { problem, .. }) => {
                add(rel, Severity::Error, problem);
                continue;
            }
            Err(e) => return Err(e),
        };
        if !source.trim_start_matches('\u{feff}').starts_with("---") {
            add(
                rel,
                Severity::Warning,
                format!(
                    "no front matter; the title \"{}\" was guessed. Add `---\\ntitle: ...\\n---`",
                    parsed.title
                ),
            );
        } else if !has_title_key(&source) {
            add(
                rel,
                Severity::Warning,
                format!(
                    "the front matter has no `title`; \"{}\" was guessed",
                    parsed.title
                ),
            );
        }
        if parsed.sections.iter().all(|s| s.text.is_empty()) {
            add(
                rel,
                Severity::Error,
                "the article has no text the bot could answer with".into(),
            );
        } else {
            for s in parsed
                .sections
                .iter()
                .filter(|s| s.text.is_empty() && !s.heading_path.is_empty())
            {
                add(
                    rel,
                    Severity::Warning,
                    format!("section \"{}\" is empty", s.heading_path.join(" > ")),
                );
            }
        }
        for link in &parsed.links {
            let target = link.split('#').next().unwrap_or_default();
            let base = full.parent().unwrap_or(dir);
            if !base.join(target).is_file() {
                add(
                    rel,
                    Severity::Error,
                    format!("the link to `{link}` points to a file that does not exist"),
                );
            }
        }
        titles
            .entry(parsed.title.to_lowercase())
            .or_default()
            .push(rel.clone());
    }
    for paths in titles.values().filter(|p| p.len() > 1) {
        for p in paths {
            let others: Vec<&str> = paths
                .iter()
                .filter(|o| *o != p)
                .map(String::as_str)
                .collect();
            add(
                p,
                Severity::Warning,
                format!(
                    "has the same title as {}; customers cannot tell them apart",
                    others.join(", ")
                ),
            );
        }
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path).then(b.severity.cmp(&a.severity)));
    Ok(findings)
}

fn has_title_key(source: &str) -> bool {
    source
        .lines()
        .skip(1)
        .take_while(|l| l.trim_end() != "---")
        .any(|l| l.starts_with("title:"))
}
