"""The gradient-flow report: its measurements against direct differentiation, and the command."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from models.batching import make_batch
from tests.gradient_check import SENTENCE_X, SENTENCE_Y, STEP, central_differences, log_softmax_at, tiny_model
from tests.gunicorn_server import REPO_ROOT
from tests.toy_corpus import write_toy_model
from training import diagnose
from training.gradient_flow import gradient_flow_report, truncation_share

VARIANTS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]


def output_loss_from_state(model, x, y, t: int, k: int, state: np.ndarray) -> float:
    """E_{t+k} when the state at step t is replaced by ``state`` (the oracle steps after it)."""
    for step in range(t + 1, t + k + 1):
        state = model._oracle_step(x[step], state)
    c = model.output.c if model.bias else 0.0
    return -log_softmax_at(model.output.V @ model.readout(state) + c, y[t + k])


@pytest.mark.parametrize("cell, activation", VARIANTS)
def test_lagged_state_errors_are_the_derivatives_of_later_losses(cell, activation):
    model = tiny_model(None, cell=cell, activation=activation)
    batch = make_batch([SENTENCE_X, SENTENCE_X[:5]], [SENTENCE_Y, SENTENCE_Y[:5]])
    norms = model.lagged_state_errors(batch.inputs, batch.targets, batch.mask, 6)
    states = model._oracle_states(SENTENCE_X)
    for t, k in [(0, 0), (2, 0), (0, 3), (1, 6), (4, 2)]:
        state = states[t].copy()
        numeric = central_differences({"s": state}, lambda: output_loss_from_state(model, SENTENCE_X, SENTENCE_Y, t, k, state))["s"]
        assert norms[k, t, 0] == pytest.approx(np.linalg.norm(numeric), rel=1e-6), (t, k)
    # the short sentence: lags that reach past its end are not measured
    assert np.isnan(norms[1, 4, 1]) and np.isfinite(norms[0, 4, 1]) and np.isnan(norms[0, 5, 1])
    assert np.isnan(norms[6, 2, 0]) and model.bptt_truncate is None  # the model is left as it was


@pytest.mark.parametrize("cell, activation", VARIANTS)
def test_state_jacobian_matches_central_differences(cell, activation):
    model = tiny_model(None, cell=cell, activation=activation)
    size = model._oracle_start().size  # the state, which may be more than the hidden vector
    prev = np.random.default_rng(0).normal(0, 0.7, size)
    numeric = np.empty((size, size))
    for j in range(size):
        e = np.zeros(size)
        e[j] = STEP
        numeric[:, j] = (model._oracle_step(3, prev + e) - model._oracle_step(3, prev - e)) / (2 * STEP)
    np.testing.assert_allclose(model.state_jacobian(3, prev), numeric, rtol=1e-6, atol=1e-9)


def test_the_report_covers_a_cell_whose_state_is_more_than_its_hidden_vector():
    model = tiny_model(None, cell="lstm")
    sentences = [[1, *SENTENCE_X[1:], 2], [1, 4, 3, 2], [1, 5, 6, 4, 3, 2]]
    report = gradient_flow_report(model, sentences, max_lag=3, window=1)
    assert report["cell"] == "lstm" and report["matrix"] == "Wg"
    assert [row["lag"] for row in report["lags"]] == [0, 1, 2, 3] and report["lags"][3]["count"] > 0
    assert all(row["mean_log10_product"] is not None for row in report["jacobian_norm_products"])
    assert set(report["truncation_share"]) == set(model.cell_parameter_names)


def test_truncation_share_is_what_the_window_cuts():
    model = tiny_model(None)
    batches = [make_batch([SENTENCE_X], [SENTENCE_Y])]
    assert max(truncation_share(model, batches, len(SENTENCE_X)).values()) == 0.0
    cut = truncation_share(model, batches, 1)
    assert set(cut) == {"U", "W", "b"} and all(0 < share < 1.5 for share in cut.values())


@pytest.fixture(scope="module")
def toy_model_file(tmp_path_factory):
    corpus, path, _ = write_toy_model(tmp_path_factory.mktemp("diagnose"))
    return corpus, path


def test_diagnose_command_writes_json_and_plot(toy_model_file, tmp_path):
    corpus, model_path = toy_model_file
    out_json, out_png = tmp_path / "flow.json", tmp_path / "flow.png"
    done = subprocess.run(
        [sys.executable, "training/diagnose.py", "--model", str(model_path), "--corpus", str(corpus),
         "--fresh", "rnn:tanh:uniform", "--fresh", "rnn:relu:identity", "--fresh", "gru", "--max-lag", "5",
         "--sentences", "40", "--out-json", str(out_json), "--out-png", str(out_png)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert json.loads(out_json.read_text()) == summary
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reports = {r["label"].split(" ")[0]: r for r in summary["models"]}
    assert list(reports) == ["toy.joblib", "rnn:tanh:uniform", "rnn:relu:identity", "gru"]
    for report in reports.values():
        assert [row["lag"] for row in report["lags"]] == list(range(6))
        assert report["lags"][0]["log10_fall"] == 0.0 and report["truncation_window"] == 4
        assert len(report["jacobian_norm_products"]) == 5
    # the tutorial's start at 100 units: a random W (largest singular value about 2/sqrt(3)) times
    # tanh's slopes shrinks the gradient every step; the IRNN's identity keeps it
    assert [(r["cell"], r["activation"], r["init"]) for r in reports.values()] == [
        ("rnn", "tanh", "uniform"), ("rnn", "tanh", "uniform"), ("rnn", "relu", "identity"), ("gru", "tanh", "uniform")]
    tanh, relu = reports["rnn:tanh:uniform"], reports["rnn:relu:identity"]
    assert relu["largest_singular_value"] == pytest.approx(1.0) == relu["smallest_singular_value"]
    assert tanh["lags"][5]["log10_fall"] > 1.0 > relu["lags"][5]["log10_fall"] + 0.5
    assert tanh["jacobian_norm_products"][-1]["mean_log10_product"] < relu["jacobian_norm_products"][-1]["mean_log10_product"]


def test_diagnose_errors(tmp_path, capsys):
    broken = tmp_path / "broken.joblib"
    broken.write_bytes(b"not a model")
    assert diagnose.main(["--model", str(broken)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("diagnose.py: ") and str(broken) in err[0]
    for flags in ([], ["--fresh", "transformer"], ["--fresh", "rnn:sigmoid"], ["--fresh", "rnn:relu:zeros"],
                  ["--fresh", "gru:relu"], ["--fresh", "gru:tanh:identity"], ["--fresh", "rnn:relu:identity:x"]):
        with pytest.raises(SystemExit) as exit_info:
            diagnose.main(flags)
        assert exit_info.value.code == 2, flags
    assert "the GRU cell takes --activation tanh and --init uniform or orthogonal" in capsys.readouterr().err
