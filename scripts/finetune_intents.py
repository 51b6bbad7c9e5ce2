#!/usr/bin/env python3
"""Fine-tune all-MiniLM-L6-v2's top layers for BANKING77's 77 intents (issue 14: the lever
docs/EVALUATION.md names for BANKING77 after heads on the frozen encoder stopped at 93.9).

A measurement, not part of CI: CI never trains. The protocol is the Rust eval's
(`frontdesk eval --only banking77`): every tenth row of train.csv is the development split that
chooses the number of epochs; the model is then trained again on all of train.csv for that many
epochs, and test.csv is scored once, at the end.

The model: the encoder's top N layers tuned (`--train-layers`, 0 for all six; the lower ones and
the word embeddings frozen, as in scripts/finetune_signals.py), the mean of the token vectors,
normalised and scaled by 10 as the product's heads read them, one linear layer to the 77 intents;
cross-entropy with label smoothing 0.1, AdamW, a linear warm-up and decay.

Set-up: the venv of scripts/finetune_signals.py (its docstring). Run from the repository root:
  nice -n 10 /tmp/signals-ft/venv/bin/python scripts/finetune_intents.py --train-layers 2
"""
import argparse
import csv
import json
import os
import random
import time

import numpy as np
import torch
from transformers import BertModel, BertTokenizerFast

from finetune_signals import freeze, run_layers


def load(data, split):
    with open(os.path.join(data, "banking77", f"{split}.csv")) as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


class Model(torch.nn.Module):
    def __init__(self, path, classes, train_layers):
        super().__init__()
        self.bert = BertModel.from_pretrained(path, add_pooling_layer=False)
        self.frozen = freeze(self.bert, train_layers)
        self.head = torch.nn.Linear(384, classes)

    def forward(self, batch):
        h = run_layers(self.bert, self.frozen, batch)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.head(torch.nn.functional.normalize(pooled, dim=-1) * 10.0)


@torch.no_grad()
def accuracy(model, tok, rows, index, max_len, batch=128):
    model.eval()
    right = 0
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]
        enc = tok([t for t, _ in part], truncation=True, max_length=max_len,
                  padding=True, return_tensors="pt")
        pred = model(enc).argmax(-1).tolist()
        right += sum(p == index[c] for p, (_, c) in zip(pred, part))
    model.train()
    return right / len(rows)


def train(args, tok, rows, index, epochs, score=None):
    """Trains a new model on `rows` for `epochs`; with `score` (rows), their accuracy after each
    epoch. Returns the model and the scores."""
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = Model(args.encoder, len(index), args.train_layers)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr},
                             {"params": head, "lr": args.head_lr}], weight_decay=0.01)
    steps = epochs * ((len(rows) + args.batch - 1) // args.batch)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    scores, step, started = [], 0, time.time()
    for epoch in range(epochs):
        order = rows[:]
        rng.shuffle(order)
        for i in range(0, len(order), args.batch):
            part = order[i:i + args.batch]
            enc = tok([t for t, _ in part], truncation=True, max_length=args.max_len,
                      padding=True, return_tensors="pt")
            gold = torch.tensor([index[c] for _, c in part])
            loss = loss_fn(model(enc), gold)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                print(f"  step {step}/{steps} loss {loss.item():.3f} {time.time() - started:.0f}s",
                      flush=True)
        if score is not None:
            acc = accuracy(model, tok, score, index, args.max_len)
            scores.append(acc)
            print(f"epoch {epoch + 1}: dev accuracy {100 * acc:.2f}", flush=True)
    return model, scores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--train-layers", type=int, default=2,
                    help="tune only the top N layers (0: all six)")
    ap.add_argument("--epochs", type=int, default=8, help="the most epochs tried on dev")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5, help="the tuned layers' learning rate")
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="", help="write the figures as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tok = BertTokenizerFast(os.path.join(args.encoder, "vocab.txt"), do_lower_case=True)
    train_rows, test_rows = load(args.data, "train"), load(args.data, "test")
    index = {c: i for i, c in enumerate(sorted({c for _, c in train_rows}))}
    dev = [r for i, r in enumerate(train_rows) if i % 10 == 0]
    fit = [r for i, r in enumerate(train_rows) if i % 10 != 0]
    print(f"train {len(fit)} + dev {len(dev)}, test {len(test_rows)}, {len(index)} intents",
          flush=True)
    _, dev_scores = train(args, tok, fit, index, args.epochs, score=dev)
    best = int(np.argmax(dev_scores)) + 1
    print(f"chosen on dev: {best} epochs (dev accuracy {100 * dev_scores[best - 1]:.2f})",
          flush=True)
    model, _ = train(args, tok, train_rows, index, best)
    test = accuracy(model, tok, test_rows, index, args.max_len)
    print(f"test accuracy {100 * test:.2f} (trained on all of train for {best} epochs)", flush=True)
    if args.out:
        json.dump({"options": vars(args), "dev_by_epoch": dev_scores, "epochs": best,
                   "test_accuracy": test}, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
