"""The time budget: counted after tokenization, with the later phases' time kept back."""
from __future__ import annotations

import json
import logging

from training import train as train_cli
from training.budget import BASE_SECONDS, recounts_with_development, reserve_seconds
from tests.toy_corpus import write_toy_corpus


def test_the_reserve_grows_with_the_corpus_and_the_n_gram_model():
    default = reserve_seconds(769_000, 101_607, 15_000, 5)
    assert 20 < default < 60  # the default corpus: the n-gram fit and scoring take about 15 s
    assert reserve_seconds(100_000_000, 200_000, 50_000, 5) > default + 300
    assert reserve_seconds(100_000_000, 200_000, 0, 0) == reserve_seconds(1_000, 200_000, 0, 0) < default
    assert reserve_seconds(0, 0, 0, 0) == BASE_SECONDS


def test_the_n_gram_model_is_counted_twice_only_where_the_development_split_is_a_real_share():
    assert recounts_with_development(769_000, 15_000)  # every 50th sentence of the default corpus
    assert not recounts_with_development(100_000_000, 50_000)  # the capped split of a large corpus
    assert not recounts_with_development(1_000, 0)
    once = reserve_seconds(100_000_000, 200_000, 50_000, 5) - reserve_seconds(100_000_000, 200_000, 0, 5)
    assert once < 60  # scoring and the discount search of 50,000 tokens, no second count


def test_the_run_ends_within_its_budget(tmp_path, capsys, caplog):
    corpus = write_toy_corpus(tmp_path / "toy.txt")
    args = ["--corpus", str(corpus), "--vocab-size", "40", "--hidden", "12", "--batch-size", "8", "--epochs", "100000",
            "--eval-every", "100000000", "--max-minutes", "0.3", "--progress-seconds", "0", "--out",
            str(tmp_path / "m.joblib")]
    with caplog.at_level(logging.INFO):
        assert train_cli.main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["stop_reason"] == "time budget reached"  # the RNN stopped for the reserve, not the epochs
    assert summary["reserved_seconds"] > BASE_SECONDS
    assert summary["seconds_after_tokenization"] <= 0.3 * 60
    assert "kept for the last evaluation, the n-gram fit" in caplog.text
