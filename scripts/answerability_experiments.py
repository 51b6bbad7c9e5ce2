#!/usr/bin/env python3
"""Offline experiments on the bot's answer decision (docs/EVALUATION.md, "What the features cannot
tell apart"): leave one base out over the feature dumps, for variants of the fit that
scripts/fit_answerability.py does not offer. Nothing here is shipped; it measures levers.

    python3 scripts/answerability_experiments.py DUMPS_DIR [--soft KB_ROOTS_JSON]

DUMPS_DIR holds the dumps named as in docs/EVALUATION.md (sf0-train, sf1-train, sf0-test,
sf1-test, demo, demo2, plausible, obsidian, buttondown .jsonl). Bases fitted on: StackFAQ, the demo
base, Obsidian, Buttondown; Plausible is in no fit, only reported on. Each row: right (right page
first or among the choices) / right on low-overlap questions (the right article holds under half
of the question's weighted content words) / unanswerable declined, per held-out base and the mean
over the fitted ones.

--soft adds "soft article coverage": each content word of the question counts by its greatest
cosine (all-MiniLM-L6-v2, the word alone) to any word of the article, weighted by rarity. It needs
the knowledge bases' folders as JSON ({"demo": "knowledge_base", "sf0": "/tmp/sf/fold0/kb", ...})
and torch + transformers (the reranker's venv, scripts/train_reranker.py).
"""
import argparse
import glob
import json
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fit_answerability as F  # noqa: E402

FITTED = ("stackfaq", "demo", "obsidian", "buttondown")
STOP = set("""a about after all also am an and any anyone are as at be because been before but by
can could did do does doesnt dont for from get got had has have having he her here hi him his how
i if im in into is it its ive just me my need no not now of on one or our out please she so some
still that the their them then there these they this to up us want was we were what when where
which who why will with would you your yours hello thanks thank there way should than too very
much many more most only own same such other again yes ok okay pls""".split())


def surface(text):
    for w in re.split(r"[^\w']+", text.lower()):
        w = w.strip("'").replace("'", "")
        if len(w) >= 2 and w not in STOP and not w.isdigit():
            yield w


class Weighted(F.Model):
    """fit_answerability's constrained logistic unit, with each question's candidates weighted."""

    def __init__(self, qs, use, signs, weight):
        self.use = use
        X, y, w = [], [], []
        for q in qs:
            for c in q["candidates"]:
                X.append([c["features"][i] for i in use])
                y.append(1 if c["right"] else 0)
                w.append(weight(q))
        X, y, w = np.array(X), np.array(y), np.array(w)
        self.mean, self.scale = X.mean(0), X.std(0) + 1e-6
        self.lr = F.Monotone(1.0, signs).fit((X - self.mean) / self.scale, y,
                                             sample_weight=w * len(w) / w.sum())


def low_overlap(q, ix):
    right = [c["features"][ix] for c in q["candidates"] if c["right"]]
    return q["answerable"] and right and max(right) < 0.5


def lobo(qs, names, label, drop=("title_coverage",), low_weight=1.0, balance=False):
    ix = names.index("article_coverage")
    use = [i for i, n in enumerate(names) if n not in drop]
    signs = [F.SIGN.get(names[i], 1) for i in use]
    per_base = {}
    for q in qs:
        per_base[F.base_of(q)] = per_base.get(F.base_of(q), 0) + 1

    def weight(q):
        w = low_weight if low_overlap(q, ix) else 1.0
        return w / per_base[F.base_of(q)] if balance else w

    out = {}
    for held in FITTED + ("plausible",):
        fit = [q for q in qs if F.base_of(q) != held and F.base_of(q) in FITTED
               and not q["set"].endswith("-test")]
        rep = [q for q in qs if F.base_of(q) == held
               and not (held == "stackfaq" and not q["set"].endswith("-test"))]
        m = Weighted(fit, use, signs, weight)
        t = F.thresholds(m, fit)
        s = F.score(m, rep, t)
        low = [q for q in rep if low_overlap(q, ix)]
        out[held] = (s["right"], F.score(m, low, t)["right"] if low else float("nan"),
                     s["unanswerable_declined"])
    mean = np.mean([out[b] for b in FITTED], axis=0)
    print(f"{label:<38}" + " ".join(f"{b[:5]} {r[0]:4.1f}/{r[1]:4.1f}/{r[2]:5.1f}"
                                    for b, r in out.items())
          + f" | mean {mean[0]:.1f}/{mean[1]:.1f}/{mean[2]:.1f}")


def add_soft(qs, names, roots):
    import torch
    from transformers import AutoModel, AutoTokenizer
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    model_dir = os.path.join(here, "models/all-MiniLM-L6-v2")
    tok, enc = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    arts = {b: {os.path.relpath(p, r): set(surface(open(p, errors="replace").read()))
                for p in glob.glob(os.path.join(r, "**", "*.md*"), recursive=True)}
            for b, r in roots.items()}
    words = sorted(set().union(*[w for a in arts.values() for w in a.values()],
                               *[set(surface(q["text"])) for q in qs]))
    vec = {}
    with torch.no_grad():
        for i in range(0, len(words), 256):
            batch = words[i:i + 256]
            e = tok(batch, padding=True, return_tensors="pt")
            h = enc(**e).last_hidden_state
            m = e["attention_mask"].unsqueeze(-1).float()
            v = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
            vec.update(zip(batch, v))

    def kb(q):
        s = q["set"]
        if s.startswith("stackfaq-fold"):
            return "sf" + s[len("stackfaq-fold")]
        return "demo" if s.startswith("demo") else s.split("-")[0]

    for q in qs:
        a = arts[kb(q)]
        df = {}
        for ws in a.values():
            for w in ws:
                df[w] = df.get(w, 0) + 1
        ws = list(dict.fromkeys(surface(q["text"])))
        for c in q["candidates"]:
            own = [w for w in a.get(c["path"], ()) if w in vec]
            if not ws or not own:
                c["features"].append(0.0)
                continue
            idf = np.array([math.log(1 + len(a) / (1 + df.get(w, 0))) for w in ws])
            sims = np.stack([vec[w] for w in ws]) @ np.stack([vec[w] for w in own]).T
            c["features"].append(float((idf * sims.max(1)).sum() / idf.sum()))
    names.append("soft_article_coverage")
    F.SIGN["soft_article_coverage"] = 1


def interactions(qs, names, kinds):
    ix = {n: i for i, n in enumerate(names)}
    for q in qs:
        for c in q["candidates"]:
            f = c["features"]
            miss = 1 - f[ix["article_coverage"]]
            extra = {"percentile_x_uncovered": f[ix["percentile"]] * miss,
                     "standing_x_uncovered": f[ix["standing"]] * miss,
                     "margin_x_uncovered": f[ix["margin"]] * miss,
                     "similarity_squared": f[ix["similarity"]] ** 2}
            c["features"] = f + [extra[k] for k in kinds]
    for k in kinds:
        names.append(k)
        F.SIGN[k] = 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dumps")
    ap.add_argument("--soft", help="JSON object: base name -> knowledge base folder")
    a = ap.parse_args()
    files = [os.path.join(a.dumps, f"{n}.jsonl") for n in
             ["sf0-train", "sf1-train", "sf0-test", "sf1-test", "demo", "demo2", "plausible",
              "obsidian", "buttondown"]]
    qs = F.load(files)
    names = F.names(qs)
    kinds = ["percentile_x_uncovered", "standing_x_uncovered", "margin_x_uncovered",
             "similarity_squared"]
    interactions(qs, names, kinds)
    if a.soft:
        add_soft(qs, names, json.loads(a.soft))
    others = tuple(k for k in names if k not in F.FEATURES)
    base = ("title_coverage",) + others
    print("right / right on low-overlap questions / unanswerable declined (leave one base out)")
    lobo(qs, names, "six bases (as fitted today)", drop=base)
    lobo(qs, names, "each base weighs alike", drop=base, balance=True)
    for k in (2, 3, 5):
        lobo(qs, names, f"low-overlap questions weigh x{k}", drop=base, low_weight=k)
    for k in kinds:
        lobo(qs, names, f"+ {k}", drop=tuple(d for d in base if d != k))
    lobo(qs, names, "without standing", drop=base + ("standing",))
    if a.soft:
        lobo(qs, names, "+ soft_article_coverage",
             drop=tuple(d for d in base if d != "soft_article_coverage"))


if __name__ == "__main__":
    main()
