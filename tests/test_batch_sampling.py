"""The batched decoder (models/batch_sampling.py) against the single-sequence Sampler: for every
sampling parameter, both cells, both output layers, with and without the n-gram model, each
sequence gets the Sampler's words whatever else is in the batch; its vectorised draw equals the
Sampler's draw; and its samples follow the model's distribution."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from models.batch_sampling import MODE, MODES, TAKEN, BatchSampler, SequenceSpec, sentence_stream
from models.draws import DRAW_BLOCK
from models.gru import GRU
from models.mixture import NgramMixture
from models.sampling import Sampler, SamplingParams
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from models.word_classes import WordClasses
from tests.test_generation import class_layer_twin, toy_mixture
from training.kneser_ney import KneserNey

PARAMETERS = [
    ({}, 1.0, 0),
    ({"temperature": 0.6}, 1.0, 0),
    ({"temperature": 1.7}, 1.0, 0),
    ({"top_k": 3}, 1.0, 0),
    ({"top_p": 0.7}, 1.0, 0),
    ({"top_k": 10, "top_p": 0.9, "temperature": 0.8}, 1.0, 0),
    ({"do_sample": False}, 1.0, 0),
    ({}, 1.6, 0),  # repetition penalty
    ({}, 1.0, 3),  # top_n alternatives
    ({"min_words": 6}, 1.0, 0),
    ({"typical_p": 0.8}, 1.0, 0),
    ({"frequency_penalty": 0.7, "presence_penalty": -0.5}, 1.0, 0),
    ({"logit_bias": ((5, 2.0), (7, -100.0))}, 1.0, 0),
]


def gru_twin(model, classes=None):
    return GRU(model.vocab_size, model.hidden_size, seed=2, classes=classes)


@pytest.fixture(scope="module", params=list(itertools.product(["rnn", "gru"], ["full", "class"], [False, True])),
                ids=lambda p: "-".join([p[0], p[1], "ngram" if p[2] else "alone"]))
def sampler(request, tiny_loaded_model) -> Sampler:
    cell, layer, ngram = request.param
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    if layer == "class":
        model = class_layer_twin(model)
    if cell == "gru":
        model = gru_twin(model, model.output.classes if layer == "class" else None)
    return Sampler(model, vocab, toy_mixture(len(vocab)) if ngram else None)


def specs_for(vocab_size: int, count: int, seed: int) -> list[SequenceSpec]:
    """Sequences of every parameter set, with and without a prefix, of one to three sentences."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(count):
        sampling, penalty, top_n = PARAMETERS[i % len(PARAMETERS)]
        prefix = tuple(int(w) for w in rng.integers(3, vocab_size, int(rng.integers(0, 4))))
        params = SamplingParams(max_new_tokens=int(rng.integers(1, 25)), **sampling)
        specs.append(SequenceSpec(prefix, params, seed=int(rng.integers(0, 2**62)), repetition_penalty=penalty,
                                  top_n=top_n, num_sentences=1 + i % 3))
    return specs


def run_batched(decoder: BatchSampler, specs: list[SequenceSpec], join_every: int = 2) -> list[list]:
    """Every spec through ``decoder``, joining ``join_every`` steps apart (so batches change as
    sequences come and go); each sequence's words in order."""
    words: dict[int, list] = {i: [] for i in range(len(specs))}
    waiting = list(range(len(specs)))
    step = 0
    while waiting or len(decoder):
        if waiting and step % join_every == 0:
            index = waiting.pop(0)
            decoder.add(index, specs[index])
        for key, word in decoder.step():
            if word is not None:
                words[key].append(word)
        step += 1
    return [words[i] for i in range(len(specs))]


def assert_same_words(batched: list, alone: list) -> None:
    assert [w.word_id for w in batched] == [w.word_id for w in alone]
    assert [[a for a, _ in w.alternatives] for w in batched] == [[a for a, _ in w.alternatives] for w in alone]
    np.testing.assert_allclose([w.logprob for w in batched], [w.logprob for w in alone], rtol=0, atol=1e-5)


def test_every_parameter_gives_the_samplers_words(sampler):
    specs = specs_for(sampler.model.vocab_size, 40, seed=11)
    batched = run_batched(BatchSampler(sampler), specs)
    for spec, words in zip(specs, batched):
        assert_same_words(words, list(sentence_stream(sampler, spec)))


@pytest.mark.parametrize("layer", ["full", "class"])
def test_every_parameter_with_a_cache_gives_the_samplers_words(tiny_loaded_model, layer):
    """The cache's window crosses sentences and prompts: the scored draws read it from the
    decoder's rows, the Sampler from the text so far; alone and amid the others, the same words."""
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    if layer == "class":
        model = class_layer_twin(model)
    model = gru_twin(model, model.output.classes if layer == "class" else None)
    mixture = dataclasses.replace(toy_mixture(len(vocab)), cache_weight=0.3, cache_size=6)
    sampler = Sampler(model, vocab, mixture)
    specs = specs_for(model.vocab_size, 40, seed=13)
    for crowd in (1, 40):
        for spec, words in zip(specs[:crowd], run_batched(BatchSampler(sampler), specs[:crowd], join_every=1)):
            assert_same_words(words, list(sentence_stream(sampler, spec)))


def test_a_seeded_sequence_gets_the_same_numbers_whatever_else_is_in_the_batch(sampler):
    """Alone, amid 5 others or amid 30, joining early or late: the same words (the batch's products
    and draws run row by row below FEW_ROWS rows, on the whole batch above: see models.row_stable)."""
    specs = specs_for(sampler.model.vocab_size, 31, seed=12)
    alone = run_batched(BatchSampler(sampler), specs[:1])[0]
    for crowd, join_every in ((6, 1), (31, 1), (31, 3)):
        together = run_batched(BatchSampler(sampler), specs[1:crowd] + specs[:1], join_every)[-1]
        assert_same_words(together, alone)


def test_plain_sampling_with_the_ngram_model_is_drawn_by_blocks_for_either_layer(sampler):
    """At temperature 1 with nothing else asked, the mixture is drawn by blocks (``mixed``), by
    the full softmax's blocks of words and by the class softmax's classes alike."""
    decoder = BatchSampler(sampler)
    for key, sampling in enumerate([SamplingParams(), SamplingParams(temperature=0.6), SamplingParams(top_k=3)]):
        decoder.add(key, SequenceSpec((), sampling, seed=key))
    modes = [MODES[code] for code in decoder._rows[:, MODE].tolist()]
    if sampler.mixture is None:
        assert modes[0] == "plain"
    else:
        assert modes == ["mixed", "scored", "scored"]


def test_a_wide_class_model_gives_the_samplers_words_alone_and_in_a_crowd():
    """A 700-word class model whose rarest words share a class of 269 (drawn in chunks of
    DRAW_BLOCK words) with a 4-gram model: the batched decoder's words are the dense Sampler's,
    and a seeded sequence's the same alone, amid 5 others or amid 30."""
    rng = np.random.default_rng(8)
    size = 700
    ranks = np.arange(1, size - 2)
    zipf = 1.0 / ranks / (1.0 / ranks).sum()
    sentences = [[1, *(3 + rng.choice(ranks.size, size=int(rng.integers(2, 15)), p=zipf)).tolist(), 2]
                 for _ in range(3000)]
    classes = WordClasses.from_counts(np.bincount(np.concatenate(sentences), minlength=size), 16)
    assert np.diff(classes.starts).max() > 4 * DRAW_BLOCK
    model = GRU(size, 16, seed=4, classes=classes)
    model.output.V_class[np.argmax(np.diff(classes.starts))] *= 3.0  # the wide class now and then likelier
    vocab = Vocabulary([*SPECIAL_TOKENS, *(f"w{i}" for i in range(size - 3))])
    sampler = Sampler(model, vocab, NgramMixture(KneserNey.fit(sentences, 4, size).table(), rnn_weight=0.4))
    specs = [SequenceSpec((3 + seed % 5,) * (seed % 3), SamplingParams(max_new_tokens=15, min_words=seed % 4),
                          seed, num_sentences=1 + seed % 2) for seed in range(31)]
    alone = [list(sentence_stream(sampler, spec)) for spec in specs]
    drawn = {w.word_id for words in alone for w in words}
    assert drawn & set(range(int(classes.starts[-2]) + DRAW_BLOCK, size))  # past the widest class's first chunk
    for crowd in (1, 6, 31):
        together = run_batched(BatchSampler(sampler), specs[1:crowd] + specs[:1], join_every=1)
        for words, expected in zip(together, alone[1:crowd] + alone[:1]):
            assert_same_words(words, expected)


def test_a_five_gram_mixture_reads_four_words_back_in_small_and_large_batches(tiny_loaded_model):
    """Histories longer than a trigram's, as lists (below FEW_ROWS rows) and as arrays (from
    there on): alone and amid 30 others, the Sampler's words. The model is fitted on runs of
    sentence openings, so it has contexts reaching back past SENTENCE_START: a history that kept
    the sentence before would be read differently."""
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    rng = np.random.default_rng(4)
    openings = [[1, *rng.integers(3, 12, size=int(rng.integers(1, 9))).tolist()] for _ in range(600)]
    sentences = [[*sum(openings[i : i + 3], []), 2] for i in range(0, 600, 3)]
    sampler = Sampler(model, vocab, NgramMixture(KneserNey.fit(sentences, 5, len(vocab)).table(), rnn_weight=0.5))
    specs = [SequenceSpec(tuple(range(3, 3 + seed % 3)), SamplingParams(max_new_tokens=12), seed, num_sentences=2)
             for seed in range(31)]
    for crowd in (1, 31):
        for spec, words in zip(specs[:crowd], run_batched(BatchSampler(sampler), specs[:crowd], join_every=1)):
            assert_same_words(words, list(sentence_stream(sampler, spec)))


def test_a_rows_integers_are_the_same_whether_it_draws_alone_or_amid_others(tiny_loaded_model):
    """One row drawing is recorded by a few scalar writes, several by vectorised ones
    (``BatchSampler._record``): a sequence's row (its next word, counters and cache window, which
    wraps around) is the same after every step alone as amid others that join with it, some
    reading a prompt while it draws."""
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    mixture = dataclasses.replace(toy_mixture(len(vocab)), cache_weight=0.3, cache_size=5)
    sampler = Sampler(model, vocab, mixture)
    params = SamplingParams(max_new_tokens=7)
    alone, crowd = BatchSampler(sampler), BatchSampler(sampler)
    watched = SequenceSpec((4, 5), params, seed=3, num_sentences=5)
    alone.add("watched", watched)
    crowd.add("watched", watched)
    for seed in range(5):
        crowd.add(seed, SequenceSpec((6,) * seed, params, seed, num_sentences=2))
    taken = 0
    while len(alone):
        for decoder in (alone, crowd):
            decoder.step()
        if len(alone):
            row = crowd._keys.index("watched")
            assert alone._rows[0].tolist() == crowd._rows[row].tolist()
            taken = int(alone._rows[0, TAKEN])
    assert taken > 2 * mixture.cache_size  # the window wrapped around


def test_batched_draws_follow_the_model_distribution(tiny_loaded_model):
    """The first word after "the", drawn 8,000 times in batches of 16 from the RNN interpolated
    with its n-gram model: each word's frequency within 5 standard errors of its probability
    under the mixture, and each reported log-probability that probability's."""
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    mixture = toy_mixture(len(vocab))
    decoder = BatchSampler(Sampler(model, vocab, mixture))
    word = vocab.index["the"]
    o, _ = model.forward_propagation([vocab.start_id, word])
    mixed = 0.5 * o[1] + 0.5 * mixture.ngram.next_word_probs([vocab.start_id, word])
    expected = mixed.copy()
    expected[[vocab.unknown_id, vocab.start_id]] = 0.0
    expected /= expected.sum()
    draws, counts = 8_000, np.zeros(len(vocab))
    params = SamplingParams(max_new_tokens=1)
    for first in range(0, draws, 16):
        for seed in range(first, first + 16):
            decoder.add(seed, SequenceSpec((word,), params, seed))
        while len(decoder):
            for _, drawn in decoder.step():
                if drawn is not None:
                    counts[drawn.word_id] += 1
                    assert drawn.logprob == pytest.approx(np.log(mixed[drawn.word_id]), rel=1e-4)
    assert counts[[vocab.unknown_id, vocab.start_id]].sum() == 0
    stderr = np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(counts / draws - expected) <= 5 * stderr + 1e-9)
