#!/usr/bin/env python3
"""Trains the cross-encoder reranker (src/kb/rerank.rs) that scores a question and a passage together.

Starts from the all-MiniLM-L6-v2 weights in models/all-MiniLM-L6-v2 (a BERT of 6 layers, 384 wide),
adds a one-logit head on the pooled [CLS] (BertForSequenceClassification, as rust-bert loads it) and
trains binary relevance on pairs mined from data that no reported figure is measured on:

  - StackFAQ **train** paraphrases (even positions within each FAQ entry, as scripts/stackfaq_sets.py
    splits them) → their entry's answer, titled with the FAQ question or, half the time, with the
    answer's first words (as a help centre titles a topic, so the model must read the text);
    negatives: the entry's nearest other entries by BM25 and by the bi-encoder (near misses from the
    same site), and one at random;
  - the demo knowledge base's structure: each section heading (with and without its article's title)
    → its section, shown without that heading; negatives: the article's other sections and the base's
    nearest sections by BM25 and by the bi-encoder.

Never the Plausible docs or any Plausible question (the held-out base), never the StackFAQ test
paraphrases, never a question set under tests/questions.

A passage is shown to the model as Rust shows it (`kb::rerank::passage_text`): "title > heading >
heading" on the first line, then the text; the pair is truncated to --max-len tokens, passage only.

    python3 -m venv .venv  # and torch 2.4.0 + transformers 4.44.2, see docs/EVALUATION.md
    nice -n 19 .venv/bin/python scripts/train_reranker.py --out models/reranker

Writes models/reranker/{config.json, vocab.txt, model-*.safetensors} in fp16, split in files of at
most 25 MB (the Rust loader reads every model-*.safetensors), and prints right-first@1 on the StackFAQ
test paraphrases before (bi-encoder) and after reranking the bi-encoder's top candidates.
"""
import argparse
import glob
import json
import math
import os
import random
import re
import time

import numpy as np
import torch
from rank_bm25 import BM25Okapi
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer, BertConfig, BertForSequenceClassification

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORD = re.compile(r"[a-z0-9]+")


def passage_text(title, headings, text):
    """Must match `passage_text` in src/kb/rerank.rs."""
    head = " > ".join([h for h in [title, *headings] if h])
    return f"{head}\n{text}" if head else text


def toks(s):
    return WORD.findall(s.lower())


def stackfaq(path):
    """(train queries, test queries, passages, passage index of each entry)."""
    entries = json.load(open(path))["root"]["qapair"]
    passages, train, test = [], [], []
    for i, e in enumerate(entries):
        answer = e.get("answer") or ""
        body = "\n\n".join(answer) if isinstance(answer, list) else answer
        title = (e.get("question") or "").strip()
        first = " ".join(body.split()[:8])
        passages.append({"group": f"sf{i}", "forms": [passage_text(title, [], body),
                                                      passage_text(first, [], body)]})
        queries = [q for q in e.get("rephr") or [] if q and q.strip() not in ("", "*")]
        for j, q in enumerate(queries):
            (train if j % 2 == 0 else test).append((q.strip(), i))
    return train, test, passages


def clean(md):
    md = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", md)
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = re.sub(r"[*_`]+", "", md)
    return re.sub(r"\n{3,}", "\n\n", md).strip()


def markdown_sections(root):
    """Each section of each article under root: (article title, heading path, text)."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*.md"), recursive=True)):
        src = open(path).read()
        title = ""
        if src.startswith("---"):
            end = src.find("\n---", 3)
            front, src = src[3:end], src[end + 4:]
            m = re.search(r"^title:\s*\"?(.*?)\"?\s*$", front, re.M)
            title = m.group(1) if m else ""
        stack, text = [], []

        def flush():
            body = clean("\n".join(text))
            if body:
                out.append({"article": path, "title": title, "headings": list(stack), "text": body})

        for line in src.splitlines():
            m = re.match(r"^(#{1,4})\s+(.*)$", line)
            if m:
                flush()
                text = []
                level = len(m.group(1))
                if level == 1:
                    title = title or m.group(2).strip()
                    stack = []
                else:
                    stack = stack[: level - 2] + [m.group(2).strip()]
            else:
                text.append(line)
        flush()
    return out


@torch.no_grad()
def embed(model, tok, texts, batch=64):
    out = []
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], padding=True, truncation=True, max_length=256,
                  return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1)
        out.append(torch.nn.functional.normalize(v, dim=-1))
    return torch.cat(out)


def nearest(query_vecs, doc_vecs, bm25, queries, k):
    """Per query: doc indices by bi-encoder and by BM25, best first (k each)."""
    sims = query_vecs @ doc_vecs.T
    bi = torch.topk(sims, min(k, sims.shape[1]), dim=1).indices.tolist()
    kw = [list(np.argsort(-bm25.get_scores(toks(q)))[:k]) for q in queries]
    return bi, kw


def mine(args, tok, encoder, rng):
    train_q, test_q, sf_passages = stackfaq(args.stackfaq)
    pairs = []
    # StackFAQ: the answer's own entry is positive; near entries negative.
    sf_texts = [p["forms"][0] for p in sf_passages]
    sf_vecs = embed(encoder, tok, sf_texts)
    bm25 = BM25Okapi([toks(t) for t in sf_texts])
    qv = embed(encoder, tok, [q for q, _ in train_q])
    bi, kw = nearest(qv, sf_vecs, bm25, [q for q, _ in train_q], args.negatives + 1)
    for (q, i), b, k in zip(train_q, bi, kw):
        form = rng.randrange(2)
        pairs.append((q, sf_passages[i]["forms"][form], 1.0))
        negs = [j for j in b if j != i][: args.negatives // 2]
        negs += [j for j in k if j != i and j not in negs][: args.negatives - len(negs)]
        negs.append(rng.choice([j for j in range(len(sf_passages)) if j != i]))
        for j in negs:
            pairs.append((q, sf_passages[j]["forms"][rng.randrange(2)], 0.0))
    # The demo knowledge base's headings → their sections.
    secs = [s for s in markdown_sections(os.path.join(REPO, "knowledge_base")) if s["headings"]]
    all_secs = markdown_sections(os.path.join(REPO, "knowledge_base"))
    shown = [passage_text(s["title"], s["headings"], s["text"]) for s in all_secs]
    sec_vecs = embed(encoder, tok, shown)
    bm25 = BM25Okapi([toks(t) for t in shown])
    queries, targets = [], []
    for s in secs:
        i = all_secs.index(s)
        q = s["headings"][-1] if rng.random() < 0.5 else f"{s['title']}: {s['headings'][-1]}"
        queries.append(q)
        targets.append(i)
    qv = embed(encoder, tok, queries)
    bi, kw = nearest(qv, sec_vecs, bm25, queries, args.negatives + 1)
    for q, i, b, k in zip(queries, targets, bi, kw):
        s = all_secs[i]
        # Without the heading that is the query, so the text must carry the match.
        pairs.append((q, passage_text(s["title"], s["headings"][:-1], s["text"]), 1.0))
        siblings = [j for j, o in enumerate(all_secs) if o["article"] == s["article"] and j != i]
        negs = rng.sample(siblings, min(1, len(siblings)))
        negs += [j for j in b if j != i and j not in negs][:2]
        negs += [j for j in k if j != i and j not in negs][:1]
        for j in negs:
            pairs.append((q, shown[j], 0.0))
    return pairs, test_q, sf_passages, sf_vecs


def batches(pairs, size, rng):
    """Batches of pairs of similar length (less padding), in random order."""
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]) + rng.random() * 200)
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    rng.shuffle(chunks)
    return chunks


@torch.no_grad()
def rerank_at1(model, tok, test_q, passages, vecs, encoder, top, max_len, limit):
    """Right entry @1 on StackFAQ test: bi-encoder alone, then reranked among its top `top`."""
    qs = test_q[:limit]
    qv = embed(encoder, tok, [q for q, _ in qs])
    cand = torch.topk(qv @ vecs.T, top, dim=1).indices.tolist()
    before = after = 0
    model.eval()
    for (q, i), c in zip(qs, cand):
        before += c[0] == i
        texts = [passages[j]["forms"][1] for j in c]
        enc = tok([q] * len(c), texts, padding=True, truncation="only_second", max_length=max_len,
                  return_tensors="pt")
        s = model(**enc).logits[:, 0]
        after += c[int(torch.argmax(s))] == i
    model.train()
    return before / len(qs), after / len(qs)


def export(model, out):
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "model-*.safetensors")):
        os.remove(old)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if not k.endswith("position_ids")}
    shards, current, size = [], {}, 0
    for k, v in state.items():
        n = v.numel() * 2
        if current and size + n > 23 * 1000 * 1000:
            shards.append(current)
            current, size = {}, 0
        current[k] = v
        size += n
    shards.append(current)
    for i, s in enumerate(shards):
        save_file(s, os.path.join(out, f"model-{i + 1}-of-{len(shards)}.safetensors"))
    cfg = json.load(open(os.path.join(REPO, "models/all-MiniLM-L6-v2/config.json")))
    cfg.update({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "relevant"},
                "label2id": {"relevant": 0}, "torch_dtype": "float16"})
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
    with open(os.path.join(REPO, "models/all-MiniLM-L6-v2/vocab.txt")) as src, \
            open(os.path.join(out, "vocab.txt"), "w") as dst:
        dst.write(src.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stackfaq", default=os.path.join(REPO, "../shared/data/stackfaq/stackExchange-FAQ.json"))
    ap.add_argument("--base", default=os.path.join(REPO, "models/all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=os.path.join(REPO, "models/reranker"))
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--minutes", type=float, default=40.0, help="stop training after this long")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--frozen-layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--init", help="continue from a reranker written by an earlier run")
    ap.add_argument("--pairs", help="keep the mined pairs in this file (reused when it exists)")
    ap.add_argument("--eval-limit", type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    tok = AutoTokenizer.from_pretrained(a.base)
    encoder = AutoModel.from_pretrained(a.base).eval()
    t0 = time.time()
    if a.pairs and os.path.exists(a.pairs):
        pairs, test_q, sf_passages, sf_vecs = torch.load(a.pairs)
    else:
        pairs, test_q, sf_passages, sf_vecs = mine(a, tok, encoder, rng)
        if a.pairs:
            torch.save((pairs, test_q, sf_passages, sf_vecs), a.pairs)
    if a.init:
        # A second round goes over the pairs in another order.
        rng = random.Random(a.seed + 1)
    pos = sum(p[2] for p in pairs)
    print(f"mined {len(pairs)} pairs ({pos:.0f} positive) in {time.time() - t0:.0f}s", flush=True)

    cfg = BertConfig.from_pretrained(a.base, num_labels=1)
    model = BertForSequenceClassification.from_pretrained(a.base, config=cfg)
    # The sentence encoder's pooler was never trained for its sentence task and starts saturated
    # (tanh near ±1), which left the first head predicting the base rate for every pair: start
    # it afresh, as BERT initialises a new layer.
    torch.nn.init.normal_(model.bert.pooler.dense.weight, std=0.02)
    torch.nn.init.zeros_(model.bert.pooler.dense.bias)
    if a.init:
        state = {}
        for shard in sorted(glob.glob(os.path.join(a.init, "model*.safetensors"))):
            state.update(load_file(shard))
        missing, _ = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        assert all(m.endswith("position_ids") for m in missing), missing
        print("continuing from", a.init, flush=True)
    # The embeddings and the lowest layers stay as the encoder has them: less to fit from a few
    # thousand pairs, and a backward pass that stops early (the shared CPU is the budget).
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    for layer in model.bert.encoder.layer[: a.frozen_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    # The new head (pooler and classifier) learns faster than the pretrained body: with a few
    # hundred steps on a shared CPU, a head at the body's rate only learns the base rate.
    head = [p for n, p in model.named_parameters()
            if p.requires_grad and (n.startswith("classifier") or ".pooler." in n)]
    body = [p for n, p in model.named_parameters()
            if p.requires_grad and not (n.startswith("classifier") or ".pooler." in n)]
    opt = torch.optim.AdamW([{"params": body, "lr": a.lr}, {"params": head, "lr": a.head_lr}],
                            weight_decay=0.01)
    per_epoch = math.ceil(len(pairs) / a.batch)
    total = int(per_epoch * a.epochs)
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    # Positives and negatives weigh alike (there are about four negatives to a positive).
    positives = sum(p[2] for p in pairs)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor((len(pairs) - positives) / max(positives, 1)))
    model.train()
    start, step, done = time.time(), 0, False
    while not done:
        for chunk in batches(pairs, a.batch, rng):
            q = [pairs[i][0] for i in chunk]
            p = [pairs[i][1] for i in chunk]
            y = torch.tensor([pairs[i][2] for i in chunk])
            enc = tok(q, p, padding=True, truncation="only_second", max_length=a.max_len,
                      return_tensors="pt")
            loss = loss_fn(model(**enc).logits[:, 0], y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 10 == 0:
                el = time.time() - start
                print(f"step {step}/{total} loss {loss.item():.4f} {el / 60:.1f} min", flush=True)
            if step >= total or time.time() - start > a.minutes * 60:
                done = True
                break
    print(f"trained {step} steps of {a.batch} in {(time.time() - start) / 60:.1f} min", flush=True)
    b, aft = rerank_at1(model, tok, test_q, sf_passages, sf_vecs, encoder, 5, a.max_len, a.eval_limit)
    print(f"StackFAQ test (first {a.eval_limit}) @1: bi-encoder {b:.3f} -> reranked top 5 {aft:.3f}")
    export(model, a.out)
    print("written", a.out)


if __name__ == "__main__":
    main()
