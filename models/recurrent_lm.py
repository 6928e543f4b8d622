"""What every recurrent language model here shares, whatever its cell (``models.rnn``, ``models.gru``, ``models.lstm``).

A model reads words into a state and predicts the next word from the hidden vector it reads out
of that state, through its output layer (``models.softmax``: the full or the class softmax). The
contract a cell fulfils, for training, scoring and generation alike:

* ``initial_state(batch)``: the state before SENTENCE_START is read, for B sequences;
* ``step(words, state)``: the state after each sequence reads its word (B words at once), in the
  precision of the state it is given (generation runs float32);
* ``readout(state)``: the B x H hidden vectors the output layer reads;
* ``take_states(state, rows)`` and ``join_states(states)``: a batch's states of some sequences,
  and several batches' states as one (a decoder admits and retires sequences between steps).

The state is the cell's business (the RNN's and the GRU's is the hidden vector itself, the
LSTM's its hidden vector and memory side by side); nothing
outside the cell builds one. This base class owns the output layer, the parameter bookkeeping,
the scoring helpers and the output half of the batched gradient; a subclass supplies the cell:
its parameters, one oracle step, ``step``, the batched forward pass and its backward pass.

Truncation (``bptt_truncate = k``) means the same for every cell: the error of output t flows
back through the hidden states of steps t, t-1, ..., t-k and no further (``None``: full BPTT).
The model's own setting is the default of every gradient; a caller may ask for another.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np

from models.batching import Batch, scoring_batches
from models.initialisation import uniform
from models.row_stable import consistent_width, pad_rows
from models.softmax import MOST_ROWS, OutputLayer, output_layer
from models.word_classes import WordClasses

# step_back(t, errors on s_t (n x B x H), keep) -> errors on s_{t-1} of the first ``keep`` streams
StepBack = Callable[[int, np.ndarray, int], np.ndarray]
# observe(t, error streams on s_t): sees the backward pass's streams (the gradient-flow report)
StreamObserver = Callable[[int, np.ndarray], None]


class Truncation(enum.Enum):
    AS_BUILT = "the model's own bptt_truncate"


AS_BUILT = Truncation.AS_BUILT  # the default truncation of a gradient: the model's own


class RecurrentLM:
    """The output layer and everything around the cell; subclasses define the recurrence.

    A subclass sets ``CELL`` (its name in model files), ``NAMES_WITH_BIAS`` / ``NAMES_NO_BIAS``
    (the cell's parameters, in the order ``bptt`` returns them, before the output layer's),
    ``INPUT_NAMES`` (the matrices with one column per input word), and implements
    ``_init_cell``, ``_oracle_step``, ``bptt``, ``step``, ``_run_forward``, ``_cell_gradients``
    and ``state_jacobian``.
    """

    CELL = ""
    NAMES_WITH_BIAS: tuple[str, ...] = ()
    NAMES_NO_BIAS: tuple[str, ...] = ()
    INPUT_NAMES: tuple[str, ...] = ()
    # biases ``step`` adds together with the input columns (one per input matrix, or none)
    INPUT_BIASES: tuple[str, ...] = ()
    RECURRENT_NAMES: tuple[str, ...] = ()  # the H x H matrices applied to s_{t-1} (``--init``)
    MEMORY_MATRIX = ""  # the recurrent matrix whose singular values the gradient-flow report gives
    ACTIVATIONS: tuple[str, ...] = ("tanh",)  # the nonlinearities the cell can have
    INITS: tuple[str, ...] = ("uniform", "orthogonal")  # the starts of its recurrent matrices (``--init``)
    init = "uniform"  # how the recurrent matrices started (``--init``): a record, kept in the model file
    _word_rows: np.ndarray | None = None  # a generation copy's input rows of every word (``for_generation``)
    _step_width = 1  # a generation copy's row count for ``stable_step`` (``for_generation``)
    KEPT_FOR_GENERATION: tuple[str, ...] = ("_word_rows", "_step_width")  # what ``_keep_for_generation`` makes

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
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.bptt_truncate = bptt_truncate
        self.bias = bias
        self.activation = activation
        self.threads = 1  # worker threads of the batched output layer (a speed setting, not saved)
        rng = np.random.default_rng(seed)
        self._init_cell(rng, dtype)
        self.output: OutputLayer = output_layer(vocab_size, hidden_size, bias, rng, dtype, classes)

    def _init_cell(self, rng: np.random.Generator, dtype: np.dtype | type) -> None:
        raise NotImplementedError

    def _start_as_tutorial(self, rng: np.random.Generator, dtype: np.dtype | type, biases: tuple[str, ...]) -> None:
        """The tutorial's start: input matrices (H x C) uniform in +-1/sqrt(C), recurrent ones
        (H x H) in +-1/sqrt(H), ``biases`` zero."""
        C, H = self.vocab_size, self.hidden_size
        for name in self.INPUT_NAMES:
            setattr(self, name, uniform(rng, C, (H, C), dtype))
        for name in self.RECURRENT_NAMES:
            setattr(self, name, uniform(rng, H, (H, H), dtype))
        for name in biases:
            setattr(self, name, np.zeros(H, dtype=dtype))

    # ----------------------------------------------------------------- parameters
    @property
    def cell(self) -> str:
        """The recurrence, as model files and ``--cell`` name it ("rnn", "gru")."""
        return self.CELL

    @property
    def cell_parameter_names(self) -> tuple[str, ...]:
        return self.NAMES_WITH_BIAS if self.bias else self.NAMES_NO_BIAS

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The cell's parameters, then the output layer's."""
        return self.cell_parameter_names + self.output.parameter_names

    @property
    def input_matrix_names(self) -> tuple[str, ...]:
        """Parameters with one column per input word: a batch's gradient of them is zero outside
        its input words' columns, so the trainer updates just those columns."""
        return self.INPUT_NAMES

    @property
    def classes(self) -> WordClasses | None:
        """The output layer's word classes (None for the full softmax)."""
        return self.output.classes

    @property
    def softmax(self) -> str:
        """"full" or "class": which output layer the model has."""
        return self.output.KIND

    @property
    def dtype(self) -> np.dtype:
        return self.output.V.dtype

    def parameters(self) -> dict[str, np.ndarray]:
        """The trainable arrays by name (the live arrays, not copies)."""
        cell = {name: getattr(self, name) for name in self.cell_parameter_names}
        return {**cell, **self.output.parameters()}

    @property
    def parameter_count(self) -> int:
        """How many numbers the trainable arrays hold together."""
        return sum(p.size for p in self.parameters().values())

    def set_parameters(self, params: dict[str, np.ndarray]) -> None:
        """Replace the arrays (copied, cast to the model's dtype) after checking shapes."""
        for name in self.parameter_names:
            owner = self if name in self.cell_parameter_names else self.output
            new = np.asarray(params[name])
            old = getattr(owner, name)
            if new.shape != old.shape:
                raise ValueError(f"parameter {name} has shape {new.shape}, expected {old.shape}")
            setattr(owner, name, new.astype(old.dtype, copy=True))

    def astype(self, dtype: np.dtype | type) -> "RecurrentLM":
        """A copy of the model with parameters cast to ``dtype`` (float64 for gradient checks)."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        for name in self.NAMES_WITH_BIAS:
            setattr(other, name, getattr(self, name).astype(dtype, copy=True))
        other.output = self.output.astype(dtype)
        for name in self.KEPT_FOR_GENERATION:  # what a generation copy keeps belongs to it alone
            other.__dict__.pop(name, None)
        return other

    def for_generation(self, most_rows: int = MOST_ROWS) -> "RecurrentLM":
        """A read-only float32 copy to generate from: its output layer makes the copies sampling
        needs once (``OutputLayer.freeze``), its step's row-stable width is measured up to
        ``most_rows`` (``stable_step``), and nothing can train it by mistake."""
        other = self.astype(np.float32)
        for name in other.NAMES_WITH_BIAS:
            getattr(other, name).flags.writeable = False
        other._keep_for_generation()
        other._step_width = other._measure_step_width(max(2, most_rows))
        other.output.freeze(most_rows)
        return other

    def _measure_step_width(self, most: int) -> int:
        """The row count ``stable_step`` pads to (``consistent_width``), probed with random states:
        the first row and a fixed last row, whatever the rows between."""
        probe = np.random.default_rng(12345)
        words = probe.integers(0, self.vocab_size, most)
        state = self.step(words, self.initial_state(most, np.float32))

        def first_and_last(n: int) -> list[bytes]:
            rows = list(range(n - 1)) + [most - 1]
            result = np.asarray(self.step(words[rows], self.take_states(state, rows)))
            return [result[0].tobytes(), result[n - 1].tobytes()]

        width = consistent_width(first_and_last, most)
        if width == 2:  # the probe needs two rows; one alone costs half a padded step if it rounds the same
            alone = [np.asarray(self.step(words[[row]], self.take_states(state, [row])))[0].tobytes()
                     for row in (0, most - 1)]
            if alone == first_and_last(2):
                return 1
        return width

    def stable_step(self, words: np.ndarray, state: np.ndarray) -> np.ndarray:
        """``step``, each row's new state independent of the other rows: run on at least the
        measured row count, padded with copies of the first row (``models.row_stable``)."""
        n = len(words)
        if n >= self._step_width:
            return self.step(words, state)
        padded = self.step(pad_rows(np.asarray(words)[:, None], self._step_width)[:, 0],
                           self.take_states(state, list(range(n)) + [0] * (self._step_width - n)))
        return self.take_states(padded, list(range(n)))

    def _keep_for_generation(self) -> None:
        """Make what ``step`` reads on every word once, laid out for speed: the input rows of
        every word (a cell may keep more)."""
        self._word_rows = self._input_rows(slice(None), self.dtype)

    def _ordered(self, grads: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Gradients as the tuple ``bptt`` returns: in ``parameter_names`` order."""
        return tuple(grads[name] for name in self.parameter_names)

    # ------------------------------------------------------------ the state
    def initial_state(self, batch: int, dtype: np.dtype | type | None = None) -> np.ndarray:
        """The state of ``batch`` sequences before anything is read (zeros, B x H), in ``dtype``
        (default: the model's). A cell whose state is more than its hidden vector overrides this
        and ``readout``."""
        return np.zeros((batch, self.hidden_size), dtype=self.dtype if dtype is None else dtype)

    def step(self, words: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The state after each of the B sequences reads its word (``words``: B ids), computed in
        ``state``'s precision; ``state`` itself is left as it was."""
        raise NotImplementedError

    def readout(self, state: np.ndarray) -> np.ndarray:
        """The hidden vectors (B x H) the output layer reads from ``state``; of the one-sentence
        oracle's state (a vector), its hidden vector."""
        return state

    def take_states(self, state: np.ndarray, rows: np.ndarray | list[int]) -> np.ndarray:
        """The states of the sequences at ``rows`` of a batch, in that order."""
        return state[rows]

    def join_states(self, states: list[np.ndarray]) -> np.ndarray:
        """Several batches' states as one batch, in order."""
        return np.concatenate(states)

    def restarted_states(self, state: np.ndarray, rows: list[int]) -> np.ndarray:
        """A copy of a batch's states with the sequences at ``rows`` back at ``initial_state``
        (one copy, where taking and joining every row's state would make one array a row)."""
        restarted = state.copy()
        restarted[rows] = self.initial_state(len(rows), state.dtype)
        return restarted

    def _weights_in(self, dtype: np.dtype, *names: str) -> list[np.ndarray]:
        """The cell's arrays in ``dtype`` (no copy when they already are)."""
        if dtype == self.dtype:
            return [getattr(self, name) for name in names]
        return [getattr(self, name).astype(dtype) for name in names]

    def _input_rows(self, words: np.ndarray | slice, dtype: np.dtype) -> np.ndarray:
        """Each word's columns of the input matrices side by side (B x kH), ``INPUT_BIASES``
        added: the input part of a step. A generation copy keeps them for every word as
        contiguous rows (a row is one read; a column of an H x C matrix is H scattered ones)."""
        if self._word_rows is not None and dtype == self._word_rows.dtype:
            return self._word_rows.take(words, axis=0)  # ``take``: a few rows in a fraction of indexing's time
        rows = np.concatenate(self._weights_in(dtype, *self.INPUT_NAMES))[:, words].T
        if self.bias and self.INPUT_BIASES:
            rows = rows + np.concatenate(self._weights_in(dtype, *self.INPUT_BIASES))
        return np.ascontiguousarray(rows)

    # ----------------------------------------------------- one sentence: the oracle
    def _oracle_step(self, word: int, prev: np.ndarray) -> np.ndarray:
        """The state after reading ``word`` in state ``prev`` (one sentence, for clarity): a
        vector, a batch state's row (``readout`` gives its hidden vector)."""
        raise NotImplementedError

    def _oracle_start(self) -> np.ndarray:
        """The one-sentence oracle's state before its first word."""
        return self.initial_state(1)[0]

    def _oracle_states(self, x: list[int] | np.ndarray) -> list[np.ndarray]:
        """The oracle's state after each word of one sentence."""
        states = []
        state = self._oracle_start()
        for word in x:
            state = self._oracle_step(word, state)
            states.append(state)
        return states

    def forward_propagation(self, x: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output probabilities o (T x C) and hidden vectors s (T x H, the readouts of the
        states) of one sentence."""
        T = len(x)
        s = np.zeros((T, self.hidden_size), dtype=self.dtype)
        o = np.zeros((T, self.vocab_size), dtype=self.dtype)
        for t, state in enumerate(self._oracle_states(x)):
            s[t] = self.readout(state)
            o[t] = np.exp(self.output.oracle_log_probs(s[t]))
        return o, s

    def calculate_loss(self, X: list, Y: list) -> float:
        """Mean cross-entropy per predicted word over lists of sentences (inputs X, targets Y)."""
        return self.mean_batch_loss(scoring_batches(X, Y))

    def bptt(self, x: list[int], y: list[int]) -> tuple[np.ndarray, ...]:
        """Gradients of one sentence's summed loss under the model's truncation, in
        ``parameter_names`` order."""
        raise NotImplementedError

    def state_jacobian(self, word: int, prev: np.ndarray) -> np.ndarray:
        """ds_t / ds_{t-1} of one step, s being the oracle's state (H x H when that is the hidden
        vector; one sentence, for the gradient-flow report)."""
        raise NotImplementedError

    def _window_start(self, t: int) -> int:
        """The earliest step the error of output t reaches under the model's truncation."""
        return 0 if self.bptt_truncate is None else max(0, t - self.bptt_truncate)

    # ------------------------------------------------------------ batched fast path
    def _run_forward(self, inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        """Hidden states S (T x B x H) of a time-major batch of input indices (T x B), and what
        the cell's backward pass needs besides them."""
        raise NotImplementedError

    def _cell_gradients(
        self, inputs: np.ndarray, S: np.ndarray, cache: Any, dS: np.ndarray, truncate: int | None,
        observe: StreamObserver | None = None,
    ) -> dict[str, np.ndarray]:
        """The cell's parameter gradients under truncation ``truncate``, given the error each
        output puts on its state (dS); ``observe`` sees the error streams (``backward_through_time``)."""
        raise NotImplementedError

    def _hidden_states(self, inputs: np.ndarray) -> np.ndarray:
        """Hidden states S (T x B x H) of a time-major batch of input indices (T x B)."""
        return self._run_forward(inputs)[0]

    def token_log_probs(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Log-probability of each real target token, in time-major order of the mask."""
        S = self._hidden_states(inputs)
        real = np.flatnonzero(mask.ravel())
        states = S.reshape(-1, self.hidden_size)[real]
        return self.output.target_log_probs(states, targets.ravel()[real], self.threads)

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
        bptt_truncate: int | None | Truncation = AS_BUILT,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Summed loss of a padded batch and the gradients of ``scale`` times that loss.

        ``inputs``, ``targets`` and ``mask`` are time-major (T x B); padding must come after each
        sentence's real tokens (mask 0), which then never influences the real ones.
        ``dropout`` > 0 zeroes that share of the hidden units on their way to the output layer
        (drawn from ``rng``; the rest scaled up to keep the mean), a regulariser of training
        only: the recurrence itself is left intact, so the memory of the sentence is not.
        ``bptt_truncate``: the truncation of this gradient (default: the model's own).
        """
        truncate = self.bptt_truncate if bptt_truncate is AS_BUILT else bptt_truncate
        S, cache = self._run_forward(inputs)
        loss, grads, dS = self._output_layer_gradients(S, targets, mask, scale, dropout, rng)
        grads.update(self._cell_gradients(inputs, S, cache, dS, truncate))
        return loss, grads

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
        self._cell_gradients(inputs, S, cache, dS, max_lag, observe)
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
        loss, grads, d_states = self.output.backward(states, targets.ravel()[real], scale, self.threads)
        dS = np.zeros((T * B, H), dtype=self.dtype)
        dS[real] = d_states if keep is None else d_states * keep
        return loss, grads, dS.reshape(T, B, H)


def input_column_gradients(words: np.ndarray, errors: np.ndarray, vocab_size: int) -> np.ndarray:
    """Gradient (H' x C) of input matrices whose column w is added when word w is read:
    ``errors[i]`` (n x H') is scatter-added into the column of ``words[i]``."""
    transposed = np.zeros((vocab_size, errors.shape[1]), dtype=errors.dtype)
    np.add.at(transposed, words, errors)
    return transposed.T


def backward_through_time(
    dS: np.ndarray, truncate: int | None, step_back: StepBack, observe: StreamObserver | None = None
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
