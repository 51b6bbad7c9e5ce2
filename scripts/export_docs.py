#!/usr/bin/env python3
"""Export a docs folder (Docusaurus/MkDocs/Markdoc/Obsidian markdown, or HTML articles) into a frontdesk knowledge base.

    python3 scripts/export_docs.py SRC_DIR OUT_DIR [--exclude GLOB ...] [--include GLOB ...]
                                   [--url-base https://help.example.com/]

Every `.md`, `.mdx`, `.mdoc` and `.markdown` file under SRC_DIR (folder structure kept) becomes a
`.md` file under OUT_DIR that the knowledge-base loader reads fully:

- front matter reduced to `title`, `tags` and `url` (title from the front matter, the first `#`
  heading or the file name; `url` from `--url-base` plus the page's `permalink`/`slug` or path);
  FAQ lists in the front matter (`faqItems`/`faq`: question + answer) become `###` question
  sections where a `{% faq /%}` tag stands (else a "Frequently asked questions" section at the end);
- Markdoc tags (`{% note %}`, `{% /note %}`, `{% iframe ... /%}`) dropped, their inner text and
  `text="..."` attributes kept;
- Obsidian syntax: `[[page#heading|alias]]` becomes its alias (or page name), embeds `![[...]]`,
  `%% comments %%` and block ids (`^id`) dropped, callouts `> [!tip] Title` become `> **Title**`;
- MDX imports/exports removed (JSX and HTML tags the loader strips itself);
- HTML pages (`.html`, `.htm`: a help desk's article export, such as Zendesk's or Intercom's
  article bodies, or saved article pages) become markdown: headings, paragraphs, lists, tables,
  code and links kept; scripts, styles, navigation, headers, footers and forms dropped; only the
  `<article>` or `<main>` when the page has one; the title from the first `<h1>` or `<title>`, the
  url from `<link rel="canonical">` (unless `--url-base` is given).

Pages marked `draft: true` or `publish: false` are skipped. Files matching an `--exclude` glob
(relative path, e.g. `api-*` or `Contributing*/**`) are skipped; with `--include`, only matching
files are exported. OUT_DIR is emptied of markdown first, so the command is repeatable. Prints how
many pages it wrote; check them with `frontdesk kb lint OUT_DIR`. Tests:
`python3 -m unittest scripts/test_export_docs.py`.
"""

import argparse
import fnmatch
import html.parser
import json
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # python3 without PyYAML: the venv `make setup` made for this script has it
    import os

    _venv = Path(os.environ.get("FRONTDESK_CACHE", Path.home() / ".cache/frontdesk"))
    _python = _venv / "venv-pyyaml-6.0.2/bin/python"
    _installed = _python.parent.parent / ".frontdesk-installed"
    if _installed.is_file() and not os.environ.get("FRONTDESK_EXPORT_DOCS_VENV"):
        os.environ["FRONTDESK_EXPORT_DOCS_VENV"] = "1"  # once: a venv without yaml stops here
        os.execv(str(_python), [str(_python), *sys.argv])
    sys.exit("export_docs.py needs PyYAML: run `make setup` (it installs it once), or "
             "`python3 -m pip install pyyaml`")

EXTENSIONS = (".md", ".mdx", ".mdoc", ".markdown", ".html", ".htm")
HTML_EXTENSIONS = (".html", ".htm")
FENCE = re.compile(r"^\s*(```|~~~)")
MARKDOC_TAG = re.compile(r"\{%.*?%\}", re.S)
MARKDOC_TEXT_ATTR = re.compile(r'\btext="((?:[^"\\]|\\.)*)"')
MARKDOC_FAQ = re.compile(r"^\s*\{%\s*faq\b[^%]*%\}\s*$", re.M)
EMBED = re.compile(r"!\[\[[^\]]*\]\]")
WIKILINK = re.compile(r"\[\[([^\]|]*)(?:\|([^\]]*))?\]\]")
OBSIDIAN_COMMENT = re.compile(r"%%.*?%%", re.S)
BLOCK_ID = re.compile(r"(^|\s)\^[A-Za-z0-9-]+\s*$")
CALLOUT = re.compile(r"^(\s*>\s*)\[!([A-Za-z-]+)\][+-]?\s*(.*)$")
MDX_STATEMENT = re.compile(r"^\s*(import|export)\s.*(\sfrom\s|;\s*$|=)")


def split_front_matter(text):
    """(front matter dict, body). A front matter that does not parse is treated as absent."""
    text = text.lstrip("\ufeff")
    if not (text.startswith("---\n") or text.startswith("---\r\n")):
        return {}, text
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            try:
                front = yaml.safe_load("".join(lines[1:i])) or {}
            except yaml.YAMLError:
                front = {}
            return (front if isinstance(front, dict) else {}), "".join(lines[i + 1 :])
    return {}, text


class HtmlToMarkdown(html.parser.HTMLParser):
    """An HTML article as markdown (see the module's docstring): what a customer reads of it."""

    # The site's chrome, never the article's text.
    SKIP = {"script", "style", "nav", "noscript", "svg", "form", "button", "template", "iframe",
            "select"}
    # Chrome outside the article; inside an <article> or <main> (a page's own header with its
    # h1, a note in an aside) they are the article's.
    CHROME = {"header", "footer", "aside"}
    BLOCKS = {"p", "div", "section", "article", "main", "blockquote", "figure", "figcaption",
              "dl", "dd", "dt", "details", "summary", "table", "hr", "header", "footer", "aside"}
    HEADING = re.compile(r"h[1-6]")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip, self.pre, self.lists, self.link = [], 0, 0, [], None
        self.title, self.h1, self.canonical, self.heading = None, None, None, None
        self.first_heading, self.in_title, self.cells, self.in_cell = None, False, 0, False
        # Where each <main> and each outermost <article> begins and ends in `out`.
        self.depth = {"main": 0, "article": 0}
        self.spans = {"main": [], "article": []}

    def scoped(self):
        return self.depth["main"] > 0 or self.depth["article"] > 0

    def text(self, s):
        if self.skip:
            return
        if self.heading is not None:
            self.heading.append(s)
        elif self.link is not None:
            self.link[1].append(s)
        else:
            self.out.append(s)

    def block(self):
        self.close_inline()
        self.text(" " if self.in_cell else "\n\n")

    def close_inline(self):
        """Ends a link or heading left open (`<p>See <a href=…>terms</p>`) before a new block."""
        if self.link is not None:
            self.handle_endtag("a")
        if self.heading is not None:
            self.handle_endtag("h%d" % self.heading_level)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and "canonical" in (attrs.get("rel") or "").split():
            self.canonical = attrs.get("href")
        if tag == "title" and not self.skip and not self.scoped():
            self.in_title = True
        if self.skip or tag in self.SKIP or (tag in self.CHROME and not self.scoped()):
            self.skip += tag in self.SKIP or tag in self.CHROME
            return
        if tag in self.depth:
            if self.depth[tag] == 0:
                self.spans[tag].append([len(self.out), None])
            self.depth[tag] += 1
        if self.HEADING.fullmatch(tag):
            self.block()
            self.heading = []
            self.heading_level = int(tag[1])
        elif tag == "br":
            self.text(" " if self.in_cell or self.heading is not None else ("\n" if self.pre else "  \n"))
        elif tag == "li":
            self.close_inline()
            depth = max(len(self.lists) - 1, 0)
            marker = "1." if self.lists and self.lists[-1] == "ol" else "-"
            self.text("\n" + "    " * depth + marker + " ")
        elif tag in ("ul", "ol"):
            self.close_inline()
            if not self.lists:
                self.text("\n\n")
            self.lists.append(tag)
        elif tag == "p" and self.lists:
            pass  # a paragraph inside a list item stays in the item
        elif tag == "pre":
            self.close_inline()
            self.pre += 1
            self.text("\n\n```\n")
        elif tag == "code" and not self.pre:
            self.text("`")
        elif tag == "a" and attrs.get("href") and self.heading is None and self.link is None:
            self.link = (attrs["href"], [])
        elif tag == "tr":
            self.close_inline()
            self.text("\n")
            self.cells = 0
        elif tag in ("td", "th"):
            self.text("| " if self.cells == 0 else " | ")
            self.cells += 1
            self.in_cell = True
        elif tag == "img" and attrs.get("alt"):
            self.text(attrs["alt"])
        elif tag in self.BLOCKS:
            self.block()

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if self.skip:
            if tag in self.SKIP or tag in self.CHROME:
                self.skip -= 1
            return
        if self.HEADING.fullmatch(tag) and self.heading is not None:
            words = " ".join("".join(self.heading).split())
            self.heading = None
            if words:
                if self.h1 is None and tag == "h1":
                    self.h1 = words
                if self.first_heading is None:
                    self.first_heading = words
                self.out.append("#" * self.heading_level + " " + words + "\n\n")
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self.text("\n" if self.lists else "\n\n")
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
            self.text("\n```\n\n")
        elif tag == "code" and not self.pre:
            self.text("`")
        elif tag == "a" and self.link is not None:
            href, words = self.link
            self.link = None
            words = " ".join("".join(words).split())
            if words and re.match(r"https?://|mailto:", href):
                self.text(f"[{words}]({href})")
            else:
                self.text(words)
        elif tag in ("td", "th"):
            self.in_cell = False
        elif tag == "tr" and self.cells:
            self.text(" |")
        elif tag == "p" and self.lists:
            pass
        elif tag in self.BLOCKS:
            self.block()
        if tag in self.depth and self.depth[tag] > 0:
            self.depth[tag] -= 1
            if self.depth[tag] == 0:
                self.spans[tag][-1][1] = len(self.out)

    def handle_data(self, data):
        if self.in_title:
            self.title = (self.title or "") + data
            return
        if self.pre:
            self.text(data)
            return
        data = re.sub(r"\s+", " ", data)
        # Angle brackets the page escaped are text ("replace <your-domain>"), not tags to strip.
        data = data.replace("<", "&lt;").replace(">", "&gt;")
        if self.in_cell:
            data = data.replace("|", "\\|")
        self.text(data)

    def close(self):
        super().close()
        self.close_inline()

    def markdown(self):
        # Only the page's <main>, else its articles, when it marks them: the rest is the site's.
        spans = self.spans["main"] or self.spans["article"]
        if spans:
            parts = [p for start, end in spans for p in self.out[start : end if end is not None else len(self.out)]]
        else:
            parts = self.out
        text = "".join(parts)
        lines, in_code = [], False
        for line in text.split("\n"):
            if line.startswith("```"):
                in_code = not in_code
            if in_code:
                lines.append(line)
            elif re.match(r"\s+(-|1\.) ", line):
                lines.append(line.rstrip())  # a nested list item keeps its indent
            else:
                lines.append(line.strip())
        text = "\n".join(lines)
        # A table needs its header rule to be one.
        text = re.sub(r"^(\|[^\n]*\|)\n(?=\|)", lambda m: m.group(1) + "\n" + table_rule(m.group(1)) + "\n",
                      text, count=0, flags=re.M) if "|" in text else text
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def table_rule(header):
    return "|" + "|".join(" --- " for _ in range(header.count("|") - 1)) + "|"


def html_page(text):
    """(front matter dict, markdown body) of an HTML article."""
    parser = HtmlToMarkdown()
    parser.feed(text)
    parser.close()
    body = parser.markdown()
    front = {}
    # A page's <title> often ends with the site's name ("Refunds | Acme Help Center").
    # An export of article bodies alone (Zendesk's, Intercom's) may have no <title> and no <h1>:
    # then the first heading names the page.
    title = (
        parser.h1
        or re.split(r" [|–—] ", " ".join((parser.title or "").split()))[0]
        or parser.first_heading
    )
    if title:
        front["title"] = title
    if parser.canonical:
        front["url"] = parser.canonical
    return front, body


def wikilink_text(match):
    target, alias = match.group(1), match.group(2)
    if alias and alias.strip():
        return alias.strip()
    page, _, heading = target.partition("#")
    page = page.strip().rsplit("/", 1)[-1]
    heading = heading.strip().lstrip("^")
    if page and heading:
        return f"{page} › {heading}"
    return page or heading


def clean_prose(text):
    """The text outside code blocks, without Markdoc/Obsidian/MDX markup."""
    out, chunk, in_code = [], [], False

    def flush():
        if chunk:
            out.append(clean_chunk("".join(chunk)))
            chunk.clear()

    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            if in_code:
                out.append(line)
                in_code = False
                continue
            flush()
            in_code = True
        if in_code:
            out.append(line)
        else:
            chunk.append(line)
    flush()
    return "".join(out)


def markdoc_tag_text(match):
    """A Markdoc tag is dropped, except the `text="..."` its notice boxes carry."""
    text = MARKDOC_TEXT_ATTR.search(match.group(0))
    return text.group(1).replace('\\"', '"') if text else ""


def clean_chunk(text):
    text = OBSIDIAN_COMMENT.sub("", text)
    text = MARKDOC_TAG.sub(markdoc_tag_text, text)
    text = EMBED.sub("", text)
    text = WIKILINK.sub(wikilink_text, text)
    lines = []
    for line in text.splitlines():
        if MDX_STATEMENT.match(line):
            continue
        callout = CALLOUT.match(line)
        if callout:
            quote, kind, title = callout.groups()
            line = f"{quote}**{title.strip() or kind.capitalize()}**"
        line = BLOCK_ID.sub("", line)
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def with_faq(body, front):
    """The body with the front matter's FAQ answers: where a `{% faq /%}` tag stands, else at the end."""
    items = faq_items(front)
    if not items:
        return clean_prose(body)
    if MARKDOC_FAQ.search(body):
        return clean_prose(MARKDOC_FAQ.sub(lambda _: "\n" + items, body, count=1))
    return clean_prose(body) + "\n## Frequently asked questions\n\n" + items


def faq_items(front):
    items = front.get("faqItems") or front.get("faq") or []
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except json.JSONDecodeError:
            return ""
    if not isinstance(items, list):
        return ""
    parts = []
    for item in items:
        if isinstance(item, dict) and item.get("question") and item.get("answer"):
            parts.append(f"### {str(item['question']).strip()}\n\n{str(item['answer']).strip()}\n")
    return "\n".join(parts)


def title_of(front, body, rel):
    title = front.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    for line in body.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return Path(rel).stem.replace("-", " ").replace("_", " ").strip()


def tags_of(front):
    tags = front.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    return [str(t).strip() for t in tags if isinstance(t, (str, int)) and str(t).strip()]


def url_of(front, rel, url_base):
    if not url_base:
        return None
    slug = front.get("permalink") or front.get("slug")
    if not isinstance(slug, str) or not slug.strip():
        slug = str(Path(rel).with_suffix("")).replace(" ", "-").lower()
        if slug.endswith("/index"):
            slug = slug[: -len("/index")]
    return url_base.rstrip("/") + "/" + slug.strip().lstrip("/")


def matches(rel, globs):
    return any(fnmatch.fnmatch(rel, g) for g in globs)


def export(src, out, include, exclude, url_base):
    if not src.is_dir():
        sys.exit(f"{src} is not a folder: give the docs folder (the one holding the markdown pages)")
    src_abs, out_abs = src.resolve(), out.resolve()
    if out_abs == src_abs or src_abs in out_abs.parents or out_abs in src_abs.parents:
        sys.exit(f"{out} overlaps {src}: write the knowledge base to a folder of its own")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.rglob("*.md"):
        old.unlink()
    pages, skipped = [], 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if not path.is_file() or not rel.endswith(EXTENSIONS):
            continue
        if any(part.startswith(".") or part == "node_modules" for part in Path(rel).parts):
            continue
        if (include and not matches(rel, include)) or matches(rel, exclude):
            skipped += 1
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        if rel.lower().endswith(HTML_EXTENSIONS):
            if "{%" in source or "{{" in source:
                skipped += 1  # a theme's template (MkDocs' overrides, Jekyll's layouts), not an article
                continue
            front, body = html_page(source)
        else:
            front, body = split_front_matter(source)
        if front.get("draft") is True or front.get("publish") is False:
            skipped += 1
            continue
        body = with_faq(body, front)
        header = {"title": title_of(front, body, rel)}
        tags = tags_of(front)
        if tags:
            header["tags"] = tags
        url = url_of(front, rel, url_base) or front.get("url")
        if url:
            header["url"] = url
        pages.append((rel, header, body))
    name_duplicate_titles(pages)
    for rel, header, body in pages:
        target = out / (rel.rsplit(".", 1)[0] + ".md")
        target.parent.mkdir(parents=True, exist_ok=True)
        front_text = yaml.safe_dump(header, allow_unicode=True, sort_keys=False)
        target.write_text(f"---\n{front_text}---\n\n{body.strip()}\n", encoding="utf-8")
    print(f"wrote {len(pages)} pages to {out} ({skipped} skipped by --include/--exclude or as drafts)")


def name_duplicate_titles(pages):
    """Pages sharing a title get their folder added ("Security and privacy (Obsidian Sync)"), so
    a customer offered both can tell them apart."""
    counts = {}
    for _, header, _ in pages:
        counts[header["title"].lower()] = counts.get(header["title"].lower(), 0) + 1
    for rel, header, _ in pages:
        folder = Path(rel).parent.name
        if counts[header["title"].lower()] > 1 and folder:
            header["title"] = f"{header['title']} ({folder})"


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", type=Path, help="the docs folder to read")
    parser.add_argument("out", type=Path, help="the knowledge-base folder to write")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    parser.add_argument("--url-base", help="public address of the docs, for each page's url")
    args = parser.parse_args()
    export(args.src, args.out, args.include, args.exclude, args.url_base)


if __name__ == "__main__":
    main()
