"""The model contract: every cell's initial_state/step/readout against its one-sentence oracle,
and the output layer's batch-first log_probs and draw against references written out here."""
from __future__ import annotations

import numpy as np
import pytest

from models.class_output import log_softmax
from models.softmax import ClassSoftmax, FullSoftmax
from models.word_classes import WordClasses
from tests.gradient_check import tiny_model

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]
SENTENCES = np.array([[1, 4, 3, 6, 2, 5], [1, 5, 5, 0, 6, 3], [1, 2, 2, 2, 4, 6]])  # B x T


def stepped_states(model, sentences: np.ndarray, dtype) -> list[np.ndarray]:
    """The readout after each step of the batched contract, all sentences at once."""
    state = model.initial_state(sentences.shape[0], dtype)
    readouts = []
    for t in range(sentences.shape[1]):
        given, before = state, state.copy()
        state = model.step(sentences[:, t], given)
        np.testing.assert_array_equal(given, before)  # the step left its input alone
        readouts.append(model.readout(state))
    return readouts


@pytest.mark.parametrize("cell, activation", CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_batched_steps_follow_the_oracle_forward_pass(cell, activation, bias):
    model = tiny_model(None, bias=bias, cell=cell, activation=activation)
    readouts = stepped_states(model, SENTENCES, np.float64)
    for row, sentence in enumerate(SENTENCES):
        _, oracle = model.forward_propagation(sentence.tolist())
        for t, readout in enumerate(readouts):
            assert readout.shape == (len(SENTENCES), model.hidden_size) and readout.dtype == np.float64
            np.testing.assert_allclose(readout[row], oracle[t], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell, activation", CELLS)
def test_steps_run_in_the_precision_of_the_state(cell, activation):
    model = tiny_model(None, cell=cell, activation=activation)  # float64 parameters
    wide = stepped_states(model, SENTENCES, np.float64)
    narrow = stepped_states(model, SENTENCES, np.float32)
    for a, b in zip(wide, narrow):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        assert not np.array_equal(b.astype(np.float64), a)  # really computed in float32


def test_the_hidden_state_starts_at_zero_in_the_model_precision():
    model = tiny_model(None, cell="gru")
    assert model.initial_state(3).shape == (3, model.hidden_size) and model.initial_state(3).dtype == np.float64
    assert not model.initial_state(2, np.float32).any()


def layers() -> list:
    """Both output layers over 300 words (so draws take the two-level path), float64 weights."""
    rng = np.random.default_rng(4)
    full = FullSoftmax(300, 6, True, rng, np.float64)
    classes = WordClasses.from_counts([50, 0, 40] + [int(1000 / r) + 1 for r in range(1, 298)], 17)
    cls = ClassSoftmax(300, 6, True, rng, np.float64, classes)
    for layer in (full, cls):
        for name, value in layer.parameters().items():
            value[:] = rng.normal(0, 1.5, value.shape)
    return [full, cls]


@pytest.fixture(scope="module", params=["full", "class"])
def layer(request):
    return dict(zip(["full", "class"], layers()))[request.param]


def hidden_rows(count: int, seed: int = 0, size: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (count, size)).astype(np.float32)


def test_log_probs_are_the_oracle_rows(layer):
    hidden = hidden_rows(4)
    batched = layer.log_probs(hidden)
    assert batched.shape == (4, 300) and batched.dtype == np.float64
    for row in range(4):
        np.testing.assert_allclose(batched[row], layer.oracle_log_probs(hidden[row].astype(np.float64)), rtol=1e-12)
    np.testing.assert_allclose(layer.probabilities(hidden), np.exp(batched), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("softmax", ["full", "class"])
def test_a_generation_copys_log_probs_of_a_row_do_not_depend_on_the_batch(softmax):
    """Greedy, top-k and top-p read every word's log-probability for the whole batch: a row's
    numbers are the same bits beside any other rows (from FEW_ROWS rows on, one padded product),
    and agree with the row alone (row by row below) to rounding."""
    model = tiny_model(None, cell="gru", softmax=softmax)
    frozen = model.for_generation(16)
    hidden = hidden_rows(12, seed=5, size=model.hidden_size)
    batch = frozen.output.log_probs(hidden)
    for others in ([0, 1, 2], [11, 4, 9, 8, 5], list(range(1, 12))):
        rows = [7, *others]
        np.testing.assert_array_equal(frozen.output.log_probs(hidden[rows])[0], batch[7])
    alone = frozen.output.log_probs(hidden[7:8])[0]  # below FEW_ROWS: row by row
    np.testing.assert_allclose(alone, batch[7], rtol=1e-12)
    np.testing.assert_allclose(batch[7], model.output.oracle_log_probs(hidden[7].astype(np.float64)), rtol=1e-5)


def reference_draw(layer, h: np.ndarray, u: list[float], banned: list[int], temperature: float) -> int:
    """Inverse-CDF draws written out from the formulas: the full softmax's tempered probabilities,
    or (class layer) the class from u[0], then the word within it from u[1]."""
    h = h.astype(np.float64)
    if isinstance(layer, FullSoftmax):
        scores = layer.V @ h + layer.c
        scores[banned] = -np.inf
        cdf = np.cumsum(np.exp((scores - scores.max()) / temperature))
        return int(np.searchsorted(cdf, u[0] * cdf[-1], side="right"))
    classes = layer.classes
    class_scores = log_softmax(layer.V_class @ h + layer.c_class)
    class_scores[classes.word_class[banned]] = -np.inf
    cdf = np.cumsum(np.exp(class_scores - class_scores.max()))
    k = int(np.searchsorted(cdf, u[0] * cdf[-1], side="right"))
    span = classes.words_of(k)
    cdf = np.cumsum(np.exp(log_softmax(layer.V[span] @ h + layer.c[span])))
    return span.start + int(np.searchsorted(cdf, u[1] * cdf[-1], side="right"))


# the class layer draws at temperature 1 only (its refusal of others is tested below)
@pytest.mark.parametrize("kind, temperature", [("full", 1.0), ("full", 0.6), ("full", 1.7), ("class", 1.0)])
def test_draws_are_the_reference_token_for_token(kind, temperature):
    layer = dict(zip(["full", "class"], layers()))[kind]
    hidden = hidden_rows(400, seed=1)
    bans = [[0, 1] if i % 2 else [0, 1, 2] for i in range(400)]
    words, log_probs = layer.draw(hidden, [np.random.default_rng(i) for i in range(400)], bans, temperature)
    every = layer.log_probs(hidden)
    for row in range(400):
        u = np.random.default_rng(row).random(2).tolist()
        assert words[row] == reference_draw(layer, hidden[row], u, bans[row], temperature), row
        # the layer's own log-probability, untempered (from float32 logits at temperature 1)
        assert log_probs[row] == pytest.approx(every[row, words[row]], abs=1e-5)


def test_draws_follow_the_layer_distribution_row_by_row(layer):
    """Three rows, three hidden states: each row's words come with that row's probabilities."""
    hidden = hidden_rows(3, seed=2)
    expected = layer.probabilities(hidden)
    expected[:, [0, 1]] = 0.0
    expected /= expected.sum(axis=1, keepdims=True)
    rngs = [np.random.default_rng(10 + row) for row in range(3)]
    draws = 6000
    counts = np.zeros((3, 300))
    for _ in range(draws):
        words, _ = layer.draw(hidden, rngs, [[0, 1]] * 3)
        counts[np.arange(3), words] += 1
    assert counts[:, [0, 1]].sum() == 0
    for row in range(3):
        # words expected at least 5 times one by one, the rare ones pooled (a normal approximation holds for both)
        common = expected[row] * draws >= 5
        seen = np.append(counts[row, common], counts[row, ~common].sum()) / draws
        p = np.append(expected[row, common], expected[row, ~common].sum())
        assert common.sum() >= 10  # the test compares many words
        assert np.all(np.abs(seen - p) <= 5 * np.sqrt(p * (1 - p) / draws) + 1e-9), row


def test_draw_refuses_what_it_cannot_do():
    full, cls = layers()
    with pytest.raises(ValueError, match="temperature 1 only"):
        cls.draw(hidden_rows(1), [np.random.default_rng(0)], [[0]], 0.5)
    shared = int(np.flatnonzero(np.diff(cls.classes.starts) > 1)[0])  # a class of several words
    with pytest.raises(ValueError, match="alone in their class"):
        cls.draw(hidden_rows(1), [np.random.default_rng(0)], [[int(cls.classes.starts[shared])]])
    with pytest.raises(ValueError, match="2 hidden states, 1 generators"):
        full.draw(hidden_rows(2), [np.random.default_rng(0)], [[0]])


def test_a_generation_copy_is_read_only_and_leaves_the_model_trainable():
    model = tiny_model(2, cell="gru", softmax="class")
    hidden = hidden_rows(2, size=model.hidden_size)
    before = model.output.log_probs(hidden)
    frozen = model.for_generation()
    assert all(p.dtype == np.float32 and not p.flags.writeable for p in frozen.parameters().values())
    with pytest.raises(ValueError, match="read-only"):
        frozen.output.V += 1.0
    model.output.V_class[3] += 1.0  # the model itself is as trainable as before, and the copy does not follow it
    np.testing.assert_allclose(frozen.output.log_probs(hidden), before, rtol=1e-5)
    assert not np.allclose(model.output.log_probs(hidden), before, rtol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_truncation_is_an_argument_of_the_gradient(cell):
    """A gradient asked for with truncation k equals the gradient of a model built with k; the model is unchanged."""
    model = tiny_model(None, cell=cell)
    built_with_two = tiny_model(2, cell=cell)
    inputs, targets = SENTENCES[:, :-1].T.copy(), SENTENCES[:, 1:].T.copy()
    mask = np.ones_like(inputs, dtype=np.float64)
    _, asked = model.batch_loss_and_gradients(inputs, targets, mask, bptt_truncate=2)
    _, built = built_with_two.batch_loss_and_gradients(inputs, targets, mask)
    _, full = model.batch_loss_and_gradients(inputs, targets, mask)
    assert model.bptt_truncate is None
    for name in model.parameter_names:
        np.testing.assert_array_equal(asked[name], built[name])
    memory = model.MEMORY_MATRIX
    assert not np.allclose(asked[memory], full[memory])


@pytest.mark.parametrize("softmax", ["full", "class"])
def test_an_untrained_layer_starts_at_the_unigram(softmax):
    full, cls = layers()
    layer = full if softmax == "full" else cls
    counts = np.random.default_rng(0).integers(0, 50, 300)
    layer.V[:] = 0.0
    if softmax == "class":
        layer.V_class[:] = 0.0
    layer.start_at_unigram(counts)
    expected = (counts + 1.0) / (counts + 1.0).sum()
    np.testing.assert_allclose(np.exp(layer.oracle_log_probs(np.zeros(6))), expected, rtol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_generation_copy_steps_exactly_as_the_model(cell):
    """Its word rows, made once, give the very numbers the columns give."""
    model = tiny_model(None, cell=cell).astype(np.float32)
    frozen = model.for_generation()
    live, kept = model.initial_state(3), frozen.initial_state(3)
    for t in range(SENTENCES.shape[1]):
        live, kept = model.step(SENTENCES[:, t], live), frozen.step(SENTENCES[:, t], kept)
        np.testing.assert_array_equal(kept, live)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_states_are_taken_and_joined_by_sequence(cell):
    """A decoder that retires and admits sequences between steps gets each one's own state back."""
    model = tiny_model(None, cell=cell)
    state = model.initial_state(3)
    for t in range(3):
        state = model.step(SENTENCES[:, t], state)
    first_and_last = model.take_states(state, [0, 2])
    rejoined = model.join_states([model.take_states(state, [1]), first_and_last])
    np.testing.assert_array_equal(model.readout(rejoined), model.readout(state)[[1, 0, 2]])
    after = model.step(SENTENCES[[1, 0, 2], 3], rejoined)
    np.testing.assert_allclose(after, model.step(SENTENCES[:, 3], state)[[1, 0, 2]], rtol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_restarted_sequences_start_again_and_the_others_keep_their_states(cell):
    """A decoder whose sequence begins a new sentence puts that row alone back at the start."""
    model = tiny_model(None, cell=cell)
    state = model.initial_state(3)
    for t in range(3):
        state = model.step(SENTENCES[:, t], state)
    restarted = model.restarted_states(state, [1])
    np.testing.assert_array_equal(restarted[[0, 2]], state[[0, 2]])
    np.testing.assert_array_equal(restarted[1], model.initial_state(1)[0])
    assert np.any(state[1] != restarted[1])
    after = model.step(SENTENCES[:, 0], restarted)
    np.testing.assert_allclose(after[1], model.step(SENTENCES[1:2, 0], model.initial_state(1))[0], rtol=1e-12)
