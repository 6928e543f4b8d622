"""How often generated words have the case the corpus gives them: ``python bench/casing.py``.

Draws ``--sentences`` sentences from a model file (seeded, plain sampling, as /generate does) and
shows each through the service's text assembly twice: with the model file's casing, and with none
(lower case, as files without it are shown). The text is tokenized again with its case kept, and
each word with letters is compared with the corpus's majority form (``models.casing``, counted
afresh from ``--corpus`` through the token cache); a sentence's first word is compared after the
sentence-initial capital. Prints one JSON line: both shares and ``--samples`` seeded samples shown
both ways. ``--casing-from-corpus`` gives a file trained without casing the corpus's forms, in
memory only, so one model's words can be shown both ways.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from models.casing import capitalised, has_letters  # noqa: E402
from models.model_file import load_model  # noqa: E402
from models.sampling import Sampler, SamplingParams  # noqa: E402
from models.text import surface_sentences  # noqa: E402
from service.text_assembly import IncrementalText  # noqa: E402
from training.corpus import corpus_sources  # noqa: E402
from training.dataset import TOKEN_CACHE  # noqa: E402
from training.run_config import RunConfig  # noqa: E402
from training.token_cache import tokenized  # noqa: E402


def shown(words: list[str], forms: dict[str, str]) -> str:
    text = IncrementalText([], forms)
    for word in words:
        text.add(word)
    return text.text


def matches(text: str, forms: dict[str, str]) -> tuple[int, int]:
    """(words of the text whose case is the corpus's, words with letters)."""
    tokens = [t for sentence in surface_sentences([text]) for t in sentence if has_letters(t)]
    expected = [forms.get(t.lower(), t.lower()) for t in tokens]
    if expected:
        expected[0] = capitalised(expected[0])
    return sum(t == e for t, e in zip(tokens, expected)), len(tokens)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="artifacts/model.joblib")
    p.add_argument("--corpus", default="austen", help="the model's training corpus, as train.py --corpus")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--sentences", type=int, default=1000)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--casing-from-corpus", action="store_true", help="show the words in the corpus's case even if the file has none")
    args = p.parse_args()
    train, valid = corpus_sources(args.corpus, None, Path(args.data_dir))
    run = RunConfig(corpus=args.corpus)  # train.py's defaults: the same token cache
    corpus_forms = tokenized(train, valid, Path(args.data_dir) / TOKEN_CACHE, run.max_sentence_words, 2).casing
    loaded = load_model(args.model)
    forms = dict(loaded.vocab.casing)
    if args.casing_from_corpus:
        forms = {w: f for w, f in corpus_forms.items() if w in loaded.vocab.index}
    sampler = Sampler(loaded.model, loaded.vocab, loaded.mixture)
    totals = {"with_casing": [0, 0], "lower_case": [0, 0]}
    samples = []
    for i in range(args.sentences):
        ids = sampler.sample_sentence([], SamplingParams(), np.random.default_rng([args.seed, i])).new_ids
        words = loaded.vocab.decode(ids)
        for name, shown_forms in (("with_casing", forms), ("lower_case", {})):
            good, count = matches(shown(words, shown_forms), corpus_forms)
            totals[name][0] += good
            totals[name][1] += count
        if i < args.samples:
            samples.append({"lower_case": shown(words, {}), "with_casing": shown(words, forms)})
    print(json.dumps({
        "model": args.model, "sentences": args.sentences, "casing_in_file": bool(loaded.vocab.casing),
        "words": totals["with_casing"][1],
        **{f"share_{name}": good / max(count, 1) for name, (good, count) in totals.items()},
        "samples": samples,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
