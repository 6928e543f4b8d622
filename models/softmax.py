"""The output layer as one object: P(next word | hidden state) for training, scoring and sampling.

``FullSoftmax`` is softmax(V h + c) over all C words; ``ClassSoftmax`` the class-factored layer
of Mikolov et al. (2011): P(w | h) = softmax(V_class h + c_class)[class(w)] times the softmax of
(V h + c) over w's class (``models.class_output``). Each layer owns its parameters and computes,
from hidden states:

* the oracle's part (one sentence, written for clarity): ``oracle_log_probs``, ``oracle_gradients``;
* the fused fast path of training and scoring (``models.output_layer``, ``models.class_output``):
  ``backward`` and ``target_log_probs`` over all real tokens of a batch at once;
* sampling, batch-first (one row per sequence): ``log_probs`` (B x C), ``probabilities`` and
  ``draw`` (one word per row, each row with its own generator, banned words and temperature).

Sampling works from copies of the weights in the precisions it needs (float32 for the product
behind a draw, float64 for full log-probabilities); ``freeze`` makes them once for a layer that
is no longer trained (``RecurrentLM.for_generation``), else each call makes its own.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.class_output import (
    all_word_log_probs, class_factored_log_probs, class_output_backward, class_target_log_probs, log_softmax,
)
from models.draws import DRAW_BLOCK, block_sums, draw_index, tempered
from models.initialisation import uniform
from models.output_layer import output_backward, target_log_probs
from models.row_stable import batch_product, product_width, rowwise_product
from models.word_classes import WordClasses


# the largest batch whose products are checked for row-independence when a layer is frozen (the
# engine's batches are at most RNNLM_MAX_BATCH sequences, which may not exceed it)
MOST_ROWS = 64


def unigram_log_frequencies(counts: Sequence[int]) -> np.ndarray:
    """Log relative frequencies (add-one smoothed): an untrained model then predicts the unigram."""
    smoothed = np.asarray(counts, dtype=np.float64) + 1.0
    return np.log(smoothed / smoothed.sum())


@dataclass(frozen=True)
class _SamplingCopies:
    """The weights as sampling reads them: float32 for draws, float64 for full log-probabilities
    (biases as zeros where the layer has none, so every path adds one). ``VT32``/``VT64`` are V
    transposed and contiguous (H x C): ``hidden @ VT`` is the fast orientation of the product for
    a batch of rows, padded to ``width32``/``width64`` rows (``models.row_stable``) so that a row's
    logits do not depend on the rows beside it."""

    c32: np.ndarray
    c64: np.ndarray
    VT32: np.ndarray | None = None
    VT64: np.ndarray | None = None
    width32: int | None = 2  # None: products row by row (``product_width``)
    width64: int | None = 2
    V64: np.ndarray | None = None
    V_class64: np.ndarray | None = None
    V_classT64: np.ndarray | None = None
    c_class64: np.ndarray | None = None
    # each class's rows of V64 and entries of c64 (views), by class: what a draw reads per row
    V_by_class: tuple[np.ndarray, ...] = ()
    c_by_class: tuple[np.ndarray, ...] = ()


class OutputLayer:
    """What both layers share: V and c, their bookkeeping, and the batch-first sampling entry points."""

    KIND = ""
    NAMES_WITH_BIAS: tuple[str, ...] = ("V", "c")
    NAMES_NO_BIAS: tuple[str, ...] = ("V",)

    def __init__(self, vocab_size: int, hidden_size: int, bias: bool, rng: np.random.Generator, dtype: np.dtype | type):
        """The tutorial's start: V uniform in +-1/sqrt(H), biases zero."""
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.V = uniform(rng, hidden_size, (vocab_size, hidden_size), dtype)
        self.c = np.zeros(vocab_size, dtype=dtype)
        self._frozen: _SamplingCopies | None = None

    @property
    def classes(self) -> WordClasses | None:
        return None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.NAMES_WITH_BIAS if self.bias else self.NAMES_NO_BIAS

    def parameters(self) -> dict[str, np.ndarray]:
        """The trainable arrays by name (the live arrays, not copies)."""
        return {name: getattr(self, name) for name in self.parameter_names}

    def astype(self, dtype: np.dtype | type) -> "OutputLayer":
        """A copy with every array (biases included, with or without ``bias``) cast to ``dtype``."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        for name in self.NAMES_WITH_BIAS:
            setattr(other, name, getattr(self, name).astype(dtype, copy=True))
        other._frozen = None
        return other

    def freeze(self, most_rows: int = MOST_ROWS) -> None:
        """Make the arrays read-only and the sampling copies once, with the row counts their
        products are padded to measured up to ``most_rows``: for a layer nothing trains any more."""
        for name in self.NAMES_WITH_BIAS:
            getattr(self, name).flags.writeable = False
        self._frozen = self._measured(self._make_copies(), most_rows)

    def _copies(self) -> _SamplingCopies:
        return self._frozen if self._frozen is not None else self._make_copies()

    def _measured(self, copies: _SamplingCopies, most_rows: int) -> _SamplingCopies:
        """``copies`` with the row counts of their batch products measured (where there are any)."""
        return copies

    def _make_copies(self) -> _SamplingCopies:
        c = self.c if self.bias else np.zeros(self.vocab_size)
        return _SamplingCopies(c.astype(np.float32), c.astype(np.float64))

    @property
    def output_bias(self) -> np.ndarray | None:
        """``c`` where the layer has biases, else None (the fused kernels then add nothing)."""
        return self.c if self.bias else None

    # ----------------------------------------------------- one sentence: the oracle
    def oracle_log_probs(self, state: np.ndarray) -> np.ndarray:
        """log P(w | state) of every word, for one hidden state (H,)."""
        raise NotImplementedError

    def oracle_gradients(self, o: np.ndarray, s: np.ndarray, y: Sequence[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One sentence's output-layer gradients from its output probabilities o (T x C) and
        states s (T x H), and the error each output puts on its own state (T x H)."""
        raise NotImplementedError

    # ------------------------------------------------------------ batched fast path
    def target_log_probs(self, states: np.ndarray, targets: np.ndarray, threads: int = 1) -> np.ndarray:
        """log P(target | state) for each row of ``states`` (n x H), in the layer's dtype."""
        raise NotImplementedError

    def backward(
        self, states: np.ndarray, targets: np.ndarray, scale: float, threads: int = 1
    ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Summed cross-entropy of the rows, the gradients of ``scale`` times it by parameter
        name, and its error on each state (n x H)."""
        raise NotImplementedError

    def start_at_unigram(self, counts: Sequence[int]) -> None:
        """Biases at which the untrained layer predicts the unigram distribution of ``counts``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- sampling
    def log_probs(self, hidden: np.ndarray) -> np.ndarray:
        """log P(w | h) of every word for each row of ``hidden`` (B x H): B x C, float64."""
        raise NotImplementedError

    def probabilities(self, hidden: np.ndarray) -> np.ndarray:
        """P(w | h) of every word for each row of ``hidden`` (B x C, float64 rows summing to 1)."""
        return np.exp(self.log_probs(hidden))

    def draws_at(self, temperature: float) -> bool:
        """Whether ``draw`` takes this temperature (else choose from ``log_probs``)."""
        return True

    def draw(
        self, hidden: np.ndarray, rngs: Sequence[np.random.Generator], banned: Sequence[Sequence[int]],
        temperature: float | Sequence[float] = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One word per row of ``hidden`` (B x H) from P(w | h) ** (1 / temperature), never one of
        that row's ``banned`` words, drawn with that row's generator: the word ids (B,) and each
        word's log-probability under the layer itself (before temperature and bans)."""
        rows = len(rngs)
        if hidden.shape[0] != rows or len(banned) != rows:
            raise ValueError(f"{hidden.shape[0]} hidden states, {rows} generators and {len(banned)} ban lists")
        temperatures = [float(temperature)] * rows if np.isscalar(temperature) else [float(t) for t in temperature]
        if len(temperatures) != rows or not all(self.draws_at(t) for t in temperatures):
            raise ValueError(f"the {self.KIND} softmax draws at temperature 1 only; choose from log_probs")
        return self._draw_rows(np.asarray(hidden, dtype=np.float32), rngs, banned, temperatures)

    def _draw_rows(self, hidden, rngs, banned, temperatures) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class FullSoftmax(OutputLayer):
    """softmax(V h + c) over every word."""

    KIND = "full"

    def oracle_log_probs(self, state: np.ndarray) -> np.ndarray:
        c = self.c if self.bias else 0.0
        return log_softmax(self.V @ state + c)

    def oracle_gradients(self, o, s, y):
        # softmax with cross-entropy: d loss / d logits = p - onehot(target)
        d_logits = o.copy()
        d_logits[np.arange(len(y)), y] -= 1.0
        return {"V": d_logits.T @ s, "c": d_logits.sum(axis=0)}, d_logits @ self.V

    def target_log_probs(self, states, targets, threads=1):
        return target_log_probs(states, targets, self.V, self.output_bias, threads)

    def backward(self, states, targets, scale, threads=1):
        out = output_backward(states, targets, self.V, self.output_bias, scale, threads)
        grads = {"V": out.dV}
        if self.bias:
            grads["c"] = out.dc
        return out.loss, grads, out.d_states

    def start_at_unigram(self, counts):
        self.c[:] = unigram_log_frequencies(counts)

    def _make_copies(self) -> _SamplingCopies:
        return replace(super()._make_copies(), VT32=np.ascontiguousarray(self.V.T, dtype=np.float32),
                       VT64=np.ascontiguousarray(self.V.T, dtype=np.float64))

    def _measured(self, copies: _SamplingCopies, most_rows: int) -> _SamplingCopies:
        return replace(copies, width32=product_width(copies.VT32, most_rows),
                       width64=product_width(copies.VT64, most_rows))

    def log_probs(self, hidden):
        """Each row's numbers do not depend on the other rows (``models.row_stable.batch_product``)."""
        copies = self._copies()
        z = batch_product(np.asarray(hidden, dtype=np.float64), copies.VT64, copies.width64)
        z += copies.c64
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z

    def shifted_logits(self, hidden: np.ndarray) -> np.ndarray:
        """V h + c in float32 (half the memory traffic of float64), each row's largest shifted to
        0 (B x C); each row's numbers do not depend on the other rows (``models.row_stable.batch_product``)."""
        copies = self._copies()
        z = batch_product(np.asarray(hidden, dtype=np.float32), copies.VT32, copies.width32)
        z += copies.c32
        z -= z.max(axis=1, keepdims=True)
        return z

    def probabilities(self, hidden):
        """From float32 logits, exponentials and sums in float64: what a draw needs, cheaply."""
        p = np.exp(self.shifted_logits(hidden), dtype=np.float64)
        p /= p.sum(axis=1, keepdims=True)
        return p

    def _draw_rows(self, hidden, rngs, banned, temperatures):
        z = self.shifted_logits(hidden)
        words = np.empty(len(rngs), dtype=np.int64)
        log_probs = np.empty(len(rngs))
        for row, rng in enumerate(rngs):
            words[row], log_probs[row] = _draw_from_logits(z[row], rng, banned[row], temperatures[row])
        return words, log_probs


def _draw_from_logits(z: np.ndarray, rng: np.random.Generator, banned: Sequence[int], temperature: float) -> tuple[int, float]:
    """A word drawn from shifted float32 logits ``z``: float32 weights are plenty for a draw and
    sums are taken in float64; at temperature 1 the banned words are taken out of the weights
    already summed (no second pass over C)."""
    weights = np.exp(z)
    sums = block_sums(weights)
    total = float(sums.sum(dtype=np.float64))
    log_norm = math.log(total)
    if temperature == 1.0:
        for word in banned:
            total -= float(weights[word])
            sums[word // DRAW_BLOCK] -= weights[word]
            weights[word] = 0.0
        if total > 0:  # else everything left underflowed: use shifted scores below
            choice = draw_index(weights, rng, sums)
            return choice, float(z[choice]) - log_norm
    scores = z.astype(np.float64)
    scores[list(banned)] = -np.inf
    choice = draw_index(np.exp(tempered(scores, temperature)), rng)
    return choice, float(z[choice]) - log_norm


class ClassSoftmax(OutputLayer):
    """P(class(w) | h) P(w | class(w), h), with classes from ``models.word_classes``."""

    KIND = "class"
    CLASS_NAMES_WITH_BIAS = ("V_class", "c_class")
    CLASS_NAMES_NO_BIAS = ("V_class",)
    NAMES_WITH_BIAS = OutputLayer.NAMES_WITH_BIAS + CLASS_NAMES_WITH_BIAS

    def __init__(self, vocab_size: int, hidden_size: int, bias: bool, rng: np.random.Generator,
                 dtype: np.dtype | type, classes: WordClasses):
        if classes.vocab_size != vocab_size:
            raise ValueError(f"the word classes cover {classes.vocab_size} words, not {vocab_size}")
        super().__init__(vocab_size, hidden_size, bias, rng, dtype)
        self._classes = classes
        self._widths = np.diff(classes.starts)
        self._lone = self._widths == 1  # classes of one word: the only ones a draw can ban
        self.V_class = uniform(rng, hidden_size, (classes.n_classes, hidden_size), dtype)
        self.c_class = np.zeros(classes.n_classes, dtype=dtype)

    @property
    def classes(self) -> WordClasses:
        return self._classes

    @property
    def parameter_names(self) -> tuple[str, ...]:
        if self.bias:
            return self.NAMES_WITH_BIAS
        return self.NAMES_NO_BIAS + self.CLASS_NAMES_NO_BIAS

    @property
    def class_bias(self) -> np.ndarray | None:
        return self.c_class if self.bias else None

    def _make_copies(self) -> _SamplingCopies:
        c_class = self.c_class if self.bias else np.zeros(self.classes.n_classes)
        V_class64 = self.V_class.astype(np.float64)
        copies = replace(super()._make_copies(), V64=self.V.astype(np.float64), V_class64=V_class64,
                         VT64=np.ascontiguousarray(self.V.T, dtype=np.float64),
                         V_classT64=np.ascontiguousarray(V_class64.T), c_class64=c_class.astype(np.float64))
        bounds = list(zip(self.classes.starts[:-1].tolist(), self.classes.starts[1:].tolist()))
        return replace(copies, V_by_class=tuple(copies.V64[a:b] for a, b in bounds),
                       c_by_class=tuple(copies.c64[a:b] for a, b in bounds))

    def _measured(self, copies: _SamplingCopies, most_rows: int) -> _SamplingCopies:
        return replace(copies, width64=product_width(copies.VT64, most_rows))

    def oracle_log_probs(self, state):
        return all_word_log_probs(state[None], self.V, self.output_bias, self.V_class, self.class_bias, self.classes)[0]

    def oracle_gradients(self, o, s, y):
        # the class softmax's error is p(class) - onehot(target's class); the word part only
        # concerns the words of the target's class
        c = self.c if self.bias else np.zeros_like(self.c)
        c_class = self.c_class if self.bias else np.zeros_like(self.c_class)
        T = len(y)
        d_logits = np.zeros((T, self.vocab_size), dtype=o.dtype)
        d_class_logits = np.zeros((T, self.classes.n_classes), dtype=o.dtype)
        for t in range(T):
            k = self.classes.word_class[y[t]]
            words = self.classes.words_of(k)
            d_class_logits[t] = np.exp(log_softmax(self.V_class @ s[t] + c_class))
            d_class_logits[t, k] -= 1.0
            d_logits[t, words] = np.exp(log_softmax(self.V[words] @ s[t] + c[words]))
            d_logits[t, y[t]] -= 1.0
        grads = {"V": d_logits.T @ s, "c": d_logits.sum(axis=0),
                 "V_class": d_class_logits.T @ s, "c_class": d_class_logits.sum(axis=0)}
        return grads, d_logits @ self.V + d_class_logits @ self.V_class

    def target_log_probs(self, states, targets, threads=1):
        return class_target_log_probs(states, targets, self.V, self.output_bias, self.V_class, self.class_bias,
                                      self.classes, threads)

    def backward(self, states, targets, scale, threads=1):
        out = class_output_backward(states, targets, self.V, self.output_bias, self.V_class, self.class_bias,
                                    self.classes, scale, threads)
        grads = {"V": out.dV, "V_class": out.dV_class}
        if self.bias:
            grads.update(c=out.dc, c_class=out.dc_class)
        return out.loss, grads, out.d_states

    def start_at_unigram(self, counts):
        """c_class = log P(class), c = log P(w | class)."""
        log_p = unigram_log_frequencies(counts)
        class_mass = np.log(np.add.reduceat(np.exp(log_p), self.classes.starts[:-1]))
        self.c_class[:] = class_mass
        self.c[:] = log_p - class_mass[self.classes.word_class]

    def log_probs(self, hidden):
        """Every word's log-probability: a full softmax's work, as top-k, top-p and greedy need.
        Each row's numbers do not depend on the other rows (``models.row_stable.batch_product``
        for the product with V, the small one with V_class row by row)."""
        copies = self._copies()
        hidden = np.asarray(hidden, dtype=np.float64)
        z = batch_product(hidden, copies.VT64, copies.width64)
        z += copies.c64
        class_z = rowwise_product(hidden, copies.V_classT64)
        class_z += copies.c_class64
        return class_factored_log_probs(z, log_softmax(class_z), self.classes)

    def class_probabilities(self, hidden: np.ndarray) -> np.ndarray:
        """P(class | h) for each row of ``hidden`` (B x K, float64); each row's its own (one
        matrix-vector product per row, ``models.row_stable.rowwise_product``)."""
        copies = self._copies()
        z = rowwise_product(np.asarray(hidden, dtype=np.float64), copies.V_classT64)
        z += copies.c_class64
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= np.add.reduce(z, axis=1)[:, None]
        return z

    def word_probabilities(self, hidden: np.ndarray, classes: np.ndarray, class_probs: np.ndarray) -> np.ndarray:
        """P(w | h) = P(class | h) P(w | class, h) of every word of class ``classes[row]`` for each
        row of ``hidden`` (B x H), given that class's probability ``class_probs[row]``: one flat
        array, row after row, each class's words in order. Only those classes' rows of V are read,
        by one matrix-vector product per row with its class's slice of V (cheaper than gathering
        the rows and taking each word's dot product in one call: docs/measurements.md), and the softmax's
        maximum and sum are taken over each row's class alone: a row's numbers do not depend on
        the other rows. (``numpy.dot`` runs the matrix-vector product that ``@`` runs, with less
        overhead a call.)"""
        copies = self._copies()
        widths = self._widths.take(classes)
        chosen = classes.tolist()
        V = copies.V_by_class
        z = np.concatenate([np.dot(V[k], h) for k, h in zip(chosen, np.asarray(hidden, dtype=np.float64))])
        c = copies.c_by_class
        z += np.concatenate([c[k] for k in chosen])
        first = widths.cumsum() - widths
        z -= np.maximum.reduceat(z, first).repeat(widths)
        np.exp(z, out=z)
        z *= (class_probs / np.add.reduceat(z, first)).repeat(widths)
        return z

    def draws_at(self, temperature: float) -> bool:
        """At temperature 1 only, where a class draw then a word draw is exactly a draw from the layer."""
        return temperature == 1.0

    def _draw_rows(self, hidden, rngs, banned, temperatures):
        """The class first, then a word of it: the other classes' words are never scored. A
        banned word must be alone in its class (the special tokens are), so banning it bans its class."""
        copies = self._copies()
        word_class = self.classes.word_class
        class_logp = log_softmax(hidden.astype(np.float64) @ copies.V_class64.T + copies.c_class64)
        words = np.empty(len(rngs), dtype=np.int64)
        log_probs = np.empty(len(rngs))
        for row, rng in enumerate(rngs):
            banned_classes = word_class[banned[row]]
            if not self._lone[banned_classes].all():
                raise ValueError("the class softmax bans only words that are alone in their class")
            scores = class_logp[row].copy()
            scores[banned_classes] = -np.inf
            k = draw_index(np.exp(scores - scores.max()), rng)
            span = self.classes.words_of(k)
            word_logp = log_softmax(copies.V64[span] @ hidden[row] + copies.c64[span])
            j = draw_index(np.exp(word_logp), rng)
            words[row], log_probs[row] = span.start + j, float(class_logp[row, k] + word_logp[j])
        return words, log_probs


def output_layer(vocab_size: int, hidden_size: int, bias: bool, rng: np.random.Generator, dtype: np.dtype | type,
                 classes: WordClasses | None = None) -> OutputLayer:
    """The class-factored layer for ``classes``, else the full softmax."""
    if classes is None:
        return FullSoftmax(vocab_size, hidden_size, bias, rng, dtype)
    return ClassSoftmax(vocab_size, hidden_size, bias, rng, dtype, classes)
