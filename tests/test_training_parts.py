"""Batching, the halving rule, clipping and the corpus readers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.batching import length_buckets, make_batch, padding_fraction
from training.corpus import CorpusError, novel_paragraphs, read_paragraphs
from training.schedule import Decision, HalvingSchedule
from training.sgd import clip_by_global_norm, global_norm, sgd_step


def test_make_batch_is_time_major_and_masked():
    batch = make_batch([[1, 2, 3], [4]], [[2, 3, 5], [6]])
    assert batch.inputs.shape == (3, 2)
    assert batch.inputs[:, 0].tolist() == [1, 2, 3]
    assert batch.mask[:, 1].tolist() == [1, 0, 0]
    assert batch.n_tokens == 4


def test_length_buckets_cover_every_sentence_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.geometric(0.05, size=5000) + 1  # long-tailed like real sentences
    batches = length_buckets(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(5000))
    assert padding_fraction(lengths, batches) < 0.10
    again = length_buckets(lengths, 32, np.random.default_rng(1))
    assert all((a == b).all() for a, b in zip(batches, again))


def test_halving_rule():
    schedule = HalvingSchedule(learning_rate=4.0, max_halvings=2)
    assert schedule.observe(5.0).improved
    assert schedule.observe(4.0).improved
    worse = schedule.observe(4.1)
    assert worse.halved and not worse.stop and schedule.learning_rate == 2.0
    assert schedule.best_loss == 4.0
    assert schedule.observe(3.9).improved and schedule.learning_rate == 2.0
    assert schedule.observe(math.nan).halved  # a NaN evaluation never counts as better
    final = schedule.observe(3.95)
    assert final.stop and schedule.halvings == 3 and schedule.learning_rate == 0.5


def test_a_too_small_improvement_keeps_the_parameters_but_halves_the_rate():
    schedule = HalvingSchedule(learning_rate=4.0, max_halvings=5, min_improvement=0.01)
    assert schedule.observe(5.0) == Decision(improved=True, halved=False, stop=False)
    assert schedule.observe(4.9) == Decision(improved=True, halved=False, stop=False)  # 2% better
    small = schedule.observe(4.87)  # 0.6% better
    assert small == Decision(improved=True, halved=True, stop=False)
    assert schedule.best_loss == 4.87 and schedule.learning_rate == 2.0
    assert schedule.observe(4.9) == Decision(improved=False, halved=True, stop=False)
    assert schedule.best_loss == 4.87 and schedule.learning_rate == 1.0


def test_clipping_scales_to_the_limit_and_leaves_small_gradients():
    grads = {"a": np.array([3.0, 0.0], dtype=np.float32), "b": np.array([[4.0]], dtype=np.float32)}
    assert clip_by_global_norm(grads, 1.0) == pytest.approx(5.0)
    assert global_norm(grads) == pytest.approx(1.0, rel=1e-6)
    small = {"a": np.array([0.3], dtype=np.float32)}
    clip_by_global_norm(small, 1.0)
    assert small["a"][0] == pytest.approx(0.3)


def test_sgd_step_updates_in_place():
    params = {"w": np.ones(2, dtype=np.float32)}
    live = params["w"]
    sgd_step(params, {"w": np.array([1.0, -2.0], dtype=np.float32)}, 0.5)
    assert live.tolist() == [0.5, 2.0]


def test_novel_paragraphs_drop_headings_front_matter_and_italics():
    lines = ["EMMA", "By Jane Austen", "", "VOLUME I", "", "CHAPTER I", "", "Emma was _very_ clever,",
             "and rich.", "", "Chapter 2", "She smiled.", "", "", "FINIS"]
    assert novel_paragraphs(lines) == ["Emma was very clever, and rich.", "She smiled."]


def test_read_paragraphs_txt_and_csv(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("First line\nstill first.\n\nSecond  one.\n")
    assert read_paragraphs(txt) == ["First line still first.", "Second one."]
    csv_file = tmp_path / "b.csv"
    csv_file.write_text('body,score\n"Hello, there.",3\nSecond comment,1\n')
    assert read_paragraphs(csv_file) == ["Hello, there.", "Second comment"]
    with pytest.raises(CorpusError):
        read_paragraphs(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00broken")
    with pytest.raises(CorpusError):
        read_paragraphs(bad)


def test_sgd_step_on_listed_columns_equals_the_dense_step():
    rng = np.random.default_rng(0)
    original = rng.normal(size=(4, 9)).astype(np.float32)
    dense = {"U": original.copy()}
    sparse = {"U": original.copy()}
    grad = np.zeros((4, 9), dtype=np.float32)
    grad[:, [1, 5]] = rng.normal(size=(4, 2))
    sgd_step(dense, {"U": grad.copy()}, 0.7)
    sgd_step(sparse, {"U": grad.copy()}, 0.7, columns={"U": np.array([1, 5])})
    np.testing.assert_array_equal(sparse["U"], dense["U"])
    assert not np.array_equal(sparse["U"][:, [1, 5]], original[:, [1, 5]])
    np.testing.assert_array_equal(sparse["U"][:, [0, 2, 3, 4, 6, 7, 8]], original[:, [0, 2, 3, 4, 6, 7, 8]])
