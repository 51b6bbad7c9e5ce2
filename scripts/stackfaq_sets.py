#!/usr/bin/env python3
"""StackFAQ as knowledge bases with question sets, for fitting the answer decision
(docs/EVALUATION.md, "The bot's decision").

Two folds: fold 0 serves the FAQ entries with an even index as articles, fold 1 those with an odd
index. In each fold, an entry's paraphrased user questions are answerable when the entry is served
and unanswerable when it is not (its near neighbours are about the same site, so near misses
abound). Paraphrases at even positions within an entry form the `train` set, odd ones `test`
(the same split as `frontdesk eval --only stackfaq`).

    python3 scripts/stackfaq_sets.py ../shared/data/stackfaq/stackExchange-FAQ.json /tmp/stackfaq
    # writes /tmp/stackfaq/fold{0,1}/kb/*.md and /tmp/stackfaq/fold{0,1}/{train,test}.yaml

With --answer-titles an article's title is the first words of its answer rather than the FAQ
question, as a help centre titles a topic: customers' questions then no longer paraphrase the
title, which is how real help centres are asked.
"""
import json
import os
import sys


def first_words(text, n=8):
    """A topic-like title from the answer itself: its first words."""
    return " ".join(text.split()[:n]).replace('"', "'")


def main(source, out, titles=True):
    entries = json.load(open(source))["root"]["qapair"]
    for fold in (0, 1):
        kb = os.path.join(out, f"fold{fold}", "kb")
        os.makedirs(kb, exist_ok=True)
        sets = {"train": [], "test": []}
        for i, e in enumerate(entries):
            served = i % 2 == fold
            page = f"faq-{i:03}.md"
            if served:
                answer = e.get("answer") or ""
                body = "\n\n".join(answer) if isinstance(answer, list) else answer
                if titles:
                    title = (e.get("question") or "Untitled").replace('"', "'")
                else:
                    title = first_words(body) or "Untitled"
                with open(os.path.join(kb, page), "w") as f:
                    f.write(f'---\ntitle: "{title}"\n---\n\n{body}\n')
            queries = [q for q in e.get("rephr") or [] if q and q.strip() not in ("", "*")]
            for j, q in enumerate(queries):
                split = "train" if j % 2 == 0 else "test"
                if served:
                    sets[split].append({"text": q, "expect": "answer", "pages": [page]})
                else:
                    sets[split].append({"text": q, "expect": "decline"})
        for split, questions in sets.items():
            with open(os.path.join(out, f"fold{fold}", f"{split}.yaml"), "w") as f:
                json.dump({"name": f"stackfaq-fold{fold}-{split}", "questions": questions}, f, indent=0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], titles="--answer-titles" not in sys.argv)
