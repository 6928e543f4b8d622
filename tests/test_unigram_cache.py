"""The mixture's unigram cache of the recent text (models/recent_text.py, models/mixture.py)
against references written for clarity: the window's counts, the mixed probabilities, scoring
across sentences, both samplers' windows across the sentences of a request, the batched draw,
the model file and the choice of weight and size in training."""
from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
import pytest

from models.batch_sampling import BatchSampler, SequenceSpec, sentence_stream
from models.gru import GRU
from models.mixture import NgramMixture
from models.mixture_draws import MixtureDrawer, reference_draw
from models.recent_text import CacheWindows, cache_token_probs, extended, window_shares
from models.sampling import Sampler, SamplingParams
from models.scoring import score_sentences
from models.word_classes import WordClasses
from tests.test_batch_sampling import gru_twin, run_batched
from tests.test_generation import class_layer_twin, toy_mixture
from training.dataset import development_contexts, development_split
from training.kneser_ney import KneserNey
from training.interpolation import CACHE_SIZES, CACHE_WEIGHTS, choose_cache

START, END = 1, 2


def slow_window(text: list[int], size: int) -> list[int]:
    """The last ``size`` tokens of the text so far, SENTENCE_START left out."""
    return [t for t in text if t != START][-size:] if size else []


def slow_cache_probs(sentences, size, before=()):
    """Each predicted token's share of the window before it (None while the window is empty)."""
    text, out = list(before), []
    for sentence in sentences:
        probs = []
        for token in sentence[1:]:
            window = slow_window(text, size)
            probs.append(window.count(token) / len(window) if window else None)
            text.append(token)
        out.append(probs)
    return out


def slow_mixed(mixture: NgramMixture, rnn_probs: np.ndarray, history, text) -> np.ndarray:
    """(1 - c) * [w * P_rnn + (1 - w) * P_kn] + c * P_cache, word by word."""
    base = mixture.rnn_weight * rnn_probs + (1 - mixture.rnn_weight) * mixture.ngram.next_word_probs(history)
    window = slow_window(text, mixture.cache_size)
    if not window or not mixture.cache_weight:
        return base
    cache = np.array([window.count(w) / len(window) for w in range(base.size)])
    return (1 - mixture.cache_weight) * base + mixture.cache_weight * cache


def random_sentences(rng, count: int, vocab: int = 12) -> list[list[int]]:
    return [[START, *rng.integers(3, vocab, int(rng.integers(0, 6))).tolist(), END] for _ in range(count)]


def cached(mixture: NgramMixture, weight: float = 0.2, size: int = 7) -> NgramMixture:
    return dataclasses.replace(mixture, cache_weight=weight, cache_size=size)


@pytest.mark.parametrize("size", [1, 3, 10, 1000])
def test_the_windows_counts_are_the_slow_ones(size):
    rng = np.random.default_rng(size)
    sentences = random_sentences(rng, 30)
    before = [START, 5, 6, END, START, 5]
    for prior in ((), before):
        fast = cache_token_probs(sentences, size, prior)
        for ours, theirs in zip(fast, slow_cache_probs(sentences, size, prior)):
            assert np.isnan(ours).tolist() == [p is None for p in theirs]
            np.testing.assert_array_equal(np.nan_to_num(ours), [p or 0.0 for p in theirs])
    text = [t for s in sentences for t in s]
    words, shares = window_shares(text, size)
    window = slow_window(text, size)
    assert dict(zip(words.tolist(), shares.tolist())) == {w: window.count(w) / len(window) for w in set(window)}
    assert extended(before[1:3], text, size) == slow_window([*before[1:3], *text], size)


def test_the_mixture_with_a_cache_is_the_formula_and_without_one_unchanged():
    rng = np.random.default_rng(1)
    plain = toy_mixture(14)
    mixture = cached(plain)
    rnn = rng.dirichlet(np.ones(14))
    text = [t for s in random_sentences(rng, 4) for t in s]
    history = [START, 4, 5]
    np.testing.assert_allclose(mixture.next_word_probs(rnn, history, text), slow_mixed(mixture, rnn, history, text),
                               rtol=1e-13)
    assert mixture.next_word_probs(rnn, history, [START]).tobytes() == plain.next_word_probs(rnn, history).tobytes()
    assert plain.next_word_probs(rnn, history, text).tobytes() == plain.next_word_probs(rnn, history).tobytes()
    batch = mixture.next_word_probs_batch(np.stack([rnn, rnn]), [history, history], [text, []])
    assert batch[0].tobytes() == mixture.next_word_probs(rnn, history, text).tobytes()
    assert batch[1].tobytes() == plain.next_word_probs(rnn, history).tobytes()
    texts = [text, [], text[:3], text[5:]]
    windows = CacheWindows.of(texts, mixture.cache_size)  # as the batched decoder keeps them
    batch = mixture.next_word_probs_batch(np.stack([rnn] * 4), [history] * 4, windows)
    for row, recent in enumerate(texts):
        assert batch[row].tobytes() == mixture.next_word_probs(rnn, history, recent).tobytes()
    with pytest.raises(ValueError):
        dataclasses.replace(plain, cache_weight=0.1, cache_size=0)


def test_a_texts_log_probs_run_the_window_across_its_sentences(tiny_loaded_model):
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    mixture = cached(toy_mixture(len(vocab)), 0.15, 9)
    sentences = random_sentences(np.random.default_rng(2), 12, len(vocab))
    scores = score_sentences(model, sentences, batch_size=4, mixture=mixture)
    rnn_alone = score_sentences(model, sentences, batch_size=4)
    text: list[int] = []
    for sentence, ours, rnn_log in zip(sentences, scores, rnn_alone):
        probs, _ = model.forward_propagation(sentence[:-1])
        for t, token in enumerate(sentence[1:]):
            expected = slow_mixed(mixture, probs[t].astype(np.float64), sentence[: t + 1], text)[token]
            assert ours[t] == pytest.approx(np.log(expected), abs=1e-5)
            text.append(token)
        plain = NgramMixture(mixture.ngram, mixture.rnn_weight)
        assert plain.sentence_log_probs(rnn_log, sentence).tobytes() == \
            np.log(0.5 * np.exp(rnn_log) + 0.5 * mixture.ngram.token_probs(sentence)).tobytes()


@pytest.mark.parametrize("sampling", [{}, {"do_sample": False}, {"top_k": 4}], ids=["mixed-draw", "greedy", "top-k"])
def test_the_samplers_window_runs_across_the_sentences_of_a_request(tiny_loaded_model, sampling):
    """Every word's reported log-probability is the slow mixture's, the window holding the prompt
    and every sentence drawn before; the batched decoder gives the same words."""
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    mixture = cached(toy_mixture(len(vocab)), 0.3, 6)
    sampler = Sampler(model, vocab, mixture)
    prefix = (vocab.index["the"], 5)
    spec = SequenceSpec(prefix, SamplingParams(max_new_tokens=5, **sampling), seed=4, num_sentences=4)
    words = list(sentence_stream(sampler, spec))
    text, sentence, new = [], [START, *prefix], 0
    for word in words:
        probs, _ = model.forward_propagation(sentence)
        expected = slow_mixed(mixture, probs[-1].astype(np.float64), sentence, [*text, *sentence])[word.word_id]
        assert word.logprob == pytest.approx(np.log(expected), abs=1e-5)
        sentence.append(word.word_id)
        new += 1
        if word.word_id == END or new == 5:
            text, sentence, new = [*text, *sentence], [START], 0
    assert sentence == [START] and len(slow_window(text, 1000)) > 6  # four sentences, the window full
    specs = [dataclasses.replace(spec, seed=seed) for seed in range(8)]
    batched = run_batched(BatchSampler(sampler), specs, join_every=1)
    for one, words in zip(specs, batched):
        alone = list(sentence_stream(sampler, one))
        assert [w.word_id for w in words] == [w.word_id for w in alone]
        np.testing.assert_allclose([w.logprob for w in words], [w.logprob for w in alone], rtol=0, atol=1e-5)


@pytest.mark.parametrize("layer", ["full", "class"])
def test_the_batched_draw_with_a_cache_is_the_dense_draw(layer):
    rng = np.random.default_rng(7)
    sentences = random_sentences(rng, 2000, 300)
    mixture = NgramMixture(KneserNey.fit(sentences, 3, 300).table(), 0.4, 0.1, 20)
    counts = np.bincount(np.concatenate(sentences), minlength=300)
    classes = WordClasses.from_counts(counts, 17) if layer == "class" else None
    model = GRU(300, 16, seed=3, classes=classes).for_generation()
    drawer = MixtureDrawer(model.output, mixture, (0, START, END))
    rows = 400
    histories = [[START, *rng.integers(3, 300, int(rng.integers(0, 4))).tolist()] for _ in range(rows)]
    recents = [rng.integers(0, 300, int(rng.integers(0, 30))).tolist() for _ in range(rows)]
    hidden = rng.standard_normal((rows, 16)).astype(np.float32)
    uniforms = rng.random(rows)
    for banned in ([0, START], [0, START, END], [0, START, 5, 64, 299]):
        banned_rows = [banned] * rows
        words, logprobs = drawer.draw(hidden, histories, uniforms, banned_rows, recents)
        for row in range(rows):
            word, logprob = reference_draw(model.output, mixture, hidden[row : row + 1], histories[row],
                                           float(uniforms[row]), banned, recents[row])
            assert words[row] == word
            assert logprobs[row] == pytest.approx(logprob, abs=1e-6)
        assert not np.isin(words, banned).any()
    no_cache = NgramMixture(mixture.ngram, 0.4)
    plain = MixtureDrawer(model.output, no_cache, (0, START, END)).draw(hidden, histories, uniforms,
                                                                       [[0, START]] * rows)
    again = MixtureDrawer(model.output, no_cache, (0, START, END)).draw(hidden, histories, uniforms,
                                                                       [[0, START]] * rows, recents)
    assert plain[0].tolist() == again[0].tolist() and plain[1].tobytes() == again[1].tobytes()
    # a cache whose windows are all empty (nothing yet, or only SENTENCE_START) weighs nothing
    empty = drawer.draw(hidden, histories, uniforms, [[0, START]] * rows, [[]] * (rows - 1) + [[START]])
    assert plain[0].tolist() == empty[0].tolist() and plain[1].tobytes() == empty[1].tobytes()


@pytest.mark.parametrize("join_every", [1, 50], ids=["together", "one-at-a-time"])
def test_the_default_kind_of_model_keeps_its_window_across_a_long_prompt_and_sentences(tiny_loaded_model, join_every):
    """A GRU with the class layer, the n-gram model and a cache (the default command's kind of
    model), prompts longer than the window: the batched decoder gives the Sampler's words, in a
    crowd and with each sequence alone (one row, ``MixtureDrawer._one_row``)."""
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    classed = class_layer_twin(model)
    model = gru_twin(classed, classed.output.classes)
    sampler = Sampler(model, vocab, cached(toy_mixture(len(vocab)), 0.3, 4))
    rng = np.random.default_rng(8)
    specs = [SequenceSpec(tuple(int(w) for w in rng.integers(3, len(vocab), int(rng.integers(0, 9)))),
                          SamplingParams(max_new_tokens=6), seed=seed, num_sentences=3) for seed in range(10)]
    assert max(len(spec.prefix_ids) for spec in specs) > 4
    batched = run_batched(BatchSampler(sampler), specs, join_every=join_every)
    for spec, words in zip(specs, batched):
        alone = list(sentence_stream(sampler, spec))
        assert [w.word_id for w in words] == [w.word_id for w in alone]
        np.testing.assert_allclose([w.logprob for w in words], [w.logprob for w in alone], rtol=0, atol=1e-5)


def test_the_model_file_keeps_the_cache_and_an_old_one_has_none():
    mixture = cached(toy_mixture(14), 0.02, 300)
    again = NgramMixture.from_payload(mixture.to_payload())
    assert (again.cache_weight, again.cache_size) == (0.02, 300)
    old = mixture.to_payload()
    del old["cache_weight"], old["cache_size"]
    assert NgramMixture.from_payload(old).cache_weight == 0.0


def test_development_contexts_are_the_text_before_each_held_sentence():
    train = random_sentences(np.random.default_rng(3), 400)
    _, development = development_split(train)
    contexts = development_contexts(train, 25)
    assert len(contexts) == len(development)
    held = [i for i in range(len(train)) if any(train[i] == d.tolist() for d in development)]
    for index, context in zip(range(49, len(train), 50), contexts):
        assert index in held
        assert context.tolist() == slow_window([t for s in train[:index] for t in s], 25)


def test_the_chosen_cache_is_the_best_on_the_grid():
    """A development text that repeats its words gets a cache; the chosen pair scores at least as
    well as every pair of the grid (by the slow counts); tokens the mixture already predicts
    perfectly get none."""
    rng = np.random.default_rng(4)
    development = [[START, *rng.choice([5, 6, 7], 4).tolist(), END] for _ in range(20)]
    contexts = [[5, 6, END] * 3 for _ in development]
    mixed = np.full(sum(len(s) - 1 for s in development), 0.05)
    weight, size, score = choose_cache(mixed, development, contexts)
    assert weight > 0 and size in CACHE_SIZES
    for n in CACHE_SIZES[:2]:
        probs = [p for s, c in zip(development, contexts) for p in slow_cache_probs([s], n, c)[0]]
        for c in CACHE_WEIGHTS[::5]:
            other = sum(np.log((1 - c) * 0.05 + c * p) for p in probs)
            assert score >= other - 1e-9
    assert choose_cache(np.ones(mixed.size), development, contexts)[:2] == (0.0, 0)


def test_the_windows_of_many_rows_share_out_as_each_rows_own():
    """``CacheWindows.shares`` of many rows at once is ``window_shares`` row by row: the same
    words in the same order and the same shares, bit for bit, whatever the other rows hold;
    empty, partly filled and full windows, texts shorter and longer than the window."""
    rng = np.random.default_rng(5)
    for size in (1, 3, 20):
        recents = [rng.integers(0, 9, int(rng.integers(0, 3 * size))).tolist() for _ in range(60)]
        recents[0] = []
        recents[1] = [START] * 4  # only SENTENCE_START: nothing to count
        windows = CacheWindows.of(recents, size)
        rows, words, shares = windows.shares()
        for row, recent in enumerate(recents):
            expected_words, expected_shares = window_shares(recent, size)
            assert words[rows == row].tolist() == expected_words.tolist()
            assert shares[rows == row].tobytes() == expected_shares.tobytes()
            assert sorted(windows[row]) == sorted(slow_window(recent, size))
        assert windows.lengths().tolist() == [len(slow_window(r, size)) for r in recents]
        given = windows.shares(windows.lengths())  # with the lengths already known
        assert all(got.tobytes() == want.tobytes() for got, want in zip(given, (rows, words, shares)))
        shuffled = CacheWindows(rng.permuted(windows.tokens, axis=1))  # a ring's order is not the text's
        for got, want in zip(shuffled.shares(), (rows, words, shares)):
            assert got.tobytes() == want.tobytes()
