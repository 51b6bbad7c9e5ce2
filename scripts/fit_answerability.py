#!/usr/bin/env python3
"""Fits the bot's answer decision (src/kb/answerability.rs) on feature dumps and scores it.

    frontdesk eval --kb DIR --questions FILE --dump OUT.jsonl     # one dump per base / set
    python3 scripts/fit_answerability.py --fit A.jsonl B.jsonl --report C.jsonl [--write models/answerability-rerank.json]
    python3 scripts/fit_answerability.py --no-rerank ... [--write models/answerability.json]

Dumps made with the reranker carry its three features after the sixteen others; the model with
them is models/answerability-rerank.json (bot.rerank.enabled), the one without
models/answerability.json.

A logistic regression on every candidate article (label: it is one of the question's pages) gives
the probability that an article answers the question. Its weights are constrained to the direction
each feature can only mean (SIGN below: a more similar, better-ranked, keyword-backed article is
never less probable), so that what one base's data happens to reward the wrong way cannot carry to
another base (--free fits without the constraints). The thresholds are chosen on the fitting
data only, by rules fixed in advance:
  - choices_threshold: the lowest probability of the best article at which at least 92% of the
    fitting data's unanswerable questions are declined (the goal is 90%, with room to spare);
  - answer_threshold: the choices threshold. The bot has no bar of its own for answering directly
    (`decide` answers or offers choices from choices_threshold up); below it a greeting is answered
    in kind. (Until 2026-12-03 it was the lowest probability at which the best article is right for
    98% of the answerable questions, raised to the choices threshold; it always came out equal to
    it, until the fit on six bases gave 0.75, which would only have let greetings with a question
    the bot can answer be answered in kind.)
  - option_threshold: a quarter of the choices threshold (half until 2026-12-04): a second or
    third article at least this probable is offered beside the best one ("Which of these is
    it?"), generously, since the customer picks and a wrong direct answer costs more than a tap;
    with none, the best one is answered directly.
Each --report file is scored as the bot decides (src/bot/mod.rs `decide`): right page first or
among the choices, declined; and retrieval's right-page@1 before and after the rerank.
"""
import argparse
import json

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

FEATURES = [
    "similarity", "percentile", "gap_to_best", "margin", "inverse_rank", "keyword_score",
    "inverse_keyword_rank", "heading_similarity", "passage_coverage", "article_coverage",
    "base_coverage", "question_words", "passages_found", "similarity_x_article_coverage",
    "standing", "title_coverage",
]
# What a dump made with the reranker (models/reranker) adds after them (kb::RERANK_FEATURES).
RERANK_FEATURES = ["rerank_probability", "rerank_inverse_rank", "rerank_margin"]
MAX_CHOICES = 3
# How unsure_option_threshold is chosen ("half": half the choices threshold; "lowest": see thresholds()).
OPTION_RULE = "lowest"
# The direction each feature may push the probability (+1 up, -1 down, 0 either way).
SIGN = {
    "similarity": 1, "percentile": 1, "gap_to_best": -1, "margin": 1, "inverse_rank": 1,
    "keyword_score": 1, "inverse_keyword_rank": 1, "heading_similarity": 1,
    "passage_coverage": 1, "article_coverage": 1, "base_coverage": 1, "question_words": 0,
    "passages_found": 1, "similarity_x_article_coverage": 1, "standing": 1,
    "title_coverage": 1,
    "rerank_probability": 1, "rerank_inverse_rank": 1, "rerank_margin": 1,
}


def load(paths):
    qs = []
    for p in paths:
        for line in open(p):
            qs.append(json.loads(line))
    return qs


def names(qs):
    """The dumps' feature names (FEATURES alone in dumps made without the reranker)."""
    found = {tuple(q.get("feature_names", FEATURES)) for q in qs}
    if len(found) != 1:
        raise SystemExit("the dumps were made with different features; dump them again")
    return list(found.pop())


def rows(qs, use):
    X, y, w = [], [], []
    per_set = {}
    for q in qs:
        per_set[base_of(q)] = per_set.get(base_of(q), 0) + 1
    for q in qs:
        for c in q["candidates"]:
            X.append([c["features"][i] for i in use])
            y.append(1 if c["right"] else 0)
            w.append(1.0 / per_set[base_of(q)])
    w = np.array(w)
    return np.array(X), np.array(y), w * len(w) / w.sum()


class Monotone:
    """An L2-regularised logistic regression whose weights keep the signs in `signs` (the same
    loss as scikit-learn's, with bounds), with the fitted `coef_` and `intercept_` it has."""

    def __init__(self, C, signs):
        self.C, self.signs = C, signs

    def fit(self, Z, y, sample_weight=None):
        w = np.ones(len(y)) if sample_weight is None else sample_weight
        d = Z.shape[1]

        def loss(theta):
            z = Z @ theta[:d] + theta[d]
            p = 1.0 / (1.0 + np.exp(-z))
            value = np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 / self.C * theta[:d] @ theta[:d]
            grad = np.append(Z.T @ (w * (p - y)) + theta[:d] / self.C, np.sum(w * (p - y)))
            return value, grad

        bounds = [(0, None) if s > 0 else (None, 0) if s < 0 else (None, None) for s in self.signs]
        r = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds + [(None, None)])
        self.coef_, self.intercept_ = [r.x[:d]], [r.x[d]]
        return self

    def predict_proba(self, Z):
        p = 1.0 / (1.0 + np.exp(-(Z @ self.coef_[0] + self.intercept_[0])))
        return np.column_stack([1 - p, p])


class Model:
    def __init__(self, qs, use, C, balance, names=None, free=False):
        self.use = use
        X, y, w = rows(qs, use)
        self.mean = X.mean(axis=0)
        self.scale = X.std(axis=0) + 1e-6
        if free:
            lr = LogisticRegression(C=C, max_iter=2000)
        else:
            lr = Monotone(C, [SIGN.get(names[i], 0) for i in use])
        self.lr = lr.fit((X - self.mean) / self.scale, y, sample_weight=w if balance else None)

    def judge(self, q):
        X = np.array([[c["features"][i] for i in self.use] for c in q["candidates"]])
        if len(X) == 0:
            return []
        p = self.lr.predict_proba((X - self.mean) / self.scale)[:, 1]
        order = np.argsort(-p, kind="stable")
        return [(p[i], q["candidates"][i]["right"]) for i in order]


def decide(judged, t):
    """What the bot does (src/bot/mod.rs `decide`): ('decline'|'answer'|'choices', [right flags
    of what it offers]). Below the choices threshold, two or three articles each at least
    option_threshold probable are still offered when the probability that at least one of them
    answers reaches it."""
    if not judged:
        return "decline", []
    unsure = judged[0][0] < t["choices_threshold"]
    floor = t.get("unsure_option_threshold", t["option_threshold"]) if unsure else t["option_threshold"]
    options = [judged[0]] + [j for j in judged[1:] if j[0] >= floor]
    options = options[:MAX_CHOICES]
    any_of_them = 1.0 - np.prod([1.0 - p for p, _ in options])
    if unsure and (len(options) < 2 or any_of_them < t["choices_threshold"]):
        return "decline", []
    if len(options) == 1:
        return "answer", [judged[0][1]]
    return "choices", [o[1] for o in options]


def thresholds(model, qs, balance=False):
    if balance:
        # Each base (StackFAQ, demo, ...) counts alike: the mean of its own thresholds.
        bases = sorted({q["set"].split("-")[0] for q in qs})
        per = [thresholds(model, [q for q in qs if q["set"].split("-")[0] == b]) for b in bases]
        return {k: float(np.mean([t[k] for t in per])) for k in per[0]}
    tops = [(model.judge(q), q["answerable"]) for q in qs]
    unans = sorted(j[0][0] if j else 0.0 for j, a in tops if not a)
    choices = float(unans[int(np.ceil(0.92 * len(unans))) - 1]) + 1e-4 if unans else 0.5
    answer = choices
    t = {"choices_threshold": choices, "answer_threshold": answer, "option_threshold": choices / 4,
         "unsure_option_threshold": choices / 2}
    if OPTION_RULE == "lowest":
        # Below the choices threshold: the lowest threshold for the articles counted with the best
        # (never above half the choices threshold) at which the fitting data's unanswerable
        # questions are still declined at least 90% of the time (the goal).
        judged = [model.judge(q) for q in qs if not q["answerable"]]
        for o in np.arange(0.05, choices / 2, 0.01):
            trial = dict(t, unsure_option_threshold=float(o))
            declined = np.mean([decide(j, trial)[0] == "decline" for j in judged]) if judged else 1
            if declined >= 0.90:
                t = trial
                break
    return t


def score(model, qs, t):
    n_a = n_u = 0
    first = chosen = declined_a = declined_u = 0
    before = after = 0
    for q in qs:
        judged = model.judge(q)
        action, offered = decide(judged, t)
        if q["answerable"]:
            n_a += 1
            cands = q["candidates"]
            before += bool(cands) and cands[0]["right"]
            after += bool(judged) and judged[0][1]
            if action == "decline":
                declined_a += 1
            elif action == "answer" and offered[0]:
                first += 1
            elif action == "choices" and any(offered):
                chosen += 1
        else:
            n_u += 1
            declined_u += action == "decline"
    pct = lambda a, b: 100.0 * a / b if b else float("nan")
    return {"answerable": n_a, "right": pct(first + chosen, n_a), "first": pct(first, n_a),
            "choices": pct(chosen, n_a), "declined": pct(declined_a, n_a),
            "unanswerable": n_u, "unanswerable_declined": pct(declined_u, n_u),
            "at1_before": pct(before, n_a), "at1_after": pct(after, n_a)}


def diagnose(model, t, paths):
    """For each --report file: where the declined answerable questions' right page was, what
    offering the best three below the threshold would buy and cost, and the similarity and
    percentile that decline 90% of its unanswerable questions (does the percentile carry a
    threshold from one base to another better than the raw cosine?)."""
    print("diagnosis (thresholds as fitted)")
    for path in paths:
        qs = load([path])
        judged = [(q, model.judge(q)) for q in qs]
        declined = [(q, j) for q, j in judged if q["answerable"] and decide(j, t)[0] == "decline"]
        first = sum(bool(j) and j[0][1] for _, j in declined)
        top3 = sum(any(r for _, r in j[:3]) for _, j in declined)
        print(f"  {path[-40:]}: {len(declined)} answerable declined; the right page first"
              f" {first}, in the model's best three {top3}")
        for floor in (0.1, 0.2, 0.3, 0.4):
            n_a = n_u = right = kept = 0
            for q, j in judged:
                action, offered = decide(j, t)
                if action == "decline" and j and j[0][0] >= floor:
                    action, offered = "choices", [r for _, r in j[:MAX_CHOICES]]
                if q["answerable"]:
                    n_a += 1
                    right += action != "decline" and any(offered)
                else:
                    n_u += 1
                    kept += action == "decline"
            print(f"    offering the best three when the best is at least {floor:.1f}:"
                  f" right {100.0 * right / max(n_a, 1):5.1f},"
                  f" unanswerable declined {100.0 * kept / max(n_u, 1):5.1f}")
        for i, name in ((0, "similarity"), (1, "percentile")):
            un = [q["candidates"][0]["features"][i] for q in qs
                  if not q["answerable"] and q["candidates"]]
            an = [max(c["features"][i] for c in q["candidates"] if c["right"]) for q in qs
                  if q["answerable"] and any(c["right"] for c in q["candidates"])]
            if un and an:
                cut = float(np.quantile(un, 0.9))
                print(f"    {name}: 90% of unanswerable questions below {cut:.2f};"
                      f" right page above it for {100.0 * np.mean(np.array(an) > cut):.0f}%"
                      f" of answerable ones")


def base_of(q):
    """The knowledge base a dumped question is about: its set's name up to the first '-'
    (stackfaq-fold0-train and stackfaq-fold1-test are one base, StackFAQ; demo-dev and
    demo-dev2 the demo base)."""
    return q["set"].split("-")[0]


def leave_one_base_out(paths, a, all_names, use):
    """Fits on every base but one and reports on that one, for each base in turn. StackFAQ's
    train dumps are fitted on and its test dumps reported on; a base in --never-fit is in no fit
    (it is only reported on, by the model fitted on all the others). Prints one row per held-out
    base and the mean over those not in --never-fit: the figure to choose settings by."""
    qs = load(paths)
    bases = sorted({base_of(q) for q in qs})
    rows_ = []
    for held in bases:
        fit = [q for q in qs if base_of(q) != held and base_of(q) not in a.never_fit
               and not q["set"].endswith("-test")]
        report = [q for q in qs if base_of(q) == held
                  and not (held == "stackfaq" and not q["set"].endswith("-test"))]
        model = Model(fit, use, a.C, a.balance, all_names, a.free)
        t = thresholds(model, fit, a.balance == "both")
        s = score(model, report, t)
        rows_.append((held, s, t))
        print(f"  held out {held:<11} n {s['answerable']:>4} right {s['right']:5.1f}"
              f" (first {s['first']:5.1f} + choices {s['choices']:5.1f}) declined"
              f" {s['declined']:5.1f} | unanswerable {s['unanswerable']:>3} declined"
              f" {s['unanswerable_declined']:5.1f} | thresholds {t['choices_threshold']:.3f}")
    chosen = [s for b, s, _ in rows_ if b not in a.never_fit]
    if chosen:
        right = np.mean([s["right"] for s in chosen])
        unans = np.mean([s["unanswerable_declined"] for s in chosen])
        print(f"  mean over {', '.join(b for b, _, _ in rows_ if b not in a.never_fit)}:"
              f" right {right:5.1f}, unanswerable declined {unans:5.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", nargs="+", required=True)
    ap.add_argument("--report", nargs="*", default=[])
    ap.add_argument("--drop", nargs="*", default=[], help="features left out")
    ap.add_argument("--no-rerank", action="store_true",
                    help="leave the reranker's features out (fit models/answerability.json)")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--write")
    ap.add_argument("--free", action="store_true",
                    help="let every weight take either sign (no monotone constraints)")
    ap.add_argument("--diagnose", action="store_true",
                    help="for each --report file, where the declined questions' pages were and"
                         " what offering choices below the threshold would cost")
    ap.add_argument("--balance", nargs="?", const="both", choices=["both", "fit"],
                    help="each base weighs alike in the fit and the thresholds (--balance fit:"
                         " in the fit only; the thresholds from the pooled questions)")
    ap.add_argument("--leave-one-base-out", action="store_true",
                    help="instead of one fit: for each base among the --fit files, fit on the"
                         " others and report on it (docs/EVALUATION.md)")
    ap.add_argument("--never-fit", nargs="*", default=["plausible"],
                    help="bases in no fit of --leave-one-base-out, only reported on")
    ap.add_argument("--option-rule", choices=["half", "lowest"], default="lowest",
                    help="how unsure_option_threshold is chosen (see thresholds())")
    a = ap.parse_args()
    global OPTION_RULE
    OPTION_RULE = a.option_rule
    fit = load(a.fit)
    all_names = names(fit)
    if a.no_rerank:
        all_names = [f for f in all_names if f not in RERANK_FEATURES]
    use = [i for i, f in enumerate(all_names) if f not in a.drop]
    if a.leave_one_base_out:
        print("leave one base out; features:", ", ".join(all_names[i] for i in use))
        leave_one_base_out(a.fit, a, all_names, use)
        return
    model = Model(fit, use, a.C, a.balance, all_names, a.free)
    t = thresholds(model, fit, a.balance == "both")
    print("fitted on", ", ".join(a.fit), "| thresholds",
          {k: round(v, 3) for k, v in t.items()})
    print(f"  {'set':<40} {'n':>4} {'right':>6} {'first':>6} {'choice':>6} {'declnd':>6}"
          f" {'n-un':>5} {'un-dec':>6} {'@1 bef':>6} {'@1 aft':>6}")
    for r in [a.fit] + [[p] for p in a.report]:
        s = score(model, load(r), t)
        name = "(fitting data)" if r is a.fit else r[0]
        print(f"  {name[-40:]:<40} {s['answerable']:>4} {s['right']:>6.1f} {s['first']:>6.1f}"
              f" {s['choices']:>6.1f} {s['declined']:>6.1f} {s['unanswerable']:>5}"
              f" {s['unanswerable_declined']:>6.1f} {s['at1_before']:>6.1f} {s['at1_after']:>6.1f}")
    if a.diagnose:
        diagnose(model, t, a.report)
    if a.write:
        w = np.zeros(len(all_names))
        mean = np.zeros(len(all_names))
        scale = np.ones(len(all_names))
        for k, i in enumerate(use):
            w[i] = model.lr.coef_[0][k]
            mean[i] = model.mean[k]
            scale[i] = model.scale[k]
        out = {"features": all_names, "mean": mean.tolist(), "scale": scale.tolist(),
               "weights": w.tolist(), "bias": float(model.lr.intercept_[0]), **t,
               "fitted_on": " ".join(p.split("/")[-1] for p in a.fit)}
        json.dump(out, open(a.write, "w"), indent=1)
        print("written", a.write)


if __name__ == "__main__":
    main()
