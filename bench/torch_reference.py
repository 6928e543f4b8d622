"""PyTorch reference trainer: does the NumPy trainer learn as well per training word?

Trains the same-sized tanh RNN language model (Embedding(C, H) -> RNN(H, H, tanh) -> Linear(H, C))
in PyTorch on exactly the sentences, vocabulary, split and minibatches of our own pipeline
(``training.dataset`` and ``models.batching``), with plain SGD and global-norm clipping, and
prints the held-out perplexity every ``--eval-every`` training words:

    words=500407 ppl=159.58 ppl_without_unk_targets=161.76 lr=4 secs=79.5

It is an optional benchmark: it needs PyTorch, which the product does not depend on, so run it
from a separate environment that has torch and this project installed::

    python3 -m venv ../torchenv && ../torchenv/bin/pip install torch==2.13.0 -e .
    ../torchenv/bin/python bench/torch_reference.py --halve --batch-size 16 --words 4000000

Switches move the reference towards the NumPy trainer's choices one at a time: ``--halve`` (halve
the rate and restore the best parameters on a worse held-out loss), ``--unigram-bias`` (output
bias starts at log unigram frequencies), ``--embed-init uniform1`` (embedding U(-1, 1)),
``--no-input-proj`` (the embedding feeds the recurrence directly, as our U does: the RNN's input
matrix is fixed to the identity) and ``--token-weighting`` (divide a batch's summed loss by the
average tokens per batch instead of its own count). Nothing in the product imports this file.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from torch import nn

from models.batching import length_buckets, make_batch, sentence_pairs
from models.softmax import unigram_log_frequencies
from training.corpus import load_corpus
from training.dataset import build_dataset

VALID_BATCH_SIZE = 128


class RNNLM(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, input_proj: bool = True):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.rnn = nn.RNN(hidden, hidden, nonlinearity="tanh")
        self.out = nn.Linear(hidden, vocab_size)
        if not input_proj:  # x_t's column of U goes straight in: W_ih = I, frozen
            with torch.no_grad():
                self.rnn.weight_ih_l0.copy_(torch.eye(hidden))
            self.rnn.weight_ih_l0.requires_grad_(False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (T x B x C) of time-major inputs (T x B); every sentence starts from a zero state."""
        states, _ = self.rnn(self.embed(inputs))
        return self.out(states)


def to_tensors(batch):
    return (torch.from_numpy(batch.inputs), torch.from_numpy(batch.targets), torch.from_numpy(batch.mask).bool())


def summed_nll(model: RNNLM, inputs, targets, mask) -> torch.Tensor:
    logits = model(inputs)
    return nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")


@torch.no_grad()
def validation_loss(model: RNNLM, batches) -> tuple[float, float]:
    """Mean NLL over all real held-out tokens, and over those whose target is not UNKNOWN_TOKEN (0)."""
    model.eval()
    total = known_total = 0.0
    count = known_count = 0
    for inputs, targets, mask in batches:
        nll = nn.functional.cross_entropy(model(inputs)[mask], targets[mask], reduction="none")
        known = targets[mask] != 0
        total += float(nll.sum())
        count += nll.numel()
        known_total += float(nll[known].sum())
        known_count += int(known.sum())
    model.train()
    return total / count, known_total / known_count


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", default="austen")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=4.0)
    p.add_argument("--clip", type=float, default=0.25, help="global gradient-norm limit; 0 disables")
    p.add_argument("--words", type=int, default=4_000_000, help="stop after this many training words")
    p.add_argument("--eval-every", type=int, default=500_000, help="training words between evaluations")
    p.add_argument("--halve", action="store_true", help="on a worse held-out loss: halve the rate, restore the best parameters")
    p.add_argument("--unigram-bias", action="store_true", help="output bias starts at log(counts + 1) frequencies")
    p.add_argument("--embed-init", choices=["normal", "uniform1"], default="normal",
                   help="normal: PyTorch's N(0, 1); uniform1: U(-1, 1)")
    p.add_argument("--no-input-proj", action="store_true", help="no trainable W_ih: the embedding is our U")
    p.add_argument("--token-weighting", action="store_true",
                   help="divide a batch's summed loss by the average tokens per batch, not its own count")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads; use 1 when another process is busy on the cores (2 then crawls)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default="data")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ds = build_dataset(load_corpus(args.corpus, None, Path(args.data_dir)), args.vocab_size)
    inputs, targets = sentence_pairs(ds.train)
    lengths = [len(x) for x in inputs]
    v_in, v_tg = sentence_pairs(sorted(ds.valid, key=len))
    valid = [to_tensors(make_batch(v_in[i : i + VALID_BATCH_SIZE], v_tg[i : i + VALID_BATCH_SIZE]))
             for i in range(0, len(v_in), VALID_BATCH_SIZE)]
    tokens_per_batch = sum(lengths) / math.ceil(len(lengths) / args.batch_size)

    model = RNNLM(len(ds.vocab), args.hidden, input_proj=not args.no_input_proj)
    with torch.no_grad():
        if args.embed_init == "uniform1":
            model.embed.weight.uniform_(-1.0, 1.0)
        if args.unigram_bias:
            model.out.bias.copy_(torch.from_numpy(unigram_log_frequencies(ds.vocab.counts)).float())
    params = [p for p in model.parameters() if p.requires_grad]
    lr = args.lr
    optimizer = torch.optim.SGD(params, lr=lr)
    print(f"# {vars(args)}; {sum(lengths):,} training words per epoch, {sum(int(b[2].sum()) for b in valid):,} "
          f"validation tokens; {sum(p.numel() for p in params):,} trainable parameters", flush=True)

    best_loss, best_state = math.inf, None
    words, last_eval, epoch = 0, 0, 0
    started = time.monotonic()
    while words < args.words:
        order = length_buckets(lengths, args.batch_size, np.random.default_rng([args.seed, epoch]))
        for chosen in order:
            x, y, m = to_tensors(make_batch([inputs[i] for i in chosen], [targets[i] for i in chosen]))
            n = int(m.sum())
            loss = summed_nll(model, x, y, m) / (tokens_per_batch if args.token_weighting else n)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                nn.utils.clip_grad_norm_(params, args.clip)
            optimizer.step()
            words += n
            if words - last_eval >= args.eval_every or words >= args.words:
                last_eval = words
                val, val_known = validation_loss(model, valid)
                note = ""
                if val < best_loss:
                    best_loss = val
                    best_state = copy.deepcopy(model.state_dict())
                elif args.halve:
                    lr /= 2
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    model.load_state_dict(best_state)
                    note = " worse: lr halved, best restored"
                print(f"words={words} ppl={math.exp(val):.2f} ppl_without_unk_targets={math.exp(val_known):.2f} "
                      f"lr={lr:g} secs={time.monotonic() - started:.1f}{note}", flush=True)
                if words >= args.words:
                    break
        epoch += 1
    print(f"# best ppl {math.exp(best_loss):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
