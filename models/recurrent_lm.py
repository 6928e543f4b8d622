"""What every recurrent language model here shares, whatever its cell (``models.rnn``, ``models.gru``).

A model reads one-hot words into a hidden state s_t and predicts the next word from s_t with the
same output layer: o_t = softmax(V s_t + c), or, with word classes, the class-factored softmax of
``models.class_output``. This base class owns that output layer, the parameter bookkeeping, the
scoring helpers and the output half of the batched gradient; a subclass supplies the cell: its
parameters, one oracle step, the batched forward pass and its backward pass.

Truncation (``bptt_truncate = k``) means the same for every cell: the error of output t flows
back through the hidden states of steps t, t-1, ..., t-k and no further (``None``: full BPTT).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from models.batching import Batch, scoring_batches
from models.class_output import (
    all_word_log_probs, class_output_backward, class_target_log_probs, log_softmax,
)
from models.output_layer import output_backward, target_log_probs
from models.word_classes import WordClasses

CLASS_PARAMETER_NAMES_WITH_BIAS = ("V_class", "c_class")
CLASS_PARAMETER_NAMES_NO_BIAS = ("V_class",)

# step_back(t, errors on s_t (n x B x H), keep) -> errors on s_{t-1} of the first ``keep`` streams
StepBack = Callable[[int, np.ndarray, int], np.ndarray]


class RecurrentLM:
    """The output layer and everything around the cell; subclasses define the recurrence.

    A subclass sets ``CELL`` (its name in model files), ``NAMES_WITH_BIAS`` / ``NAMES_NO_BIAS``
    (its parameters, the output layer's ``V`` and ``c`` included, in the order ``bptt`` returns
    them), ``INPUT_NAMES`` (the matrices with one column per input word), and implements
    ``_init_cell``, ``_oracle_step``, ``bptt``, ``_run_forward``, ``_cell_gradients`` and
    ``step_function``.
    """

    CELL = ""
    NAMES_WITH_BIAS: tuple[str, ...] = ()
    NAMES_NO_BIAS: tuple[str, ...] = ()
    INPUT_NAMES: tuple[str, ...] = ()
    RECURRENT_NAMES: tuple[str, ...] = ()  # the H x H matrices applied to s_{t-1} (``--init``)
    MEMORY_MATRIX = ""  # the recurrent matrix whose singular values the gradient-flow report gives
    ACTIVATIONS: tuple[str, ...] = ("tanh",)  # the nonlinearities the cell can have
    init = "uniform"  # how the recurrent matrices started (``--init``): a record, kept in the model file
    # when set, called as observe(t, streams) with the error streams on s_t during the backward
    # pass (``lagged_state_errors``); None in training
    _stream_observer: Callable[[int, np.ndarray], None] | None = None

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        bptt_truncate: int | None = 4,
        seed: int = 0,
        bias: bool = True,
        dtype: np.dtype | type = np.float32,
        classes: WordClasses | None = None,
        activation: str = "tanh",
    ):
        if vocab_size < 2 or hidden_size < 1:
            raise ValueError("vocab_size must be >= 2 and hidden_size >= 1")
        if bptt_truncate is not None and bptt_truncate < 0:
            raise ValueError("bptt_truncate must be >= 0 or None")
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"the {self.CELL.upper()} cell takes activation {' or '.join(self.ACTIVATIONS)}, not {activation!r}")
        if classes is not None and classes.vocab_size != vocab_size:
            raise ValueError(f"the word classes cover {classes.vocab_size} words, not {vocab_size}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.bptt_truncate = bptt_truncate
        self.bias = bias
        self.classes = classes
        self.activation = activation
        self.threads = 1  # worker threads of the batched output layer (a speed setting, not saved)
        rng = np.random.default_rng(seed)
        self._init_cell(rng, dtype)
        self._init_output_layer(rng, dtype)

    def _init_cell(self, rng: np.random.Generator, dtype: np.dtype | type) -> None:
        raise NotImplementedError

    def _init_output_layer(self, rng: np.random.Generator, dtype: np.dtype | type) -> None:
        """The tutorial's start: V uniform in +-1/sqrt(H), biases zero."""
        C, H = self.vocab_size, self.hidden_size
        self.V = uniform(rng, H, (C, H), dtype)
        self.c = np.zeros(C, dtype=dtype)
        if self.classes is not None:
            K = self.classes.n_classes
            self.V_class = uniform(rng, H, (K, H), dtype)
            self.c_class = np.zeros(K, dtype=dtype)

    # ----------------------------------------------------------------- parameters
    @property
    def cell(self) -> str:
        """"rnn" or "gru": the recurrence, as model files and ``--cell`` name it."""
        return self.CELL

    @property
    def parameter_names(self) -> tuple[str, ...]:
        names = self.NAMES_WITH_BIAS if self.bias else self.NAMES_NO_BIAS
        if self.classes is None:
            return names
        return names + (CLASS_PARAMETER_NAMES_WITH_BIAS if self.bias else CLASS_PARAMETER_NAMES_NO_BIAS)

    @property
    def input_matrix_names(self) -> tuple[str, ...]:
        """Parameters with one column per input word: a batch's gradient of them is zero outside
        its input words' columns, so the trainer updates just those columns."""
        return self.INPUT_NAMES

    @property
    def softmax(self) -> str:
        """"full" or "class": which output layer the model has."""
        return "full" if self.classes is None else "class"

    @property
    def dtype(self) -> np.dtype:
        return self.V.dtype

    @property
    def output_bias(self) -> np.ndarray | None:
        """``c`` where the model has biases, else None (the output layer then adds nothing)."""
        return self.c if self.bias else None

    @property
    def class_bias(self) -> np.ndarray | None:
        return self.c_class if self.bias else None

    def parameters(self) -> dict[str, np.ndarray]:
        """The trainable arrays by name (the live arrays, not copies)."""
        return {name: getattr(self, name) for name in self.parameter_names}

    def set_parameters(self, params: dict[str, np.ndarray]) -> None:
        """Replace the arrays (copied, cast to the model's dtype) after checking shapes."""
        for name in self.parameter_names:
            new = np.asarray(params[name])
            old = getattr(self, name)
            if new.shape != old.shape:
                raise ValueError(f"parameter {name} has shape {new.shape}, expected {old.shape}")
            setattr(self, name, new.astype(old.dtype, copy=True))

    def astype(self, dtype: np.dtype | type) -> "RecurrentLM":
        """A copy of the model with parameters cast to ``dtype`` (float64 for gradient checks)."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        for name in self.NAMES_WITH_BIAS + (CLASS_PARAMETER_NAMES_WITH_BIAS if self.classes else ()):
            setattr(other, name, getattr(self, name).astype(dtype, copy=True))
        return other

    def _ordered(self, grads: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Gradients as the tuple ``bptt`` returns: in ``parameter_names`` order."""
        return tuple(grads[name] for name in self.parameter_names)

    # ----------------------------------------------------- one sentence: the oracle
    def _oracle_step(self, word: int, prev: np.ndarray) -> np.ndarray:
        """The hidden state after reading ``word`` in state ``prev`` (one sentence, for clarity)."""
        raise NotImplementedError

    def forward_propagation(self, x: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output probabilities o (T x C) and hidden states s (T x H) of one sentence."""
        T = len(x)
        s = np.zeros((T, self.hidden_size), dtype=self.dtype)
        o = np.zeros((T, self.vocab_size), dtype=self.dtype)
        prev = np.zeros(self.hidden_size, dtype=self.dtype)
        for t in range(T):
            s[t] = self._oracle_step(x[t], prev)
            o[t] = np.exp(self._output_log_probs(s[t]))
            prev = s[t]
        return o, s

    def _output_log_probs(self, state: np.ndarray) -> np.ndarray:
        """log o_t: the next word's log-probabilities given one hidden state."""
        if self.classes is None:
            c = self.c if self.bias else 0.0
            return log_softmax(self.V @ state + c)
        return all_word_log_probs(state[None], self.V, self.output_bias, self.V_class, self.class_bias, self.classes)[0]

    def calculate_loss(self, X: list, Y: list) -> float:
        """Mean cross-entropy per predicted word over lists of sentences (inputs X, targets Y)."""
        return self.mean_batch_loss(scoring_batches(X, Y))

    def bptt(self, x: list[int], y: list[int]) -> tuple[np.ndarray, ...]:
        """Gradients of one sentence's summed loss under the model's truncation, in
        ``parameter_names`` order."""
        raise NotImplementedError

    def _oracle_output_gradients(
        self, o: np.ndarray, s: np.ndarray, y: list[int]
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The output layer's part of ``bptt``: gradients of V, c (and V_class, c_class), and the
        error each output puts on its own hidden state (T x H)."""
        d_logits, d_class_logits = self._output_errors(o, s, y)
        grads = {"V": d_logits.T @ s, "c": d_logits.sum(axis=0)}
        d_states = d_logits @ self.V
        if self.classes is not None:
            grads["V_class"] = d_class_logits.T @ s
            grads["c_class"] = d_class_logits.sum(axis=0)
            d_states += d_class_logits @ self.V_class
        return grads, d_states

    def _output_errors(self, o: np.ndarray, s: np.ndarray, y: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
        """d loss / d logits for each step: the word logits (T x C) and, with classes, the class
        logits (T x K). Softmax with cross-entropy gives p - onehot(target); with classes, the
        word part only concerns the words of the target's class."""
        T = len(y)
        if self.classes is None:
            d_logits = o.copy()
            d_logits[np.arange(T), y] -= 1.0
            return d_logits, None
        c = self.c if self.bias else np.zeros_like(self.c)
        c_class = self.c_class if self.bias else np.zeros_like(self.c_class)
        d_logits = np.zeros((T, self.vocab_size), dtype=self.dtype)
        d_class_logits = np.zeros((T, self.classes.n_classes), dtype=self.dtype)
        for t in range(T):
            k = self.classes.word_class[y[t]]
            words = self.classes.words_of(k)
            d_class_logits[t] = np.exp(log_softmax(self.V_class @ s[t] + c_class))
            d_class_logits[t, k] -= 1.0
            d_logits[t, words] = np.exp(log_softmax(self.V[words] @ s[t] + c[words]))
            d_logits[t, y[t]] -= 1.0
        return d_logits, d_class_logits

    def state_jacobian(self, word: int, prev: np.ndarray) -> np.ndarray:
        """ds_t / ds_{t-1} (H x H) of one step (one sentence, for the gradient-flow report)."""
        raise NotImplementedError

    def _window_start(self, t: int) -> int:
        """The earliest step the error of output t reaches under the model's truncation."""
        return 0 if self.bptt_truncate is None else max(0, t - self.bptt_truncate)

    # ------------------------------------------------------------ batched fast path
    def _run_forward(self, inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        """Hidden states S (T x B x H) of a time-major batch of input indices (T x B), and what
        the cell's backward pass needs besides them."""
        raise NotImplementedError

    def _cell_gradients(self, inputs: np.ndarray, S: np.ndarray, cache: Any, dS: np.ndarray) -> dict[str, np.ndarray]:
        """The cell's parameter gradients, given the error each output puts on its state (dS)."""
        raise NotImplementedError

    def _hidden_states(self, inputs: np.ndarray) -> np.ndarray:
        """Hidden states S (T x B x H) of a time-major batch of input indices (T x B)."""
        return self._run_forward(inputs)[0]

    def token_log_probs(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Log-probability of each real target token, in time-major order of the mask."""
        S = self._hidden_states(inputs)
        real = np.flatnonzero(mask.ravel())
        states = S.reshape(-1, self.hidden_size)[real]
        if self.classes is None:
            return target_log_probs(states, targets.ravel()[real], self.V, self.output_bias, self.threads)
        return class_target_log_probs(states, targets.ravel()[real], self.V, self.output_bias, self.V_class,
                                      self.class_bias, self.classes, self.threads)

    def batch_loss(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
        """Summed cross-entropy over the real tokens of a batch (forward pass only)."""
        return float(-self.token_log_probs(inputs, targets, mask).astype(np.float64).sum())

    def mean_batch_loss(self, batches: list[Batch]) -> float:
        """Mean negative log-likelihood per real token over batches (UNKNOWN_TOKEN targets included)."""
        count = sum(b.n_tokens for b in batches)
        if count == 0:
            raise ValueError("no tokens to score")
        return sum(self.batch_loss(b.inputs, b.targets, b.mask) for b in batches) / count

    def batch_loss_and_gradients(
        self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, scale: float = 1.0,
        dropout: float = 0.0, rng: np.random.Generator | None = None,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Summed loss of a padded batch and the gradients of ``scale`` times that loss.

        ``inputs``, ``targets`` and ``mask`` are time-major (T x B); padding must come after each
        sentence's real tokens (mask 0), which then never influences the real ones.
        ``dropout`` > 0 zeroes that share of the hidden units on their way to the output layer
        (drawn from ``rng``; the rest scaled up to keep the mean), a regulariser of training
        only: the recurrence itself is left intact, so the memory of the sentence is not.
        """
        S, cache = self._run_forward(inputs)
        loss, grads, dS = self._output_layer_gradients(S, targets, mask, scale, dropout, rng)
        grads.update(self._cell_gradients(inputs, S, cache, dS))
        return loss, grads

    def _carry_back(self, dS: np.ndarray, step_back: StepBack) -> None:
        """Run the cell's ``step_back`` from the last step to the first under the model's truncation."""
        backward_through_time(dS, self.bptt_truncate, step_back, self._stream_observer)

    def lagged_state_errors(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, max_lag: int) -> np.ndarray:
        """||dE_{t+k} / ds_t|| for k = 0..max_lag (array (max_lag + 1) x T x B; NaN where output
        t + k is padding or past the end), E_t being output t's cross-entropy.

        Runs the cell's own backward pass with truncation ``max_lag``, whose error streams at step
        t are exactly dE_{t+k} / ds_t, and records their norms: the gradient-flow measurement of
        ``training/diagnose.py``, for any cell.
        """
        T, B = inputs.shape
        norms = np.full((max_lag + 1, T, B), np.nan)

        def observe(t: int, streams: np.ndarray) -> None:
            norms[: streams.shape[0], t] = np.linalg.norm(streams.astype(np.float64), axis=-1)

        S, cache = self._run_forward(inputs)
        _, _, dS = self._output_layer_gradients(S, targets, mask, 1.0, 0.0, None)
        saved = self.bptt_truncate
        self.bptt_truncate, self._stream_observer = max_lag, observe
        try:
            self._cell_gradients(inputs, S, cache, dS)
        finally:
            self.bptt_truncate, self._stream_observer = saved, None
        output_step = np.arange(max_lag + 1)[:, None] + np.arange(T)[None, :]  # (lags x T)
        inside = output_step < T
        real = np.zeros((max_lag + 1, T, B), dtype=bool)
        real[inside] = mask.astype(bool)[output_step[inside]]
        norms[~real] = np.nan
        return norms

    def _output_layer_gradients(
        self, S: np.ndarray, targets: np.ndarray, mask: np.ndarray, scale: float, dropout: float,
        rng: np.random.Generator | None,
    ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Loss, the output layer's gradients, and the error on each hidden state (T x B x H;
        zero at padding), all for ``scale`` times the summed loss."""
        T, B, H = S.shape
        real = np.flatnonzero(mask.ravel())
        states = S.reshape(T * B, H)[real]
        keep = None
        if dropout > 0:
            if rng is None:
                raise ValueError("dropout needs a random generator")
            keep = (rng.random(states.shape, dtype=np.float32) >= dropout).astype(self.dtype) / self.dtype.type(1 - dropout)
            states = states * keep
        if self.classes is None:
            out = output_backward(states, targets.ravel()[real], self.V, self.output_bias, scale, self.threads)
            grads = {"V": out.dV}
        else:
            out = class_output_backward(states, targets.ravel()[real], self.V, self.output_bias, self.V_class,
                                        self.class_bias, self.classes, scale, self.threads)
            grads = {"V": out.dV, "V_class": out.dV_class}
            if self.bias:
                grads["c_class"] = out.dc_class
        if self.bias:
            grads["c"] = out.dc
        dS = np.zeros((T * B, H), dtype=self.dtype)
        dS[real] = out.d_states if keep is None else out.d_states * keep
        return out.loss, grads, dS.reshape(T, B, H)

    def step_function(self, dtype: np.dtype | type = np.float32) -> Callable[[int, np.ndarray], np.ndarray]:
        """One step of the recurrence for generation, ``(word_id, h) -> next h``, on its own
        contiguous copies of the weights in ``dtype`` (a word's input weights as a row)."""
        raise NotImplementedError


def uniform(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """The tutorial's initialisation: uniform in +-1/sqrt(fan-in)."""
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


def input_column_gradients(words: np.ndarray, errors: np.ndarray, vocab_size: int) -> np.ndarray:
    """Gradient (H' x C) of input matrices whose column w is added when word w is read:
    ``errors[i]`` (n x H') is scatter-added into the column of ``words[i]``."""
    transposed = np.zeros((vocab_size, errors.shape[1]), dtype=errors.dtype)
    np.add.at(transposed, words, errors)
    return transposed.T


def backward_through_time(
    dS: np.ndarray, truncate: int | None, step_back: StepBack, observe: Callable[[int, np.ndarray], None] | None = None
) -> None:
    """Carry the outputs' errors back from the last step to the first, under truncation.

    ``dS[t]`` (B x H) is the error each output puts on its own hidden state. ``step_back(t, e,
    keep)`` gets the errors on s_t, stacked as streams (n x B x H), records what step t's
    parameters owe them, and returns the errors on s_{t-1} of the first ``keep`` streams. With
    full BPTT there is one stream, the sum of all outputs' errors. Under truncation k the error of
    output t + a reaches step t only for a <= k, so each of those k + 1 streams is carried
    separately: stream a at step t holds what output t + a puts on s_t, and the last is dropped.
    ``observe(t, streams)``, when given, sees the streams on s_t (always kept separate then).
    """
    T, B, H = dS.shape
    if observe is None and (truncate is None or truncate >= T - 1):
        to_prev = np.zeros((1, B, H), dtype=dS.dtype)
        for t in range(T - 1, -1, -1):
            to_prev = step_back(t, dS[t] + to_prev, 1 if t > 0 else 0)
        return
    streams = np.zeros((truncate + 1, B, H), dtype=dS.dtype)
    for t in range(T - 1, -1, -1):
        streams[0] = dS[t]
        if observe is not None:
            observe(t, streams)
        to_prev = step_back(t, streams, truncate if t > 0 else 0)
        if t > 0:
            streams[1:] = to_prev
