"""The gated recurrent unit (Cho et al., 2014) as a language model's cell, with the RNN's output layer.

    z_t  = sigmoid(Uz x_t + Wz s_{t-1} + bz)            update gate
    r_t  = sigmoid(Ur x_t + Wr s_{t-1} + br)            reset gate
    h~_t = tanh(Uh x_t + Wh (r_t * s_{t-1}) + bh)       candidate state
    s_t  = (1 - z_t) * h~_t + z_t * s_{t-1}

Cho et al.'s convention: z_t near 1 keeps the old state, and the reset gate multiplies s_{t-1}
before ``Wh`` (not after, as cuDNN does). x_t is one-hot, so ``U? x_t`` is a column of each input
matrix, and the gradient of those matrices is a scatter-add over the words read. The output layer
(``models.softmax``: full or class-based), scoring and parameter bookkeeping come through
``models.recurrent_lm``.

As for the RNN, ``forward_propagation``/``bptt`` are the one-sentence oracle written for clarity,
and ``batch_loss_and_gradients`` the batched fast path; truncation k means the error of output t
flows back through steps t..t-k, carried in the fast path as k + 1 error streams, each passed back
through the GRU's step Jacobian.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.recurrent_lm import RecurrentLM, StreamObserver, backward_through_time, input_column_gradients
from models.row_stable import rowwise_product

INPUT_MATRICES = ("Uz", "Ur", "Uh")
RECURRENT_MATRICES = ("Wz", "Wr", "Wh")
BIASES = ("bz", "br", "bh")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written through tanh so that no input overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _sigmoid_in_place(x: np.ndarray) -> None:
    x *= 0.5
    np.tanh(x, out=x)
    x += 1.0
    x *= 0.5


@dataclass
class _GRUForward:
    """What the batched backward pass needs besides the states: per step (T x B x ...), the
    gates side by side (z, r: 2H), the candidate h~, r * s_{t-1}, and s_{t-1} itself."""

    gates: np.ndarray
    candidate: np.ndarray
    reset_prev: np.ndarray
    prev: np.ndarray


class GRU(RecurrentLM):
    """GRU language model; the tutorial's initialisation (uniform in +-1/sqrt(fan-in), biases zero)."""

    CELL = "gru"
    NAMES_WITH_BIAS = INPUT_MATRICES + RECURRENT_MATRICES + BIASES
    NAMES_NO_BIAS = INPUT_MATRICES + RECURRENT_MATRICES
    INPUT_NAMES = INPUT_MATRICES
    INPUT_BIASES = BIASES
    RECURRENT_NAMES = RECURRENT_MATRICES
    MEMORY_MATRIX = "Wh"  # the candidate's recurrent matrix: the one the diagnosis reports

    def _init_cell(self, rng: np.random.Generator, dtype: np.dtype | type) -> None:
        self._start_as_tutorial(rng, dtype, BIASES)

    def _biases(self) -> tuple[np.ndarray | float, ...]:
        return (self.bz, self.br, self.bh) if self.bias else (0.0, 0.0, 0.0)

    # ----------------------------------------------------- one sentence: the oracle
    def _gates(self, word: int, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Update gate z, reset gate r and candidate h~ of one step."""
        bz, br, bh = self._biases()
        z = sigmoid(self.Uz[:, word] + self.Wz @ prev + bz)
        r = sigmoid(self.Ur[:, word] + self.Wr @ prev + br)
        candidate = np.tanh(self.Uh[:, word] + self.Wh @ (r * prev) + bh)
        return z, r, candidate

    def _oracle_step(self, word: int, prev: np.ndarray) -> np.ndarray:
        z, _, candidate = self._gates(word, prev)
        return (1.0 - z) * candidate + z * prev

    def bptt(self, x: list[int], y: list[int]) -> tuple[np.ndarray, ...]:
        """Gradients of one sentence's summed loss under the model's truncation, in
        ``parameter_names`` order (Uz, Ur, Uh, Wz, Wr, Wh, [bz, br, bh], V, [c], ...)."""
        T = len(y)
        o, s = self.forward_propagation(x)
        grads, d_states = self.output.oracle_gradients(o, s, y)
        for name in INPUT_MATRICES + RECURRENT_MATRICES + BIASES:
            grads[name] = np.zeros_like(getattr(self, name))
        zero_state = self._oracle_start()
        for t in range(T):
            error = d_states[t]  # d loss_t / d s_t, passed back one step at a time
            for step in range(t, self._window_start(t) - 1, -1):
                prev = s[step - 1] if step > 0 else zero_state
                z, r, candidate = self._gates(x[step], prev)
                # errors at the pre-activations of the candidate, the update gate and the reset gate
                d_candidate = error * (1.0 - z) * (1.0 - candidate**2)
                d_reset_prev = self.Wh.T @ d_candidate
                d_update = error * (prev - candidate) * z * (1.0 - z)
                d_reset = d_reset_prev * prev * r * (1.0 - r)
                for gate, delta, source in (("z", d_update, prev), ("r", d_reset, prev), ("h", d_candidate, r * prev)):
                    grads["U" + gate][:, x[step]] += delta
                    grads["W" + gate] += np.outer(delta, source)
                    grads["b" + gate] += delta
                error = error * z + d_reset_prev * r + self.Wz.T @ d_update + self.Wr.T @ d_reset
        return self._ordered(grads)

    def state_jacobian(self, word: int, prev: np.ndarray) -> np.ndarray:
        """ds_t / ds_{t-1} (H x H) after reading ``word`` in state ``prev``: the direct path z,
        plus the paths through the update gate, the reset gate and the candidate."""
        z, r, candidate = self._gates(word, prev)
        d_update = (z * (1.0 - z))[:, None] * self.Wz
        d_reset = (r * (1.0 - r))[:, None] * self.Wr
        d_candidate = (1.0 - candidate**2)[:, None] * (self.Wh @ (np.diag(r) + prev[:, None] * d_reset))
        return np.diag(z) + (prev - candidate)[:, None] * d_update + (1.0 - z)[:, None] * d_candidate

    # ------------------------------------------------------------ batched fast path
    _gate_weights: np.ndarray | None = None  # a generation copy's [Wz; Wr], made once
    KEPT_FOR_GENERATION = RecurrentLM.KEPT_FOR_GENERATION + ("_gate_weights",)

    def _stacked_gate_weights(self) -> np.ndarray:
        """[Wz; Wr] (2H x H): both gates' recurrent products in one matrix product."""
        return self._gate_weights if self._gate_weights is not None else np.concatenate([self.Wz, self.Wr])

    def _keep_for_generation(self) -> None:
        super()._keep_for_generation()
        self._gate_weights = self._stacked_gate_weights()

    def _run_forward(self, inputs: np.ndarray) -> tuple[np.ndarray, _GRUForward]:
        T, B = inputs.shape
        H = self.hidden_size
        words = inputs.ravel()
        # the input parts of every step at once: gathers of columns of the input matrices
        gate_inputs = np.empty((T * B, 2 * H), dtype=self.dtype)
        gate_inputs[:, :H] = self.Uz[:, words].T
        gate_inputs[:, H:] = self.Ur[:, words].T
        candidate_inputs = self.Uh[:, words].T.copy()
        if self.bias:
            gate_inputs[:, :H] += self.bz
            gate_inputs[:, H:] += self.br
            candidate_inputs += self.bh
        gate_inputs = gate_inputs.reshape(T, B, 2 * H)
        candidate_inputs = candidate_inputs.reshape(T, B, H)
        W_zr = self._stacked_gate_weights()
        S = np.empty((T, B, H), dtype=self.dtype)
        saved = _GRUForward(
            gates=np.empty((T, B, 2 * H), dtype=self.dtype), candidate=np.empty((T, B, H), dtype=self.dtype),
            reset_prev=np.empty((T, B, H), dtype=self.dtype), prev=np.empty((T, B, H), dtype=self.dtype),
        )
        h = self.initial_state(B)
        for t in range(T):
            saved.prev[t] = h
            gates = saved.gates[t]
            np.matmul(h, W_zr.T, out=gates)
            gates += gate_inputs[t]
            _sigmoid_in_place(gates)
            z, r = gates[:, :H], gates[:, H:]
            np.multiply(r, h, out=saved.reset_prev[t])
            candidate = saved.candidate[t]
            np.matmul(saved.reset_prev[t], self.Wh.T, out=candidate)
            candidate += candidate_inputs[t]
            np.tanh(candidate, out=candidate)
            # s = (1 - z) h~ + z s_prev = h~ + z (s_prev - h~)
            np.subtract(h, candidate, out=S[t])
            S[t] *= z
            S[t] += candidate
            h = S[t]
        return S, saved

    def _cell_gradients(
        self, inputs: np.ndarray, S: np.ndarray, saved: _GRUForward, dS: np.ndarray, truncate: int | None,
        observe: StreamObserver | None = None,
    ) -> dict[str, np.ndarray]:
        T, B, H = dS.shape
        # per step, summed over the error streams: errors at the pre-activations of z, r and h~
        pre = np.empty((T, B, 3 * H), dtype=self.dtype)
        W_zr = self._stacked_gate_weights()
        Wh = self.Wh

        def step_back(t: int, errors: np.ndarray, keep: int) -> np.ndarray:
            z, r = saved.gates[t, :, :H], saved.gates[t, :, H:]
            candidate, prev = saved.candidate[t], saved.prev[t]
            n = errors.shape[0]
            d_candidate = errors * ((1.0 - z) * (1.0 - candidate**2))
            d_reset_prev = (d_candidate.reshape(-1, H) @ Wh).reshape(n, B, H)
            d_gates = np.empty((n, B, 2 * H), dtype=errors.dtype)
            d_gates[..., :H] = errors * ((prev - candidate) * z * (1.0 - z))
            d_gates[..., H:] = d_reset_prev * (prev * r * (1.0 - r))
            pre[t, :, : 2 * H] = d_gates.sum(axis=0)
            pre[t, :, 2 * H :] = d_candidate.sum(axis=0)
            through_gates = (d_gates[:keep].reshape(-1, 2 * H) @ W_zr).reshape(keep, B, H)
            return errors[:keep] * z + d_reset_prev[:keep] * r + through_gates

        backward_through_time(dS, truncate, step_back, observe)
        flat = pre.reshape(T * B, 3 * H)
        d_input = input_column_gradients(inputs.ravel(), flat, self.vocab_size)  # (3H x C)
        d_W_zr = flat[:, : 2 * H].T @ saved.prev.reshape(T * B, H)
        grads = {
            "Uz": d_input[:H], "Ur": d_input[H : 2 * H], "Uh": d_input[2 * H :],
            "Wz": d_W_zr[:H], "Wr": d_W_zr[H:], "Wh": flat[:, 2 * H :].T @ saved.reset_prev.reshape(T * B, H),
        }
        if self.bias:
            bias_grads = flat.sum(axis=0)
            grads.update(bz=bias_grads[:H], br=bias_grads[H : 2 * H], bh=bias_grads[2 * H :])
        return grads

    # ------------------------------------------------------------------ generation
    def step(self, words: np.ndarray, state: np.ndarray) -> np.ndarray:
        H = self.hidden_size
        W_zr = self._stacked_gate_weights()
        Wh = self.Wh
        if W_zr.dtype != state.dtype:
            W_zr, Wh = W_zr.astype(state.dtype), Wh.astype(state.dtype)
        rows = self._input_rows(words, state.dtype)  # z, r and h~ inputs, biases added
        gates = rowwise_product(state, W_zr.T)  # each sequence's state its own, whatever the batch
        gates += rows[:, : 2 * H]
        _sigmoid_in_place(gates)
        z, r = gates[:, :H], gates[:, H:]
        candidate = rowwise_product(r * state, Wh.T)
        candidate += rows[:, 2 * H :]
        np.tanh(candidate, out=candidate)
        # s = (1 - z) h~ + z s_prev = h~ + z (s_prev - h~)
        new = state - candidate
        new *= z
        new += candidate
        return new
