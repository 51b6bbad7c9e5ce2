//! An article's markdown as HTML for the server's own `/kb/*` pages, made safe to show on the
//! console's origin: raw HTML and JSX are dropped, links and images keep only schemes that cannot
//! run anything (http, https, mailto for links, and relative addresses), and links leaving the site
//! open without handing the page (`rel="noopener noreferrer"`). The page's Content-Security-Policy
//! (`http/pages.rs`) is the second wall behind this one.

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

use super::article::{linked_article, prose_markdown};
use super::escaped_path;
use super::KbError;

/// The article's body as HTML. A link or image whose address is not allowed keeps its text (an
/// image, its description) without the link. A link to another article (`exists` says which paths
/// are articles) goes to that article's `/kb/` page wherever it was written from
/// ([`linked_article`]): a browser would resolve `goal-conversions.md`, written in
/// `custom-props/`, to a page that is not there.
pub fn render_html(
    path: &str,
    source: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<String, KbError> {
    let body = prose_markdown(path, source)?;
    let parser = Parser::new_ext(
        &body,
        Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES,
    );
    // Whether each open link was kept, so its end is kept or dropped alike.
    let mut links: Vec<bool> = Vec::new();
    let mut images: Vec<bool> = Vec::new();
    let events = parser.filter_map(|event| match event {
        Event::Html(_) | Event::InlineHtml(_) => None,
        Event::Start(Tag::Heading {
            level, id, classes, ..
        }) => Some(Event::Start(Tag::Heading {
            level,
            id,
            classes,
            // `{onclick=…}` and the like: only an anchor and classes are kept.
            attrs: Vec::new(),
        })),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            ..
        }) => {
            let href = match link_type {
                LinkType::Email => format!("mailto:{dest_url}"),
                _ => match linked_article(path, &dest_url, &exists) {
                    Some(article) => match dest_url.split_once('#') {
                        Some((_, anchor)) => format!("/kb/{}#{anchor}", escaped_path(&article)),
                        None => format!("/kb/{}", escaped_path(&article)),
                    },
                    None => dest_url.to_string(),
                },
            };
            let kept = link_allowed(&href);
            links.push(kept);
            kept.then(|| Event::InlineHtml(CowStr::from(open_link(&href, &title))))
        }
        Event::End(TagEnd::Link) => links
            .pop()
            .unwrap_or(false)
            .then(|| Event::InlineHtml(CowStr::from("</a>"))),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let kept = image_allowed(&dest_url);
            images.push(kept);
            kept.then_some(Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Image) => images
            .pop()
            .unwrap_or(false)
            .then_some(Event::End(TagEnd::Image)),
        other => Some(other),
    });
    let mut html = String::with_capacity(body.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events);
    Ok(html)
}

/// `<a href=…>`; a link to another site also gets `rel="noopener noreferrer"`.
fn open_link(href: &str, title: &str) -> String {
    let mut a = format!("<a href=\"{}\"", escape_attribute(href));
    if !title.is_empty() {
        a.push_str(&format!(" title=\"{}\"", escape_attribute(title)));
    }
    if scheme(href).is_some() || href.trim_start().starts_with("//") {
        a.push_str(" rel=\"noopener noreferrer\"");
    }
    a.push('>');
    a
}

/// A link may go to http(s), mailto or a relative address (`/docs`, `other.md#part`, `#part`).
fn link_allowed(url: &str) -> bool {
    matches!(
        scheme(url).as_deref(),
        None | Some("http" | "https" | "mailto")
    )
}

/// An image may come from http(s) or a relative address: no `data:` (the page's policy refuses
/// it anyway) and nothing that runs.
fn image_allowed(url: &str) -> bool {
    matches!(scheme(url).as_deref(), None | Some("http" | "https"))
}

/// The URL's scheme, lower-cased, as a browser reads it: tabs and newlines anywhere are ignored
/// and leading spaces and control characters trimmed (so `java\tscript:` is `javascript`). `None`
/// for a relative address. Anything before a `:` that is not a valid scheme name counts as a
/// scheme too (and so is refused), rather than guessing how some browser treats it.
fn scheme(url: &str) -> Option<String> {
    let cleaned: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let cleaned = cleaned.trim_start_matches(|c: char| c <= ' ');
    let end = cleaned.find([':', '/', '?', '#'])?;
    cleaned[end..]
        .starts_with(':')
        .then(|| cleaned[..end].to_ascii_lowercase())
}

fn escape_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(markdown: &str) -> String {
        render_html("a.md", markdown, |_| false).unwrap()
    }

    #[test]
    fn a_link_to_another_article_goes_to_its_page_with_its_path_escaped() {
        let html = render_html("guides/a.md", "[x](c%23%3F.md#part) [y](../b.md)", |p| {
            p == "c#?.md" || p == "b.md"
        })
        .unwrap();
        assert!(
            html.contains("<a href=\"/kb/c%23%3F.md#part\">x</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"/kb/b.md\">y</a>"), "{html}");
    }

    #[test]
    fn links_that_could_run_something_keep_only_their_text() {
        for url in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java&#x09;script:alert(1)",
            "java%0Ascript:alert(1)x",
            "vbscript:msgbox(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
        ] {
            let html = render(&format!("Click [here]({url}) now <{url}>."));
            assert!(!html.contains("<a"), "{url}: {html}");
            assert!(html.contains("here"), "{url}: the text stays: {html}");
        }
        let html = render("[x](<java\tscript:alert(1)>)");
        assert!(!html.contains("script"), "{html}");
    }

    #[test]
    fn safe_links_are_kept_and_external_ones_open_without_the_page() {
        let html = render(
            "[a](https://example.com/x?a=1&b=\"2\") [b](/docs) [c](other.md#part) [d](#top) \
             [e](mailto:help@example.com) <help@example.com> [f](//evil.example/)",
        );
        let external = "<a href=\"https://example.com/x?a=1&amp;b=&quot;2&quot;\" rel=\"noopener noreferrer\">a</a>";
        assert!(html.contains(external), "{html}");
        assert!(html.contains("<a href=\"/docs\">b</a>"), "{html}");
        assert!(html.contains("<a href=\"other.md#part\">c</a>"), "{html}");
        assert!(html.contains("<a href=\"#top\">d</a>"), "{html}");
        assert!(
            html.contains("<a href=\"mailto:help@example.com\" rel=\"noopener noreferrer\">e</a>")
        );
        assert!(html.contains("<a href=\"mailto:help@example.com\" rel=\"noopener noreferrer\">help@example.com</a>"), "{html}");
        assert!(
            html.contains("<a href=\"//evil.example/\" rel=\"noopener noreferrer\">f</a>"),
            "{html}"
        );
    }

    #[test]
    fn raw_html_scripting_images_and_heading_attributes_are_dropped() {
        let html = render(
            "# Title {#top onclick=alert(1) .big}\n\n<script>alert(1)</script>\n\n\
             Hi <img src=x onerror=alert(1)> there.\n\n![pic](javascript:alert(1)) ![ok](/logo.png)\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("id=\"top\""), "{html}");
        assert!(html.contains("pic"), "the description stays: {html}");
        assert!(html.contains("<img src=\"/logo.png\" alt=\"ok\""), "{html}");
    }
}
