"""The generation layer on the tiny model, without HTTP."""
from __future__ import annotations

import os
import select
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

import numpy as np

from models.rnn import RNN
from models.mixture import NgramMixture
from models.draws import draw_index
from models.sampling import Sampler, SamplingParams
from models.vocabulary import SPECIAL_TOKENS
from models.word_classes import WordClasses
from training.kneser_ney import KneserNey
from service.generation import MAX_SEED, GenerationRequest, GenerationResult, TextGenerator, fresh_seed


def class_layer_twin(model: RNN, n_classes: int = 8) -> RNN:
    """A class-based model with the same vocabulary and hidden size (equal-count classes)."""
    classes = WordClasses.from_counts([0] * model.vocab_size, n_classes)
    twin = RNN(model.vocab_size, model.hidden_size, seed=1, classes=classes)
    # untrained, SENTENCE_END's class of one would outweigh every word of a shared class; make it
    # as rare as in text, so sentences run on as with the full-softmax model
    twin.output.c_class[classes.word_class[2]] = -3.0
    return twin


@pytest.fixture(scope="module", params=["full", "class"])
def generator(request, tiny_loaded_model) -> TextGenerator:
    """Every generation test runs with both output layers."""
    model = tiny_loaded_model.model
    if request.param == "class":
        model = class_layer_twin(model)
    return TextGenerator(model, tiny_loaded_model.vocab)


def make_request(
    inputs: str = "", num_sentences: int = 1, seed: int | None = 0, **sampling: object
) -> GenerationRequest:
    return GenerationRequest(inputs, SamplingParams(**sampling), num_sentences, seed)


def new_words(result: GenerationResult) -> list[list[str]]:
    return [s.new_words for s in result.sentences]


def test_same_seed_gives_the_same_output(generator):
    request = make_request("the cat", num_sentences=3, seed=1234, max_new_tokens=40)
    first, second = generator.generate(request), generator.generate(request)
    assert first == second
    assert first.generated_tokens > 0


def test_different_seeds_give_different_output(generator):
    # 30 forced words from 32 nearly equally likely ones: equal by chance is impossible in practice
    texts = {
        generator.generate(make_request(seed=seed, max_new_tokens=30, min_words=30)).full_text
        for seed in range(5)
    }
    assert len(texts) == 5


def test_no_seed_draws_one_and_reports_it(generator):
    request = make_request(seed=None, max_new_tokens=30, min_words=30)
    first = generator.generate(request)
    second = generator.generate(request)
    assert 0 <= first.seed <= MAX_SEED
    assert first.seed != second.seed
    assert generator.generate(replace(request, seed=first.seed)) == first


def test_greedy_is_deterministic_whatever_the_seed(generator):
    results = [
        generator.generate(make_request("a dog", seed=seed, do_sample=False, max_new_tokens=20))
        for seed in (1, 2, 3)
    ]
    assert new_words(results[0]) == new_words(results[1]) == new_words(results[2])
    assert results[0].generated_tokens > 0


def test_min_words_is_respected(generator):
    def lengths(min_words: int) -> list[int]:
        request = make_request(num_sentences=20, seed=7, max_new_tokens=60, min_words=min_words)
        return [len(s.words) for s in generator.generate(request).sentences]

    assert min(lengths(0)) < 12  # without the floor some sentences are shorter...
    assert min(lengths(12)) >= 12  # ...with it, none is


def test_min_words_counts_the_starting_words(generator):
    request = make_request("the big red dog", seed=0, max_new_tokens=40, min_words=10)
    lengths = [len(generator.generate(replace(request, seed=s)).sentences[0].words) for s in range(60)]
    assert min(lengths) >= 10
    # 4 starting words + 6 new ones may end the sentence; not counting them would force 14
    assert min(lengths) < 14


def test_never_emits_special_tokens(generator):
    request = make_request("zyzzyva", num_sentences=20, seed=5, temperature=100.0, max_new_tokens=50)
    result = generator.generate(request)
    emitted = [w for words in new_words(result) for w in words]
    assert len(emitted) > 200
    assert not set(emitted) & set(SPECIAL_TOKENS)
    assert not any(special in result.full_text for special in SPECIAL_TOKENS)


def test_max_new_tokens_caps_each_sentence(generator):
    request = make_request("the cat", num_sentences=4, seed=2, max_new_tokens=3, min_words=5)
    result = generator.generate(request)
    assert [len(words) for words in new_words(result)] == [3, 3, 3, 3]
    assert all(s.finish_reason == "length" for s in result.sentences)
    assert result.finish_reason == "length"
    assert result.generated_tokens == 12


def test_finish_reason_is_length_if_any_sentence_was_cut(generator):
    seen = set()
    for seed in range(30):
        result = generator.generate(make_request(num_sentences=3, seed=seed, max_new_tokens=25))
        reasons = [s.finish_reason for s in result.sentences]
        assert result.finish_reason == ("length" if "length" in reasons else "eos_token")
        assert all(len(s.new_words) < 25 for s in result.sentences if s.finish_reason == "eos_token")
        seen.add(result.finish_reason)
    assert seen == {"length", "eos_token"}  # both cases were exercised


def test_first_sentence_starts_with_the_inputs(generator):
    result = generator.generate(make_request("The cat sat", num_sentences=3, seed=11, max_new_tokens=10))
    first, *others = result.sentences
    assert first.prefix_words == ["the", "cat", "sat"]
    assert first.text.startswith("The cat sat")
    assert all(s.prefix_words == [] for s in others)


def test_unknown_input_words_are_reported_and_kept_in_the_text(generator):
    result = generator.generate(make_request("the zyzzyva and the qwxz zyzzyva", seed=4, max_new_tokens=5))
    assert result.unknown_words == ["zyzzyva", "qwxz"]
    assert result.sentences[0].text.startswith("The zyzzyva and the qwxz zyzzyva")
    assert "UNKNOWN_TOKEN" not in result.full_text


def test_unknown_input_words_are_read_as_unknown_token(generator):
    # two different unknown words are the same input to the model
    a = generator.generate(make_request("the zyzzyva", seed=9, max_new_tokens=15, min_words=10))
    b = generator.generate(make_request("the qwxz", seed=9, max_new_tokens=15, min_words=10))
    c = generator.generate(make_request("the cat", seed=9, max_new_tokens=15, min_words=10))
    assert new_words(a) == new_words(b)
    assert a.sentences[0].logprobs == b.sentences[0].logprobs
    assert a.sentences[0].logprobs != c.sentences[0].logprobs


@pytest.mark.parametrize(
    "cut", [{"top_k": 1}, {"top_p": 1e-9}, {"temperature": 1e-320}, {"temperature": 1e-200}]
)
def test_extreme_top_k_top_p_or_temperature_equals_greedy(generator, cut):
    greedy = generator.generate(make_request("she", do_sample=False, max_new_tokens=30, min_words=30))
    for seed in range(3):
        sampled = generator.generate(make_request("she", seed=seed, max_new_tokens=30, min_words=30, **cut))
        assert new_words(sampled) == new_words(greedy)


@pytest.mark.parametrize("count", [1, 2, 7])
def test_num_sentences(generator, count):
    result = generator.generate(make_request(num_sentences=count, seed=1, max_new_tokens=5, min_words=1))
    assert len(result.sentences) == len(result.texts) == count
    assert result.full_text == " ".join(result.texts)


def test_logprobs_match_words(generator):
    result = generator.generate(make_request(num_sentences=2, seed=8, max_new_tokens=20))
    for sentence in result.sentences:
        assert len(sentence.logprobs) == len(sentence.new_words)
        assert all(lp < 0.0 for lp in sentence.logprobs)


def test_concurrent_requests_do_not_disturb_each_other(generator):
    # the Sampler keeps a scratch buffer between steps; threads of one worker share it
    requests = [
        make_request(seed=seed, num_sentences=5, max_new_tokens=40, min_words=40) for seed in range(8)
    ]
    expected = [generator.generate(request) for request in requests]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(generator.generate, requests)) == expected


def toy_mixture(vocab_size: int) -> NgramMixture:
    """A trigram Kneser-Ney model of random sentences over the tiny vocabulary, weight 0.5."""
    rng = np.random.default_rng(3)
    sentences = [[1, *rng.integers(3, 12, size=int(rng.integers(1, 6))).tolist(), 2] for _ in range(300)]
    return NgramMixture(KneserNey.fit(sentences, 3, vocab_size).table(), rnn_weight=0.5)


@pytest.mark.parametrize("variant", ["full", "class", "mixture"])
def test_plain_draws_follow_the_model_distribution(tiny_loaded_model, variant):
    """Sampling draws each word with the model's own probability (the short paths, and the RNN
    interpolated with an n-gram model), and reports that probability."""
    vocab = tiny_loaded_model.vocab
    model = class_layer_twin(tiny_loaded_model.model) if variant == "class" else tiny_loaded_model.model
    mixture = toy_mixture(len(vocab)) if variant == "mixture" else None
    sampler = Sampler(model, vocab, mixture)
    word = vocab.index["the"]
    o, _ = model.forward_propagation([vocab.start_id, word])
    if mixture is not None:
        o[1] = 0.5 * o[1] + 0.5 * mixture.ngram.next_word_probs([vocab.start_id, word])
    allowed = np.ones(len(vocab), dtype=bool)
    allowed[[vocab.unknown_id, vocab.start_id]] = False
    expected = np.where(allowed, o[1], 0.0)
    expected /= expected.sum()
    rng = np.random.default_rng(5)
    params = SamplingParams(max_new_tokens=1)
    draws = 8_000
    counts = np.zeros(len(vocab))
    for _ in range(draws):
        sample = sampler.sample_sentence([word], params, rng)
        choice = sample.new_ids[0] if sample.new_ids else vocab.end_id
        counts[choice] += 1
        if sample.new_ids:
            assert sample.logprobs[0] == pytest.approx(np.log(o[1][choice]), rel=1e-4)
    assert counts[[vocab.unknown_id, vocab.start_id]].sum() == 0
    # every word's frequency within 5 standard errors of its probability
    stderr = np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(counts / draws - expected) <= 5 * stderr + 1e-9)


def test_two_level_draw_follows_the_weights_and_never_picks_a_zero():
    rng = np.random.default_rng(0)
    weights = rng.random(1000) ** 4
    weights[::7] = 0.0  # zeros everywhere, block ends and the last word included
    weights[-1] = 0.0
    expected = weights / weights.sum()
    draws = 40_000
    counts = np.bincount([draw_index(weights, rng) for _ in range(draws)], minlength=1000)
    assert counts[weights == 0].sum() == 0
    # per block of 50 words: within 5 standard errors
    block_expected = expected.reshape(20, 50).sum(axis=1)
    block_seen = counts.reshape(20, 50).sum(axis=1) / draws
    stderr = np.sqrt(block_expected * (1 - block_expected) / draws)
    assert np.all(np.abs(block_seen - block_expected) <= 5 * stderr)


FORK_TIMEOUT_SECONDS = 10


def test_fresh_seeds_are_distinct_in_range_and_not_shared_by_forked_workers():
    seeds = [fresh_seed() for _ in range(3000)]  # several refills of the pool
    assert len(set(seeds)) == len(seeds) and all(0 <= s <= MAX_SEED for s in seeds)
    assert max(seeds).bit_length() == 63  # the whole range is drawn from (fails with odds 2**-3000)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a worker forked with seeds left in the pool must not draw the master's next one
        try:
            os.write(write, str(fresh_seed()).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], FORK_TIMEOUT_SECONDS)
        if not ready:  # a hung child must not hang the suite
            os.kill(child, signal.SIGKILL)
            pytest.fail(f"the forked child wrote no seed in {FORK_TIMEOUT_SECONDS} s")
        childs_seed = os.read(read, 64)
    finally:
        os.close(read)
        os.waitpid(child, 0)
    assert int(childs_seed) != fresh_seed()
