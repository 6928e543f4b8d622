"""The class-based output layer (Mikolov et al., 2011): P(w | h) = P(class(w) | h) P(w | class(w), h).

A full softmax scores all C words for every token. This layer scores the K classes (one small
softmax over all tokens at once), then, for each token, only the words of its target's class:
about C/K of them instead of C. Tokens are sorted by target word; since classes are contiguous
ranges of word indices, that groups them by class, and each class becomes one block for
``softmax_block`` against a slice of ``V``. Classes of a single word (the specials and the most
frequent words) have P(w | class) = 1 and cost nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.output_layer import BlockGradients, output_backward, run_in_parts, softmax_block, target_log_probs
from models.word_classes import WordClasses


@dataclass
class ClassOutputGradients:
    loss: float
    dV: np.ndarray
    dc: np.ndarray | None
    dV_class: np.ndarray
    dc_class: np.ndarray | None
    d_states: np.ndarray


@dataclass
class _SortedTokens:
    """Tokens in target-word order; those of class k are rows ``bounds[k]:bounds[k + 1]``."""

    order: np.ndarray
    states: np.ndarray
    targets: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, states: np.ndarray, targets: np.ndarray, classes: WordClasses) -> "_SortedTokens":
        order = np.argsort(targets, kind="stable")
        sorted_targets = targets[order]
        return cls(order, states[order], sorted_targets, np.searchsorted(sorted_targets, classes.starts))


def _class_ranges(tokens: _SortedTokens, classes: WordClasses, threads: int) -> np.ndarray:
    """Class-index bounds that share the word-part work (tokens x class size) among threads."""
    work = np.cumsum(np.diff(tokens.bounds) * np.diff(classes.starts))
    if threads <= 1 or work[-1] == 0:
        return np.array([0, classes.n_classes])
    cuts = np.searchsorted(work, work[-1] * np.arange(1, threads) / threads) + 1
    return np.unique(np.concatenate([[0], cuts, [classes.n_classes]]))


def _word_part(tokens, V, c, classes, scale, dV, dc, d_sorted, log_probs, k_first, k_last):
    """log P(w | class, h) of the sorted tokens of classes k_first..k_last; gradients if dV is given."""
    counts = np.diff(tokens.bounds[k_first : k_last + 1])
    for k in np.flatnonzero(counts) + k_first:
        r0, r1 = tokens.bounds[k], tokens.bounds[k + 1]
        words = classes.words_of(k)
        if words.stop - words.start == 1:  # the only word of its class: probability 1, no gradient
            log_probs[r0:r1] = 0.0
            if d_sorted is not None:
                d_sorted[r0:r1] = 0.0
            continue
        grads = None
        if dV is not None:
            grads = BlockGradients(dV[words], None if dc is None else dc[words], d_sorted[r0:r1])
        log_probs[r0:r1] = softmax_block(
            tokens.states[r0:r1], tokens.targets[r0:r1] - words.start, V[words],
            None if c is None else c[words], scale, grads,
        )


def class_output_backward(
    states: np.ndarray, targets: np.ndarray, V: np.ndarray, c: np.ndarray | None,
    V_class: np.ndarray, c_class: np.ndarray | None, classes: WordClasses, scale: float, threads: int = 1,
) -> ClassOutputGradients:
    """Summed cross-entropy of the class-factored softmax; gradients times ``scale``."""
    class_part = output_backward(states, classes.word_class[targets], V_class, c_class, scale, threads)
    tokens = _SortedTokens.of(states, targets, classes)
    dV = np.zeros_like(V)
    dc = None if c is None else np.zeros_like(c)
    d_sorted = np.empty_like(tokens.states)
    log_probs = np.empty(targets.size, dtype=np.float64)
    run_in_parts(_word_part, _class_ranges(tokens, classes, threads),
                 tokens, V, c, classes, scale, dV, dc, d_sorted, log_probs)
    d_states = class_part.d_states
    d_states[tokens.order] += d_sorted
    loss = class_part.loss - float(log_probs.sum())
    return ClassOutputGradients(loss, dV, dc, class_part.dV, class_part.dc, d_states)


def class_target_log_probs(
    states: np.ndarray, targets: np.ndarray, V: np.ndarray, c: np.ndarray | None,
    V_class: np.ndarray, c_class: np.ndarray | None, classes: WordClasses, threads: int = 1,
) -> np.ndarray:
    """log P(target | h) for each row (forward only, for evaluation)."""
    out = target_log_probs(states, classes.word_class[targets], V_class, c_class, threads).astype(np.float64)
    tokens = _SortedTokens.of(states, targets, classes)
    word_log_probs = np.empty(targets.size, dtype=np.float64)
    run_in_parts(_word_part, _class_ranges(tokens, classes, threads),
                 tokens, V, c, classes, 1.0, None, None, None, word_log_probs)
    out[tokens.order] += word_log_probs
    return out.astype(V.dtype)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log softmax of a 1-D or 2-D array."""
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def class_log_probs(states: np.ndarray, V_class: np.ndarray, c_class: np.ndarray | None) -> np.ndarray:
    """log P(class | h) for each row of ``states`` (n x K)."""
    z = states @ V_class.T
    if c_class is not None:
        z = z + c_class
    return log_softmax(z)


def all_word_log_probs(
    states: np.ndarray, V: np.ndarray, c: np.ndarray | None,
    V_class: np.ndarray, c_class: np.ndarray | None, classes: WordClasses,
) -> np.ndarray:
    """log P(w | h) for every word and every row of ``states`` (n x C): what top-k, top-p and
    greedy choice need, at the cost of a full softmax."""
    z = states @ V.T
    if c is not None:
        z = z + c
    return class_factored_log_probs(z, class_log_probs(states, V_class, c_class), classes)


def class_factored_log_probs(word_logits: np.ndarray, class_logp: np.ndarray, classes: WordClasses) -> np.ndarray:
    """log P(w | h) = log P(class | h) + log P(w | class, h) for every word (n x C), from the word
    logits (n x C, normalised here within each class, in place) and the class log-probabilities
    (n x K); each row's numbers its own."""
    z = word_logits
    first = classes.starts[:-1]
    z -= np.maximum.reduceat(z, first, axis=1)[:, classes.word_class]
    z -= np.log(np.add.reduceat(np.exp(z), first, axis=1))[:, classes.word_class]
    z += class_logp[:, classes.word_class]
    return z
