"""Training words per second and generation milliseconds per word for the default model size.

Uses synthetic sentences (Zipf-distributed words, a long-tailed length distribution like the
Austen corpus) so it needs no corpus; prints one JSON line with medians of several repeats.
Run: ``.venv/bin/python bench/train_speed.py [--repeats 5]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from models.batching import length_buckets, make_batch, sentence_pairs
from models.output_layer import available_cores, blas_limits_for
from models.rnn import RNN
from models.sampling import Sampler, SamplingParams
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from training.schedule import HalvingSchedule
from training.trainer import TrainConfig, Trainer


def synthetic_sentences(count: int, vocab_size: int, rng: np.random.Generator) -> list[list[int]]:
    lengths = np.minimum(rng.geometric(1 / 25, size=count) + 2, 200)
    ranks = np.arange(3, vocab_size)
    probs = 1.0 / (ranks - 2)
    probs /= probs.sum()
    return [[1, *rng.choice(ranks, size=n - 2, p=probs).tolist(), 2] for n in lengths]


def training_rate(args, sentences) -> float:
    model = RNN(args.vocab, args.hidden, bptt_truncate=args.bptt_truncate, seed=0)
    model.threads = args.threads
    trainer = Trainer(model, sentences, sentences[:10], TrainConfig(batch_size=args.batch_size),
                      HalvingSchedule(1.0, 6))
    inputs, targets = sentence_pairs(sentences)
    order = length_buckets([len(x) for x in inputs], args.batch_size, np.random.default_rng(0))
    batches = [make_batch([inputs[i] for i in b], [targets[i] for i in b]) for b in order]
    trainer.train_batch(batches[0])  # warm-up
    start = time.perf_counter()
    words = 0
    for batch in batches:
        trainer.train_batch(batch)
        words += batch.n_tokens
    return words / (time.perf_counter() - start)


def generation_ms_per_word(args) -> float:
    vocab = Vocabulary([*SPECIAL_TOKENS, *(f"w{i}" for i in range(args.vocab - 3))])
    sampler = Sampler(RNN(args.vocab, args.hidden, seed=0), vocab)
    params = SamplingParams(max_new_tokens=2000, min_words=2000)
    start = time.perf_counter()
    sample = sampler.sample_sentence([], params, np.random.default_rng(0))
    return 1000 * (time.perf_counter() - start) / len(sample.new_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=available_cores(), help="as training/train.py --threads")
    parser.add_argument("--bptt-truncate", type=lambda v: None if v == "none" else int(v), default=None)
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sentences = synthetic_sentences(args.sentences, args.vocab, np.random.default_rng(0))
    # the same threading as training (our threads over single-threaded BLAS) and as the
    # service (one BLAS thread per worker)
    with blas_limits_for(args.threads):
        rates = [training_rate(args, sentences) for _ in range(args.repeats)]
        blas = [f"{i['internal_api']} {i['version']} threads={i['num_threads']}" for i in threadpool_info()]
    with threadpool_limits(1, user_api="blas"):
        gen = [generation_ms_per_word(args) for _ in range(args.repeats)]
    print(json.dumps({
        "vocab": args.vocab, "hidden": args.hidden, "batch_size": args.batch_size, "threads": args.threads,
        "bptt_truncate": args.bptt_truncate, "repeats": args.repeats,
        "train_words_per_sec_median": round(statistics.median(rates)),
        "train_words_per_sec_all": [round(r) for r in rates],
        "generate_ms_per_word_median": round(statistics.median(gen), 4),
        "generate_ms_per_word_all": [round(g, 4) for g in gen],
        "training_blas": blas,
    }))


if __name__ == "__main__":
    main()
