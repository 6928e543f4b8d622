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
there on (its products row by row where the BLAS rounds a row by its place), each row's numbers
its own (the class softmax's mixture draw works by classes, a row alone by itself:
``MixtureDrawer._one_row``; the Sampler scores every word there, and the two agree to
rounding). The two ways agree to float32 rounding: a word differs only
when its uniform number falls within about 1e-7 of a boundary between two words
(bench/engine_exactness.py counts how often).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from models.draw_blocks import every_row
from models.mixture_draws import BannedWords
from models.ngram_table import NewestFirst
from models.recent_text import CacheWindows, extended, text_tokens
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


# The columns of ``BatchSampler._rows``: the integers of each row that a step reads or updates,
# kept in one array so that a step updates them with a few vectorised operations and a sequence
# joining or leaving is one concatenation or one take. The words each row read on the last
# ``reach`` steps follow from column READ on; then, with the mixture's cache, the row's cache
# window as a ring of ``cache_size`` columns (-1 where it is not full yet): ``CacheWindows``,
# updated by one vectorised write a step. A step reads only the columns it needs (the ring makes
# a row some hundred columns wide).
NEXT = 0  # the word the row reads on the next step
WAITING = 1  # 1 while words of the prefix remain after NEXT (``_Sequence.pending``): no draw yet
BEGAN = 2  # the step its sentence began at
MODE = 3  # its index in MODES
LEFT = 4  # words it may still draw in this sentence (its sampling's max_new_tokens less those drawn)
SEEN = 5  # this sentence's words so far, prefix included (``len(_Sequence.seen)``)
TAKEN = 6  # the tokens its cache window has taken in (with a cache)
MIN_WORDS = 7  # its sampling's min_words
READ = 8
SENTENCE_COLUMNS = [NEXT, WAITING, BEGAN, LEFT, SEEN]  # what a sentence's start sets
DRAWN = np.array([-1, 1, 1])  # what a drawn word adds to LEFT, SEEN and TAKEN: one add for all three
DRAWN.flags.writeable = False
MODES = ("mixed", "plain", "scored")  # which of the Sampler's paths a sequence takes


@dataclass
class _Sequence:
    """One sequence in the batch: what a step cannot keep in ``BatchSampler._rows``."""

    spec: SequenceSpec
    rng: np.random.Generator
    sentence: int = 0
    pending: list[int] = field(default_factory=list)  # the prefix's words to read after NEXT
    seen: list[int] = field(default_factory=list)  # this sentence's words so far, prefix included
    prefix_words: int = 0  # how many of them the sentence started with

    def may_end(self) -> bool:
        """Whether its sentence may end now (``BatchSampler._allow_end`` for many rows at once)."""
        return len(self.seen) >= self.spec.sampling.min_words


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
        # each sequence's key and its generator's ``random``, row by row: read on every step
        self._keys: list[object] = []
        self._randoms: list = []
        self._state = self.model.initial_state(0, np.float32)
        # how far back the n-gram model reads: the words of step t are in column READ + t % _reach
        self._reach = self.mixture.order - 1 if self.mixture is not None else 0
        self._window = self.mixture.cache_size if self.mixture is not None and self.mixture.cache_weight else 0
        self._ring = READ + self._reach  # the first column of the window's ring
        self._rows = np.zeros((0, self._ring + self._window), dtype=np.int64)
        self._waiting = 0  # rows whose WAITING is 1
        self._in_mode = [0] * len(MODES)  # rows by mode
        self._clock = 0  # steps taken
        # the READ columns newest first after step t, by t % _reach
        self._newest_first = [READ + (t - np.arange(self._reach)) % self._reach for t in range(self._reach)]
        self._bans = {allow: sampler._banned(allow) for allow in (False, True)}  # by whether the sentence may end
        self._ban_table = _ban_table(self._bans[False], self._bans[True])
        self._all_may_end: dict[int, BannedWords] = {}  # the bans of so many rows that all may end
        self._draws = (self._draw_mixed, self._draw_plain, self._draw_scored)  # by MODES

    # ---------------------------------------------------------- membership
    def __len__(self) -> int:
        return len(self._sequences)

    def add(self, key: object, spec: SequenceSpec) -> None:
        """Start generating ``spec`` (it reads its prefix over its first steps)."""
        params, sampler = spec.sampling, self.sampler
        plain = sampler._is_plain(params) and spec.repetition_penalty == 1.0 and spec.top_n == 0
        if self.mixture is not None and plain and params.temperature == 1.0:
            mode = "mixed"
        else:
            mode = "plain" if plain and self.mixture is None else "scored"
        sequence = _Sequence(spec, np.random.default_rng(spec.seed))
        row = np.zeros((1, self._rows.shape[1]), dtype=np.int64)
        row[0, SENTENCE_COLUMNS] = self._sentence_start(sequence, list(spec.prefix_ids))
        row[0, MODE], row[0, MIN_WORDS] = MODES.index(mode), params.min_words
        if self._window:
            window = text_tokens(spec.prefix_ids)[-self._window :]
            row[0, self._ring + len(window) :] = -1
            row[0, self._ring : self._ring + len(window)] = window
            row[0, TAKEN] = len(window)
        self._rows = np.concatenate([self._rows, row])
        self._waiting += bool(spec.prefix_ids)
        self._in_mode[MODES.index(mode)] += 1
        self._sequences.append(sequence)
        self._keys.append(key)
        self._randoms.append(sequence.rng.random)
        self._state = self.model.join_states([self._state, self.model.initial_state(1, np.float32)])

    def remove(self, key: object) -> None:
        """Stop generating the sequence added with ``key`` (if it is still here)."""
        keep = [i for i, k in enumerate(self._keys) if k is not key]
        if len(keep) < len(self._keys):
            self._keep(keep)

    def _keep(self, rows: list[int]) -> None:
        self._sequences = [self._sequences[i] for i in rows]
        self._keys = [self._keys[i] for i in rows]
        self._randoms = [self._randoms[i] for i in rows]
        self._state = self.model.take_states(self._state, rows)
        self._rows = self._rows[rows]
        self._waiting = int(self._rows[:, WAITING].sum())
        self._in_mode = np.bincount(self._rows[:, MODE], minlength=len(MODES)).tolist()

    def _sentence_start(self, sequence: _Sequence, prefix: list[int]) -> tuple[int, ...]:
        """``sequence`` reads SENTENCE_START on the next step, then ``prefix``, then draws: its
        row's values of SENTENCE_COLUMNS."""
        sequence.pending = list(prefix)
        sequence.seen = list(prefix)
        sequence.prefix_words = len(prefix)
        return self.vocab.start_id, int(bool(prefix)), self._clock, sequence.spec.sampling.max_new_tokens, len(prefix)

    def _begin_sentence(self, row: int) -> None:
        """Row ``row`` starts a sentence without a prefix (``_sentence_start``), so it does not wait."""
        self._waiting -= int(self._rows[row, WAITING])
        self._rows[row, SENTENCE_COLUMNS] = self._sentence_start(self._sequences[row], [])

    # ---------------------------------------------------------------- a step
    def step(self) -> list[tuple[object, SampledWord | None]]:
        """Every sequence reads its next word; those that have read their prefix draw one. Returns
        each drawn word by key, then (key, None) for each sequence that has ended (and left)."""
        if not self._sequences:
            return []
        rows = self._rows
        words = rows[:, NEXT].copy()
        self._state = self.model.stable_step(words, self._state)
        if self._reach:
            rows[:, READ + self._clock % self._reach] = words
        self._clock += 1
        ready = None  # the rows that draw: None for all of them, the usual step
        if self._waiting:
            ready = np.flatnonzero(rows[:, WAITING] == 0)
            for i in np.flatnonzero(rows[:, WAITING]).tolist():
                pending = self._sequences[i].pending
                rows[i, NEXT] = pending.pop(0)
                if not pending:
                    rows[i, WAITING] = 0
                    self._waiting -= 1
            if not ready.size:
                return []
        hidden = self.model.readout(self._state if ready is None else self.model.take_states(self._state, ready))
        if ready is None and len(self._sequences) in self._in_mode:  # the usual step: nothing to pick out
            return self._advance(None, *self._draws[self._in_mode.index(len(self._sequences))](None, hidden))
        modes = rows[:, MODE] if ready is None else rows[ready, MODE]
        count = modes.size
        ids, logprobs, alternatives = np.empty(count, dtype=np.int64), np.empty(count), None
        for code, in_mode in enumerate(np.bincount(modes, minlength=len(MODES)).tolist()):
            if in_mode == count:  # every row that draws
                ids, logprobs, alternatives = self._draws[code](ready, hidden)
            elif in_mode:
                these = np.flatnonzero(modes == code)
                at = these if ready is None else ready[these]
                ids[these], logprobs[these], chosen_alternatives = self._draws[code](at, hidden[these])
                if chosen_alternatives is not None:
                    alternatives = alternatives or [()] * count
                    for j, alternative in zip(these.tolist(), chosen_alternatives):
                        alternatives[j] = alternative
        return self._advance(ready, ids, logprobs, alternatives)

    def _chosen(self, items: list, at: np.ndarray | None) -> list:
        """``items`` (one per row) of the rows ``at`` (None: all)."""
        return items if at is None else [items[i] for i in at.tolist()]

    def _allow_end(self, at: np.ndarray | None) -> np.ndarray:
        """Whether each row of ``at`` (None: all) may end its sentence now (``_Sequence.may_end``)."""
        rows = self._rows
        if at is None:
            return rows[:, SEEN] >= rows[:, MIN_WORDS]
        return rows[at, SEEN] >= rows[at, MIN_WORDS]

    def _windows(self, at: np.ndarray | None) -> CacheWindows | None:
        """The cache windows of the rows ``at`` (None: all), as the rows keep them (None without a cache)."""
        if not self._window:
            return None
        return CacheWindows(self._rows[:, self._ring :] if at is None else self._rows[at, self._ring :])

    def _histories(self, at: np.ndarray | None, sequences: list[_Sequence]) -> list[list[int]] | NewestFirst:
        """The words read in this sentence (SENTENCE_START first) of the rows ``at`` (None: all),
        as far back as the n-gram model reads: as lists below FEW_ROWS rows (the per-row draws
        read a list a row; the batched draw takes either), else as one array."""
        if len(sequences) < FEW_ROWS or not self._reach:
            start = [self.vocab.start_id]
            return [(start + s.seen)[-self._reach :] if self._reach else [] for s in sequences]
        newest_first = self._newest_first[(self._clock - 1) % self._reach]
        if at is None:
            read, began = self._rows[:, newest_first], self._rows[:, BEGAN]
        else:
            read, began = self._rows[at[:, None], newest_first], self._rows[at, BEGAN]
        return NewestFirst(read, np.minimum(self._clock - began, self._reach))

    def _draw_mixed(self, at: np.ndarray | None, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        """The Sampler's plain draw from the RNN interpolated with its n-gram model, for all rows
        ``at`` at once (``models.mixture_draws``), each with the uniform number of its own generator."""
        uniforms = np.array([random() for random in self._chosen(self._randoms, at)])
        sequences = self._chosen(self._sequences, at)
        words, logprobs = self.sampler.mixture_drawer.draw(hidden, self._histories(at, sequences), uniforms,
                                                           self._banned(at, sequences), self._windows(at))
        return words, logprobs, None

    def _banned(self, at: np.ndarray | None, sequences: list[_Sequence]) -> BannedWords | list[list[int]]:
        """The banned words of the rows ``at`` (None: all; their ``sequences``): a list per row
        below FEW_ROWS rows (the per-row draws read a list a row; the batched draw takes either),
        else as arrays."""
        count = len(sequences)
        if count < FEW_ROWS:
            return [self._bans[sequence.may_end()] for sequence in sequences]
        allow = self._allow_end(at)
        if allow.all():  # the usual step (min_words reached, or none asked)
            if count not in self._all_may_end:
                self._all_may_end[count] = _read_only(BannedWords.of([self._bans[True]] * count))
            return self._all_may_end[count]
        chosen = self._ban_table[allow.view(np.int8)]  # each row's bans, -1 past their end
        rows, columns = (chosen >= 0).nonzero()
        return BannedWords(rows, chosen[rows, columns])

    def _draw_plain(self, at: np.ndarray | None, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        """The output layer's own draw, each row with its generator."""
        sequences = self._chosen(self._sequences, at)
        words, logprobs = self.output.draw(hidden, [s.rng for s in sequences],
                                           [self._bans[allow] for allow in self._allow_end(at).tolist()],
                                           [s.spec.sampling.temperature for s in sequences])
        return words, logprobs, None

    def _draw_scored(self, at: np.ndarray | None, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Every word's log-probability, then the Sampler's choice rules (greedy, top-k, top-p,
        temperature, repetition penalty) and alternatives, row by row."""
        sequences = self._chosen(self._sequences, at)
        logp = self.output.log_probs(hidden)
        if self.mixture is not None:
            logp = self.mixture.next_word_log_probs_batch(logp, self._histories(at, sequences), self._windows(at))
        words, logprobs, alternatives = np.empty(len(sequences), dtype=np.int64), np.empty(len(sequences)), []
        for row, (sequence, allow) in enumerate(zip(sequences, self._allow_end(at).tolist())):
            spec = sequence.spec
            scores = penalize_repetition(logp[row], sequence.seen, spec.repetition_penalty)
            if spec.sampling.transforms_scores:
                scores = transformed_scores(scores, spec.sampling, sequence.seen[sequence.prefix_words :])
            words[row] = choice = self.sampler._choose(scores, spec.sampling, allow, sequence.rng)
            logprobs[row] = logp[row, choice]
            alternatives.append(top_alternatives(logp[row], spec.top_n))
        return words, logprobs, alternatives

    def _record(self, ready: np.ndarray | None, ids: np.ndarray, id_list: list[int]) -> list[int]:
        """Write the words ``ids`` drawn by the rows ``ready`` (None: all) into NEXT, the cache
        windows and the counters; the positions in ``ids`` of the rows whose sentence ends."""
        rows, end = self._rows, self.vocab.end_id
        if len(id_list) == 1:  # a few scalar reads and writes cost less than the vectorised ones
            row, word = rows[0 if ready is None else int(ready[0])], id_list[0]
            row[NEXT] = word
            if self._window:
                row[self._ring + int(row[TAKEN]) % self._window] = word
            row[TAKEN] += 1
            row[SEEN] += 1
            row[LEFT] -= 1
            return [0] if word == end or row[LEFT] <= 0 else []
        at = slice(None) if ready is None else ready
        rows[at, NEXT] = ids
        if self._window:  # every drawn word enters its row's cache window
            rows[every_row(ids.size) if ready is None else ready, self._ring + rows[at, TAKEN] % self._window] = ids
        rows[at, LEFT : TAKEN + 1] += DRAWN
        ending = rows[at, LEFT] <= 0  # at max_new_tokens
        if end in id_list:
            ending |= ids == end
        return ending.nonzero()[0].tolist()

    def _advance(self, ready: np.ndarray | None, ids: np.ndarray, logprobs: np.ndarray,
                 alternatives: list | None) -> list[tuple[object, SampledWord | None]]:
        """Record the word drawn by each row of ``ready`` (None: all); a sentence that ended
        starts the next or ends its sequence."""
        id_list = ids.tolist()
        words = map(SampledWord, id_list, logprobs.tolist(), *([alternatives] if alternatives is not None else []))
        out: list[tuple[object, SampledWord | None]] = list(zip(self._chosen(self._keys, ready), words))
        for sequence, word in zip(self._chosen(self._sequences, ready), id_list):
            sequence.seen.append(word)
        ended = self._record(ready, ids, id_list)
        if not ended:
            return out
        finished: list[int] = []
        fresh: list[int] = []
        for i in (ended if ready is None else ready[ended].tolist()):
            sequence = self._sequences[i]
            sequence.sentence += 1
            if sequence.sentence == sequence.spec.num_sentences:
                finished.append(i)
            else:
                self._begin_sentence(i)
                fresh.append(i)
        if fresh:
            self._state = self.model.restarted_states(self._state, fresh)
        if finished:
            out += [(self._keys[i], None) for i in finished]
            gone = set(finished)
            self._keep([i for i in range(len(self._sequences)) if i not in gone])
        return out


def _read_only(banned: BannedWords) -> BannedWords:
    """``banned`` with its arrays made read-only: one kept to be handed to every step's draw."""
    banned.rows.flags.writeable = banned.words.flags.writeable = False
    return banned


def _ban_table(without_end: list[int], with_end: list[int]) -> np.ndarray:
    """The banned words of a row that may not end its sentence (row 0) and of one that may (row
    1), padded with -1: indexed by each row's permission, one array of every row's bans."""
    width = max(len(without_end), len(with_end))
    return np.array([[*bans, *[-1] * (width - len(bans))] for bans in (without_end, with_end)], dtype=np.int64)
