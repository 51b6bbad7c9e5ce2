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
/// links, template markup left in the prose. Findings come sorted by path.
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
        let source_body = source.trim_start_matches('\u{feff}');
        if !source_body.starts_with("---") && !source_body.starts_with("+++") {
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
        if let Some(url) = article::ignored_url(rel, &source) {
            let url: String = url.chars().take(60).collect();
            add(
                rel,
                Severity::Error,
                format!(
                    "the front matter's `url` must be the article's web address (https://…) or a \
                     path on this server (/…); `{url}` is ignored and the article links its page \
                     on the server instead"
                ),
            );
        }
        if !article::has_text(&parsed) {
            add(rel, Severity::Error, article::NO_TEXT.into());
        } else {
            // A heading whose text is all in its sub-headings ("## Tracking" then "### Goals")
            // is not empty.
            let has_children = |s: &article::Section| {
                parsed.sections.iter().any(|c| {
                    c.heading_path.len() > s.heading_path.len()
                        && c.heading_path.starts_with(&s.heading_path)
                })
            };
            for s in parsed
                .sections
                .iter()
                .filter(|s| s.text.is_empty() && !s.heading_path.is_empty() && !has_children(s))
            {
                add(
                    rel,
                    Severity::Warning,
                    format!("section \"{}\" is empty", s.heading_path.join(" > ")),
                );
            }
        }
        if let Some((markup, count)) = leftover_markup(rel, &source) {
            let more = match count {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            add(
                rel,
                Severity::Warning,
                format!(
                    "shows `{markup}`{more} to customers as written; if it is a template's \
                     markup, remove it, and if customers should see it, put it in `code`"
                ),
            );
        }
        for link in &parsed.links {
            let exists = |path: &str| dir.join(path).is_file();
            if article::linked_article(rel, link, exists).is_none() {
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
    for rel in unread_documents(dir) {
        add(
            &rel,
            Severity::Warning,
            "is not read by the bot (it reads .md, .mdx and .markdown): convert it with \
             `python3 scripts/export_docs.py SRC_DIR KB_DIR`"
                .into(),
        );
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path).then(b.severity.cmp(&a.severity)));
    Ok(findings)
}

fn has_title_key(source: &str) -> bool {
    let toml = source.trim_start_matches('\u{feff}').starts_with("+++");
    let fence = if toml { "+++" } else { "---" };
    source
        .lines()
        .skip(1)
        .take_while(|l| l.trim_end() != fence)
        .any(|l| {
            let key = l.trim_start();
            key.starts_with("title:")
                || (toml
                    && key
                        .strip_prefix("title")
                        .is_some_and(|r| r.trim_start().starts_with('=')))
        })
}

/// Template markup the parser leaves in an article's prose (a tag of a kind it does not strip),
/// outside code, as customers would read it, and how many there are; None when there is none.
fn leftover_markup(rel: &str, source: &str) -> Option<(String, usize)> {
    let prose = article::prose_markdown(rel, source).ok()?;
    let mut in_code = false;
    let mut found: Vec<String> = Vec::new();
    for line in prose.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        for (_, part) in article::code_spans(line)
            .into_iter()
            .filter(|(code, _)| !code)
        {
            let mut rest = part;
            let next = |rest: &str| {
                article::TEMPLATE_TAGS
                    .iter()
                    .filter_map(|(open, close)| rest.find(open).map(|at| (at, *close)))
                    .min_by_key(|(at, _)| *at)
            };
            while let Some((at, close)) = next(rest) {
                let tail = &rest[at..];
                let end = tail.find(close).map_or(tail.len(), |e| e + close.len());
                found.push(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
    }
    let count = found.len();
    found.into_iter().next().map(|first| (first, count))
}

/// Documents in `dir` the knowledge base does not read (HTML articles, Markdoc,
/// reStructuredText), found as the loader finds its own files.
fn unread_documents(dir: &Path) -> Vec<String> {
    const OTHERS: [&str; 4] = [".html", ".htm", ".mdoc", ".rst"];
    super::files_ending(dir, &OTHERS)
        .map(|files| files.into_keys().collect())
        .unwrap_or_default()
}
