"""The Elman RNN language model: s_t = tanh(U x_t + W s_{t-1} + b), o_t = softmax(V s_t + c).

With word classes (``classes=``), the output is class-factored instead (Mikolov et al., 2011):
o_t[w] = softmax(V_class s_t + c_class)[class(w)] * softmax over w's class of (V s_t + c); see
``models.class_output``.

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

from models.batching import Batch, scoring_batches
from models.class_output import (
    all_word_log_probs, class_output_backward, class_target_log_probs, log_softmax,
)
from models.output_layer import output_backward, target_log_probs
from models.word_classes import WordClasses

PARAMETER_NAMES_WITH_BIAS = ("U", "V", "W", "b", "c")
PARAMETER_NAMES_NO_BIAS = ("U", "V", "W")
CLASS_PARAMETER_NAMES_WITH_BIAS = ("V_class", "c_class")
CLASS_PARAMETER_NAMES_NO_BIAS = ("V_class",)


class RNN:
    """Elman RNN with the tutorial's initialisation: uniform in +-1/sqrt(fan-in)."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        bptt_truncate: int | None = 4,
        seed: int = 0,
        bias: bool = True,
        dtype: np.dtype | type = np.float32,
        classes: WordClasses | None = None,
    ):
        if vocab_size < 2 or hidden_size < 1:
            raise ValueError("vocab_size must be >= 2 and hidden_size >= 1")
        if bptt_truncate is not None and bptt_truncate < 0:
            raise ValueError("bptt_truncate must be >= 0 or None")
        if classes is not None and classes.vocab_size != vocab_size:
            raise ValueError(f"the word classes cover {classes.vocab_size} words, not {vocab_size}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.bptt_truncate = bptt_truncate
        self.bias = bias
        self.classes = classes
        self.threads = 1  # worker threads of the batched output layer (a speed setting, not saved)
        rng = np.random.default_rng(seed)
        C, H = vocab_size, hidden_size
        self.U = rng.uniform(-1 / np.sqrt(C), 1 / np.sqrt(C), (H, C)).astype(dtype)
        self.W = rng.uniform(-1 / np.sqrt(H), 1 / np.sqrt(H), (H, H)).astype(dtype)
        self.V = rng.uniform(-1 / np.sqrt(H), 1 / np.sqrt(H), (C, H)).astype(dtype)
        self.b = np.zeros(H, dtype=dtype)
        self.c = np.zeros(C, dtype=dtype)
        if classes is not None:
            K = classes.n_classes
            self.V_class = rng.uniform(-1 / np.sqrt(H), 1 / np.sqrt(H), (K, H)).astype(dtype)
            self.c_class = np.zeros(K, dtype=dtype)

    # ----------------------------------------------------------------- parameters
    @property
    def parameter_names(self) -> tuple[str, ...]:
        if self.classes is None:
            return PARAMETER_NAMES_WITH_BIAS if self.bias else PARAMETER_NAMES_NO_BIAS
        if self.bias:
            return PARAMETER_NAMES_WITH_BIAS + CLASS_PARAMETER_NAMES_WITH_BIAS
        return PARAMETER_NAMES_NO_BIAS + CLASS_PARAMETER_NAMES_NO_BIAS

    @property
    def softmax(self) -> str:
        """"full" or "class": which output layer the model has."""
        return "full" if self.classes is None else "class"

    @property
    def dtype(self) -> np.dtype:
        return self.U.dtype

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

    def astype(self, dtype: np.dtype | type) -> "RNN":
        """A copy of the model with parameters cast to ``dtype`` (float64 for gradient checks)."""
        other = RNN.__new__(RNN)
        other.__dict__.update(self.__dict__)
        for name in PARAMETER_NAMES_WITH_BIAS + (CLASS_PARAMETER_NAMES_WITH_BIAS if self.classes else ()):
            setattr(other, name, getattr(self, name).astype(dtype, copy=True))
        return other

    # ----------------------------------------------------- one sentence: the oracle
    def forward_propagation(self, x: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output probabilities o (T x C) and hidden states s (T x H) of one sentence."""
        T = len(x)
        s = np.zeros((T, self.hidden_size), dtype=self.dtype)
        o = np.zeros((T, self.vocab_size), dtype=self.dtype)
        prev = np.zeros(self.hidden_size, dtype=self.dtype)
        b, c = (self.b, self.c) if self.bias else (0.0, 0.0)
        for t in range(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W @ prev + b)
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
        """Gradients of one sentence's summed loss under the model's truncation.

        Returns (dLdU, dLdV, dLdW, dLdb, dLdc), or (dLdU, dLdV, dLdW) for a model without biases.
        """
        T = len(y)
        o, s = self.forward_propagation(x)
        d_logits, d_class_logits = self._output_errors(o, s, y)
        dLdU = np.zeros_like(self.U)
        dLdW = np.zeros_like(self.W)
        dLdb = np.zeros_like(self.b)
        dLdV = d_logits.T @ s
        dLdc = d_logits.sum(axis=0)
        zero_state = np.zeros(self.hidden_size, dtype=self.dtype)
        for t in range(T):
            # error at the pre-activation of step t, caused by output t
            d_state = self.V.T @ d_logits[t]
            if self.classes is not None:
                d_state += self.V_class.T @ d_class_logits[t]
            delta = d_state * (1.0 - s[t] ** 2)
            oldest = 0 if self.bptt_truncate is None else max(0, t - self.bptt_truncate)
            for step in range(t, oldest - 1, -1):
                prev = s[step - 1] if step > 0 else zero_state
                dLdW += np.outer(delta, prev)
                dLdU[:, x[step]] += delta
                dLdb += delta
                delta = (self.W.T @ delta) * (1.0 - prev**2)
        grads = {"U": dLdU, "V": dLdV, "W": dLdW, "b": dLdb, "c": dLdc}
        if self.classes is not None:
            grads["V_class"] = d_class_logits.T @ s
            grads["c_class"] = d_class_logits.sum(axis=0)
        return tuple(grads[name] for name in self.parameter_names)

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

    # ------------------------------------------------------------ batched fast path
    def _hidden_states(self, inputs: np.ndarray) -> np.ndarray:
        """Hidden states S (T x B x H) of a time-major batch of input indices (T x B)."""
        T, B = inputs.shape
        S = np.empty((T, B, self.hidden_size), dtype=self.dtype)
        # U x_t for every step at once: a gather of columns of U
        pre = self.U[:, inputs.ravel()].T.reshape(T, B, self.hidden_size)
        if self.bias:
            pre += self.b
        h = np.zeros((B, self.hidden_size), dtype=self.dtype)
        for t in range(T):
            np.tanh(pre[t] + h @ self.W.T, out=S[t])
            h = S[t]
        return S

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
        T, B = inputs.shape
        H = self.hidden_size
        S = self._hidden_states(inputs)
        S_flat = S.reshape(T * B, H)
        real = np.flatnonzero(mask.ravel())
        states = S_flat[real]
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
        D = self._backward_through_time(dS.reshape(T, B, H), S)
        D_flat = D.reshape(T * B, H)
        grads["W"] = D[1:].reshape(-1, H).T @ S[:-1].reshape(-1, H)
        dUt = np.zeros((self.vocab_size, H), dtype=self.dtype)
        np.add.at(dUt, inputs.ravel(), D_flat)
        grads["U"] = dUt.T
        if self.bias:
            grads["b"] = D_flat.sum(axis=0)
        return out.loss, grads

    def _backward_through_time(self, dS: np.ndarray, S: np.ndarray) -> np.ndarray:
        """Error at each step's pre-activation (T x B x H), summed over the outputs that reach it.

        ``dS[t]`` is the error each output puts on its own hidden state. Under truncation k the
        error of output t + a reaches step t only for a <= k, so each of those k + 1 streams is
        carried separately: ``streams[a]`` holds what output t + a puts on step t.
        """
        T = dS.shape[0]
        D = np.empty_like(dS)
        W = self.W
        k = self.bptt_truncate
        if k is None or k >= T - 1:
            carry = np.zeros_like(dS[0])
            for t in range(T - 1, -1, -1):
                carry = (dS[t] + carry @ W) * (1.0 - S[t] ** 2)
                D[t] = carry
            return D
        B, H = dS.shape[1:]
        streams = np.zeros((k + 1, B, H), dtype=dS.dtype)
        for t in range(T - 1, -1, -1):
            if k > 0:
                # stream a at step t is stream a-1 at step t+1 passed back through W
                streams[1:] = (streams[:-1].reshape(k * B, H) @ W).reshape(k, B, H)
            streams[0] = dS[t]
            streams *= 1.0 - S[t] ** 2
            D[t] = streams.sum(axis=0)
        return D
