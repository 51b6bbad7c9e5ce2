//! An editor's markdown file, whatever it holds: parsing, sectioning, the pieces quoted from, the
//! links, the HTML page and the spelling corrector built from it never panic; a quote starts
//! inside its section's text on a character boundary; and the article's HTML page holds only
//! markdown's own tags, no event handler, and no link or image a browser would read as anything
//! but http(s), mailto (links) or a relative address.
#![no_main]

use std::sync::Arc;

use frontdesk::kb::{self, English, Speller};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The watcher reads files as UTF-8 and reports the others as problems.
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(html) = kb::render_html("fuzz.md", source, |p| p.starts_with('a')) {
        if let Err(problem) = check_html(&html) {
            panic!("{problem} in {html:?}");
        }
    }
    let Ok(article) = kb::parse("fuzz.md", source) else {
        return;
    };
    for section in &article.sections {
        let _ = kb::link(&article, section);
        for heading in &section.heading_path {
            let _ = kb::slugify(heading);
        }
        let len = section.text.len();
        for at in [0, 1, len / 3, len / 2, len.saturating_sub(1), len, len + 7] {
            let from = kb::piece_start(&article, section, at);
            assert!(
                from <= len && section.text.is_char_boundary(from),
                "quote start {from} for offset {at} in a section of {len} bytes"
            );
        }
    }
    let english = Arc::new(English::from_tokens(["the", "order", "refund", "account"]));
    let speller = Speller::build(std::iter::once(&article), english);
    if let Some(section) = article.sections.first() {
        let _ = speller.correct(&section.text);
    }
});

const TAGS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "img",
    "ul",
    "ol",
    "li",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
    "br",
];
const ATTRIBUTES: &[&str] = &[
    "href", "src", "alt", "title", "id", "class", "rel", "style", "start",
];

/// The page as a browser would read its tags: every tag one of markdown's, every attribute a
/// known one, quoted, and every address's scheme (entities decoded, tabs and newlines dropped,
/// as browsers do) allowed.
fn check_html(html: &str) -> Result<(), String> {
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let end = rest.find('>').ok_or("a tag that never closes")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        let tag = tag
            .strip_prefix('/')
            .unwrap_or(tag)
            .trim_end_matches('/')
            .trim_end();
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if !TAGS.contains(&name) {
            return Err(format!("tag <{name}>"));
        }
        let mut attrs = tag[name_end..].trim_start();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .ok_or_else(|| format!("attribute without a value: {attrs:?}"))?;
            let key = attrs[..eq].trim();
            if !ATTRIBUTES.contains(&key) {
                return Err(format!("attribute {key:?} on <{name}>"));
            }
            let value = attrs[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| format!("unquoted attribute {key:?}"))?;
            let close = value
                .find('"')
                .ok_or("an attribute value that never closes")?;
            let raw = &value[..close];
            if key == "style" && !(matches!(name, "th" | "td") && raw.starts_with("text-align: ")) {
                return Err(format!("style {raw:?} on <{name}>"));
            }
            // The escapers write only these; any other reference (`&colon;`, `&Tab;`, `&#106`
            // without its `;`) a browser would decode into the address.
            if matches!(key, "href" | "src") {
                let mut refs = raw.match_indices('&');
                if let Some((at, _)) = refs.find(|(at, _)| {
                    !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;"]
                        .iter()
                        .any(|e| raw[*at..].starts_with(e))
                }) {
                    return Err(format!("{key} with a character reference at {at}: {raw:?}"));
                }
            }
            let url = decode_entities(raw);
            let allowed: &[&str] = match key {
                "href" => &["http", "https", "mailto"],
                "src" => &["http", "https"],
                _ => &[],
            };
            if matches!(key, "href" | "src") {
                if let Some(scheme) = browser_scheme(&url) {
                    if !allowed.contains(&scheme.as_str()) {
                        return Err(format!("{key} with scheme {scheme:?}"));
                    }
                }
            }
            attrs = value[close + 1..].trim_start();
        }
    }
    Ok(())
}

fn decode_entities(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a browser takes as the address's scheme (the URL standard's parser, simplified to the
/// safe side): tabs and newlines removed, leading and trailing controls and spaces trimmed, then
/// letters, digits, `+`, `-` and `.` up to a `:`, starting with a letter.
fn browser_scheme(url: &str) -> Option<String> {
    let cleaned: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c <= ' ');
    let colon = cleaned.find(':')?;
    let scheme = &cleaned[..colon];
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}
