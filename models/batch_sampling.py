"""Many sequences decoded together, one word each per step: the service engine's decoder.

The states of all sequences are one B x H matrix, advanced by one ``model.step`` per step; the
n-gram model gives the distributions of all B together (``next_word_probs_batch``), and the
mixture's draws run for all rows at once (``draw_indices``), each row with the uniform number of
its own ``numpy.random.Generator``, by the single-sequence ``Sampler``'s rules (whose choice
helpers it uses). Sequences join and leave between steps.

The batch must not change the numbers. A BLAS product's rounding can depend on how many rows it
has (with OpenBLAS, one row goes to a matrix-vector kernel, small products to kernels picked by
size), so:

- the output layer scores each row alone, exactly as the Sampler does. Measured here (AMD EPYC,
  OpenBLAS, one thread), one row against V (8000 x 100) costs less than a row of a 16-row
  product, so nothing is lost, and each sequence gets the Sampler's words and log-probabilities
  bit for bit as long as its hidden state is the Sampler's;
- the step runs on at least ``width`` rows (padded with copies of the first), where ``width`` is
  measured when the decoder is built: the smallest row count from which adding rows never changes
  a row's result (``consistent_width``). So each sequence's states are the same whatever else is
  in the batch; they differ from the Sampler's one-row step in the last bits at most, which
  changes a word only when a draw falls within about 1e-7 of a boundary (bench/engine_exactness.py
  counts how often).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from models.draws import draw_index, draw_indices
from models.sampling import (
    SampledWord, Sampler, SamplingParams, penalize_repetition, top_alternatives, transformed_scores,
)


# below this many rows, the n-gram distributions and the draws go row by row (the same numbers):
# the vectorised calls' fixed cost is more than they save (measured: about 2x slower at one row)
FEW_ROWS = 4


@dataclass(frozen=True)
class SequenceSpec:
    """One sequence to generate: ``num_sentences`` sentences, the first continuing
    ``prefix_ids``, all drawn with one ``numpy.random.Generator`` seeded with ``seed``. Its words
    come as one stream: each sentence ends with SENTENCE_END or after ``max_new_tokens`` words."""

    prefix_ids: tuple[int, ...]
    sampling: SamplingParams
    seed: int
    repetition_penalty: float = 1.0
    top_n: int = 0
    num_sentences: int = 1


def sentence_stream(sampler: Sampler, spec: SequenceSpec) -> Iterator[SampledWord]:
    """The words of ``spec`` from the single-sequence Sampler: the reference the batched decoder
    is tested against."""
    rng = np.random.default_rng(spec.seed)
    for index in range(spec.num_sentences):
        prefix = list(spec.prefix_ids) if index == 0 else []
        yield from sampler.iter_sentence(prefix, spec.sampling, rng, spec.repetition_penalty, spec.top_n)


def consistent_width(row_result: Callable[[int], list[bytes]], most: int) -> int:
    """The smallest row count n >= 2 such that, for every count from n to ``most``,
    ``row_result(count)`` (the results of the same first and last input rows, as bytes, with
    ``count`` rows in all) is what it is at n: a product padded to at least that many rows then
    rounds each row the same way, however many rows it has."""
    results = [row_result(count) for count in range(2, most + 1)]
    width = most
    for count in range(most - 1, 1, -1):
        if results[count - 2] != results[count - 1]:
            break
        width = count
    return width


@dataclass
class _Sequence:
    """One sequence in the batch: where it is and how it draws."""

    key: object
    spec: SequenceSpec
    rng: np.random.Generator
    mode: str  # "mixed", "plain" or "scored": which of the Sampler's paths it takes
    sentence: int = 0
    pending: list[int] = field(default_factory=list)  # words to read before the next draw
    seen: list[int] = field(default_factory=list)  # this sentence's words so far, prefix included
    prefix_words: int = 0  # how many of them the sentence started with
    new_words: int = 0  # words drawn in this sentence


class BatchSampler:
    """Advances any number of sequences, each by the rules of ``sampler`` (its model, vocabulary
    and n-gram mixture), one word per step; ``most`` is the largest batch it will see (the
    step's width is measured up to it)."""

    def __init__(self, sampler: Sampler, most: int = 64):
        self.sampler = sampler
        self.model = sampler.model
        self.output = sampler.model.output
        self.vocab = sampler.vocab
        self.mixture = sampler.mixture
        self._sequences: list[_Sequence] = []
        self._state = self.model.initial_state(0, np.float32)
        self._step_width = self._measure_step_width(max(2, most))

    # ---------------------------------------------------------------- widths
    def _measure_step_width(self, most: int) -> int:
        """The row count the step is padded to (``consistent_width``), probed with random states:
        the first row and a fixed last row, whatever the rows between."""
        probe = np.random.default_rng(12345)
        words = probe.integers(0, self.model.vocab_size, most)
        state = self.model.step(words, self.model.initial_state(most, np.float32))

        def rows(n: int) -> list[int]:
            return list(range(n - 1)) + [most - 1]

        def step(n: int) -> list[bytes]:
            result = np.asarray(self.model.step(words[rows(n)], self.model.take_states(state, rows(n))))
            return [result[0].tobytes(), result[n - 1].tobytes()]

        return consistent_width(step, most)

    @staticmethod
    def _pad(rows: np.ndarray, width: int) -> np.ndarray:
        """``rows`` with copies of its first row added up to ``width`` rows."""
        if rows.shape[0] >= width:
            return rows
        return np.concatenate([rows, np.repeat(rows[:1], width - rows.shape[0], axis=0)])

    # ---------------------------------------------------------- membership
    def __len__(self) -> int:
        return len(self._sequences)

    def add(self, key: object, spec: SequenceSpec) -> None:
        """Start generating ``spec`` (it reads its prefix over its first steps)."""
        params, sampler = spec.sampling, self.sampler
        plain = sampler._is_plain(params) and spec.repetition_penalty == 1.0 and spec.top_n == 0
        if self.mixture is not None and plain and self.output.KIND == "full" and params.temperature == 1.0:
            mode = "mixed"
        else:
            mode = "plain" if plain and self.mixture is None else "scored"
        sequence = _Sequence(key, spec, np.random.default_rng(spec.seed), mode)
        self._begin_sentence(sequence, list(spec.prefix_ids))
        self._sequences.append(sequence)
        self._state = self.model.join_states([self._state, self.model.initial_state(1, np.float32)])

    def remove(self, key: object) -> None:
        """Stop generating the sequence added with ``key`` (if it is still here)."""
        keep = [i for i, s in enumerate(self._sequences) if s.key is not key]
        if len(keep) < len(self._sequences):
            self._keep(keep)

    def _keep(self, rows: list[int]) -> None:
        self._sequences = [self._sequences[i] for i in rows]
        self._state = self.model.take_states(self._state, rows)

    def _begin_sentence(self, sequence: _Sequence, prefix: list[int]) -> None:
        sequence.pending = [self.vocab.start_id, *prefix]
        sequence.seen = list(prefix)
        sequence.prefix_words = len(prefix)
        sequence.new_words = 0

    # ---------------------------------------------------------------- a step
    def step(self) -> list[tuple[object, SampledWord | None]]:
        """Every sequence reads its next word; those that have read their prefix draw one. Returns
        each drawn word by key, then (key, None) for each sequence that has ended (and left)."""
        if not self._sequences:
            return []
        n = len(self._sequences)
        words = np.array([s.pending.pop(0) for s in self._sequences])
        state = self.model.step(self._pad(words[:, None], self._step_width)[:, 0],
                                self._padded_state(self._step_width))
        self._state = self.model.take_states(state, list(range(n))) if n < self._step_width else state
        ready = [i for i, s in enumerate(self._sequences) if not s.pending]
        if not ready:
            return []
        hidden = self.model.readout(self.model.take_states(self._state, ready))
        drawn: dict[int, SampledWord] = {}
        for mode, draw in (("mixed", self._draw_mixed), ("plain", self._draw_plain), ("scored", self._draw_scored)):
            rows = [j for j, i in enumerate(ready) if self._sequences[i].mode == mode]
            if rows:
                for j, word in zip(rows, draw([self._sequences[ready[j]] for j in rows], hidden[rows])):
                    drawn[ready[j]] = word
        return self._advance(drawn)

    def _padded_state(self, width: int) -> np.ndarray:
        n = len(self._sequences)
        if n >= width:
            return self._state
        return self.model.take_states(self._state, list(range(n)) + [0] * (width - n))

    def _allow_end(self, sequence: _Sequence) -> bool:
        return len(sequence.seen) >= sequence.spec.sampling.min_words

    def _histories(self, sequences: list[_Sequence]) -> list[list[int]]:
        return [[self.vocab.start_id, *s.seen] for s in sequences]

    def _draw_mixed(self, sequences: list[_Sequence], hidden: np.ndarray) -> list[SampledWord]:
        """The Sampler's plain draw from the RNN interpolated with its n-gram model, for all rows
        at once: the same probabilities, the same uniform number from each row's generator and
        the same inverse-CDF sums (``draw_indices``), so the same word."""
        rows = len(sequences)
        rnn = np.concatenate([self.output.probabilities(hidden[row : row + 1]) for row in range(rows)])
        histories = self._histories(sequences)
        if rows < FEW_ROWS:  # the one-row calls cost less than the vectorised ones' overhead here
            probs = np.stack([self.mixture.next_word_probs(rnn[row], histories[row]) for row in range(rows)])
        else:
            probs = self.mixture.next_word_probs_batch(rnn, histories)
        v = self.vocab
        probs[:, [v.unknown_id, v.start_id]] = 0.0  # never chosen, so the chosen word's probability stays exact
        probs[[not self._allow_end(s) for s in sequences], v.end_id] = 0.0
        if rows < FEW_ROWS:
            chosen = np.array([draw_index(probs[row], s.rng) for row, s in enumerate(sequences)])
        else:
            chosen = draw_indices(probs, np.array([s.rng.random() for s in sequences]))
        picked = probs[np.arange(rows), chosen]
        return [SampledWord(int(word), math.log(p)) for word, p in zip(chosen, picked)]

    def _draw_plain(self, sequences: list[_Sequence], hidden: np.ndarray) -> list[SampledWord]:
        """The output layer's own draw, row by row, each with its generator."""
        out = []
        for row, sequence in enumerate(sequences):
            words, logprobs = self.output.draw(hidden[row : row + 1], [sequence.rng],
                                               [self.sampler._banned(self._allow_end(sequence))],
                                               sequence.spec.sampling.temperature)
            out.append(SampledWord(int(words[0]), float(logprobs[0])))
        return out

    def _draw_scored(self, sequences: list[_Sequence], hidden: np.ndarray) -> list[SampledWord]:
        """Every word's log-probability, then the Sampler's choice rules (greedy, top-k, top-p,
        temperature, repetition penalty) and alternatives, row by row."""
        logp = np.concatenate([self.output.log_probs(hidden[row : row + 1]) for row in range(len(sequences))])
        if self.mixture is not None:
            logp = self.mixture.next_word_log_probs_batch(logp, self._histories(sequences))
        out = []
        for row, sequence in enumerate(sequences):
            spec = sequence.spec
            scores = penalize_repetition(logp[row], sequence.seen, spec.repetition_penalty)
            if spec.sampling.transforms_scores:
                scores = transformed_scores(scores, spec.sampling, sequence.seen[sequence.prefix_words :])
            choice = self.sampler._choose(scores, spec.sampling, self._allow_end(sequence), sequence.rng)
            out.append(SampledWord(choice, float(logp[row, choice]), top_alternatives(logp[row], spec.top_n)))
        return out

    def _advance(self, drawn: dict[int, SampledWord]) -> list[tuple[object, SampledWord | None]]:
        """Record each drawn word; a sentence that ended starts the next or ends its sequence."""
        out: list[tuple[object, SampledWord | None]] = []
        finished: list[int] = []
        fresh: list[int] = []
        for i, word in sorted(drawn.items()):
            sequence = self._sequences[i]
            out.append((sequence.key, word))
            sequence.new_words += 1
            if word.word_id != self.vocab.end_id and sequence.new_words < sequence.spec.sampling.max_new_tokens:
                sequence.seen.append(word.word_id)
                sequence.pending = [word.word_id]
                continue
            sequence.sentence += 1
            if sequence.sentence == sequence.spec.num_sentences:
                finished.append(i)
            else:
                self._begin_sentence(sequence, [])
                fresh.append(i)
        if fresh:
            self._state = self.model.join_states([
                self.model.initial_state(1, np.float32) if i in fresh else self.model.take_states(self._state, [i])
                for i in range(len(self._sequences))])
        if finished:
            out += [(self._sequences[i].key, None) for i in finished]
            self._keep([i for i in range(len(self._sequences)) if i not in set(finished)])
        return out
