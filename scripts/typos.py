#!/usr/bin/env python3
"""Customers type on phones: a question set with typos, to measure what they cost
(docs/EVALUATION.md, "Typos").

    # every question and conversation turn of a set, with 1-2 typos each (seeded, deterministic)
    python3 scripts/typos.py apply tests/questions/dev/plausible.yaml /tmp/plausible-typos.yaml --seed 1
    frontdesk eval --kb ../shared/data/plausible_docs/docs --questions /tmp/plausible-typos.yaml

    # page-level retrieval (right page first / in the first three) from `frontdesk eval --dump`
    python3 scripts/typos.py ranks /tmp/dump.jsonl

A typo is one edit in a word of at least four letters that is not a stop word, never in its
first letter: two neighbouring letters swapped, a letter left out, a letter doubled, or a letter
replaced by a neighbouring key on a QWERTY keyboard. Each text gets one or two, in different words.
The random choices are seeded by the seed and the text itself, so a text gets the same typos
whatever file or position it is in, and a run is reproducible. Words with digits or capitals
inside (E31, 2FA, iOS), links and e-mail addresses are left alone.
"""
import argparse
import json
import random
import re
import sys

import yaml

STOP = set(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can cannot could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    dont doesnt cant wont isnt arent didnt thats whats""".split()
)

ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def neighbours(c):
    """Letters next to `c` on a QWERTY keyboard (same row and the rows above and below)."""
    for r, row in enumerate(ROWS):
        i = row.find(c)
        if i < 0:
            continue
        out = set()
        for dr in (-1, 0, 1):
            if 0 <= r + dr < len(ROWS):
                other = ROWS[r + dr]
                for j in (i - 1, i, i + 1):
                    if 0 <= j < len(other) and other[j] != c:
                        out.add(other[j])
        return sorted(out)
    return []


def edit(word, rng):
    """`word` with one typo (never in its first letter); the word itself when none fits."""
    for _ in range(20):
        kind = rng.choice(["swap", "delete", "double", "neighbour"])
        i = rng.randrange(1, len(word))
        if kind == "swap":
            if i + 1 >= len(word) or word[i] == word[i + 1]:
                continue
            out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif kind == "delete":
            out = word[:i] + word[i + 1:]
        elif kind == "double":
            out = word[:i] + word[i] + word[i:]
        else:
            keys = neighbours(word[i].lower())
            if not keys:
                continue
            key = rng.choice(keys)
            out = word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1:]
        if out != word:
            return out
    return word


WORD = re.compile(r"(?<![\w@./:])[A-Za-z]+(?:'[A-Za-z]+)?(?![\w@/])")


def eligible(match):
    w = match.group(0)
    plain = w.replace("'", "")
    if len(plain) < 4 or plain.lower() in STOP:
        return False
    # Acronyms and codes with capitals inside (GDPR, iOS) are left alone; Capitalised words are not.
    return not any(c.isupper() for c in w[1:])


def typo_text(text, seed):
    """`text` with one or two typos in different eligible words (seeded by `seed` and the text)."""
    rng = random.Random(f"{seed}:{text}")
    words = [m for m in WORD.finditer(text) if eligible(m)]
    if not words:
        return text
    k = min(len(words), rng.choice([1, 2]))
    chosen = sorted(rng.sample(words, k), key=lambda m: m.start())
    out, at = [], 0
    for m in chosen:
        out.append(text[at:m.start()])
        out.append(edit(m.group(0), rng))
        at = m.end()
    out.append(text[at:])
    return "".join(out)


def apply(args):
    with open(args.source) as f:
        data = yaml.safe_load(f)
    changed = total = 0

    def visit(item):
        nonlocal changed, total
        total += 1
        new = typo_text(item["text"], args.seed)
        changed += new != item["text"]
        item["text"] = new

    for q in data.get("questions") or []:
        visit(q)
    for c in data.get("conversations") or []:
        for t in c.get("turns") or []:
            visit(t)
    if "messages" in data:
        sys.exit(f"{args.source}: a support-message set; only question sets are played")
    data["name"] = f"{data.get('name', 'set')}-typos{args.seed}"
    with open(args.out, "w") as f:
        f.write(f"# {args.source} with typos: scripts/typos.py apply --seed {args.seed}\n")
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{args.out}: {changed} of {total} texts with typos (seed {args.seed})")


def ranks(args):
    """Right page first / in the first three, article level, from `frontdesk eval --dump`."""
    at1 = at3 = n = 0
    for line in open(args.dump):
        row = json.loads(line)
        if not row["answerable"]:
            continue
        n += 1
        seen = []
        for c in row["candidates"]:
            if c["path"] in (p for p, _ in seen):
                continue
            seen.append((c["path"], c["right"]))
        right = [i for i, (_, r) in enumerate(seen) if r]
        at1 += bool(right) and right[0] == 0
        at3 += bool(right) and right[0] < 3
    print(f"{args.dump}: right page @1 {at1}/{n} ({100 * at1 / max(n, 1):.1f}%), "
          f"@3 {at3}/{n} ({100 * at3 / max(n, 1):.1f}%)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("apply", help="write SOURCE with typos to OUT")
    a.add_argument("source")
    a.add_argument("out")
    a.add_argument("--seed", type=int, default=1)
    a.set_defaults(run=apply)
    r = sub.add_parser("ranks", help="page-level recall @1/@3 from a --dump file")
    r.add_argument("dump")
    r.set_defaults(run=ranks)
    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
