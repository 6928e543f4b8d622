"""The remedies for vanishing gradients as flags: ReLU (``--activation``), orthogonal and identity
starts (``--init``); their gradients against central differences and the oracle, and the files,
sampling and command line that carry them."""
from __future__ import annotations

import numpy as np
import pytest

from models.cells import cell_class
from models.initialisation import initialise_recurrent, orthogonal, start_recurrent
from models.model_file import load_model, model_from_payload, model_payload, save_model
from models.rnn import RNN
from models.sampling import Sampler, SamplingParams
from models.vocabulary import Vocabulary
from tests.gradient_check import (
    CELL_STEPS, SENTENCE_X, SENTENCE_Y, assert_batched_gradient_equals_sum_of_bptt,
    assert_bptt_matches_central_differences, assert_float32_fast_path_matches_float64_oracle, tiny_model,
)
from training import train

RELU_STEP = CELL_STEPS["rnn-relu"]


def assert_no_kink_nearby(model: RNN, x: list[int]) -> None:
    """Central differences are only valid where no ReLU input sits within reach of the step."""
    h = np.zeros(model.hidden_size)
    for word in x:
        pre = model.U[:, word] + model.W @ h + (model.b if model.bias else 0.0)
        assert np.abs(pre).min() > 1e-3
        h = np.maximum(pre, 0)


@pytest.mark.parametrize("bptt_truncate", [None, 1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("softmax", ["full", "class"])
def test_relu_bptt_matches_central_differences(bptt_truncate, bias, softmax):
    model = tiny_model(bptt_truncate, bias, softmax=softmax, activation="relu")
    assert_no_kink_nearby(model, SENTENCE_X)
    assert_bptt_matches_central_differences(model, SENTENCE_X, SENTENCE_Y, RELU_STEP)


@pytest.mark.parametrize("init", ["identity", "orthogonal"])
@pytest.mark.parametrize("bptt_truncate", [None, 2])
def test_relu_with_each_start_matches_central_differences(init, bptt_truncate):
    """The IRNN's start (W = I) and an orthogonal W: the gradient is still the loss's derivative there."""
    model = tiny_model(bptt_truncate, activation="relu")
    initialise_recurrent([model.W], init, np.random.default_rng(1))
    assert_no_kink_nearby(model, SENTENCE_X)
    assert_bptt_matches_central_differences(model, SENTENCE_X, SENTENCE_Y, RELU_STEP)


def test_relu_really_differs_from_tanh():
    relu = tiny_model(None, activation="relu")
    tanh = tiny_model(None)
    W_at = relu.parameter_names.index("W")
    assert not np.allclose(relu.bptt(SENTENCE_X, SENTENCE_Y)[W_at], tanh.bptt(SENTENCE_X, SENTENCE_Y)[W_at])


@pytest.mark.parametrize("bptt_truncate", [None, 0, 2, 5])
@pytest.mark.parametrize("softmax", ["full", "class"])
def test_relu_batched_gradient_equals_sum_of_bptt(bptt_truncate, softmax):
    assert_batched_gradient_equals_sum_of_bptt(tiny_model(bptt_truncate, softmax=softmax, activation="relu"),
                                               np.random.default_rng(7))


@pytest.mark.parametrize("init", ["identity", "orthogonal"])
@pytest.mark.parametrize("bptt_truncate", [None, 0, 3])
def test_relu_batched_gradient_equals_sum_of_bptt_from_each_start(init, bptt_truncate):
    model = tiny_model(bptt_truncate, activation="relu")
    initialise_recurrent([model.W], init, np.random.default_rng(2))
    assert_batched_gradient_equals_sum_of_bptt(model, np.random.default_rng(7))


@pytest.mark.parametrize("bptt_truncate", [None, 3])
def test_relu_float32_fast_path_matches_float64_oracle(bptt_truncate):
    rng = np.random.default_rng(11)
    model = RNN(50, 16, bptt_truncate=bptt_truncate, seed=5, activation="relu")
    model.U[:] = rng.uniform(-1, 1, model.U.shape)
    initialise_recurrent([model.W], "identity", rng)
    assert_float32_fast_path_matches_float64_oracle(model, rng)


def test_orthogonal_and_identity_starts():
    rng = np.random.default_rng(0)
    q = orthogonal(rng, 30)
    np.testing.assert_allclose(q.T @ q, np.eye(30), atol=1e-12)
    assert not np.allclose(q, orthogonal(rng, 30))  # random, not a fixed matrix
    gru = cell_class("gru")(20, 8, seed=0)
    initialise_recurrent([gru.Wz, gru.Wr, gru.Wh], "orthogonal", rng)
    for matrix in (gru.Wz, gru.Wr, gru.Wh):
        np.testing.assert_allclose(matrix.T @ matrix, np.eye(8), atol=1e-5)
    rnn = RNN(20, 8, seed=0)
    before = rnn.W.copy()
    initialise_recurrent([rnn.W], "uniform", rng)
    np.testing.assert_array_equal(rnn.W, before)  # the tutorial's start is left as it is
    initialise_recurrent([rnn.W], "identity", rng)
    np.testing.assert_array_equal(rnn.W, np.eye(8))
    with pytest.raises(ValueError, match="unknown initialisation"):
        initialise_recurrent([rnn.W], "zeros", rng)


def flags_model(flags: list[str]):
    """The model train.py starts with these flags, for a 20-word vocabulary."""
    return train.run_config(train.build_parser().parse_args(flags)).initial_model([5, 0, 5] + [3] * 17)


def test_train_flags_build_the_asked_model():
    model = flags_model(["--cell", "rnn", "--activation", "relu", "--init", "identity", "--hidden", "8"])
    assert (model.activation, model.init) == ("relu", "identity")
    np.testing.assert_array_equal(model.W, np.eye(8))
    model = flags_model(["--cell", "gru", "--init", "orthogonal", "--hidden", "8"])
    np.testing.assert_allclose(model.Wh.T @ model.Wh, np.eye(8), atol=1e-5)


@pytest.mark.parametrize("flags", [["--cell", "gru", "--activation", "relu"], ["--cell", "gru", "--init", "identity"]])
def test_gru_refuses_rnn_only_flags(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(flags)
    assert exit_info.value.code == 2
    assert "the GRU cell takes --activation tanh and --init uniform or orthogonal" in capsys.readouterr().err


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="takes activation tanh or relu"):
        RNN(10, 4, activation="sigmoid")
    with pytest.raises(ValueError, match="GRU cell takes activation tanh"):
        cell_class("gru")(10, 4, activation="relu")


def test_model_file_keeps_the_activation_and_the_start():
    model = RNN(10, 4, seed=1, activation="relu")
    start_recurrent(model, "identity", np.random.default_rng(0))
    vocab = Vocabulary(["UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END"] + [f"w{i}" for i in range(7)])
    loaded = model_from_payload(model_payload(model, vocab, {}))
    assert (loaded.model.activation, loaded.model.init) == ("relu", "identity")
    payload = model_payload(model, vocab, {})
    del payload["config"]["activation"], payload["config"]["init"]  # a file from before the flags
    assert (model_from_payload(payload).model.activation, model_from_payload(payload).model.init) == ("tanh", "uniform")


def test_trained_relu_model_round_trips_through_a_file_and_samples_as_the_oracle(tmp_path):
    """Saved, loaded and sampled by the service's Sampler: every drawn word's log-probability is
    the one the float64 oracle gives that sentence, so generation really runs the ReLU recurrence."""
    vocab = Vocabulary(["UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END"] + [f"w{i}" for i in range(17)])
    model = flags_model(["--cell", "rnn", "--activation", "relu", "--init", "identity", "--hidden", "6"])
    path = tmp_path / "relu.joblib"
    save_model(path, model, vocab, {})
    loaded = load_model(path)
    assert (loaded.model.activation, loaded.model.init) == ("relu", "identity")
    sampler = Sampler(loaded.model, loaded.vocab)
    oracle = loaded.model.astype(np.float64)
    for seed in range(3):
        drawn = sampler.sample_sentence([4, 7], SamplingParams(max_new_tokens=12, min_words=12), np.random.default_rng(seed))
        x = [vocab.start_id, 4, 7] + drawn.new_ids[:-1]
        o, states = oracle.forward_propagation(x)
        expected = [float(np.log(o[t, word])) for t, word in zip(range(2, len(x)), drawn.new_ids)]
        np.testing.assert_allclose(drawn.logprobs, expected, rtol=1e-4, atol=1e-4)
        assert (states == 0).any() and (states > 0).any()  # really rectified


def test_sampling_step_follows_the_activation():
    model = RNN(30, 6, seed=2, activation="relu")
    rng = np.random.default_rng(0)
    model.U[:] = rng.normal(0, 1, model.U.shape)
    h = model.initial_state(1, np.float64)
    for word in (1, 5, 9, 3):
        expected = model.astype(np.float64)._oracle_step(word, h[0])
        h = model.step(np.array([word]), h)
        np.testing.assert_allclose(h[0], expected, rtol=1e-6, atol=1e-7)
    assert (h == 0).any() and (h > 0).any()  # really rectified
