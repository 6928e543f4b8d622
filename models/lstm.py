"""The long short-term memory cell (Hochreiter and Schmidhuber, 1997; with the forget gate of Gers
et al., 2000) as a language model's cell, with the other cells' output layer.

    i_t = sigmoid(Ui x_t + Wi h_{t-1} + bi)      input gate
    f_t = sigmoid(Uf x_t + Wf h_{t-1} + bf)      forget gate
    o_t = sigmoid(Uo x_t + Wo h_{t-1} + bo)      output gate
    g_t = tanh(Ug x_t + Wg h_{t-1} + bg)         candidate
    c_t = f_t * c_{t-1} + i_t * g_t              memory
    h_t = o_t * tanh(c_t)                        what the output layer reads

The state is (h, c), held as one B x 2H array [h | c] so that taking, joining and copying states
needs nothing of the cell; ``readout`` is its h half. The one-sentence oracle's state is the same
2H vector, so ``state_jacobian`` is d(h_t, c_t) / d(h_{t-1}, c_{t-1}). Truncation k means what it
means for every cell: the error of output t flows back through the states of steps t..t-k; the
fast path carries it as k + 1 error streams on (h, c).

The forget gate's bias starts at 1 (Jozefowicz et al., 2015): a cell that starts by keeping its
memory learns long dependencies sooner; the other biases start at zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.gru import sigmoid
from models.recurrent_lm import RecurrentLM, StreamObserver, backward_through_time, input_column_gradients
from models.row_stable import rowwise_product

GATES = ("i", "f", "o", "g")  # the stacked order: three sigmoid gates, then the tanh candidate
INPUT_MATRICES = tuple("U" + gate for gate in GATES)
RECURRENT_MATRICES = tuple("W" + gate for gate in GATES)
BIASES = tuple("b" + gate for gate in GATES)
FORGET_BIAS_START = 1.0


@dataclass
class _LSTMForward:
    """What the batched backward pass needs (T x B x ...): the gates after their nonlinearities
    side by side (i, f, o, g: 4H), tanh(c_t), and the previous h and c."""

    gates: np.ndarray
    tanh_memory: np.ndarray
    prev_hidden: np.ndarray
    prev_memory: np.ndarray


class LSTM(RecurrentLM):
    """LSTM language model; the tutorial's initialisation (uniform in +-1/sqrt(fan-in)) but for the
    forget gate's bias."""

    CELL = "lstm"
    NAMES_WITH_BIAS = INPUT_MATRICES + RECURRENT_MATRICES + BIASES
    NAMES_NO_BIAS = INPUT_MATRICES + RECURRENT_MATRICES
    INPUT_NAMES = INPUT_MATRICES
    INPUT_BIASES = BIASES
    RECURRENT_NAMES = RECURRENT_MATRICES
    MEMORY_MATRIX = "Wg"  # the candidate's recurrent matrix, as the GRU's Wh

    def _init_cell(self, rng: np.random.Generator, dtype: np.dtype | type) -> None:
        self._start_as_tutorial(rng, dtype, BIASES)
        self.bf += FORGET_BIAS_START

    # ------------------------------------------------------------ the state
    def initial_state(self, batch: int, dtype: np.dtype | type | None = None) -> np.ndarray:
        """(h, c) = (0, 0) for ``batch`` sequences, as one B x 2H array."""
        return np.zeros((batch, 2 * self.hidden_size), dtype=self.dtype if dtype is None else dtype)

    def readout(self, state: np.ndarray) -> np.ndarray:
        """h, the first half of each state (of a batch, or of the oracle's one state)."""
        return state[..., : self.hidden_size]

    # ----------------------------------------------------- one sentence: the oracle
    def _gates(self, word: int, prev_hidden: np.ndarray) -> tuple[np.ndarray, ...]:
        """Input, forget and output gates and the candidate of one step."""
        biases = [getattr(self, name) if self.bias else 0.0 for name in BIASES]
        pre = [getattr(self, "U" + gate)[:, word] + getattr(self, "W" + gate) @ prev_hidden + b
               for gate, b in zip(GATES, biases)]
        return sigmoid(pre[0]), sigmoid(pre[1]), sigmoid(pre[2]), np.tanh(pre[3])

    def _oracle_step(self, word: int, prev: np.ndarray) -> np.ndarray:
        H = self.hidden_size
        i, f, o, g = self._gates(word, prev[:H])
        memory = f * prev[H:] + i * g
        return np.concatenate([o * np.tanh(memory), memory])

    def bptt(self, x: list[int], y: list[int]) -> tuple[np.ndarray, ...]:
        """Gradients of one sentence's summed loss under the model's truncation, in
        ``parameter_names`` order (Ui, Uf, Uo, Ug, Wi, ..., [bi, ...], V, [c], ...)."""
        H = self.hidden_size
        states = self._oracle_states(x)
        o_probs = np.array([np.exp(self.output.oracle_log_probs(self.readout(s))) for s in states])
        grads, d_hidden = self.output.oracle_gradients(o_probs, np.array([self.readout(s) for s in states]), y)
        for name in self.NAMES_WITH_BIAS:
            grads[name] = np.zeros_like(getattr(self, name))
        start = self._oracle_start()
        for t in range(len(y)):
            dh, dc = d_hidden[t], np.zeros(H)  # d loss_t / d (h, c) of the step being passed back
            for step in range(t, self._window_start(t) - 1, -1):
                prev = states[step - 1] if step > 0 else start
                i, f, o, g = self._gates(x[step], prev[:H])
                tanh_memory = np.tanh(states[step][H:])
                dc = dc + dh * o * (1.0 - tanh_memory**2)
                deltas = {  # errors at the gates' pre-activations
                    "i": dc * g * i * (1.0 - i), "f": dc * prev[H:] * f * (1.0 - f),
                    "o": dh * tanh_memory * o * (1.0 - o), "g": dc * i * (1.0 - g**2),
                }
                for gate, delta in deltas.items():
                    grads["U" + gate][:, x[step]] += delta
                    grads["W" + gate] += np.outer(delta, prev[:H])
                    grads["b" + gate] += delta
                dh = sum(getattr(self, "W" + gate).T @ delta for gate, delta in deltas.items())
                dc = dc * f
        return self._ordered(grads)

    def state_jacobian(self, word: int, prev: np.ndarray) -> np.ndarray:
        """d(h_t, c_t) / d(h_{t-1}, c_{t-1}) (2H x 2H) after reading ``word`` in state ``prev``."""
        H = self.hidden_size
        i, f, o, g = self._gates(word, prev[:H])
        tanh_memory = np.tanh(f * prev[H:] + i * g)
        memory_from_hidden = ((g * i * (1.0 - i))[:, None] * self.Wi + (prev[H:] * f * (1.0 - f))[:, None] * self.Wf
                              + (i * (1.0 - g**2))[:, None] * self.Wg)
        slope = o * (1.0 - tanh_memory**2)
        jacobian = np.empty((2 * H, 2 * H))
        jacobian[:H, :H] = (tanh_memory * o * (1.0 - o))[:, None] * self.Wo + slope[:, None] * memory_from_hidden
        jacobian[:H, H:] = np.diag(slope * f)
        jacobian[H:, :H] = memory_from_hidden
        jacobian[H:, H:] = np.diag(f)
        return jacobian

    # ------------------------------------------------------------ batched fast path
    _stacked: np.ndarray | None = None  # a generation copy's [Wi; Wf; Wo; Wg], made once
    KEPT_FOR_GENERATION = RecurrentLM.KEPT_FOR_GENERATION + ("_stacked",)

    def _recurrent_weights(self) -> np.ndarray:
        """[Wi; Wf; Wo; Wg] (4H x H): every gate's recurrent product in one matrix product."""
        return self._stacked if self._stacked is not None else np.concatenate([getattr(self, n) for n in RECURRENT_MATRICES])

    def _keep_for_generation(self) -> None:
        super()._keep_for_generation()
        self._stacked = self._recurrent_weights()

    def _activate(self, gates: np.ndarray) -> None:
        """The gates' nonlinearities in place: logistic on i, f, o; tanh on the candidate."""
        three = 3 * self.hidden_size
        gates[..., :three] = sigmoid(gates[..., :three])
        np.tanh(gates[..., three:], out=gates[..., three:])

    def _run_forward(self, inputs: np.ndarray) -> tuple[np.ndarray, _LSTMForward]:
        T, B = inputs.shape
        H = self.hidden_size
        words = inputs.ravel()
        # the input parts of every step at once: gathers of columns of the input matrices
        pre_inputs = np.empty((T * B, 4 * H), dtype=self.dtype)
        for k, gate in enumerate(GATES):
            pre_inputs[:, k * H : (k + 1) * H] = getattr(self, "U" + gate)[:, words].T
            if self.bias:
                pre_inputs[:, k * H : (k + 1) * H] += getattr(self, "b" + gate)
        pre_inputs = pre_inputs.reshape(T, B, 4 * H)
        W = self._recurrent_weights()
        S = np.empty((T, B, H), dtype=self.dtype)
        saved = _LSTMForward(
            gates=np.empty((T, B, 4 * H), dtype=self.dtype), tanh_memory=np.empty((T, B, H), dtype=self.dtype),
            prev_hidden=np.empty((T, B, H), dtype=self.dtype), prev_memory=np.empty((T, B, H), dtype=self.dtype),
        )
        h = np.zeros((B, H), dtype=self.dtype)
        memory = np.zeros((B, H), dtype=self.dtype)
        for t in range(T):
            saved.prev_hidden[t], saved.prev_memory[t] = h, memory
            gates = saved.gates[t]
            np.matmul(h, W.T, out=gates)
            gates += pre_inputs[t]
            self._activate(gates)
            i, f, o, g = (gates[:, k * H : (k + 1) * H] for k in range(4))
            memory = f * memory + i * g
            np.tanh(memory, out=saved.tanh_memory[t])
            np.multiply(o, saved.tanh_memory[t], out=S[t])
            h = S[t]
        return S, saved

    def _cell_gradients(
        self, inputs: np.ndarray, S: np.ndarray, saved: _LSTMForward, dS: np.ndarray, truncate: int | None,
        observe: StreamObserver | None = None,
    ) -> dict[str, np.ndarray]:
        T, B, H = dS.shape
        pre = np.empty((T, B, 4 * H), dtype=self.dtype)  # per step, summed over the streams
        W = self._recurrent_weights()
        d_state = np.zeros((T, B, 2 * H), dtype=self.dtype)  # the outputs' errors fall on h alone
        d_state[..., :H] = dS

        def step_back(t: int, errors: np.ndarray, keep: int) -> np.ndarray:
            gates, tanh_memory, prev_memory = saved.gates[t], saved.tanh_memory[t], saved.prev_memory[t]
            i, f, o, g = (gates[:, k * H : (k + 1) * H] for k in range(4))
            dh, dc = errors[..., :H], errors[..., H:]
            dc = dc + dh * (o * (1.0 - tanh_memory**2))
            n = errors.shape[0]
            d_gates = np.empty((n, B, 4 * H), dtype=errors.dtype)
            d_gates[..., :H] = dc * (g * i * (1.0 - i))
            d_gates[..., H : 2 * H] = dc * (prev_memory * f * (1.0 - f))
            d_gates[..., 2 * H : 3 * H] = dh * (tanh_memory * o * (1.0 - o))
            d_gates[..., 3 * H :] = dc * (i * (1.0 - g**2))
            pre[t] = d_gates.sum(axis=0)
            back = np.empty((keep, B, 2 * H), dtype=errors.dtype)
            back[..., :H] = (d_gates[:keep].reshape(-1, 4 * H) @ W).reshape(keep, B, H)
            back[..., H:] = dc[:keep] * f
            return back

        backward_through_time(d_state, truncate, step_back, observe)
        flat = pre.reshape(T * B, 4 * H)
        d_input = input_column_gradients(inputs.ravel(), flat, self.vocab_size)  # (4H x C)
        d_recurrent = flat.T @ saved.prev_hidden.reshape(T * B, H)  # (4H x H)
        grads = {}
        for k, gate in enumerate(GATES):
            grads["U" + gate] = d_input[k * H : (k + 1) * H]
            grads["W" + gate] = d_recurrent[k * H : (k + 1) * H]
        if self.bias:
            bias_grads = flat.sum(axis=0)
            for k, gate in enumerate(GATES):
                grads["b" + gate] = bias_grads[k * H : (k + 1) * H]
        return grads

    # ------------------------------------------------------------------ generation
    def step(self, words: np.ndarray, state: np.ndarray) -> np.ndarray:
        H = self.hidden_size
        W = self._recurrent_weights()
        if W.dtype != state.dtype:
            W = W.astype(state.dtype)
        gates = rowwise_product(state[:, :H], W.T)  # each sequence's state its own, whatever the batch
        gates += self._input_rows(words, state.dtype)
        self._activate(gates)
        new = np.empty_like(state)
        memory = new[:, H:]
        np.multiply(gates[:, H : 2 * H], state[:, H:], out=memory)
        memory += gates[:, :H] * gates[:, 3 * H :]
        np.multiply(gates[:, 2 * H : 3 * H], np.tanh(memory), out=new[:, :H])
        return new
