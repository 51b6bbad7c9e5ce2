#!/usr/bin/env python3
"""Export a docs folder (Docusaurus/MkDocs/Markdoc/Obsidian markdown) into a frontdesk knowledge base.

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
- MDX imports/exports removed (JSX and HTML tags the loader strips itself).

Pages marked `draft: true` or `publish: false` are skipped. Files matching an `--exclude` glob
(relative path, e.g. `api-*` or `Contributing*/**`) are skipped; with `--include`, only matching
files are exported. OUT_DIR is emptied of markdown first, so the command is repeatable. Prints how
many pages it wrote; check them with `frontdesk kb lint OUT_DIR`. Tests:
`python3 -m unittest scripts/test_export_docs.py`.
"""

import argparse
import fnmatch
import json
import re
import sys
from pathlib import Path

import yaml

EXTENSIONS = (".md", ".mdx", ".mdoc", ".markdown")
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
        front, body = split_front_matter(path.read_text(encoding="utf-8", errors="replace"))
        if front.get("draft") is True or front.get("publish") is False:
            skipped += 1
            continue
        body = with_faq(body, front)
        header = {"title": title_of(front, body, rel)}
        tags = tags_of(front)
        if tags:
            header["tags"] = tags
        url = url_of(front, rel, url_base)
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
