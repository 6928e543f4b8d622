"""The Elman RNN language model: s_t = f(U x_t + W s_{t-1} + b), o_t = softmax(V s_t + c), f = tanh or ReLU.

With word classes (``classes=``), the output is class-factored instead (Mikolov et al., 2011):
o_t[w] = softmax(V_class s_t + c_class)[class(w)] * softmax over w's class of (V s_t + c); see
``models.class_output``. The output layer (``models.softmax``), scoring and parameter bookkeeping
are shared with the other cells through ``models.recurrent_lm``; this module is the recurrence.

Two code paths compute the same numbers:

* ``forward_propagation`` / ``bptt``: one sentence, written for clarity. They are the oracle the
  tests compare the fast path against, and they keep the tutorial's names.
* ``batch_loss_and_gradients``: a padded, time-major batch of sentences; every time step does the
  whole batch at once and the output layer is one matrix product over all real tokens.

Truncation (``bptt_truncate = k``): the error of output t flows back through the hidden states of
steps t, t-1, ..., t-k (k + 1 steps, as in the tutorial's loop) and no further; so k = 0 keeps only
the step that produced the output. ``bptt_truncate=None`` is full backpropagation through time.
Gradients are always of the summed loss over the given tokens, times ``scale``.
"""
from __future__ import annotations

import numpy as np

from models.activations import ACTIVATIONS, activation_named
from models.initialisation import uniform
from models.recurrent_lm import RecurrentLM, StreamObserver, backward_through_time, input_column_gradients
from models.row_stable import rowwise_product


class RNN(RecurrentLM):
    """Elman RNN with the tutorial's initialisation: uniform in +-1/sqrt(fan-in); the
    nonlinearity f is tanh (the tutorial's) or ReLU (``activation="relu"``)."""

    CELL = "rnn"
    NAMES_WITH_BIAS = ("U", "W", "b")
    NAMES_NO_BIAS = ("U", "W")
    INPUT_NAMES = ("U",)  # INPUT_BIASES stays empty: ``step`` adds b after U x, as generation always has
    RECURRENT_NAMES = ("W",)
    MEMORY_MATRIX = "W"
    ACTIVATIONS = tuple(ACTIVATIONS)
    INITS = ("uniform", "orthogonal", "identity")  # with ReLU, the identity start is the IRNN

    @property
    def _f(self):
        return activation_named(self.activation)

    def _init_cell(self, rng: np.random.Generator, dtype: np.dtype | type) -> None:
        C, H = self.vocab_size, self.hidden_size
        self.U = uniform(rng, C, (H, C), dtype)
        self.W = uniform(rng, H, (H, H), dtype)
        self.b = np.zeros(H, dtype=dtype)

    # ----------------------------------------------------- one sentence: the oracle
    def _oracle_step(self, word: int, prev: np.ndarray) -> np.ndarray:
        b = self.b if self.bias else 0.0
        return self._f.apply(self.U[:, word] + self.W @ prev + b)

    def bptt(self, x: list[int], y: list[int]) -> tuple[np.ndarray, ...]:
        """Gradients of one sentence's summed loss under the model's truncation.

        Returns (dLdU, dLdW, dLdb) and then the output layer's (dLdV, dLdc, ...), without the
        biases for a model that has none.
        """
        T = len(y)
        o, s = self.forward_propagation(x)
        grads, d_states = self.output.oracle_gradients(o, s, y)
        dLdU = np.zeros_like(self.U)
        dLdW = np.zeros_like(self.W)
        dLdb = np.zeros_like(self.b)
        zero_state = self._oracle_start()
        for t in range(T):
            # error at the pre-activation of step t, caused by output t
            delta = d_states[t] * self._f.slope_from_output(s[t])
            for step in range(t, self._window_start(t) - 1, -1):
                prev = s[step - 1] if step > 0 else zero_state
                dLdW += np.outer(delta, prev)
                dLdU[:, x[step]] += delta
                dLdb += delta
                delta = (self.W.T @ delta) * self._f.slope_from_output(prev)
        grads.update(U=dLdU, W=dLdW, b=dLdb)
        return self._ordered(grads)

    def state_jacobian(self, word: int, prev: np.ndarray) -> np.ndarray:
        """ds_t / ds_{t-1} (H x H) after reading ``word`` in state ``prev``: diag(f'(s_t)) W."""
        return self._f.slope_from_output(self._oracle_step(word, prev))[:, None] * self.W

    # ------------------------------------------------------------ batched fast path
    def _run_forward(self, inputs: np.ndarray) -> tuple[np.ndarray, None]:
        T, B = inputs.shape
        S = np.empty((T, B, self.hidden_size), dtype=self.dtype)
        # U x_t for every step at once: a gather of columns of U
        pre = self.U[:, inputs.ravel()].T.reshape(T, B, self.hidden_size)
        if self.bias:
            pre += self.b
        h = self.initial_state(B)
        f = self._f.apply
        for t in range(T):
            f(pre[t] + h @ self.W.T, out=S[t])
            h = S[t]
        return S, None

    def _cell_gradients(
        self, inputs: np.ndarray, S: np.ndarray, cache: None, dS: np.ndarray, truncate: int | None,
        observe: StreamObserver | None = None,
    ) -> dict[str, np.ndarray]:
        H = self.hidden_size
        D = self._backward_through_time(dS, S, truncate, observe)
        D_flat = D.reshape(-1, H)
        grads = {
            "W": D[1:].reshape(-1, H).T @ S[:-1].reshape(-1, H),
            "U": input_column_gradients(inputs.ravel(), D_flat, self.vocab_size),
        }
        if self.bias:
            grads["b"] = D_flat.sum(axis=0)
        return grads

    def _backward_through_time(
        self, dS: np.ndarray, S: np.ndarray, truncate: int | None, observe: StreamObserver | None
    ) -> np.ndarray:
        """Error at each step's pre-activation (T x B x H), summed over the outputs that reach it."""
        D = np.empty_like(dS)
        W = self.W
        H = self.hidden_size
        slope = self._f.slope_from_output

        def step_back(t: int, errors: np.ndarray, keep: int) -> np.ndarray:
            pre = errors * slope(S[t])
            D[t] = pre.sum(axis=0)
            return (pre[:keep].reshape(-1, H) @ W).reshape(keep, *errors.shape[1:])

        backward_through_time(dS, truncate, step_back, observe)
        return D

    # ------------------------------------------------------------------ generation
    def step(self, words: np.ndarray, state: np.ndarray) -> np.ndarray:
        W, b = self._weights_in(state.dtype, "W", "b")
        h = rowwise_product(state, W.T)  # each sequence's state its own, whatever the batch
        h += self._input_rows(words, state.dtype)
        if self.bias:
            h += b
        return self._f.apply(h, out=h)
