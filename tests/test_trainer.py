"""The training loop and the train.py command on a toy corpus."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.cells import cell_class
from models.model_file import load_model
from models.rnn import RNN
from models.sampling import Sampler, SamplingParams
from models.scoring import score_text
from service.app import create_app
from service.config import ServiceConfig
from tests.test_openapi import check_response
from tests.toy_corpus import write_toy_corpus
from training import evaluate
from training import train as train_cli
from training import trainer as trainer_module
from training.schedule import HalvingSchedule
from training.trainer import Trainer, TrainConfig
from models.batching import make_batch

REPO = Path(__file__).resolve().parent.parent


def toy_args(tmp_path, *extra):
    corpus = write_toy_corpus(tmp_path / "toy.txt")
    return [
        "--corpus", str(corpus), "--vocab-size", "40", "--hidden", "12", "--batch-size", "8",
        "--eval-every", "800", "--epochs", "4", "--learning-rate", "2", "--max-minutes", "5",
        "--progress-seconds", "0", "--out", str(tmp_path / "model.joblib"), *extra,
    ]


def test_train_command_learns_and_prints_a_json_summary(tmp_path):
    result = subprocess.run(
        [sys.executable, "training/train.py", *toy_args(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("train_words", "seconds", "words_per_sec", "val_loss", "val_perplexity", "lr_halvings", "out"):
        assert key in summary
    assert summary["val_perplexity"] < 10  # a template language: far below the vocabulary of 40
    # the default interpolates the RNN with a Kneser-Ney 5-gram, and reports all three
    assert summary["ngram_order"] == 5
    choice = summary["ngram_weight_choice"]  # chosen on sentences held out of the training text
    assert choice["tokens"] > 0 and summary["ngram_weight"] == choice["weight"] and 0 < choice["weight"] <= 1
    assert choice["mixture_perplexity"] <= min(choice["rnn_perplexity"], choice["ngram_perplexity"]) + 1e-9
    assert summary["ngram_prune"] == [0, 0, 0, 0, 0]  # a small corpus keeps every n-gram by default
    assert len(choice["discounts"]) == len(choice["estimated_discounts"]) == 5  # chosen with the weight
    assert summary["rnn_val_perplexity"] < 10 and summary["ngram_val_perplexity"] < 10
    assert "words/s" in result.stderr and "eval at" in result.stderr  # progress is shown
    loaded = load_model(summary["out"])
    assert loaded.info["val_perplexity"] == pytest.approx(summary["val_perplexity"])
    assert loaded.info["history"] and loaded.model.hidden_size == 12
    assert not Path(summary["out"] + ".ckpt").exists()


def test_class_layer_with_dropout_trains_and_samples(tmp_path):
    flags = ["--softmax", "class", "--classes", "8", "--dropout", "0.2", "--ngram-order", "0"]
    assert train_cli.main(toy_args(tmp_path, *flags)) == 0
    loaded = load_model(tmp_path / "model.joblib")
    assert loaded.mixture is None and "rnn_val_perplexity" not in loaded.info
    assert loaded.model.softmax == "class" and loaded.model.classes.n_classes <= 8
    assert loaded.info["val_perplexity"] < 10
    assert loaded.info["run"]["train"]["dropout"] == 0.2
    sample = Sampler(loaded.model, loaded.vocab).sample_sentence([], SamplingParams(), np.random.default_rng(0))
    assert sample.new_ids and loaded.vocab.unknown_id not in sample.new_ids


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_gated_cell_trains_samples_is_scored_and_served(tmp_path, cell, capsys):
    assert train_cli.main(toy_args(tmp_path, "--cell", cell, "--ngram-order", "0")) == 0
    loaded = load_model(tmp_path / "model.joblib")
    assert loaded.model.cell == cell and loaded.info["run"]["model"]["cell"] == cell
    assert loaded.info["val_perplexity"] < 10  # a template language: far below the vocabulary of 40
    sample = Sampler(loaded.model, loaded.vocab).sample_sentence([], SamplingParams(), np.random.default_rng(0))
    assert sample.new_ids and loaded.vocab.unknown_id not in sample.new_ids
    app = create_app(ServiceConfig(model_path=str(tmp_path / "model.joblib")))
    client = app.test_client()
    info = client.get("/info")
    assert info.get_json()["cell"] == cell
    doc = client.get("/openapi.json").get_json()
    check_response(doc, "/info", "GET", info)  # the closed schema knows the key
    answer = client.post("/generate", json={"inputs": "the cat", "parameters": {"num_sentences": 2, "seed": 4}})
    assert answer.status_code == 200
    text = answer.get_json()["generated_text"]
    assert len(text.split()) >= 4 and "UNKNOWN_TOKEN" not in text and "SENTENCE_" not in text
    scored = client.post("/score", json={"inputs": text})
    assert scored.status_code == 200
    expected = score_text(loaded.model, loaded.vocab, text).perplexity
    assert scored.get_json()["perplexity"] == pytest.approx(expected, rel=1e-4)
    capsys.readouterr()
    assert evaluate.main(["--model", str(tmp_path / "model.joblib"), "--text", str(tmp_path / "toy.txt")]) == 0
    assert 1 < json.loads(capsys.readouterr().out.strip().splitlines()[-1])["perplexity"] < 10


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_step_updates_only_the_input_columns_used_and_equals_the_dense_step(cell, monkeypatch):
    model = cell_class(cell)(10, 4, seed=0)
    sentences = [[1, 3, 4, 2], [1, 5, 6, 7, 2]]
    trainer = Trainer(model, sentences, sentences, TrainConfig(batch_size=2, clip=None), HalvingSchedule(1.0, 3))
    batch = make_batch([s[:-1] for s in sentences], [s[1:] for s in sentences])
    before = {k: v.copy() for k, v in model.parameters().items()}
    _, grads = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask, scale=1 / trainer.tokens_per_batch)
    sparse_names = []
    original_step = trainer_module.sgd_step

    def spy(params, grads, rate, columns=None):
        sparse_names.extend(columns or ())
        original_step(params, grads, rate, columns)

    monkeypatch.setattr(trainer_module, "sgd_step", spy)
    assert trainer.train_batch(batch)
    assert sorted(sparse_names) == sorted(model.input_matrix_names) and sparse_names
    unused = [w for w in range(10) if w not in batch.inputs]
    for name, value in model.parameters().items():
        np.testing.assert_allclose(value, before[name] - grads[name], rtol=1e-6, atol=1e-7, err_msg=name)
    for name in model.input_matrix_names:
        np.testing.assert_array_equal(model.parameters()[name][:, unused], before[name][:, unused])
        assert not np.array_equal(model.parameters()[name][:, [1, 3, 5]], before[name][:, [1, 3, 5]])


@pytest.mark.parametrize("bad", [["--cell", "transformer"], ["--dropout", "1"], ["--dropout", "-0.1"], ["--softmax", "tree"], ["--classes", "0"],
                                 ["--ngram-order", "-1"], ["--ngram-order", "9"], ["--ngram-weight", "0"],
                                 ["--ngram-weight", "1.5"], ["--ngram-prune", "1"], ["--ngram-prune", "0,2,1"],
                                 ["--ngram-prune", "0,a"], ["--ngram-prune", "automatic"]])
def test_bad_flags_are_usage_errors(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(toy_args(tmp_path, *bad))
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_unwritable_output_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = subprocess.run(
        [sys.executable, "training/train.py", *toy_args(tmp_path), "--out", str(blocker / "model.joblib")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "cannot write the model" in result.stderr and "Traceback" not in result.stderr


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint"):
        train_cli.main(toy_args(tmp_path, "--resume"))


@pytest.mark.parametrize("flags", [[], ["--softmax", "class", "--classes", "8", "--dropout", "0.3"],
                                   ["--cell", "gru", "--bptt-truncate", "2", "--ngram-order", "0"],
                                   ["--cell", "lstm", "--ngram-order", "0"]])
def test_killed_run_resumes_to_the_same_parameters(tmp_path, monkeypatch, flags):
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    assert train_cli.main(toy_args(reference_dir, *flags)) == 0
    reference = load_model(reference_dir / "model.joblib")

    crashed_dir = tmp_path / "crashed"
    crashed_dir.mkdir()
    original = Trainer.evaluate
    calls = {"n": 0}

    def crash_after_second_checkpoint(self):
        stop = original(self)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return stop

    monkeypatch.setattr(Trainer, "evaluate", crash_after_second_checkpoint)
    assert train_cli.main(toy_args(crashed_dir, *flags)) == 130
    assert (crashed_dir / "model.joblib.ckpt").exists() and not (crashed_dir / "model.joblib").exists()
    monkeypatch.setattr(Trainer, "evaluate", original)
    assert train_cli.main(toy_args(crashed_dir, "--resume")) == 0
    resumed = load_model(crashed_dir / "model.joblib")
    for name in reference.model.parameter_names:
        np.testing.assert_array_equal(resumed.model.parameters()[name], reference.model.parameters()[name])
    assert resumed.info["train_words"] == reference.info["train_words"]


def test_non_finite_batch_is_skipped_and_never_reaches_the_parameters():
    model = RNN(10, 4, seed=0)
    sentences = [[1, 3, 4, 2], [1, 5, 6, 7, 2]]
    trainer = Trainer(model, sentences, sentences, TrainConfig(batch_size=2), HalvingSchedule(1.0, 3))
    model.output.V[0, 0] = np.inf
    before = {k: v.copy() for k, v in model.parameters().items()}
    batch = make_batch([s[:-1] for s in sentences], [s[1:] for s in sentences])
    assert trainer.train_batch(batch) is False
    assert trainer.progress.skipped_batches == 1
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(value, before[name])


def test_halving_restores_the_best_parameters():
    model = RNN(10, 4, seed=0)
    sentences = [[1, 3, 4, 2], [1, 5, 6, 7, 2]]
    trainer = Trainer(model, sentences, sentences, TrainConfig(batch_size=2), HalvingSchedule(1.0, 3))
    trainer.evaluate()
    best = {k: v.copy() for k, v in model.parameters().items()}
    model.output.V += 5.0  # make the model worse
    trainer.evaluate()
    assert trainer.schedule.halvings == 1 and trainer.schedule.learning_rate == 0.5
    np.testing.assert_array_equal(model.output.V, best["V"])
    assert math.isfinite(trainer.progress.val_loss)


def test_a_full_disk_fails_before_training(tmp_path, monkeypatch, capsys):
    from training import output_space

    monkeypatch.setattr(output_space, "free_bytes", lambda folder: 5 * 2**20)
    with pytest.raises(SystemExit, match=r"not enough free space in .*: 5 MiB free, about \d+ MiB needed"):
        train_cli.main(toy_args(tmp_path))
    assert not (tmp_path / "model.joblib").exists() and not (tmp_path / "model.joblib.ckpt").exists()
    assert "epoch" not in capsys.readouterr().err  # no training step was taken


def test_the_size_estimate_covers_the_default_file():
    """Measured: the default GRU + 5-gram file is 74.3 MB (784,002 training words)."""
    from models.gru import GRU
    from training.output_space import estimated_file_bytes

    estimate = estimated_file_bytes(GRU(8000, 100).parameter_count, 8000, 5, 784_002)
    assert 74.3e6 < estimate < 2 * 74.3e6


def test_a_checkpoint_from_an_older_train_py_is_refused_with_a_reason(tmp_path):
    """Before the run config, checkpoints held the command's argparse values; they are not guessed at."""
    from models.model_file import atomic_dump, model_payload
    from models.vocabulary import Vocabulary

    vocab = Vocabulary(["UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END", "a", "b"])
    payload = model_payload(RNN(5, 3), vocab, {})
    payload["trainer"] = {"args": {"cell": "rnn"}, "progress": {}, "schedule": {}}
    atomic_dump(payload, tmp_path / "model.joblib.ckpt")
    with pytest.raises(SystemExit, match="written by an older train.py; start the run again"):
        train_cli.main(toy_args(tmp_path, "--resume"))
