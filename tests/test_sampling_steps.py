"""Sampler.iter_sentence (word-by-word sampling), the repetition penalty and top-n alternatives."""
from __future__ import annotations

import numpy as np
import pytest

from models.sampling import Sampler, SamplingParams, penalize_repetition, top_alternatives


@pytest.fixture(scope="module")
def sampler(tiny_loaded_model) -> Sampler:
    return Sampler(tiny_loaded_model.model, tiny_loaded_model.vocab)


def sentence_ids(sampler: Sampler, prefix: list[int], params: SamplingParams, seed: int, **options) -> list[int]:
    return [w.word_id for w in sampler.iter_sentence(prefix, params, np.random.default_rng(seed), **options)]


@pytest.mark.parametrize("params", [
    SamplingParams(max_new_tokens=30),
    SamplingParams(max_new_tokens=8, min_words=8),
    SamplingParams(max_new_tokens=30, temperature=0.7, top_k=5, top_p=0.9),
    SamplingParams(max_new_tokens=30, do_sample=False),
])
def test_iter_sentence_draws_what_sample_sentence_draws(sampler, params):
    for seed in range(5):
        whole = sampler.sample_sentence([3, 4], params, np.random.default_rng(seed))
        steps = list(sampler.iter_sentence([3, 4], params, np.random.default_rng(seed)))
        ended = steps[-1].word_id == sampler.vocab.end_id
        words = steps[:-1] if ended else steps
        assert [w.word_id for w in words] == whole.new_ids
        assert [w.logprob for w in words] == whole.logprobs
        assert whole.finish_reason == ("eos_token" if ended else "length")
        assert all(w.alternatives == () for w in steps)


def test_iter_sentence_yields_each_word_before_drawing_the_next(sampler):
    rng = np.random.default_rng(0)
    steps = sampler.iter_sentence([], SamplingParams(max_new_tokens=20, min_words=20), rng)
    next(steps)
    state = rng.bit_generator.state
    next(steps)
    assert rng.bit_generator.state != state  # the second draw happened only when asked for


def test_a_strong_repetition_penalty_stops_greedy_repeats(sampler):
    params = SamplingParams(max_new_tokens=25, min_words=25, do_sample=False)
    plain = sentence_ids(sampler, [], params, 0)
    penalized = sentence_ids(sampler, [], params, 0, repetition_penalty=10.0)
    assert len(set(plain)) < len(plain)  # the untrained model's greedy path loops
    assert len(set(penalized)) == len(penalized) == 25


def test_the_penalty_counts_the_starting_words(sampler):
    params = SamplingParams(max_new_tokens=20, min_words=20, do_sample=False)
    prefix = sentence_ids(sampler, [], params, 0)[:3]
    continued = sentence_ids(sampler, prefix, params, 0, repetition_penalty=10.0)
    assert not set(prefix) & set(continued[:10])


def test_a_penalty_below_one_favours_repeats(sampler):
    def repeats(penalty: float) -> int:
        params = SamplingParams(max_new_tokens=30, min_words=30)
        sentences = [sentence_ids(sampler, [], params, seed, repetition_penalty=penalty) for seed in range(10)]
        return sum(len(ids) - len(set(ids)) for ids in sentences)

    assert repeats(0.2) > repeats(1.0) > repeats(5.0)


def test_penalize_repetition():
    logp = np.log(np.array([0.5, 0.25, 0.125, 0.125]))
    assert penalize_repetition(logp, [], 2.0) is logp
    assert penalize_repetition(logp, [1], 1.0) is logp
    penalized = penalize_repetition(logp, [1, 3, 1], 2.0)
    np.testing.assert_allclose(penalized, [logp[0], 2 * logp[1], logp[2], 2 * logp[3]])
    assert penalized is not logp and logp[1] == np.log(0.25)  # the input is left alone


def test_top_alternatives():
    logp = np.log(np.array([0.1, 0.4, 0.05, 0.3, 0.15]))
    assert top_alternatives(logp, 0) == ()
    assert [i for i, _ in top_alternatives(logp, 3)] == [1, 3, 4]
    assert top_alternatives(logp, 2)[0] == (1, pytest.approx(np.log(0.4)))
    assert len(top_alternatives(logp, 99)) == 5


def test_iter_sentence_reports_the_alternatives_of_every_step(sampler):
    steps = list(sampler.iter_sentence([], SamplingParams(max_new_tokens=10), np.random.default_rng(3), top_n=4))
    for step in steps:
        assert len(step.alternatives) == 4
        logprobs = [lp for _, lp in step.alternatives]
        assert logprobs == sorted(logprobs, reverse=True)
        assert step.logprob <= logprobs[0]
