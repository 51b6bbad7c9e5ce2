//! Turning one markdown file into an [`Article`]: front matter, sections split by heading, and only
//! the prose kept (no MDX `import` lines, JSX tags, HTML, comments, admonition markers, GitBook
//! block tags or Hugo shortcodes).

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

use super::KbError;

/// One markdown article, split into sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// Path relative to the knowledge-base folder, with `/` separators: the article's identity.
    pub path: String,
    /// Title from the front matter (or the first `#` heading, or the file name).
    pub title: String,
    /// Tags from the front matter.
    pub tags: Vec<String>,
    /// Public URL of the article, when the front matter gives one.
    pub url: Option<String>,
    /// Sections in document order; the first may have no heading (the introduction).
    pub sections: Vec<Section>,
    /// Relative links to other markdown files, as written (checked by `kb lint`).
    pub links: Vec<String>,
}

/// A passage of an article under one heading.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// Headings from the top of the article down to this section (`["Setup", "Wi-Fi"]`).
    pub heading_path: Vec<String>,
    /// URL fragment of the section's heading (empty for the introduction).
    pub anchor: String,
    /// The section's prose, paragraphs separated by blank lines.
    pub text: String,
}

#[derive(Debug, Default, Deserialize)]
struct FrontMatter {
    title: Option<String>,
    #[serde(default, deserialize_with = "tags_from_list_or_string")]
    tags: Vec<String>,
    url: Option<String>,
}

fn tags_from_list_or_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<serde_yaml::Value>),
        One(String),
        Nothing(()),
    }
    Ok(match Tags::deserialize(d)? {
        Tags::List(items) => items
            .into_iter()
            .filter_map(|v| match v {
                serde_yaml::Value::String(s) => Some(s),
                serde_yaml::Value::Mapping(m) => {
                    m.get("label").and_then(|l| l.as_str()).map(str::to_owned)
                }
                other => serde_yaml::to_string(&other)
                    .ok()
                    .map(|s| s.trim().to_owned()),
            })
            .collect(),
        Tags::One(s) => s
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        Tags::Nothing(()) => Vec::new(),
    })
}

/// Parses a markdown file's contents. `path` is only used to name the article and in errors.
pub fn parse(path: &str, source: &str) -> Result<Article, KbError> {
    let (front, body) = split_front_matter(path, source)?;
    let body = strip_mdx(body);
    let mut article = Article {
        path: path.to_owned(),
        title: front.title.unwrap_or_default().trim().to_owned(),
        tags: front.tags,
        url: front
            .url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty()),
        sections: Vec::new(),
        links: Vec::new(),
    };
    if let Some(url) = article.url.take() {
        match is_public_address(&url) {
            true => article.url = Some(url),
            // Its own page (`/kb/…`) is linked instead; `kb lint` says why ([`ignored_url`]).
            false => tracing::warn!(
                path,
                url,
                "the front matter's url is not a web address: ignored"
            ),
        }
    }
    let first_h1 = split_sections(&body, &mut article);
    if article.title.is_empty() {
        article.title = first_h1.unwrap_or_else(|| title_from_path(path));
    }
    Ok(article)
}

/// Whether `url` (an article's public address from its front matter) is one a customer can be
/// sent to: http(s), or a path on the server (`/…`, not `//host`). Anything else (`javascript:`,
/// `data:`, a bare `www.example.com/x`, an address with spaces) is ignored: the article is linked
/// to its page on the server instead.
fn is_public_address(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let path = url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\");
    (lower.starts_with("https://") || lower.starts_with("http://") || path)
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The front matter's `url` of `source` when it is not one a customer can be sent to (so the
/// article links its page on the server instead): for `kb lint` to say so.
pub fn ignored_url(path: &str, source: &str) -> Option<String> {
    let (front, _) = split_front_matter(path, source).ok()?;
    let url = front.url?.trim().to_owned();
    (!url.is_empty() && !is_public_address(&url)).then_some(url)
}

/// What an article that [`has_text`] says no about is told (a problem; it is not loaded).
pub const NO_TEXT: &str = "the article has no text the bot could answer with: write it under \
    the title (the file is empty, or holds only a title and headings)";

/// Whether any of the article's sections has text (an article without is not loaded).
pub fn has_text(article: &Article) -> bool {
    article.sections.iter().any(|s| !s.text.is_empty())
}

/// The markdown after the front matter, without MDX imports and JSX (for rendering to HTML).
pub(super) fn prose_markdown(path: &str, source: &str) -> Result<String, KbError> {
    let (_, body) = split_front_matter(path, source)?;
    Ok(strip_mdx(body))
}

fn split_front_matter<'a>(path: &str, source: &'a str) -> Result<(FrontMatter, &'a str), KbError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    // YAML between `---` lines, or TOML between `+++` lines (Hugo's).
    let (fence, toml) = if source.starts_with("+++") {
        ("+++", true)
    } else {
        ("---", false)
    };
    let Some(rest) = source
        .strip_prefix(fence)
        .filter(|r| r.starts_with('\n') || r.starts_with("\r\n"))
    else {
        return Ok((FrontMatter::default(), source));
    };
    let Some(end) = find_closing_fence(rest, fence) else {
        return Err(KbError::Article {
            path: path.to_owned(),
            problem: format!(
                "the front matter starts with `{fence}` but has no closing `{fence}` line"
            ),
        });
    };
    let text = &rest[..end];
    let after = &rest[end..];
    let after = after.split_once('\n').map_or("", |(_, tail)| tail);
    if text.trim().is_empty() {
        return Ok((FrontMatter::default(), after));
    }
    let front = if toml {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(text))
            .extract::<FrontMatter>()
            .map_err(|e| KbError::Article {
                path: path.to_owned(),
                problem: format!("the front matter is not valid TOML ({e}); fix it or remove it"),
            })?
    } else {
        serde_yaml::from_str::<FrontMatter>(text).map_err(|e| KbError::Article {
            path: path.to_owned(),
            problem: format!("the front matter is not valid YAML ({e}); fix it or remove it"),
        })?
    };
    Ok((front, after))
}

/// Byte offset (within `rest`) of the line that closes the front matter.
fn find_closing_fence(rest: &str, fence: &str) -> Option<usize> {
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end();
        if offset > 0 && (bare == fence || (fence == "---" && bare == "...")) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// Removes MDX-only lines (imports/exports, `{/* */}` comments), admonition fences (`:::tip`),
/// template tags (GitBook's and Jekyll's `{% hint %}`, Hugo's `{{< tab >}}`) and JSX/HTML tags
/// (also ones spread over several lines), outside code blocks and inline code. A tab's, step's or
/// accordion's title is kept as the label of what it holds ("Cloudflare: Add a CNAME record…"):
/// help centres put the answer for each case under such a title.
fn strip_mdx(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut in_code = false;
    let mut in_tag = false;
    // The closer of a template tag opened on an earlier line and not closed yet.
    let mut in_template: Option<&'static str> = None;
    // MkDocs' admonitions and content tabs open: their text is indented under them, four
    // columns a level (indented text would otherwise read as a code block).
    let mut blocks = 0usize;
    for raw in body.lines() {
        if blocks > 0 && !raw.trim().is_empty() {
            blocks = blocks.min(indent_of(raw) / 4);
        }
        let line = dedent(raw, blocks * 4);
        let trimmed = line.trim_start();
        if !in_code && in_template.is_none() && trimmed.len() == line.len() {
            if let Some(title) = mkdocs_block(trimmed) {
                if let Some(title) = title {
                    out.push_str(&label(&title));
                }
                out.push('\n');
                blocks += 1;
                continue;
            }
        }
        if in_template.is_none() && (trimmed.starts_with("```") || trimmed.starts_with("~~~")) {
            in_code = !in_code;
        }
        if in_code {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let is_mdx_statement = (trimmed.starts_with("import ") || trimmed.starts_with("export "))
            && (trimmed.contains(" from ") || trimmed.ends_with(';') || trimmed.contains('='));
        let is_mdx_comment = trimmed.starts_with("{/*") && trimmed.ends_with("*/}");
        if is_mdx_statement || is_mdx_comment || trimmed.starts_with(":::") {
            out.push('\n');
            continue;
        }
        for (code, part) in code_spans(line) {
            if code && !in_tag && in_template.is_none() {
                out.push_str(part);
                continue;
            }
            let (kept, still_in_tag) = strip_tags(&strip_templates(part, &mut in_template), in_tag);
            in_tag = still_in_tag;
            out.push_str(&kept);
        }
        out.push('\n');
    }
    out
}

/// Columns of leading white space (a tab counts four).
fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// `line` without up to `columns` columns of leading white space.
fn dedent(line: &str, columns: usize) -> &str {
    let mut taken = 0;
    for (i, c) in line.char_indices() {
        if taken >= columns || !(c == ' ' || c == '\t') {
            return &line[i..];
        }
        taken += if c == '\t' { 4 } else { 1 };
    }
    ""
}

/// Whether `line` opens a block of MkDocs' (Material's) markup, with its title: an admonition
/// (`!!! note "Title"`, collapsible `??? tip` and `???+ tip`) or a content tab (`=== "macOS"`).
fn mkdocs_block(line: &str) -> Option<Option<String>> {
    let quoted = |rest: &str| {
        let rest = rest.trim();
        let title = rest.strip_prefix('"')?.strip_suffix('"')?.trim();
        (!title.is_empty()).then(|| title.to_owned())
    };
    if let Some(rest) = line.strip_prefix("===") {
        let rest = rest.strip_prefix(['!', '+']).unwrap_or(rest);
        return rest
            .starts_with(' ')
            .then(|| quoted(rest))
            .filter(Option::is_some);
    }
    let rest = ["???+", "!!!", "???"]
        .iter()
        .find_map(|marker| line.strip_prefix(marker))?;
    let rest = rest.strip_prefix(' ')?.trim();
    // As MkDocs reads it: one or more words (the kind, then `inline`, `end`…) and an optional
    // quoted title, nothing else ("!!! Free shipping today!!!" is prose).
    let (words, title) = match rest.find('"') {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let word = |w: &str| {
        w.chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    };
    if words.trim().is_empty() || !words.split_whitespace().all(word) {
        return None;
    }
    match title {
        None => Some(None),
        Some(t) if t.len() >= 2 && t.ends_with('"') => Some(quoted(t)),
        Some(_) => None,
    }
}

/// `line` cut into inline code spans (`true`: kept as written, `<head>` and all) and the text
/// between them. A run of backticks with no closing run of the same length is text.
pub(super) fn code_spans(line: &str) -> Vec<(bool, &str)> {
    let mut parts = Vec::new();
    let mut rest = line;
    let ticks = |s: &str| s.bytes().take_while(|&b| b == b'`').count();
    while let Some(start) = rest.find('`') {
        let run = ticks(&rest[start..]);
        let after = &rest[start + run..];
        let mut from = 0;
        let mut close = None;
        while let Some(i) = after[from..].find('`') {
            let at = from + i;
            let len = ticks(&after[at..]);
            if len == run {
                close = Some(at);
                break;
            }
            from = at + len;
        }
        match close {
            Some(at) => {
                let end = start + run + at + run;
                parts.push((false, &rest[..start]));
                parts.push((true, &rest[start..end]));
                rest = &rest[end..];
            }
            None => {
                parts.push((false, &rest[..start + run]));
                rest = &rest[start + run..];
            }
        }
    }
    parts.push((false, rest));
    parts
}

/// The block tags GitBook (and Jekyll) help centres mark their pages up with: `{% hint %}`,
/// `{% tabs %}`… Other `{% … %}` and every `{{ … }}` are left alone: a help centre that documents
/// its own templates ("include the {{ unsubscribe_url }} tag") means them as text.
const MARKUP_TAGS: &[&str] = &[
    "hint",
    "tabs",
    "tab",
    "code",
    "embed",
    "content-ref",
    "page-ref",
    "file",
    "include",
    "raw",
    "stepper",
    "step",
    "columns",
    "column",
    "updates",
    "update",
];

/// Template tags, opener and closer: GitBook's and Liquid's, then Hugo's two kinds of shortcode
/// (`kb lint` looks for the ones the parser leaves).
pub(super) const TEMPLATE_TAGS: [(&str, &str); 3] = [("{%", "%}"), ("{{<", ">}}"), ("{{%", "%}}")];

/// The template tags whose title labels the text they hold (a tab, a step, an expandable
/// block); a figure's or a link's argument is not a label.
const LABELLED: &[&str] = &[
    "tab",
    "tabitem",
    "step",
    "expand",
    "expandable",
    "details",
    "accordion",
    "collapse",
    "spoiler",
    "toggle",
    "card",
    "panel",
];

/// Drops template markup: GitBook's block tags (`{% hint style="info" %}`, see [`MARKUP_TAGS`])
/// and Hugo's shortcodes (`{{< tab >}}`, `{{% notice %}}`). An opening tag with a title (`{% tab
/// title="Cloudflare" %}`) of a kind in [`LABELLED`] leaves the title as a label.
fn strip_templates(text: &str, open_tag: &mut Option<&'static str>) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut rest = text;
    if let Some(close) = *open_tag {
        // The rest of a tag spread over lines.
        match rest.find(close) {
            Some(end) => {
                rest = &rest[end + close.len()..];
                *open_tag = None;
            }
            None => return kept,
        }
    }
    loop {
        let found = TEMPLATE_TAGS
            .iter()
            .filter_map(|(open, close)| rest.find(open).map(|at| (at, *open, *close)))
            .min_by_key(|(at, open, _)| (*at, std::cmp::Reverse(open.len())));
        let Some((at, open, close)) = found else {
            kept.push_str(rest);
            return kept;
        };
        let inside = &rest[at + open.len()..];
        // Liquid's `{%- … -%}` trims whitespace; the tag is the same.
        let tag_text = |end: usize| inside[..end].trim().trim_matches('-').trim();
        let Some(end) = inside.find(close) else {
            // A tag continued on the next lines: markup if it is one (Hugo's always are).
            let name = tag_name(tag_text(inside.len()));
            if open != "{%" || is_markup(&name) {
                kept.push_str(&rest[..at]);
                *open_tag = Some(close);
            } else {
                kept.push_str(rest);
            }
            return kept;
        };
        let tag = tag_text(end);
        let name = tag_name(tag);
        if open == "{%" && !is_markup(&name) {
            // Not markup: kept as written.
            kept.push_str(&rest[..at + open.len() + end + close.len()]);
            rest = &inside[end + close.len()..];
            continue;
        }
        kept.push_str(&rest[..at]);
        if LABELLED.contains(&name.as_str()) {
            // Hugo's shortcodes also name a tab by `header=`, `name=` or a first quoted argument
            // (`{{< tab "macOS" >}}`).
            let hugo = || {
                attribute(tag, "header")
                    .or_else(|| attribute(tag, "name"))
                    .or_else(|| {
                        let first = tag.split_once(char::is_whitespace)?.1.trim_start();
                        let first = first.strip_prefix('"')?;
                        let title = first[..first.find('"')?].trim();
                        (!title.is_empty()).then(|| title.to_owned())
                    })
            };
            let title = attribute(tag, "title")
                .or_else(|| attribute(tag, "label"))
                .or_else(|| if open == "{%" { None } else { hugo() });
            if let Some(title) = title {
                kept.push_str(&label(&title));
            }
        }
        rest = &inside[end + close.len()..];
    }
}

/// A template tag's kind, lower case, without the closing tag's `/` or `end`
/// (`{% endtab %}` and `{{< /tab >}}` are `tab`).
fn tag_name(tag: &str) -> String {
    let name = tag.split_whitespace().next().unwrap_or("").to_lowercase();
    let name = name.trim_start_matches('/');
    name.strip_prefix("end").unwrap_or(name).to_owned()
}

/// Whether a `{% … %}` tag of kind `name` is GitBook's markup (see [`MARKUP_TAGS`]).
fn is_markup(name: &str) -> bool {
    MARKUP_TAGS.contains(&name)
        || ["swagger", "api-method", "openapi"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// `name="value"` (or with single quotes) in a tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name) {
        let at = from + i;
        let before_ok = at == 0 || tag[..at].ends_with(|c: char| c.is_whitespace());
        let after = tag[at + name.len()..].trim_start();
        if let (true, Some(value)) = (before_ok, after.strip_prefix('=')) {
            let value = value.trim_start();
            if let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') {
                let value = &value[1..];
                if let Some(end) = value.find(quote) {
                    let value = value[..end].trim();
                    return (!value.is_empty()).then(|| value.to_owned());
                }
            }
        }
        from = at + name.len();
    }
    None
}

/// A title kept as the label of the text after it: a paragraph of its own, so that what follows
/// (a table, a list) is read as it was written.
fn label(title: &str) -> String {
    if title.ends_with(['?', '.', '!', ':']) {
        format!("\n\n{title}\n\n")
    } else {
        format!("\n\n{title}:\n\n")
    }
}

/// Drops `<Tag ...>`, `</Tag>` and `<Tag ... />` from a line; `in_tag` says a tag opened on an
/// earlier line is still open. Autolinks (`<https://...>`, `<a@b.c>`) are kept. A component that
/// wraps text under a title (`<TabItem label="WordPress">`, `<Accordion title="…">`) leaves the
/// title as a label.
fn strip_tags(line: &str, mut in_tag: bool) -> (String, bool) {
    let mut kept = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        if in_tag {
            match rest.find('>') {
                Some(end) => {
                    rest = &rest[end + 1..];
                    in_tag = false;
                }
                None => return (kept, true),
            }
        }
        let Some(start) = rest.find('<') else {
            kept.push_str(rest);
            return (kept, false);
        };
        let after = &rest[start + 1..];
        let opens_tag =
            after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!');
        let tag_text = after.split('>').next().unwrap_or("");
        let autolink =
            tag_text.contains("://") || (tag_text.contains('@') && !tag_text.contains(' '));
        if opens_tag && !autolink {
            kept.push_str(&rest[..start]);
            let component = after.starts_with(|c: char| c.is_ascii_uppercase())
                && LABELLED.contains(&tag_name(tag_text).as_str());
            let wraps = after.contains('>') && !tag_text.trim_end().ends_with('/');
            if component && wraps {
                if let Some(title) =
                    attribute(tag_text, "title").or_else(|| attribute(tag_text, "label"))
                {
                    kept.push_str(&label(&title));
                }
            }
            rest = after;
            in_tag = true;
        } else {
            kept.push_str(&rest[..=start]);
            rest = after;
        }
    }
}

/// Walks the markdown, starting a new section at each heading. Returns the first `#` heading.
fn split_sections(body: &str, article: &mut Article) -> Option<String> {
    let mut first_h1 = None;
    let mut heading_stack: Vec<(HeadingLevel, String)> = Vec::new();
    let mut current = Section {
        heading_path: Vec::new(),
        anchor: String::new(),
        text: String::new(),
    };
    let mut heading: Option<(HeadingLevel, Option<String>, String)> = None;
    let mut in_code_block = false;

    let finish = |section: &mut Section, sections: &mut Vec<Section>| {
        let text = tidy(&section.text);
        if !text.is_empty() || !section.heading_path.is_empty() {
            sections.push(Section {
                text,
                ..std::mem::take(section)
            });
        }
    };

    for event in Parser::new_ext(
        body,
        Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES,
    ) {
        match event {
            Event::Start(Tag::Heading { level, id, .. }) => {
                heading = Some((level, id.map(|s| s.to_string()), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                let Some((level, id, text)) = heading.take() else {
                    continue;
                };
                let (text, custom_id) = split_custom_anchor(text.trim());
                if level == HeadingLevel::H1 && first_h1.is_none() {
                    first_h1 = Some(text.clone());
                    continue;
                }
                finish(&mut current, &mut article.sections);
                heading_stack.retain(|(l, _)| *l < level);
                heading_stack.push((level, text.clone()));
                current.heading_path = heading_stack.iter().map(|(_, t)| t.clone()).collect();
                current.anchor = id.or(custom_id).unwrap_or_else(|| slugify(&text));
            }
            Event::Text(t) | Event::Code(t) => match &mut heading {
                Some((_, _, h)) => h.push_str(&t),
                None => current.text.push_str(&t),
            },
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => {
                in_code_block = false;
                current.text.push_str("\n\n");
            }
            Event::Start(Tag::Link { dest_url, .. }) if is_markdown_link(&dest_url) => {
                article.links.push(dest_url.to_string());
            }
            Event::SoftBreak | Event::HardBreak => {
                push_space(&mut current.text, &mut heading, in_code_block)
            }
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::TableHead
                | TagEnd::TableRow
                | TagEnd::BlockQuote(_),
            ) => {
                current.text.push_str("\n\n");
            }
            Event::End(TagEnd::TableCell) => current.text.push_str(" | "),
            // HTML, JSX components and comments are not prose.
            Event::Html(_) | Event::InlineHtml(_) => {}
            _ => {}
        }
    }
    finish(&mut current, &mut article.sections);
    first_h1
}

fn push_space(
    text: &mut String,
    heading: &mut Option<(HeadingLevel, Option<String>, String)>,
    code: bool,
) {
    match heading {
        Some((_, _, h)) => h.push(' '),
        None if code => text.push('\n'),
        None => text.push(' '),
    }
}

/// Docusaurus writes custom anchors as `## Heading {#anchor}`.
fn split_custom_anchor(text: &str) -> (String, Option<String>) {
    if let Some(start) = text.rfind("{#") {
        if text.ends_with('}') {
            let id = text[start + 2..text.len() - 1].trim().to_owned();
            return (text[..start].trim().to_owned(), Some(id));
        }
    }
    (text.to_owned(), None)
}

/// Collapses runs of spaces and blank lines, and leftover JSX expression braces.
fn tidy(text: &str) -> String {
    let mut paragraphs = Vec::new();
    for para in text.split("\n\n") {
        let words: Vec<&str> = para.split_whitespace().collect();
        let joined = words.join(" ");
        let joined = joined.trim_matches(|c: char| c == '|' || c.is_whitespace());
        if !joined.is_empty() {
            paragraphs.push(joined.to_owned());
        }
    }
    paragraphs.join("\n\n")
}

/// The article a markdown link in the article at `from` points to (its path in the knowledge
/// base, as `exists` knows paths), resolved as Docusaurus resolves it: `./x.md` and `../x.md` from
/// the linking article's folder only; `/x.md` from the knowledge base's root; a bare `x.md` from
/// the article's folder, then from the root (`goal-conversions.md` written in `custom-props/`).
/// A link from the site's root with Docusaurus's default docs folder first (`docs/x.md`, `/docs/
/// x.md`) is read from the root without it. Percent-escapes are decoded. `None` when nothing
/// there exists, or for what is not a link to a markdown file (an address, an anchor).
pub fn linked_article(from: &str, link: &str, exists: impl Fn(&str) -> bool) -> Option<String> {
    if !is_markdown_link(link) {
        return None;
    }
    let target = percent_decoded(link.split('#').next().unwrap_or_default());
    let folder = from.rsplit_once('/').map_or("", |(folder, _)| folder);
    let in_folder = || normalize(&format!("{folder}/{target}"));
    let from_root = || normalize(&target);
    let from_site = || {
        target
            .trim_start_matches('/')
            .strip_prefix("docs/")
            .and_then(normalize)
    };
    let candidates = if target.starts_with("./") || target.starts_with("../") {
        vec![in_folder()]
    } else if target.starts_with('/') {
        vec![from_root(), from_site()]
    } else {
        vec![in_folder(), from_root(), from_site()]
    };
    candidates.into_iter().flatten().find(|path| exists(path))
}

/// `a%20b.md` as `a b.md` (as a browser would ask for it); text that is not valid UTF-8 once
/// decoded, or a `%` not followed by two hex digits, is left as written.
fn percent_decoded(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// `a/./b/../c.md` as `a/c.md`; `None` for a path that climbs out of the knowledge base.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether `url` links a markdown file on the same site: relative, or from the site's root
/// (`/x.md`), not an address elsewhere (`https://…`, `//host/…`, `mailto:`).
fn is_markdown_link(url: &str) -> bool {
    let target = url.split('#').next().unwrap_or("");
    !target.is_empty()
        && !target.split('/').next().unwrap_or_default().contains(':')
        && !target.starts_with("//")
        && !target.starts_with("mailto:")
        && [".md", ".mdx", ".markdown"]
            .iter()
            .any(|ext| target.ends_with(ext))
}

fn title_from_path(path: &str) -> String {
    let stem = path.rsplit('/').next().unwrap_or(path);
    let stem = stem.trim_end_matches(".mdx").trim_end_matches(".md");
    let words = stem.replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => path.to_owned(),
    }
}

/// The URL fragment a heading gets: lowercase, words joined by `-`, punctuation dropped.
pub fn slugify(heading: &str) -> String {
    let mut slug = String::with_capacity(heading.len());
    for c in heading.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if (c == ' ' || c == '-' || c == '_') && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_resolved_as_docusaurus_does_and_never_outside() {
        let paths = [
            "a.md",
            "b.md",
            "guides/b.md",
            "guides/deep/c.md",
            "my page.md",
        ];
        let exists = |p: &str| paths.contains(&p);
        let resolve = |from: &str, link: &str| linked_article(from, link, exists);
        // A bare link: the article's folder first, then the root.
        assert_eq!(
            resolve("guides/x.md", "b.md").as_deref(),
            Some("guides/b.md")
        );
        assert_eq!(resolve("guides/deep/c.md", "a.md").as_deref(), Some("a.md"));
        // ./ and ../: the folder only.
        assert_eq!(
            resolve("guides/deep/c.md", "../b.md#x").as_deref(),
            Some("guides/b.md")
        );
        assert_eq!(resolve("guides/x.md", "./a.md"), None);
        assert_eq!(resolve("a.md", "./a.md").as_deref(), Some("a.md"));
        assert_eq!(resolve("a.md", "../a.md"), None, "climbs out");
        assert_eq!(resolve("guides/b.md", "../../a.md"), None, "climbs out");
        // From the root, and from the site's root through the docs folder.
        assert_eq!(resolve("guides/x.md", "/b.md").as_deref(), Some("b.md"));
        assert_eq!(
            resolve("a.md", "docs/guides/b.md").as_deref(),
            Some("guides/b.md")
        );
        assert_eq!(resolve("a.md", "/docs/a.md").as_deref(), Some("a.md"));
        assert_eq!(
            resolve("a.md", "blog/a.md"),
            None,
            "another folder is not the docs"
        );
        assert_eq!(
            resolve("a.md", "my%20page.md").as_deref(),
            Some("my page.md")
        );
        assert_eq!(resolve("a.md", "https://example.com/a.md"), None);
        assert_eq!(resolve("a.md", "//example.com/a.md"), None);
        assert_eq!(resolve("a.md", "javascript:x//a.md"), None);
        assert_eq!(resolve("a.md", "#top"), None);
        assert_eq!(resolve("a.md", "missing.md"), None);
    }

    const MDX: &str = r#"---
title: "Two-factor authentication"
tags: [account, security]
url: https://example.com/2fa
---
import useBaseUrl from '@docusaurus/useBaseUrl';
import CtaBox from '@site/src/components/CtaBox';

Protect your account with a second step.

<!-- an editor's note that is not for customers -->

## Turn it on {#enable}

Open **Settings** and choose *Security*. <Required />

:::tip
Keep your recovery codes safe.
:::

<img src={useBaseUrl('img/2fa.png')} alt="2FA screen" />

### With an app

Scan the QR code. See [recovery](recovery-codes.md#lost) and [home](/docs).

<CtaBox title="Try it" />

## Turn it off

Click `Disable`.
"#;

    #[test]
    fn splits_sections_and_keeps_only_prose() {
        let a = parse("account/2fa.mdx", MDX).unwrap();
        assert_eq!(a.title, "Two-factor authentication");
        assert_eq!(a.tags, ["account", "security"]);
        assert_eq!(a.url.as_deref(), Some("https://example.com/2fa"));
        let headings: Vec<_> = a
            .sections
            .iter()
            .map(|s| s.heading_path.join(" > "))
            .collect();
        assert_eq!(
            headings,
            ["", "Turn it on", "Turn it on > With an app", "Turn it off"]
        );
        assert_eq!(
            a.sections[0].text,
            "Protect your account with a second step."
        );
        assert_eq!(a.sections[1].anchor, "enable");
        assert_eq!(
            a.sections[1].text,
            "Open Settings and choose Security.\n\nKeep your recovery codes safe."
        );
        assert_eq!(a.sections[2].anchor, "with-an-app");
        assert_eq!(a.sections[3].text, "Click Disable.");
        assert_eq!(a.links, ["recovery-codes.md#lost"]);
        let all: String = a.sections.iter().map(|s| s.text.as_str()).collect();
        for junk in ["import", "<", "useBaseUrl", "editor's note", ":::"] {
            assert!(!all.contains(junk), "{junk} leaked into the prose: {all}");
        }
    }

    #[test]
    fn a_tables_header_and_each_row_are_lines_of_their_own() {
        let source =
            "# Codes\n\n| Code | Meaning |\n|---|---|\n| E31 | No Wi-Fi |\n| E32 | No internet |\n";
        let a = parse("codes.md", source).expect("a table parses");
        assert_eq!(
            a.sections[0].text,
            "Code | Meaning\n\nE31 | No Wi-Fi\n\nE32 | No internet"
        );
    }

    #[test]
    fn gitbook_and_hugo_tags_go_and_tab_titles_label_their_text() {
        let gitbook = r#"# Custom domains

{% hint style="info" %}
Custom domains are available on the **Pro** plan.
{% endhint %}

{% tabs %}
{% tab title="Cloudflare" %}
Add a CNAME record. Turn the proxy off.
{% endtab %}
{% tab title="GoDaddy" %}
Open DNS settings.
{% endtab %}
{% endtabs %}

{% code title="dns.txt" %}
Include the {{ unsubscribe_url }} tag. {% if x %}{{< hint info >}}A day.{{< /hint >}}
{% endcode %}

{{< tab "macOS" >}}Open Preferences.{{< /tab >}} {{% tab name="Linux" %}}Edit the file.{{% /tab %}}
See [the guide]({{< relref "guide.md" >}}). {{< figure src="a.png" title="Diagram" >}}

{{< figure
  src="b.png"
  title="Spread over lines" >}}
{%- tab title="DNS" -%}
Type | Value
--- | ---
CNAME | docs
{% endtab %}
{% swagger-parameter in="path" name="id" %}The site's id.{% endswagger-parameter %}
"#;
        let a = parse("domains.md", gitbook).unwrap();
        assert_eq!(
            a.sections[0].text,
            "Custom domains are available on the Pro plan.\n\n\
             Cloudflare:\n\nAdd a CNAME record. Turn the proxy off.\n\n\
             GoDaddy:\n\nOpen DNS settings.\n\n\
             Include the {{ unsubscribe_url }} tag. {% if x %}A day.\n\n\
             macOS:\n\nOpen Preferences.\n\nLinux:\n\nEdit the file. See the guide.\n\n\
             DNS:\n\nType | Value\n\nCNAME | docs\n\nThe site's id."
        );
    }

    #[test]
    fn inline_code_keeps_its_angle_brackets_and_components_their_titles() {
        let mdx = r#"# Install

Put the script in the `<head>` of every page, before ``</head>``.

<Tabs>
  <TabItem value="wp" label="WordPress">
  Install our plugin.
  </TabItem>
</Tabs>

<Accordion title="Can I cancel?">You can cancel any time.</Accordion>

See <Link to="/p" title="Pricing page">our prices</Link>.

<Card title="Decoration" href="/x" />
"#;
        let a = parse("install.mdx", mdx).unwrap();
        assert_eq!(
            a.sections[0].text,
            "Put the script in the <head> of every page, before </head>.\n\n\
             WordPress:\n\nInstall our plugin.\n\n\
             Can I cancel?\n\nYou can cancel any time.\n\n\
             See our prices."
        );
    }

    #[test]
    fn mkdocs_admonitions_and_tabs_keep_their_text_and_titles() {
        let page = r#"# Install

!!! warning "Ad blockers"
    Some ad blockers hide the script.

    Use a proxy to avoid that.

=== "macOS"

    Open Preferences.

    ```sh
    brew install tool
    ```

=== "Linux"
    Edit the file.

??? note
    Collapsed text.
        Still the note's, indented more.

Back to the page.

    An indented code block stays code.
"#;
        let a = parse("install.md", page).unwrap();
        assert_eq!(
            a.sections[0].text,
            "Ad blockers:\n\nSome ad blockers hide the script.\n\n\
             Use a proxy to avoid that.\n\n\
             macOS:\n\nOpen Preferences.\n\nbrew install tool\n\n\
             Linux:\n\nEdit the file.\n\n\
             Collapsed text. Still the note's, indented more.\n\n\
             Back to the page.\n\nAn indented code block stays code."
        );
        assert_eq!(mkdocs_block("!!!important"), None);
        assert_eq!(mkdocs_block("=== heading-like"), None);
        assert_eq!(mkdocs_block("!!! Free shipping today!!!"), None);
        assert_eq!(mkdocs_block("??? Not sure? Contact us"), None);
        assert_eq!(
            mkdocs_block("!!! info inline end \"Lorem\""),
            Some(Some("Lorem".to_owned()))
        );
        assert_eq!(mkdocs_block("??? tip"), Some(None));
        // What `scripts/export_docs.py` writes for an HTML page's escaped brackets reads as text.
        let a = parse("x.md", "Replace &lt;your-domain&gt; with yours.").unwrap();
        assert_eq!(a.sections[0].text, "Replace <your-domain> with yours.");
    }

    #[test]
    fn hugo_front_matter_in_toml_is_read() {
        let a = parse(
            "faq.md",
            "+++\ntitle = \"Billing FAQ\"\ntags = [\"billing\"]\n+++\n\nWe accept PayPal.\n",
        )
        .unwrap();
        assert_eq!(a.title, "Billing FAQ");
        assert_eq!(a.tags, ["billing"]);
        assert_eq!(a.sections[0].text, "We accept PayPal.");
        let err = parse("bad.md", "+++\ntitle = \n+++\nbody").unwrap_err();
        assert!(err.to_string().contains("TOML"), "{err}");
    }

    #[test]
    fn title_falls_back_to_heading_then_file_name() {
        assert_eq!(
            parse("a.md", "# Hello there\n\nText").unwrap().title,
            "Hello there"
        );
        assert_eq!(
            parse("x/reset-password.md", "Just text").unwrap().title,
            "Reset password"
        );
    }

    #[test]
    fn broken_front_matter_is_an_error_that_names_the_file() {
        let err = parse("bad.md", "---\ntitle: [unclosed\n---\nbody").unwrap_err();
        assert!(err.to_string().contains("bad.md"), "{err}");
        let err = parse("bad.md", "---\ntitle: x\nbody without end").unwrap_err();
        assert!(err.to_string().contains("closing"), "{err}");
    }
}
