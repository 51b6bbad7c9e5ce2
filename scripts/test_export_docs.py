"""Tests of scripts/export_docs.py: `python3 -m unittest scripts/test_export_docs.py`."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).with_name("export_docs.py")

MARKDOC = """---
title: Paid subscriptions
description: >-
  Charge your readers.
faqItems: >
  [{"question": "Can I use PayPal?", "answer": "No, only Stripe for now."}]
---

{% paidFeature feature="paid_subscriptions" /%}

{% noticeInfo %}
Connect Stripe first.
{% /noticeInfo %}

{% noticeWarn text="Test mode is not supported." /%}

## FAQs

{% faq /%}
"""

OBSIDIAN = """---
aliases:
  - Cancel subscription
permalink: refunds
---
We refund [[Introduction to Obsidian Sync|Obsidian Sync]] within 7 days; see [[Help and support#Contact support]]
and [[Catalyst license]]. ![[refund-screenshot.png]] %% editors' note %%

> [!warning]+ Non-refundable purchases
> Catalyst licenses are not refundable.

**What if I miss a payment?**
Your data is kept for 30 days.
^missed-payment

```md
[[kept in code]] {% kept %}
```
"""


HTML = """<!doctype html>
<html><head><title>Refunds | Acme Help Center</title>
<link rel="canonical" href="https://help.acme.test/articles/360-refunds">
<style>body { color: red }</style><script>track()</script></head>
<body><header><nav><a href="/">Home</a> Sign in</nav></header>
<main><article>
<h1>Refunds</h1>
<p>We refund any order within <strong>30 days</strong>.<br>See our <a href="https://acme.test/terms">terms</a> and <a href="/hc/returns">returns</a>.</p>
<h2>How to ask for a refund</h2>
<ol><li>Open <em>Orders</em>.</li><li>Choose <code>Refund</code>.</li></ol>
<pre><code>POST /refunds
  {"order": 42}</code></pre>
<h2>Fees</h2>
<table><tr><th>Plan</th><th>Fee</th></tr><tr><td>Basic</td><td>5 USD</td></tr></table>
<form><button>Was this helpful?</button></form>
</article></main>
<footer>© Acme</footer><script>more()</script></body></html>
"""


def scratch(test):
    folder = Path(tempfile.mkdtemp(prefix="export-docs-"))
    test.addCleanup(shutil.rmtree, folder, ignore_errors=True)
    return folder


def export(test, files, *args):
    src = scratch(test)
    out = scratch(test) / "kb"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(out), *args],
        capture_output=True,
        text=True,
    )
    return run, out


class ExportDocs(unittest.TestCase):
    def test_markdoc_tags_go_their_text_and_faq_answers_stay(self):
        run, out = export(self, {"paid-subscriptions.mdoc": MARKDOC})
        self.assertEqual(run.returncode, 0, run.stderr)
        page = (out / "paid-subscriptions.md").read_text()
        self.assertTrue(page.startswith("---\ntitle: Paid subscriptions\n---\n"), page)
        self.assertNotIn("{%", page)
        self.assertIn("Connect Stripe first.", page)
        self.assertIn("Test mode is not supported.", page)
        # The FAQ answers stand where the {% faq /%} tag stood, under the page's own heading.
        self.assertIn("## FAQs\n\n### Can I use PayPal?\n\nNo, only Stripe for now.", page)
        self.assertEqual(page.count("Can I use PayPal?"), 1)

    def test_obsidian_links_embeds_callouts_and_block_ids_become_prose(self):
        run, out = export(
            self,
            {"Licenses/Refund policy.md": OBSIDIAN},
            "--url-base",
            "https://obsidian.md/help/",
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        page = (out / "Licenses/Refund policy.md").read_text()
        self.assertIn("title: Refund policy\nurl: https://obsidian.md/help/refunds\n", page)
        self.assertIn("We refund Obsidian Sync within 7 days; see Help and support › Contact support", page)
        self.assertIn("and Catalyst license.", page)
        self.assertIn("> **Non-refundable purchases**", page)
        self.assertIn("Your data is kept for 30 days.\n", page)
        for gone in ("refund-screenshot", "editors' note", "[!warning]", "^missed-payment"):
            self.assertNotIn(gone, page)
        # Code blocks are left exactly as written.
        self.assertIn("[[kept in code]] {% kept %}", page)

    def test_duplicate_titles_get_their_folder_and_drafts_and_excluded_files_are_skipped(self):
        run, out = export(
            self,
            {
                "Sync/Security.md": "---\ntitle: Security and privacy\n---\nSync text",
                "Publish/Security.md": "---\ntitle: Security and privacy\n---\nPublish text",
                "draft.md": "---\ntitle: Soon\ndraft: true\n---\nNot yet",
                "api-emails.mdx": "# Emails API\n\nGET /emails",
            },
            "--exclude",
            "api-*",
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("wrote 2 pages", run.stdout)
        self.assertIn("title: Security and privacy (Sync)", (out / "Sync/Security.md").read_text())
        self.assertIn("title: Security and privacy (Publish)", (out / "Publish/Security.md").read_text())
        self.assertFalse((out / "draft.md").exists())
        self.assertFalse((out / "api-emails.md").exists())

    def test_html_articles_become_markdown_without_the_sites_chrome(self):
        run, out = export(self, {"zendesk/360-refunds.html": HTML})
        self.assertEqual(run.returncode, 0, run.stderr)
        page = (out / "zendesk/360-refunds.md").read_text()
        self.assertTrue(
            page.startswith("---\ntitle: Refunds\nurl: https://help.acme.test/articles/360-refunds\n---\n"),
            page,
        )
        self.assertIn("We refund any order within 30 days.", page)
        self.assertIn("See our [terms](https://acme.test/terms) and returns.", page)
        self.assertIn("## How to ask for a refund\n\n1. Open Orders.\n1. Choose `Refund`.", page)
        self.assertIn('```\nPOST /refunds\n  {"order": 42}\n```', page)
        self.assertIn("## Fees\n\n| Plan | Fee |\n| --- | --- |\n| Basic | 5 USD |", page)
        for gone in ("track()", "more()", "color: red", "Sign in", "Home", "© Acme", "helpful"):
            self.assertNotIn(gone, page)

    def test_html_structures_help_desks_write_keep_their_text(self):
        page = """<html><body><div class="related"><article><h3>Other article</h3></article></div>
<main><article><header><h1>Domains</h1></header>
<p>Replace &lt;your-domain&gt; with yours. See <a href="https://x.test/dns">DNS</p>
<p>Then wait.</p>
<ul><li><p>First step.</p></li><li>Second:<ul><li>nested</li></ul></li></ul>
<table><thead><tr><th>Record</th><th>Value</th></tr></thead>
<tbody><tr><td>CNAME<br>or ALIAS</td><td>a|b</td></tr></tbody></table>
<aside>Propagation takes an hour.</aside></article>
<article><h2>Second part</h2><p>More text.</p></article></main>
<footer>Site footer</footer></body></html>"""
        run, out = export(self, {"domains.html": page, "overrides/main.html": "{% extends 'base.html' %}"})
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertFalse((out / "overrides/main.md").exists(), "a theme's template is no article")
        text = (out / "domains.md").read_text()
        self.assertTrue(text.startswith("---\ntitle: Domains\n---\n"), text)
        self.assertIn("Replace &lt;your-domain&gt; with yours. See [DNS](https://x.test/dns)", text)
        self.assertIn("\n\nThen wait.", text)
        self.assertIn("- First step.\n- Second:\n    - nested", text)
        self.assertIn("| Record | Value |\n| --- | --- |\n| CNAME or ALIAS | a\\|b |", text)
        self.assertIn("Propagation takes an hour.", text)
        self.assertIn("## Second part\n\nMore text.", text)
        for gone in ("Other article", "Site footer"):
            self.assertNotIn(gone, text)

    def test_an_html_page_without_a_heading_takes_its_title_without_the_sites_name(self):
        run, out = export(self, {"a.htm": "<title>Billing FAQ | Acme Help</title><p>We bill monthly.</p>"})
        self.assertEqual(run.returncode, 0, run.stderr)
        page = (out / "a.md").read_text()
        self.assertTrue(page.startswith("---\ntitle: Billing FAQ\n---\n"), page)
        self.assertIn("We bill monthly.", page)
        # A body alone (a help desk's export): its first heading names it, not the file's id.
        run, out = export(self, {"360001.html": "<h2>Cancel a plan</h2><p>Open Billing.</p>"})
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("title: Cancel a plan\n", (out / "360001.md").read_text())

    def test_refuses_to_write_into_the_docs_it_reads(self):
        src = scratch(self)
        (src / "page.md").write_text("# Page\n\nText")
        run = subprocess.run(
            [sys.executable, str(SCRIPT), str(src), str(src / "kb")],
            capture_output=True,
            text=True,
        )
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("overlaps", run.stderr)
        self.assertTrue((src / "page.md").exists())


if __name__ == "__main__":
    unittest.main()
