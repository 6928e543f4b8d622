"""The score transforms clients ask for (models/logits_processors.py): each against a slow
reference written for clarity, on one sequence and on a batch; the Sampler's draws with them
against the distribution the reference gives; TGI's do_sample rule."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.logits_processors import (
    add_logit_bias, bias_vector, penalize_frequency_presence, tgi_samples, typical_filter, word_counts,
)
from models.sampling import Sampler, SamplingParams


# ------------------------------------------------------------------ slow references, for clarity
def reference_penalties(scores: list[float], generated: list[int], frequency: float, presence: float) -> list[float]:
    """OpenAI: mu[j] - c[j] * frequency - (c[j] > 0) * presence, c[j] = times j was generated."""
    out = []
    for word, score in enumerate(scores):
        count = generated.count(word)
        out.append(score - count * frequency - (presence if count > 0 else 0.0))
    return out


def reference_bias(scores: list[float], bias: dict[int, float]) -> list[float]:
    return [score + bias.get(word, 0.0) for word, score in enumerate(scores)]


def reference_typical(probs: list[float], mass: float) -> list[float]:
    """Sort the words by how far their surprise is from the entropy; keep them in that order until
    their probabilities reach ``mass``, and every word as close as the last one kept."""
    entropy = -sum(p * math.log(p) for p in probs if p > 0)
    distance = {w: abs(-math.log(p) - entropy) for w, p in enumerate(probs) if p > 0}
    kept, total = [], 0.0
    for word in sorted(distance, key=lambda w: distance[w]):
        kept.append(word)
        total += probs[word]
        if total >= mass:
            break
    limit = distance[kept[-1]]
    kept_probs = [p if p > 0 and distance[w] <= limit else 0.0 for w, p in enumerate(probs)]
    return [p / sum(kept_probs) for p in kept_probs]


def random_distribution(rng: np.random.Generator, size: int, zeros: int = 0) -> np.ndarray:
    probs = rng.random(size) ** 3
    probs[rng.choice(size, zeros, replace=False)] = 0.0
    return probs / probs.sum()


# ------------------------------------------------------------------------- against the references
@pytest.mark.parametrize("frequency, presence", [(0.5, 0.0), (0.0, 1.5), (-1.0, 2.0), (2.0, -2.0)])
def test_penalties_equal_the_reference_for_one_sequence_and_a_batch(frequency, presence):
    rng = np.random.default_rng(1)
    scores = np.log(random_distribution(rng, 40))
    generated = [3, 3, 7, 39, 0, 3]
    expected = reference_penalties(scores.tolist(), generated, frequency, presence)
    got = penalize_frequency_presence(scores, word_counts(generated, 40), frequency, presence)
    assert got.tolist() == pytest.approx(expected, abs=1e-12)
    # a batch: each row with its own words and settings
    others = [5, 5, 5]
    batch = penalize_frequency_presence(np.stack([scores, scores]),
                                        np.stack([word_counts(generated, 40), word_counts(others, 40)]),
                                        np.array([[frequency], [0.25]]), np.array([[presence], [1.0]]))
    assert batch[0].tolist() == pytest.approx(expected, abs=1e-12)
    assert batch[1].tolist() == pytest.approx(reference_penalties(scores.tolist(), others, 0.25, 1.0), abs=1e-12)


def test_logit_bias_equals_the_reference():
    scores = np.log(random_distribution(np.random.default_rng(2), 30))
    bias = {0: -100.0, 4: 2.5, 29: 0.75}
    got = add_logit_bias(scores, bias_vector(bias.items(), 30))
    assert got.tolist() == pytest.approx(reference_bias(scores.tolist(), bias), abs=1e-12)
    both = add_logit_bias(np.stack([scores, scores]), np.stack([bias_vector(bias.items(), 30), np.zeros(30)]))
    assert both[1].tolist() == scores.tolist()


@pytest.mark.parametrize("mass", [0.2, 0.5, 0.9, 0.95, 0.999])
def test_typical_filter_equals_the_reference(mass):
    rng = np.random.default_rng(int(mass * 1000))
    rows = [random_distribution(rng, 50, zeros=z) for z in (0, 10, 45)]
    for row in rows:
        assert typical_filter(row, mass).tolist() == pytest.approx(reference_typical(row.tolist(), mass), abs=1e-12)
    batch = typical_filter(np.stack(rows), mass)
    for got, row in zip(batch, rows):
        assert got.tolist() == pytest.approx(reference_typical(row.tolist(), mass), abs=1e-12)


def test_typical_filter_keeps_ties_and_everything_at_mass_one():
    probs = np.array([0.25, 0.25, 0.25, 0.25])  # every surprise equals the entropy: all tie
    assert typical_filter(probs, 0.1).tolist() == probs.tolist()
    row = random_distribution(np.random.default_rng(4), 20, zeros=3)
    assert typical_filter(row, 1.0).tolist() == pytest.approx(row.tolist())
    # per row settings
    batch = typical_filter(np.stack([row, row]), np.array([[1.0], [0.3]]))
    assert batch[0].tolist() == pytest.approx(row.tolist())
    assert batch[1].tolist() == pytest.approx(reference_typical(row.tolist(), 0.3))


@pytest.mark.parametrize("do_sample, temperature, top_k, top_p, typical_p, samples", [
    (False, 1.0, None, None, None, False),
    (True, 1.0, None, None, None, True),
    (False, 0.7, None, None, None, True),
    (False, 1.0, 5, None, None, True),
    (False, 1.0, None, 0.9, None, True),
    (False, 1.0, None, 1.0, None, False),
    (False, 1.0, None, None, 0.95, True),
    (False, 1.0, None, None, 1.0, False),
])
def test_tgi_do_sample_rule(do_sample, temperature, top_k, top_p, typical_p, samples):
    assert tgi_samples(do_sample, temperature, top_k, top_p, typical_p) is samples


# ------------------------------------------------------------- the Sampler draws with them
@pytest.fixture(scope="module")
def sampler(tiny_loaded_model) -> Sampler:
    return Sampler(tiny_loaded_model.model, tiny_loaded_model.vocab)


def next_word_log_probs(sampler: Sampler, words: list[int]) -> np.ndarray:
    """The model's log-probabilities after SENTENCE_START and ``words`` (float64)."""
    probs, _ = sampler.model.forward_propagation([sampler.vocab.start_id, *words])
    return np.log(probs[-1].astype(np.float64))


def allowed(sampler: Sampler, scores: list[float]) -> np.ndarray:
    """A distribution over the words the Sampler may draw (never UNKNOWN or SENTENCE_START)."""
    v = sampler.vocab
    weights = np.exp(np.array(scores) - max(scores))
    weights[[v.unknown_id, v.start_id]] = 0.0
    return weights / weights.sum()


def assert_draws_follow(counts: np.ndarray, expected: np.ndarray) -> None:
    """Every word's frequency within 5 standard errors of its probability."""
    draws = counts.sum()
    stderr = np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(counts / draws - expected) <= 5 * stderr + 1e-9)


def first_words(sampler: Sampler, prefix: list[int], params: SamplingParams, draws: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    counts = np.zeros(len(sampler.vocab))
    for _ in range(draws):
        counts[next(sampler.iter_sentence(prefix, params, rng)).word_id] += 1
    return counts


def test_sampled_words_follow_the_typical_reference(sampler):
    prefix = [sampler.vocab.index["the"]]
    logp = next_word_log_probs(sampler, prefix)
    expected = np.array(reference_typical(allowed(sampler, logp.tolist()).tolist(), 0.5))
    assert 0 < (expected > 0).sum() < (allowed(sampler, logp.tolist()) > 0).sum()  # it cuts
    counts = first_words(sampler, prefix, SamplingParams(max_new_tokens=1, typical_p=0.5), 4000)
    assert counts[expected == 0].sum() == 0
    assert_draws_follow(counts, expected)


def test_sampled_words_follow_the_logit_bias_reference(sampler):
    prefix = [sampler.vocab.index["the"]]
    bias = {sampler.vocab.index["cat"]: 3.0, sampler.vocab.index["dog"]: -100.0, sampler.vocab.end_id: 1.0}
    expected = allowed(sampler, reference_bias(next_word_log_probs(sampler, prefix).tolist(), bias))
    counts = first_words(sampler, prefix, SamplingParams(max_new_tokens=1, logit_bias=tuple(bias.items())), 4000)
    assert counts[sampler.vocab.index["dog"]] == 0 and counts[sampler.vocab.index["cat"]] > 0.1 * 4000
    assert_draws_follow(counts, expected)


def test_second_words_follow_the_penalties_reference(sampler):
    """The penalties count the words this sentence has generated (not its starting words): the
    second word's draws, given the first, follow the reference's distribution."""
    vocab = sampler.vocab
    prefix = [vocab.index["cat"]]
    params = SamplingParams(max_new_tokens=2, min_words=3, frequency_penalty=1.5, presence_penalty=1.0)
    rng = np.random.default_rng(12)
    pairs: dict[int, np.ndarray] = {}
    for _ in range(6000):
        first, second = (w.word_id for w in sampler.iter_sentence(prefix, params, rng))
        pairs.setdefault(first, np.zeros(len(vocab)))[second] += 1
    tested, starting_word_seen, starting_word_expected = 0, 0.0, 0.0
    for first, counts in pairs.items():
        logp = next_word_log_probs(sampler, [*prefix, first]).tolist()
        expected = allowed(sampler, reference_penalties(logp, [first], 1.5, 1.0))
        expected[vocab.end_id] = 0.0  # min_words not reached yet
        expected /= expected.sum()
        starting_word_seen += counts[prefix[0]]
        starting_word_expected += counts.sum() * expected[prefix[0]]
        if counts.sum() >= 150:
            assert_draws_follow(counts, expected)
            tested += 1
    assert tested >= 3
    # the starting word is not penalised (pooled over every first word: enough draws to tell)
    assert abs(starting_word_seen - starting_word_expected) <= 5 * math.sqrt(starting_word_expected) + 1


def test_greedy_choice_uses_the_transforms(sampler):
    greedy = SamplingParams(max_new_tokens=25, min_words=25, do_sample=False)
    plain = [w.word_id for w in sampler.iter_sentence([], greedy, np.random.default_rng(0))]
    assert len(set(plain)) < len(plain)  # the untrained model's greedy path loops
    penalized = SamplingParams(max_new_tokens=25, min_words=25, do_sample=False, presence_penalty=2.0,
                               frequency_penalty=2.0)
    words = [w.word_id for w in sampler.iter_sentence([], penalized, np.random.default_rng(0))]
    assert len(set(words)) > len(set(plain))
    banned = SamplingParams(max_new_tokens=25, min_words=25, do_sample=False, logit_bias=((plain[0], -100.0),))
    assert plain[0] not in [w.word_id for w in sampler.iter_sentence([], banned, np.random.default_rng(0))]
