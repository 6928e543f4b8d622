"""The PyTorch contender of ``bench/train_speed.py``: the same model, sentences and batches.

Embedding(C, H) -> RNN(H, H, tanh) -> Linear(H, C), full softmax, plain SGD with global-norm
clipping, the output layer applied to the real (unpadded) positions only. Started by
train_speed.py in a child process with glibc's malloc thresholds raised (PyTorch's best setting
here); prints one JSON line. Needs PyTorch, which the product does not depend on.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from torch import nn

from bench.speed_data import load_bench_data
from bench.torch_reference import RNNLM, to_tensors


def training_rate(model: RNNLM, batches, lr: float = 1.0, clip: float = 0.25) -> float:
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=lr)
    tensors = [to_tensors(b) for b in batches]
    words = sum(int(m.sum()) for _, _, m in tensors)

    def step(x, y, m):
        states, _ = model.rnn(model.embed(x))
        loss = nn.functional.cross_entropy(model.out(states[m]), y[m])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()

    step(*tensors[0])  # warm-up
    start = time.perf_counter()
    for x, y, m in tensors:
        step(x, y, m)
    return words / (time.perf_counter() - start)


@torch.no_grad()
def sampling_ms_per_word(model: RNNLM, words: int = 2000) -> float:
    """One word at a time, the hidden state carried forward; a multinomial draw from the softmax."""
    generator = torch.Generator().manual_seed(0)
    token = torch.tensor([[1]])
    hidden = None
    start = time.perf_counter()
    for _ in range(words):
        states, hidden = model.rnn(model.embed(token), hidden)
        probs = torch.softmax(model.out(states[0, 0]), dim=-1)
        token = torch.multinomial(probs, 1, generator=generator).view(1, 1)
    return 1000 * (time.perf_counter() - start) / words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    args = parser.parse_args()
    data = load_bench_data(args.data_dir, args.vocab, args.sentences, args.batch_size)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rates = [training_rate(RNNLM(args.vocab, args.hidden), data.batches) for _ in range(args.repeats)]
    torch.set_num_threads(1)  # one small matrix-vector product per word: one thread is fastest
    model = RNNLM(args.vocab, args.hidden).eval()
    sampling = [sampling_ms_per_word(model) for _ in range(args.repeats)]
    print(json.dumps({
        "version": torch.__version__, "threads": args.threads,
        "train_words_per_sec": round(statistics.median(rates)),
        "train_words_per_sec_all": [round(r) for r in rates],
        "sample_ms_per_word": round(statistics.median(sampling), 4),
        "sample_ms_per_word_all": [round(s, 4) for s in sampling],
    }))


if __name__ == "__main__":
    main()
