"""Many sequences decoded together, one word each per step: the service engine's decoder.

The states of all sequences are one B x H matrix, advanced by one ``model.stable_step`` per
step; the output layer scores all B rows with one matrix product, and the mixture's draws run
for all rows at once (``models.mixture_draws``), each row with the uniform number of its own
``numpy.random.Generator``, by the single-sequence ``Sampler``'s rules (whose choice helpers it
uses). Sequences join and leave between steps.

The batch does not change the words: the step is row-stable (``models.row_stable``: padded to a
row count from which the rows' rounding no longer depends on how many there are), so each
sequence's states are the same bits in any batch; the output layer and the mixture draw work row
by row below FEW_ROWS rows, as the single-sequence Sampler does, and on the whole batch from
there on, each row's numbers its own. The two ways agree to float32 rounding: a word differs only
when its uniform number falls within about 1e-7 of a boundary between two words
(bench/engine_exactness.py counts how often).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from models.ngram_table import NewestFirst
from models.recent_text import extended
from models.row_stable import FEW_ROWS
from models.sampling import (
    SampledWord, Sampler, SamplingParams, penalize_repetition, top_alternatives, transformed_scores,
)


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
    recent: list[int] = []  # the text of the sentences before, for the mixture's cache
    size = sampler.mixture.cache_size if sampler.mixture is not None else 0
    for index in range(spec.num_sentences):
        prefix = list(spec.prefix_ids) if index == 0 else []
        drawn = []
        for word in sampler.iter_sentence(prefix, spec.sampling, rng, spec.repetition_penalty, spec.top_n, recent):
            drawn.append(word.word_id)
            yield word
        recent = extended(recent, [*prefix, *drawn], size)


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
    recent: list[int] = field(default_factory=list)  # the window of the text of the sentences before
    new_words: int = 0  # words drawn in this sentence


class BatchSampler:
    """Advances any number of sequences (up to the rows its sampler's model was made ready for,
    ``MOST_ROWS``), each by the rules of ``sampler`` (its model, vocabulary and n-gram mixture),
    one word per step."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler
        self.model = sampler.model
        self.output = sampler.model.output
        self.vocab = sampler.vocab
        self.mixture = sampler.mixture
        self._sequences: list[_Sequence] = []
        self._state = self.model.initial_state(0, np.float32)
        # the words each sequence read on the last ``_reach`` steps (as far back as the n-gram model
        # reads), the word of step t in column t % _reach, and the step its sentence began at: its
        # history for the batched draw without slicing every sequence's list on every step
        self._reach = self.mixture.order - 1 if self.mixture is not None else 0
        self._read = np.zeros((0, self._reach), dtype=np.int64)
        self._clock = 0  # steps taken
        self._began = np.zeros(0, dtype=np.int64)
        self._bans = {allow: sampler._banned(allow) for allow in (False, True)}  # by whether the sentence may end

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
        self._read = np.concatenate([self._read, np.zeros((1, self._reach), dtype=np.int64)])
        self._began = np.append(self._began, self._clock)

    def remove(self, key: object) -> None:
        """Stop generating the sequence added with ``key`` (if it is still here)."""
        keep = [i for i, s in enumerate(self._sequences) if s.key is not key]
        if len(keep) < len(self._sequences):
            self._keep(keep)

    def _keep(self, rows: list[int]) -> None:
        self._sequences = [self._sequences[i] for i in rows]
        self._state = self.model.take_states(self._state, rows)
        self._read, self._began = self._read[rows], self._began[rows]

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
        words = np.fromiter((s.pending.pop(0) for s in self._sequences), np.int64, len(self._sequences))
        self._state = self.model.stable_step(words, self._state)
        if self._reach:
            self._read[:, self._clock % self._reach] = words
        self._clock += 1
        ready = [i for i, s in enumerate(self._sequences) if not s.pending]
        if not ready:
            return []
        every = len(ready) == len(self._sequences)  # the usual step: no copy of the states needed
        hidden = self.model.readout(self._state if every else self.model.take_states(self._state, ready))
        by_mode: dict[str, list[int]] = {}  # rows of ``hidden``
        for j, i in enumerate(ready):
            by_mode.setdefault(self._sequences[i].mode, []).append(j)
        drawn: dict[int, SampledWord] = {}
        for mode, draw in (("mixed", self._draw_mixed), ("plain", self._draw_plain), ("scored", self._draw_scored)):
            rows = by_mode.get(mode)
            if rows:
                indices = ready if len(rows) == len(ready) else [ready[j] for j in rows]
                sequences = [self._sequences[i] for i in indices]
                for i, word in zip(indices, draw(sequences, indices, hidden if len(rows) == len(ready) else hidden[rows])):
                    drawn[i] = word
        return self._advance(drawn)

    def _allow_end(self, sequence: _Sequence) -> bool:
        return len(sequence.seen) >= sequence.spec.sampling.min_words

    def _recents(self, sequences: list[_Sequence]) -> list[list[int]] | None:
        """Each sequence's text so far, for the mixture's cache (None without one)."""
        if self.mixture is None or not self.mixture.cache_weight:
            return None
        return [[*s.recent, *s.seen] for s in sequences]

    def _histories(self, sequences: list[_Sequence], indices: list[int]) -> list[list[int]] | NewestFirst:
        """The words read in this sentence (SENTENCE_START first) of ``sequences`` (at ``indices``),
        as far back as the n-gram model reads: as lists below FEW_ROWS rows (the mixture draw reads
        each row's list there), else as one array."""
        if len(indices) < FEW_ROWS or not self._reach:
            start = [self.vocab.start_id]
            return [(start + s.seen)[-self._reach :] if self._reach else [] for s in sequences]
        newest_first = (self._clock - 1 - np.arange(self._reach)) % self._reach
        if len(indices) == len(self._sequences):
            read, began = self._read[:, newest_first], self._began
        else:
            read, began = self._read[np.ix_(indices, newest_first)], self._began[indices]
        return NewestFirst(read, np.minimum(self._clock - began, self._reach))

    def _draw_mixed(self, sequences: list[_Sequence], indices: list[int], hidden: np.ndarray) -> list[SampledWord]:
        """The Sampler's plain draw from the RNN interpolated with its n-gram model, for all rows
        at once (``models.mixture_draws``), each row with the uniform number of its own generator."""
        uniforms = np.fromiter((s.rng.random() for s in sequences), np.float64, len(sequences))
        banned = [self._bans[self._allow_end(s)] for s in sequences]
        words, logprobs = self.sampler.mixture_drawer.draw(hidden, self._histories(sequences, indices), uniforms, banned,
                                                           self._recents(sequences))
        return [SampledWord(word, logprob) for word, logprob in zip(words.tolist(), logprobs.tolist())]

    def _draw_plain(self, sequences: list[_Sequence], indices: list[int], hidden: np.ndarray) -> list[SampledWord]:
        """The output layer's own draw, each row with its generator."""
        words, logprobs = self.output.draw(hidden, [s.rng for s in sequences],
                                           [self._bans[self._allow_end(s)] for s in sequences],
                                           [s.spec.sampling.temperature for s in sequences])
        return [SampledWord(word, logprob) for word, logprob in zip(words.tolist(), logprobs.tolist())]

    def _draw_scored(self, sequences: list[_Sequence], indices: list[int], hidden: np.ndarray) -> list[SampledWord]:
        """Every word's log-probability, then the Sampler's choice rules (greedy, top-k, top-p,
        temperature, repetition penalty) and alternatives, row by row."""
        logp = self.output.log_probs(hidden)
        if self.mixture is not None:
            logp = self.mixture.next_word_log_probs_batch(logp, self._histories(sequences, indices), self._recents(sequences))
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
            if self.mixture is not None:
                sequence.recent = extended(sequence.recent, [*sequence.seen, word.word_id], self.mixture.cache_size)
            if sequence.sentence == sequence.spec.num_sentences:
                finished.append(i)
            else:
                self._begin_sentence(sequence, [])
                fresh.append(i)
        if fresh:
            self._state = self.model.restarted_states(self._state, fresh)
            self._began[fresh] = self._clock
        if finished:
            out += [(self._sequences[i].key, None) for i in finished]
            gone = set(finished)
            self._keep([i for i in range(len(self._sequences)) if i not in gone])
        return out
