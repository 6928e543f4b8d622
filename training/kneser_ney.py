"""Interpolated modified Kneser-Ney n-gram models: the yardstick the RNN is measured against.

Written from Chen & Goodman, "An empirical study of smoothing techniques for language modeling"
(1998). For an order-n model and a context h of k - 1 words (h' is h without its first word):

    p_k(w | h) = (a_k(h w) - D_k(a_k(h w))) / A_k(h)  +  gamma_k(h) p_{k-1}(w | h')
    gamma_k(h) = (D_k,1 N_1(h) + D_k,2 N_2(h) + D_k,3+ N_3+(h)) / A_k(h)
    p_0(w)     = 1 / (number of words that can be predicted)

where A_k(h) is the sum of a_k(h w) over w and N_j(h) counts the words w with a_k(h w) = j (3 or
more for N_3+). A context never seen at order k leaves p_{k-1} as it is. The counts a_k are raw
counts at the highest order and for n-grams that start with SENTENCE_START (nothing can precede
them); at every other order they are continuation counts: the number of different words seen
just before the n-gram. Each order has its own three discounts, estimated from the count-of-counts
n_1..n_4 of its own a_k:

    Y = n_1 / (n_1 + 2 n_2),  D_1 = 1 - 2Y n_2/n_1,  D_2 = 2 - 3Y n_3/n_2,  D_3+ = 3 - 4Y n_4/n_3

Sentences are SENTENCE_START w1 ... wn SENTENCE_END. A context never reaches back past
SENTENCE_START: w1 is predicted from (SENTENCE_START), w2 from (SENTENCE_START, w1), and so on,
as KenLM's lmplz does, so figures compare with its. SENTENCE_START itself is never predicted (its
probability is 0); every other vocabulary word, UNKNOWN_TOKEN included, is an ordinary word, so
the probabilities of a context sum to 1 over the vocabulary.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from models.ngram_table import NgramTable
from models.scoring import perplexity_from
from models.vocabulary import Vocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Discounts:
    """What an n-gram seen once, twice, or three or more times gives up to the lower orders."""

    one: float
    two: float
    three_plus: float

    def by_count(self) -> tuple[float, float, float, float]:
        """Discount indexed by min(count, 3); index 0 (count 0) is 0."""
        return (0.0, self.one, self.two, self.three_plus)

    def valid(self) -> bool:
        """0 < D_j <= j: never more than the count, and something for the lower orders."""
        return 0 < self.one <= 1 and 0 < self.two <= 2 and 0 < self.three_plus <= 3


# used where count-of-counts cannot give estimates (a tiny corpus); the same as lmplz's fallback
FALLBACK_DISCOUNTS = Discounts(0.5, 1.0, 1.5)


def estimate_discounts(n1: int, n2: int, n3: int, n4: int) -> Discounts | None:
    """Chen & Goodman's estimates from count-of-counts; None where undefined or out of range."""
    if n1 <= 0 or n2 <= 0 or n3 <= 0:
        return None
    y = n1 / (n1 + 2 * n2)
    found = Discounts(1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    return found if found.valid() else None


def count_of_counts(counts: Iterable[int] | np.ndarray) -> tuple[int, int, int, int]:
    """How many n-grams have count 1, 2, 3 and 4."""
    counts = counts if isinstance(counts, np.ndarray) else np.fromiter(counts, dtype=np.int64)
    tally = np.bincount(np.clip(counts, 0, 5), minlength=6)
    return int(tally[1]), int(tally[2]), int(tally[3]), int(tally[4])


def kn_counts(sentences: Iterable[Sequence[int]], order: int, start_id: int) -> list[Counter]:
    """The counts a_k that each order k = 1..order works with (list index k - 1); see the module doc."""
    top: Counter = Counter()
    starts: list[Counter] = [Counter() for _ in range(order)]  # raw counts of sentence openings
    for sentence in sentences:
        sentence = tuple(sentence)
        if not sentence or sentence[0] != start_id:
            raise ValueError("a sentence must begin with SENTENCE_START")
        top.update(zip(*(sentence[j:] for j in range(order))))
        for k in range(2, min(order, len(sentence) + 1)):
            starts[k - 1][sentence[:k]] += 1
    top.pop((start_id,), None)  # a unigram model never predicts SENTENCE_START
    levels = [top]
    for k in range(order - 1, 0, -1):
        # every k-gram not at a sentence opening ends some distinct (k+1)-gram once per word before it
        level = Counter(gram[1:] for gram in levels[0])
        level.update(starts[k - 1])
        levels.insert(0, level)
    return levels


def kept_grams(sentences: Sequence[Sequence[int]], levels: Sequence[Counter], thresholds: Sequence[int]) -> list[set]:
    """Per order, the n-grams a pruned model keeps: seen more often than the order's threshold
    (raw counts), or the suffix of a kept n-gram one order up."""
    kept: list[set] = [set() for _ in levels]
    for k in range(len(levels), 0, -1):
        raw = Counter(gram for s in sentences for gram in zip(*(s[j:] for j in range(k))))
        above = kept[k] if k < len(levels) else set()
        kept[k - 1] = {g for g in levels[k - 1] if raw[g] > thresholds[k - 1]} | {g[1:] for g in above}
    return kept


class KneserNey:
    """An interpolated modified Kneser-Ney model over word ids ``0 .. vocab_size - 1``."""

    def __init__(self, order: int, vocab_size: int, start_id: int = Vocabulary.start_id):
        if order < 1:
            raise ValueError("the order must be at least 1")
        if not 0 <= start_id < vocab_size or vocab_size < 2:
            raise ValueError("need a vocabulary of at least 2 words that holds SENTENCE_START")
        self.order = order
        self.vocab_size = vocab_size
        self.start_id = start_id
        self.discounts: list[Discounts] = []
        # per order k (index k - 1): n-gram -> a - D(a), and context -> (1 / A(h), gamma(h))
        self._discounted: list[dict[tuple[int, ...], float]] = []
        self._contexts: list[dict[tuple[int, ...], tuple[float, float]]] = []
        self._uniform = 1.0 / (vocab_size - 1)

    @classmethod
    def fit(
        cls,
        sentences: Iterable[Sequence[int]],
        order: int,
        vocab_size: int,
        start_id: int = Vocabulary.start_id,
        discounts: Sequence[Discounts] | None = None,
        thresholds: Sequence[int] | None = None,
    ) -> "KneserNey":
        """Count, estimate each order's discounts (unless given, lowest order first) and normalise.

        ``thresholds`` prunes as ``training.ngram_fit`` describes: per order, n-grams seen at most
        that often are dropped unless they are the suffix of a kept one, and their discounted
        counts go to their context's backoff weight.
        """
        model = cls(order, vocab_size, start_id)
        sentences = [tuple(s) for s in sentences]
        levels = kn_counts(sentences, order, start_id)
        if levels[0] and max(levels[0])[0] >= vocab_size:  # the unigrams are every word predicted
            raise ValueError(f"a word id is outside the vocabulary of {vocab_size}")
        kept = kept_grams(sentences, levels, thresholds) if thresholds else [None] * order
        for k, counts in enumerate(levels, start=1):
            model._add_level(k, counts, discounts[k - 1] if discounts else model.estimate(k, counts.values()), kept[k - 1])
        return model

    @staticmethod
    def estimate(k: int, counts: Iterable[int] | np.ndarray) -> Discounts:
        """Order k's discounts from its counts, or the fallback where they give none."""
        return KneserNey.estimate_from(k, count_of_counts(counts))

    @staticmethod
    def estimate_from(k: int, n: tuple[int, int, int, int]) -> Discounts:
        """Order k's discounts from its count-of-counts (n1 .. n4), or the fallback where they give none."""
        found = estimate_discounts(*n)
        if found is None:
            # expected at order 1 of a cut vocabulary (no word is seen once); worth a look elsewhere
            log.log(logging.INFO if k == 1 else logging.WARNING,
                    "order %d: count-of-counts %s give no usable discounts; using %s", k, n, FALLBACK_DISCOUNTS)
            return FALLBACK_DISCOUNTS
        log.debug("order %d: count-of-counts %s, %s", k, n, found)
        return found

    def _add_level(self, k: int, counts: Counter, discounts: Discounts, kept: set | None = None) -> None:
        if not discounts.valid():
            raise ValueError(f"order {k}: discounts {discounts} are not within 0 < D_j <= j")
        by_count = discounts.by_count()
        totals: Counter = Counter()
        seen: dict[tuple[int, ...], list[int]] = {}  # context -> [N_1, N_2, N_3+]
        dropped: Counter = Counter()  # context -> discounted counts of its pruned n-grams
        discounted = {}
        for gram, count in counts.items():
            context = gram[:-1]
            totals[context] += count
            seen.setdefault(context, [0, 0, 0])[min(count, 3) - 1] += 1
            if kept is None or gram in kept:
                discounted[gram] = count - by_count[min(count, 3)]
            else:
                dropped[context] += count - by_count[min(count, 3)]
        self.discounts.append(discounts)
        self._discounted.append(discounted)
        # a context left with no n-gram of its own backs off whole (gamma = 1): it is dropped too
        has_kept = {gram[:-1] for gram in discounted}
        self._contexts.append({h: (1.0 / total, (self._given_up(discounts, *seen[h]) + dropped[h]) / total)
                               for h, total in totals.items() if h in has_kept})

    @staticmethod
    def _given_up(discounts: Discounts, n1: int, n2: int, n3: int) -> float:
        """D_1 N_1(h) + D_2 N_2(h) + D_3+ N_3+(h), summed in this order (the array fit sums the same way)."""
        return discounts.one * n1 + discounts.two * n2 + discounts.three_plus * n3

    def table(self) -> NgramTable:
        """The fitted probabilities in compact arrays, for a model file and the service."""
        return NgramTable.from_counts(self.order, self.vocab_size, self.start_id, self._discounted, self._contexts)

    def prob(self, context: Sequence[int], word: int) -> float:
        """p(word | context); only the last ``order - 1`` ids of the context count."""
        if word == self.start_id:
            return 0.0
        context = tuple(context[max(0, len(context) - self.order + 1) :]) if self.order > 1 else ()
        p = self._uniform
        for k in range(len(context) + 1):
            history = context[len(context) - k :]
            stats = self._contexts[k].get(history)
            if stats is None:  # an unseen context: no longer one can have been seen either
                break
            inverse_total, backoff = stats
            p = self._discounted[k].get(history + (word,), 0.0) * inverse_total + backoff * p
        return p

    def log_prob(self, context: Sequence[int], word: int) -> float:
        """Natural log of p(word | context); -inf for SENTENCE_START."""
        p = self.prob(context, word)
        return math.log(p) if p > 0 else -math.inf

    def sentence_log_likelihood(self, sentence: Sequence[int]) -> float:
        """Summed log-probability of every token after SENTENCE_START."""
        if len(sentence) == 0 or sentence[0] != self.start_id:
            raise ValueError("a sentence must begin with SENTENCE_START")
        if max(sentence) >= self.vocab_size:
            raise ValueError(f"a word id is outside the vocabulary of {self.vocab_size}")
        reach = self.order - 1
        return math.fsum(
            self.log_prob(sentence[max(0, i - reach) : i], sentence[i]) for i in range(1, len(sentence))
        )

    def total_log_likelihood(self, sentences: Iterable[Sequence[int]]) -> tuple[float, int]:
        """Summed log-probability over sentences and the number of tokens predicted."""
        total, tokens = 0.0, 0
        for sentence in sentences:
            total += self.sentence_log_likelihood(sentence)
            tokens += len(sentence) - 1
        return total, tokens

    def perplexity(self, sentences: Iterable[Sequence[int]]) -> float:
        """exp(mean negative log-likelihood per predicted token)."""
        return perplexity_from(*self.total_log_likelihood(sentences))
